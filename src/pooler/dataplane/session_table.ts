import {
  connectionFailure,
  type PgError,
  toPgError,
  withSeverity,
} from "../../shared/errors/mod.ts";
import {
  FrontendCode,
  WireWriter,
  writeErrorResponse,
  writeParameterStatus,
  writeSync,
} from "../../shared/wire/mod.ts";
import {
  FLOW_WINDOW_BYTES,
  ReservationReason,
  type SessionRequest,
} from "../../shared/grpc/types.ts";
import type { Logger } from "../../shared/log/mod.ts";
import type { BackendConn } from "../backend/backend_conn.ts";
import type { Pool } from "../pool/pool.ts";
import { settingsSql, startupSettings } from "./startup_params.ts";

/** Where a session's responses go (the data-plane stream, batched). */
export interface ResponseSink {
  /** Queues raw backend frames (copied) for a session. */
  frames(sessionId: number, frames: Uint8Array): void;
  /** Marks the session's current request complete. */
  done(sessionId: number, reserved: number, closed?: boolean): void;
  /** A promise while the stream is congested (callers wait before producing more). */
  congested(): Promise<void> | null;
}

class Session {
  readonly id: number;
  readonly user: string;
  readonly database: string;
  backend?: BackendConn;
  chain: Promise<void> = Promise.resolve();
  closing = false;
  /** ReadyForQuery frames still owed for what was sent (one per Query, Sync, FunctionCall). */
  expectedReady = 0;
  /** The running read pump (while the backend is pinned). */
  pump?: Promise<void>;
  /** Result bytes sent and not yet acknowledged by the gateway. */
  unacked = 0;
  /** Resolves the pump's wait once acknowledgements bring `unacked` under the window. */
  resumePump?: () => void;

  constructor(id: number, user: string, database: string) {
    this.id = id;
    this.user = user;
    this.database = database;
  }
}

/**
 * The sessions of one data-plane stream. A session's backend is reserved for it while it is open
 * (whole-session pinning until session state replay lands): frames from the client go straight to
 * the backend in order, and a read pump passes every backend frame back, marking a request done
 * at each ReadyForQuery that settles what was sent. On close the backend is cleaned before it
 * goes back to the pool.
 */
export class SessionTable {
  readonly #pool: Pool;
  readonly #sink: ResponseSink;
  readonly #logger?: Logger;
  readonly #canServe: () => PgError | null;
  readonly #sessions = new Map<number, Session>();
  readonly #writer = new WireWriter(256);

  constructor(opts: {
    pool: Pool;
    sink: ResponseSink;
    canServe: () => PgError | null;
    logger?: Logger;
  }) {
    this.#pool = opts.pool;
    this.#sink = opts.sink;
    this.#canServe = opts.canServe;
    this.#logger = opts.logger;
  }

  get size(): number {
    return this.#sessions.size;
  }

  handle(req: SessionRequest): void {
    switch (req.op) {
      case "OPEN": {
        if (this.#sessions.has(req.sessionId)) {
          this.#fail(req.sessionId, toPgError(new Error("session opened twice")), true);
          return;
        }
        const s = new Session(req.sessionId, req.user, req.database);
        this.#sessions.set(s.id, s);
        s.chain = this.#open(s, req.startup ?? {});
        return;
      }
      case "EXECUTE": {
        const s = this.#sessions.get(req.sessionId);
        if (!s) {
          this.#fail(req.sessionId, connectionFailure("session is not open on this pooler"), true);
          return;
        }
        s.chain = s.chain.then(() => this.#execute(s, req.payload));
        return;
      }
      case "CLOSE": {
        const s = this.#sessions.get(req.sessionId);
        if (s) this.#close(s);
        return;
      }
      case "ACK": {
        const s = this.#sessions.get(req.sessionId);
        if (!s) return;
        s.unacked = Math.max(0, s.unacked - (req.acked ?? 0));
        if (s.unacked <= FLOW_WINDOW_BYTES) this.#resume(s);
        return;
      }
      default:
        this.#logger?.warn("unknown session op", { op: req.op });
    }
  }

  async #open(s: Session, startup: Record<string, string>): Promise<void> {
    const refusal = this.#canServe();
    if (refusal) {
      this.#end(s, refusal);
      return;
    }
    let backend: BackendConn;
    try {
      backend = await this.#pool.acquire(s.user, s.database);
    } catch (e) {
      this.#end(s, toPgError(e));
      return;
    }
    s.backend = backend;
    if (s.closing) {
      await this.#release(s);
      return;
    }
    try {
      const settings = startupSettings(startup);
      if (settings.length) await backend.query(settingsSql(settings));
    } catch (e) {
      // Postgres refuses bad startup settings with a FATAL error; so do we.
      await this.#release(s);
      this.#end(s, withSeverity(toPgError(e), "FATAL"));
      return;
    }
    const w = this.#writer;
    w.reset();
    for (const [k, v] of backend.params) writeParameterStatus(w, k, v);
    s.unacked += w.length;
    this.#sink.frames(s.id, w.view());
    this.#sink.done(s.id, this.#reserved(s));
    s.pump = this.#runPump(s, backend);
  }

  /** Passes everything the pinned backend sends to the session until the session closes. */
  async #runPump(s: Session, backend: BackendConn): Promise<void> {
    try {
      await backend.pump({
        frames: (frames) => {
          if (s.closing) return;
          s.unacked += frames.length;
          this.#sink.frames(s.id, frames);
          const stream = this.#sink.congested();
          const window = s.unacked > FLOW_WINDOW_BYTES
            ? new Promise<void>((r) => (s.resumePump = r))
            : null;
          if (stream && window) return Promise.all([stream, window]).then(() => {});
          return stream ?? window ?? undefined;
        },
        ready: () => {
          if (s.expectedReady > 0) s.expectedReady--;
          if (s.closing) return s.expectedReady > 0;
          if (s.expectedReady === 0) this.#sink.done(s.id, this.#reserved(s));
          return true;
        },
      });
    } catch (e) {
      this.#pool.discard(backend);
      s.backend = undefined;
      if (s.closing) return;
      this.#logger?.warn("backend connection lost", { session: s.id, error: e });
      this.#end(s, withSeverity(toPgError(e), "FATAL"));
      return;
    }
    await this.#release(s);
  }

  async #execute(s: Session, payload: Uint8Array): Promise<void> {
    const backend = s.backend;
    if (!backend || s.closing) return;
    try {
      s.expectedReady += countSyncPoints(payload);
      await backend.send(payload);
    } catch {
      // The pump sees the loss and ends the session.
    }
  }

  #reserved(s: Session): number {
    if (!s.backend) return 0;
    let mask = ReservationReason.SESSION;
    if (s.backend.txStatus !== 0x49) mask |= ReservationReason.TRANSACTION;
    return mask;
  }

  /** Ends a session with a FATAL error frame; the gateway closes the client. */
  #end(s: Session, err: PgError): void {
    this.#sessions.delete(s.id);
    this.#fail(s.id, err, true);
  }

  #fail(sessionId: number, err: PgError, closed: boolean): void {
    const w = this.#writer;
    w.reset();
    writeErrorResponse(w, err);
    this.#sink.frames(sessionId, w.view());
    this.#sink.done(sessionId, 0, closed);
  }

  #resume(s: Session): void {
    const r = s.resumePump;
    s.resumePump = undefined;
    r?.();
  }

  #close(s: Session): void {
    if (s.closing) return;
    s.closing = true;
    this.#resume(s); // results are dropped from now on: let the pump run to its end
    this.#sessions.delete(s.id);
    s.chain = s.chain.then(() => this.#stopPump(s));
  }

  /**
   * Ends the pinned backend's pump: a query still running for a client that went away is
   * cancelled, an open COPY is failed, and a Sync makes the backend answer one last
   * ReadyForQuery, after which the pump stops and the backend is cleaned and released.
   */
  async #stopPump(s: Session): Promise<void> {
    const b = s.backend;
    if (!b || !s.pump) return;
    // Count the Sync first: the pump must not stop on the ReadyForQuery of a cancelled query
    // that arrives while we are still cancelling, or the Sync's reply would reach the backend's
    // next user.
    const running = s.expectedReady > 0;
    s.expectedReady++;
    const copyIn = b.copyIn;
    if (running) await b.cancel();
    const w = new WireWriter(64);
    if (copyIn) {
      w.begin(FrontendCode.CopyFail).cstring("client disconnected").end();
    }
    writeSync(w);
    try {
      await b.send(w.view());
    } catch {
      // lost: the pump ends with an error and discards it
    }
  }

  async #release(s: Session): Promise<void> {
    const b = s.backend;
    s.backend = undefined;
    if (b) await this.#pool.release(b);
  }

  /** Closes every session (the stream ended: the gateway went away). */
  closeAll(): void {
    for (const s of [...this.#sessions.values()]) this.#close(s);
  }
}

/** How many ReadyForQuery frames the payload will produce: one per Query, Sync and FunctionCall. */
export function countSyncPoints(payload: Uint8Array): number {
  let n = 0;
  let off = 0;
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  while (off + 5 <= payload.length) {
    const code = payload[off];
    const len = dv.getInt32(off + 1);
    // The gateway cuts frames with a checked reader; anything else is a broken peer.
    if (len < 4) throw new RangeError(`invalid frame length ${len} in data-plane payload`);
    if (
      code === FrontendCode.Query || code === FrontendCode.Sync ||
      code === FrontendCode.FunctionCall
    ) n++;
    off += 1 + len;
  }
  return n;
}
