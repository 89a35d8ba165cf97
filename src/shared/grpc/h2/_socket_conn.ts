import type { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { ByteConn } from "./connection.ts";

/** Received bytes held for `read()` before the socket is paused. */
const HIGH_WATER = 1024 * 1024;
/** How long `close()` lets queued bytes leave before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

/**
 * A node:net (or node:tls) socket seen as the `ByteConn` the HTTP/2 connection reads and writes:
 * reads pull from the chunks the socket delivered (it is paused while `HIGH_WATER` bytes wait),
 * writes copy the caller's bytes (the frame writer reuses its buffer) and resolve once the
 * socket takes more ('drain').
 */
export class SocketConn implements ByteConn {
  readonly #socket: Socket;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued >= HIGH_WATER) socket.pause();
      this.#poke();
    });
    socket.on("end", () => this.#finish(null));
    socket.on("close", () => this.#finish(null));
    socket.on("error", (e: Error) => this.#finish(e));
  }

  #finish(err: Error | null): void {
    if (err && !this.#ended) this.#error ??= err;
    this.#ended = true;
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Copies waiting bytes into `p`; waits when none; null at the end of the stream. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      if (this.#socket.isPaused()) this.#socket.resume();
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const take = Math.min(p.length - n, chunk.length);
      p.set(take === chunk.length ? chunk : chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#queued -= n;
    if (this.#queued < HIGH_WATER && this.#socket.isPaused() && !this.#ended) {
      this.#socket.resume();
    }
    return n;
  }

  /** Queues a copy of `p`; resolves at once, or once the socket drained its backlog. */
  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended || this.#socket.destroyed) {
      return Promise.reject(new Deno.errors.BrokenPipe("the connection is closed"));
    }
    // Uint8Array.prototype.slice copies; node:net keeps the chunk until it is sent.
    if (this.#socket.write(p.slice())) return Promise.resolve(p.length);
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        this.#socket.off("drain", onDrain);
        this.#socket.off("close", onClose);
        if (err) reject(err);
        else resolve(p.length);
      };
      const onDrain = () => done();
      const onClose = () =>
        done(this.#error ?? new Deno.errors.BrokenPipe("the connection is closed"));
      this.#socket.on("drain", onDrain);
      this.#socket.on("close", onClose);
    });
  }

  /** Sends what is queued (for up to `CLOSE_GRACE_MS`), then closes. */
  close(): void {
    const socket = this.#socket;
    this.#finish(null);
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    socket.once("close", () => clearTimeout(timer));
    socket.end(() => socket.destroy());
  }
}
