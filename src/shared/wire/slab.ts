/**
 * {@linkcode Slab}: small byte arrays carved out of one larger buffer.
 *
 * Every `new Uint8Array(n)` allocates a fresh ArrayBuffer, which in V8 means a call into the
 * allocator and external-memory bookkeeping: on the data path (a copy of every request, a
 * buffer for every data-plane message) that cost more than the copying. A slab hands out views
 * of a shared chunk instead and never reuses a region: a chunk is dropped when full and freed by
 * the GC once no view of it is left.
 *
 * @module
 */

/** Chunks are this big; requests above a quarter of it get their own buffer. */
const CHUNK = 64 * 1024;

/** A bump allocator of byte arrays. Views it returns are never handed out twice. */
export class Slab {
  #chunk = new Uint8Array(0);
  #pos = 0;

  /** A zeroed view of `n` bytes. */
  alloc(n: number): Uint8Array {
    if (n > CHUNK / 4) return new Uint8Array(n);
    if (this.#pos + n > this.#chunk.length) {
      this.#chunk = new Uint8Array(CHUNK);
      this.#pos = 0;
    }
    const start = this.#pos;
    // Keep views 8-byte aligned, so that a DataView or wider typed array over one stays cheap.
    this.#pos = (start + n + 7) & ~7;
    return this.#chunk.subarray(start, start + n);
  }

  /** A copy of `bytes` in the slab. */
  copy(bytes: Uint8Array): Uint8Array {
    const out = this.alloc(bytes.length);
    out.set(bytes);
    return out;
  }
}

/** The bytes of `parts`, one after the other, in one new array. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The process's slab for the data path (JS is single-threaded: one is enough). */
export const slab: Slab = new Slab();
