import {
  PgError,
  protocolViolation,
  SqlState,
  toPgError,
  withSeverity,
} from "../../shared/errors/mod.ts";
import { authenticateClient, defaultAccess } from "../hba/mod.ts";
import {
  BackendCode,
  CANCEL_REQUEST_CODE,
  concatBytes,
  FrameReader,
  FrontendCode,
  GSSENC_REQUEST_CODE,
  parseParameterStatus,
  parseStartupPacket,
  READY_IDLE,
  slab,
  SSL_REQUEST_CODE,
  unsupportedProtocol,
  WireWriter,
  writeBackendKeyData,
  writeErrorResponse,
  writeNegotiateProtocolVersion,
} from "../../shared/wire/mod.ts";
import type { Logger } from "../../shared/log/mod.ts";
import type { SessionListener } from "../poolergateway/pooler_conn.ts";
import {
  CloseReason,
  DoneFlag,
  FLOW_ACK_BYTES,
  FLOW_WINDOW_BYTES,
} from "../../shared/grpc/types.ts";
import type { GatewayHandler, SessionBackend, SessionIdentity } from "./handler.ts";
import type { Message, StatementRouter } from "../shardsession/mod.ts";
import { writeAll } from "./_io.ts";
import type { ClientTransport } from "./transport.ts";

export interface ClientSessionOptions {
  logger?: Logger;
  /** A client must finish startup and authentication within this time (Postgres: 60 s). */
  authTimeoutMs?: number;
  /** Largest frame a client may send after startup. */
  maxFrameSize?: number;
  /** Sessions of this listener read from replicas (the gateway's replica port). */
  replica?: boolean;
  /**
   * How long a session waits for a primary to serve it when its pooler cannot (a failover or
   * switchover): its requests wait, then go to the new primary.
   */
  failoverWindowMs?: number;
  /** The client's IP address, for pg_hba rules (absent: only `all` addresses match). */
  remoteAddress?: string;
}

/**
 * Postgres's limits on a message's declared length (`PQ_LARGE_MESSAGE_LIMIT`,
 * `PQ_SMALL_MESSAGE_LIMIT`): Query, Parse, Bind, FunctionCall and CopyData may be large; every other
 * type is refused past 10,000 bytes, as soon as its header arrives.
 */
const LARGE_MESSAGE_LIMIT = 0x3fffffff - 1;
const SMALL_MESSAGE_LIMIT = 10_000;
const LARGE_TYPES = new Uint8Array(256);
for (const c of "QPBFd") LARGE_TYPES[c.charCodeAt(0)] = 1;
/** Postgres's limit on a password or SASL message (`PG_MAX_AUTH_TOKEN_LENGTH`). */
const AUTH_MESSAGE_LIMIT = 65535;
function messageLimit(code: number): number {
  if (code === FrontendCode.Password) return AUTH_MESSAGE_LIMIT;
  return LARGE_TYPES[code] ? LARGE_MESSAGE_LIMIT : SMALL_MESSAGE_LIMIT;
}

/** Frontend message types relayed to the backend after startup (Terminate is handled here). */
const FORWARDED: Record<number, true> = {
  [FrontendCode.Query]: true,
  [FrontendCode.Parse]: true,
  [FrontendCode.Bind]: true,
  [FrontendCode.Describe]: true,
  [FrontendCode.Execute]: true,
  [FrontendCode.Close]: true,
  [FrontendCode.Sync]: true,
  [FrontendCode.Flush]: true,
  [FrontendCode.FunctionCall]: true,
  [FrontendCode.CopyData]: true,
  [FrontendCode.CopyDone]: true,
  [FrontendCode.CopyFail]: true,
};
/** Messages the statement router sees in units (COPY data and function calls go straight on). */
const UNIT_TYPES: Record<number, true> = {
  [FrontendCode.Query]: true,
  [FrontendCode.Parse]: true,
  [FrontendCode.Bind]: true,
  [FrontendCode.Describe]: true,
  [FrontendCode.Execute]: true,
  [FrontendCode.Close]: true,
  [FrontendCode.Sync]: true,
  [FrontendCode.Flush]: true,
};
/** A COPY FROM's data messages (the statement router takes them while it runs one on shards). */
const COPY_DATA: Record<number, true> = {
  [FrontendCode.CopyData]: true,
  [FrontendCode.CopyDone]: true,
  [FrontendCode.CopyFail]: true,
};
/** First bytes of a statement that may be DDL the gateway carries out (c, d, a, or a comment). */
const MAYBE_DDL = new Uint8Array(256);
for (const c of "cCdDaA/-") MAYBE_DDL[c.charCodeAt(0)] = 1;
/** Pause between attempts to open a moving session on the primary. */
const MOVE_RETRY_MS = 200;
const SSL_NOT_SUPPORTED = new Uint8Array([0x4e]); // 'N'
const SSL_ACCEPTED = new Uint8Array([0x53]); // 'S'
/**
 * A client's receive buffer starts this small, and reads ask for at least this much room: with
 * 10,000 idle clients every byte here counts. It grows (doubling) for bigger messages.
 */
const CLIENT_READ_BYTES = 1024;
/** A receive buffer larger than this is shrunk back once it is empty. */
const IDLE_BUFFER_MAX = 64 * 1024;

/**
 * One client connection: startup (SSLRequest upgrades to TLS when the transport can, else 'N'),
 * authentication as the pg_hba rules say (../hba), then every frame relayed raw to the session's
 * pooler (simple and extended query protocol, COPY, function calls). Postgres's answers come back
 * untouched; errors we make use Postgres's wording.
 */
export class ClientSession implements SessionListener {
  #conn: ClientTransport;
  readonly #handler: GatewayHandler;
  readonly #logger?: Logger;
  readonly #opts: Required<Omit<ClientSessionOptions, "logger">>;
  readonly #reader: FrameReader;
  readonly #writer = new WireWriter(128);
  #user = "";
  #database = "";
  #startup: Record<string, string> = {};
  #id?: SessionIdentity;
  #backend?: SessionBackend;
  #ended = false;
  /** Bytes queued for the client while a write is in progress (written together, in order). */
  #outQueue: Uint8Array[] = [];
  /** Of the queued bytes, how many are results (acknowledged to the pooler once written). */
  #outResults = 0;
  /** The running write loop; null when everything queued was written. */
  #writing: Promise<void> | null = null;
  /** Result bytes written to the client and not yet acknowledged to the pooler. */
  #ackable = 0;
  /** Request bytes sent to the pooler and not yet acknowledged as written to Postgres. */
  #unackedRequests = 0;
  #requestsAcked?: () => void;
  /**
   * How the client's side of the session ended (Terminate, EOF, a protocol violation, gone),
   * once it has; what the pooler is told when the session closes.
   */
  #endReason?: number;
  /** With a protocol violation: the FATAL error sent once the answers before it are out. */
  #finalError?: PgError;
  /** With a protocol violation: the offending message's first bytes, for the pooler. */
  #violationBytes?: Uint8Array;
  /** While a closing session's last answers drain: resolves when the pooler has closed it. */
  #drained?: () => void;
  /** The client sent a startup packet of a malformed length. */
  #badStartup = false;
  /** The connection was upgraded to TLS. */
  #tls = false;
  /** Stops counting the session against its role's and database's connection limits. */
  #releaseAdmission?: () => void;
  #opening?: {
    frames: Uint8Array[];
    resolve: (answer: { closed: boolean; retry: boolean }) => void;
    reject: (e: PgError) => void;
  };
  /** The session's id on the data plane (a new one each time the session moves). */
  #dpId = 0;
  /**
   * Requests sent and not yet settled by the pooler, with the data-plane requests (pieces) each
   * took: what is sent again if the session must move to another pooler.
   */
  #unsettled: { payload: Uint8Array; pieces: number }[] = [];
  /** Pieces of the current data-plane id the pooler settled. */
  #piecesSettled = 0;
  /** From the pooler's last answer: the backend is reserved, or the session has state there. */
  #pinned = false;
  /** From the pooler's last answer: ReservationReason bits. */
  #reserved = 0;
  /** The status byte of the last ReadyForQuery from the session's pooler ('I', 'T' or 'E'). */
  #readyStatus = 0x49;
  /** While the session moves to another pooler: its requests wait for this. */
  #moving: Promise<void> | null = null;
  /**
   * Routes statements to the shards of the database's tablegroups (null: the handler has no
   * sharding, as in protocol tests); see StatementRouter.
   */
  #stmt: StatementRouter | null = null;
  /** The last value the server reported of each of WATCHED_PARAMETERS. */
  readonly #parameters = new Map<string, string>();
  /** #noteStream's place in the pooler session's answers (see there). */
  #streamSkip = 0;
  #streamHeld: Uint8Array | null = null;
  /** Messages of the unit (up to a Query or Sync) being gathered for the statement router. */
  #unit: Message[] = [];
  /** While a unit runs elsewhere than the relay: reading waits for its answer. */
  #busy: Promise<void> | null = null;
  /** Resolved when the relay has answered everything sent (see #relayIdle). */
  #idleWaiters: (() => void)[] = [];
  /** While the relay runs a unit for the statement router: its answer is gathered here. */
  #collector: {
    frames: Uint8Array[];
    resolve: (b: Uint8Array) => void;
    reject: (e: PgError) => void;
  } | null = null;

  constructor(conn: ClientTransport, handler: GatewayHandler, opts: ClientSessionOptions = {}) {
    this.#conn = conn;
    this.#handler = handler;
    this.#logger = opts.logger;
    this.#opts = {
      authTimeoutMs: opts.authTimeoutMs ?? 60_000,
      maxFrameSize: opts.maxFrameSize ?? LARGE_MESSAGE_LIMIT,
      failoverWindowMs: opts.failoverWindowMs ?? 15_000,
      replica: opts.replica ?? false,
      remoteAddress: opts.remoteAddress ?? "",
    };
    this.#reader = new FrameReader({
      initialSize: CLIENT_READ_BYTES,
      maxFrameSize: this.#opts.maxFrameSize,
      frameLimit: (code) => Math.min(messageLimit(code), this.#opts.maxFrameSize),
    });
  }

  /** Serves the connection until it ends. Never throws. */
  async run(): Promise<void> {
    const timer = setTimeout(() => {
      this.#fatal(
        new PgError(SqlState.QUERY_CANCELED, "canceling authentication due to timeout", {
          severity: "FATAL",
        }),
      );
    }, this.#opts.authTimeoutMs);
    try {
      const ok = await this.#startupPhase();
      clearTimeout(timer);
      if (ok) {
        await this.#readyPhase();
        await this.#drain();
      }
    } catch (e) {
      const err = toPgError(e);
      if (!(e instanceof PgError)) this.#logger?.error("session failed", { error: e });
      this.#fatal(err.fatal ? err : withSeverity(err, "FATAL"));
    } finally {
      clearTimeout(timer);
      await this.#finish();
    }
  }

  // ---- startup and authentication ----

  /** Returns false when the client went away before the session was established. */
  async #startupPhase(): Promise<boolean> {
    const r = this.#reader;
    // As Postgres: one SSLRequest and one GSSENCRequest at most (GSSAPI encryption is not offered;
    // once TLS is on, no GSSENCRequest); another one is an unsupported protocol version.
    let sslDone = false;
    let gssDone = false;
    for (;;) {
      // Postgres closes without a word on a malformed startup length (it only logs it).
      if (!(await this.#readUntil(() => this.#cutStartup()))) return false;
      if (this.#badStartup) return false;
      const version = startupCode(r.body);
      if (version === SSL_REQUEST_CODE && !sslDone) {
        const accept = !!this.#conn.startTls && !this.#tls;
        // Bytes after SSLRequest and before the handshake would be trusted as if encrypted
        // (CVE-2021-23214): Postgres refuses them once the handshake is done, and so do we.
        const pipelined = r.buffered() > 0;
        await writeAll(this.#conn, accept ? SSL_ACCEPTED : SSL_NOT_SUPPORTED);
        if (accept && pipelined) {
          // Postgres would now wait for a TLS handshake that the client, busy sending plaintext,
          // never starts, and close at its authentication timeout: close at once instead.
          return false;
        }
        if (pipelined) throw unencryptedAfter("SSL request");
        if (accept) {
          this.#conn = await this.#conn.startTls!();
          this.#tls = true;
          gssDone = true;
        }
        sslDone = true;
        continue;
      }
      if (version === GSSENC_REQUEST_CODE && !gssDone) {
        await writeAll(this.#conn, SSL_NOT_SUPPORTED);
        if (r.buffered() > 0) throw unencryptedAfter("GSSAPI encryption request");
        gssDone = true;
        continue;
      }
      // A CancelRequest of the wrong length: Postgres only logs it and closes.
      if (version === CANCEL_REQUEST_CODE && r.body.length !== 12) return false;
      const pkt = parseStartupPacket(r.body);
      if (pkt.kind === "cancel") {
        // As Postgres: act on it if the key matches, answer nothing, close.
        await this.#handler.cancelRequest(pkt.pid, pkt.secret).catch((e) =>
          this.#logger?.debug("cancel request failed", { error: e })
        );
        return false;
      }
      if (pkt.kind !== "startup") {
        // A second SSLRequest or GSSENCRequest: its code is no protocol version Postgres knows.
        throw unsupportedProtocol(version);
      }
      this.#user = pkt.params.get("user")!;
      this.#database = pkt.params.get("database") || this.#user;
      for (const [k, v] of pkt.params) {
        if (k !== "user" && k !== "database" && !k.startsWith("_pq_.")) this.#startup[k] = v;
      }
      const minor = pkt.version & 0xffff;
      const unknownOpts = [...pkt.params.keys()].filter((k) => k.startsWith("_pq_."));
      if (minor > 0 || unknownOpts.length) {
        const w = this.#writer;
        w.reset();
        writeNegotiateProtocolVersion(w, 0, unknownOpts);
        await writeAll(this.#conn, w.view());
      }
      break;
    }
    if (!(await this.#authenticate())) return false;
    return await this.#openSession();
  }

  /** nextStartup(), where a malformed length sets #badStartup instead of throwing. */
  #cutStartup(): boolean {
    try {
      return this.#reader.nextStartup();
    } catch {
      this.#badStartup = true;
      return true;
    }
  }

  /** Who gets in: pg_hba rules, the method's exchange, the role checks (see ../hba). */
  async #authenticate(): Promise<boolean> {
    const release = await authenticateClient(
      {
        send: (bytes) => writeAll(this.#conn, bytes),
        readPassword: async (what) => (await this.#readPassword(what)) ? this.#reader.body : null,
      },
      {
        user: this.#user,
        database: this.#database,
        tls: this.#tls,
        address: this.#opts.remoteAddress || null,
      },
      {
        credentials: (user, database) => this.#handler.credentials(user, database),
        access: this.#handler.access ?? defaultAccess(),
      },
    );
    if (!release) return false;
    this.#releaseAdmission = release;
    return true;
  }

  /**
   * Reads the client's next password-type message (its type judged at its first byte, as
   * Postgres does). False when the client went away or sent a length Postgres refuses (it closes
   * without a word then).
   */
  async #readPassword(what: string): Promise<boolean> {
    const r = this.#reader;
    let malformed = false;
    const got = await this.#readUntil(() => {
      const code = r.peekCode();
      if (code >= 0 && code !== FrontendCode.Password) {
        throw protocolViolation(`expected ${what} response, got message type ${code}`);
      }
      try {
        return r.next();
      } catch {
        malformed = true;
        return true;
      }
    });
    return got && !malformed;
  }

  async #openSession(): Promise<boolean> {
    const id = this.#handler.newSession(() => {
      this.#backend?.cancel(this.#dpId);
      this.#stmt?.cancel();
    });
    this.#id = id;
    this.#dpId = id.sessionId;
    const answer = await this.#openWithin(Date.now() + this.#opts.failoverWindowMs);
    const { closed, frames } = answer;
    for (const f of frames) this.#sendResults(f);
    if (closed) {
      // The pooler refused the session with a FATAL error, already in `frames`.
      this.#backend = undefined;
      this.#ended = true;
      return false;
    }
    this.#stmt = this.#handler.statementRouter?.(
      { user: this.#user, database: this.#database, startup: this.#startup, clientPid: id.pid },
      {
        collect: (p) => this.#collect(p),
        reserved: () => this.#reserved,
        status: () => this.#readyStatus,
        idle: () => this.#relayIdle(),
        send: (b) => this.#send(b),
        written: () => this.#written(),
        parameter: (name) => this.#parameters.get(name),
      },
    ) ?? null;
    const w = new WireWriter(32);
    writeBackendKeyData(w, id.pid, id.secret);
    w.raw(READY_IDLE);
    this.#send(w.view());
    this.#logger?.debug("session started", { session: id.sessionId, user: this.#user });
    return true;
  }

  /** Opens the session (under #dpId) on `backend`; the frames are its answer. */
  async #openOn(
    backend: SessionBackend,
  ): Promise<{ closed: boolean; retry: boolean; frames: Uint8Array[] }> {
    const frames: Uint8Array[] = [];
    // A new pooler session: its answers start at a message.
    this.#streamSkip = 0;
    this.#streamHeld = null;
    try {
      const answer = await new Promise<{ closed: boolean; retry: boolean }>((resolve, reject) => {
        this.#opening = { frames, resolve, reject };
        backend.open(this.#dpId, {
          user: this.#user,
          database: this.#database,
          startup: this.#startup,
          replica: this.#opts.replica,
          clientPid: this.#id?.pid,
        }, this);
      });
      return { ...answer, frames };
    } finally {
      this.#opening = undefined;
    }
  }

  /**
   * Opens the session (under #dpId, a new id for each further attempt) on the pooler that serves
   * it now. While none can (a failover: the pooler answers RETRY, or it is gone and its
   * registration not expired yet), it tries again until `deadline`; the last answer stands.
   */
  async #openWithin(
    deadline: number,
  ): Promise<{ closed: boolean; retry: boolean; frames: Uint8Array[] }> {
    for (;;) {
      const backend = await this.#handler.route(this.#database, this.#opts.replica);
      this.#backend = backend;
      let answer: { closed: boolean; retry: boolean; frames: Uint8Array[] };
      try {
        answer = await this.#openOn(backend);
      } catch (e) {
        // The link to that pooler broke (onLost): nothing ran there.
        if (Date.now() > deadline || this.#ended) throw e;
        answer = { closed: true, retry: true, frames: [] };
      }
      if (!answer.retry || Date.now() > deadline || this.#ended) return answer;
      this.#dpId = this.#handler.newDataPlaneId();
      await new Promise((r) => setTimeout(r, MOVE_RETRY_MS));
    }
  }

  /**
   * Moves the session to the pooler that serves the primary now (its pooler cannot serve it: a
   * failover or switchover), waiting up to the failover window for one, and sends it the
   * requests the old one did not run. The client sees a pause, not an error. Only a session
   * with nothing pinned or kept on the old pooler moves; see #canMove.
   */
  async #move(resend: Uint8Array[]): Promise<void> {
    this.#backend = undefined;
    const release = this.#handler.waitForPrimary();
    if (!release) {
      this.#fatal(
        new PgError(
          SqlState.TOO_MANY_CONNECTIONS,
          "too many sessions are waiting for a new primary",
          { severity: "FATAL" },
        ),
      );
      return;
    }
    let done!: () => void;
    this.#moving = new Promise((r) => (done = r));
    try {
      this.#dpId = this.#handler.newDataPlaneId();
      const { closed, frames } = await this.#openWithin(
        Date.now() + this.#opts.failoverWindowMs,
      );
      if (closed) {
        this.#backend = undefined;
        if (frames.length) {
          // The pooler's FATAL error says why.
          for (const f of frames) this.#sendResults(f);
          this.#ended = true;
          this.#wake();
        } else {
          this.#fatal(
            new PgError(
              SqlState.CANNOT_CONNECT_NOW,
              `no primary took over within ${this.#opts.failoverWindowMs} ms`,
              { severity: "FATAL" },
            ),
          );
        }
        return;
      }
      // Its ParameterStatus frames are dropped: the client has them from its own start.
      this.#unsettled = [];
      this.#piecesSettled = 0;
      this.#unackedRequests = 0;
      this.#ackable = 0;
      this.#logger?.info("session moved to the new primary", {
        session: this.#id?.sessionId,
        resent: resend.length,
      });
      for (const payload of resend) this.#execute(payload);
    } catch (e) {
      this.#backend = undefined;
      this.#fatal(withSeverity(toPgError(e), "FATAL"));
    } finally {
      release();
      this.#moving = null;
      done();
      this.#wakeReader();
    }
  }

  /** Whether the session may move to another pooler: nothing reserved or kept on this one. */
  #canMove(): boolean {
    return !this.#pinned && !this.#ended && !this.#opening && !!this.#id;
  }

  // ---- the ready phase ----

  async #readyPhase(): Promise<void> {
    const r = this.#reader;
    for (;;) {
      if (this.#moving) {
        await this.#moving;
        continue;
      }
      if (this.#busy) {
        await this.#busy;
        continue;
      }
      this.#forwardBuffered();
      if (this.#ended || this.#endReason !== undefined) return;
      // A unit (or a COPY's data) runs elsewhere: what the client sent after it waits in the
      // buffer for its answer, not for the client to send more.
      if (this.#busy) continue;
      const full = this.#backend?.congested();
      if (full) {
        await full;
        continue;
      }
      if (this.#unackedRequests > FLOW_WINDOW_BYTES) {
        // Postgres is not taking this client's requests (it waits on its own results, say):
        // stop reading the client rather than buffer what it sends.
        await new Promise<void>((resolve) => (this.#requestsAcked = resolve));
        continue;
      }
      // An idle client holds only a small buffer (its read is pending on it): one that grew
      // for big messages (COPY, say) is given back once drained.
      if (r.capacity > IDLE_BUFFER_MAX && !r.buffered()) r.shrink();
      let n: number | null;
      try {
        n = await this.#conn.read(r.writable(CLIENT_READ_BYTES));
      } catch {
        this.#endReason ??= CloseReason.GONE;
        return;
      }
      if (n === null) {
        // EOF: like Postgres, answer every whole message received before it, then close. A
        // message cut off by the EOF is dropped without a word (Postgres only logs it).
        this.#endReason ??= CloseReason.EOF;
        return;
      }
      r.commit(n);
    }
  }

  /**
   * Sends every complete frame buffered from the client to the pooler, as one payload (the
   * session's backend is pinned, so Postgres itself keeps the order). Terminate ends the
   * session; a message type the protocol does not know is a FATAL protocol violation, and a
   * length past Postgres's limits closes the connection, each once the messages before it are
   * answered, as in Postgres.
   */
  #forwardBuffered(): void {
    const r = this.#reader;
    let start = -1;
    let end = 0;
    // While the statement router runs a COPY FROM on shards: its messages, gathered for it.
    let copyStart = -1;
    let copyEnd = 0;
    try {
      while (this.#endReason === undefined && !this.#ended) {
        // Postgres judges a message's type as soon as its first byte arrives, before its length.
        const next = r.peekCode();
        if (next < 0) break;
        if (!FORWARDED[next] && next !== FrontendCode.Terminate) {
          this.#violation(next);
          break;
        }
        const copy = this.#stmt?.copyMode;
        if (copy && next !== FrontendCode.Terminate && (copy === "in" || COPY_DATA[next])) {
          if (!r.next()) break;
          this.#flushFrames(start, end);
          start = -1;
          if (copyStart < 0) copyStart = r.frameStart;
          copyEnd = r.frameEnd;
          const code = r.code;
          if (
            code === FrontendCode.CopyData ||
            (copy === "in" && (code === FrontendCode.Flush || code === FrontendCode.Sync))
          ) continue;
          break; // CopyDone, CopyFail or another message ends it: its answer comes first
        }
        if (copyStart >= 0) break; // the COPY's messages go first
        if (!r.next()) break;
        if (r.code === FrontendCode.Terminate) {
          this.#endReason = CloseReason.TERMINATE;
          break;
        }
        if (this.#stmt && UNIT_TYPES[r.code] && this.#wantsUnit(r.code, r.body)) {
          // A statement the router must see: what came before goes on first.
          this.#flushFrames(start, end);
          start = -1;
          this.#unit.push({ code: r.code, frame: slab.copy(r.frame) });
          if (r.code === FrontendCode.Flush && !this.#stmt.active) {
            // A database without tablegroup tables: whatever the unit holds goes to its shard,
            // and a client waiting on Flush must get its answers now.
            this.#execute(concatBytes(this.#unit.map((m) => m.frame)));
            this.#unit = [];
            continue;
          }
          // A Flush ends a unit too: a client may wait for the answers so far before it goes on
          // (the router keeps the rest of its messages up to Sync on the same shard).
          if (
            r.code !== FrontendCode.Query && r.code !== FrontendCode.Sync &&
            r.code !== FrontendCode.Flush
          ) continue;
          const unit = this.#unit;
          this.#unit = [];
          const answer = this.#stmt.route(unit);
          if (!answer) {
            this.#execute(concatBytes(unit.map((m) => m.frame)));
            continue;
          }
          this.#busy = this.#answerElsewhere(answer);
          break;
        }
        if (start < 0) start = r.frameStart;
        end = r.frameEnd;
      }
    } catch {
      // A declared length Postgres refuses: it closes without an answer (it only logs it).
      this.#endReason = CloseReason.MALFORMED;
      this.#violationBytes = r.peek(5).slice();
    }
    if (copyStart >= 0) {
      const bytes = slab.copy(r.buffer.subarray(copyStart, copyEnd));
      this.#busy = this.#answerElsewhere(this.#stmt!.copyData(bytes));
    }
    this.#flushFrames(start, end);
  }

  /**
   * Whether a message goes to the statement router: everything while the database has tables
   * outside its default tablegroup (or a unit is being gathered), else only a Query or Parse
   * that may be DDL the gateway carries out itself (CREATE/DROP/ALTER …, found by its first
   * letter; a leading comment counts as maybe).
   */
  #wantsUnit(code: number, body: Uint8Array): boolean {
    if (this.#unit.length || this.#stmt!.active) return true;
    let i = 0;
    if (code === FrontendCode.Parse) {
      while (i < body.length && body[i] !== 0) i++;
      i++;
    } else if (code !== FrontendCode.Query) {
      return false;
    }
    while (i < body.length && (body[i] === 0x20 || (body[i] >= 0x09 && body[i] <= 0x0d))) i++;
    return MAYBE_DDL[body[i]] === 1;
  }

  /** Sends a unit's answer from elsewhere once the relay's answers before it are out. */
  async #answerElsewhere(answer: Promise<Uint8Array>): Promise<void> {
    try {
      const bytes = await answer;
      await this.#relayIdle();
      this.#noteAnswer(bytes);
      if (bytes.length) this.#send(bytes);
    } catch (e) {
      this.#fatal(withSeverity(toPgError(e), "FATAL"));
    } finally {
      this.#busy = null;
    }
  }

  /** Resolves once the relay has answered everything sent to it. */
  #relayIdle(): Promise<void> {
    if (!this.#unsettled.length || !this.#backend) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /** Runs `payload` on the relay's pooler session and gathers the answer (for the router). */
  async #collect(payload: Uint8Array): Promise<Uint8Array> {
    // A session moving to another pooler has a backend before that pooler has opened it, and
    // the open then forgets what was sent: what the router runs waits for the move to end.
    while (this.#moving) await this.#moving;
    await this.#relayIdle();
    while (this.#moving) await this.#moving;
    if (!this.#backend) {
      throw new PgError(SqlState.CONNECTION_FAILURE, "the session's pooler is gone");
    }
    return await new Promise<Uint8Array>((resolve, reject) => {
      this.#collector = { frames: [], resolve, reject };
      this.#execute(payload);
    });
  }

  #violation(code: number): void {
    this.#endReason = CloseReason.PROTOCOL_ERROR;
    this.#finalError = protocolViolation(`invalid frontend message type ${code}`);
    this.#violationBytes = this.#reader.peek(5).slice();
  }

  /**
   * The client's side has ended (#endReason): the pooler finishes what was sent before, passes
   * the answers on (unless the client is gone), rolls back whatever is open and closes the
   * session; then the FATAL error of a protocol violation, if any, is sent.
   */
  async #drain(): Promise<void> {
    // A session moving to a new primary gets there first: that is where it must be closed;
    // a unit running on the shards finishes and is answered first.
    while (this.#moving || this.#busy) await (this.#moving ?? this.#busy);
    const reason = this.#endReason;
    if (reason === undefined || this.#ended) return;
    if (this.#unit.length && !this.#stmt?.active) {
      // Messages gathered for a Sync that never came go on as Postgres would have run them
      // (their answers flow; the close below rolls back whatever they left open).
      this.#execute(concatBytes(this.#unit.map((m) => m.frame)));
      this.#unit = [];
    }
    const backend = this.#backend;
    if (backend && this.#id && reason !== CloseReason.GONE) {
      const closed = new Promise<void>((resolve) => (this.#drained = resolve));
      backend.close(this.#dpId, reason, this.#violationBytes);
      await closed;
      this.#drained = undefined;
    }
    if (this.#finalError) this.#fatal(this.#finalError);
    this.#ended = true;
  }

  #flushFrames(start: number, end: number): void {
    if (start < 0 || !this.#backend || !this.#id) return;
    // Copy: the receive buffer is reused, and gRPC sends asynchronously.
    this.#execute(slab.copy(this.#reader.buffer.subarray(start, end)));
  }

  #execute(payload: Uint8Array): void {
    if (!this.#backend) return;
    this.#unackedRequests += payload.length;
    this.#unsettled.push({ payload, pieces: this.#backend.execute(this.#dpId, payload) });
  }

  /** The pooler took `settled` pieces so far: the requests they make up need no resending. */
  #settle(settled: number): void {
    const u = this.#unsettled;
    let i = 0;
    while (i < u.length && this.#piecesSettled + u[i].pieces <= settled) {
      this.#piecesSettled += u[i].pieces;
      i++;
    }
    if (i === u.length) u.length = 0;
    else if (i) u.splice(0, i);
    if (!u.length && this.#idleWaiters.length) {
      const w = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const f of w) f();
    }
  }

  // ---- SessionListener: results from the pooler ----

  onFrames(frames: Uint8Array): void {
    const n = frames.length;
    this.#noteStream(frames);
    // The status of the last ReadyForQuery the default shard sent (answers end with one).
    if (
      n >= 6 && frames[n - 6] === 0x5a && frames[n - 5] === 0 && frames[n - 4] === 0 &&
      frames[n - 3] === 0 && frames[n - 2] === 5
    ) this.#readyStatus = frames[n - 1];
    if (this.#opening) this.#opening.frames.push(frames);
    else if (this.#collector) {
      this.#collector.frames.push(frames);
      this.#backend?.ack(this.#dpId, frames.length);
    } else this.#sendResults(frames);
  }

  /**
   * Keeps what the server reports of the settings that change how the statement router reads
   * text (client_encoding, standard_conforming_strings), from every answer that passes: a SET,
   * a COMMIT that ends a SET LOCAL, set_config(). The pooler's answers are a byte stream whose
   * chunks may end inside a message: what is left of one is skipped in the next chunk, and the
   * start of a ParameterStatus (or of a header) is held until it is whole.
   */
  #noteStream(chunk: Uint8Array): void {
    let at = 0;
    if (this.#streamSkip > 0) {
      at = Math.min(this.#streamSkip, chunk.length);
      this.#streamSkip -= at;
      if (at === chunk.length) return;
    }
    if (this.#streamHeld !== null) {
      const joined = concatBytes([this.#streamHeld, chunk.subarray(at)]);
      this.#streamHeld = null;
      this.#walkStream(joined);
    } else this.#walkStream(at ? chunk.subarray(at) : chunk);
  }

  #walkStream(b: Uint8Array): void {
    const n = b.length;
    let at = 0;
    while (at < n) {
      if (n - at < 5) {
        this.#streamHeld = b.slice(at);
        return;
      }
      const end = at + 1 + ((b[at + 1] << 24 | b[at + 2] << 16 | b[at + 3] << 8 | b[at + 4]) >>> 0);
      if (b[at] === BackendCode.ParameterStatus) {
        if (end > n) {
          this.#streamHeld = b.slice(at);
          return;
        }
        this.#noteParameter(b.subarray(at + 5, end));
      } else if (end > n) {
        this.#streamSkip = end - n;
        return;
      }
      at = end;
    }
  }

  /** The same for an answer of whole messages (one the statement router made). */
  #noteAnswer(bytes: Uint8Array): void {
    const n = bytes.length;
    for (let at = 0; at + 5 <= n;) {
      const end = at + 1 +
        ((bytes[at + 1] << 24 | bytes[at + 2] << 16 | bytes[at + 3] << 8 | bytes[at + 4]) >>> 0);
      if (end > n) return;
      if (bytes[at] === BackendCode.ParameterStatus) {
        this.#noteParameter(bytes.subarray(at + 5, end));
      }
      at = end;
    }
  }

  #noteParameter(body: Uint8Array): void {
    const [name, value] = parseParameterStatus(body);
    if (WATCHED_PARAMETERS.has(name)) this.#parameters.set(name, value);
  }

  /** Writes results to the client and acknowledges them to the pooler once written. */
  #sendResults(frames: Uint8Array): void {
    this.#outResults += frames.length;
    this.#send(frames);
  }

  onDone(reserved: number, closed: boolean, flags: number, settled: number): void {
    if (this.#opening) {
      this.#opening.resolve({ closed, retry: closed && (flags & DoneFlag.RETRY) !== 0 });
      return;
    }
    this.#settle(settled);
    if (closed && this.#drained) {
      // The session was closing: whatever the pooler says now (even RETRY: a failover
      // refused what was left unrun, which then never ran), it is over.
      if (flags & DoneFlag.ANSWERED) this.#finalError = undefined; // Postgres answered it
      this.#backend = undefined;
      this.#drained();
      return;
    }
    if (closed && flags & DoneFlag.RETRY && this.#canMove() && settled === this.#piecesSettled) {
      // The pooler ran none of what is left (it is not the primary any more, or its Postgres
      // is down): it goes to whichever pooler serves the primary now.
      this.#move(this.#unsettled.map((u) => u.payload));
      return;
    }
    if (closed && flags & DoneFlag.RETRY) {
      // Refused unrun, but this session cannot move: say so rather than just hang up.
      this.#backend = undefined;
      this.#fatal(
        new PgError(
          SqlState.CANNOT_CONNECT_NOW,
          "the primary changed and this session's state cannot follow it",
          { severity: "FATAL", hint: "Connect again." },
        ),
      );
      return;
    }
    this.#pinned = reserved !== 0 || (flags & DoneFlag.STATEFUL) !== 0;
    this.#reserved = reserved;
    const c = this.#collector;
    if (c && (closed || !this.#unsettled.length)) {
      this.#collector = null;
      if (closed) {
        c.reject(new PgError(SqlState.CONNECTION_FAILURE, "the session's pooler closed it"));
      } else c.resolve(concatBytes(c.frames));
    }
    if (closed) {
      this.#backend = undefined;
      this.#ended = true;
      this.#wake();
    }
  }

  onRequestsAcked(bytes: number): void {
    this.#unackedRequests = Math.max(0, this.#unackedRequests - bytes);
    if (this.#unackedRequests <= FLOW_WINDOW_BYTES) this.#wakeReader();
  }

  #wakeReader(): void {
    const r = this.#requestsAcked;
    this.#requestsAcked = undefined;
    r?.();
  }

  onLost(err: PgError): void {
    this.#backend = undefined;
    this.#releaseRouterWaits(err);
    if (this.#drained) {
      this.#drained();
      return;
    }
    if (this.#opening) {
      this.#opening.reject(withSeverity(err, "FATAL"));
      return;
    }
    if (this.#canMove() && !this.#unsettled.length) {
      // The link to the pooler broke between requests: nothing was lost, the session moves.
      this.#move([]);
      return;
    }
    // A request was under way: whether it ran cannot be known, so the client must be told.
    this.#fatal(withSeverity(err, "FATAL"));
  }

  #wake(): void {
    this.#wakeReader();
    if (this.#ended) {
      // Unblock a read that waits for client bytes that no longer matter, once the output
      // (e.g. the FATAL error) is written.
      this.#written().finally(() => this.#closeConn());
    }
  }

  #closeConn(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  // ---- output and teardown ----

  /** Queues bytes for the client; they are written in order. The caller must not reuse them. */
  #send(bytes: Uint8Array): void {
    this.#outQueue.push(bytes);
    this.#writing ??= this.#writeLoop();
  }

  /** Resolves once everything queued so far is written (or the client is gone). */
  #written(): Promise<void> {
    return this.#writing ?? Promise.resolve();
  }

  /** Writes what is queued, joining what queued up meanwhile into one write. */
  async #writeLoop(): Promise<void> {
    try {
      while (this.#outQueue.length) {
        const chunks = this.#outQueue;
        this.#outQueue = [];
        const results = this.#outResults;
        this.#outResults = 0;
        await writeAll(this.#conn, chunks.length === 1 ? chunks[0] : concatBytes(chunks));
        if (results) this.#ackResults(results);
      }
    } catch {
      this.#outQueue = [];
      this.#outResults = 0;
      this.#clientGone();
    } finally {
      this.#writing = null;
    }
  }

  /** Flow control: tells the pooler, in steps, how many results reached the client. */
  #ackResults(bytes: number): void {
    this.#ackable += bytes;
    if (this.#ackable >= FLOW_ACK_BYTES && this.#backend && this.#id) {
      this.#backend.ack(this.#dpId, this.#ackable);
      this.#ackable = 0;
    }
  }

  /**
   * The relay cannot answer what the statement router waits for (its pooler is lost, or the
   * session ends): the router's waits end, with `err` for a gathered answer.
   */
  #releaseRouterWaits(err: PgError): void {
    const c = this.#collector;
    this.#collector = null;
    c?.reject(err);
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const f of w) f();
  }

  /** Sends a FATAL error and ends the session. */
  #fatal(err: PgError): void {
    this.#releaseRouterWaits(err);
    this.#drained?.();
    const w = new WireWriter(256);
    writeErrorResponse(w, err.fatal ? err : withSeverity(err, "FATAL"));
    this.#send(w.view());
    this.#ended = true;
    this.#wake();
  }

  #clientGone(): void {
    if (this.#drained && this.#backend) {
      // Draining for a client that is gone now: the pooler drops the rest of the answers.
      this.#backend.close(this.#dpId, CloseReason.GONE);
      this.#backend = undefined;
      this.#drained();
    }
    this.#ended = true;
    this.#wake();
  }

  async #finish(): Promise<void> {
    this.#ended = true;
    this.#stmt?.close(this.#endReason === undefined ? CloseReason.GONE : CloseReason.TERMINATE);
    this.#releaseRouterWaits(new PgError(SqlState.CONNECTION_FAILURE, "the session ended"));
    if (this.#backend && this.#id) this.#backend.close(this.#dpId, CloseReason.GONE);
    this.#backend = undefined;
    await this.#written();
    this.#closeConn();
    if (this.#id) this.#handler.sessionEnded(this.#id);
    this.#releaseAdmission?.();
  }

  /** Reads until `cut()` finds a frame; false when the client closed first. */
  async #readUntil(cut: () => boolean): Promise<boolean> {
    const r = this.#reader;
    while (!cut()) {
      if (this.#ended) return false;
      let n: number | null;
      try {
        n = await this.#conn.read(r.writable(CLIENT_READ_BYTES));
      } catch {
        n = null;
      }
      if (n === null) return false;
      r.commit(n);
    }
    return true;
  }
}

/** The protocol version (or request code) that starts a startup-phase packet's body. */
function startupCode(body: Uint8Array): number {
  return ((body[0] << 24) | (body[1] << 16) | (body[2] << 8) | body[3]) >>> 0;
}

function unencryptedAfter(what: string): PgError {
  return new PgError(SqlState.PROTOCOL_VIOLATION, `received unencrypted data after ${what}`, {
    severity: "FATAL",
    detail:
      "This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.",
  });
}

/** Settings whose value changes how the statement router reads a statement's text. */
const WATCHED_PARAMETERS = new Set(["client_encoding", "standard_conforming_strings"]);
