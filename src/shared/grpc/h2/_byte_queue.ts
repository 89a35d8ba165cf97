/**
 * {@linkcode ByteQueue}: a growable FIFO of bytes (a stream's framed messages waiting for
 * flow-control window).
 *
 * @module
 */

import { setUint32 } from "./frame_header.ts";

/** Bytes appended at the tail and taken from the head, in one buffer compacted on demand. */
export class ByteQueue {
  #buf = new Uint8Array(0);
  #start = 0;
  #end = 0;

  /** Bytes queued. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Appends one gRPC message: the 5-byte prefix, then `msg` (copied). */
  pushMessage(msg: Uint8Array): void {
    this.#reserve(5 + msg.length);
    const b = this.#buf;
    b[this.#end] = 0;
    setUint32(b, this.#end + 1, msg.length);
    b.set(msg, this.#end + 5);
    this.#end += 5 + msg.length;
  }

  /** The first `n` queued bytes (at most `length`). Valid until the next push. */
  peek(n: number): Uint8Array {
    return this.#buf.subarray(this.#start, this.#start + Math.min(n, this.length));
  }

  /** Drops the first `n` bytes; frees the buffer once empty. */
  consume(n: number): void {
    this.#start += Math.min(n, this.length);
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      if (this.#buf.length > 1024 * 1024) this.#buf = new Uint8Array(0);
    }
  }

  #reserve(n: number): void {
    const len = this.#buf.length;
    if (len - this.#end >= n) return;
    const pending = this.#end - this.#start;
    if (pending + n <= len / 2) { // compact: at least half the buffer is then free
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let size = Math.max(4096, len * 2);
      while (size < pending + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = pending;
  }
}
