/**
 * Writers of whole PostgreSQL v3 frames, both directions, each appending exactly one frame to a
 * {@linkcode WireWriter} and returning it; constant frames built once. The parsers live in
 * `parse.ts` and are re-exported here.
 *
 * @module
 */

import type { PgError } from "../errors/mod.ts";
import {
  AuthCode,
  BackendCode,
  CANCEL_REQUEST_CODE,
  ErrorField,
  FrontendCode,
  PROTOCOL_VERSION_3,
  SSL_REQUEST_CODE,
  TxStatus,
} from "./codes.ts";
import { WireWriter } from "./writer.ts";

export * from "./parse.ts";

/** One column of a RowDescription. Omitted numbers default as noted. */
export interface FieldDescription {
  name: string;
  /** OID of the source table, 0 when none (default). */
  tableOid?: number;
  /** Attribute number of the source column, 0 when none (default). */
  columnAttr?: number;
  typeOid: number;
  /** `pg_type.typlen`; default -1 (variable length). */
  typeSize?: number;
  /** `pg_attribute.atttypmod`; default -1. */
  typeModifier?: number;
  /** 0 text (default), 1 binary. */
  format?: number;
}

// ---- backend messages ----

/** AuthenticationOk. */
export function writeAuthOk(w: WireWriter): WireWriter {
  return w.begin(BackendCode.Authentication).int32(AuthCode.Ok).end();
}

/** AuthenticationCleartextPassword. */
export function writeAuthCleartext(w: WireWriter): WireWriter {
  return w.begin(BackendCode.Authentication).int32(AuthCode.CleartextPassword).end();
}

/** AuthenticationMD5Password with its 4-byte `salt`. */
export function writeAuthMd5Password(w: WireWriter, salt: Uint8Array): WireWriter {
  return w.begin(BackendCode.Authentication).int32(AuthCode.Md5Password).bytes(salt).end();
}

/** AuthenticationSASL listing `mechanisms` (e.g. `["SCRAM-SHA-256"]`). */
export function writeAuthSasl(w: WireWriter, mechanisms: string[]): WireWriter {
  w.begin(BackendCode.Authentication).int32(AuthCode.Sasl);
  for (let i = 0; i < mechanisms.length; i++) w.cstring(mechanisms[i]);
  return w.int8(0).end();
}

/** AuthenticationSASLContinue carrying `data`. */
export function writeAuthSaslContinue(w: WireWriter, data: Uint8Array): WireWriter {
  return w.begin(BackendCode.Authentication).int32(AuthCode.SaslContinue).bytes(data).end();
}

/** AuthenticationSASLFinal carrying `data`. */
export function writeAuthSaslFinal(w: WireWriter, data: Uint8Array): WireWriter {
  return w.begin(BackendCode.Authentication).int32(AuthCode.SaslFinal).bytes(data).end();
}

/** ParameterStatus. */
export function writeParameterStatus(w: WireWriter, name: string, value: string): WireWriter {
  return w.begin(BackendCode.ParameterStatus).cstring(name).cstring(value).end();
}

/** BackendKeyData (both written as int32; unsigned values wrap). */
export function writeBackendKeyData(w: WireWriter, pid: number, secret: number): WireWriter {
  return w.begin(BackendCode.BackendKeyData).int32(pid).int32(secret).end();
}

/** ReadyForQuery with a {@linkcode TxStatus} byte. */
export function writeReadyForQuery(w: WireWriter, status: number): WireWriter {
  return w.begin(BackendCode.ReadyForQuery).int8(status).end();
}

/** ErrorResponse with every field `err` has. */
export function writeErrorResponse(w: WireWriter, err: PgError): WireWriter {
  return writeErrorFields(w, BackendCode.ErrorResponse, err);
}

/** NoticeResponse with every field `err` has. */
export function writeNoticeResponse(w: WireWriter, err: PgError): WireWriter {
  return writeErrorFields(w, BackendCode.NoticeResponse, err);
}

function writeErrorFields(w: WireWriter, code: number, err: PgError): WireWriter {
  w.begin(code)
    .int8(ErrorField.Severity).cstring(err.severityLocalized ?? err.severity)
    .int8(ErrorField.SeverityNonLocalized).cstring(err.severity)
    .int8(ErrorField.Code).cstring(err.sqlstate)
    .int8(ErrorField.Message).cstring(err.message);
  field(w, ErrorField.Detail, err.detail);
  field(w, ErrorField.Hint, err.hint);
  if (err.position !== undefined) field(w, ErrorField.Position, String(err.position));
  if (err.internalPosition !== undefined) {
    field(w, ErrorField.InternalPosition, String(err.internalPosition));
  }
  field(w, ErrorField.InternalQuery, err.internalQuery);
  field(w, ErrorField.Where, err.where);
  field(w, ErrorField.Schema, err.schema);
  field(w, ErrorField.Table, err.table);
  field(w, ErrorField.Column, err.column);
  field(w, ErrorField.DataType, err.dataType);
  field(w, ErrorField.Constraint, err.constraint);
  field(w, ErrorField.File, err.file);
  if (err.line !== undefined) field(w, ErrorField.Line, String(err.line));
  field(w, ErrorField.Routine, err.routine);
  return w.int8(0).end();
}

function field(w: WireWriter, code: number, value: string | undefined): void {
  if (value !== undefined) w.int8(code).cstring(value);
}

/** RowDescription. */
export function writeRowDescription(w: WireWriter, fields: FieldDescription[]): WireWriter {
  w.begin(BackendCode.RowDescription).int16(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    w.cstring(f.name)
      .uint32(f.tableOid ?? 0)
      .int16(f.columnAttr ?? 0)
      .uint32(f.typeOid)
      .int16(f.typeSize ?? -1)
      .int32(f.typeModifier ?? -1)
      .int16(f.format ?? 0);
  }
  return w.end();
}

/** DataRow; strings are written as UTF-8, `null` as length -1. */
export function writeDataRow(w: WireWriter, values: (Uint8Array | string | null)[]): WireWriter {
  w.begin(BackendCode.DataRow).int16(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null) {
      w.int32(-1);
    } else if (typeof v === "string") {
      const at = w.length;
      w.int32(0).string(v);
      w.int32At(at, w.length - at - 4);
    } else {
      w.int32(v.length).bytes(v);
    }
  }
  return w.end();
}

/** CommandComplete with its tag (e.g. `SELECT 1`). */
export function writeCommandComplete(w: WireWriter, tag: string): WireWriter {
  return w.begin(BackendCode.CommandComplete).cstring(tag).end();
}

/** EmptyQueryResponse. */
export function writeEmptyQueryResponse(w: WireWriter): WireWriter {
  return w.begin(BackendCode.EmptyQueryResponse).end();
}

/** NegotiateProtocolVersion: newest supported minor version and unrecognized `_pq_.` options. */
export function writeNegotiateProtocolVersion(
  w: WireWriter,
  newestMinor: number,
  unrecognized: string[],
): WireWriter {
  w.begin(BackendCode.NegotiateProtocolVersion).int32(newestMinor).int32(unrecognized.length);
  for (let i = 0; i < unrecognized.length; i++) w.cstring(unrecognized[i]);
  return w.end();
}

// ---- frontend messages ----

/** StartupMessage for protocol 3.0 with `params` in insertion order. */
export function writeStartupMessage(w: WireWriter, params: Record<string, string>): WireWriter {
  w.beginUntyped().int32(PROTOCOL_VERSION_3);
  for (const key in params) w.cstring(key).cstring(params[key]);
  return w.int8(0).end();
}

/** SSLRequest. */
export function writeSslRequest(w: WireWriter): WireWriter {
  return w.beginUntyped().int32(SSL_REQUEST_CODE).end();
}

/** CancelRequest. */
export function writeCancelRequest(w: WireWriter, pid: number, secret: number): WireWriter {
  return w.beginUntyped().int32(CANCEL_REQUEST_CODE).int32(pid).int32(secret).end();
}

/** Query (simple query protocol). */
export function writeQuery(w: WireWriter, sql: string): WireWriter {
  return w.begin(FrontendCode.Query).cstring(sql).end();
}

/** SASLInitialResponse. */
export function writeSaslInitialResponse(
  w: WireWriter,
  mechanism: string,
  data: Uint8Array,
): WireWriter {
  return w.begin(FrontendCode.Password).cstring(mechanism).int32(data.length).bytes(data).end();
}

/** SASLResponse. */
export function writeSaslResponse(w: WireWriter, data: Uint8Array): WireWriter {
  return w.begin(FrontendCode.Password).bytes(data).end();
}

/** PasswordMessage (cleartext or md5 hash). */
export function writePassword(w: WireWriter, password: string): WireWriter {
  return w.begin(FrontendCode.Password).cstring(password).end();
}

/** Terminate. */
export function writeTerminate(w: WireWriter): WireWriter {
  return w.begin(FrontendCode.Terminate).end();
}

/** Sync. */
export function writeSync(w: WireWriter): WireWriter {
  return w.begin(FrontendCode.Sync).end();
}

/** Flush. */
export function writeFlush(w: WireWriter): WireWriter {
  return w.begin(FrontendCode.Flush).end();
}

// ---- constant frames (shared: never modify them) ----

function build(write: (w: WireWriter) => WireWriter): Uint8Array {
  return write(new WireWriter(16)).takeCopy();
}

/** ReadyForQuery 'I'. */
export const READY_IDLE: Uint8Array = build((w) => writeReadyForQuery(w, TxStatus.Idle));
/** ReadyForQuery 'T'. */
export const READY_IN_TX: Uint8Array = build((w) => writeReadyForQuery(w, TxStatus.InTransaction));
/** ReadyForQuery 'E'. */
export const READY_FAILED: Uint8Array = build((w) => writeReadyForQuery(w, TxStatus.Failed));
/** Sync. */
export const SYNC: Uint8Array = build(writeSync);
/** Flush. */
export const FLUSH: Uint8Array = build(writeFlush);
/** Terminate. */
export const TERMINATE: Uint8Array = build(writeTerminate);
