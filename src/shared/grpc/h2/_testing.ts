/**
 * Test helpers: {@linkcode frameBytes} spells out frames byte by byte (independently of
 * {@linkcode FrameWriter}), {@linkcode hex} reads RFC-style hex dumps, and {@linkcode RawPeer}
 * is a hand-driven HTTP/2 endpoint on a real socket, for tests that need a misbehaving or
 * scripted peer.
 *
 * @module
 */

import { CLIENT_PREFACE, FrameType } from "./constants.ts";
import { H2FrameReader } from "./frame_reader.ts";
import { type HeaderList, HpackDecoder } from "./hpack_decoder.ts";

/** Bytes of a hex dump; whitespace is ignored (`"8286 8441"`). */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substring(i * 2, i * 2 + 2), 16);
  return out;
}

/** Bytes of `parts`, one after the other. */
export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrays = parts.map((p) => p instanceof Uint8Array ? p : new Uint8Array(p));
  const out = new Uint8Array(arrays.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of arrays) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Big-endian bytes of `n` in `width` bytes. */
export function be(n: number, width: number): number[] {
  const out: number[] = [];
  for (let i = width - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
  return out;
}

/** One frame: 24-bit length, type, flags, 31-bit stream id, payload. */
export function frameBytes(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array | number[] = [],
): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  return concat(be(body.length, 3), [type, flags], be(streamId, 4), body);
}

/** A SETTINGS frame with `[id, value]` pairs. */
export function settingsBytes(...pairs: [number, number][]): Uint8Array {
  return frameBytes(
    FrameType.SETTINGS,
    0,
    0,
    pairs.flatMap(([id, v]) => [...be(id, 2), ...be(v, 4)]),
  );
}

/** A gRPC message: flag 0, length, bytes. */
export function grpcMessage(msg: Uint8Array | number[]): Uint8Array {
  const body = msg instanceof Uint8Array ? msg : new Uint8Array(msg);
  return concat([0], be(body.length, 4), body);
}

/** A frame as a raw peer saw it (payload copied). */
export interface SeenFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** A scripted HTTP/2 endpoint over a real socket. */
export class RawPeer {
  readonly conn: Deno.Conn;
  readonly #reader = new H2FrameReader({ maxFrameSize: 16_777_215 });
  readonly decoder: HpackDecoder = new HpackDecoder();
  #eof = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Dials a server and sends the client preface and an empty SETTINGS. */
  static async client(port: number): Promise<RawPeer> {
    const peer = new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port }));
    await peer.send(concat(CLIENT_PREFACE, settingsBytes()));
    return peer;
  }

  /** Writes all of `bytes`. */
  async send(...parts: Uint8Array[]): Promise<void> {
    let bytes = concat(...parts);
    while (bytes.length > 0) bytes = bytes.subarray(await this.conn.write(bytes));
  }

  /** Reads the 24-byte client preface (server side). */
  async readPreface(): Promise<void> {
    while (this.#reader.buffered() < CLIENT_PREFACE.length) await this.#fill();
    if (!this.#reader.preface()) throw new Error("no preface");
  }

  /** The next frame, or `null` at end of stream. */
  async next(): Promise<SeenFrame | null> {
    for (;;) {
      const r = this.#reader;
      if (r.next()) {
        return { type: r.type, flags: r.flags, streamId: r.streamId, payload: r.payload.slice() };
      }
      if (this.#eof) return null;
      await this.#fill();
    }
  }

  /** The next frame of `type` (others are skipped); throws at end of stream. */
  async expect(type: number): Promise<SeenFrame> {
    for (;;) {
      const f = await this.next();
      if (f === null) throw new Error(`connection ended while waiting for frame type ${type}`);
      if (f.type === type) return f;
    }
  }

  /** Decodes a HEADERS payload (no padding, no priority, END_HEADERS). */
  headers(f: SeenFrame): HeaderList {
    return this.decoder.decode(f.payload);
  }

  /** Reads until the peer closes; returns the frames seen. */
  async drain(): Promise<SeenFrame[]> {
    const frames: SeenFrame[] = [];
    for (let f = await this.next(); f !== null; f = await this.next()) frames.push(f);
    return frames;
  }

  close(): void {
    try {
      this.conn.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }

  async #fill(): Promise<void> {
    let n: number | null = null;
    try {
      n = await this.conn.read(this.#reader.writable());
    } catch (e) {
      if (!(e instanceof Deno.errors.ConnectionReset) && !(e instanceof Deno.errors.BadResource)) {
        throw e;
      }
    }
    if (n === null) this.#eof = true;
    else this.#reader.commit(n);
  }
}

/** A listener that hands out raw peers (server side). */
export class RawServer {
  readonly listener: Deno.TcpListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });

  get port(): number {
    return this.listener.addr.port;
  }

  /** Accepts one connection and reads its preface. */
  async accept(): Promise<RawPeer> {
    const peer = new RawPeer(await this.listener.accept());
    await peer.readPreface();
    return peer;
  }

  close(): void {
    this.listener.close();
  }
}
