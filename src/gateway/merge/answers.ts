/**
 * {@linkcode mergeAnswers}: several shards' answers to one unit (the same messages sent to
 * each) made into the one answer the client expects, following a {@linkcode MergeScript} that
 * says what the gateway changed in the unit: RowDescriptions to cut to the visible columns,
 * answers to messages the gateway added (to drop), and which Execute's rows to merge.
 *
 * @module
 */

import { BackendCode, concatBytes } from "../../shared/wire/mod.ts";
import type { MergeSpec } from "../planner/mod.ts";
import { type Bounds, Merger } from "./merger.ts";
import { type ColumnInfo, describeColumns, firstFields } from "./rows.ts";

/** One Describe of the unit as sent: its RowDescription without `hidden` last columns, or dropped. */
export interface DescribeStep {
  hidden: number | null;
  /** Added by the gateway (the client did not ask): its answer is dropped. */
  added: boolean;
}

/** One Execute of the unit: its rows merged by `spec` within `bounds`, or concatenated. */
export interface ExecuteStep {
  merge: { spec: MergeSpec; bounds: Bounds } | null;
}

/** What the gateway changed in a unit it sent to every shard. */
export interface MergeScript {
  /** Describes in the order sent. */
  describes: DescribeStep[];
  /** Executes in the order sent. */
  executes: ExecuteStep[];
  /** The client sent a simple Query, sent on as Parse/Bind/Describe/Execute/Sync. */
  fromQuery: boolean;
}

interface Message {
  code: number;
  frame: Uint8Array;
}

function split(bytes: Uint8Array): Message[] {
  const out: Message[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off + 5 <= bytes.length;) {
    const end = off + 1 + dv.getInt32(off + 1);
    out.push({ code: bytes[off], frame: bytes.subarray(off, end) });
    off = end;
  }
  return out;
}

const ENDS_EXECUTE: ReadonlySet<number> = new Set([
  BackendCode.CommandComplete,
  BackendCode.EmptyQueryResponse,
  BackendCode.PortalSuspended,
]);

/** Each Execute's DataRows, in Execute order. */
function rowsByExecute(msgs: Message[]): Uint8Array[][] {
  const out: Uint8Array[][] = [[]];
  for (const m of msgs) {
    if (m.code === BackendCode.DataRow) out[out.length - 1].push(m.frame);
    else if (ENDS_EXECUTE.has(m.code)) out.push([]);
  }
  return out;
}

const encoder = new TextEncoder();

function commandComplete(tag: string): Uint8Array {
  const t = encoder.encode(tag);
  const out = new Uint8Array(6 + t.length);
  out[0] = BackendCode.CommandComplete;
  new DataView(out.buffer).setInt32(1, 5 + t.length);
  out.set(t, 5);
  return out;
}

function tagOf(frame: Uint8Array): string {
  return new TextDecoder().decode(frame.subarray(5, frame.length - 1));
}

/**
 * The client's answer from `answers` (one per shard, in shard order, each up to its last
 * ReadyForQuery). The first shard with an error answers alone (its rows dropped), as
 * Postgres stops at an error.
 */
export function mergeAnswers(answers: Uint8Array[], script: MergeScript): Uint8Array {
  const all = answers.map(split);
  const failed = all.findIndex((msgs) => msgs.some((m) => m.code === BackendCode.ErrorResponse));
  const skeleton = all[failed >= 0 ? failed : 0];
  const rows = failed >= 0 ? [] : all.map(rowsByExecute);
  const out: Uint8Array[] = [];
  let describe = 0;
  let execute = 0;
  let columns: ColumnInfo[] = [];
  for (const m of skeleton) {
    switch (m.code) {
      case BackendCode.ParseComplete:
      case BackendCode.BindComplete:
        if (!script.fromQuery) out.push(m.frame);
        break;
      case BackendCode.RowDescription:
      case BackendCode.NoData: {
        const step = script.describes[describe++];
        if (m.code === BackendCode.RowDescription) columns = describeColumns(m.frame);
        if (step?.added) break;
        out.push(
          m.code === BackendCode.RowDescription && step?.hidden != null
            ? firstFields(m.frame, columns.length - step.hidden)
            : m.frame,
        );
        break;
      }
      case BackendCode.DataRow:
        break;
      case BackendCode.CommandComplete:
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended: {
        const step = script.executes[execute];
        const mine = rows.map((r) => r[execute] ?? []);
        execute++;
        if (failed >= 0) {
          out.push(m.frame);
          break;
        }
        if (step?.merge && m.code === BackendCode.CommandComplete) {
          const merger = new Merger(step.merge.spec, columns, mine.length, step.merge.bounds);
          mine.forEach((list, s) => {
            for (const r of list) merger.push(s, r);
            merger.end(s);
          });
          out.push(...merger.pull());
          out.push(commandComplete(`SELECT ${merger.rowCount}`));
          break;
        }
        let n = 0;
        for (const list of mine) {
          out.push(...list);
          n += list.length;
        }
        const tag = m.code === BackendCode.CommandComplete ? tagOf(m.frame) : "";
        const sp = tag.lastIndexOf(" ");
        out.push(
          sp > 0 && /^\d+$/.test(tag.slice(sp + 1))
            ? commandComplete(`${tag.slice(0, sp)} ${n}`)
            : m.frame,
        );
        break;
      }
      default:
        out.push(m.frame);
    }
  }
  return concatBytes(out);
}
