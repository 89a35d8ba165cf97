/**
 * Keyspace ids: the unsigned 64-bit value of Postgres's own extended hash (seed 0) of a sharding
 * key, computed in TypeScript from the key's text or binary form, equal to what
 * `<fn>(value::type, 0)` returns on any shard (read as unsigned).
 *
 * Called once per routed statement, so buffers are reused: the result bigint is the only
 * allocation on the int, text and uuid paths.
 *
 * @module
 */

import { hashBytes, hashResult, hashUint32 } from "./_hash.ts";
import { intHi, intLo, parseInteger } from "./_int.ts";
import { numericBinaryId, numericTextId } from "./_numeric.ts";
import { checkUtf8 } from "./_utf8.ts";
import { parseUuid } from "./_uuid.ts";
import { incorrectBinaryFormat, insufficientData, invalidUtf8, loneSurrogate } from "./_errors.ts";
import type { ShardingType } from "./sharding_type.ts";

let textBytes = new Uint8Array(256);
const uuidBytes = new Uint8Array(16);

/** hashint8extended(v, 0) for v given as its two int32 halves. */
function int8Id(hi: number, lo: number): bigint {
  // An int8 that fits int32 hashes as that int4 would: its high half is all sign bits, which
  // the xor below cancels.
  hashUint32(lo ^ (hi >= 0 ? hi : ~hi));
  return hashResult();
}

/**
 * hashtextextended(text, 0): the hash of the UTF-8 bytes. One pass encodes (into a reused
 * buffer) and rejects what cannot reach Postgres as UTF-8: NUL, and lone surrogates.
 */
function textId(text: string): bigint {
  const len = text.length;
  if (textBytes.length < 3 * len) textBytes = new Uint8Array(Math.max(6 * len, 256));
  const out = textBytes;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const ch = text.charCodeAt(i);
    if (ch < 0x80) {
      if (ch === 0) throw invalidUtf8("0x00");
      out[n++] = ch;
    } else if (ch < 0x800) {
      out[n++] = 0xc0 | (ch >> 6);
      out[n++] = 0x80 | (ch & 0x3f);
    } else if (ch < 0xd800 || ch > 0xdfff) {
      out[n++] = 0xe0 | (ch >> 12);
      out[n++] = 0x80 | ((ch >> 6) & 0x3f);
      out[n++] = 0x80 | (ch & 0x3f);
    } else {
      const low = text.charCodeAt(i + 1); // NaN past the end
      if (ch > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) throw loneSurrogate();
      const cp = 0x10000 + ((ch - 0xd800) << 10) + (low - 0xdc00);
      out[n++] = 0xf0 | (cp >> 18);
      out[n++] = 0x80 | ((cp >> 12) & 0x3f);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
      i++;
    }
  }
  hashBytes(out, n);
  return hashResult();
}

/**
 * The keyspace id (unsigned 64-bit, as bigint) of a value given in its text form (a SQL
 * literal's text or a text-format parameter), equal to Postgres's `<fn>(value::type, 0)` read as
 * unsigned. Throws a PgError with SQLSTATE 22P02 and Postgres's wording (e.g.
 * `invalid input syntax for type bigint: "abc"`, `invalid input syntax for type uuid: "x"`) for
 * text that is not a valid value; out-of-range ints: 22003
 * `value "…" is out of range for type bigint`; numerics beyond the numeric format: 22003
 * `value overflows numeric format`; text with a NUL or a lone surrogate: 22021.
 *
 * Numeric accepts what `numeric_in` accepts, including `NaN` and `Infinity`/`inf` in any case
 * (all three hash to 0); equal numerics hash alike whatever their scale (1.5, 1.50, 15e-1), and
 * so do `x` and `-x` (Postgres does not hash the sign).
 */
export function keyspaceId(type: ShardingType, text: string): bigint {
  switch (type) {
    case "int8":
      parseInteger(text, 64, "bigint");
      return int8Id(intHi, intLo);
    case "int4":
      parseInteger(text, 32, "integer");
      return int8Id(intHi, intLo);
    case "int2":
      parseInteger(text, 16, "smallint");
      return int8Id(intHi, intLo);
    case "numeric":
      return numericTextId(text);
    case "text":
      return textId(text);
    case "uuid":
      parseUuid(text, uuidBytes);
      hashBytes(uuidBytes, 16);
      return hashResult();
  }
  throw new Error(`unsupported sharding type "${type}"`);
}

function checkLength(bytes: Uint8Array, size: number): void {
  if (bytes.length < size) throw insufficientData();
  if (bytes.length > size) throw incorrectBinaryFormat();
}

function int32At(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
}

/**
 * The same for a binary-format parameter (int2/int4/int8 big-endian, uuid 16 bytes, text UTF-8,
 * numeric in Postgres's binary numeric format). A value of the wrong length throws 08P01
 * `insufficient data left in message` (too short) or 22P03 `incorrect binary data format` (too
 * long); a malformed numeric 22P03 (`invalid digit in external "numeric" value`…); text that is
 * not valid UTF-8 22021 `invalid byte sequence for encoding "UTF8": 0x…`. `bytes` is only read
 * during the call.
 */
export function keyspaceIdBinary(type: ShardingType, bytes: Uint8Array): bigint {
  switch (type) {
    case "int8":
      checkLength(bytes, 8);
      return int8Id(int32At(bytes, 0), int32At(bytes, 4));
    case "int4": {
      checkLength(bytes, 4);
      const v = int32At(bytes, 0);
      return int8Id(v >> 31, v);
    }
    case "int2": {
      checkLength(bytes, 2);
      const v = ((bytes[0] << 24) | (bytes[1] << 16)) >> 16;
      return int8Id(v >> 31, v);
    }
    case "numeric":
      return numericBinaryId(bytes);
    case "text":
      checkUtf8(bytes);
      hashBytes(bytes, bytes.length);
      return hashResult();
    case "uuid":
      checkLength(bytes, 16);
      hashBytes(bytes, 16);
      return hashResult();
  }
  throw new Error(`unsupported sharding type "${type}"`);
}
