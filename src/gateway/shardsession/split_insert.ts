/**
 * An `INSERT … VALUES (…), (…)` whose rows belong to several shards (simple protocol): each
 * shard runs the statement with only its rows, and the answers become the one Postgres would
 * give: tags summed, RETURNING rows in VALUES order.
 *
 * @module
 */

import { literal } from "../../shared/sql/mod.ts";
import { BackendCode, concatBytes, FrontendCode } from "../../shared/wire/mod.ts";
import type { ShardMap } from "../router/shard_map.ts";
import { type InsertSplit, type Plan, tokenize } from "../planner/mod.ts";
import {
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  firstError,
  type Message,
  NO_DATA,
  PARSE_COMPLETE,
  query,
  readyForQuery,
  splitMessages,
} from "./messages.ts";
import { concatAnswers, keyIds, undefinedTablegroup } from "./units.ts";

/** One shard's part of a split INSERT: its rows (indexes into the VALUES list, in order). */
export interface ShardRows {
  shard: string;
  rows: number[];
}

/**
 * The shards of a split INSERT's rows, in the order their first row comes. A row whose key is
 * NULL (or a `$n`, which the simple protocol cannot bind) goes to the tablegroup's first shard,
 * as a one-row INSERT of it does.
 */
export function rowsByShard(
  plan: Extract<Plan, { kind: "keyed" }>,
  split: InsertSplit,
  map: ShardMap,
): ShardRows[] {
  const tg = map.tablegroup(plan.tablegroup);
  if (!tg) throw undefinedTablegroup(plan.tablegroup);
  const out = new Map<string, number[]>();
  split.rows.forEach((row, i) => {
    const id = keyIds(row.key, plan.type, [])[0];
    const shard = (id === undefined ? undefined : map.shardFor(plan.tablegroup, id)) ??
      tg.shards[0];
    const rows = out.get(shard);
    if (rows) rows.push(i);
    else out.set(shard, [i]);
  });
  return [...out].map(([shard, rows]) => ({ shard, rows }));
}

/** The simple Query a shard runs: the statement with only `rows` in its VALUES list. */
export function shardQuery(split: InsertSplit, rows: number[]): Message[] {
  const text = split.head + rows.map((i) => split.rows[i].text).join(", ") + split.tail;
  return splitMessages(query(text));
}

/**
 * The answers of the shards of a split INSERT as one (`concatAnswers`: the first error, or the
 * tags summed), with the RETURNING rows put back in VALUES order: the shard of `parts[s]`
 * returns one row per row it inserted, in the order it got them. When a shard returned another
 * number of rows (a BEFORE trigger that skipped one), they stay in shard order.
 */
export function splitAnswers(answers: Uint8Array[], parts: ShardRows[]): Uint8Array {
  const joined = concatAnswers(answers);
  const all = answers.map(splitMessages);
  if (all.some((msgs) => firstError(msgs))) return joined;
  const rows = all.map((msgs) => msgs.filter((m) => m.code === BackendCode.DataRow));
  if (rows.every((r) => r.length === 0)) return joined;
  if (rows.some((r, s) => r.length !== parts[s].rows.length)) return joined;
  const ordered: Uint8Array[] = [];
  rows.forEach((r, s) => r.forEach((m, j) => ordered[parts[s].rows[j]] = m.frame));
  const out: Uint8Array[] = [];
  let placed = false;
  for (const m of splitMessages(joined)) {
    if (m.code !== BackendCode.DataRow) out.push(m.frame);
    else if (!placed) {
      out.push(...ordered.filter((f) => f !== undefined));
      placed = true;
    }
  }
  return concatBytes(out);
}

/**
 * `split` with its parameters written in as literals (extended protocol, text-format values):
 * `'v'` where the statement left the parameter's type to Postgres (it reads the literal as it
 * would have read the parameter), `'v'::type` where the Parse gave one (`names[i]` for `$i+1`),
 * `NULL` likewise; the keys of parameter rows become the literals they were bound to.
 */
export function inlineSplit(
  split: InsertSplit,
  values: (string | null)[],
  names: (string | null)[],
): InsertSplit {
  const inline = (text: string) => inlineParams(text, values, names);
  return {
    ...split,
    head: inline(split.head),
    tail: inline(split.tail),
    rows: split.rows.map((r) => ({
      text: inline(r.text),
      key: "param" in r.key ? { literal: values[r.key.param - 1] ?? null } : r.key,
    })),
  };
}

/** `text` with each `$n` written in as the literal of `values[n-1]`, cast to `names[n-1]`. */
export function inlineParams(
  text: string,
  values: (string | null)[],
  names: (string | null)[],
): string {
  let out = "";
  let at = 0;
  for (const t of tokenize(text)) {
    if (t.kind !== "param") continue;
    const n = Number(t.text.slice(1));
    const v = values[n - 1];
    const cast = names[n - 1] ? `::${names[n - 1]}` : "";
    // In parentheses, so that what follows the parameter (`$1[2]`, `$1.f`) still applies to it.
    out += text.slice(at, t.start) + "(" +
      (v === null || v === undefined ? "NULL" : literal(v)) + cast + ")";
    at = t.end;
  }
  return out + text.slice(at);
}

/**
 * The answer to a unit whose Bind failed (`error`): ParseComplete for a Parse before it, the
 * error, and (what follows skipped, as Postgres does) the ReadyForQuery with `status`.
 */
export function answerAtBind(unit: Message[], error: Uint8Array, status: number): Uint8Array {
  const out: Uint8Array[] = [];
  for (const m of unit) {
    if (m.code === FrontendCode.Bind) break;
    if (m.code === FrontendCode.Parse) out.push(PARSE_COMPLETE);
  }
  out.push(error, readyForQuery(status));
  return concatBytes(out);
}

/**
 * The answer an extended-protocol unit gets from a simple-protocol `answer` to its statement:
 * ParseComplete, BindComplete, the RowDescription (or NoData) for a Describe of the portal, the
 * rows and tag for the Execute (or its error, after which Postgres skips to the Sync), and the
 * ReadyForQuery.
 */
export function extendedAnswer(unit: Message[], answer: Uint8Array): Uint8Array {
  const msgs = splitMessages(answer);
  const error = firstError(msgs);
  const description = msgs.find((m) => m.code === BackendCode.RowDescription);
  const out: Uint8Array[] = [];
  for (const m of unit) {
    if (m.code === FrontendCode.Parse) out.push(PARSE_COMPLETE);
    else if (m.code === FrontendCode.Bind) out.push(BIND_COMPLETE);
    else if (m.code === FrontendCode.Describe) out.push(description?.frame ?? NO_DATA);
    else if (m.code === FrontendCode.Close) out.push(CLOSE_COMPLETE);
    else if (m.code === FrontendCode.Execute) {
      // Notices (a trigger's RAISE NOTICE) in their place, then rows and tag, or the error.
      for (const r of msgs) {
        if (r.code === BackendCode.NoticeResponse || r.code === BackendCode.ErrorResponse) {
          out.push(r.frame);
        } else if (
          !error && (r.code === BackendCode.DataRow || r.code === BackendCode.CommandComplete)
        ) out.push(r.frame);
      }
      if (error) break;
    }
  }
  const ready = msgs.at(-1);
  if (ready?.code === BackendCode.ReadyForQuery) out.push(ready.frame);
  return concatBytes(out);
}
