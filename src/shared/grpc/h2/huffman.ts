/**
 * The HPACK Huffman code (RFC 7541 Appendix B): {@linkcode huffmanDecode} for the strings peers
 * send (nghttp2 and grpc-js Huffman-code most header strings) and {@linkcode huffmanEncode}.
 *
 * The code is canonical: codes of one length are consecutive and follow symbol order, so the
 * table below holds only each symbol's code length and the codes are rebuilt from it at load.
 *
 * @module
 */

import { ErrorCode } from "./constants.ts";
import { H2Error } from "./h2_error.ts";

/** Code length in bits of symbols 0…255 and of EOS (256), 16 a row. */
// deno-fmt-ignore
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, // 0x20 ' ' … '/'
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, // 0x30 '0' … '?'
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, // 0x40 '@' … 'O'
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, // 0x50 'P' … '_'
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, // 0x60 '`' … 'o'
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 0x70 'p' … DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
  30, // EOS
];

const EOS = 256;
const MAX_LENGTH = 30;

/** Code of each symbol (right-aligned). */
const CODES = new Uint32Array(257);
/** Symbols sorted by (length, symbol): the canonical order. */
const SORTED = new Uint16Array(257);
/** Per length: the first code, how many codes, and where they start in SORTED. */
const FIRST = new Int32Array(MAX_LENGTH + 1);
const COUNT = new Int32Array(MAX_LENGTH + 1);
const OFFSET = new Int32Array(MAX_LENGTH + 1);

{
  let k = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    OFFSET[len] = k;
    for (let sym = 0; sym <= EOS; sym++) if (LENGTHS[sym] === len) SORTED[k++] = sym;
    COUNT[len] = k - OFFSET[len];
  }
  let code = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    FIRST[len] = code;
    for (let i = 0; i < COUNT[len]; i++) CODES[SORTED[OFFSET[len] + i]] = code++;
    code <<= 1;
  }
}

let scratch = new Uint8Array(256);

/**
 * Decodes a Huffman-coded string into a new array.
 *
 * @throws {H2Error} COMPRESSION_ERROR on an EOS symbol, a code longer than 30 bits, or padding
 * longer than 7 bits or not all ones (RFC 7541 §5.2).
 */
export function huffmanDecode(src: Uint8Array): Uint8Array {
  // Every symbol is at least 5 bits long, so the output is at most 8/5 of the input.
  const max = Math.ceil((src.length * 8) / 5);
  if (scratch.length < max) scratch = new Uint8Array(max);
  const out = scratch;
  let n = 0;
  let code = 0;
  let len = 0;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i];
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      if (len < 5) continue;
      const idx = code - FIRST[len];
      if (idx >= 0 && idx < COUNT[len]) {
        const sym = SORTED[OFFSET[len] + idx];
        if (sym === EOS) throw huffmanError("EOS symbol in a string");
        out[n++] = sym;
        code = 0;
        len = 0;
      } else if (len >= MAX_LENGTH) {
        throw huffmanError("invalid code");
      }
    }
  }
  if (len > 7) throw huffmanError("padding longer than 7 bits");
  if (code !== (1 << len) - 1) throw huffmanError("padding is not a prefix of EOS");
  return out.slice(0, n);
}

/** Length in bytes of `src` Huffman-coded. */
export function huffmanEncodedLength(src: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < src.length; i++) bits += LENGTHS[src[i]];
  return (bits + 7) >> 3;
}

/** Huffman-codes `src`, padding the last byte with the most significant bits of EOS (ones). */
export function huffmanEncode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(src));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < src.length; i++) {
    const code = CODES[src[i]];
    for (let b = LENGTHS[src[i]] - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++bits === 8) {
        out[o++] = acc;
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out[o] = (acc << (8 - bits)) | ((1 << (8 - bits)) - 1);
  return out;
}

function huffmanError(what: string): H2Error {
  return new H2Error(ErrorCode.COMPRESSION_ERROR, `invalid Huffman-coded string: ${what}`);
}
