import { connectionFailure, PgError, SqlState, withSeverity } from "../../shared/errors/mod.ts";
import { CloseReason, DoneFlag, ReservationReason } from "../../shared/grpc/types.ts";
import { BackendCode, concatBytes, FrontendCode, parseErrorFields } from "../../shared/wire/mod.ts";
import type { SessionListener } from "../poolergateway/pooler_conn.ts";
import type { SessionBackend } from "../session/handler.ts";
import { body, splitMessages } from "./messages.ts";

/** Who a shard session is for: the client session's role, database and startup settings. */
export interface ShardSessionOptions {
  user: string;
  database: string;
  startup: Record<string, string>;
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
      this.#backend.execute(this.#id, payload);
    });
  }

  /** Sends `payload` without waiting for an answer (a unit the client flushed: see `sink`). */
  send(payload: Uint8Array): void {
    if (this.#closed) throw shardGone(this.shard);
    this.#backend.execute(this.#id, payload);
  }

  /** Ends the session: the pooler rolls back whatever is open. */
  close(reason: number = CloseReason.TERMINATE): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#backend.close(this.#id, reason);
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
    const w = this.#waiting;
    if (!w || --w.dones > 0) return;
    this.#waiting = undefined;
    const out = concatBytes(this.#frames);
    this.#frames = [];
    w.resolve(out);
  }

  onRequestsAcked(): void {}

  onLost(err: PgError): void {
    this.#closed = true;
    const e = withSeverity(err, "ERROR");
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
