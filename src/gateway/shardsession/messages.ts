import type { PgError } from "../../shared/errors/mod.ts";
import {
  BackendCode,
  concatBytes,
  FrontendCode,
  parseCommandComplete,
  READY_FAILED,
  READY_IDLE,
  READY_IN_TX,
  TxStatus,
  WireWriter,
  writeCommandComplete,
  writeErrorResponse,
  writeQuery,
} from "../../shared/wire/mod.ts";

/** One protocol message: its type byte and its whole frame (type, length, body). */
export interface Message {
  code: number;
  frame: Uint8Array;
}

/** Cuts concatenated whole frames into messages (views into `bytes`). */
export function splitMessages(bytes: Uint8Array): Message[] {
  const out: Message[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off + 5 <= bytes.length;) {
    const len = dv.getInt32(off + 1);
    const end = off + 1 + len;
    out.push({ code: bytes[off], frame: bytes.subarray(off, end) });
    off = end;
  }
  return out;
}

/** A message's body (after type and length). */
export function body(m: Message): Uint8Array {
  return m.frame.subarray(5);
}

/** The CommandComplete tag of a message. */
export function commandTag(m: Message): string {
  return parseCommandComplete(body(m));
}

/** Whole messages made by `write` (a copy: the caller may keep it). */
function build(write: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter(64);
  write(w);
  return w.view().slice();
}

/** An ErrorResponse. */
export function errorFrame(err: PgError): Uint8Array {
  return build((w) => writeErrorResponse(w, err));
}

/** CommandComplete with `tag`. */
export function commandComplete(tag: string): Uint8Array {
  return build((w) => writeCommandComplete(w, tag));
}

/** A simple Query. */
export function query(sql: string): Uint8Array {
  return build((w) => writeQuery(w, sql));
}

/** A Close of prepared statement `name`. */
export function closeStatement(name: string): Uint8Array {
  return build((w) => w.begin(FrontendCode.Close).int8(0x53 /* S */).cstring(name).end());
}

/** ReadyForQuery with `status` (TxStatus), one of the constant frames. */
export function readyForQuery(status: number): Uint8Array {
  return status === TxStatus.Idle
    ? READY_IDLE
    : status === TxStatus.InTransaction
    ? READY_IN_TX
    : READY_FAILED;
}

/**
 * `answer` with the status of its last message, a ReadyForQuery, set to `status` (a copy; an
 * answer that does not end with one is returned as it is).
 */
export function withReadyStatus(answer: Uint8Array, status: number): Uint8Array {
  const at = answer.length - 6;
  if (at < 0 || answer[at] !== BackendCode.ReadyForQuery || answer[answer.length - 1] === status) {
    return answer;
  }
  const out = answer.slice();
  out[out.length - 1] = status;
  return out;
}

/**
 * The answer to a unit the gateway ran itself as one simple statement: for a Query, `result`
 * (CommandComplete or ErrorResponse) then ReadyForQuery; for an extended-protocol unit, the
 * messages its Parse/Bind/Describe/Execute/Close would get, with `result` in place of the
 * Execute's answer, stopping at an error as Postgres does (up to the Sync).
 */
export function answerUnit(unit: Message[], result: Uint8Array, status: number): Uint8Array {
  const isError = result[0] === BackendCode.ErrorResponse;
  if (unit.length === 1 && unit[0].code === FrontendCode.Query) {
    return concatBytes([result, readyForQuery(isError ? idleOr(status) : status)]);
  }
  const out: Uint8Array[] = [];
  for (const m of unit) {
    if (m.code === FrontendCode.Parse) out.push(PARSE_COMPLETE);
    else if (m.code === FrontendCode.Bind) out.push(BIND_COMPLETE);
    else if (m.code === FrontendCode.Describe) {
      // A statement's description starts with its parameters (none: DDL takes no parameters).
      if (m.frame[5] === 0x53) out.push(NO_PARAMETERS);
      out.push(NO_DATA);
    } else if (m.code === FrontendCode.Close) out.push(CLOSE_COMPLETE);
    else if (m.code === FrontendCode.Execute) {
      out.push(result);
      if (isError) break;
    }
  }
  out.push(readyForQuery(isError ? idleOr(status) : status));
  return concatBytes(out);
}

function idleOr(status: number): number {
  // An error outside a transaction block leaves the session idle; inside, the block failed.
  return status === TxStatus.Idle ? TxStatus.Idle : TxStatus.Failed;
}

export const PARSE_COMPLETE: Uint8Array = new Uint8Array([BackendCode.ParseComplete, 0, 0, 0, 4]);
export const BIND_COMPLETE: Uint8Array = new Uint8Array([BackendCode.BindComplete, 0, 0, 0, 4]);
export const CLOSE_COMPLETE: Uint8Array = new Uint8Array([BackendCode.CloseComplete, 0, 0, 0, 4]);
/** ParameterDescription of a statement without parameters. */
export const NO_PARAMETERS: Uint8Array = new Uint8Array([
  BackendCode.ParameterDescription,
  ...[0, 0, 0, 6],
  ...[0, 0],
]);
export const NO_DATA: Uint8Array = new Uint8Array([BackendCode.NoData, 0, 0, 0, 4]);

const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** The text-format values of every DataRow in `answer` (null for NULL). */
export function dataRows(answer: Uint8Array): (string | null)[][] {
  const out: (string | null)[][] = [];
  for (const m of splitMessages(answer)) {
    if (m.code !== BackendCode.DataRow) continue;
    const b = body(m);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = dv.getInt16(0);
    const row: (string | null)[] = [];
    for (let i = 0, off = 2; i < n; i++) {
      const len = dv.getInt32(off);
      off += 4;
      if (len < 0) row.push(null);
      else {
        row.push(textDecoder.decode(b.subarray(off, off + len)));
        off += len;
      }
    }
    out.push(row);
  }
  return out;
}

/** The first ErrorResponse among `msgs`, if any. */
export function firstError(msgs: Message[]): Message | undefined {
  return msgs.find((m) => m.code === BackendCode.ErrorResponse);
}
