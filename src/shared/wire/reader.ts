/**
 * {@linkcode FrameReader}: one reused receive buffer per connection that cuts PostgreSQL v3
 * frames out of a byte stream without allocating per frame.
 *
 * @module
 */

import { protocolViolation } from "../errors/mod.ts";

const EMPTY = new Uint8Array(0);

/** Largest startup packet body Postgres accepts (`MAX_STARTUP_PACKET_LENGTH`). */
const MAX_STARTUP_PACKET_LENGTH = 10000;

/** Options of {@linkcode FrameReader}. */
export interface FrameReaderOptions {
  /** Initial buffer size in bytes. Default 16 KiB. */
  initialSize?: number;
  /**
   * Largest accepted declared frame length (the int32 length, which counts itself).
   * Default 64 MiB.
   */
  maxFrameSize?: number;
  /**
   * A tighter limit by frame type (Postgres allows 10,000 bytes for most message types): the
   * limit for the type byte `code`, at most `maxFrameSize`.
   */
  frameLimit?: (code: number) => number;
}

/**
 * Cuts frames from a connection's byte stream.
 *
 * Feed it either by reading straight into {@linkcode writable} and calling
 * {@linkcode commit}, or by {@linkcode push}ing chunks. Then call {@linkcode next} (typed
 * frames) or {@linkcode nextStartup} (untyped startup-phase frames) until it returns `false`.
 *
 * After `next()`/`nextStartup()` returns `true`, {@linkcode code}, {@linkcode frame} and
 * {@linkcode body} describe the frame. `frame` and `body` are views into the receive buffer
 * (created lazily, at most once per frame): they stay valid until the next `writable()`,
 * `push()` or `shrink()` call, which may move or overwrite the bytes. Copy (`slice()`) what
 * must outlive that.
 *
 * ```ts
 * import { FrameReader } from "./reader.ts";
 *
 * async function readLoop(conn: Deno.Conn, handle: (code: number, body: Uint8Array) => void) {
 *   const reader = new FrameReader();
 *   for (;;) {
 *     const n = await conn.read(reader.writable());
 *     if (n === null) break;
 *     reader.commit(n);
 *     while (reader.next()) handle(reader.code, reader.body);
 *   }
 * }
 * ```
 */
export class FrameReader {
  #buf: Uint8Array;
  #view: DataView;
  #start = 0; // first unconsumed byte
  #end = 0; // end of received bytes
  #need = 0; // total size of the pending frame when its header is known, else 0
  #maxFrameSize: number;
  #frameLimit?: (code: number) => number;
  #initialSize: number;
  #code = 0;
  #frameStart = 0;
  #bodyStart = 0;
  #frameEnd = 0;
  #frame: Uint8Array | null = null;
  #body: Uint8Array | null = null;

  constructor(opts?: FrameReaderOptions) {
    this.#initialSize = Math.max(16, opts?.initialSize ?? 16 * 1024);
    this.#maxFrameSize = opts?.maxFrameSize ?? 64 * 1024 * 1024;
    this.#frameLimit = opts?.frameLimit;
    this.#buf = new Uint8Array(this.#initialSize);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /** Type byte of the current frame; 0 for a startup-phase frame. */
  get code(): number {
    return this.#code;
  }

  /** The current frame including its header. Valid until the next `writable()`/`push()`. */
  get frame(): Uint8Array {
    return this.#frame ??= this.#buf.subarray(this.#frameStart, this.#frameEnd);
  }

  /** The current frame after its header. Valid until the next `writable()`/`push()`. */
  get body(): Uint8Array {
    return this.#body ??= this.#buf.subarray(this.#bodyStart, this.#frameEnd);
  }

  /**
   * Where the current frame starts in {@linkcode buffer}: with {@linkcode frameEnd}, locates a
   * frame without making a view of it (for runs of frames passed on whole).
   */
  get frameStart(): number {
    return this.#frameStart;
  }

  /** Where the current frame ends in {@linkcode buffer}. */
  get frameEnd(): number {
    return this.#frameEnd;
  }

  /** The receive buffer itself. Valid until the next `writable()`/`push()`/`shrink()`. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** Size of the receive buffer (for metrics and tests). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** The type byte of the next frame when at least one byte of it is buffered, else -1. */
  peekCode(): number {
    return this.#end > this.#start ? this.#buf[this.#start] : -1;
  }

  /**
   * Up to `n` bytes received and not yet cut into frames (the start of the next frame). Valid
   * until the next `writable()`, `push()` or `shrink()`.
   */
  peek(n: number): Uint8Array {
    return this.#buf.subarray(this.#start, Math.min(this.#end, this.#start + n));
  }

  /** Bytes received but not yet cut into frames. */
  buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Returns the free tail of the buffer, at least `minFree` bytes long, to read socket bytes
   * into; then call {@linkcode commit} with the number of bytes read. Compacts consumed bytes
   * first and grows (doubling) only when a pending frame or `minFree` does not fit.
   * Invalidates `frame`/`body`.
   */
  writable(minFree = 4096): Uint8Array {
    this.#reserve(minFree);
    return this.#buf.subarray(this.#end);
  }

  /** Records that `n` bytes were written into the view returned by {@linkcode writable}. */
  commit(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#buf.length - this.#end) {
      throw new RangeError(`commit(${n}): outside the writable region`);
    }
    this.#end += n;
  }

  /** Copies `chunk` into the buffer. Invalidates `frame`/`body`. */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    this.#reserve(n);
    this.#buf.set(chunk, this.#end);
    this.#end += n;
  }

  /**
   * Cuts the next complete typed frame (type byte, int32 length, body). Returns `false` when
   * no complete frame is buffered.
   *
   * @throws {PgError} FATAL 08P01 `invalid message length` when the declared length is below 4
   * or above `maxFrameSize`.
   */
  next(): boolean {
    const start = this.#start;
    const avail = this.#end - start;
    if (avail < 5) return this.#none(avail);
    const len = this.#view.getInt32(start + 1);
    const max = this.#frameLimit ? this.#frameLimit(this.#buf[start]) : this.#maxFrameSize;
    if (len < 4 || len > max) throw protocolViolation("invalid message length");
    const total = len + 1;
    if (avail < total) {
      this.#need = total;
      return false;
    }
    this.#cut(this.#buf[start], start, start + 5, start + total);
    return true;
  }

  /**
   * Cuts every complete typed frame buffered and returns them as one view (empty when there is
   * none): for passing frames on without looking at them. Leaves a partial frame buffered. The
   * view is valid until the next `writable()`/`push()`; `code`/`frame`/`body` describe the last
   * frame cut.
   *
   * @throws {PgError} as {@linkcode next} does.
   */
  takeFrames(): Uint8Array {
    const first = this.#start;
    while (this.next()) { /* cut */ }
    return this.#buf.subarray(first, this.#start);
  }

  /**
   * Cuts the next complete untyped startup-phase frame (int32 length, body): StartupMessage,
   * SSLRequest, GSSENCRequest or CancelRequest. Sets `code` to 0; `body` starts after the
   * length. Returns `false` when no complete frame is buffered.
   *
   * @throws {PgError} FATAL 08P01 `invalid length of startup packet` when the length is below 8
   * or the body is above 10000 bytes (Postgres's limits).
   */
  nextStartup(): boolean {
    const start = this.#start;
    const avail = this.#end - start;
    if (avail < 4) return this.#none(avail);
    const len = this.#view.getInt32(start);
    if (len < 8 || len - 4 > MAX_STARTUP_PACKET_LENGTH) {
      throw protocolViolation("invalid length of startup packet");
    }
    if (avail < len) {
      this.#need = len;
      return false;
    }
    this.#cut(0, start, start + 4, start + len);
    return true;
  }

  /**
   * Returns every unconsumed byte and marks it consumed (e.g. bytes that arrived after an
   * SSLRequest, to hand to TLS). The view is valid until the next `writable()`/`push()`.
   */
  takeBuffered(): Uint8Array {
    const out = this.#buf.subarray(this.#start, this.#end);
    this.#start = this.#end;
    this.#need = 0;
    return out;
  }

  /**
   * Gives back memory after a large frame: when the buffer has grown past its initial size,
   * moves the unconsumed bytes into a buffer of the smallest size that holds them (at least
   * the initial size). Invalidates `frame`/`body`.
   */
  shrink(): void {
    const pending = this.#end - this.#start;
    let size = this.#initialSize;
    while (size < pending) size *= 2;
    if (size < this.#buf.length) this.#replace(size);
  }

  // next() and nextStartup() never move bytes: a socket read may be in flight into the view
  // writable() returned while frames are cut. Only writable(), push() and shrink() move bytes.
  #none(_avail: number): false {
    this.#need = 0;
    return false;
  }

  #cut(code: number, frameStart: number, bodyStart: number, frameEnd: number): void {
    this.#code = code;
    this.#frameStart = frameStart;
    this.#bodyStart = bodyStart;
    this.#frameEnd = frameEnd;
    this.#frame = null;
    this.#body = null;
    this.#start = frameEnd;
    this.#need = 0;
  }

  /** Makes sure `minFree` bytes, and the whole pending frame, fit after `#start`. */
  #reserve(minFree: number): void {
    this.#forget();
    if (this.#start === this.#end) this.#start = this.#end = 0;
    const pending = this.#end - this.#start;
    const need = Math.max(this.#need, pending + minFree);
    const len = this.#buf.length;
    if (len - this.#start >= need) return;
    if (len >= need) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = pending;
      return;
    }
    let size = len * 2;
    while (size < need) size *= 2;
    const cap = Math.max(need, this.#maxFrameSize + 5 + minFree);
    this.#replace(size < cap ? size : cap);
  }

  #replace(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = next;
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.#forget();
  }

  /** Drops the current frame's views: its bytes may move. */
  #forget(): void {
    this.#frameStart = this.#bodyStart = this.#frameEnd = 0;
    this.#frame = EMPTY;
    this.#body = EMPTY;
  }
}
