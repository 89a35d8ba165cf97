import assert from "node:assert/strict";
import { CLIENT_PREFACE, FrameFlag, FrameType } from "./constants.ts";
import { FrameWriter } from "./frame_writer.ts";
import { be, concat, frameBytes, grpcMessage, settingsBytes } from "./_testing.ts";

const bytes = (w: FrameWriter) => [...w.view()];

Deno.test("FrameWriter.settings()/settingsAck() write the pairs and the ACK", () => {
  const w = new FrameWriter().settings([4, 1 << 20, 5, 16_384]).settingsAck();
  assert.deepEqual(
    bytes(w),
    [...settingsBytes([4, 1 << 20], [5, 16_384]), ...frameBytes(FrameType.SETTINGS, 1, 0)],
  );
});

Deno.test("FrameWriter writes WINDOW_UPDATE, PING, RST_STREAM and GOAWAY", () => {
  const ping = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const w = new FrameWriter()
    .windowUpdate(0, 0x7fffffff)
    .ping(true, ping)
    .rstStream(3, 8)
    .goaway(7, 1, "bad");
  assert.deepEqual(
    bytes(w),
    [
      ...frameBytes(FrameType.WINDOW_UPDATE, 0, 0, be(0x7fffffff, 4)),
      ...frameBytes(FrameType.PING, FrameFlag.ACK, 0, ping),
      ...frameBytes(FrameType.RST_STREAM, 0, 3, be(8, 4)),
      ...frameBytes(FrameType.GOAWAY, 0, 0, [...be(7, 4), ...be(1, 4), 0x62, 0x61, 0x64]),
    ],
  );
});

Deno.test("FrameWriter.preface() writes the 24-byte client preface", () => {
  assert.deepEqual(bytes(new FrameWriter().preface()), [...CLIENT_PREFACE]);
});

Deno.test("FrameWriter.headers() splits a large block into HEADERS + CONTINUATION", () => {
  const block = new Uint8Array(40_000).map((_, i) => i & 0xff);
  const w = new FrameWriter().headers(1, block, true, 16_384);
  assert.deepEqual(
    bytes(w),
    [
      ...frameBytes(FrameType.HEADERS, FrameFlag.END_STREAM, 1, block.subarray(0, 16_384)),
      ...frameBytes(FrameType.CONTINUATION, 0, 1, block.subarray(16_384, 32_768)),
      ...frameBytes(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block.subarray(32_768)),
    ],
  );
});

Deno.test("FrameWriter.headers() writes a small block as one HEADERS with END_HEADERS", () => {
  const w = new FrameWriter().headers(3, new Uint8Array([0x88]), false, 16_384);
  assert.deepEqual(bytes(w), [...frameBytes(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, [0x88])]);
});

Deno.test("FrameWriter.message() merges messages of one stream into one DATA frame", () => {
  const w = new FrameWriter();
  w.message(1, new Uint8Array([1, 2, 3]), 16_384);
  w.message(1, new Uint8Array([]), 16_384);
  w.message(1, new Uint8Array([4]), 16_384);
  const payload = concat(grpcMessage([1, 2, 3]), grpcMessage([]), grpcMessage([4]));
  assert.deepEqual(bytes(w), [...frameBytes(FrameType.DATA, 0, 1, payload)]);
});

Deno.test("FrameWriter.message() starts a new frame for another stream or after another frame", () => {
  const w = new FrameWriter();
  w.message(1, new Uint8Array([1]), 16_384);
  w.message(3, new Uint8Array([2]), 16_384);
  w.windowUpdate(0, 10);
  w.message(3, new Uint8Array([3]), 16_384);
  assert.deepEqual(
    bytes(w),
    [
      ...frameBytes(FrameType.DATA, 0, 1, grpcMessage([1])),
      ...frameBytes(FrameType.DATA, 0, 3, grpcMessage([2])),
      ...frameBytes(FrameType.WINDOW_UPDATE, 0, 0, be(10, 4)),
      ...frameBytes(FrameType.DATA, 0, 3, grpcMessage([3])),
    ],
  );
});

Deno.test("FrameWriter.message() splits a message over frames of maxFrameSize", () => {
  const msg = new Uint8Array(40_000).map((_, i) => i % 251);
  const w = new FrameWriter(64);
  w.message(1, new Uint8Array(10), 16_384); // the open frame has 15 bytes already
  w.message(1, msg, 16_384);
  const all = concat(grpcMessage(new Uint8Array(10)), grpcMessage(msg));
  assert.deepEqual(
    bytes(w),
    [
      ...frameBytes(FrameType.DATA, 0, 1, all.subarray(0, 16_384)),
      ...frameBytes(FrameType.DATA, 0, 1, all.subarray(16_384, 32_768)),
      ...frameBytes(FrameType.DATA, 0, 1, all.subarray(32_768)),
    ],
  );
});

Deno.test("FrameWriter.endStream() flags the open DATA frame, or writes an empty one", () => {
  const w = new FrameWriter();
  w.message(1, new Uint8Array([5]), 16_384).endStream(1).endStream(3);
  assert.deepEqual(
    bytes(w),
    [
      ...frameBytes(FrameType.DATA, FrameFlag.END_STREAM, 1, grpcMessage([5])),
      ...frameBytes(FrameType.DATA, FrameFlag.END_STREAM, 3),
    ],
  );
});

Deno.test("FrameWriter.reset() forgets frames and the open DATA frame", () => {
  const w = new FrameWriter();
  w.message(1, new Uint8Array([1]), 16_384);
  w.reset();
  assert.equal(w.length, 0);
  w.message(1, new Uint8Array([2]), 16_384);
  assert.deepEqual(bytes(w), [...frameBytes(FrameType.DATA, 0, 1, grpcMessage([2]))]);
});
