import assert from "node:assert/strict";
import { TestBytes } from "./_testing.ts";
import { WireWriter } from "./writer.ts";

Deno.test("WireWriter.cstring() appends a NUL-terminated string", () => {
  const w = new WireWriter();
  w.cstring("abc");
  assert.deepEqual(w.view(), Uint8Array.of(0x61, 0x62, 0x63, 0));
});

Deno.test("WireWriter.cstring() writes non-ASCII strings as UTF-8", () => {
  const s = "héllo wörld ✓ 😀";
  const short = new WireWriter().cstring(s).view();
  assert.deepEqual(short, new TestBytes().cstring(s).body());
  assert.equal(short.length, new TextEncoder().encode(s).length + 1);
  const long = "ü".repeat(100) + "😀".repeat(50); // past the ASCII fast path
  assert.deepEqual(new WireWriter(16).cstring(long).view(), new TestBytes().cstring(long).body());
});

Deno.test("WireWriter.cstring() falls back to UTF-8 mid-string", () => {
  const s = "abc" + "é";
  assert.deepEqual(new WireWriter().cstring(s).view(), new TestBytes().cstring(s).body());
  assert.deepEqual(new WireWriter().cstring("").view(), Uint8Array.of(0));
});

Deno.test("WireWriter.string() appends without a terminator", () => {
  assert.deepEqual(new WireWriter().string("né").view(), new TestBytes().string("né").body());
});

Deno.test("WireWriter integers are big-endian and wrap modulo their width", () => {
  const w = new WireWriter();
  w.int8(0x7f).int8(-1).int16(0x1234).int16(-1).int16(65535).int32(-1).int32(0x01020304)
    .uint32(0xfffffffe);
  assert.deepEqual(
    w.view(),
    Uint8Array.of(
      ...[0x7f, 0xff],
      ...[0x12, 0x34, 0xff, 0xff, 0xff, 0xff],
      ...[0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4],
      ...[0xff, 0xff, 0xff, 0xfe],
    ),
  );
});

Deno.test("WireWriter.begin()/end() frames a typed message with a backfilled length", () => {
  const w = new WireWriter();
  w.begin(0x51).cstring("SELECT 1").end();
  assert.deepEqual(w.view(), new TestBytes().cstring("SELECT 1").typed("Q"));
});

Deno.test("WireWriter.beginUntyped()/end() frames an untyped message", () => {
  const w = new WireWriter();
  w.beginUntyped().int32(80877103).end();
  assert.deepEqual(w.view(), Uint8Array.of(0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f));
});

Deno.test("WireWriter writes several frames back to back", () => {
  const w = new WireWriter();
  w.begin(0x53).end().begin(0x48).end().begin(0x5a).int8(0x49).end();
  assert.deepEqual(
    w.view(),
    Uint8Array.of(0x53, 0, 0, 0, 4, 0x48, 0, 0, 0, 4, 0x5a, 0, 0, 0, 5, 0x49),
  );
  assert.equal(w.length, 16);
});

Deno.test("WireWriter grows past its initial size and keeps what was written", () => {
  const w = new WireWriter(16);
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  w.begin(0x64).bytes(big).end();
  const out = w.view();
  assert.equal(out.length, 100_005);
  assert.deepEqual(out.subarray(0, 5), Uint8Array.of(0x64, 0, 1, 0x86, 0xa4));
  assert.deepEqual(out.subarray(5), big);
});

Deno.test("WireWriter.bytes() honours the byteOffset of its argument", () => {
  const backing = Uint8Array.of(9, 9, 1, 2, 3, 9);
  const w = new WireWriter().bytes(backing.subarray(2, 5));
  assert.deepEqual(w.view(), Uint8Array.of(1, 2, 3));
});

Deno.test("WireWriter.raw() appends framed bytes as they are", () => {
  const frame = new TestBytes().cstring("x").typed("Q");
  const w = new WireWriter().raw(frame).raw(frame);
  assert.deepEqual(w.view().subarray(0, frame.length), frame);
  assert.equal(w.length, frame.length * 2);
});

Deno.test("WireWriter.int32At() patches an earlier int32", () => {
  const w = new WireWriter().int32(0).int8(7);
  w.int32At(0, 0x0a0b0c0d);
  assert.deepEqual(w.view(), Uint8Array.of(10, 11, 12, 13, 7));
  assert.throws(() => w.int32At(2, 1), RangeError);
});

Deno.test("WireWriter.reset() forgets the bytes and reuses the buffer", () => {
  const w = new WireWriter();
  w.begin(0x51).cstring("a").end();
  w.reset();
  assert.equal(w.length, 0);
  w.begin(0x58).end();
  assert.deepEqual(w.view(), Uint8Array.of(0x58, 0, 0, 0, 4));
});

Deno.test("WireWriter.takeCopy() returns an independent copy and resets", () => {
  const w = new WireWriter();
  w.begin(0x53).end();
  const copy = w.takeCopy();
  assert.equal(w.length, 0);
  w.begin(0x48).end();
  assert.deepEqual(copy, Uint8Array.of(0x53, 0, 0, 0, 4));
});

Deno.test("WireWriter rejects end() without begin() and nested begin()", () => {
  assert.throws(() => new WireWriter().end(), /without begin/);
  assert.throws(() => new WireWriter().begin(0x51).begin(0x51), /before end/);
  assert.throws(() => new WireWriter().beginUntyped().beginUntyped(), /before end/);
});
