import { connectionFailure, PgError, SqlState, withSeverity } from "../../shared/errors/mod.ts";
import {
  CloseReason,
  DoneFlag,
  FLOW_WINDOW_BYTES,
  ReservationReason,
} from "../../shared/grpc/types.ts";
import { BackendCode, concatBytes, FrontendCode, parseErrorFields } from "../../shared/wire/mod.ts";
import type { SessionListener, SessionOpenOptions } from "../poolergateway/pooler_conn.ts";
import type { SessionBackend } from "../session/handler.ts";
import { body, splitMessages } from "./messages.ts";

/**
 * Who a shard session is for: the client session's role, database, startup settings and virtual
 * pid (a shard session is always on a primary).
 */
export type ShardSessionOptions = Omit<SessionOpenOptions, "replica">;

/**
 * Who hears a shard session's answers message by message while it streams (a COPY under way):
 * see {@linkcode ShardSession.stream}.
 */
export interface StreamListener {
  /** One whole backend message; `frame` is valid during the call only. */
  message(code: number, frame: Uint8Array): void;
  /** The pooler says the request is answered (after its ReadyForQuery). */
  done(): void;
  /** The session is gone (closed, or its pooler lost). */
  lost(err: PgError): void;
}

/**
 * One client session's pooler session on one shard's primary. Unlike the client session's own
 * relay (whose answers go straight to the client), a shard session runs a unit of frontend
 * messages and hands back its whole answer, for the gateway to pass on or merge.
 */
export class ShardSession implements SessionListener {
  readonly shard: string;
  readonly #backend: SessionBackend;
  readonly #id: number;
  #frames: Uint8Array[] = [];
  #waiting?: { dones: number; resolve: (b: Uint8Array) => void; reject: (e: PgError) => void };
  #opening?: { resolve: () => void; reject: (e: PgError) => void };
  #closed = false;
  /** From the pooler's last answer: why the backend stays reserved (0: nothing). */
  reserved = 0;
  /**
   * The prepared statements this session has, by name ("" the unnamed one), with the SQL they
   * were parsed from here.
   */
  readonly prepared = new Map<string, string>();
  /** Names the client closed elsewhere, still prepared here: closed here before reuse. */
  readonly stale = new Set<string>();
  /**
   * While set, answers go here as they come (a unit the client flushed before its Sync) instead
   * of being gathered; `run()` then resolves with nothing.
   */
  sink: ((frames: Uint8Array) => void) | null = null;
  /** While set: answers go here message by message (a COPY under way); see `stream()`. */
  #stream: StreamListener | null = null;
  /** While streaming: the start of a message the pooler split across pieces. */
  #partial: Uint8Array | null = null;
  /** While streaming: results are acknowledged by the caller (`ack()`), which paces them. */
  #manualAck = false;
  /** Request bytes sent and not yet acknowledged as written to Postgres (flow control). */
  #unackedRequests = 0;
  #requestWaiters: (() => void)[] = [];

  constructor(shard: string, backend: SessionBackend, id: number) {
    this.shard = shard;
    this.#backend = backend;
    this.#id = id;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the shard's backend is in a transaction block for this session. */
  get inTransaction(): boolean {
    return (this.reserved & ReservationReason.TRANSACTION) !== 0;
  }

  /** Opens the session on the pooler; throws the pooler's FATAL error as an ERROR. */
  async open(opts: ShardSessionOptions): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#opening = { resolve, reject };
      this.#backend.open(this.#id, opts, this);
    });
  }

  /**
   * Runs `payload` (whole messages: Queries, or extended-protocol messages ending with Sync)
   * and resolves with every answer frame up to the last ReadyForQuery.
   */
  run(payload: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(shardGone(this.shard));
    let dones = 0;
    for (const m of splitMessages(payload)) {
      if (m.code === FrontendCode.Query || m.code === FrontendCode.Sync) dones++;
      // A simple Query destroys the unnamed statement (Postgres's rule).
      if (m.code === FrontendCode.Query) this.prepared.delete("");
    }
    return new Promise((resolve, reject) => {
      this.#frames = [];
      this.#waiting = { dones, resolve, reject };
      this.#unackedRequests += payload.length;
      this.#backend.execute(this.#id, payload);
    });
  }

  /** Sends `payload` without waiting for an answer (a unit the client flushed: see `sink`). */
  send(payload: Uint8Array): void {
    if (this.#closed) throw shardGone(this.shard);
    this.#unackedRequests += payload.length;
    this.#backend.execute(this.#id, payload);
  }

  /**
   * Streams this session's answers to `listener`, whole messages as they come, instead of
   * gathering them for `run()` (a COPY: its rows and the client's data flow while it runs);
   * null ends it. `manualAck`: results count against the pooler's flow-control window until the
   * caller calls `ack()` (once they reached the client), else they are acknowledged at once.
   */
  stream(listener: StreamListener | null, opts: { manualAck?: boolean } = {}): void {
    this.#stream = listener;
    this.#partial = null;
    this.#manualAck = listener !== null && !!opts.manualAck;
  }

  /** Flow control: `bytes` more results were passed on (see `stream()`'s `manualAck`). */
  ack(bytes: number): void {
    if (!this.#closed && bytes > 0) this.#backend.ack(this.#id, bytes);
  }

  /**
   * Null while requests may flow; else a promise that resolves once Postgres has taken enough of
   * what was sent (or the link to the pooler drains, or the session ends).
   */
  writable(): Promise<void> | null {
    if (this.#closed) return null;
    const full = this.#backend.congested();
    if (this.#unackedRequests <= FLOW_WINDOW_BYTES) return full;
    const acked = new Promise<void>((r) => this.#requestWaiters.push(r));
    return full ? Promise.all([full, acked]).then(() => {}) : acked;
  }

  #wakeWriters(): void {
    const w = this.#requestWaiters;
    this.#requestWaiters = [];
    for (const f of w) f();
  }

  /** Cuts streamed frames into whole messages for the listener (a message may come in pieces). */
  #feed(listener: StreamListener, frames: Uint8Array): void {
    let bytes = frames;
    if (this.#partial) {
      bytes = concatBytes([this.#partial, frames]);
      this.#partial = null;
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let off = 0;
    while (off + 5 <= bytes.length) {
      const end = off + 1 + dv.getInt32(off + 1);
      if (end > bytes.length) break;
      listener.message(bytes[off], bytes.subarray(off, end));
      // The listener may have stopped streaming (or started again) meanwhile.
      if (this.#stream !== listener) return;
      off = end;
    }
    if (off < bytes.length) this.#partial = bytes.slice(off);
  }

  /** Ends the session: the pooler rolls back whatever is open. */
  close(reason: number = CloseReason.TERMINATE): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#backend.close(this.#id, reason);
    this.#wakeWriters();
    const l = this.#stream;
    this.#stream = null;
    l?.lost(shardGone(this.shard));
  }

  cancel(): void {
    if (!this.#closed) this.#backend.cancel(this.#id);
  }

  // ---- SessionListener ----

  onFrames(frames: Uint8Array): void {
    if (this.#opening) {
      // ParameterStatus frames (the client has its own), or the FATAL error that refuses it.
      this.#frames.push(frames);
      return;
    }
    const l = this.#stream;
    if (l) {
      this.#feed(l, frames);
      if (!this.#manualAck || this.#stream !== l) this.#backend.ack(this.#id, frames.length);
      return;
    }
    if (this.sink) this.sink(frames);
    else this.#frames.push(frames);
    // The answer is kept here (or queued for the client's socket): acknowledge it at once.
    this.#backend.ack(this.#id, frames.length);
  }

  onDone(reserved: number, closed: boolean, flags: number): void {
    this.reserved = reserved;
    if (this.#opening) {
      const o = this.#opening;
      this.#opening = undefined;
      const frames = concatBytes(this.#frames);
      this.#frames = [];
      if (closed) {
        this.#closed = true;
        o.reject(errorIn(frames) ?? shardGone(this.shard));
      } else {
        o.resolve();
      }
      return;
    }
    if (closed) {
      this.#closed = true;
      this.#wakeWriters();
      const l = this.#stream;
      this.#stream = null;
      if (l) {
        const err = errorIn(concatBytes(this.#frames));
        l.lost(
          flags & DoneFlag.RETRY
            ? retryable(this.shard)
            : err
            ? withSeverity(err, "ERROR")
            : shardGone(this.shard),
        );
      }
      const w = this.#waiting;
      this.#waiting = undefined;
      const frames = concatBytes(this.#frames);
      this.#frames = [];
      const err = errorIn(frames);
      w?.reject(
        flags & DoneFlag.RETRY
          ? retryable(this.shard)
          : err
          ? withSeverity(err, "ERROR")
          : shardGone(this.shard),
      );
      return;
    }
    if (this.#stream && !this.#waiting) {
      this.#stream.done();
      return;
    }
    const w = this.#waiting;
    if (!w || --w.dones > 0) return;
    this.#waiting = undefined;
    const out = concatBytes(this.#frames);
    this.#frames = [];
    w.resolve(out);
  }

  onRequestsAcked(bytes: number): void {
    this.#unackedRequests = Math.max(0, this.#unackedRequests - bytes);
    if (this.#unackedRequests <= FLOW_WINDOW_BYTES) this.#wakeWriters();
  }

  onLost(err: PgError): void {
    this.#closed = true;
    this.#wakeWriters();
    const e = withSeverity(err, "ERROR");
    const l = this.#stream;
    this.#stream = null;
    l?.lost(e);
    this.#opening?.reject(e);
    this.#opening = undefined;
    this.#waiting?.reject(e);
    this.#waiting = undefined;
  }
}

function errorIn(frames: Uint8Array): PgError | undefined {
  const m = splitMessages(frames).find((m) => m.code === BackendCode.ErrorResponse);
  return m ? parseErrorFields(body(m)) : undefined;
}

function shardGone(shard: string): PgError {
  return connectionFailure(`the connection to shard ${shard} was lost`);
}

function retryable(shard: string): PgError {
  return new PgError(
    SqlState.CANNOT_CONNECT_NOW,
    `shard ${shard} is changing its primary; nothing ran there: try again`,
    { retryable: true },
  );
}
