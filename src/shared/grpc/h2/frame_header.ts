/**
 * The 9-byte HTTP/2 frame header (RFC 9113 §4.1): {@linkcode encodeFrameHeader} and
 * {@linkcode decodeFrameHeader}, plus the big-endian helpers the codec uses on plain
 * `Uint8Array`s (no `DataView`, so a view's `byteOffset` can never be dropped).
 *
 * @module
 */

import { FRAME_HEADER_SIZE } from "./constants.ts";

/** A decoded frame header. */
export interface FrameHeader {
  /** Payload length (24 bits). */
  length: number;
  /** A {@linkcode FrameType}. */
  type: number;
  /** `FrameFlag` bits. */
  flags: number;
  /** Stream identifier (31 bits; 0 for the connection). */
  streamId: number;
}

/** Reads a big-endian uint24 at `at`. */
export function getUint24(buf: Uint8Array, at: number): number {
  return (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
}

/** Reads a big-endian uint32 at `at`. */
export function getUint32(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

/** Writes a big-endian uint24 at `at`. */
export function setUint24(buf: Uint8Array, at: number, n: number): void {
  buf[at] = n >>> 16;
  buf[at + 1] = n >>> 8;
  buf[at + 2] = n;
}

/** Writes a big-endian uint32 at `at`. */
export function setUint32(buf: Uint8Array, at: number, n: number): void {
  buf[at] = n >>> 24;
  buf[at + 1] = n >>> 16;
  buf[at + 2] = n >>> 8;
  buf[at + 3] = n;
}

/** Writes a frame header at `at` (9 bytes); the reserved bit of the stream id is sent as 0. */
export function encodeFrameHeader(
  buf: Uint8Array,
  at: number,
  header: FrameHeader,
): void {
  setUint24(buf, at, header.length);
  buf[at + 3] = header.type;
  buf[at + 4] = header.flags;
  setUint32(buf, at + 5, header.streamId & 0x7fffffff);
}

/** Reads the frame header at `at`; ignores the reserved bit of the stream id. */
export function decodeFrameHeader(buf: Uint8Array, at = 0): FrameHeader {
  if (buf.length - at < FRAME_HEADER_SIZE) throw new RangeError("frame header truncated");
  return {
    length: getUint24(buf, at),
    type: buf[at + 3],
    flags: buf[at + 4],
    streamId: getUint32(buf, at + 5) & 0x7fffffff,
  };
}
