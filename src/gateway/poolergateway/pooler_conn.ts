import {
  callUnary,
  type DataPlaneRequest,
  type DataPlaneResponse,
  type GetAuthCredentialsResponse,
  type GetMetadataResponse,
  grpc,
  makeClient,
  type SessionRequest,
} from "../../shared/grpc/mod.ts";
import { connectionFailure, type PgError } from "../../shared/errors/mod.ts";
import { CloseReason, MAX_BATCH_BYTES, MAX_PAYLOAD_PIECE } from "../../shared/grpc/types.ts";
import type { Logger } from "../../shared/log/mod.ts";

/** Receives one session's results from the data-plane stream. */
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
  readonly #client: grpc.Client;
  readonly #logger?: Logger;
  #stream?: grpc.ClientDuplexStream<DataPlaneRequest, DataPlaneResponse>;
  readonly #sessions = new Map<number, SessionListener>();
  #pending: SessionRequest[] = [];
  #scheduled = false;
  #batchBytes = 0;
  #closed = false;
  #drain: Promise<void> | null = null;

  constructor(addr: string, logger?: Logger) {
    this.addr = addr;
    this.#logger = logger;
    this.#client = makeClient("MultiPooler", addr);
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  getAuthCredentials(user: string): Promise<GetAuthCredentialsResponse> {
    return callUnary(this.#client, "GetAuthCredentials", { user });
  }

  getMetadata(): Promise<GetMetadataResponse> {
    return callUnary(this.#client, "GetMetadata", {});
  }

  /** Starts a session; `listener` gets the ParameterStatus frames (or a FATAL error) and onDone. */
  open(
    sessionId: number,
    opts: { user: string; database: string; startup: Record<string, string>; replica?: boolean },
    listener: SessionListener,
  ): void {
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
   * the backend). With a draining reason (TERMINATE, EOF, PROTOCOL_ERROR) the listener keeps
   * getting answers until the pooler reports the session closed; otherwise it is dropped now.
   */
  close(sessionId: number, reason: number = CloseReason.GONE): void {
    if (!this.#sessions.has(sessionId)) return;
    if (!DRAINING[reason]) this.#sessions.delete(sessionId);
    this.#queue({
      sessionId,
      op: "CLOSE",
      user: "",
      database: "",
      startup: {},
      payload: EMPTY,
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
        stream.once("drain", () => {
          this.#drain = null;
          resolve();
        })
      );
    }
  }

  #ensureStream(): void {
    if (this.#stream || this.#closed) return;
    // deno-lint-ignore no-explicit-any
    const stream = (this.#client as any).DataPlane() as grpc.ClientDuplexStream<
      DataPlaneRequest,
      DataPlaneResponse
    >;
    this.#stream = stream;
    stream.on("data", (msg: DataPlaneResponse) => {
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
    });
    const fail = (why: string) => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      stream.emit("drain"); // release anyone waiting on the dead stream
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
    stream.on("error", (e: Error) => fail(e.message));
    stream.on("end", () => fail("stream ended"));
  }

  /** Closes the stream and the channel. */
  shutdown(): void {
    this.#closed = true;
    this.#stream?.cancel();
    this.#client.close();
  }
}

const EMPTY = new Uint8Array(0);
/** Close reasons after which the pooler still sends the session's answers. */
const DRAINING: Record<number, boolean> = {
  [CloseReason.TERMINATE]: true,
  [CloseReason.EOF]: true,
  [CloseReason.PROTOCOL_ERROR]: true,
};
