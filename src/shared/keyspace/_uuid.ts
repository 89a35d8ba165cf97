/**
 * Text input of uuid as Postgres's `uuid_in` reads it: 32 hex digits (either case), optionally
 * in braces, with an optional hyphen after any group of four hex digits but the last. No spaces.
 *
 * @module
 */

import { invalidSyntax } from "./_errors.ts";

/** Value of each ASCII hex digit, -1 for every other code below 128 (no branches per digit). */
const HEX = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX[d.toString(16).charCodeAt(0)] = d;
  HEX[d.toString(16).toUpperCase().charCodeAt(0)] = d;
}

function hexValue(ch: number): number {
  return ch < 128 ? HEX[ch] : -1;
}

/** Parses `text` into the 16 bytes of `out`; throws 22P02 `invalid input syntax for type uuid`. */
export function parseUuid(text: string, out: Uint8Array): void {
  const len = text.length;
  let i = 0;
  const braces = text.charCodeAt(0) === 123; /* { */
  if (braces) i++;
  for (let b = 0; b < 16; b++) {
    if (i + 1 >= len) throw invalidSyntax("uuid", text);
    const hi = hexValue(text.charCodeAt(i));
    const lo = hexValue(text.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) throw invalidSyntax("uuid", text);
    out[b] = (hi << 4) | lo;
    i += 2;
    if ((b & 1) === 1 && b < 15 && text.charCodeAt(i) === 45 /* - */) i++;
  }
  if (braces) {
    if (text.charCodeAt(i) !== 125 /* } */) throw invalidSyntax("uuid", text);
    i++;
  }
  if (i !== len) throw invalidSyntax("uuid", text);
}
