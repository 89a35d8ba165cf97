/**
 * {@linkcode StreamState}: what a connection keeps per stream (windows, queued bytes, ends), and
 * {@linkcode StreamHost}, the connection's side of a stream's methods.
 *
 * @module
 */

import { ByteQueue } from "./_byte_queue.ts";
import { GrpcError, GrpcStatus, type StreamStatus } from "./grpc_status.ts";
import type { HeaderList } from "./hpack_decoder.ts";
import { MessageReader, type MessageReaderOptions } from "./message_reader.ts";
import { GrpcStream } from "./stream.ts";

/** What a {@linkcode GrpcStream} asks of its connection. */
export interface StreamHost {
  write(s: StreamState, msg: Uint8Array): boolean;
  end(s: StreamState, code: number, message: string): void;
  cancel(s: StreamState, message: string): void;
}

/** Per-stream state, owned by the connection; the user sees it through {@linkcode GrpcStream}. */
export class StreamState {
  readonly id: number;
  readonly host: StreamHost;
  readonly isServer: boolean;
  readonly path: string;
  /** Request headers (server), response headers (client, once received). */
  headers: HeaderList;
  readonly reader: MessageReader;
  readonly stream: GrpcStream;
  readonly closed: Promise<StreamStatus>;
  #resolve!: (status: StreamStatus) => void;

  /** How much DATA we may still send (stream window). */
  sendWindow: number;
  /** How much DATA the peer may still send before our next WINDOW_UPDATE. */
  recvAvail: number;
  /** DATA received and consumed since our last stream WINDOW_UPDATE. */
  recvUnacked = 0;
  /** Framed messages waiting for window. */
  readonly queue: ByteQueue = new ByteQueue();
  /** In the connection's list of streams waiting for window. */
  blocked = false;
  /** `end()` was called: no more writes. */
  ending = false;
  /** The status `end()` asked for, sent once the queue drains (server). */
  endCode = 0;
  endMessage = "";
  /** We sent END_STREAM (client) or the trailers (server). */
  localEnded = false;
  /** The peer sent END_STREAM. */
  remoteEnded = false;
  /** Server: response headers sent. Client: response headers received. */
  headersDone = false;
  isClosed = false;

  constructor(
    host: StreamHost,
    init: {
      id: number;
      isServer: boolean;
      path: string;
      headers: HeaderList;
      sendWindow: number;
      recvWindow: number;
      reader: MessageReaderOptions;
    },
  ) {
    this.host = host;
    this.id = init.id;
    this.isServer = init.isServer;
    this.path = init.path;
    this.headers = init.headers;
    this.sendWindow = init.sendWindow;
    this.recvAvail = init.recvWindow;
    this.reader = new MessageReader(this, init.reader);
    this.closed = new Promise((resolve) => this.#resolve = resolve);
    this.stream = new GrpcStream(this);
  }

  /** MessageSink: hands a message to the stream's `onMessage` (dropped once closed). */
  message(msg: Uint8Array): void {
    if (this.isClosed) return;
    const onMessage = this.stream.onMessage;
    if (onMessage === null) {
      throw new GrpcError(GrpcStatus.INTERNAL, "a message arrived on a stream without onMessage");
    }
    onMessage(msg);
  }

  /** Marks the stream closed and settles `closed`; the caller fires `onClose`. */
  settle(status: StreamStatus): void {
    this.isClosed = true;
    this.#resolve(status);
  }
}
