/**
 * {@linkcode listenMutualTls}: a TLS listener for {@linkcode serveBidi} that requires a client
 * certificate from a CA; {@linkcode connectMutualTls}: the client's side, showing one.
 *
 * Both are node:tls in Deno 2.9.3: `Deno.listenTls` cannot ask for or verify client
 * certificates, and a `Deno.connectTls` socket cannot turn Nagle's algorithm off (`startTls`,
 * which can, cannot show a client certificate); with Nagle on, a second small write waits for
 * the peer's delayed ACK (~40 ms). Each socket is handed over as a `ByteConn`.
 *
 * @module
 */
import { isIP } from "node:net";
import tls from "node:tls";
import type { ByteConn } from "./connection.ts";
import type { H2Listener } from "./server.ts";
import { SocketConn } from "./_socket_conn.ts";

/** Where to listen and the PEM texts: our certificate and key, and the CA clients must show. */
export interface MutualTlsListenOptions {
  hostname: string;
  port: number;
  /** CA certificate(s), PEM: a client's certificate must be issued by one of them. */
  ca: string;
  /** Our certificate (PEM), shown to clients. */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** Told of every client refused during the handshake (no certificate, another CA…). */
  onRefused?: (err: Error) => void;
}

/**
 * Listens with TLS (ALPN `h2`), requiring and verifying a client certificate; `accept()` yields
 * only connections whose handshake verified one. Resolves once listening.
 *
 * ```ts ignore
 * const listener = await listenMutualTls({ hostname: "127.0.0.1", port: 0, ca, cert, key });
 * const server = serveBidi(listener, { path, onStream });
 * ```
 */
export async function listenMutualTls(opts: MutualTlsListenOptions): Promise<MutualTlsListener> {
  const listener = new MutualTlsListener(opts);
  await listener.listening;
  return listener;
}

/** Where to connect and the PEM texts: the CAs the server must be issued by, our identity. */
export interface MutualTlsConnectOptions {
  hostname: string;
  port: number;
  /** CA certificate(s), PEM: the server's certificate must be issued by one of them. */
  ca: string | string[];
  /** Our certificate (PEM), shown when the server asks for one. */
  cert: string;
  /** Its private key (PEM). */
  key: string;
}

/**
 * Dials `hostname:port` with TLS (ALPN `h2`, Nagle off), showing our certificate; resolves once
 * the handshake verified the server's certificate against the CAs and against `hostname` (a
 * name or IP address it must list). Check first that the key matches the certificate.
 */
export function connectMutualTls(opts: MutualTlsConnectOptions): Promise<ByteConn> {
  return new Promise((resolve, reject) => {
    // A peer that accepts TCP but never finishes the handshake (a stopped process) must not
    // hold the dial forever.
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake with ${opts.hostname}:${opts.port} timed out`));
    }, HANDSHAKE_TIMEOUT_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(e);
    };
    const socket = tls.connect({
      host: opts.hostname,
      port: opts.port,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      ALPNProtocols: ["h2"],
      // SNI carries names only; an IP address is still checked against the certificate.
      servername: isIP(opts.hostname) ? undefined : opts.hostname,
    }, () => {
      clearTimeout(timer);
      socket.off("error", fail);
      socket.setNoDelay(true);
      resolve(new SocketConn(socket));
    });
    socket.once("error", fail);
  });
}

/** How long a dial waits for the TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** See {@linkcode listenMutualTls}. */
export class MutualTlsListener implements H2Listener {
  readonly #server: tls.Server;
  readonly #ready: ByteConn[] = [];
  readonly #waiting: { resolve(c: ByteConn): void; reject(e: Error): void }[] = [];
  #closed = false;
  /** Resolves once the server listens; rejects when it cannot. */
  readonly listening: Promise<void>;

  constructor(opts: MutualTlsListenOptions) {
    this.#server = tls.createServer({
      key: opts.key,
      cert: opts.cert,
      ca: opts.ca,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["h2"],
    }, (socket) => {
      // rejectUnauthorized already refused the others; checked again all the same.
      if (!socket.authorized) {
        opts.onRefused?.(new Error(`client not authorized: ${socket.authorizationError}`));
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      this.#deliver(new SocketConn(socket));
    });
    this.#server.on("tlsClientError", (err: Error) => opts.onRefused?.(err));
    this.listening = new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(opts.port, opts.hostname, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
  }

  #deliver(conn: ByteConn): void {
    if (this.#closed) {
      conn.close();
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(conn);
    else this.#ready.push(conn);
  }

  /** The next verified connection; rejects (BadResource) once closed. */
  accept(): Promise<ByteConn> {
    const conn = this.#ready.shift();
    if (conn) return Promise.resolve(conn);
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("the listener is closed"));
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** The address listened on. */
  get addr(): Deno.NetAddr {
    const a = this.#server.address();
    if (a === null || typeof a === "string") return { transport: "tcp", hostname: "", port: 0 };
    return { transport: "tcp", hostname: a.address, port: a.port };
  }

  /** Stops listening; connections not yet accepted are closed, waiting accepts rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const c of this.#ready.splice(0)) c.close();
    for (const w of this.#waiting.splice(0)) {
      w.reject(new Deno.errors.BadResource("the listener is closed"));
    }
  }
}
