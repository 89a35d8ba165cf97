import type { GetAuthCredentialsResponse } from "../../shared/grpc/types.ts";
import type { SessionListener, SessionOpenOptions } from "../poolergateway/pooler_conn.ts";
import type { DefaultRelay, StatementRouter } from "../shardsession/mod.ts";
import type { GatewayAccess } from "../hba/mod.ts";

/** Where a session's requests go: one pooler's data plane (PoolerConn in production). */
export interface SessionBackend {
  open(sessionId: number, opts: SessionOpenOptions, listener: SessionListener): void;
  /** @returns how many data-plane requests it took (see SessionListener.onDone's `settled`). */
  execute(sessionId: number, payload: Uint8Array): number;
  /**
   * Ends the session. What was sent before runs to its end, then the pooler rolls back whatever
   * is open. `reason` (CloseReason): TERMINATE, EOF, PROTOCOL_ERROR and MALFORMED keep the
   * answers flowing until onDone reports `closed`; GONE (the default) drops them and forgets the
   * session at once. With PROTOCOL_ERROR and MALFORMED, `payload` is the offending message's
   * first bytes.
   */
  close(sessionId: number, reason?: number, payload?: Uint8Array): void;
  /** Flow control: `bytes` more of the session's results were written to its client. */
  ack(sessionId: number, bytes: number): void;
  /** A promise while the link to the pooler is full; null when requests may flow. */
  congested(): Promise<void> | null;
  /** Cancels what the session's backend runs now (a client's CancelRequest). */
  cancel(sessionId: number): void;
}

/** Identity the gateway mints for a client session (the virtual backend key). */
export interface SessionIdentity {
  sessionId: number;
  pid: number;
  secret: number;
}

/**
 * What the protocol session needs from the rest of the gateway. The wire code never knows about
 * topo, routing or gRPC; tests drive it with a fake handler.
 */
export interface GatewayHandler {
  /**
   * The role's stored password verifier and login attributes, and what it may do on `database`;
   * throws a FATAL PgError when none can be had.
   */
  credentials(user: string, database?: string): Promise<GetAuthCredentialsResponse>;
  /** Who gets in: pg_hba rules and connection counts (absent: SCRAM-SHA-256 for everyone). */
  readonly access?: GatewayAccess;
  /**
   * The backend for a session on `database` (`replica`: a read-only one, served by a replica);
   * a database Postgres does not have gets its own FATAL (3D000) when the session opens.
   */
  route(database: string, replica?: boolean): Promise<SessionBackend>;
  /** A new session id with its virtual PID and secret; `onCancel` runs for a matching CancelRequest. */
  newSession(onCancel: () => void): SessionIdentity;
  /** A client's CancelRequest (any gateway's PID): routes it to the session, or ignores it. */
  cancelRequest(pid: number, secret: number): Promise<void>;
  /**
   * A new data-plane id for a session that moves to another pooler (its virtual PID stays); an
   * id is never used twice, so late answers for the old one cannot reach the new.
   */
  newDataPlaneId(): number;
  /**
   * A place among the sessions waiting to move to a new primary (its release function), or null
   * when too many wait already.
   */
  waitForPrimary(): (() => void) | null;
  /** Called once when the session ends. */
  sessionEnded(id: SessionIdentity): void;
  /**
   * The statement router of a new session (sharding: tablegroups, shards, new DDL); absent or
   * null: every statement goes to the session's pooler as it is.
   */
  statementRouter?(
    session: {
      user: string;
      database: string;
      startup: Record<string, string>;
      clientPid?: number;
    },
    relay: DefaultRelay,
  ): StatementRouter | null;
}
