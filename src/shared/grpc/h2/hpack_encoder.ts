/**
 * {@linkcode encodeHeaderBlock}: a stateless HPACK encoder. It emits indexed static entries and
 * literals without indexing (never Huffman), so it keeps no dynamic table and a block can be
 * built once and sent on every stream.
 *
 * @module
 */

import type { HeaderList } from "./hpack_decoder.ts";
import { staticIndex, staticNameIndex } from "./_static_table.ts";

/** Options of {@linkcode encodeHeaderBlock}. */
export interface EncodeHeaderBlockOptions {
  /**
   * Starts the block with a dynamic table size update to this size: owed once after the peer
   * lowers SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2).
   */
  tableSizeUpdate?: number;
}

/**
 * Encodes header fields: a field found whole in the static table as its index (`:method POST`
 * → `0x83`), any other as a literal without indexing, naming a static entry when one has the
 * name. Names and values are written as latin1 (one byte a char).
 *
 * @throws {RangeError} on a character above U+00FF.
 *
 * ```ts
 * import { encodeHeaderBlock } from "./hpack_encoder.ts";
 *
 * encodeHeaderBlock([[":status", "200"]]); // Uint8Array [0x88]
 * ```
 */
export function encodeHeaderBlock(
  headers: HeaderList,
  opts?: EncodeHeaderBlockOptions,
): Uint8Array {
  let size = 6;
  for (const [name, value] of headers) size += name.length + value.length + 12;
  const out = new Uint8Array(size);
  let pos = 0;
  const int = (n: number, prefixBits: number, pattern: number) => {
    const max = (1 << prefixBits) - 1;
    if (n < max) {
      out[pos++] = pattern | n;
      return;
    }
    out[pos++] = pattern | max;
    n -= max;
    while (n >= 128) {
      out[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[pos++] = n;
  };
  const str = (s: string) => {
    int(s.length, 7, 0); // H = 0: no Huffman
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) throw new RangeError(`header text must be latin1: ${JSON.stringify(s)}`);
      out[pos++] = c;
    }
  };
  if (opts?.tableSizeUpdate !== undefined) int(opts.tableSizeUpdate, 5, 0x20);
  for (const [name, value] of headers) {
    const index = staticIndex(name, value);
    if (index > 0) {
      int(index, 7, 0x80);
      continue;
    }
    const nameIndex = staticNameIndex(name);
    int(nameIndex, 4, 0x00); // 0000xxxx: literal without indexing
    if (nameIndex === 0) str(name);
    str(value);
  }
  return out.slice(0, pos);
}
