/**
 * Keyspace ids of numeric values: Postgres 15's `hash_numeric_extended(v, 0)` over what
 * `numeric_in` (text) or `numeric_recv` (binary) would build.
 *
 * How Postgres hashes a numeric: the value is stored as base-10000 digits (int16, native byte
 * order) with a weight (the power of 10000 of the first digit), stripped of leading and trailing
 * zero digits. The hash is `hash_bytes_extended` over those digit bytes, xor'd with the weight
 * sign-extended to 64 bits. Scale and sign are not hashed (1.5, 1.50 and -1.5 hash alike). Zero
 * hashes to `seed - 1` (all ones) and NaN and ±Infinity to the seed (0).
 *
 * @module
 */

import { hashBytes, hashResult, hashXorInt32 } from "./_hash.ts";
import {
  incorrectBinaryFormat,
  insufficientData,
  invalidBinary,
  invalidSyntax,
  numericOverflow,
} from "./_errors.ts";
import { isSpace } from "./_int.ts";

const ZERO_ID = 0xffffffffffffffffn;
const SPECIAL_ID = 0n;
/** Limits of the stored format: int16 weight, 14-bit display scale. */
const WEIGHT_MIN = -32768;
const WEIGHT_MAX = 32767;
const DSCALE_MAX = 0x3fff;
/** strtol's result beyond which numeric_in reports an overflow (INT_MAX / 2). */
const EXPONENT_LIMIT = 1073741823;
const SPECIALS = ["nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"];
const ROUND_POWERS = [0, 1000, 100, 10];
const SIGN_POS = 0x0000;
const SIGN_NEG = 0x4000;
const SIGN_NAN = 0xc000;
const SIGN_PINF = 0xd000;
const SIGN_NINF = 0xf000;

/** Decimal digits of the value being parsed (reused). */
let decimal = new Uint8Array(64);
/** Base-10000 digits of the value being hashed (reused). */
let nbase = new Uint16Array(32);
/** The digits as little-endian int16 bytes, what Postgres hashes (reused). */
let digitBytes = new Uint8Array(64);

function startsWithLower(text: string, at: number, word: string): boolean {
  if (text.length - at < word.length) return false;
  for (let j = 0; j < word.length; j++) {
    let ch = text.charCodeAt(at + j);
    if (ch >= 65 && ch <= 90) ch += 32;
    if (ch !== word.charCodeAt(j)) return false;
  }
  return true;
}

function isDigitAt(text: string, i: number): boolean {
  const ch = text.charCodeAt(i); // NaN past the end
  return ch >= 48 && ch <= 57;
}

/** Hashes nbase[0..n) (already stripped) with `weight`. */
function hashDigits(n: number, weight: number): bigint {
  if (digitBytes.length < 2 * n) digitBytes = new Uint8Array(4 * n);
  for (let g = 0; g < n; g++) {
    const v = nbase[g];
    digitBytes[2 * g] = v & 0xff;
    digitBytes[2 * g + 1] = v >>> 8;
  }
  hashBytes(digitBytes, 2 * n);
  hashXorInt32(weight);
  return hashResult();
}

/** The keyspace id of numeric text, as `hash_numeric_extended(text::numeric, 0)`. */
export function numericTextId(text: string): bigint {
  const len = text.length;
  let i = 0;
  while (i < len && isSpace(text.charCodeAt(i))) i++;
  for (const word of SPECIALS) {
    if (startsWithLower(text, i, word)) {
      i += word.length;
      while (i < len && isSpace(text.charCodeAt(i))) i++;
      if (i !== len) throw invalidSyntax("numeric", text);
      return SPECIAL_ID;
    }
  }

  const sign = text.charCodeAt(i);
  if (sign === 43 /* + */ || sign === 45 /* - */) i++;
  let haveDp = false;
  if (text.charCodeAt(i) === 46 /* . */) {
    haveDp = true;
    i++;
  }
  if (!isDigitAt(text, i)) throw invalidSyntax("numeric", text);

  if (decimal.length < len) decimal = new Uint8Array(2 * len);
  let nd = 0;
  let dweight = -1; // decimal exponent of decimal[0]
  let dscale = 0;
  while (i < len) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57) {
      decimal[nd++] = ch - 48;
      if (haveDp) dscale++;
      else dweight++;
    } else if (ch === 46) {
      if (haveDp) throw invalidSyntax("numeric", text);
      haveDp = true;
    } else {
      break;
    }
    i++;
  }

  if (i < len && (text.charCodeAt(i) | 0x20) === 101 /* e, E */) {
    // The exponent is read with strtol: it skips spaces and takes an optional sign.
    let j = i + 1;
    while (j < len && isSpace(text.charCodeAt(j))) j++;
    let negExp = false;
    const expSign = text.charCodeAt(j);
    if (expSign === 43 || expSign === 45) {
      negExp = expSign === 45;
      j++;
    }
    if (!isDigitAt(text, j)) throw invalidSyntax("numeric", text);
    let exponent = 0;
    while (isDigitAt(text, j)) {
      if (exponent < EXPONENT_LIMIT) exponent = exponent * 10 + text.charCodeAt(j) - 48;
      j++;
    }
    if (exponent >= EXPONENT_LIMIT) throw numericOverflow();
    if (negExp) exponent = -exponent;
    dweight += exponent;
    dscale -= exponent;
    if (dscale < 0) dscale = 0;
    i = j;
  }

  while (i < len && isSpace(text.charCodeAt(i))) i++;
  if (i !== len) throw invalidSyntax("numeric", text);

  let first = 0;
  while (first < nd && decimal[first] === 0) first++;
  if (first === nd) {
    if (dscale > DSCALE_MAX) throw numericOverflow();
    return ZERO_ID;
  }
  let last = nd - 1;
  while (decimal[last] === 0) last--;
  dweight -= first;

  // Align the decimal digits on base-10000 digits: `offset` zeros go before the first one.
  const weight = Math.floor(dweight / 4);
  const offset = (weight + 1) * 4 - (dweight + 1);
  if (weight < WEIGHT_MIN || weight > WEIGHT_MAX || dscale > DSCALE_MAX) throw numericOverflow();
  const n = Math.ceil((offset + last - first + 1) / 4);
  if (nbase.length < n) nbase = new Uint16Array(2 * n);
  let k = first - offset;
  for (let g = 0; g < n; g++) {
    let v = 0;
    for (let m = 0; m < 4; m++, k++) v = v * 10 + (k >= first && k <= last ? decimal[k] : 0);
    nbase[g] = v;
  }
  return hashDigits(n, weight);
}

/**
 * The keyspace id of a numeric in Postgres's binary format (int16s: ndigits, weight, sign,
 * dscale, digits), as `numeric_recv` reads it: digits hidden by dscale are truncated away.
 */
export function numericBinaryId(bytes: Uint8Array): bigint {
  const len = bytes.length;
  if (len < 6) throw insufficientData();
  const ndigits = (bytes[0] << 8) | bytes[1];
  let weight = ((bytes[2] << 24) | (bytes[3] << 16)) >> 16;
  const sign = (bytes[4] << 8) | bytes[5];
  if (
    sign !== SIGN_POS && sign !== SIGN_NEG && sign !== SIGN_NAN && sign !== SIGN_PINF &&
    sign !== SIGN_NINF
  ) {
    throw invalidBinary('invalid sign in external "numeric" value');
  }
  if (len < 8) throw insufficientData();
  const dscale = (bytes[6] << 8) | bytes[7];
  if (dscale > DSCALE_MAX) throw invalidBinary('invalid scale in external "numeric" value');
  if (nbase.length < ndigits) nbase = new Uint16Array(2 * ndigits);
  for (let g = 0, at = 8; g < ndigits; g++, at += 2) {
    if (at + 2 > len) throw insufficientData();
    const d = (bytes[at] << 8) | bytes[at + 1];
    if (d >= 10000) throw invalidBinary('invalid digit in external "numeric" value');
    nbase[g] = d;
  }
  if (len > 8 + 2 * ndigits) throw incorrectBinaryFormat();
  if (sign !== SIGN_POS && sign !== SIGN_NEG) return SPECIAL_ID;

  // trunc_var(value, dscale): drop the digits beyond dscale decimal places.
  let n = ndigits;
  const keep = (weight + 1) * 4 + dscale;
  if (keep <= 0) return ZERO_ID;
  const want = Math.ceil(keep / 4);
  if (want <= n) {
    n = want;
    const partial = keep % 4;
    if (partial > 0) nbase[n - 1] -= nbase[n - 1] % ROUND_POWERS[partial];
  }
  // Strip zero digits at both ends, as make_result does.
  let first = 0;
  while (first < n && nbase[first] === 0) first++;
  if (first === n) return ZERO_ID;
  weight -= first;
  while (nbase[n - 1] === 0) n--;
  if (weight < WEIGHT_MIN) throw numericOverflow();
  if (first > 0) nbase.copyWithin(0, first, n);
  return hashDigits(n - first, weight);
}
