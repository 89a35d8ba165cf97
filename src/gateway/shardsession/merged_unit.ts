/**
 * A unit whose statement is merged across shards, as each shard gets it: a simple Query becomes
 * Parse/Bind/Describe/Execute/Sync of the rewritten statement (so the hidden columns come back
 * in binary while the visible ones stay text); in an extended-protocol unit, the Parse of a
 * merged statement carries its rewritten text, its Bind asks the client's formats for the
 * visible columns and binary for the hidden ones, and its Execute is preceded by a Describe of
 * the portal (the merge needs the column types). The {@linkcode MergeScript} says what to
 * undo in the answers.
 *
 * @module
 */

import { featureNotSupported, PgError, SqlState } from "../../shared/errors/mod.ts";
import {
  BackendCode,
  concatBytes,
  FrontendCode,
  readCString,
  SYNC,
  WireWriter,
} from "../../shared/wire/mod.ts";
import { boundsOf, type ExecuteStep, type MergeScript } from "../merge/mod.ts";
import type { MergeSpec, Plan } from "../planner/mod.ts";
import { body, type Message, splitMessages } from "./messages.ts";
import type { ShardSession } from "./shard_session.ts";
import { type BindInfo, parseBind } from "./units.ts";

function frame(write: (w: WireWriter) => void): Message {
  const w = new WireWriter(128);
  write(w);
  const f = w.view().slice();
  return { code: f[0], frame: f };
}

/** A Bind message. */
export function bindMessage(m: BindInfo): Message {
  return frame((w) => {
    w.begin(FrontendCode.Bind).cstring(m.portal).cstring(m.statement);
    w.int16(m.formats.length);
    for (const f of m.formats) w.int16(f);
    w.int16(m.values.length);
    for (const v of m.values) {
      if (v === null) w.int32(-1);
      else w.int32(v.length).bytes(v);
    }
    w.int16(m.resultFormats.length);
    for (const f of m.resultFormats) w.int16(f);
    w.end();
  });
}

/** A Parse of `sql` named `name` with parameter types `types`. */
export function parseMessage(name: string, sql: string, types: number[]): Message {
  return frame((w) => {
    w.begin(FrontendCode.Parse).cstring(name).cstring(sql).int16(types.length);
    for (const t of types) w.uint32(t);
    w.end();
  });
}

function describePortal(portal: string): Message {
  return frame((w) => w.begin(FrontendCode.Describe).int8(0x50 /* P */).cstring(portal).end());
}

function executeMessage(portal: string): Message {
  return frame((w) => w.begin(FrontendCode.Execute).cstring(portal).int32(0).end());
}

/** A Parse message's name, text and parameter types. */
export function readParse(m: Message): { name: string; sql: string; types: number[] } {
  const b = body(m);
  const [name, a] = readCString(b, 0);
  const [sql, c] = readCString(b, a);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const types: number[] = [];
  for (let i = 0, n = dv.getInt16(c); i < n; i++) types.push(dv.getUint32(c + 2 + 4 * i));
  return { name, sql, types };
}

/** The Parse of a merged statement as the shards get it (its rewritten text). */
export function rewriteParse(m: Message, spec: MergeSpec): Message {
  const p = readParse(m);
  return parseMessage(p.name, spec.sql, p.types);
}

/**
 * The result formats a shard gets for a merged statement: the client's for the visible
 * columns, binary for the hidden ones. `visible` is the number of visible columns (null:
 * unknown, only possible when the client asked one format for all). Refuses a format count
 * Postgres would refuse, with its words.
 */
export function shardFormats(client: number[], visible: number | null, hidden: number): number[] {
  if (client.length === 1 && client[0] === 1) return [1];
  if (visible === null) throw new Error("the number of visible columns is needed");
  if (client.length > 1 && client.length !== visible) {
    throw new PgError(
      SqlState.PROTOCOL_VIOLATION,
      `bind message has ${client.length} result formats but query has ${visible} columns`,
    );
  }
  const out: number[] = [];
  for (let i = 0; i < visible; i++) {
    out.push(client.length === 0 ? 0 : client[client.length === 1 ? 0 : i]);
  }
  for (let i = 0; i < hidden; i++) out.push(1);
  return out;
}

/** What a unit looks like for the shards of a merged statement. */
export interface RewrittenUnit {
  messages: Message[];
  script: MergeScript;
}

/** Looks up how a statement is merged: by name (the client's statements) and by Parse text. */
export interface MergeLookup {
  /** The merge of prepared statement `name` as it stands before the unit. */
  statement(name: string): MergeSpec | undefined;
  /** The merge of a statement text (planned, cached). */
  text(sql: string): MergeSpec | undefined;
  /** The number of columns of `spec`'s statement, when it selects `*` (asks a shard). */
  columns(spec: MergeSpec): Promise<number | null>;
}

/** A simple Query of a merged statement, as the shards get it. */
export async function rewriteQuery(spec: MergeSpec, lookup: MergeLookup): Promise<RewrittenUnit> {
  const visible = await visibleOf(spec, [], lookup);
  const messages = [
    parseMessage("", spec.sql, []),
    bindMessage({
      portal: "",
      statement: "",
      formats: [],
      values: [],
      resultFormats: shardFormats([], visible, spec.hidden),
    }),
    describePortal(""),
    executeMessage(""),
    { code: FrontendCode.Sync, frame: SYNC },
  ];
  return {
    messages,
    script: {
      describes: [{ hidden: spec.hidden, added: false }],
      executes: [{ merge: { spec, bounds: boundsOf(spec, null) } }],
      fromQuery: true,
    },
  };
}

async function visibleOf(
  spec: MergeSpec,
  formats: number[],
  lookup: MergeLookup,
): Promise<number | null> {
  if (spec.visible !== null || (formats.length === 1 && formats[0] === 1)) return spec.visible;
  const total = await lookup.columns(spec);
  return total === null ? 0 : total - spec.hidden;
}

/** An extended-protocol unit naming merged statements, as the shards get it. */
export async function rewriteExtended(
  unit: Message[],
  lookup: MergeLookup,
): Promise<RewrittenUnit> {
  const statements = new Map<string, MergeSpec | undefined>();
  const specOf = (name: string) =>
    statements.has(name) ? statements.get(name) : lookup.statement(name);
  const portals = new Map<string, { spec: MergeSpec; bind: BindInfo }>();
  const described = new Set<string>();
  /** Portals bound in this unit (whether their statement is merged is known only for them). */
  const bound = new Set<string>();
  const messages: Message[] = [];
  const script: MergeScript = { describes: [], executes: [], fromQuery: false };
  for (const m of unit) {
    const b = body(m);
    if (m.code === FrontendCode.Parse) {
      const p = readParse(m);
      const spec = lookup.text(p.sql);
      statements.set(p.name, spec);
      messages.push(spec ? parseMessage(p.name, spec.sql, p.types) : m);
    } else if (m.code === FrontendCode.Bind) {
      const bind = parseBind(b);
      bound.add(bind.portal);
      const spec = specOf(bind.statement);
      portals.delete(bind.portal);
      described.delete(bind.portal);
      if (!spec) {
        messages.push(m);
        continue;
      }
      portals.set(bind.portal, { spec, bind });
      const visible = await visibleOf(spec, bind.resultFormats, lookup);
      messages.push(
        bindMessage({
          ...bind,
          resultFormats: shardFormats(bind.resultFormats, visible, spec.hidden),
        }),
      );
    } else if (m.code === FrontendCode.Describe) {
      const name = readCString(b, 1)[0];
      if (b[0] !== 0x53 && !bound.has(name)) throw portalElsewhere();
      const spec = b[0] === 0x53 /* S */ ? specOf(name) : portals.get(name)?.spec;
      if (b[0] !== 0x53) described.add(name);
      script.describes.push({ hidden: spec ? spec.hidden : null, added: false });
      messages.push(m);
    } else if (m.code === FrontendCode.Execute) {
      const portal = readCString(b, 0)[0];
      if (!bound.has(portal)) throw portalElsewhere();
      const p = portals.get(portal);
      const step: ExecuteStep = { merge: null };
      if (p) {
        const maxRows = new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(b.length - 4);
        if (maxRows !== 0) {
          throw featureNotSupported(
            "fetching some rows at a time (Execute with a row limit) of a statement merged across shards is not supported",
          );
        }
        if (!described.has(portal)) {
          messages.push(describePortal(portal));
          script.describes.push({ hidden: p.spec.hidden, added: true });
        }
        step.merge = {
          spec: p.spec,
          bounds: boundsOf(p.spec, { formats: p.bind.formats, values: p.bind.values }),
        };
      }
      script.executes.push(step);
      messages.push(m);
    } else {
      if (m.code === FrontendCode.Close && b[0] === 0x53) {
        statements.set(readCString(b, 1)[0], undefined);
      }
      messages.push(m);
    }
  }
  return { messages, script };
}

function portalElsewhere(): Error {
  return featureNotSupported(
    "a portal bound before the last Sync cannot be described or executed together with a statement merged across shards",
  );
}

/** How a plan's answers are merged, if they are. */
export function mergeOf(p: Plan): MergeSpec | undefined {
  return p.kind === "scatter" || p.kind === "keyed" ? p.merge : undefined;
}

/**
 * The number of columns a merged statement selecting `*` returns, asked of one shard (a Parse
 * and Describe of its unnamed statement); null when it fails there (the statement itself then
 * fails the same way).
 */
export async function columnCount(s: ShardSession, spec: MergeSpec): Promise<number | null> {
  const describe = frame((w) =>
    w.begin(FrontendCode.Describe).int8(0x53 /* S */).cstring("").end()
  );
  const payload = concatBytes([parseMessage("", spec.sql, []).frame, describe.frame, SYNC]);
  const answer = await s.run(payload);
  s.prepared.set("", spec.sql);
  const rd = splitMessages(answer).find((m) => m.code === BackendCode.RowDescription);
  if (rd === undefined) return null;
  return new DataView(rd.frame.buffer, rd.frame.byteOffset, rd.frame.byteLength).getInt16(5);
}
