/**
 * Parsers of PostgreSQL v3 frame bodies (a {@linkcode FrameReader}'s `body`). They read through
 * the given view, honouring its `byteOffset`, and throw FATAL 08P01 on malformed input.
 * Returned `Uint8Array`s are views into the body, valid as long as the body is.
 *
 * @module
 */

import {
  isSeverity,
  PgError,
  type PgErrorOptions,
  protocolViolation,
  SqlState,
} from "../errors/mod.ts";
import {
  CANCEL_REQUEST_CODE,
  ErrorField,
  GSSENC_REQUEST_CODE,
  PROTOCOL_VERSION_3,
  SSL_REQUEST_CODE,
} from "./codes.ts";

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** A parsed startup-phase packet. Cancel keys are signed int32. */
export type StartupPacket =
  | { kind: "startup"; version: number; params: Map<string, string> }
  | { kind: "ssl" }
  | { kind: "gssenc" }
  | { kind: "cancel"; pid: number; secret: number };

/**
 * Reads a NUL-terminated UTF-8 string at `offset`; returns it and the offset after the NUL.
 *
 * @throws {PgError} FATAL 08P01 `invalid string in message` when there is no NUL.
 */
export function readCString(buf: Uint8Array, offset: number): [string, number] {
  const nul = offset < buf.length ? buf.indexOf(0, offset) : -1;
  if (nul < 0) throw protocolViolation("invalid string in message");
  return [decoder.decode(buf.subarray(offset, nul)), nul + 1];
}

/** Signed big-endian int32 at `offset`. */
function int32(buf: Uint8Array, offset: number): number {
  if (offset < 0 || offset + 4 > buf.length) {
    throw protocolViolation("insufficient data left in message");
  }
  return (buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3];
}

function badLayout(): PgError {
  return protocolViolation("invalid startup packet layout: expected terminator as last byte");
}

/**
 * Postgres's FATAL 0A000 for a startup packet whose protocol version (or request code) it does
 * not serve, e.g. a second SSLRequest.
 */
export function unsupportedProtocol(version: number): PgError {
  return new PgError(
    SqlState.FEATURE_NOT_SUPPORTED,
    `unsupported frontend protocol ${version >>> 16}.${
      version & 0xffff
    }: server supports 3.0 to 3.0`,
    { severity: "FATAL" },
  );
}

/**
 * Parses the body (after the length) of a StartupMessage, SSLRequest, GSSENCRequest or
 * CancelRequest. A minor version above 0 is accepted and returned in `version` so the caller
 * can answer with NegotiateProtocolVersion.
 *
 * @throws {PgError} FATAL 0A000 for a protocol major other than 3, FATAL 28000 when `user` is
 * missing or empty, FATAL 08P01 for a malformed packet.
 */
export function parseStartupPacket(body: Uint8Array): StartupPacket {
  const version = int32(body, 0);
  if (version === SSL_REQUEST_CODE) return { kind: "ssl" };
  if (version === GSSENC_REQUEST_CODE) return { kind: "gssenc" };
  if (version === CANCEL_REQUEST_CODE) {
    if (body.length !== 12) throw protocolViolation("invalid length of startup packet");
    return { kind: "cancel", pid: int32(body, 4), secret: int32(body, 8) };
  }
  if (version >>> 16 !== PROTOCOL_VERSION_3 >>> 16) throw unsupportedProtocol(version);
  const params = new Map<string, string>();
  const end = body.length;
  let off = 4;
  while (off < end && body[off] !== 0) {
    const nameEnd = body.indexOf(0, off);
    if (nameEnd < 0 || nameEnd + 1 >= end) throw badLayout();
    const valueEnd = body.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) throw badLayout();
    params.set(
      decoder.decode(body.subarray(off, nameEnd)),
      decoder.decode(body.subarray(nameEnd + 1, valueEnd)),
    );
    off = valueEnd + 1;
  }
  if (off !== end - 1) throw badLayout();
  if (!params.get("user")) {
    throw new PgError(
      SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
      "no PostgreSQL user name specified in startup packet",
      { severity: "FATAL" },
    );
  }
  return { kind: "startup", version, params };
}

function toInt(s: string): number | undefined {
  const n = Number.parseInt(s, 10);
  return Number.isNaN(n) ? undefined : n;
}

/**
 * Builds a {@linkcode PgError} from an ErrorResponse or NoticeResponse body, keeping every
 * known field. The severity is `V` (non-localized) when present, else `S`; a localized `S`
 * that differs is kept in `severityLocalized`. Unknown field types are skipped.
 */
export function parseErrorFields(body: Uint8Array): PgError {
  let sqlstate: string = SqlState.INTERNAL_ERROR;
  let message = "";
  let localized: string | undefined;
  let nonLocalized: string | undefined;
  const opts: PgErrorOptions = {};
  let off = 0;
  while (off < body.length) {
    const type = body[off];
    if (type === 0) break;
    const [value, next] = readCString(body, off + 1);
    off = next;
    switch (type) {
      case ErrorField.Severity:
        localized = value;
        break;
      case ErrorField.SeverityNonLocalized:
        nonLocalized = value;
        break;
      case ErrorField.Code:
        sqlstate = value;
        break;
      case ErrorField.Message:
        message = value;
        break;
      case ErrorField.Detail:
        opts.detail = value;
        break;
      case ErrorField.Hint:
        opts.hint = value;
        break;
      case ErrorField.Position:
        opts.position = toInt(value);
        break;
      case ErrorField.InternalPosition:
        opts.internalPosition = toInt(value);
        break;
      case ErrorField.InternalQuery:
        opts.internalQuery = value;
        break;
      case ErrorField.Where:
        opts.where = value;
        break;
      case ErrorField.Schema:
        opts.schema = value;
        break;
      case ErrorField.Table:
        opts.table = value;
        break;
      case ErrorField.Column:
        opts.column = value;
        break;
      case ErrorField.DataType:
        opts.dataType = value;
        break;
      case ErrorField.Constraint:
        opts.constraint = value;
        break;
      case ErrorField.File:
        opts.file = value;
        break;
      case ErrorField.Line:
        opts.line = toInt(value);
        break;
      case ErrorField.Routine:
        opts.routine = value;
        break;
    }
  }
  const sev = nonLocalized ?? localized ?? "ERROR";
  opts.severity = isSeverity(sev) ? sev : "ERROR";
  if (localized !== undefined && localized !== opts.severity) opts.severityLocalized = localized;
  return new PgError(sqlstate, message, opts);
}

/** The transaction status byte of a ReadyForQuery body. */
export function parseReadyForQuery(body: Uint8Array): number {
  if (body.length < 1) throw protocolViolation("insufficient data left in message");
  return body[0];
}

/** The tag of a CommandComplete body (e.g. `INSERT 0 1`). */
export function parseCommandComplete(body: Uint8Array): string {
  return readCString(body, 0)[0];
}

/** The subtype ({@linkcode AuthCode}) and the rest (a view) of an Authentication body. */
export function parseAuthentication(body: Uint8Array): { code: number; data: Uint8Array } {
  return { code: int32(body, 0), data: body.subarray(4) };
}

/** The mechanism names in the `data` of an AuthenticationSASL message. */
export function parseSaslMechanisms(data: Uint8Array): string[] {
  const out: string[] = [];
  let off = 0;
  while (off < data.length && data[off] !== 0) {
    const [name, next] = readCString(data, off);
    out.push(name);
    off = next;
  }
  return out;
}

/** Name and value of a ParameterStatus body. */
export function parseParameterStatus(body: Uint8Array): [string, string] {
  const [name, off] = readCString(body, 0);
  return [name, readCString(body, off)[0]];
}

/** Process id and secret key (both signed int32) of a BackendKeyData body. */
export function parseBackendKeyData(body: Uint8Array): { pid: number; secret: number } {
  return { pid: int32(body, 0), secret: int32(body, 4) };
}

/** The SQL text of a Query body. */
export function parseQuery(body: Uint8Array): string {
  return readCString(body, 0)[0];
}

/** Mechanism and initial response (a view; empty when the length is -1) of SASLInitialResponse. */
export function parseSaslInitialResponse(
  body: Uint8Array,
): { mechanism: string; data: Uint8Array } {
  const [mechanism, off] = readCString(body, 0);
  const len = int32(body, off);
  if (len === -1) return { mechanism, data: body.subarray(off + 4, off + 4) };
  if (len < 0 || off + 4 + len > body.length) {
    throw protocolViolation("insufficient data left in message");
  }
  return { mechanism, data: body.subarray(off + 4, off + 4 + len) };
}
