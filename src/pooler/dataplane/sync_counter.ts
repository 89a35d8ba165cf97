import { FrontendCode } from "../../shared/wire/mod.ts";

/**
 * Counts the frames that make Postgres answer with ReadyForQuery (Query, Sync, FunctionCall) in a
 * stream of frontend bytes that may split frames anywhere: only the 5-byte headers are read.
 */
export class SyncCounter {
  readonly #header = new Uint8Array(5);
  readonly #view = new DataView(this.#header.buffer);
  #headerLen = 0;
  #skip = 0;

  /** Whether the next payload starts at a frame's first byte (no frame is partly fed). */
  get atBoundary(): boolean {
    return this.#skip === 0 && this.#headerLen === 0;
  }

  /** Returns how many sync points start in `payload`. Throws on a length below 4. */
  feed(payload: Uint8Array): number {
    let n = 0;
    let off = 0;
    while (off < payload.length) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, payload.length - off);
        off += k;
        this.#skip -= k;
        continue;
      }
      const take = Math.min(5 - this.#headerLen, payload.length - off);
      this.#header.set(payload.subarray(off, off + take), this.#headerLen);
      this.#headerLen += take;
      off += take;
      if (this.#headerLen < 5) break;
      this.#headerLen = 0;
      const code = this.#header[0];
      const len = this.#view.getInt32(1);
      // The gateway cuts frames with a checked reader; anything else is a broken peer.
      if (len < 4) throw new RangeError(`invalid frame length ${len} in data-plane payload`);
      if (
        code === FrontendCode.Query || code === FrontendCode.Sync ||
        code === FrontendCode.FunctionCall
      ) n++;
      this.#skip = len - 4;
    }
    return n;
  }
}

/** How many ReadyForQuery frames a payload of whole frames will produce. */
export function countSyncPoints(payload: Uint8Array): number {
  return new SyncCounter().feed(payload);
}

/** How a payload leaves the extended protocol (see {@linkcode syncEnd}). */
export const SyncEnd = {
  /** No sync point and no extended-protocol message: as before the payload. */
  SAME: 0,
  /** The last sync point (Query, Sync, FunctionCall) comes after every extended-protocol message. */
  SYNCED: 1,
  /**
   * Parse, Bind, Describe, Execute or Close follow the last sync point: Postgres holds state for
   * them (an implicit transaction, say) until the next one, so the backend must stay with the
   * session.
   */
  UNSYNCED: 2,
} as const;

/** Whether an extended-protocol frame code leaves state that only a sync point settles. */
export function isExtendedCode(code: number): boolean {
  return code === FrontendCode.Parse || code === FrontendCode.Bind ||
    code === FrontendCode.Describe || code === FrontendCode.Execute || code === FrontendCode.Close;
}

/** Sync points of a payload of whole frames, and how it leaves the extended protocol. */
export function syncEnd(payload: Uint8Array): { syncPoints: number; end: number } {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let syncPoints = 0;
  let end: number = SyncEnd.SAME;
  for (let off = 0; off + 5 <= payload.length;) {
    const code = payload[off];
    const len = dv.getInt32(off + 1);
    if (len < 4) throw new RangeError(`invalid frame length ${len} in data-plane payload`);
    if (
      code === FrontendCode.Query || code === FrontendCode.Sync ||
      code === FrontendCode.FunctionCall
    ) {
      syncPoints++;
      end = SyncEnd.SYNCED;
    } else if (isExtendedCode(code)) end = SyncEnd.UNSYNCED;
    off += 1 + len;
  }
  return { syncPoints, end };
}
