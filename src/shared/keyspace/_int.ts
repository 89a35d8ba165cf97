/**
 * Text input of int2/int4/int8 as Postgres 15's `pg_strtoint16/32/64` read it: optional
 * whitespace, an optional sign, one or more decimal digits, optional whitespace; nothing else
 * (no `0x`, no underscores). An overflow found while reading the digits is reported as out of
 * range even when junk follows, as Postgres does.
 *
 * The value is left in {@linkcode intHi} / {@linkcode intLo}: the two signed int32 halves of the
 * 64-bit two's complement value. No bigint is made on the way.
 *
 * @module
 */

import { invalidSyntax, outOfRange } from "./_errors.ts";

/** High 32 bits of the last parsed value (signed int32). */
export let intHi = 0;
/** Low 32 bits of the last parsed value (signed int32). */
export let intLo = 0;

const TWO_32 = 4294967296;
const TWO_31 = 2147483648;
/** Below this a double can take one more digit exactly (and stay below 2^63). */
const SMALL_LIMIT = 1e14;

/** Whether `ch` is a space in C's `isspace` sense (space, \t, \n, \v, \f, \r). */
export function isSpace(ch: number): boolean {
  return ch === 32 || (ch >= 9 && ch <= 13);
}

/**
 * Parses `text` as an integer of `bits` (16, 32 or 64) bits; `typeName` is Postgres's name of the
 * type for messages ("smallint", "integer", "bigint"). Throws 22P02 or 22003.
 */
export function parseInteger(text: string, bits: 16 | 32 | 64, typeName: string): void {
  const len = text.length;
  let i = 0;
  while (i < len && isSpace(text.charCodeAt(i))) i++;
  let neg = false;
  const sign = text.charCodeAt(i);
  if (sign === 45 /* - */) {
    neg = true;
    i++;
  } else if (sign === 43 /* + */) {
    i++;
  }
  const start = i;
  // Up to 15 digits fit a double exactly; the rest goes on as two uint32 words in doubles
  // (each step stays below 2^36: exact).
  let n = 0;
  while (i < len && n < SMALL_LIMIT) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
    i++;
  }
  let hi = Math.floor(n / TWO_32);
  let lo = n - hi * TWO_32;
  while (i < len) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    const next = lo * 10 + d;
    const carry = Math.floor(next / TWO_32);
    lo = next - carry * TWO_32;
    hi = hi * 10 + carry;
    // Past 2^63 (2^63 itself only for a negative int8): out of range, whatever follows.
    if (hi >= TWO_31 && (hi > TWO_31 || lo > 0 || !neg || bits !== 64)) {
      throw outOfRange(typeName, text);
    }
    i++;
  }
  if (i === start) throw invalidSyntax(typeName, text);
  if (bits !== 64) {
    const limit = bits === 32 ? TWO_31 : 32768;
    if (hi > 0 || lo > (neg ? limit : limit - 1)) throw outOfRange(typeName, text);
  }
  while (i < len && isSpace(text.charCodeAt(i))) i++;
  if (i !== len) throw invalidSyntax(typeName, text);
  if (!neg) {
    intHi = hi | 0;
    intLo = lo | 0;
  } else if (lo === 0) {
    intHi = -hi | 0;
    intLo = 0;
  } else {
    intHi = ~hi;
    intLo = -lo | 0;
  }
}
