import net from "node:net";
import tls from "node:tls";

/**
 * What a client session reads and writes. A `Deno.Conn` fits it as it is; a node socket (the
 * listener used when TLS is configured, since Deno cannot upgrade an accepted connection to TLS
 * itself) is adapted by NodeSocketTransport.
 */
export interface ClientTransport {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  /** Upgrades to TLS as the server (after answering 'S' to SSLRequest); absent: no TLS. */
  startTls?(): Promise<ClientTransport>;
}

/** Stop reading the socket while this much is received and not yet read by the session. */
const HIGH_WATER = 1 << 20;

/** A node socket as a pull-style transport: chunks are queued until `read()` takes them. */
export class NodeSocketTransport implements ClientTransport {
  readonly #sock: net.Socket;
  readonly #tlsContext?: tls.SecureContext;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error?: Error;
  #wake?: () => void;

  constructor(sock: net.Socket, tlsContext?: tls.SecureContext) {
    this.#sock = sock;
    this.#tlsContext = tlsContext;
    sock.setNoDelay(true);
    sock.on("data", this.#onData);
    sock.on("end", this.#onEnd);
    sock.on("close", this.#onEnd);
    sock.on("error", this.#onError);
  }

  #onData = (chunk: Uint8Array) => {
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > HIGH_WATER) this.#sock.pause();
    this.#notify();
  };

  #onEnd = () => {
    this.#ended = true;
    this.#notify();
  };

  #onError = (e: Error) => {
    this.#error = e;
    this.#ended = true;
    this.#notify();
  };

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (!this.#chunks.length) {
      if (this.#ended) {
        if (this.#error) throw this.#error;
        return null;
      }
      await new Promise<void>((r) => (this.#wake = r));
    }
    let n = 0;
    while (n < p.length && this.#chunks.length) {
      const c = this.#chunks[0];
      const k = Math.min(c.length, p.length - n);
      p.set(c.subarray(0, k), n);
      n += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#queued -= n;
    if (this.#queued <= HIGH_WATER / 4 && this.#sock.isPaused()) this.#sock.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#sock.destroyed) {
        reject(new Error("connection closed"));
        return;
      }
      this.#sock.write(p, (err) => (err ? reject(err) : resolve(p.length)));
    });
  }

  close(): void {
    this.#sock.destroy();
  }

  get startTls(): (() => Promise<ClientTransport>) | undefined {
    if (!this.#tlsContext) return undefined;
    return () => this.#upgrade();
  }

  #upgrade(): Promise<ClientTransport> {
    const ctx = this.#tlsContext!;
    const raw = this.#sock;
    raw.off("data", this.#onData);
    raw.off("end", this.#onEnd);
    raw.off("close", this.#onEnd);
    raw.off("error", this.#onError);
    // The handshake runs as the client's bytes arrive; a failed one surfaces as a read error.
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: ctx });
    return Promise.resolve(new NodeSocketTransport(secure));
  }
}

/** A TLS context from PEM files, with one clear error when they cannot be read. */
export function loadTlsContext(certFile: string, keyFile: string): tls.SecureContext {
  let cert: string;
  let key: string;
  try {
    cert = Deno.readTextFileSync(certFile);
    key = Deno.readTextFileSync(keyFile);
  } catch (e) {
    throw new Error(`Cannot read the TLS certificate or key: ${(e as Error).message}`);
  }
  try {
    return tls.createSecureContext({ cert, key, minVersion: "TLSv1.2" });
  } catch (e) {
    throw new Error(`Invalid TLS certificate or key: ${(e as Error).message}`);
  }
}
