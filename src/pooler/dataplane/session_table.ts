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
} from "../../shared/wire/mod.ts";
import { ReservationReason, type SessionRequest } from "../../shared/grpc/types.ts";
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

  constructor(id: number, user: string, database: string) {
    this.id = id;
    this.user = user;
    this.database = database;
  }
}

/**
 * The sessions of one data-plane stream. Each session's requests run one after another; the
 * backend is reserved for the session while it is open (whole-session pinning until session state
 * replay lands) and cleaned before it goes back to the pool.
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
    try {
      s.backend = await this.#pool.acquire(s.user, s.database);
    } catch (e) {
      this.#end(s, toPgError(e));
      return;
    }
    if (s.closing) {
      await this.#release(s);
      return;
    }
    try {
      const settings = startupSettings(startup);
      if (settings.length) await s.backend.query(settingsSql(settings));
    } catch (e) {
      const err = toPgError(e);
      // Postgres refuses bad startup settings with a FATAL error; so do we.
      await this.#release(s);
      this.#end(s, withSeverity(err, "FATAL"));
      return;
    }
    const w = this.#writer;
    w.reset();
    for (const [k, v] of s.backend.params) writeParameterStatus(w, k, v);
    this.#sink.frames(s.id, w.view());
    this.#sink.done(s.id, this.#reserved(s));
  }

  async #execute(s: Session, payload: Uint8Array): Promise<void> {
    const backend = s.backend;
    if (!backend || s.closing) return;
    const readyCount = countSyncPoints(payload);
    try {
      await backend.run(payload, readyCount, (frames) => {
        this.#sink.frames(s.id, frames);
        return this.#sink.congested() ?? undefined;
      });
    } catch (e) {
      this.#logger?.warn("backend lost mid-query", { session: s.id, error: e });
      this.#pool.discard(backend);
      s.backend = undefined;
      this.#end(s, withSeverity(toPgError(e), "FATAL"));
      return;
    }
    this.#sink.done(s.id, this.#reserved(s));
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

  #close(s: Session): void {
    if (s.closing) return;
    s.closing = true;
    this.#sessions.delete(s.id);
    // A query still running for a client that went away is cancelled, not waited out.
    if (s.backend?.busy) s.backend.cancel();
    s.chain = s.chain.then(() => this.#release(s));
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

/** How many ReadyForQuery frames the payload will produce: one per Query and per Sync. */
export function countSyncPoints(payload: Uint8Array): number {
  let n = 0;
  let off = 0;
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  while (off + 5 <= payload.length) {
    const code = payload[off];
    if (code === FrontendCode.Query || code === FrontendCode.Sync) n++;
    off += 1 + dv.getInt32(off + 1);
  }
  return n;
}
