import type { PgError } from "../../shared/errors/mod.ts";
import {
  concatBytes,
  readCString,
  WireWriter,
  writeCommandComplete,
  writeErrorResponse,
  writeReadyForQuery,
} from "../../shared/wire/mod.ts";

/** One protocol message: its type byte and its whole frame (type, length, body). */
export interface Message {
  code: number;
  frame: Uint8Array;
}

/** Backend message types the gateway reads when it answers for several shards. */
export const Backend = {
  ParseComplete: 0x31, // '1'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  DataRow: 0x44, // 'D'
  ErrorResponse: 0x45, // 'E'
  NoData: 0x6e, // 'n'
  RowDescription: 0x54, // 'T'
  ReadyForQuery: 0x5a, // 'Z'
  EmptyQuery: 0x49, // 'I'
  PortalSuspended: 0x73, // 's'
  ParameterDescription: 0x74, // 't'
} as const;

/** Frontend message types of an extended-protocol unit. */
export const Frontend = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  Parse: 0x50, // 'P'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
} as const;

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
  return readCString(body(m), 0)[0];
}

/** ErrorResponse + ReadyForQuery with `status` ('I', 'T' or 'E'). */
export function errorAnswer(err: PgError, status: number): Uint8Array {
  const w = new WireWriter(256);
  writeErrorResponse(w, err);
  writeReadyForQuery(w, status);
  return w.view().slice();
}

/** A whole message made by `write`. */
export function build(write: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter(64);
  write(w);
  return w.view().slice();
}

/** CommandComplete with `tag`. */
export function commandComplete(tag: string): Uint8Array {
  return build((w) => writeCommandComplete(w, tag));
}

/** ReadyForQuery with `status`. */
export function readyForQuery(status: number): Uint8Array {
  return build((w) => writeReadyForQuery(w, status));
}

/**
 * The answer to a unit the gateway ran itself as one simple statement: for a Query, `result`
 * (CommandComplete or ErrorResponse) then ReadyForQuery; for an extended-protocol unit, the
 * messages its Parse/Bind/Describe/Execute/Close would get, with `result` in place of the
 * Execute's answer, stopping at an error as Postgres does (up to the Sync).
 */
export function answerUnit(unit: Message[], result: Uint8Array, status: number): Uint8Array {
  const isError = result[0] === Backend.ErrorResponse;
  if (unit.length === 1 && unit[0].code === Frontend.Query) {
    return concatBytes([result, readyForQuery(isError ? idleOr(status) : status)]);
  }
  const out: Uint8Array[] = [];
  for (const m of unit) {
    if (m.code === Frontend.Parse) out.push(PARSE_COMPLETE);
    else if (m.code === Frontend.Bind) out.push(BIND_COMPLETE);
    else if (m.code === Frontend.Describe) {
      // A statement's description starts with its parameters (none: DDL takes no parameters).
      if (m.frame[5] === 0x53) out.push(NO_PARAMETERS);
      out.push(NO_DATA);
    } else if (m.code === Frontend.Close) out.push(CLOSE_COMPLETE);
    else if (m.code === Frontend.Execute) {
      out.push(result);
      if (isError) break;
    }
  }
  out.push(readyForQuery(isError ? idleOr(status) : status));
  return concatBytes(out);
}

function idleOr(status: number): number {
  // An error outside a transaction block leaves the session idle; inside, the block failed.
  return status === 0x49 ? 0x49 : 0x45;
}

export const PARSE_COMPLETE: Uint8Array = build((w) =>
  w.raw(new Uint8Array([Backend.ParseComplete, 0, 0, 0, 4]))
);
export const BIND_COMPLETE: Uint8Array = build((w) =>
  w.raw(new Uint8Array([Backend.BindComplete, 0, 0, 0, 4]))
);
export const CLOSE_COMPLETE: Uint8Array = build((w) =>
  w.raw(new Uint8Array([Backend.CloseComplete, 0, 0, 0, 4]))
);
export const NO_PARAMETERS: Uint8Array = new Uint8Array([
  Backend.ParameterDescription,
  0,
  0,
  0,
  6,
  0,
  0,
]);
export const NO_DATA: Uint8Array = build((w) =>
  w.raw(new Uint8Array([Backend.NoData, 0, 0, 0, 4]))
);

const textDecoder = new TextDecoder();

/** The text-format values of every DataRow in `answer` (null for NULL). */
export function dataRows(answer: Uint8Array): (string | null)[][] {
  const out: (string | null)[][] = [];
  for (const m of splitMessages(answer)) {
    if (m.code !== Backend.DataRow) continue;
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
  return msgs.find((m) => m.code === Backend.ErrorResponse);
}
