import assert from "node:assert/strict";
import { CLIENT_PREFACE, ErrorCode, FrameFlag, FrameType } from "./constants.ts";
import { H2FrameReader } from "./frame_reader.ts";
import { H2Error } from "./h2_error.ts";
import { concat, frameBytes } from "./_testing.ts";

interface Cut {
  type: number;
  flags: number;
  streamId: number;
  payload: number[];
}

function drain(r: H2FrameReader): Cut[] {
  const out: Cut[] = [];
  while (r.next()) {
    out.push({ type: r.type, flags: r.flags, streamId: r.streamId, payload: [...r.payload] });
  }
  return out;
}

const data = (id: number, ...bytes: number[]) => frameBytes(FrameType.DATA, 0, id, bytes);

Deno.test("H2FrameReader.next() cuts one frame and describes it", () => {
  const r = new H2FrameReader();
  r.push(frameBytes(FrameType.HEADERS, FrameFlag.END_HEADERS, 5, [0x82, 0x86]));
  assert.equal(r.next(), true);
  assert.equal(r.type, FrameType.HEADERS);
  assert.equal(r.flags, FrameFlag.END_HEADERS);
  assert.equal(r.streamId, 5);
  assert.equal(r.length, 2);
  assert.deepEqual([...r.payload], [0x82, 0x86]);
  assert.deepEqual([...r.buffer.subarray(r.payloadStart, r.payloadEnd)], [0x82, 0x86]);
  assert.equal(r.next(), false);
  assert.equal(r.buffered(), 0);
});

Deno.test("H2FrameReader.next() cuts many frames merged in one read", () => {
  const r = new H2FrameReader();
  r.push(concat(data(1, 1), data(3, 2, 3), frameBytes(FrameType.PING, 0, 0, new Uint8Array(8))));
  const cuts = drain(r);
  assert.deepEqual(cuts.map((c) => [c.type, c.streamId, c.payload.length]), [
    [FrameType.DATA, 1, 1],
    [FrameType.DATA, 3, 2],
    [FrameType.PING, 0, 8],
  ]);
});

Deno.test("H2FrameReader.next() waits for a frame split byte by byte across reads", () => {
  const r = new H2FrameReader({ initialSize: 1024 });
  const bytes = concat(data(1, 10, 20, 30), data(1, 40));
  const cuts: Cut[] = [];
  for (const b of bytes) {
    const w = r.writable(1);
    w[0] = b;
    r.commit(1);
    cuts.push(...drain(r));
  }
  assert.deepEqual(cuts.map((c) => c.payload), [[10, 20, 30], [40]]);
});

Deno.test("H2FrameReader grows for a frame larger than its buffer, up to the frame size", () => {
  const r = new H2FrameReader({ initialSize: 1024, maxFrameSize: 100_000 });
  const big = frameBytes(FrameType.DATA, 0, 1, new Uint8Array(70_000).fill(7));
  for (let off = 0; off < big.length; off += 1000) {
    const chunk = big.subarray(off, off + 1000);
    r.writable(chunk.length).set(chunk);
    r.commit(chunk.length);
    if (off + 1000 < big.length) assert.equal(r.next(), false);
  }
  assert.equal(r.next(), true);
  assert.equal(r.length, 70_000);
  assert.ok(r.capacity <= 9 + 100_000 + 16 * 1024, `capacity ${r.capacity} above the cap`);
  r.shrink();
  assert.equal(r.capacity, 1024);
});

Deno.test("H2FrameReader.next() rejects a frame above maxFrameSize before buffering it", () => {
  const r = new H2FrameReader({ maxFrameSize: 16_384 });
  r.push(new Uint8Array([0x00, 0x40, 0x01, FrameType.DATA, 0, 0, 0, 0, 1])); // 16385 bytes
  assert.throws(() => r.next(), (e: unknown) => {
    assert.ok(e instanceof H2Error);
    assert.equal(e.code, ErrorCode.FRAME_SIZE_ERROR);
    return true;
  });
});

Deno.test("H2FrameReader.preface() consumes the client preface, even split", () => {
  const r = new H2FrameReader();
  r.push(CLIENT_PREFACE.subarray(0, 10));
  assert.equal(r.preface(), false);
  r.push(concat(CLIENT_PREFACE.subarray(10), data(1, 9)));
  assert.equal(r.preface(), true);
  assert.deepEqual(drain(r).map((c) => c.payload), [[9]]);
});

Deno.test("H2FrameReader.preface() rejects an HTTP/1.1 request at its first byte", () => {
  const r = new H2FrameReader();
  r.push(new TextEncoder().encode("GET"));
  assert.throws(() => r.preface(), (e: unknown) => e instanceof H2Error && e.code === 1);
});

Deno.test("H2FrameReader.describePartial() says how much of a frame arrived", () => {
  const r = new H2FrameReader();
  assert.equal(r.describePartial(), "");
  r.push(new Uint8Array([0, 0]));
  assert.equal(r.describePartial(), "2 of 9 header bytes");
  r.push(frameBytes(FrameType.DATA, 0, 1, [1, 2, 3]).subarray(2, 10));
  assert.equal(r.describePartial(), "10 of 12 bytes of a frame of type 0");
});

Deno.test("H2FrameReader keeps a pending frame across compaction", () => {
  const r = new H2FrameReader({ initialSize: 1024 });
  const first = frameBytes(FrameType.DATA, 0, 1, new Uint8Array(1000).fill(1));
  const second = frameBytes(FrameType.DATA, 0, 3, new Uint8Array(500).fill(2));
  r.push(concat(first, second.subarray(0, 5)));
  assert.equal(r.next(), true);
  assert.equal(r.next(), false);
  r.push(second.subarray(5)); // compacts the consumed first frame away
  assert.equal(r.next(), true);
  assert.equal(r.streamId, 3);
  assert.ok(r.payload.every((b) => b === 2));
});
