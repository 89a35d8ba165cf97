/**
 * {@linkcode serveBidi} and {@linkcode serveBidiConn}: serve one bidirectional gRPC method over
 * h2c on Deno sockets.
 *
 * @module
 */

import {
  type ByteConn,
  H2Connection,
  type H2ConnectionOptions,
  type StreamHandler,
} from "./connection.ts";

/**
 * What {@linkcode serveBidi} accepts connections from: a `Deno.Listener` (TCP), or
 * `listenMutualTls()` (TLS that requires a client certificate from a CA).
 */
export interface H2Listener {
  accept(): Promise<ByteConn>;
  close(): void;
  readonly addr: Deno.Addr;
}

/** Options of {@linkcode serveBidi}: the method served, its handler, and connection tuning. */
export interface ServeBidiOptions extends H2ConnectionOptions, StreamHandler {}

/** A listener serving one method; see {@linkcode serveBidi}. */
export class BidiServer {
  readonly #listener: H2Listener;
  readonly #opts: ServeBidiOptions;
  readonly #conns = new Set<H2Connection>();
  #closing = false;
  /** Resolves when the accept loop ends: `null` after `close()`, else the accept error. */
  readonly finished: Promise<Error | null>;

  constructor(listener: H2Listener, opts: ServeBidiOptions) {
    this.#listener = listener;
    this.#opts = opts;
    this.finished = this.#accept();
  }

  /** The address listened on. */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /**
   * Stops accepting and closes every connection (their streams end UNAVAILABLE, "the server is
   * shutting down"). Resolves once all are closed.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#listener.close();
    }
    await Promise.all([...this.#conns].map((c) => c.close()));
    await this.finished;
  }

  async #accept(): Promise<Error | null> {
    for (;;) {
      let conn: ByteConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closing || e instanceof Deno.errors.BadResource) return null;
        return e instanceof Error ? e : new Error(String(e));
      }
      if (this.#closing) {
        conn.close();
        return null;
      }
      const h2 = serveBidiConn(conn, this.#opts);
      this.#conns.add(h2);
      h2.closed.then(() => this.#conns.delete(h2));
    }
  }
}

/**
 * Serves `opts.path` on every h2c connection `listener` accepts (TCP with `setNoDelay`, or
 * TLS whose ALPN chose `h2`, e.g. from `listenMutualTls()`). Each client stream to the path reaches `opts.onStream`; streams
 * to other paths are answered UNIMPLEMENTED.
 *
 * ```ts ignore
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const server = serveBidi(listener, {
 *   path: "/multigres.multipooler.MultiPooler/DataPlane",
 *   onStream(stream) {
 *     stream.onMessage = (msg) => stream.write(msg); // echo; msg is borrowed, write() copies
 *     stream.onEnd = () => stream.end();
 *   },
 * });
 * // … later
 * await server.close();
 * ```
 */
export function serveBidi(listener: H2Listener, opts: ServeBidiOptions): BidiServer {
  return new BidiServer(listener, opts);
}

/** Serves one accepted connection (see {@linkcode serveBidi}); sets `setNoDelay` when it can. */
export function serveBidiConn(conn: ByteConn, opts: ServeBidiOptions): H2Connection {
  noDelay(conn);
  return new H2Connection(conn, { role: "server", handler: opts }, opts);
}

/** Turns Nagle off on a TCP connection (a TLS connection has no such switch here). */
export function noDelay(conn: ByteConn): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  if (typeof tcp.setNoDelay === "function") tcp.setNoDelay(true);
}
