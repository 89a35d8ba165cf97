import type { Logger } from "../shared/log/mod.ts";
import type { GetAuthCredentialsResponse } from "../shared/grpc/types.ts";
import type { Router } from "./router/router.ts";
import type { GatewayHandler, SessionBackend, SessionIdentity } from "./session/handler.ts";
import { type DefaultRelay, StatementRouter } from "./shardsession/mod.ts";
import { PlanCache, planQuery } from "./planner/mod.ts";
import type { ShardMap } from "./router/shard_map.ts";
import { ClientSession } from "./session/client_session.ts";
import { NodeSocketTransport } from "./session/transport.ts";
import net from "node:net";
import type tls from "node:tls";
import { type GatewayAccess, gatewayAccess } from "./hba/mod.ts";

/** Bits of a virtual PID below the gateway's prefix. */
const LOCAL_ID_BITS = 20;
const LOCAL_ID_MASK = (1 << LOCAL_ID_BITS) - 1;
/**
 * Added to the prefix in a virtual PID. Linux process ids stay below 2^22 (PID_MAX_LIMIT), so a
 * virtual PID (at least 4 << 20 = 2^22) is never the pid of a real backend: a client that passes
 * one to pg_terminate_backend can only reach its own session's backend (see the pooler's
 * pid_functions.ts), or none.
 */
const PREFIX_OFFSET = 4;

function localId(sessionId: number): number {
  return sessionId & LOCAL_ID_MASK;
}

/** Largest prefix that keeps virtual PIDs positive int32s. */
export const MAX_PID_PREFIX = (1 << (31 - LOCAL_ID_BITS)) - 1 - PREFIX_OFFSET;

/** The prefix of the gateway that minted a virtual PID. */
export function pidPrefixOf(pid: number): number {
  return (pid >>> LOCAL_ID_BITS) - PREFIX_OFFSET;
}

/**
 * The gateway proper: accepts client connections, gives each a ClientSession, and answers the
 * sessions' needs (credentials, routing, virtual backend keys) from the Router.
 */
export class Gateway implements GatewayHandler {
  readonly pidPrefix: number;
  readonly #router: Router;
  readonly #logger: Logger;
  #nextId = 0;
  /** Live sessions by the local part of their virtual PID. */
  readonly #live = new Map<number, { id: SessionIdentity; onCancel: () => void }>();
  readonly #forwardCancel?: (pid: number, secret: number) => Promise<void>;
  readonly #listeners: Deno.Listener[] = [];
  readonly #nodeServers: net.Server[] = [];

  constructor(
    router: Router,
    opts: {
      pidPrefix: number;
      logger: Logger;
      /** Sends a CancelRequest for another gateway's session to that gateway. */
      forwardCancel?: (pid: number, secret: number) => Promise<void>;
      /** How long sessions wait for a new primary (see ClientSessionOptions). */
      failoverWindowMs?: number;
      /** Most sessions waiting at once to move to a new primary. */
      maxWaiting?: number;
      /** Who gets in (default: SCRAM-SHA-256 for every connection). */
      access?: GatewayAccess;
    },
  ) {
    if (opts.pidPrefix < 1 || opts.pidPrefix > MAX_PID_PREFIX) {
      throw new Error(`Invalid PID prefix ${opts.pidPrefix}: want 1 to ${MAX_PID_PREFIX}`);
    }
    this.#router = router;
    this.pidPrefix = opts.pidPrefix;
    this.#logger = opts.logger;
    this.#forwardCancel = opts.forwardCancel;
    this.#failoverWindowMs = opts.failoverWindowMs;
    this.#maxWaiting = opts.maxWaiting ?? 10_000;
    this.access = opts.access ?? gatewayAccess();
  }

  /** The pg_hba rules and the sessions counted per role and database. */
  readonly access: GatewayAccess;

  readonly #failoverWindowMs?: number;
  readonly #maxWaiting: number;
  #waiting = 0;

  waitForPrimary(): (() => void) | null {
    if (this.#waiting >= this.#maxWaiting) return null;
    this.#waiting++;
    let released = false;
    return () => {
      if (!released) this.#waiting--;
      released = true;
    };
  }

  get sessions(): number {
    return this.#live.size;
  }

  credentials(user: string, database?: string): Promise<GetAuthCredentialsResponse> {
    return this.#router.credentials(user, database);
  }

  route(database: string, replica = false): Promise<SessionBackend> {
    return this.#router.route(database, replica);
  }

  newSession(onCancel: () => void): SessionIdentity {
    let sessionId: number;
    do sessionId = ++this.#nextId; while (this.#live.has(localId(sessionId)));
    const secret = crypto.getRandomValues(new Int32Array(1))[0];
    const pid = ((this.pidPrefix + PREFIX_OFFSET) << LOCAL_ID_BITS) | localId(sessionId);
    const id = { sessionId, pid, secret };
    this.#live.set(localId(sessionId), { id, onCancel });
    return id;
  }

  newDataPlaneId(): number {
    return ++this.#nextId;
  }

  sessionEnded(id: SessionIdentity): void {
    const entry = this.#live.get(localId(id.sessionId));
    if (entry?.id.sessionId === id.sessionId) this.#live.delete(localId(id.sessionId));
  }

  readonly #plans = new PlanCache();

  statementRouter(
    session: {
      user: string;
      database: string;
      startup: Record<string, string>;
      clientPid?: number;
    },
    relay: DefaultRelay,
  ): StatementRouter {
    const router = this.#router;
    const db = session.database;
    return new StatementRouter(
      {
        map: () => router.shardMap(db),
        mapOf: (name) => router.shardMap(name),
        plan: (sql: string, map: ShardMap) => {
          // Plans depend on the database's layout: its name and version are part of the key.
          const key = `${db}\0${sql}`;
          const hit = this.#plans.get(key, map.version);
          if (hit) return hit;
          const plan = planQuery(sql, map);
          this.#plans.set(key, map.version, plan);
          return plan;
        },
        routeShard: (tg, shard) => router.routeShard(db, tg, shard),
        ensureRole: async (tg, shard) =>
          await (await router.routeShard(db, tg, shard)).ensureRole(session.user),
        newDataPlaneId: () => this.newDataPlaneId(),
        changeMetadata: (req) =>
          router.changeMetadata({ user: session.user, database: db, ...req }),
        refresh: () => router.refresh(),
        missingShards: (tg, shards, database) => router.missingShards(database ?? db, tg, shards),
        decideTwoPhase: (gid, decision, participants, deadline) =>
          router.decideTwoPhase(gid, decision, participants, deadline),
        forgetTwoPhase: (gid) => router.forgetTwoPhase(gid),
        warn: (message, fields) => this.#logger.warn(message, fields),
      },
      relay,
      session,
    );
  }

  /** A CancelRequest: ours is acted on when the secret matches; another gateway's is forwarded. */
  async cancelRequest(pid: number, secret: number): Promise<void> {
    if (pidPrefixOf(pid) === this.pidPrefix) {
      this.cancelLocal(pid, secret);
    } else if (this.#forwardCancel) {
      await this.#forwardCancel(pid, secret);
    }
  }

  /** Cancels the local session with this virtual PID if the secret matches (else nothing). */
  cancelLocal(pid: number, secret: number): void {
    const entry = this.#live.get(pid & LOCAL_ID_MASK);
    if (!entry || entry.id.pid !== pid || entry.id.secret !== secret) return;
    this.#logger.debug("cancel request", { session: entry.id.sessionId });
    entry.onCancel();
  }

  /**
   * Listens for PostgreSQL clients. With a TLS context, connections are accepted through node:net
   * so that SSLRequest can upgrade them (Deno cannot upgrade an accepted connection to TLS).
   */
  async listen(
    hostname: string,
    port: number,
    tlsContext?: tls.SecureContext,
    opts: { replica?: boolean } = {},
  ): Promise<void> {
    const sessionOpts = {
      logger: this.#logger,
      replica: opts.replica,
      failoverWindowMs: this.#failoverWindowMs,
    };
    if (tlsContext) {
      // allowHalfOpen: a client that shuts down its write side still gets its answers.
      const server = net.createServer({ allowHalfOpen: true }, (sock) => {
        new ClientSession(new NodeSocketTransport(sock, tlsContext), this, {
          ...sessionOpts,
          remoteAddress: sock.remoteAddress,
        }).run();
      });
      await new Promise<void>((resolve, reject) => {
        server.once(
          "error",
          (e) => reject(new Error(`Cannot listen on ${hostname}:${port}: ${e.message}`)),
        );
        server.listen(port, hostname, () => resolve());
      });
      this.#nodeServers.push(server);
      return;
    }
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ hostname, port });
    } catch (e) {
      throw new Error(`Cannot listen on ${hostname}:${port}: ${(e as Error).message}`);
    }
    this.#listeners.push(listener);
    this.#accept(listener, sessionOpts);
  }

  async #accept(
    listener: Deno.Listener,
    sessionOpts: { logger: Logger; replica?: boolean; failoverWindowMs?: number },
  ): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // not a TCP connection
      }
      const peer = conn.remoteAddr as Deno.NetAddr;
      new ClientSession(conn, this, { ...sessionOpts, remoteAddress: peer.hostname }).run();
    }
  }

  /** Stops accepting new clients. */
  stopListening(): void {
    for (const s of this.#nodeServers) s.close();
    for (const l of this.#listeners) {
      try {
        l.close();
      } catch {
        // already closed
      }
    }
  }
}
