/**
 * {@linkcode WireWriter}: one growable, reused output buffer per connection that builds
 * PostgreSQL v3 frames in place.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Strings shorter than this are tried byte-by-byte as ASCII before `encodeInto`. */
const ASCII_FAST_PATH = 64;

/**
 * Builds frames into one growable buffer: `begin()` reserves the header, the field methods
 * append the body, `end()` backfills the length. Several frames can be written back to back
 * and flushed with one write of {@linkcode view}.
 *
 * Integers are written big-endian and wrap modulo their width (`int16(65535)` writes
 * `ff ff`). Strings are written as UTF-8; callers must not pass strings with NUL characters to
 * `cstring()`.
 *
 * ```ts
 * import { FrontendCode } from "./codes.ts";
 * import { WireWriter } from "./writer.ts";
 *
 * async function sendQuery(conn: Deno.Conn, w: WireWriter, sql: string) {
 *   w.begin(FrontendCode.Query).cstring(sql).end();
 *   await conn.write(w.view());
 *   w.reset();
 * }
 * ```
 */
export class WireWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #msgStart = -1; // offset of the length field of the open message, -1 when none

  constructor(initialSize = 4096) {
    this.#buf = new Uint8Array(Math.max(16, initialSize));
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  /** Starts a typed message: writes `code` and reserves the int32 length. */
  begin(code: number): this {
    this.#open();
    this.#ensure(5);
    this.#buf[this.#pos] = code;
    this.#msgStart = this.#pos + 1;
    this.#pos += 5;
    return this;
  }

  /** Starts an untyped message (StartupMessage, SSLRequest, CancelRequest): reserves the length. */
  beginUntyped(): this {
    this.#open();
    this.#ensure(4);
    this.#msgStart = this.#pos;
    this.#pos += 4;
    return this;
  }

  /** Backfills the length of the open message (counting the length field itself). */
  end(): this {
    const at = this.#msgStart;
    if (at < 0) throw new Error("WireWriter.end() called without begin()");
    this.#view.setInt32(at, this.#pos - at);
    this.#msgStart = -1;
    return this;
  }

  int8(n: number): this {
    this.#ensure(1);
    this.#buf[this.#pos++] = n;
    return this;
  }

  int16(n: number): this {
    this.#ensure(2);
    this.#view.setInt16(this.#pos, n);
    this.#pos += 2;
    return this;
  }

  int32(n: number): this {
    this.#ensure(4);
    this.#view.setInt32(this.#pos, n);
    this.#pos += 4;
    return this;
  }

  uint32(n: number): this {
    this.#ensure(4);
    this.#view.setUint32(this.#pos, n);
    this.#pos += 4;
    return this;
  }

  /** Overwrites the int32 at `offset` (an earlier {@linkcode length}), e.g. a length prefix. */
  int32At(offset: number, n: number): this {
    if (offset < 0 || offset + 4 > this.#pos) throw new RangeError(`int32At(${offset}): outside`);
    this.#view.setInt32(offset, n);
    return this;
  }

  /** Appends `s` as UTF-8 followed by a NUL byte. */
  cstring(s: string): this {
    this.#string(s, 1);
    this.#buf[this.#pos++] = 0;
    return this;
  }

  /** Appends `s` as UTF-8 without a terminator. */
  string(s: string): this {
    this.#string(s, 0);
    return this;
  }

  /** Appends bytes to the open message. */
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  /** Appends already-framed bytes (e.g. a frame forwarded from a {@linkcode FrameReader}). */
  raw(b: Uint8Array): this {
    return this.bytes(b);
  }

  /** Everything written so far. Valid until the next write or `reset()`. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** Forgets everything written; keeps the buffer. */
  reset(): this {
    this.#pos = 0;
    this.#msgStart = -1;
    return this;
  }

  /** Copies out everything written and resets (for sinks that keep the bytes). */
  takeCopy(): Uint8Array {
    const out = this.#buf.slice(0, this.#pos);
    this.reset();
    return out;
  }

  #open(): void {
    if (this.#msgStart >= 0) throw new Error("WireWriter.begin() called before end()");
  }

  #string(s: string, extra: number): void {
    const n = s.length;
    this.#ensure(n * 3 + extra); // a UTF-16 code unit is at most 3 UTF-8 bytes
    const buf = this.#buf;
    const pos = this.#pos;
    if (n < ASCII_FAST_PATH) {
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[pos + i] = c;
      }
      if (i === n) {
        this.#pos = pos + n;
        return;
      }
    }
    this.#pos = pos + encoder.encodeInto(s, buf.subarray(pos)).written;
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
}
