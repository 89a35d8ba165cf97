/**
 * {@linkcode GrpcStream}: one gRPC bidirectional stream, from either end, carrying messages as
 * bytes.
 *
 * @module
 */

import type { StreamState } from "./_stream_state.ts";
import { GrpcStatus, type StreamStatus } from "./grpc_status.ts";
import type { HeaderList } from "./hpack_decoder.ts";

/**
 * One bidirectional gRPC stream. Messages are bytes: encode and decode them yourself (e.g.
 * `encodeDataPlaneResponse` / `decodeDataPlaneRequest`).
 *
 * Callbacks run synchronously from the connection's read loop; set them before the first turn
 * of the event loop after the stream is handed to you (in `onStream`, or through
 * `openStream()`'s options).
 *
 * - `onMessage(msg)`: one message. **`msg` is borrowed**: it may be a view of the connection's
 *   receive buffer, valid only until `onMessage` returns. Copy (`slice()`) what must outlive
 *   that, or create the connection with `retainMessages: true`.
 * - `onEnd()`: the peer will send no more messages (a client half-closed). On a client stream
 *   the end of the response comes with `onClose`.
 * - `onClose(status)`: the stream is over: `status.code` is `GrpcStatus.OK` (0) or an error,
 *   from the trailers, from a reset, or made up here when the connection failed (UNAVAILABLE,
 *   with the reason in `message`). Fires exactly once; `closed` resolves with the same status.
 * - `onDrain()`: messages that waited for flow-control window have all been sent.
 *
 * ```ts ignore
 * stream.onMessage = (msg) => stream.write(msg); // echo
 * stream.onEnd = () => stream.end();
 * ```
 */
export class GrpcStream {
  readonly #s: StreamState;

  /** One message; the view is valid until this returns (see the class doc). */
  onMessage: ((msg: Uint8Array) => void) | null = null;
  /** The peer half-closed: it sends no more messages. */
  onEnd: (() => void) | null = null;
  /** The stream ended with this status; fires once. */
  onClose: ((status: StreamStatus) => void) | null = null;
  /** The messages waiting for flow-control window are all sent. */
  onDrain: (() => void) | null = null;

  /** Created by the connection. */
  constructor(state: StreamState) {
    this.#s = state;
  }

  /** HTTP/2 stream id. */
  get id(): number {
    return this.#s.id;
  }

  /** The method path, `/package.Service/Method`. */
  get path(): string {
    return this.#s.path;
  }

  /** Request headers (server), or response headers once received (client). */
  get headers(): HeaderList {
    return this.#s.headers;
  }

  /** Resolves once with the status the stream ended with (never rejects). */
  get closed(): Promise<StreamStatus> {
    return this.#s.closed;
  }

  /** The stream has ended (`onClose` fired or is firing). */
  get isClosed(): boolean {
    return this.#s.isClosed;
  }

  /** Bytes of written messages still waiting for flow-control window. */
  get bufferedAmount(): number {
    return this.#s.queue.length;
  }

  /**
   * Sends one message. `msg` is copied before this returns. Messages written in one turn of the
   * event loop leave in one socket write, in as few DATA frames as the peer's frame size allows.
   *
   * @returns `false` when the message (or an earlier one) waits for flow-control window, or the
   * stream is already closed (the message is dropped; `onClose` tells why); `true` otherwise.
   * @throws {Error} after {@linkcode end}.
   */
  write(msg: Uint8Array): boolean {
    return this.#s.host.write(this.#s, msg);
  }

  /**
   * Ends our side, after every message written so far.
   *
   * Client: half-closes (END_STREAM); the stream closes when the server's trailers arrive.
   * Server: sends the trailers with `code` (default OK) and `message`, which closes the stream.
   * Idempotent; ignored once closed.
   *
   * @throws {TypeError} when a client passes a status.
   */
  end(code: number = GrpcStatus.OK, message = ""): void {
    if (!this.#s.isServer && (code !== GrpcStatus.OK || message !== "")) {
      throw new TypeError("only a server ends a stream with a status");
    }
    this.#s.host.end(this.#s, code, message);
  }

  /** Resets the stream (RST_STREAM CANCEL), dropping queued messages; closes with CANCELLED. */
  cancel(message = "cancelled"): void {
    this.#s.host.cancel(this.#s, message);
  }
}
