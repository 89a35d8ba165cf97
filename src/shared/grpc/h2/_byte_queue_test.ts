import assert from "node:assert/strict";
import { ByteQueue } from "./_byte_queue.ts";
import { concat, grpcMessage } from "./_testing.ts";

Deno.test("ByteQueue keeps framed messages in order across partial consumption and growth", () => {
  const q = new ByteQueue();
  const expected: Uint8Array[] = [];
  const taken: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const msg = new Uint8Array(i * 37).fill(i);
    q.pushMessage(msg);
    expected.push(grpcMessage(msg));
    const take = q.peek(1000).slice();
    q.consume(take.length);
    taken.push(take);
  }
  while (q.length > 0) {
    const take = q.peek(4096).slice();
    q.consume(take.length);
    taken.push(take);
  }
  assert.deepEqual(concat(...taken), concat(...expected));
});

Deno.test("ByteQueue.peek() never returns more than is queued", () => {
  const q = new ByteQueue();
  q.pushMessage(new Uint8Array([1, 2]));
  assert.equal(q.peek(100).length, 7);
  q.consume(100);
  assert.equal(q.length, 0);
});
