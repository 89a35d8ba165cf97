/**
 * {@linkcode H2Connection}: one HTTP/2 connection (h2c, prior knowledge) carrying gRPC
 * streams, client or server side: the read loop, PING, GOAWAY and closing. Frames are handled
 * in `_receive.ts`, streams written and closed in `_stream_ops.ts`.
 *
 * @module
 */

import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  ErrorCode,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW_SIZE,
  Setting,
} from "./constants.ts";
import { H2FrameReader } from "./frame_reader.ts";
import { GrpcStatus, type StreamStatus } from "./grpc_status.ts";
import { H2Error } from "./h2_error.ts";
import type { GrpcStream } from "./stream.ts";
import { ConnState } from "./_conn_state.ts";
import { requestBlock } from "./_headers.ts";
import { Outbox } from "./_outbox.ts";
import { onFrame } from "./_receive.ts";
import {
  cancelStream,
  endStream,
  failStream,
  finishStream,
  sendHeaders,
  writeMessage,
} from "./_stream_ops.ts";
import type { StreamHost } from "./_stream_state.ts";

/** The socket a connection runs on: a `Deno.Conn` (TCP or TLS) or anything alike. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Tuning of a connection; the defaults suit one long-lived, busy stream. */
export interface H2ConnectionOptions {
  /** Largest message accepted, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Deliver every message in a buffer of its own that `onMessage` may keep (a copy for messages
   * that arrived whole in one DATA frame). Default `false`: messages are borrowed views.
   */
  retainMessages?: boolean;
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise (each stream's receive window). Default 8 MiB. */
  streamWindow?: number;
  /** The connection's receive window. Default 16 MiB. */
  connectionWindow?: number;
  /** SETTINGS_MAX_FRAME_SIZE we advertise and accept. Default 1 MiB. */
  maxFrameSize?: number;
}

/** What a server connection does with streams. */
export interface StreamHandler {
  /** The one method path served, e.g. `/multigres.multipooler.MultiPooler/DataPlane`. */
  path: string;
  /**
   * A client opened a stream: set its callbacks here, synchronously. Streams to other paths
   * are answered UNIMPLEMENTED without reaching this.
   */
  onStream(stream: GrpcStream): void;
}

/** Which end of the connection this is. */
export type ConnectionRole =
  | { role: "client"; authority: string }
  | { role: "server"; handler: StreamHandler };

/** Callbacks of a stream a client opens (they can also be set on the stream later). */
export interface OpenStreamOptions {
  onMessage?: (msg: Uint8Array) => void;
  onClose?: (status: StreamStatus) => void;
  onDrain?: () => void;
}

const MiB = 1024 * 1024;
const SERVER_MAX_STREAMS = 1000;
const CLOSE_FLUSH_MS = 1000;

/**
 * One HTTP/2 connection carrying gRPC streams. Made by `connectH2()`/`connectBidi()` (client)
 * or `serveBidi()`/`serveBidiConn()` (server); the constructor starts the read loop and queues
 * our SETTINGS (after the connection preface, on a client).
 *
 * Hot path: one receive buffer ({@linkcode H2FrameReader}) cut synchronously into frames whose
 * messages are delivered from the read loop as views; all frames written in one turn of the
 * event loop leave in one socket write (no timers); no promise or closure per message.
 */
export class H2Connection {
  readonly #conn: ByteConn;
  readonly #c: ConnState;
  readonly #authority: string;
  readonly #requestBlocks = new Map<string, Uint8Array>();
  #prefaceDone: boolean;
  readonly #pingData = new Uint8Array(8);
  readonly #closed: Promise<Error | null>;
  #closeErr: Error | null = null;

  constructor(conn: ByteConn, role: ConnectionRole, opts: H2ConnectionOptions = {}) {
    this.#conn = conn;
    const isServer = role.role === "server";
    this.#authority = role.role === "client" ? role.authority : "";
    this.#prefaceDone = !isServer;
    const maxFrame = clamp(opts.maxFrameSize ?? MiB, DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT);
    const streamWindow = clamp(opts.streamWindow ?? 8 * MiB, 1, MAX_WINDOW_SIZE);
    const connWindow = clamp(
      opts.connectionWindow ?? 16 * MiB,
      DEFAULT_WINDOW_SIZE,
      MAX_WINDOW_SIZE,
    );
    // The stream methods reach the state through these, made once per connection.
    const host: StreamHost = {
      write: (s, msg) => writeMessage(c, s, msg),
      end: (s, code, message) => endStream(c, s, code, message),
      cancel: (s, message) => cancelStream(c, s, message),
    };
    const c: ConnState = new ConnState({
      isServer,
      handler: role.role === "server" ? role.handler : null,
      reader: new H2FrameReader({ maxFrameSize: maxFrame }),
      out: new Outbox(conn, (err) => this.#destroy(lost(err), GrpcStatus.UNAVAILABLE)),
      hooks: {
        destroy: (err, code) => this.#destroy(err, code),
        close: () => void this.close(),
      },
      host,
      readerOpts: {
        maxMessageSize: opts.maxMessageSize ?? 64 * MiB,
        retain: opts.retainMessages ?? false,
      },
      streamWindow,
      connWindow,
      maxStreams: SERVER_MAX_STREAMS,
    });
    this.#c = c;

    const w = c.out.w;
    if (!isServer) w.preface();
    w.settings([
      Setting.INITIAL_WINDOW_SIZE,
      streamWindow,
      Setting.MAX_FRAME_SIZE,
      maxFrame,
      ...(isServer
        ? [Setting.MAX_CONCURRENT_STREAMS, SERVER_MAX_STREAMS]
        : [Setting.ENABLE_PUSH, 0]),
    ]);
    if (connWindow > DEFAULT_WINDOW_SIZE) w.windowUpdate(0, connWindow - DEFAULT_WINDOW_SIZE);
    c.out.schedule();
    this.#closed = this.#run();
  }

  /**
   * Resolves when the connection is gone and its socket operations have settled: `null` when
   * we closed it (or the peer did, with no stream open), else the reason.
   */
  get closed(): Promise<Error | null> {
    return this.#closed;
  }

  /** The connection is closing, going away or closed: no new streams. */
  get isClosed(): boolean {
    return this.#c.closing || this.#c.dead || this.#c.goawayReceived;
  }

  /** Open streams. */
  get streamCount(): number {
    return this.#c.streams.size;
  }

  /** Bytes queued for the socket and not yet handed to it (for metrics). */
  get bufferedAmount(): number {
    return this.#c.out.pending;
  }

  /** Called after any stream of this connection closes (after the stream's `onClose`). */
  get onStreamClosed(): ((stream: GrpcStream) => void) | null {
    return this.#c.onStreamClosed;
  }

  set onStreamClosed(fn: ((stream: GrpcStream) => void) | null) {
    this.#c.onStreamClosed = fn;
  }

  /**
   * Opens a stream to `path` (client only). Its request headers leave with the next flush,
   * together with any message written in the same turn.
   *
   * @throws {Error} on a server connection, or when the connection is closing or closed.
   */
  openStream(path: string, opts: OpenStreamOptions = {}): GrpcStream {
    const c = this.#c;
    if (c.isServer) throw new Error("a server connection cannot open streams");
    if (c.dead || c.closing) throw new Error("the HTTP/2 connection is closed");
    if (c.goawayReceived) throw new Error("the server is going away (GOAWAY received)");
    if (c.streams.size >= c.peerMaxStreams) {
      throw new Error(`the server allows ${c.peerMaxStreams} concurrent streams`);
    }
    if (c.nextStreamId > MAX_WINDOW_SIZE) throw new Error("stream ids exhausted");
    const id = c.nextStreamId;
    c.nextStreamId += 2;
    const stream = c.newStream(id, path, []).stream;
    stream.onMessage = opts.onMessage ?? null;
    stream.onClose = opts.onClose ?? null;
    stream.onDrain = opts.onDrain ?? null;
    let block = this.#requestBlocks.get(path);
    if (!block) this.#requestBlocks.set(path, block = requestBlock(path, this.#authority));
    sendHeaders(c, id, block, false);
    return stream;
  }

  /** Sends a PING; resolves with the round trip in milliseconds. */
  ping(): Promise<number> {
    const c = this.#c;
    if (c.dead) return Promise.reject(new Error("the HTTP/2 connection is closed"));
    return new Promise((resolve, reject) => {
      c.pings.push({ resolve, reject, t0: performance.now() });
      c.out.w.ping(false, this.#pingData);
      c.out.schedule();
    });
  }

  /**
   * Closes the connection: open streams end (a server sends them UNAVAILABLE trailers, a client
   * resets them as CANCELLED), GOAWAY is sent, then the socket closes. Resolves once closed.
   */
  async close(): Promise<void> {
    const c = this.#c;
    if (c.dead || c.closing) {
      await this.#closed;
      return;
    }
    c.closing = true;
    for (const s of [...c.streams.values()]) {
      if (c.isServer) {
        failStream(c, s, { code: GrpcStatus.UNAVAILABLE, message: "the server is shutting down" });
      } else {
        cancelStream(c, s, "the connection was closed");
      }
    }
    c.out.w.goaway(c.lastPeerStreamId, ErrorCode.NO_ERROR);
    await this.#flushBriefly();
    this.#destroy(null, GrpcStatus.UNAVAILABLE);
    await this.#closed;
  }

  /** The read loop; resolves with the reason the connection ended once nothing is pending. */
  async #run(): Promise<Error | null> {
    await this.#read();
    await this.#c.out.idle();
    return this.#closeErr;
  }

  async #read(): Promise<void> {
    const c = this.#c;
    const reader = c.reader;
    let err: Error | null = null;
    let code: number = GrpcStatus.UNAVAILABLE;
    try {
      for (;;) {
        const n = await this.#conn.read(reader.writable());
        if (c.dead) return;
        if (n === null) {
          const partial = reader.describePartial();
          if (partial !== "") {
            err = new Error(`HTTP/2 connection closed by the peer mid-frame (${partial})`);
          } else if (c.streams.size > 0) {
            err = new Error("HTTP/2 connection closed by the peer");
          }
          break;
        }
        reader.commit(n);
        if (!this.#prefaceDone) {
          if (!reader.preface()) continue;
          this.#prefaceDone = true;
        }
        while (reader.next()) {
          onFrame(c);
          if (c.dead) return;
        }
      }
    } catch (e) {
      if (c.dead) return; // we closed the socket under a pending read
      if (e instanceof H2Error) {
        c.out.w.goaway(c.lastPeerStreamId, e.code, e.message);
        await this.#flushBriefly();
        err = new Error(`HTTP/2 connection error: ${e.message}`, { cause: e });
        code = GrpcStatus.INTERNAL;
      } else {
        err = lost(e);
      }
    }
    this.#destroy(err, code);
  }

  /** Waits for the outbox to flush, at most a second (a peer may have stopped reading). */
  async #flushBriefly(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#c.out.flushed(),
      new Promise<void>((resolve) => timer = setTimeout(resolve, CLOSE_FLUSH_MS)),
    ]);
    clearTimeout(timer);
  }

  /** The connection is gone: fail every stream with `code`, reject pings, close the socket. */
  #destroy(err: Error | null, code: number): void {
    const c = this.#c;
    if (c.dead) return;
    c.dead = true;
    const message = err === null ? "the HTTP/2 connection was closed" : err.message;
    for (const s of [...c.streams.values()]) {
      s.localEnded = s.remoteEnded = true;
      finishStream(c, s, err === null ? { code, message } : { code, message, cause: err });
    }
    for (const ping of c.pings) ping.reject(err ?? new Error(message));
    c.pings = [];
    c.out.kill();
    this.#closeErr = err;
    try {
      this.#conn.close(); // a pending read now fails, and the read loop ends
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e; // already closed
    }
  }
}

function clamp(n: number, min: number, max: number): number {
  return n < min ? min : n > max ? max : n;
}

function lost(e: unknown): Error {
  const text = e instanceof Error ? e.message : String(e);
  return new Error(`HTTP/2 connection lost: ${text}`, { cause: e });
}
