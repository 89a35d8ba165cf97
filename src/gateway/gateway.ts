import type { Logger } from "../shared/log/mod.ts";
import type { GetAuthCredentialsResponse } from "../shared/grpc/types.ts";
import type { Router } from "./router/router.ts";
import type { GatewayHandler, SessionBackend, SessionIdentity } from "./session/handler.ts";
import { ClientSession } from "./session/client_session.ts";

/** Bits of a virtual PID below the gateway's prefix. */
const LOCAL_ID_BITS = 20;
/** Largest prefix that keeps virtual PIDs positive int32s. */
export const MAX_PID_PREFIX = (1 << (31 - LOCAL_ID_BITS)) - 1;

/**
 * The gateway proper: accepts client connections, gives each a ClientSession, and answers the
 * sessions' needs (credentials, routing, virtual backend keys) from the Router.
 */
export class Gateway implements GatewayHandler {
  readonly pidPrefix: number;
  readonly #router: Router;
  readonly #logger: Logger;
  #nextId = 0;
  readonly #live = new Set<number>();
  #listener?: Deno.Listener;

  constructor(router: Router, opts: { pidPrefix: number; logger: Logger }) {
    if (opts.pidPrefix < 1 || opts.pidPrefix > MAX_PID_PREFIX) {
      throw new Error(`Invalid PID prefix ${opts.pidPrefix}: want 1 to ${MAX_PID_PREFIX}`);
    }
    this.#router = router;
    this.pidPrefix = opts.pidPrefix;
    this.#logger = opts.logger;
  }

  get sessions(): number {
    return this.#live.size;
  }

  credentials(user: string): Promise<GetAuthCredentialsResponse> {
    return this.#router.credentials(user);
  }

  route(database: string): Promise<SessionBackend> {
    return this.#router.route(database);
  }

  newSession(): SessionIdentity {
    const sessionId = ++this.#nextId;
    const local = sessionId & ((1 << LOCAL_ID_BITS) - 1);
    const secret = crypto.getRandomValues(new Int32Array(1))[0];
    this.#live.add(sessionId);
    return { sessionId, pid: (this.pidPrefix << LOCAL_ID_BITS) | local, secret };
  }

  sessionEnded(id: SessionIdentity): void {
    this.#live.delete(id.sessionId);
  }

  /** Listens for PostgreSQL clients; resolves with the bound address. */
  listen(hostname: string, port: number): Deno.NetAddr {
    try {
      this.#listener = Deno.listen({ hostname, port });
    } catch (e) {
      throw new Error(`Cannot listen on ${hostname}:${port}: ${(e as Error).message}`);
    }
    this.#accept(this.#listener);
    return this.#listener.addr as Deno.NetAddr;
  }

  async #accept(listener: Deno.Listener): Promise<void> {
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
      new ClientSession(conn, this, { logger: this.#logger }).run();
    }
  }

  /** Stops accepting new clients. */
  stopListening(): void {
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
  }
}
