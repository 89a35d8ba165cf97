/**
 * {@linkcode H2FrameReader}: one reused receive buffer per connection that cuts HTTP/2 frames
 * out of a byte stream synchronously, without allocating per frame.
 *
 * @module
 */

import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  FRAME_HEADER_SIZE,
  MAX_FRAME_SIZE_LIMIT,
} from "./constants.ts";
import { getUint24, getUint32 } from "./frame_header.ts";
import { H2Error } from "./h2_error.ts";

const EMPTY = new Uint8Array(0);

/** Options of {@linkcode H2FrameReader}. */
export interface H2FrameReaderOptions {
  /** Initial buffer size in bytes. Default 64 KiB. */
  initialSize?: number;
  /**
   * Largest accepted frame payload: the SETTINGS_MAX_FRAME_SIZE we advertise. Default 16 KiB.
   * The buffer never grows past it plus a frame header and one read's worth.
   */
  maxFrameSize?: number;
}

/**
 * Cuts frames from a connection's byte stream.
 *
 * Read straight into {@linkcode writable} and call {@linkcode commit} (or {@linkcode push}
 * chunks), then call {@linkcode next} until it returns `false`. A frame split over several
 * reads is kept until it is whole; many frames in one read are cut one by one.
 *
 * After `next()` returns `true`, {@linkcode type}, {@linkcode flags}, {@linkcode streamId} and
 * {@linkcode length} describe the frame, and its payload is `buffer[payloadStart, payloadEnd)`
 * (or the lazily made view {@linkcode payload}). The payload stays valid until the next
 * `writable()`, `push()` or `shrink()`, which may move or overwrite the bytes.
 *
 * ```ts
 * import { H2FrameReader } from "./frame_reader.ts";
 *
 * async function readLoop(conn: Deno.Conn, onFrame: (r: H2FrameReader) => void) {
 *   const reader = new H2FrameReader({ maxFrameSize: 1 << 20 });
 *   for (;;) {
 *     const n = await conn.read(reader.writable());
 *     if (n === null) break;
 *     reader.commit(n);
 *     while (reader.next()) onFrame(reader);
 *   }
 * }
 * ```
 */
export class H2FrameReader {
  #buf: Uint8Array;
  #start = 0; // first unconsumed byte
  #end = 0; // end of received bytes
  #need = 0; // total size of the pending frame when its header is known, else 0
  readonly #maxFrameSize: number;
  readonly #initialSize: number;
  #payload: Uint8Array | null = null;

  /** Type of the current frame (`FrameType`). */
  type = 0;
  /** Flags of the current frame (`FrameFlag` bits). */
  flags = 0;
  /** Stream id of the current frame. */
  streamId = 0;
  /** Payload length of the current frame. */
  length = 0;
  /** Where the current frame's payload starts in {@linkcode buffer}. */
  payloadStart = 0;
  /** Where the current frame's payload ends in {@linkcode buffer}. */
  payloadEnd = 0;

  constructor(opts?: H2FrameReaderOptions) {
    this.#maxFrameSize = Math.min(
      MAX_FRAME_SIZE_LIMIT,
      Math.max(DEFAULT_MAX_FRAME_SIZE, opts?.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE),
    );
    this.#initialSize = Math.max(1024, opts?.initialSize ?? 64 * 1024);
    this.#buf = new Uint8Array(this.#initialSize);
  }

  /** The receive buffer itself. Valid until the next `writable()`/`push()`/`shrink()`. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** The current frame's payload (padding included). Valid until the next `writable()`/`push()`. */
  get payload(): Uint8Array {
    return this.#payload ??= this.#buf.subarray(this.payloadStart, this.payloadEnd);
  }

  /** Size of the receive buffer (for metrics and tests). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Largest accepted frame payload. */
  get maxFrameSize(): number {
    return this.#maxFrameSize;
  }

  /** Bytes received but not yet cut into frames. */
  buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Describes a frame cut short (for the error when the socket ends): `"5 of 9 header bytes"`,
   * `"100 of 16393 bytes of a DATA frame"`; `""` when no byte is pending.
   */
  describePartial(): string {
    const avail = this.#end - this.#start;
    if (avail === 0) return "";
    if (avail < FRAME_HEADER_SIZE) return `${avail} of ${FRAME_HEADER_SIZE} header bytes`;
    const total = FRAME_HEADER_SIZE + getUint24(this.#buf, this.#start);
    return `${avail} of ${total} bytes of a frame of type ${this.#buf[this.#start + 3]}`;
  }

  /**
   * The free tail of the buffer, at least `minFree` bytes long, to read socket bytes into;
   * then call {@linkcode commit}. Compacts consumed bytes first and grows (doubling, up to the
   * cap) only when a pending frame or `minFree` does not fit. Invalidates `payload`.
   */
  writable(minFree = 16 * 1024): Uint8Array {
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

  /** Copies `chunk` into the buffer. Invalidates `payload`. */
  push(chunk: Uint8Array): void {
    this.#reserve(chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Consumes the client connection preface (server side). Returns `false` until 24 bytes are
   * buffered.
   *
   * @throws {H2Error} PROTOCOL_ERROR as soon as a received byte differs from the preface (an
   * HTTP/1.1 request, TLS, garbage).
   */
  preface(): boolean {
    const avail = this.#end - this.#start;
    const n = avail < CLIENT_PREFACE.length ? avail : CLIENT_PREFACE.length;
    for (let i = 0; i < n; i++) {
      if (this.#buf[this.#start + i] !== CLIENT_PREFACE[i]) {
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, "invalid connection preface");
      }
    }
    if (n < CLIENT_PREFACE.length) return false;
    this.#start += CLIENT_PREFACE.length;
    return true;
  }

  /**
   * Cuts the next complete frame. Returns `false` when no complete frame is buffered.
   *
   * @throws {H2Error} FRAME_SIZE_ERROR when the declared length exceeds `maxFrameSize`.
   */
  next(): boolean {
    const start = this.#start;
    const avail = this.#end - start;
    if (avail < FRAME_HEADER_SIZE) {
      this.#need = 0;
      return false;
    }
    const buf = this.#buf;
    const length = getUint24(buf, start);
    if (length > this.#maxFrameSize) {
      throw new H2Error(
        ErrorCode.FRAME_SIZE_ERROR,
        `frame of ${length} bytes exceeds the maximum of ${this.#maxFrameSize}`,
      );
    }
    const total = FRAME_HEADER_SIZE + length;
    if (avail < total) {
      this.#need = total;
      return false;
    }
    this.type = buf[start + 3];
    this.flags = buf[start + 4];
    this.streamId = getUint32(buf, start + 5) & 0x7fffffff;
    this.length = length;
    this.payloadStart = start + FRAME_HEADER_SIZE;
    this.payloadEnd = start + total;
    this.#payload = null;
    this.#start = start + total;
    this.#need = 0;
    return true;
  }

  /**
   * Gives back memory after a large frame: when the buffer has grown past its initial size,
   * moves the unconsumed bytes into the smallest buffer (at least the initial size) that holds
   * them. Invalidates `payload`.
   */
  shrink(): void {
    const pending = this.#end - this.#start;
    let size = this.#initialSize;
    while (size < pending) size *= 2;
    if (size < this.#buf.length) this.#replace(size);
  }

  // next() never moves bytes: only writable(), push() and shrink() do.
  #reserve(minFree: number): void {
    this.#payload = EMPTY;
    this.payloadStart = this.payloadEnd = 0;
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
    const cap = Math.max(need, FRAME_HEADER_SIZE + this.#maxFrameSize + minFree);
    this.#replace(size < cap ? size : cap);
  }

  #replace(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = next;
    this.#payload = EMPTY;
    this.payloadStart = this.payloadEnd = 0;
  }
}
