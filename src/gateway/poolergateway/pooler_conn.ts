import {
  callUnary,
  type ChangeMetadataRequest,
  type DataPlaneRequest,
  type DataPlaneResponse,
  type GetAuthCredentialsResponse,
  type GetMetadataResponse,
  grpc,
  makeClient,
  processGrpcSecurity,
  type SessionRequest,
} from "../../shared/grpc/mod.ts";
import { connectionFailure, type PgError } from "../../shared/errors/mod.ts";
import {
  CloseReason,
  DATA_PLANE_PATH,
  isDraining,
  MAX_BATCH_BYTES,
  MAX_PAYLOAD_PIECE,
  type TwoPhaseDecision,
} from "../../shared/grpc/types.ts";
import {
  decodeDataPlaneResponse,
  encodeDataPlaneRequest,
} from "../../shared/grpc/dataplane_codec.ts";
import { connectBidi, type GrpcStream } from "../../shared/grpc/h2/mod.ts";
import type { Logger } from "../../shared/log/mod.ts";

/** Receives one session's results from the data-plane stream. */
/** What a session is opened with (SessionRequest OPEN). */
export interface SessionOpenOptions {
  user: string;
  database: string;
  startup: Record<string, string>;
  /** A read-only session for a replica. */
  replica?: boolean;
  /** The session's virtual pid, as its client knows it (BackendKeyData). */
  clientPid?: number;
}

export interface SessionListener {
  /** Raw backend frames, in order. The view may be kept (it is the message's own buffer). */
  onFrames(frames: Uint8Array): void;
  /**
   * The current request is complete. `closed`: the pooler ended the session; `flags`: DoneFlag
   * bits; `settled`: how many of the session's EXECUTE pieces the pooler has taken.
   */
  onDone(reserved: number, closed: boolean, flags: number, settled: number): void;
  /** Flow control: `bytes` more of the session's requests reached Postgres. */
  onRequestsAcked(bytes: number): void;
  /** The stream to the pooler broke: the session is gone. */
  onLost(err: PgError): void;
}

/**
 * The gateway's link to one pooler: a gRPC client for control calls and one long-lived
 * bidirectional data-plane stream multiplexing every session by id. Requests ready in one turn
 * of the event loop travel in one message.
 */
export class PoolerConn {
  readonly addr: string;
  /** The pooler's data plane on the lean h2 transport; "" : DataPlane over grpc-js. */
  readonly dataPlaneAddr: string;
  readonly #client: grpc.Client;
  readonly #logger?: Logger;
  #stream?: DataPlaneLink;
  readonly #sessions = new Map<number, SessionListener>();
  #pending: SessionRequest[] = [];
  #scheduled = false;
  #batchBytes = 0;
  #closed = false;
  #drain: Promise<void> | null = null;

  constructor(addr: string, logger?: Logger, dataPlaneAddr = "") {
    this.addr = addr;
    this.dataPlaneAddr = dataPlaneAddr;
    this.#logger = logger;
    this.#client = makeClient("MultiPooler", addr);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  getAuthCredentials(user: string, database = ""): Promise<GetAuthCredentialsResponse> {
    return callUnary(this.#client, "GetAuthCredentials", { user, database });
  }

  getMetadata(): Promise<GetMetadataResponse> {
    return callUnary(this.#client, "GetMetadata", {});
  }

  /** On a shard's pooler: makes sure `user` exists on its server (see MultiPooler.EnsureRole). */
  async ensureRole(user: string): Promise<void> {
    await callUnary(this.#client, "EnsureRole", { user }, { deadlineMs: 30_000 });
  }

  async changeMetadata(req: ChangeMetadataRequest): Promise<void> {
    await callUnary(this.#client, "ChangeMetadata", req, { deadlineMs: 30_000 });
  }

  /** On the default tablegroup's primary: see MultiPooler.DecideTwoPhase. */
  async decideTwoPhase(
    gid: string,
    decision: TwoPhaseDecision,
    participants: string[],
  ): Promise<TwoPhaseDecision> {
    const res = await callUnary<{ decision: TwoPhaseDecision }>(
      this.#client,
      "DecideTwoPhase",
      { gid, decision, participants },
      { deadlineMs: 15_000 },
    );
    return res.decision;
  }

  async forgetTwoPhase(gids: string[]): Promise<void> {
    await callUnary(this.#client, "ForgetTwoPhase", { gids }, { deadlineMs: 15_000 });
  }

  /** Starts a session; `listener` gets the ParameterStatus frames (or a FATAL error) and onDone. */
  open(sessionId: number, opts: SessionOpenOptions, listener: SessionListener): void {
    this.#ensureStream();
    if (!this.#stream) {
      queueMicrotask(() =>
        listener.onLost(connectionFailure("the gateway is shutting down its link to the pooler"))
      );
      return;
    }
    this.#sessions.set(sessionId, listener);
    this.#queue({
      sessionId,
      op: "OPEN",
      user: opts.user,
      database: opts.database,
      startup: opts.startup,
      payload: EMPTY,
      replica: opts.replica,
      clientPid: opts.clientPid,
    });
  }

  /**
   * Sends raw frontend frames for the session (copied by the caller), in pieces if large.
   * @returns how many EXECUTE requests (pieces) it took.
   */
  execute(sessionId: number, payload: Uint8Array): number {
    let pieces = 0;
    for (let off = 0; off < payload.length; off += MAX_PAYLOAD_PIECE) {
      const piece = payload.subarray(off, off + MAX_PAYLOAD_PIECE);
      this.#queue({
        sessionId,
        op: "EXECUTE",
        user: "",
        database: "",
        startup: {},
        payload: piece,
      });
      this.#batchBytes += piece.length;
      pieces++;
      if (this.#batchBytes >= MAX_BATCH_BYTES) this.#flush();
    }
    return pieces;
  }

  /** Flow control: `bytes` more of the session's results reached its client. */
  ack(sessionId: number, bytes: number): void {
    if (!this.#sessions.has(sessionId)) return;
    this.#queue({
      sessionId,
      op: "ACK",
      user: "",
      database: "",
      startup: {},
      payload: EMPTY,
      acked: bytes,
    });
  }

  /** Asks the pooler to cancel what the session's backend runs now. */
  cancel(sessionId: number): void {
    if (!this.#sessions.has(sessionId)) return;
    this.#queue({ sessionId, op: "CANCEL", user: "", database: "", startup: {}, payload: EMPTY });
  }

  /** A promise while the stream to the pooler is full (callers stop reading their clients). */
  congested(): Promise<void> | null {
    return this.#drain;
  }

  /**
   * Ends the session on the pooler (what was sent runs to its end, then it rolls back and returns
   * the backend). With a draining reason (TERMINATE, EOF, PROTOCOL_ERROR, MALFORMED: see
   * isDraining) the listener keeps getting answers until the pooler reports the session closed;
   * otherwise it is dropped now. `payload`: a protocol violation's first bytes.
   */
  close(sessionId: number, reason: number = CloseReason.GONE, payload: Uint8Array = EMPTY): void {
    if (!this.#sessions.has(sessionId)) return;
    if (!isDraining(reason)) this.#sessions.delete(sessionId);
    this.#queue({
      sessionId,
      op: "CLOSE",
      user: "",
      database: "",
      startup: {},
      payload,
      reason,
    });
  }

  #queue(req: SessionRequest): void {
    this.#pending.push(req);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const requests = this.#pending;
    this.#pending = [];
    this.#batchBytes = 0;
    if (!requests.length) return;
    const stream = this.#stream;
    if (!stream) return;
    if (!stream.write({ requests }) && !this.#drain) {
      this.#drain = new Promise((resolve) =>
        stream.onceDrained(() => {
          this.#drain = null;
          resolve();
        })
      );
    }
  }

  #ensureStream(): void {
    if (this.#stream || this.#closed) return;
    const onResponse = (msg: DataPlaneResponse) => {
      for (const r of msg.responses) {
        const l = this.#sessions.get(r.sessionId);
        if (!l) continue;
        if (r.payload.length) l.onFrames(r.payload);
        if (r.acked) l.onRequestsAcked(r.acked);
        if (r.done) {
          if (r.closed) this.#sessions.delete(r.sessionId);
          l.onDone(r.reserved, r.closed, r.flags ?? 0, r.settled ?? 0);
        }
      }
    };
    const fail = (why: string) => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      stream.releaseDrained(); // release anyone waiting on the dead stream
      const err = connectionFailure(`connection to the pooler was lost: ${why}`);
      const lost = [...this.#sessions.values()];
      this.#sessions.clear();
      this.#logger?.warn("data-plane stream to pooler ended", {
        pooler: this.addr,
        sessions: lost.length,
        error: why,
      });
      for (const l of lost) l.onLost(err);
    };
    const stream: DataPlaneLink = this.dataPlaneAddr
      ? new H2Link(this.dataPlaneAddr, onResponse, fail)
      : new GrpcJsLink(
        // deno-lint-ignore no-explicit-any
        (this.#client as any).DataPlane() as grpc.ClientDuplexStream<
          DataPlaneRequest,
          DataPlaneResponse
        >,
        onResponse,
        fail,
      );
    this.#stream = stream;
  }

  /** Closes the stream and the channel. */
  shutdown(): void {
    this.#closed = true;
    this.#stream?.close();
    this.#client.close();
  }
}

const EMPTY = new Uint8Array(0);

/** The data-plane stream, whichever transport carries it. */
interface DataPlaneLink {
  /** Sends one message; false when the writer should wait for onceDrained. */
  write(msg: DataPlaneRequest): boolean;
  onceDrained(cb: () => void): void;
  /** Calls every waiting onceDrained callback (the stream died). */
  releaseDrained(): void;
  close(): void;
}

/** DataPlane over grpc-js. */
class GrpcJsLink implements DataPlaneLink {
  readonly #stream: grpc.ClientDuplexStream<DataPlaneRequest, DataPlaneResponse>;

  constructor(
    stream: grpc.ClientDuplexStream<DataPlaneRequest, DataPlaneResponse>,
    onResponse: (msg: DataPlaneResponse) => void,
    onEnd: (why: string) => void,
  ) {
    this.#stream = stream;
    stream.on("data", onResponse);
    stream.on("error", (e: Error) => onEnd(e.message));
    stream.on("end", () => onEnd("stream ended"));
  }

  write(msg: DataPlaneRequest): boolean {
    return this.#stream.write(msg);
  }

  onceDrained(cb: () => void): void {
    this.#stream.once("drain", cb);
  }

  releaseDrained(): void {
    this.#stream.emit("drain");
  }

  close(): void {
    this.#stream.cancel();
  }
}

/**
 * DataPlane over the lean h2 transport (grpc/h2): the same gRPC stream, a fraction of grpc-js's
 * cost per message. Messages written before the connection is up wait for it, in order.
 */
class H2Link implements DataPlaneLink {
  #stream?: GrpcStream;
  #queued: Uint8Array[] = [];
  #drained: (() => void)[] = [];
  #closed = false;
  readonly #onEnd: (why: string) => void;

  constructor(
    addr: string,
    onResponse: (msg: DataPlaneResponse) => void,
    onEnd: (why: string) => void,
  ) {
    this.#onEnd = onEnd;
    const i = addr.lastIndexOf(":");
    // With mutual TLS, the data plane shows the gateway's certificate and checks the pooler's.
    const security = processGrpcSecurity();
    connectBidi({
      hostname: addr.slice(0, i),
      port: Number(addr.slice(i + 1)),
      tls: security.mode === "mtls"
        ? {
          caCerts: [security.certs.caPem],
          cert: security.certs.certPem,
          key: security.certs.keyPem,
        }
        : undefined,
      path: DATA_PLANE_PATH,
      // Result payloads are written to clients after the callback returns: keep them.
      retainMessages: true,
      onMessage: (msg) => onResponse(decodeDataPlaneResponse(msg)),
      onClose: (st) => this.#end(st.message || `stream closed (gRPC status ${st.code})`),
      onDrain: () => this.releaseDrained(),
    }).then((stream) => {
      if (this.#closed) {
        stream.cancel("the gateway closed its link to the pooler");
        return;
      }
      this.#stream = stream;
      for (const m of this.#queued) stream.write(m);
      this.#queued = [];
    }, (e) => this.#end((e as Error).message));
  }

  #end(why: string): void {
    this.#closed = true;
    this.#onEnd(why);
  }

  write(msg: DataPlaneRequest): boolean {
    const bytes = encodeDataPlaneRequest(msg);
    if (this.#stream) return this.#stream.write(bytes);
    if (!this.#closed) this.#queued.push(bytes);
    return true;
  }

  onceDrained(cb: () => void): void {
    this.#drained.push(cb);
  }

  releaseDrained(): void {
    const cbs = this.#drained;
    this.#drained = [];
    for (const cb of cbs) cb();
  }

  close(): void {
    this.#closed = true;
    this.#stream?.cancel("the gateway closed its link to the pooler");
  }
}
