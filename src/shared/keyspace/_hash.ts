/**
 * Postgres's 64-bit hash with seed 0 (`hash_bytes_extended` and `hash_bytes_uint32_extended` in
 * `src/common/hashfn.c`): Bob Jenkins' lookup3 mix and final steps over 32-bit words, the result
 * being `(b << 32) | c`. With seed 0 no seed mixing happens.
 *
 * Words are read little-endian, as on every platform Postgres runs on today (x86-64, arm64);
 * a big-endian server would hash differently, and that is not supported.
 *
 * The functions leave their result in {@linkcode hashHi} / {@linkcode hashLo} (signed int32
 * halves) so callers can mix in more bits (numeric's weight) before making one bigint.
 *
 * @module
 */

const INIT_UINT32 = (0x9e3779b9 + 4 + 3923095) | 0;

let a = 0;
let b = 0;
let c = 0;

/** The high 32 bits of the last hash (as a signed int32). */
export let hashHi = 0;
/** The low 32 bits of the last hash (as a signed int32). */
export let hashLo = 0;

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function mix(): void {
  a = (a - c) | 0;
  a ^= rot(c, 4);
  c = (c + b) | 0;
  b = (b - a) | 0;
  b ^= rot(a, 6);
  a = (a + c) | 0;
  c = (c - b) | 0;
  c ^= rot(b, 8);
  b = (b + a) | 0;
  a = (a - c) | 0;
  a ^= rot(c, 16);
  c = (c + b) | 0;
  b = (b - a) | 0;
  b ^= rot(a, 19);
  a = (a + c) | 0;
  c = (c - b) | 0;
  c ^= rot(b, 4);
  b = (b + a) | 0;
}

function final(): void {
  c ^= b;
  c = (c - rot(b, 14)) | 0;
  a ^= c;
  a = (a - rot(c, 11)) | 0;
  b ^= a;
  b = (b - rot(a, 25)) | 0;
  c ^= b;
  c = (c - rot(b, 16)) | 0;
  a ^= c;
  a = (a - rot(c, 4)) | 0;
  b ^= a;
  b = (b - rot(a, 14)) | 0;
  c ^= b;
  c = (c - rot(b, 24)) | 0;
}

function word(k: Uint8Array, i: number): number {
  return k[i] | (k[i + 1] << 8) | (k[i + 2] << 16) | (k[i + 3] << 24);
}

/** `hash_bytes_extended(k[0..len), len, 0)`; the result is in hashHi/hashLo. */
export function hashBytes(k: Uint8Array, len: number): void {
  a = b = c = (0x9e3779b9 + len + 3923095) | 0;
  let i = 0;
  let rest = len;
  while (rest >= 12) {
    a = (a + word(k, i)) | 0;
    b = (b + word(k, i + 4)) | 0;
    c = (c + word(k, i + 8)) | 0;
    mix();
    i += 12;
    rest -= 12;
  }
  // The last 0..11 bytes: a takes bytes 0-3, b bytes 4-7, c bytes 8-10 shifted up one byte
  // (the lowest byte of c is left for the length, which is already in the initial state).
  if (rest >= 9) {
    let t = k[i + 8] << 8;
    if (rest >= 10) t |= k[i + 9] << 16;
    if (rest === 11) t |= k[i + 10] << 24;
    c = (c + t) | 0;
  }
  if (rest >= 8) {
    b = (b + word(k, i + 4)) | 0;
  } else if (rest >= 5) {
    let t = k[i + 4];
    if (rest >= 6) t |= k[i + 5] << 8;
    if (rest === 7) t |= k[i + 6] << 16;
    b = (b + t) | 0;
  }
  if (rest >= 4) {
    a = (a + word(k, i)) | 0;
  } else if (rest >= 1) {
    let t = k[i];
    if (rest >= 2) t |= k[i + 1] << 8;
    if (rest === 3) t |= k[i + 2] << 16;
    a = (a + t) | 0;
  }
  final();
  hashHi = b;
  hashLo = c;
}

/** `hash_bytes_uint32_extended(k, 0)`; the result is in hashHi/hashLo. */
export function hashUint32(k: number): void {
  a = (INIT_UINT32 + k) | 0;
  b = c = INIT_UINT32;
  final();
  hashHi = b;
  hashLo = c;
}

// One 8-byte scratch seen both as two uint32 (little-endian: low word first) and as a uint64,
// so the result becomes a bigint in one step instead of three bigint operations.
const halves = new Uint32Array(2);
const whole = new BigUint64Array(halves.buffer);

/** hashHi/hashLo as one unsigned 64-bit bigint. */
export function hashResult(): bigint {
  halves[0] = hashLo;
  halves[1] = hashHi;
  return whole[0];
}

/** Xors the sign-extended int32 `w` into the last hash (numeric's `hash ^ weight`). */
export function hashXorInt32(w: number): void {
  hashLo ^= w;
  if (w < 0) hashHi = ~hashHi;
}
