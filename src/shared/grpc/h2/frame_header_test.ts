import assert from "node:assert/strict";
import { FrameFlag, FrameType } from "./constants.ts";
import { decodeFrameHeader, encodeFrameHeader, getUint32, setUint32 } from "./frame_header.ts";
import { frameBytes } from "./_testing.ts";

Deno.test("encodeFrameHeader() writes length, type, flags and stream id big-endian", () => {
  const buf = new Uint8Array(11);
  encodeFrameHeader(buf, 2, {
    length: 0x012345,
    type: FrameType.HEADERS,
    flags: FrameFlag.END_HEADERS | FrameFlag.END_STREAM,
    streamId: 0x7fff0001,
  });
  assert.deepEqual([...buf], [0, 0, 0x01, 0x23, 0x45, 0x01, 0x05, 0x7f, 0xff, 0x00, 0x01]);
});

Deno.test("encodeFrameHeader() sends the reserved bit as 0", () => {
  const buf = new Uint8Array(9);
  encodeFrameHeader(buf, 0, { length: 0, type: 0, flags: 0, streamId: 0xffffffff });
  assert.equal(buf[5], 0x7f);
});

Deno.test("decodeFrameHeader() reads a header at an offset and ignores the reserved bit", () => {
  const bytes = new Uint8Array([9, 9, ...frameBytes(FrameType.DATA, FrameFlag.PADDED, 3, [1, 2])]);
  bytes[2 + 5] |= 0x80; // reserved bit set by a sloppy peer
  assert.deepEqual(decodeFrameHeader(bytes, 2), {
    length: 2,
    type: FrameType.DATA,
    flags: FrameFlag.PADDED,
    streamId: 3,
  });
});

Deno.test("decodeFrameHeader() honours the view's byteOffset", () => {
  const backing = new Uint8Array(32).fill(0xee);
  backing.set(frameBytes(FrameType.PING, FrameFlag.ACK, 0, new Uint8Array(8)), 7);
  const view = backing.subarray(7);
  assert.deepEqual(decodeFrameHeader(view), { length: 8, type: 6, flags: 1, streamId: 0 });
});

Deno.test("decodeFrameHeader() rejects a truncated header", () => {
  assert.throws(() => decodeFrameHeader(new Uint8Array(8)), RangeError);
});

Deno.test("getUint32()/setUint32() round-trip values above 2^31", () => {
  const buf = new Uint8Array(4);
  setUint32(buf, 0, 0xfedcba98);
  assert.deepEqual([...buf], [0xfe, 0xdc, 0xba, 0x98]);
  assert.equal(getUint32(buf, 0), 0xfedcba98);
});
