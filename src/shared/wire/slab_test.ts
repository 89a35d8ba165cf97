import assert from "node:assert/strict";
import { Slab } from "./slab.ts";

Deno.test("Slab hands out zeroed, non-overlapping views of shared chunks", () => {
  const slab = new Slab();
  const a = slab.alloc(10);
  const b = slab.alloc(10);
  assert.equal(a.buffer, b.buffer);
  assert.ok(b.byteOffset >= a.byteOffset + a.length, "b starts after a");
  assert.equal(b.byteOffset % 8, 0, "views are 8-byte aligned");
  a.fill(0xff);
  assert.deepEqual([...b], new Array(10).fill(0), "writing one view leaves the next zeroed");
});

Deno.test("Slab.copy copies; a full chunk is replaced, never reused", () => {
  const slab = new Slab();
  const src = new Uint8Array([1, 2, 3]);
  const c = slab.copy(src);
  src[0] = 9;
  assert.deepEqual([...c], [1, 2, 3]);
  const first = c.buffer;
  let last = c;
  for (let i = 0; i < 200; i++) last = slab.alloc(1000); // 200 KB: past one 64 KiB chunk
  assert.notEqual(last.buffer, first);
  assert.deepEqual([...c], [1, 2, 3], "earlier views keep their bytes");
});

Deno.test("Slab gives big requests their own buffer", () => {
  const slab = new Slab();
  const big = slab.alloc(100_000);
  assert.equal(big.length, 100_000);
  assert.equal(big.byteOffset, 0);
  assert.equal(big.buffer.byteLength, 100_000);
});
