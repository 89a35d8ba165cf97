import {
  featureNotSupported,
  PgError,
  SqlState,
  toPgError,
  withSeverity,
} from "../../shared/errors/mod.ts";
import { keyspaceId, keyspaceIdBinary } from "../../shared/keyspace/mod.ts";
import { concatBytes, readCString } from "../../shared/wire/mod.ts";
import type { KeyValue, Plan } from "../planner/types.ts";
import {
  answerUnit,
  Backend,
  body,
  commandComplete,
  commandTag,
  errorAnswer,
  firstError,
  Frontend,
  type Message,
  splitMessages,
} from "./messages.ts";

const IDLE = 0x49; // 'I'

export const ROLLBACK: Uint8Array = query("ROLLBACK");
export const EMPTY: Uint8Array = new Uint8Array(0);

export function endsWithSync(unit: Message[]): boolean {
  const last = unit.at(-1)?.code;
  return last === Frontend.Sync || last === Frontend.Query;
}

/** A unit the client ended with Flush: it waits for answers before it sends the Sync. */
export function isFlushed(unit: Message[]): boolean {
  return unit.at(-1)?.code === Frontend.Flush;
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
    if (m.code === Backend.ParseComplete && drop.parse > 0) {
      drop.parse--;
      return false;
    }
    if (m.code === Backend.CloseComplete && drop.close > 0) {
      drop.close--;
      return false;
    }
    return true;
  });
  return concatBytes(kept.map((m) => m.frame));
}

/** A Close of prepared statement `name`. */
export function closeStatement(name: string): Uint8Array {
  const enc = new TextEncoder().encode(name);
  const out = new Uint8Array(7 + enc.length);
  out[0] = Frontend.Close;
  new DataView(out.buffer).setInt32(1, 6 + enc.length);
  out[5] = 0x53; // 'S'
  out.set(enc, 6);
  return out;
}

/** A Sync message. */
export const SYNC: Uint8Array = new Uint8Array([Frontend.Sync, 0, 0, 0, 4]);

/** A simple Query message. */
export function query(sql: string): Uint8Array {
  const enc = new TextEncoder().encode(sql);
  const out = new Uint8Array(6 + enc.length);
  out[0] = Frontend.Query;
  new DataView(out.buffer).setInt32(1, 5 + enc.length);
  out.set(enc, 5);
  return out;
}

/** The SQL of a unit's statement (its Query, or its Parse). */
export function statementText(unit: Message[]): string {
  const m = unit.find((m) => m.code === Frontend.Query || m.code === Frontend.Parse)!;
  if (m.code === Frontend.Query) return readCString(body(m), 0)[0];
  return readCString(body(m), readCString(body(m), 0)[1])[0];
}

/** A quoted SQL identifier. */
export function quoteIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

export function sqlLiteral(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export function secondShard(): PgError {
  return featureNotSupported(
    "a transaction may touch one shard until two-phase commit lands",
    { hint: "Roll back, and keep each transaction to one sharding key's rows." },
  );
}

export function undefinedTablegroup(name: string): PgError {
  return new PgError(SqlState.UNDEFINED_OBJECT, `tablegroup "${name}" does not exist`);
}

export function errorFrame(err: PgError): Uint8Array {
  return splitMessages(errorAnswer(err, IDLE))[0].frame;
}

export function errorAnswerFor(unit: Message[], e: unknown, status = IDLE): Uint8Array {
  return answerUnit(unit, errorFrame(withSeverity(toPgError(e), "ERROR")), status);
}

export function commandTagOf(answer: Uint8Array): string | undefined {
  const m = splitMessages(answer).find((m) => m.code === Backend.CommandComplete);
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
 * other shards' rows before its CommandComplete and the row counts summed in the tag. The first
 * error (in shard order) wins instead, with its ReadyForQuery.
 */
export function concatAnswers(answers: Uint8Array[]): Uint8Array {
  const all = answers.map(splitMessages);
  for (const msgs of all) {
    if (firstError(msgs)) {
      return concatBytes(
        msgs.filter((m) => m.code !== Backend.DataRow).map((m) => m.frame),
      );
    }
  }
  const out: Uint8Array[] = [];
  let rows = 0;
  for (const msgs of all) {
    for (const m of msgs) if (m.code === Backend.DataRow) rows++;
  }
  for (const m of all[0]) {
    if (m.code === Backend.DataRow) continue;
    if (m.code === Backend.CommandComplete) {
      for (const msgs of all) {
        for (const r of msgs) if (r.code === Backend.DataRow) out.push(r.frame);
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
  formats: number[];
  values: (Uint8Array | null)[];
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
  return { portal, statement, formats, values };
}

const decoder = new TextDecoder();

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
    const format = b.formats.length === 1 ? b.formats[0] : b.formats[i] ?? 0;
    out.push(format === 1 ? keyspaceIdBinary(type, v) : keyspaceId(type, decoder.decode(v)));
  }
  return out;
}
