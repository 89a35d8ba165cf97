import assert from "node:assert/strict";
import { GrpcError, GrpcStatus } from "./grpc_status.ts";
import { MessageReader, type MessageReaderOptions } from "./message_reader.ts";
import { concat, grpcMessage } from "./_testing.ts";

/** A reader that records copies of what it delivers, and the views themselves. */
function recorder(opts?: MessageReaderOptions) {
  const copies: number[][] = [];
  const views: Uint8Array[] = [];
  const reader = new MessageReader({
    message(msg) {
      copies.push([...msg]);
      views.push(msg);
    },
  }, opts);
  return { reader, copies, views };
}

Deno.test("MessageReader delivers several messages from one payload as views of it", () => {
  const { reader, copies, views } = recorder();
  const payload = concat(grpcMessage([1, 2, 3]), grpcMessage([]), grpcMessage([4]));
  reader.push(payload);
  assert.deepEqual(copies, [[1, 2, 3], [], [4]]);
  assert.equal(views[0].buffer, payload.buffer); // no copy
  assert.equal(views[0].byteOffset, 5);
  assert.equal(reader.partial, false);
});

Deno.test("MessageReader assembles messages split at every byte boundary", () => {
  const stream = concat(grpcMessage([1, 2, 3, 4, 5, 6, 7]), grpcMessage([8]), grpcMessage([]));
  for (let step = 1; step <= stream.length; step++) {
    const { reader, copies } = recorder();
    for (let off = 0; off < stream.length; off += step) {
      reader.push(stream.subarray(off, off + step));
    }
    assert.deepEqual(copies, [[1, 2, 3, 4, 5, 6, 7], [8], []], `step ${step}`);
    assert.equal(reader.partial, false);
  }
});

Deno.test("MessageReader.partial is true inside a prefix or a message", () => {
  const { reader } = recorder();
  reader.push(new Uint8Array([0, 0]));
  assert.equal(reader.partial, true);
  reader.push(new Uint8Array([0, 0, 2, 9]));
  assert.equal(reader.partial, true);
  reader.push(new Uint8Array([9]));
  assert.equal(reader.partial, false);
});

Deno.test("MessageReader hands a split message its own buffer", () => {
  const { reader, views } = recorder();
  const msg = grpcMessage(new Uint8Array(100).fill(3));
  reader.push(msg.subarray(0, 50));
  reader.push(msg.subarray(50));
  assert.equal(views[0].byteOffset, 0);
  assert.equal(views[0].byteLength, 100);
  assert.ok(views[0].every((b) => b === 3));
});

Deno.test("MessageReader with retain copies messages out of the payload", () => {
  const { reader, views } = recorder({ retain: true });
  const payload = grpcMessage([7, 7]);
  reader.push(payload);
  payload.fill(0);
  assert.deepEqual([...views[0]], [7, 7]);
});

Deno.test("MessageReader rejects a compressed message as INTERNAL", () => {
  const { reader } = recorder();
  assert.throws(() => reader.push(new Uint8Array([1, 0, 0, 0, 1, 5])), (e: unknown) => {
    assert.ok(e instanceof GrpcError);
    assert.equal(e.code, GrpcStatus.INTERNAL);
    assert.match(e.message, /compressed/);
    return true;
  });
});

Deno.test("MessageReader rejects a message above maxMessageSize as RESOURCE_EXHAUSTED", () => {
  const { reader } = recorder({ maxMessageSize: 10 });
  reader.push(grpcMessage(new Uint8Array(10)));
  assert.throws(
    () => reader.push(new Uint8Array([0, 0, 0, 0, 11])),
    (e: unknown) => e instanceof GrpcError && e.code === GrpcStatus.RESOURCE_EXHAUSTED,
  );
});
