/**
 * Test-only byte builder: spells out expected frames field by field, independently of
 * {@linkcode WireWriter}, so codec tests compare against bytes written another way.
 *
 * @module
 */

import { concatBytes } from "./slab.ts";

const encoder = new TextEncoder();

/** Accumulates fields, then wraps them into a typed or untyped frame. */
export class TestBytes {
  #bytes: number[] = [];

  int8(n: number): this {
    this.#bytes.push(n & 0xff);
    return this;
  }

  int16(n: number): this {
    this.#bytes.push((n >> 8) & 0xff, n & 0xff);
    return this;
  }

  int32(n: number): this {
    this.#bytes.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    return this;
  }

  /** UTF-8 plus NUL. */
  cstring(s: string): this {
    return this.bytes(encoder.encode(s)).int8(0);
  }

  /** UTF-8, no NUL. */
  string(s: string): this {
    return this.bytes(encoder.encode(s));
  }

  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.#bytes.push(b[i]);
    return this;
  }

  /** The fields alone (a frame body). */
  body(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** `code`, int32 length (fields + 4), fields. */
  typed(code: number | string): Uint8Array {
    const c = typeof code === "string" ? code.charCodeAt(0) : code;
    return new TestBytes().int8(c).int32(this.#bytes.length + 4).bytes(this.#bytes).body();
  }

  /** int32 length (fields + 4), fields. */
  untyped(): Uint8Array {
    return new TestBytes().int32(this.#bytes.length + 4).bytes(this.#bytes).body();
  }
}

/** Concatenates byte arrays (tests only). */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/**
 * Copies `bytes` into a larger buffer at `offset` and returns the view (non-zero byteOffset).
 * The bytes before are 0xee and after are NUL, so reading outside the view shows up.
 */
export function offsetView(bytes: Uint8Array, offset = 7): Uint8Array {
  const big = new Uint8Array(offset + bytes.length + 8).fill(0xee, 0, offset);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.length);
}

/** A plain Uint8Array over a Node Buffer, so deepStrictEqual compares bytes only. */
export function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
