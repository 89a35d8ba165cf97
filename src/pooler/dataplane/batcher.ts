import {
  MAX_BATCH_BYTES,
  MAX_PAYLOAD_PIECE,
  type SessionResponse,
} from "../../shared/grpc/types.ts";
import { slab } from "../../shared/wire/mod.ts";
import type { ResponseSink } from "./session_table.ts";

/**
 * Collects every response ready in one turn of the event loop into one data-plane message.
 * Frames are copied as they arrive (the backend's receive buffer is reused); consecutive frames
 * of the same session in one batch are kept as separate chunks and joined once at flush.
 */
export class Batcher implements ResponseSink {
  readonly #send: (responses: SessionResponse[]) => boolean;
  #pending: Pending[] = [];
  #scheduled = false;
  #batchBytes = 0;
  #drain: Promise<void> | null = null;
  #resolveDrain?: () => void;

  /** `send` writes one message and returns false when the stream wants the writer to wait. */
  constructor(send: (responses: SessionResponse[]) => boolean) {
    this.#send = send;
  }

  frames(sessionId: number, frames: Uint8Array): void {
    // Big results go out in pieces, and a full batch goes out at once, so no message comes near
    // gRPC's size limit however large a row is.
    for (let off = 0; off < frames.length; off += MAX_PAYLOAD_PIECE) {
      const piece = frames.subarray(off, off + MAX_PAYLOAD_PIECE);
      const last = this.#pending[this.#pending.length - 1];
      if (
        last && last.sessionId === sessionId && !last.done &&
        last.size + piece.length <= MAX_PAYLOAD_PIECE
      ) {
        last.chunks.push(slab.copy(piece));
        last.size += piece.length;
      } else {
        this.#pending.push({
          sessionId,
          chunks: [slab.copy(piece)],
          size: piece.length,
          done: false,
          reserved: 0,
          closed: false,
          acked: 0,
          flags: 0,
          settled: 0,
        });
      }
      this.#batchBytes += piece.length;
      if (this.#batchBytes >= MAX_BATCH_BYTES) this.flush();
    }
    this.#schedule();
  }

  ackRequests(sessionId: number, bytes: number): void {
    const last = this.#pending[this.#pending.length - 1];
    if (last && last.sessionId === sessionId && !last.done) {
      last.acked += bytes;
    } else {
      this.#pending.push({
        sessionId,
        chunks: [],
        size: 0,
        done: false,
        reserved: 0,
        closed: false,
        acked: bytes,
        flags: 0,
        settled: 0,
      });
    }
    this.#schedule();
  }

  done(sessionId: number, reserved: number, closed = false, flags = 0, settled = 0): void {
    const last = this.#pending[this.#pending.length - 1];
    if (last && last.sessionId === sessionId && !last.done) {
      last.done = true;
      last.reserved = reserved;
      last.closed = closed;
      last.flags = flags;
      last.settled = settled;
    } else {
      this.#pending.push({
        sessionId,
        chunks: [],
        size: 0,
        done: true,
        reserved,
        closed,
        acked: 0,
        flags,
        settled,
      });
    }
    this.#schedule();
  }

  congested(): Promise<void> | null {
    return this.#drain;
  }

  /** The stream drained: producers may go on. */
  drained(): void {
    const r = this.#resolveDrain;
    this.#drain = null;
    this.#resolveDrain = undefined;
    r?.();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    if (!this.#pending.length) return;
    const batch = this.#pending.map(toResponse);
    this.#pending = [];
    this.#batchBytes = 0;
    const ok = this.#send(batch);
    if (!ok && !this.#drain) {
      this.#drain = new Promise((r) => (this.#resolveDrain = r));
    }
  }
}

/** A response being gathered: chunks are copied once and joined once, at flush. */
interface Pending {
  sessionId: number;
  chunks: Uint8Array[];
  size: number;
  done: boolean;
  reserved: number;
  closed: boolean;
  acked: number;
  flags: number;
  settled: number;
}

function toResponse(p: Pending): SessionResponse {
  let payload: Uint8Array;
  if (p.chunks.length === 1) {
    payload = p.chunks[0];
  } else {
    payload = slab.alloc(p.size);
    let off = 0;
    for (const c of p.chunks) {
      payload.set(c, off);
      off += c.length;
    }
  }
  const res: SessionResponse = {
    sessionId: p.sessionId,
    payload,
    done: p.done,
    reserved: p.reserved,
    closed: p.closed,
  };
  if (p.acked) res.acked = p.acked;
  if (p.flags) res.flags = p.flags;
  if (p.settled) res.settled = p.settled;
  return res;
}
