import {
  connectionFailure,
  type PgError,
  SqlState,
  toPgError,
  withSeverity,
} from "../../shared/errors/mod.ts";
import {
  BackendCode,
  concatBytes,
  FrameReader,
  FrontendCode,
  parseErrorFields,
  TERMINATE,
  WireWriter,
  writeErrorResponse,
  writeParameterStatus,
  writeQuery,
  writeSync,
} from "../../shared/wire/mod.ts";
import {
  CloseReason,
  DoneFlag,
  FLOW_WINDOW_BYTES,
  isDraining,
  ReservationReason,
  type SessionRequest,
} from "../../shared/grpc/types.ts";
import type { Logger } from "../../shared/log/mod.ts";
import type { BackendConn } from "../backend/backend_conn.ts";
import { type Pool, poolKey } from "../pool/pool.ts";
import { backendStartupParams } from "./startup_params.ts";
import { SyncCounter, SyncEnd, syncEnd } from "./sync_counter.ts";
import { SessionState } from "./session_state.ts";
import { rewritePidFrames } from "./pid_functions.ts";
import { SessionPids } from "./session_pids.ts";

/** `session`: a session keeps one backend while it lives; `transaction`: between transactions. */
export type PoolMode = "session" | "transaction";

/** Statements a shared backend may accumulate before it is cleared on checkout. */
const MAX_BACKEND_STATEMENTS = 500;

export { countSyncPoints } from "./sync_counter.ts";

/** Whether `payload` is a run of whole frontend frames (nothing cut off at its end). */
function wholeFrames(payload: Uint8Array): boolean {
  let off = 0;
  const n = payload.length;
  while (off + 5 <= n) {
    const len = ((payload[off + 1] << 24) | (payload[off + 2] << 16) | (payload[off + 3] << 8) |
      payload[off + 4]) >>> 0;
    if (len < 4) return false; // malformed: the reader's checks report it
    off += 1 + len;
  }
  return off === n;
}

/** How long closing a session may take before its backend is closed instead of reused. */
const CLOSE_TIMEOUT_MS = 10_000;
/**
 * A draining close waits for the client's last answers while the backend keeps sending; after
 * this long without output it goes on (see #stopPump).
 */
const DRAIN_IDLE_MS = 2000;
/** Request bytes written to Postgres are acknowledged to the gateway in steps of this size. */
const REQUEST_ACK_BYTES = 256 * 1024;

/** Where a session's responses go (the data-plane stream, batched). */
export interface ResponseSink {
  /** Queues raw backend frames (copied) for a session. */
  frames(sessionId: number, frames: Uint8Array): void;
  /**
   * Marks the session's current request complete; `flags`: DoneFlag bits; `settled`: EXECUTE
   * requests taken so far.
   */
  done(
    sessionId: number,
    reserved: number,
    closed?: boolean,
    flags?: number,
    settled?: number,
  ): void;
  /** A promise while the stream is congested (callers wait before producing more). */
  congested(): Promise<void> | null;
  /** Flow control: `bytes` more of the session's requests were written to Postgres. */
  ackRequests(sessionId: number, bytes: number): void;
}

class Session {
  readonly id: number;
  readonly user: string;
  readonly database: string;
  backend?: BackendConn;
  chain: Promise<void> = Promise.resolve();
  /** The gateway closed the session (requests sent before still run). */
  closing = false;
  /** How the client's session ended (CloseReason), once closing. */
  closeReason: number = CloseReason.GONE;
  /** Results are no longer passed on (the client is gone, or the pooler's own close queries run). */
  dropResults = false;
  /** The session is over: requests still queued are not run. */
  discard = false;
  /**
   * While the pooler's own close queries run for a draining session: what the backend sends,
   * kept until the close marker (see #passPending).
   */
  captured?: Uint8Array[];
  /** Wakes a close that waits for the client's last answers (see #stopPump). */
  wakeCloser?: () => void;
  /** The session was reported closed to the gateway. */
  ended = false;
  /** While closing: when the backend last sent something (Date.now()). */
  lastOutput = 0;
  /** With a PROTOCOL_ERROR or MALFORMED close: the client's offending bytes. */
  closePayload?: Uint8Array;
  /** Postgres answered the offending bytes itself (DoneFlag.ANSWERED). */
  answered = false;
  /** ReadyForQuery frames still owed for what was sent (one per Query, Sync, FunctionCall). */
  expectedReady = 0;
  /** The running read pump (while the backend is pinned). */
  pump?: Promise<void>;
  /** Result bytes sent and not yet acknowledged by the gateway. */
  unacked = 0;
  /** Resolves the pump's wait once acknowledgements bring `unacked` under the window. */
  resumePump?: () => void;
  /** Finds the sync points in the request stream (frames may span payloads). */
  counter?: SyncCounter;
  /** Request bytes written to Postgres and not yet acknowledged to the gateway. */
  requestAckable = 0;
  /** Transaction pooling: what the session needs replayed on whichever backend serves it. */
  state?: SessionState;
  /** Transaction pooling: a frame split across request pieces, while it is put together. */
  requests?: FrameReader;
  /**
   * Extended-protocol messages were sent after the last sync point: Postgres holds state for
   * them (an open implicit transaction) until the next one, so the backend must not be given
   * back to the pool, where another session's Sync would commit them.
   */
  unsynced = false;
  /** Requests received and not yet sent (the backend must not be given back meanwhile). */
  inFlight = 0;
  /** EXECUTE requests taken (sent on, or buffered as part of a frame), for `done`. */
  taken = 0;
  /** A read-only session for a replica. */
  replica = false;
  /** The pid the client knows the session by (its BackendKeyData's); 0 when not given. */
  clientPid = 0;
  /** Ends the session's registration in the pooler's SessionPids. */
  unregisterPid?: () => void;
  /** The startup parameters backends of this session are opened with. */
  params: Record<string, string> = {};
  /** The pool its backends come from (user, database, startup parameters). */
  poolKey = "";
  /** Set while the backend goes back to the pool between transactions. */
  detaching?: Promise<void>;
  finishDetach?: () => void;

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
  readonly #mode: PoolMode;
  readonly #pool: Pool;
  readonly #sink: ResponseSink;
  readonly #logger?: Logger;
  readonly #canServe: (replica: boolean) => PgError | null;
  readonly #sessions = new Map<number, Session>();
  readonly #writer = new WireWriter(256);
  readonly #pids: SessionPids;

  constructor(opts: {
    pool: Pool;
    sink: ResponseSink;
    canServe: (replica: boolean) => PgError | null;
    logger?: Logger;
    mode?: PoolMode;
    /** Which backend serves which session, shared by every stream of the pooler. */
    pids?: SessionPids;
  }) {
    this.#mode = opts.mode ?? "transaction";
    this.#pids = opts.pids ?? new SessionPids();
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
        s.replica = req.replica ?? false;
        s.clientPid = req.clientPid ?? 0;
        this.#sessions.set(s.id, s);
        if (s.clientPid && this.#mode === "transaction") {
          s.unregisterPid = this.#pids.opened(s.clientPid, s.user, () => this.#attachIdle(s));
        }
        s.chain = this.#open(s, req.startup ?? {});
        return;
      }
      case "EXECUTE": {
        const s = this.#sessions.get(req.sessionId);
        if (!s) {
          this.#fail(req.sessionId, connectionFailure("session is not open on this pooler"), true);
          return;
        }
        s.inFlight++;
        s.chain = s.chain.then(() =>
          this.#mode === "transaction"
            ? this.#executeTx(s, req.payload)
            : this.#execute(s, req.payload)
        );
        return;
      }
      case "CLOSE": {
        const s = this.#sessions.get(req.sessionId);
        const reason = req.reason ?? CloseReason.GONE;
        if (s) {
          if (req.payload.length) s.closePayload = req.payload.slice();
          this.#close(s, reason);
        } else if (isDraining(reason)) this.#sink.done(req.sessionId, 0, true); // ended already
        return;
      }
      case "CANCEL": {
        const s = this.#sessions.get(req.sessionId);
        // Like Postgres, cancel only what runs now; an idle session has nothing to cancel.
        if (s?.backend && s.expectedReady > 0 && !s.closing) s.backend.cancel();
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
    const refusal = this.#canServe(s.replica);
    if (refusal) {
      this.#end(s, refusal, DoneFlag.RETRY);
      return;
    }
    let backend: BackendConn;
    s.params = backendStartupParams(startup);
    s.poolKey = poolKey(s.user, s.database, s.params);
    try {
      backend = await this.#pool.acquire(s.user, s.database, s.params, s.poolKey);
    } catch (e) {
      // Whatever stops a session from starting ends it, as in Postgres: FATAL. When Postgres
      // is out of reach, the gateway may try again elsewhere (RETRY).
      const err = toPgError(e);
      this.#end(s, withSeverity(err, "FATAL"), unavailable(err) ? DoneFlag.RETRY : 0);
      return;
    }
    s.backend = backend;
    if (s.closing) {
      await this.#release(s);
      return;
    }
    try {
      if (this.#mode === "transaction") {
        // The startup parameters are the backend's own: only SETs are replayed.
        s.state = new SessionState(
          s.id,
          s.clientPid ? { session: s.clientPid, map: this.#pids.map } : undefined,
        );
        await this.#applySettings(s.state, backend);
      }
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
    this.#sink.done(s.id, this.#reserved(s), false, this.#doneFlags(s), s.taken);
    if (this.#mode === "transaction") {
      // The session holds no backend until it sends something.
      s.backend = undefined;
      await this.#pool.release(backend, { clean: true });
      return;
    }
    s.pump = this.#runPump(s, backend);
  }

  /** Puts a backend in the session's settings, unless it carries them already. */
  async #applySettings(state: SessionState, backend: BackendConn): Promise<void> {
    const sql = state.settingsSql();
    if (backend.settingsKey === sql) return;
    backend.settingsKey = "";
    await backend.query(sql);
    backend.settingsKey = sql;
    if (backend.statements.size > MAX_BACKEND_STATEMENTS) {
      // Statements of sessions long gone pile up on shared backends: start afresh.
      await backend.query("DEALLOCATE ALL");
      backend.statements.clear();
    }
  }

  /**
   * Transaction pooling: takes a backend for the session (`idle`, when the pool had one at hand)
   * and starts passing its output on.
   */
  async #attach(s: Session, idle: BackendConn | null): Promise<BackendConn> {
    const backend = idle ?? await this.#pool.acquire(s.user, s.database, s.params, s.poolKey);
    try {
      await this.#applySettings(s.state!, backend);
    } catch (e) {
      await this.#pool.release(backend);
      throw e;
    }
    this.#pinned(s, backend);
    return backend;
  }

  #pinned(s: Session, backend: BackendConn): void {
    s.backend = backend;
    s.state!.attachGeneration++;
    s.pump = this.#runPump(s, backend);
  }

  /** Transaction pooling: rewrites and sends a request, taking a backend first if needed. */
  async #executeTx(s: Session, payload: Uint8Array): Promise<void> {
    let counted = false;
    try {
      if (s.discard) return;
      let frames: Uint8Array;
      if (!s.requests && wholeFrames(payload)) {
        frames = payload; // the common case: the message's own bytes, whole frames, no copy
      } else {
        // Frames split across pieces are put back together.
        const r = s.requests ??= new FrameReader({
          initialSize: 256,
          maxFrameSize: 1024 * 1024 * 1024,
        });
        r.push(payload);
        frames = r.takeFrames().slice();
        if (!r.buffered()) s.requests = undefined;
        if (!frames.length) {
          s.taken++;
          this.#ackRequest(s, payload.length); // held here until the frame is whole
          return; // only part of a frame so far
        }
      }
      if (s.detaching) await s.detaching;
      let backend = s.backend;
      if (!backend) {
        // A transaction starts here: only on a pooler that serves the primary.
        const refusal = this.#canServe(s.replica);
        if (refusal) {
          this.#cannotRun(s, refusal);
          return;
        }
        // The common case needs no wait: an idle backend already in the session's settings.
        const idle = this.#pool.takeIdle(s.poolKey);
        if (idle && idle.settingsKey === s.state!.settingsSql()) {
          this.#pinned(s, idle);
          backend = idle;
        } else {
          try {
            backend = await this.#attach(s, idle);
          } catch (e) {
            const err = toPgError(e);
            if (unavailable(err)) this.#cannotRun(s, err);
            else this.#end(s, withSeverity(err, "FATAL"));
            return;
          }
        }
      }
      if (s.clientPid) {
        // pg_terminate_backend(pid) of a session without a backend: give it one to signal.
        const targets = s.state!.signalTargets(frames);
        if (targets.length) {
          const superuser = backend.params.get("is_superuser") === "on";
          await this.#pids.reach(targets, { user: s.user, superuser });
        }
      }
      let t: { out: Uint8Array; syncPoints: number; end: number };
      try {
        t = s.state!.translate(frames, backend.statements);
      } catch (e) {
        // Frames the session state cannot read are malformed: Postgres judges them itself and
        // answers with its own error, as it would the client.
        this.#logger?.debug("passing on frames the session state cannot read", { error: e });
        t = { out: frames, ...syncEnd(frames) };
      }
      s.expectedReady += t.syncPoints;
      if (t.end !== SyncEnd.SAME) s.unsynced = t.end === SyncEnd.UNSYNCED;
      s.inFlight--;
      s.taken++;
      counted = true;
      await this.#send(s, backend, t.out, payload.length);
    } catch (e) {
      this.#logger?.warn("malformed data-plane payload; closing the session", { error: e });
      this.#close(s, CloseReason.GONE);
    } finally {
      if (!counted) s.inFlight--;
    }
  }

  /**
   * Transaction pooling: whether the backend can go back to the pool now: nothing owed, nothing
   * queued, no transaction open, nothing pinned.
   */
  #canDetach(s: Session, txStatus: number): boolean {
    return this.#mode === "transaction" && !s.closing && s.expectedReady === 0 && !s.unsynced &&
      s.inFlight === 0 && txStatus === 0x49 && s.state!.pins === 0 && !s.backend?.copyIn;
  }

  /** Passes everything the pinned backend sends to the session until the session closes. */
  async #runPump(s: Session, backend: BackendConn): Promise<void> {
    if (s.clientPid) this.#pids.attached(s.clientPid, backend.pid);
    try {
      await backend.pump({
        frames: (frames) => {
          if (s.closing) s.lastOutput = Date.now();
          if (s.captured) {
            s.captured.push(frames.slice());
            return;
          }
          if (s.dropResults) return;
          s.unacked += frames.length;
          this.#sink.frames(s.id, frames);
          const stream = this.#sink.congested();
          const window = s.unacked > FLOW_WINDOW_BYTES
            ? new Promise<void>((r) => (s.resumePump = r))
            : null;
          if (stream && window) return Promise.all([stream, window]).then(() => {});
          return stream ?? window ?? undefined;
        },
        ready: (txStatus) => {
          if (s.expectedReady > 0) s.expectedReady--;
          if (s.closing) this.#wakeCloser(s);
          // A closing session's pump ends at its close marker (see #stopPump).
          if (!s.closing && s.expectedReady === 0) {
            this.#sink.done(s.id, this.#reserved(s), false, this.#doneFlags(s), s.taken);
          }
          if (this.#canDetach(s, txStatus)) {
            s.detaching = new Promise((r) => (s.finishDetach = r));
            return false;
          }
          return true;
        },
        inspect: (code, body) => {
          // A COPY FROM that starts while the session closes: the close stops waiting for it.
          if (code === BackendCode.CopyInResponse && s.closing) {
            queueMicrotask(() => this.#wakeCloser(s));
          }
          // A notification names its sender by the pid its client knows it by.
          if (code === BackendCode.NotificationResponse && s.clientPid && body.length >= 4) {
            const dv = new DataView(body.buffer, body.byteOffset, 4);
            const session = this.#pids.sessionOf(dv.getInt32(0));
            if (session) dv.setInt32(0, session);
          }
          return s.state ? s.state.inspect(code, body, backend.statements) : true;
        },
      });
    } catch (e) {
      this.#unmapPid(s, backend);
      this.#pool.discard(backend);
      s.backend = undefined;
      if (s.closing) {
        // Postgres ended the connection (a COPY the client abandoned makes it do so).
        this.#wakeCloser(s);
        this.#closed(s);
        return;
      }
      this.#forget(s);
      if (backend.sawFatal) {
        // Postgres already told the client why (e.g. terminated by an administrator).
        this.#sink.done(s.id, 0, true);
      } else {
        this.#logger?.warn("backend connection lost", { session: s.id, error: e });
        this.#fail(s.id, withSeverity(toPgError(e), "FATAL"), true);
      }
      return;
    }
    this.#unmapPid(s, backend);
    if (s.detaching && !s.closing) {
      // Between transactions: the backend goes back as it is (settings kept for reuse).
      s.backend = undefined;
      s.pump = undefined;
      await this.#pool.release(backend, { clean: true, retire: s.state?.touchesTempSchema });
      const done = s.finishDetach;
      s.detaching = undefined;
      s.finishDetach = undefined;
      done?.();
      return;
    }
    await this.#release(s);
    if (s.closing) {
      this.#passPending(s);
      this.#closed(s);
    }
  }

  /**
   * Of the output captured during the close, passes on what Postgres itself would have sent the
   * client: the answers to its unsynced extended-protocol messages come before those of the
   * pooler's close queries (up to the first ReadyForQuery, less the first ROLLBACK's notice and
   * tag). Postgres flushes its output at an error, so the answers up to the last ErrorResponse
   * reach the client; on a protocol violation the FATAL error the gateway adds would flush all
   * of them. The rest Postgres never sends (it leaves buffered output unsent when it exits).
   */
  #passPending(s: Session): void {
    const captured = s.captured;
    s.captured = undefined;
    if (!captured?.length) return;
    const bytes = captured.length === 1 ? captured[0] : concatBytes(captured);
    const frames: { code: number; start: number; end: number }[] = [];
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let off = 0; off + 5 <= bytes.length;) {
      const end = off + 1 + dv.getInt32(off + 1);
      if (bytes[off] === BackendCode.ReadyForQuery) break;
      frames.push({ code: bytes[off], start: off, end });
      off = end;
    }
    const last = frames[frames.length - 1];
    if (last?.code === BackendCode.CommandComplete && isTag(bytes, last, "ROLLBACK")) {
      frames.pop();
      // The ROLLBACK's "there is no transaction in progress" warning, not a notice of the client's.
      const warning = frames[frames.length - 1];
      if (
        warning?.code === BackendCode.NoticeResponse &&
        parseErrorFields(bytes.subarray(warning.start + 5, warning.end)).sqlstate ===
          SqlState.NO_ACTIVE_SQL_TRANSACTION
      ) frames.pop();
    }
    let keep = frames.length;
    if (s.closeReason !== CloseReason.PROTOCOL_ERROR) {
      while (keep > 0 && frames[keep - 1].code !== BackendCode.ErrorResponse) keep--;
    }
    if (keep) this.#sink.frames(s.id, bytes.subarray(0, frames[keep - 1].end));
  }

  async #execute(s: Session, payload: Uint8Array): Promise<void> {
    s.inFlight--;
    s.taken++;
    const backend = s.backend;
    if (!backend || s.discard) return;
    const counter = s.counter ??= new SyncCounter();
    // Frames split across requests are passed on as they come (never rewritten).
    const whole = s.clientPid !== 0 && counter.atBoundary && wholeFrames(payload);
    try {
      s.expectedReady += counter.feed(payload);
    } catch (e) {
      this.#logger?.warn("malformed data-plane payload; closing the session", { error: e });
      this.#close(s, CloseReason.GONE);
      return;
    }
    const out = whole ? rewritePidFrames(payload, s.clientPid, this.#pids.map) : payload;
    await this.#send(s, backend, out, payload.length);
  }

  /**
   * Writes a request to the session's backend, then acknowledges the `requestBytes` it came from
   * to the gateway (in steps, for flow control). A lost backend is left to the pump, which sees
   * the loss and ends the session.
   */
  async #send(s: Session, backend: BackendConn, out: Uint8Array, requestBytes: number) {
    try {
      await backend.send(out);
    } catch {
      return;
    }
    this.#ackRequest(s, requestBytes);
  }

  /** Acknowledges request bytes to the gateway, in steps (flow control). */
  #ackRequest(s: Session, bytes: number): void {
    s.requestAckable += bytes;
    if (s.requestAckable >= REQUEST_ACK_BYTES && !s.ended) {
      this.#sink.ackRequests(s.id, s.requestAckable);
      s.requestAckable = 0;
    }
  }

  /** STATEFUL unless the session could open afresh on another pooler and carry on. */
  #doneFlags(s: Session): number {
    return s.state && !s.state.stateful && !s.backend?.copyIn && !s.requests && !s.unsynced
      ? 0
      : DoneFlag.STATEFUL;
  }

  /**
   * This pooler cannot run the session's request (not the primary any more, or Postgres down),
   * and nothing of it was sent: a session with no state here is told to try elsewhere
   * (RETRY, no error for the client); one with state ends with `err`.
   */
  #cannotRun(s: Session, err: PgError): void {
    if (this.#doneFlags(s) & DoneFlag.STATEFUL) {
      this.#end(s, withSeverity(err, "FATAL"));
      return;
    }
    this.#forget(s);
    s.discard = true; // requests queued behind this one go with it, unrun
    s.ended = true;
    this.#sink.done(s.id, 0, true, DoneFlag.RETRY, s.taken);
  }

  #reserved(s: Session): number {
    if (!s.backend) return 0;
    let mask = s.state ? s.state.pins : ReservationReason.SESSION;
    if (s.backend.txStatus !== 0x49) mask |= ReservationReason.TRANSACTION;
    return mask;
  }

  /** Ends a session with a FATAL error frame; the gateway closes the client. */
  #end(s: Session, err: PgError, flags = 0): void {
    this.#forget(s);
    s.discard = true;
    s.ended = true;
    this.#fail(s.id, err, true, flags);
  }

  #fail(sessionId: number, err: PgError, closed: boolean, flags = 0): void {
    const w = this.#writer;
    w.reset();
    writeErrorResponse(w, err);
    this.#sink.frames(sessionId, w.view());
    this.#sink.done(sessionId, 0, closed, flags);
  }

  #resume(s: Session): void {
    const r = s.resumePump;
    s.resumePump = undefined;
    r?.();
  }

  /**
   * The gateway closes the session. Requests it sent before run to their end, as in Postgres (a
   * backend never notices its client gone before it reads again); then #stopPump settles the
   * backend. With a draining reason the answers keep flowing until the session is reported
   * closed; a later GONE drops them.
   */
  #close(s: Session, reason: number): void {
    if (s.closing) {
      if (!isDraining(reason)) {
        s.dropResults = true;
        this.#resume(s);
        this.#wakeCloser(s);
      }
      return;
    }
    s.closing = true;
    s.closeReason = reason;
    s.lastOutput = Date.now();
    s.dropResults = !isDraining(reason);
    if (s.dropResults) this.#resume(s); // nothing more goes out: let the pump run to its end
    s.chain = s.chain.then(() => this.#stopPump(s));
  }

  #wakeCloser(s: Session): void {
    const w = s.wakeCloser;
    s.wakeCloser = undefined;
    w?.();
  }

  /** The session is over on this pooler; a draining gateway hears `closed`. */
  #closed(s: Session): void {
    if (s.ended) return;
    s.ended = true;
    this.#forget(s);
    if (isDraining(s.closeReason)) {
      this.#sink.done(s.id, 0, true, s.answered ? DoneFlag.ANSWERED : 0);
    }
  }

  /**
   * Settles the pinned backend so it can be reused, without ever committing what the client
   * did not: once the client's last answers are out (draining), an unfinished COPY FROM ends as
   * Postgres would end it for this client (Terminate: the backend gets the Terminate and fails
   * the COPY; EOF: its socket is shut down likewise, and it is not reused), or else is failed
   * (CopyFail); then ROLLBACK, which also aborts an implicit transaction an unsynced Execute left
   * open, Sync to leave an extended-protocol error state, ROLLBACK again for a transaction block
   * that error left, and a marker query that tells the pump where the session's output ends.
   * No Sync is sent while an unsynced Execute's implicit transaction may be open: that would
   * commit it. A backend that does not settle in time is closed instead of reused.
   */
  async #stopPump(s: Session): Promise<void> {
    if (s.detaching) await s.detaching;
    const b = s.backend;
    if (!b || !s.pump) {
      this.#closed(s);
      return;
    }
    // The client's last answers first (a COPY FROM waiting for data answers only once ended).
    // After an extended-protocol error Postgres skips everything up to a Sync, Queries too, so
    // some answers counted here never come: once the backend has been silent for a while, the
    // close goes on (its Sync ends the skipping; the output that follows is sorted out at the
    // marker, #passPending).
    while (!s.dropResults && s.backend === b && s.expectedReady > 0 && !b.copyIn) {
      // A pump parked on the flow-control window (a slow client) is not a silent backend.
      if (s.resumePump) s.lastOutput = Date.now();
      const idle = Date.now() - s.lastOutput;
      if (idle >= DRAIN_IDLE_MS) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        s.wakeCloser = r;
        timer = setTimeout(r, DRAIN_IDLE_MS - idle);
      });
      clearTimeout(timer);
    }
    if (s.backend !== b) return; // the backend was lost meanwhile; the pump reported it
    const timer = setTimeout(() => {
      this.#logger?.warn("backend did not settle after the session closed; closing it", {
        session: s.id,
      });
      b.close();
    }, CLOSE_TIMEOUT_MS);
    s.pump.finally(() => clearTimeout(timer));
    if (b.copyIn && !s.dropResults) {
      if (s.closeReason === CloseReason.TERMINATE) {
        await b.send(TERMINATE).catch(() => {});
      } else {
        if (s.closePayload) {
          // COPY judges message types its own way: let Postgres answer the offending bytes.
          await b.send(s.closePayload).catch(() => {});
          s.answered = true;
        }
        b.shutdownWrite();
      }
      return; // Postgres ends the connection; the pump sees it and discards the backend
    }
    const token = `multigres_close_${crypto.randomUUID().replaceAll("-", "")}`;
    b.expectCloseMarker(token);
    const copyIn = b.copyIn;
    if (s.closeReason === CloseReason.SHUTDOWN && s.expectedReady > 0) await b.cancel();
    // What follows answers the pooler's own queries; a draining session's output still pending
    // in Postgres (unsynced extended-protocol messages) comes first: it is captured and sorted
    // out at the marker.
    if (!s.dropResults) s.captured = [];
    s.dropResults = true;
    this.#resume(s); // nothing more goes to the client uncounted: no flow-control wait
    const w = new WireWriter(128);
    if (copyIn) w.begin(FrontendCode.CopyFail).cstring("client disconnected").end();
    writeQuery(w, "ROLLBACK");
    writeSync(w);
    writeQuery(w, "ROLLBACK");
    writeQuery(w, `SELECT 1 AS "${token}"`);
    try {
      await b.send(w.view());
    } catch {
      // lost: the pump ends with an error and the backend is discarded
    }
  }

  #forget(s: Session): void {
    this.#sessions.delete(s.id);
    s.unregisterPid?.();
    s.unregisterPid = undefined;
  }

  /**
   * Transaction pooling: gives an idle session a backend (in its order of requests), so that
   * another session's pg_terminate_backend or pg_cancel_backend of its pid reaches it as in
   * Postgres. It keeps the backend until its next transaction ends.
   */
  #attachIdle(s: Session): Promise<void> {
    const run = s.chain.then(async () => {
      if (s.backend || s.closing || s.discard || this.#sessions.get(s.id) !== s) return;
      if (this.#canServe(s.replica)) return;
      try {
        await this.#attach(s, this.#pool.takeIdle(s.poolKey));
      } catch (e) {
        this.#logger?.warn("cannot give a session a backend to signal", {
          session: s.id,
          error: e,
        });
      }
    });
    s.chain = run;
    return run;
  }

  /** The session no longer has `backend`: its pid maps to nothing. */
  #unmapPid(s: Session, backend: BackendConn): void {
    if (s.clientPid) this.#pids.detached(s.clientPid, backend.pid);
  }

  async #release(s: Session): Promise<void> {
    const b = s.backend;
    s.backend = undefined;
    if (b) await this.#pool.release(b, { retire: s.state?.touchesTempSchema });
  }

  /** Closes every session (the stream ended: the gateway went away). */
  closeAll(): void {
    for (const s of [...this.#sessions.values()]) this.#close(s, CloseReason.SHUTDOWN);
  }
}

/** Whether the CommandComplete frame `f` of `bytes` carries `tag`. */
function isTag(bytes: Uint8Array, f: { start: number; end: number }, tag: string): boolean {
  if (f.end - f.start - 5 !== tag.length + 1) return false;
  for (let i = 0; i < tag.length; i++) {
    if (bytes[f.start + 5 + i] !== tag.charCodeAt(i)) return false;
  }
  return true;
}

/** Errors that say Postgres cannot be reached now, before anything was sent to it. */
function unavailable(err: PgError): boolean {
  return err.retryable || err.sqlstate === SqlState.CANNOT_CONNECT_NOW ||
    err.sqlstate === SqlState.CONNECTION_FAILURE;
}
