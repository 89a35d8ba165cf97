/**
 * The input errors of the keyspace room, worded and coded as Postgres's input functions word
 * them (`int8in`, `numeric_in`, `uuid_in`, `numeric_recv`, `pg_verify_mbstr`…).
 *
 * @module
 */

import { PgError, SqlState } from "../errors/mod.ts";

/** 22003, not (yet) in the shared SqlState table. */
const NUMERIC_VALUE_OUT_OF_RANGE = "22003";

/** 22P02 `invalid input syntax for type <type>: "<text>"`. */
export function invalidSyntax(typeName: string, text: string): PgError {
  return new PgError(
    SqlState.INVALID_TEXT_REPRESENTATION,
    `invalid input syntax for type ${typeName}: "${text}"`,
  );
}

/** 22003 `value "<text>" is out of range for type <type>`. */
export function outOfRange(typeName: string, text: string): PgError {
  return new PgError(
    NUMERIC_VALUE_OUT_OF_RANGE,
    `value "${text}" is out of range for type ${typeName}`,
  );
}

/** 22003 `value overflows numeric format`. */
export function numericOverflow(): PgError {
  return new PgError(NUMERIC_VALUE_OUT_OF_RANGE, "value overflows numeric format");
}

/** 22P03 with `message` (a malformed binary value). */
export function invalidBinary(message: string): PgError {
  return new PgError(SqlState.INVALID_BINARY_REPRESENTATION, message);
}

/** 08P01 `insufficient data left in message` (a binary value shorter than its type). */
export function insufficientData(): PgError {
  return new PgError(SqlState.PROTOCOL_VIOLATION, "insufficient data left in message");
}

/** 22P03 `incorrect binary data format` (a binary value longer than its type). */
export function incorrectBinaryFormat(): PgError {
  return invalidBinary("incorrect binary data format");
}

/** 22021 `invalid byte sequence for encoding "UTF8": <bytes>`. */
export function invalidUtf8(bytes: string): PgError {
  return new PgError(
    SqlState.CHARACTER_NOT_IN_REPERTOIRE,
    `invalid byte sequence for encoding "UTF8": ${bytes}`,
  );
}

/**
 * 22021 for a JS string with a lone UTF-16 surrogate: it has no UTF-8 form, so it cannot be a
 * value Postgres received (Postgres's own words for it, from U&'' escapes).
 */
export function loneSurrogate(): PgError {
  return new PgError(SqlState.CHARACTER_NOT_IN_REPERTOIRE, "invalid Unicode surrogate pair");
}
