import assert from "node:assert/strict";
import { PgError } from "../errors/mod.ts";
import { concat, TestBytes } from "./_testing.ts";
import { FrameReader } from "./reader.ts";

const query = (sql: string) => new TestBytes().cstring(sql).typed("Q");

/** Drains every complete typed frame as [code, body copy]. */
function drain(r: FrameReader): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  while (r.next()) out.push([r.code, r.body.slice()]);
  return out;
}

function assertProtocolViolation(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PgError);
    assert.equal(e.sqlstate, "08P01");
    assert.equal(e.severity, "FATAL");
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("FrameReader.next() cuts one frame and describes it", () => {
  const r = new FrameReader();
  const frame = query("SELECT 1");
  r.push(frame);
  assert.equal(r.next(), true);
  assert.equal(r.code, 0x51);
  assert.deepEqual(r.frame, frame);
  assert.deepEqual(r.body, new TestBytes().cstring("SELECT 1").body());
  assert.equal(r.buffered(), 0);
  assert.equal(r.next(), false);
});

Deno.test("FrameReader.next() cuts many frames from one chunk", () => {
  const r = new FrameReader();
  const frames = [query("a"), new TestBytes().typed("S"), query("SELECT 'é'"), query("b")];
  r.push(concat(...frames));
  const got = drain(r);
  assert.equal(got.length, 4);
  assert.deepEqual(got.map(([c]) => c), [0x51, 0x53, 0x51, 0x51]);
  assert.deepEqual(got[1][1], new Uint8Array(0));
  assert.deepEqual(got[2][1], new TestBytes().cstring("SELECT 'é'").body());
});

Deno.test("FrameReader.next() reassembles frames split byte by byte", () => {
  const r = new FrameReader({ initialSize: 16 });
  const stream = concat(query("SELECT 1"), query("SELECT 2"), new TestBytes().typed("X"));
  const got: [number, Uint8Array][] = [];
  for (const byte of stream) {
    r.push(Uint8Array.of(byte));
    got.push(...drain(r));
  }
  assert.deepEqual(got.map(([c]) => c), [0x51, 0x51, 0x58]);
  assert.deepEqual(got[1][1], new TestBytes().cstring("SELECT 2").body());
  assert.equal(r.buffered(), 0);
});

Deno.test("FrameReader.writable()/commit() read in place across arbitrary chunk sizes", () => {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) frames.push(query(`SELECT ${i}, '${"x".repeat(i * 7)}'`));
  const stream = concat(...frames);
  const r = new FrameReader({ initialSize: 64 });
  const got: [number, Uint8Array][] = [];
  let off = 0;
  let step = 1;
  while (off < stream.length) {
    const tail = r.writable(32);
    assert.ok(tail.length >= 32);
    const n = Math.min(step, tail.length, stream.length - off);
    tail.set(stream.subarray(off, off + n));
    r.commit(n);
    off += n;
    step = (step * 7 + 3) % 97 + 1;
    got.push(...drain(r));
  }
  assert.equal(got.length, 200);
  for (let i = 0; i < 200; i++) assert.deepEqual(got[i][1], frames[i].subarray(5));
});

Deno.test("FrameReader grows for a 1 MiB DataRow and keeps it intact", () => {
  const value = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
  const frame = new TestBytes().int16(1).int32(value.length).bytes(value).typed("D");
  const r = new FrameReader();
  assert.equal(r.capacity, 16 * 1024);
  for (let off = 0; off < frame.length; off += 65536) {
    r.push(frame.subarray(off, off + 65536));
    if (off + 65536 < frame.length) assert.equal(r.next(), false);
  }
  assert.equal(r.next(), true);
  assert.equal(r.code, 0x44);
  assert.equal(r.body.length, value.length + 6);
  assert.deepEqual(r.body.subarray(6), value);
  assert.ok(r.capacity >= frame.length && r.capacity <= 4 * frame.length);
  r.shrink();
  assert.equal(r.capacity, 16 * 1024);
  r.push(query("after"));
  assert.deepEqual(drain(r).map(([c]) => c), [0x51]);
});

Deno.test("FrameReader.writable() grows to the pending frame once its header is known", () => {
  const body = new Uint8Array(5000).fill(7);
  const frame = new TestBytes().bytes(body).typed("d");
  const r = new FrameReader({ initialSize: 1024 });
  r.push(frame.subarray(0, 10));
  assert.equal(r.next(), false);
  const tail = r.writable(1);
  assert.ok(tail.length >= frame.length - 10);
  tail.set(frame.subarray(10));
  r.commit(frame.length - 10);
  assert.equal(r.next(), true);
  assert.deepEqual(r.body, body);
});

Deno.test("FrameReader compacts consumed bytes instead of growing", () => {
  const r = new FrameReader({ initialSize: 64 });
  for (let i = 0; i < 1000; i++) {
    r.push(query("SELECT 1"));
    r.push(query("SELECT 2").subarray(0, 3));
    assert.equal(r.next(), true);
    assert.equal(r.next(), false);
    r.push(query("SELECT 2").subarray(3));
    assert.equal(r.next(), true);
    assert.deepEqual(r.body, new TestBytes().cstring("SELECT 2").body());
  }
  assert.equal(r.capacity, 64);
});

Deno.test("FrameReader.next() rejects a declared length above maxFrameSize", () => {
  const r = new FrameReader({ maxFrameSize: 1000 });
  r.push(new TestBytes().int8(0x51).int32(1001).body());
  assertProtocolViolation(() => r.next(), "invalid message length");
  const big = new FrameReader();
  big.push(Uint8Array.of(0x44, 0x7f, 0xff, 0xff, 0xff));
  assertProtocolViolation(() => big.next(), "invalid message length");
});

Deno.test("FrameReader.next() rejects a declared length below 4", () => {
  for (const len of [0, 3, -1]) {
    const r = new FrameReader();
    r.push(new TestBytes().int8(0x51).int32(len).body());
    assertProtocolViolation(() => r.next(), "invalid message length");
  }
});

Deno.test("FrameReader.next() accepts a frame of exactly maxFrameSize", () => {
  const r = new FrameReader({ initialSize: 16, maxFrameSize: 100 });
  r.push(new TestBytes().bytes(new Uint8Array(96)).typed("d"));
  assert.equal(r.next(), true);
  assert.equal(r.body.length, 96);
});

Deno.test("FrameReader.nextStartup() cuts an untyped startup frame", () => {
  const startup = new TestBytes().int32(196608).cstring("user").cstring("u").int8(0).untyped();
  const r = new FrameReader();
  r.push(concat(startup, query("SELECT 1")));
  assert.equal(r.nextStartup(), true);
  assert.equal(r.code, 0);
  assert.deepEqual(r.frame, startup);
  assert.deepEqual(r.body, startup.subarray(4));
  assert.equal(r.next(), true);
  assert.equal(r.code, 0x51);
});

Deno.test("FrameReader.nextStartup() waits for a split startup frame", () => {
  const ssl = new TestBytes().int32(80877103).untyped();
  const r = new FrameReader();
  for (let i = 0; i < ssl.length - 1; i++) {
    r.push(ssl.subarray(i, i + 1));
    assert.equal(r.nextStartup(), false);
  }
  r.push(ssl.subarray(ssl.length - 1));
  assert.equal(r.nextStartup(), true);
  assert.deepEqual(r.body, Uint8Array.of(0x04, 0xd2, 0x16, 0x2f));
});

Deno.test("FrameReader.nextStartup() enforces Postgres's startup packet length limits", () => {
  for (const len of [0, 7, -5, 10005]) {
    const r = new FrameReader();
    r.push(new TestBytes().int32(len).int32(196608).body());
    assertProtocolViolation(() => r.nextStartup(), "invalid length of startup packet");
  }
  const r = new FrameReader();
  r.push(new TestBytes().int32(10004).body());
  assert.equal(r.nextStartup(), false);
});

Deno.test("FrameReader.takeBuffered() hands over unconsumed bytes", () => {
  const ssl = new TestBytes().int32(80877103).untyped();
  const hello = Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x05, 1, 2);
  const r = new FrameReader();
  r.push(concat(ssl, hello));
  assert.equal(r.nextStartup(), true);
  assert.equal(r.buffered(), hello.length);
  assert.deepEqual(r.takeBuffered(), hello);
  assert.equal(r.buffered(), 0);
  assert.deepEqual(r.takeBuffered(), new Uint8Array(0));
  assert.equal(r.next(), false);
});

Deno.test("FrameReader.push() honours the byteOffset of its chunk", () => {
  const frame = query("SELECT 1");
  const backing = concat(Uint8Array.of(1, 2, 3), frame, Uint8Array.of(4, 5));
  const r = new FrameReader();
  r.push(backing.subarray(3, 3 + frame.length));
  assert.equal(r.next(), true);
  assert.deepEqual(r.frame, frame);
  assert.equal(r.next(), false);
});

Deno.test("FrameReader.commit() rejects counts outside the writable region", () => {
  const r = new FrameReader({ initialSize: 64 });
  const n = r.writable(16).length;
  assert.throws(() => r.commit(n + 1), RangeError);
  assert.throws(() => r.commit(-1), RangeError);
  assert.throws(() => r.commit(1.5), RangeError);
  r.commit(n);
  assert.equal(r.buffered(), n);
});

Deno.test("FrameReader frame and body are views into the reused buffer", () => {
  const r = new FrameReader();
  r.push(concat(query("a"), query("b")));
  assert.equal(r.next(), true);
  const first = r.frame;
  assert.equal(r.frame, first); // one view per frame
  assert.equal(r.body.buffer, first.buffer);
  assert.equal(r.next(), true);
  assert.notEqual(r.frame, first);
  assert.equal(r.frame.byteOffset, first.byteOffset + first.length);
});

Deno.test("FrameReader.next() leaves a read in flight into writable() intact", () => {
  const r = new FrameReader({ initialSize: 64 });
  const q = new TextEncoder().encode("Q\u0000\u0000\u0000\u0005x");
  // First frame arrives; a read for the next bytes is started before the frame is cut.
  let tail = r.writable(8);
  tail.set(q);
  r.commit(q.length);
  tail = r.writable(8);
  assert.equal(r.next(), true);
  assert.equal(r.next(), false); // buffer now empty: must not rewind under the pending read
  const second = new TextEncoder().encode("Q\u0000\u0000\u0000\u0005y");
  tail.set(second);
  r.commit(second.length);
  assert.equal(r.next(), true);
  assert.equal(r.code, 0x51);
  assert.deepEqual([...r.body], [0x79]);
});

Deno.test("FrameReader.takeFrames() returns every whole frame as one view and keeps a partial one", () => {
  const r = new FrameReader({ initialSize: 64 });
  const two = new TextEncoder().encode("Q\u0000\u0000\u0000\u0005aS\u0000\u0000\u0000\u0004");
  const partial = new TextEncoder().encode("Q\u0000\u0000\u0000\u0006b");
  r.push(two);
  r.push(partial);
  assert.deepEqual([...r.takeFrames()], [...two]);
  assert.equal(r.code, 0x53);
  assert.equal(r.takeFrames().length, 0);
  r.push(new TextEncoder().encode("c"));
  assert.deepEqual([...r.takeFrames()], [
    ...new TextEncoder().encode("Q\u0000\u0000\u0000\u0006bc"),
  ]);
});
