/**
 * {@linkcode HpackDecoder}: HPACK (RFC 7541) header block decoding, with the static and dynamic
 * tables, dynamic table size updates, every literal form and Huffman-coded strings.
 *
 * @module
 */

import { DEFAULT_HEADER_TABLE_SIZE, ErrorCode } from "./constants.ts";
import { H2Error } from "./h2_error.ts";
import { huffmanDecode } from "./huffman.ts";
import { STATIC_TABLE } from "./_static_table.ts";

/** Header fields in the order they came: `[name, value]`, both as latin1 (one char a byte). */
export type HeaderList = [name: string, value: string][];

/** Per RFC 7541 §4.1, each entry costs its name and value octets plus 32. */
const ENTRY_OVERHEAD = 32;
/** Largest decoded header list (octets counted as for the table), by default. */
const DEFAULT_MAX_LIST_SIZE = 1024 * 1024;

/**
 * Decodes header blocks of one connection direction (it owns that direction's dynamic table,
 * so every block the peer sends must go through it, in order, even for streams we refuse).
 *
 * Names and values are returned as latin1 strings (one character per octet), so nothing is lost
 * whatever bytes a peer sends; gRPC header values are ASCII anyway.
 *
 * ```ts
 * import { HpackDecoder } from "./hpack_decoder.ts";
 *
 * const d = new HpackDecoder();
 * console.log(d.decode(new Uint8Array([0x83, 0x86]))); // [[":method","POST"],[":scheme","http"]]
 * ```
 */
export class HpackDecoder {
  /** Dynamic table, oldest first: index 62 is the last element. */
  #table: [string, string][] = [];
  #size = 0;
  #maxSize: number;
  readonly #limit: number;
  readonly #maxListSize: number;

  /**
   * `limit`: the SETTINGS_HEADER_TABLE_SIZE we advertise (default 4096). `maxListSize`: the
   * largest decoded list accepted (default 1 MiB), so a small block of references to large
   * table entries cannot blow up.
   */
  constructor(limit = DEFAULT_HEADER_TABLE_SIZE, maxListSize = DEFAULT_MAX_LIST_SIZE) {
    this.#limit = limit;
    this.#maxSize = limit;
    this.#maxListSize = maxListSize;
  }

  /** Current size of the dynamic table (octets, as RFC 7541 counts them). */
  get tableSize(): number {
    return this.#size;
  }

  /** Current maximum size of the dynamic table, as last set by the peer's size update. */
  get maxTableSize(): number {
    return this.#maxSize;
  }

  /** Number of entries in the dynamic table. */
  get tableLength(): number {
    return this.#table.length;
  }

  /**
   * Decodes one complete header block (HEADERS plus its CONTINUATIONs, padding removed).
   *
   * @throws {H2Error} COMPRESSION_ERROR on any malformed input, ENHANCE_YOUR_CALM for a list
   * above `maxListSize`; the connection must then close.
   */
  decode(block: Uint8Array): HeaderList {
    const out: HeaderList = [];
    const r = new BlockReader(block);
    let listSize = 0;
    while (r.pos < block.length) {
      const b = block[r.pos];
      let name: string;
      let value: string;
      if (b & 0x80) { // 1xxxxxxx indexed field
        [name, value] = this.#entry(r.int(7));
      } else if (b & 0x40) { // 01xxxxxx literal with incremental indexing
        const index = r.int(6);
        name = index === 0 ? r.string() : this.#entry(index)[0];
        value = r.string();
        this.#add(name, value);
      } else if (b & 0x20) { // 001xxxxx dynamic table size update
        if (out.length > 0) throw compressionError("table size update after a header field");
        const size = r.int(5);
        if (size > this.#limit) {
          throw compressionError(`table size update to ${size} exceeds ${this.#limit}`);
        }
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else { // 0000xxxx without indexing, 0001xxxx never indexed
        const index = r.int(4);
        name = index === 0 ? r.string() : this.#entry(index)[0];
        value = r.string();
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.#maxListSize) {
        throw new H2Error(
          ErrorCode.ENHANCE_YOUR_CALM,
          `header list over ${this.#maxListSize} octets`,
        );
      }
      out.push([name, value]);
    }
    return out;
  }

  #entry(index: number): readonly [string, string] {
    if (index === 0) throw compressionError("index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const i = this.#table.length - 1 - (index - STATIC_TABLE.length - 1);
    if (i < 0) throw compressionError(`index ${index} beyond the dynamic table`);
    return this.#table[i];
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#maxSize) { // RFC 7541 §4.4: the table empties and the entry is not kept
      this.#table.length = 0;
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#table.push([name, value]);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit under the maximum size. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#size + room > this.#maxSize && drop < this.#table.length) {
      const [n, v] = this.#table[drop++];
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
    if (drop > 0) this.#table.splice(0, drop);
  }
}

/** Reads HPACK integers and strings off a block. */
class BlockReader {
  pos = 0;
  readonly #buf: Uint8Array;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  /** An integer with an N-bit prefix (RFC 7541 §5.1). */
  int(prefixBits: number): number {
    const buf = this.#buf;
    if (this.pos >= buf.length) throw compressionError("block truncated");
    const mask = (1 << prefixBits) - 1;
    let n = buf[this.pos++] & mask;
    if (n < mask) return n;
    let mul = 1;
    for (;;) {
      if (this.pos >= buf.length) throw compressionError("integer truncated");
      const b = buf[this.pos++];
      n += (b & 0x7f) * mul;
      if (n > 0x7fffffff) throw compressionError("integer too large");
      if ((b & 0x80) === 0) return n;
      mul *= 128;
    }
  }

  /** A string literal, Huffman-coded or not (RFC 7541 §5.2), as latin1. */
  string(): string {
    const buf = this.#buf;
    if (this.pos >= buf.length) throw compressionError("block truncated");
    const huffman = (buf[this.pos] & 0x80) !== 0;
    const len = this.int(7);
    if (len > buf.length - this.pos) throw compressionError("string truncated");
    const bytes = buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return latin1(huffman ? huffmanDecode(bytes) : bytes);
  }
}

/** Octets as a string of the same length (one char per byte). */
function latin1(bytes: Uint8Array): string {
  if (bytes.length < 64) {
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return s;
  }
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    // deno-lint-ignore no-explicit-any
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as any);
  }
  return s;
}

function compressionError(what: string): H2Error {
  return new H2Error(ErrorCode.COMPRESSION_ERROR, `invalid header block: ${what}`);
}
