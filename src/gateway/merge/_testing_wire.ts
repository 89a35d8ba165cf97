/**
 * A raw Postgres wire connection for the merge's tests: startup as `postgres` (trust), then
 * payloads of whole frontend messages sent as they are, answered with every backend frame up to
 * the last ReadyForQuery they ask for.
 *
 * @module
 */

import {
  BackendCode,
  concatBytes,
  FrontendCode,
  WireWriter,
  writeStartupMessage,
  writeTerminate,
} from "../../shared/wire/mod.ts";

/** One connection to a database on 127.0.0.1. */
export class RawConn {
  readonly #conn: Deno.TcpConn;
  #buf: Uint8Array = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(port: number, database: string): Promise<RawConn> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const c = new RawConn(conn);
    const w = new WireWriter(128);
    writeStartupMessage(w, { user: "postgres", database, client_encoding: "UTF8" });
    await c.#write(w.view().slice());
    await c.#until(1);
    return c;
  }

  async #write(b: Uint8Array): Promise<void> {
    for (let off = 0; off < b.length;) off += await this.#conn.write(b.subarray(off));
  }

  /** Reads frames until `n` ReadyForQuery frames have come; returns them all (concatenated). */
  async #until(n: number): Promise<Uint8Array> {
    const out: Uint8Array[] = [];
    let seen = 0;
    const chunk = new Uint8Array(65536);
    for (;;) {
      while (this.#buf.length >= 5) {
        const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getInt32(1);
        if (this.#buf.length < len + 1) break;
        const frame = this.#buf.slice(0, len + 1);
        this.#buf = this.#buf.subarray(len + 1);
        out.push(frame);
        if (frame[0] === BackendCode.ReadyForQuery && ++seen === n) return concatBytes(out);
      }
      const r = await this.#conn.read(chunk);
      if (r === null) throw new Error("connection closed");
      this.#buf = concatBytes([this.#buf, chunk.subarray(0, r)]);
    }
  }

  /** Sends whole frontend messages; resolves with the answer up to their last ReadyForQuery. */
  async run(payload: Uint8Array): Promise<Uint8Array> {
    let n = 0;
    for (let off = 0; off < payload.length;) {
      const code = payload[off];
      if (code === FrontendCode.Sync || code === FrontendCode.Query) n++;
      off += 1 + new DataView(payload.buffer, payload.byteOffset + off + 1).getInt32(0);
    }
    await this.#write(payload);
    return await this.#until(n);
  }

  async close(): Promise<void> {
    const w = new WireWriter(8);
    writeTerminate(w);
    await this.#write(w.view().slice()).catch(() => {});
    this.#conn.close();
  }
}
