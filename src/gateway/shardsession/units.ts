import { PgError, SqlState, toPgError, withSeverity } from "../../shared/errors/mod.ts";
import { keyspaceId, keyspaceIdBinary } from "../../shared/keyspace/mod.ts";
import {
  BackendCode,
  concatBytes,
  FrontendCode,
  readCString,
  TxStatus,
} from "../../shared/wire/mod.ts";
import type { KeyValue, Plan } from "../planner/types.ts";
import {
  answerUnit,
  body,
  commandComplete,
  commandTag,
  errorFrame,
  firstError,
  type Message,
  query,
  splitMessages,
} from "./messages.ts";

export const ROLLBACK: Uint8Array = query("ROLLBACK");
export const EMPTY: Uint8Array = new Uint8Array(0);

export function endsWithSync(unit: Message[]): boolean {
  const last = unit.at(-1)?.code;
  return last === FrontendCode.Sync || last === FrontendCode.Query;
}

/** A unit the client ended with Flush: it waits for answers before it sends the Sync. */
export function isFlushed(unit: Message[]): boolean {
  return unit.at(-1)?.code === FrontendCode.Flush;
}

/**
 * `answer` without its first `drop.parse` ParseCompletes and `drop.close` CloseCompletes (those
 * of statements the gateway sent ahead of the client's; counted down, for answers that come in
 * pieces).
 */
export function dropPrepended(
  answer: Uint8Array,
  drop: { parse: number; close: number },
): Uint8Array {
  const kept = splitMessages(answer).filter((m) => {
    if (m.code === BackendCode.ParseComplete && drop.parse > 0) {
      drop.parse--;
      return false;
    }
    if (m.code === BackendCode.CloseComplete && drop.close > 0) {
      drop.close--;
      return false;
    }
    return true;
  });
  return concatBytes(kept.map((m) => m.frame));
}

/** The SQL of a unit's statement (its Query, or its Parse). */
export function statementText(unit: Message[]): string {
  const m = unit.find((m) => m.code === FrontendCode.Query || m.code === FrontendCode.Parse)!;
  if (m.code === FrontendCode.Query) return readCString(body(m), 0)[0];
  return readCString(body(m), readCString(body(m), 0)[1])[0];
}

export function undefinedTablegroup(name: string): PgError {
  return new PgError(SqlState.UNDEFINED_OBJECT, `tablegroup "${name}" does not exist`);
}

export function errorAnswerFor(
  unit: Message[],
  e: unknown,
  status: number = TxStatus.Idle,
): Uint8Array {
  return answerUnit(unit, errorFrame(withSeverity(toPgError(e), "ERROR")), status);
}

export function commandTagOf(answer: Uint8Array): string | undefined {
  const m = splitMessages(answer).find((m) => m.code === BackendCode.CommandComplete);
  return m ? commandTag(m) : undefined;
}

export function samePlanTarget(a: Plan, b: Plan): boolean {
  if (a.kind === "keyed" || a.kind === "scatter") {
    return (b.kind === "keyed" || b.kind === "scatter") && a.tablegroup === b.tablegroup;
  }
  return a.kind === b.kind;
}

/**
 * Answers of several shards to one statement, as one: the first shard's messages, with the
 * other shards' rows before its CommandComplete and the row counts of the tags summed. The first
 * error (in shard order) wins instead, with its ReadyForQuery.
 */
export function concatAnswers(answers: Uint8Array[]): Uint8Array {
  const all = answers.map(splitMessages);
  // Every shard's notices reach the client (a trigger's RAISE NOTICE on each), in shard order.
  const notices = (msgs: Message[]) =>
    msgs.filter((m) => m.code === BackendCode.NoticeResponse).map((m) => m.frame);
  for (const msgs of all) {
    if (firstError(msgs)) {
      return concatBytes([
        ...all.filter((o) => o !== msgs).flatMap(notices),
        ...msgs.filter((m) => m.code !== BackendCode.DataRow).map((m) => m.frame),
      ]);
    }
  }
  const out: Uint8Array[] = [];
  // Each shard's count, from its tag (rows read, or rows an UPDATE/DELETE/INSERT touched).
  let rows = 0;
  for (const msgs of all) {
    const done = msgs.find((m) => m.code === BackendCode.CommandComplete);
    const n = done ? /\s(\d+)$/.exec(commandTag(done))?.[1] : undefined;
    rows += n === undefined ? 0 : Number(n);
  }
  for (const m of all[0]) {
    if (m.code === BackendCode.DataRow) continue;
    if (m.code === BackendCode.CommandComplete) {
      for (const msgs of all) {
        for (const r of msgs) {
          // (The first shard's notices are out already, in their place among its messages.)
          if (
            r.code === BackendCode.DataRow ||
            (r.code === BackendCode.NoticeResponse && msgs !== all[0])
          ) out.push(r.frame);
        }
      }
      const tag = commandTag(m);
      const sp = tag.lastIndexOf(" ");
      const summed = sp > 0 && /^\d+$/.test(tag.slice(sp + 1))
        ? `${tag.slice(0, sp)} ${rows}`
        : tag;
      out.push(commandComplete(summed));
      continue;
    }
    out.push(m.frame);
  }
  return concatBytes(out);
}

export interface BindInfo {
  portal: string;
  statement: string;
  /** Parameter format codes (none: all text; one: for every parameter). */
  formats: number[];
  values: (Uint8Array | null)[];
  /** Result column format codes, likewise. */
  resultFormats: number[];
}

/** The format (0 text, 1 binary) of a Bind's parameter `i`: one code for all, or its own. */
export function formatOf(bind: BindInfo, i: number): number {
  return bind.formats.length === 1 ? bind.formats[0] : bind.formats[i] ?? 0;
}

export function parseBind(b: Uint8Array): BindInfo {
  const [portal, a] = readCString(b, 0);
  const [statement, c] = readCString(b, a);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = c;
  const nf = dv.getInt16(off);
  off += 2;
  const formats: number[] = [];
  for (let i = 0; i < nf; i++, off += 2) formats.push(dv.getInt16(off));
  const np = dv.getInt16(off);
  off += 2;
  const values: (Uint8Array | null)[] = [];
  for (let i = 0; i < np; i++) {
    const len = dv.getInt32(off);
    off += 4;
    if (len < 0) values.push(null);
    else {
      values.push(b.subarray(off, off + len));
      off += len;
    }
  }
  const resultFormats: number[] = [];
  const nr = dv.getInt16(off);
  off += 2;
  for (let i = 0; i < nr; i++, off += 2) resultFormats.push(dv.getInt16(off));
  return { portal, statement, formats, values, resultFormats };
}

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Keyspace ids of one key: a literal's, or a bound parameter's in each Bind of the unit. */
export function keyIds(key: KeyValue, type: Parameters<typeof keyspaceId>[0], binds: BindInfo[]) {
  const out: bigint[] = [];
  if ("literal" in key) {
    if (key.literal !== null) out.push(keyspaceId(type, key.literal));
    return out;
  }
  for (const b of binds) {
    const i = key.param - 1;
    const v = b.values[i];
    if (v === null || v === undefined) continue;
    const format = formatOf(b, i);
    out.push(format === 1 ? keyspaceIdBinary(type, v) : keyspaceId(type, decoder.decode(v)));
  }
  return out;
}
