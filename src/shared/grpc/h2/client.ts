/**
 * {@linkcode connectH2} and {@linkcode connectBidi}: open h2c connections and bidirectional
 * gRPC streams on Deno sockets.
 *
 * @module
 */

import {
  type ByteConn,
  H2Connection,
  type H2ConnectionOptions,
  type OpenStreamOptions,
} from "./connection.ts";
import { noDelay } from "./server.ts";
import { connectMutualTls } from "./mutual_tls.ts";
import type { GrpcStream } from "./stream.ts";

/** Where to connect, and connection tuning. */
export interface ConnectH2Options extends H2ConnectionOptions {
  hostname: string;
  port: number;
  /**
   * An already open socket to use instead of dialling (e.g. `Deno.connectTls` with
   * `alpnProtocols: ["h2"]`); `hostname` and `port` then only name the `:authority`.
   */
  conn?: ByteConn;
  /**
   * Dial with TLS (ALPN `h2`, see `connectMutualTls`) instead of TCP: the server's certificate
   * must be issued by one of `caCerts` for `hostname`, and `cert`/`key` (PEM) are shown when it
   * asks for a client certificate. Check first that the key matches the certificate.
   */
  tls?: { caCerts: string[]; cert: string; key: string };
}

/** {@linkcode connectBidi}: where, which method, and the stream's callbacks. */
export interface ConnectBidiOptions extends ConnectH2Options, OpenStreamOptions {
  /** The method path, e.g. `/multigres.multipooler.MultiPooler/DataPlane`. */
  path: string;
}

/**
 * Dials `hostname:port` (TCP, `setNoDelay`; or TLS, see `tls`) and starts an HTTP/2 connection with prior
 * knowledge. It resolves once the TCP connection is up: the preface and SETTINGS leave with
 * the first flush, and streams may be opened and written at once.
 */
export async function connectH2(opts: ConnectH2Options): Promise<H2Connection> {
  const conn = opts.conn ?? (opts.tls
    ? await connectMutualTls({
      hostname: opts.hostname,
      port: opts.port,
      ca: opts.tls.caCerts,
      cert: opts.tls.cert,
      key: opts.tls.key,
    })
    : await Deno.connect({ hostname: opts.hostname, port: opts.port }));
  noDelay(conn);
  const host = opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname;
  return new H2Connection(conn, { role: "client", authority: `${host}:${opts.port}` }, opts);
}

/**
 * Opens a connection with a single stream to `opts.path`; the connection closes when the
 * stream does.
 *
 * ```ts ignore
 * const stream = await connectBidi({
 *   hostname: "127.0.0.1",
 *   port,
 *   path: "/multigres.multipooler.MultiPooler/DataPlane",
 *   onMessage: (msg) => console.log(decodeDataPlaneResponse(msg)), // msg is borrowed
 *   onClose: (status) => console.log("closed", status.code, status.message),
 * });
 * stream.write(encodeDataPlaneRequest({ requests: [] }));
 * stream.end();
 * ```
 */
export async function connectBidi(opts: ConnectBidiOptions): Promise<GrpcStream> {
  const h2 = await connectH2(opts);
  h2.onStreamClosed = () => {
    if (h2.streamCount === 0) void h2.close();
  };
  return h2.openStream(opts.path, opts);
}
