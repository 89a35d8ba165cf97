/**
 * {@linkcode FrameWriter}: one growable, reused output buffer that builds HTTP/2 frames in place,
 * merging consecutive DATA of one stream into as few frames as the peer's frame size allows.
 *
 * @module
 */

import { CLIENT_PREFACE, FRAME_HEADER_SIZE, FrameFlag, FrameType } from "./constants.ts";
import { setUint24, setUint32 } from "./frame_header.ts";

const encoder = new TextEncoder();
/** Scratch for the 5-byte gRPC message prefix; copied into the buffer at once. */
const PREFIX = new Uint8Array(5);

/**
 * Builds frames into one growable buffer; write many, flush {@linkcode view} once, then
 * {@linkcode reset}.
 *
 * DATA written by {@linkcode data} or {@linkcode message} extends the last frame when that frame
 * is DATA of the same stream, so a batch of messages goes out as one frame (or as few as
 * `maxFrameSize` allows). Nothing here checks flow control: the caller spends the windows.
 *
 * ```ts
 * import { FrameWriter } from "./frame_writer.ts";
 *
 * const w = new FrameWriter();
 * w.message(1, new Uint8Array([1, 2, 3]), 16_384);
 * w.message(1, new Uint8Array([4]), 16_384); // same DATA frame: 9 + 8 + 6 bytes in all
 * console.log(w.length); // 23
 * ```
 */
export class FrameWriter {
  #buf: Uint8Array;
  #pos = 0;
  #dataAt = -1; // header offset of the last frame when it is DATA (and open for more), else -1
  #dataStream = 0;
  readonly #initialSize: number;

  constructor(initialSize = 64 * 1024) {
    this.#initialSize = Math.max(64, initialSize);
    this.#buf = new Uint8Array(this.#initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  /** The frames written so far. Valid until the next write or `reset()`. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /**
   * Forgets what was written; gives memory back when a large batch made the buffer grow past
   * 16 times its initial size.
   */
  reset(): void {
    this.#pos = 0;
    this.#dataAt = -1;
    if (this.#buf.length > this.#initialSize * 16) this.#buf = new Uint8Array(this.#initialSize);
  }

  /** Appends raw bytes (a prebuilt frame). */
  raw(bytes: Uint8Array): this {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
    this.#dataAt = -1;
    return this;
  }

  /** The client connection preface (24 bytes). */
  preface(): this {
    return this.raw(CLIENT_PREFACE);
  }

  /** Appends a frame header and reserves `length` payload bytes; returns the payload offset. */
  #header(length: number, type: number, flags: number, streamId: number): number {
    this.#ensure(FRAME_HEADER_SIZE + length);
    const b = this.#buf;
    const at = this.#pos;
    setUint24(b, at, length);
    b[at + 3] = type;
    b[at + 4] = flags;
    setUint32(b, at + 5, streamId & 0x7fffffff);
    this.#pos = at + FRAME_HEADER_SIZE + length;
    this.#dataAt = -1;
    return at + FRAME_HEADER_SIZE;
  }

  /** Any frame, with `payload` copied. */
  frame(type: number, flags: number, streamId: number, payload?: Uint8Array): this {
    const at = this.#header(payload?.length ?? 0, type, flags, streamId);
    if (payload) this.#buf.set(payload, at);
    return this;
  }

  /** SETTINGS with `[id, value, id, value, …]`. */
  settings(pairs: readonly number[]): this {
    const at = this.#header((pairs.length >> 1) * 6, FrameType.SETTINGS, 0, 0);
    const b = this.#buf;
    for (let i = 0, o = at; i + 1 < pairs.length; i += 2, o += 6) {
      b[o] = pairs[i] >>> 8;
      b[o + 1] = pairs[i];
      setUint32(b, o + 2, pairs[i + 1]);
    }
    return this;
  }

  /** SETTINGS with ACK. */
  settingsAck(): this {
    this.#header(0, FrameType.SETTINGS, FrameFlag.ACK, 0);
    return this;
  }

  /** WINDOW_UPDATE of `increment` (1 … 2^31-1) for a stream, or the connection (0). */
  windowUpdate(streamId: number, increment: number): this {
    setUint32(this.#buf, this.#header(4, FrameType.WINDOW_UPDATE, 0, streamId), increment);
    return this;
  }

  /** PING (or its ACK) with 8 bytes of opaque data. */
  ping(ack: boolean, data: Uint8Array): this {
    const at = this.#header(8, FrameType.PING, ack ? FrameFlag.ACK : 0, 0);
    this.#buf.set(data.subarray(0, 8), at);
    return this;
  }

  /** RST_STREAM with an `ErrorCode`. */
  rstStream(streamId: number, code: number): this {
    setUint32(this.#buf, this.#header(4, FrameType.RST_STREAM, 0, streamId), code);
    return this;
  }

  /** GOAWAY: the last stream the sender will process, an `ErrorCode`, and debug text. */
  goaway(lastStreamId: number, code: number, debug = ""): this {
    const text = encoder.encode(debug);
    const at = this.#header(8 + text.length, FrameType.GOAWAY, 0, 0);
    setUint32(this.#buf, at, lastStreamId & 0x7fffffff);
    setUint32(this.#buf, at + 4, code);
    this.#buf.set(text, at + 8);
    return this;
  }

  /**
   * HEADERS carrying a header block, followed by CONTINUATION frames when the block is larger
   * than `maxFrameSize`.
   */
  headers(streamId: number, block: Uint8Array, endStream: boolean, maxFrameSize: number): this {
    const first = block.length < maxFrameSize ? block.length : maxFrameSize;
    let flags = endStream ? FrameFlag.END_STREAM : 0;
    if (first === block.length) flags |= FrameFlag.END_HEADERS;
    let at = this.#header(first, FrameType.HEADERS, flags, streamId);
    this.#buf.set(block.subarray(0, first), at);
    for (let off = first; off < block.length;) {
      const n = Math.min(maxFrameSize, block.length - off);
      const end = off + n === block.length ? FrameFlag.END_HEADERS : 0;
      at = this.#header(n, FrameType.CONTINUATION, end, streamId);
      this.#buf.set(block.subarray(off, off + n), at);
      off += n;
    }
    return this;
  }

  /**
   * DATA carrying `chunk` for a stream, appended to the last frame when it is DATA of the same
   * stream with room left, in frames of at most `maxFrameSize` bytes.
   */
  data(streamId: number, chunk: Uint8Array, maxFrameSize: number): this {
    let off = 0;
    const n = chunk.length;
    this.#ensure(n + FRAME_HEADER_SIZE * (1 + Math.ceil(n / maxFrameSize)));
    const b = this.#buf;
    while (off < n) {
      let room = 0;
      if (this.#dataAt >= 0 && this.#dataStream === streamId) {
        room = maxFrameSize - (this.#pos - this.#dataAt - FRAME_HEADER_SIZE);
      }
      if (room <= 0) {
        this.#header(0, FrameType.DATA, 0, streamId);
        this.#dataAt = this.#pos - FRAME_HEADER_SIZE;
        this.#dataStream = streamId;
        room = maxFrameSize;
      }
      const take = n - off < room ? n - off : room;
      b.set(take === n ? chunk : chunk.subarray(off, off + take), this.#pos);
      this.#pos += take;
      off += take;
      setUint24(b, this.#dataAt, this.#pos - this.#dataAt - FRAME_HEADER_SIZE);
    }
    return this;
  }

  /** One gRPC message (flag 0, big-endian length, bytes) as DATA; see {@linkcode data}. */
  message(streamId: number, msg: Uint8Array, maxFrameSize: number): this {
    PREFIX[0] = 0;
    setUint32(PREFIX, 1, msg.length);
    this.data(streamId, PREFIX, maxFrameSize);
    return this.data(streamId, msg, maxFrameSize);
  }

  /**
   * Ends the stream: sets END_STREAM on the last frame when it is DATA of this stream, else
   * appends an empty DATA frame with END_STREAM.
   */
  endStream(streamId: number): this {
    if (this.#dataAt >= 0 && this.#dataStream === streamId) {
      this.#buf[this.#dataAt + 4] |= FrameFlag.END_STREAM;
    } else {
      this.#header(0, FrameType.DATA, FrameFlag.END_STREAM, streamId);
    }
    this.#dataAt = -1;
    return this;
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }
}
