/**
 * {@linkcode MessageReader}: cuts gRPC length-prefixed messages out of a stream's DATA payloads,
 * however they are split or merged across frames.
 *
 * @module
 */

import { getUint32 } from "./frame_header.ts";
import { GrpcError, GrpcStatus } from "./grpc_status.ts";
import { slab } from "../../wire/mod.ts";

const EMPTY = new Uint8Array(0);

/** Options of {@linkcode MessageReader}. */
export interface MessageReaderOptions {
  /** Largest message accepted, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Hand out every message in a buffer of its own, which the receiver may keep. By default a
   * message that arrived whole inside one DATA payload is a view of that payload.
   */
  retain?: boolean;
}

/** Receives the messages a {@linkcode MessageReader} cuts. */
export interface MessageSink {
  /** One message; see {@linkcode MessageReader} for how long the view stays valid. */
  message(msg: Uint8Array): void;
}

/**
 * Cuts gRPC messages (1-byte compressed flag, 4-byte big-endian length, bytes) from the DATA
 * payloads of one stream, calling `sink.message()` synchronously for each complete one.
 *
 * A message found whole inside the payload given to {@linkcode push} is passed as a view of that
 * payload (no copy): valid only until `sink.message()` returns, unless `retain` is set. A message
 * split across payloads is assembled in a buffer of its own, allocated once its length is known:
 * it stays valid for as long as it is referenced.
 *
 * ```ts
 * import { MessageReader } from "./message_reader.ts";
 *
 * const got: number[] = [];
 * const r = new MessageReader({ message: (m) => got.push(m.length) });
 * r.push(new Uint8Array([0, 0, 0, 0, 2, 7]));
 * r.push(new Uint8Array([7, 0, 0, 0, 0, 0]));
 * console.log(got); // [2, 0]
 * ```
 */
export class MessageReader {
  readonly #sink: MessageSink;
  readonly #max: number;
  readonly #retain: boolean;
  readonly #head = new Uint8Array(5);
  #headLen = 0; // bytes of a split prefix collected so far (0 between messages)
  #msg: Uint8Array | null = null; // message being assembled
  #msgLen = 0; // bytes of #msg filled

  constructor(sink: MessageSink, opts?: MessageReaderOptions) {
    this.#sink = sink;
    this.#max = opts?.maxMessageSize ?? 64 * 1024 * 1024;
    this.#retain = opts?.retain ?? false;
  }

  /** A message is partly received (its prefix or its bytes). */
  get partial(): boolean {
    return this.#headLen > 0 || this.#msg !== null;
  }

  /**
   * Consumes one DATA payload, `data[start, end)` (padding removed), delivering every message
   * it completes.
   *
   * @throws {GrpcError} INTERNAL for a compressed message (no encoding is negotiated),
   * RESOURCE_EXHAUSTED for one larger than `maxMessageSize`. The stream must then fail.
   */
  push(data: Uint8Array, start = 0, end: number = data.length): void {
    const n = end;
    let off = start;
    while (off < n) {
      const msg = this.#msg;
      if (msg !== null) { // continue a split message
        const take = Math.min(msg.length - this.#msgLen, n - off);
        msg.set(data.subarray(off, off + take), this.#msgLen);
        this.#msgLen += take;
        off += take;
        if (this.#msgLen === msg.length) {
          this.#msg = null;
          this.#sink.message(msg);
        }
        continue;
      }
      if (this.#headLen > 0) { // continue a split prefix
        const take = Math.min(5 - this.#headLen, n - off);
        this.#head.set(data.subarray(off, off + take), this.#headLen);
        this.#headLen += take;
        off += take;
        if (this.#headLen < 5) return;
        this.#headLen = 0;
        this.#begin(this.#check(this.#head, 0));
        continue;
      }
      if (n - off < 5) { // a prefix split here
        this.#head.set(data.subarray(off, n));
        this.#headLen = n - off;
        return;
      }
      const len = this.#check(data, off);
      off += 5;
      if (n - off >= len) { // the whole message is here: hand out a view
        const view = data.subarray(off, off + len);
        off += len;
        this.#sink.message(this.#retain && len > 0 ? slab.copy(view) : view);
        continue;
      }
      this.#begin(len);
    }
  }

  /** Validates a prefix at `at`; returns the message length. */
  #check(buf: Uint8Array, at: number): number {
    const flag = buf[at];
    const len = getUint32(buf, at + 1);
    if (flag !== 0) {
      throw new GrpcError(
        GrpcStatus.INTERNAL,
        flag === 1
          ? "received a compressed message, but no message encoding was negotiated"
          : `invalid message flag ${flag}`,
      );
    }
    if (len > this.#max) {
      throw new GrpcError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `received message larger than max (${len} vs. ${this.#max})`,
      );
    }
    return len;
  }

  #begin(len: number): void {
    if (len === 0) {
      this.#sink.message(EMPTY);
      return;
    }
    this.#msg = new Uint8Array(len);
    this.#msgLen = 0;
  }
}
