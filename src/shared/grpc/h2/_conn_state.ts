/**
 * {@linkcode ConnState}: everything one connection knows (settings, windows, streams, the
 * header block being assembled), shared by the receive and send functions of this folder.
 *
 * @module
 */

import {
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
} from "./constants.ts";
import type { StreamHandler } from "./connection.ts";
import type { H2FrameReader } from "./frame_reader.ts";
import { protocolError } from "./h2_error.ts";
import { type HeaderList, HpackDecoder } from "./hpack_decoder.ts";
import type { MessageReaderOptions } from "./message_reader.ts";
import type { GrpcStream } from "./stream.ts";
import type { Outbox } from "./_outbox.ts";
import { type StreamHost, StreamState } from "./_stream_state.ts";

/** A PING we sent, waiting for its ACK. */
export interface PendingPing {
  resolve: (ms: number) => void;
  reject: (e: Error) => void;
  t0: number;
}

/** The connection's hooks the frame handlers call. */
export interface ConnHooks {
  /** The connection is gone: fail every stream with `code`, close the socket. */
  destroy(err: Error | null, code: number): void;
  /** Close gracefully (GOAWAY, then the socket). */
  close(): void;
}

/** The state of one connection. Fields are plain: only this folder sees the object. */
export class ConnState {
  readonly isServer: boolean;
  readonly handler: StreamHandler | null;
  readonly reader: H2FrameReader;
  readonly out: Outbox;
  readonly hooks: ConnHooks;
  readonly host: StreamHost;
  readonly decoder: HpackDecoder = new HpackDecoder();
  readonly streams: Map<number, StreamState> = new Map();
  /** Streams with messages waiting for window, in the order they blocked. */
  blocked: StreamState[] = [];
  readonly readerOpts: MessageReaderOptions;
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise (server) and enforce. */
  readonly maxStreams: number;

  // Our side: the windows we advertise and what the peer may still send.
  readonly streamWindow: number;
  readonly connWindow: number;
  connRecvAvail: number;
  connRecvUnacked = 0;

  // The peer's settings and our send window.
  peerMaxFrame: number = DEFAULT_MAX_FRAME_SIZE;
  peerInitialWindow: number = DEFAULT_WINDOW_SIZE;
  peerMaxStreams = Infinity;
  /** Dynamic table size the peer's decoder assumes of our (never indexing) encoder. */
  encoderTableMax: number = DEFAULT_HEADER_TABLE_SIZE;
  /** A dynamic table size update owed at the start of our next header block, or -1. */
  tableSizeUpdate = -1;
  sendWindow: number = DEFAULT_WINDOW_SIZE;

  nextStreamId = 1;
  lastPeerStreamId = 0;
  settingsSeen = false;

  // A header block spread over HEADERS + CONTINUATION.
  headerStream = 0;
  headerFlags = 0;
  headerBuf: Uint8Array = new Uint8Array(0);
  headerLen = 0;

  closing = false;
  goawayReceived = false;
  dead = false;
  pings: PendingPing[] = [];
  /** Called after a stream closes. */
  onStreamClosed: ((stream: GrpcStream) => void) | null = null;

  constructor(init: {
    isServer: boolean;
    handler: StreamHandler | null;
    reader: H2FrameReader;
    out: Outbox;
    hooks: ConnHooks;
    host: StreamHost;
    readerOpts: MessageReaderOptions;
    streamWindow: number;
    connWindow: number;
    maxStreams: number;
  }) {
    this.isServer = init.isServer;
    this.handler = init.handler;
    this.reader = init.reader;
    this.out = init.out;
    this.hooks = init.hooks;
    this.host = init.host;
    this.readerOpts = init.readerOpts;
    this.streamWindow = init.streamWindow;
    this.connWindow = init.connWindow;
    this.connRecvAvail = init.connWindow;
    this.maxStreams = init.maxStreams;
  }

  /**
   * A frame came for a stream we do not have: fine if the stream existed once (its late frames
   * are dropped).
   *
   * @throws {H2Error} PROTOCOL_ERROR when the stream was never opened (RFC 9113 §5.1, idle).
   */
  checkKnown(id: number): void {
    const ours = (id & 1) === (this.isServer ? 0 : 1);
    const seen = ours ? id < this.nextStreamId : id <= this.lastPeerStreamId;
    if (!seen) throw protocolError(`frame on idle stream ${id}`);
  }

  /** Registers a new stream with the current windows. */
  newStream(id: number, path: string, headers: HeaderList): StreamState {
    const s = new StreamState(this.host, {
      id,
      isServer: this.isServer,
      path,
      headers,
      sendWindow: this.peerInitialWindow,
      // Until it acknowledges our SETTINGS the peer may count on the default window.
      recvWindow: Math.max(this.streamWindow, DEFAULT_WINDOW_SIZE),
      reader: this.readerOpts,
    });
    this.streams.set(id, s);
    return s;
  }
}
