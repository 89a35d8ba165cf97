import assert from "node:assert/strict";
import {
  MAX_BATCH_BYTES,
  MAX_PAYLOAD_PIECE,
  type SessionResponse,
} from "../../shared/grpc/types.ts";
import { Batcher } from "./batcher.ts";

/** A send function that records every call (deep copies) and answers `ok()`. */
function recorder(ok: () => boolean = () => true) {
  const calls: SessionResponse[][] = [];
  const send = (responses: SessionResponse[]): boolean => {
    calls.push(responses.map((r) => ({ ...r, payload: r.payload.slice() })));
    return ok();
  };
  return { calls, send };
}

const bytes = (...b: number[]) => Uint8Array.from(b);

/** Lets every queued microtask run (a resolved promise's continuation runs after them). */
async function turn(): Promise<void> {
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

Deno.test("Batcher.frames() sends nothing until the current turn ends", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.frames(1, bytes(1, 2));
  b.done(1, 0);
  assert.equal(calls.length, 0);
  await turn();
  assert.equal(calls.length, 1);
});

Deno.test("Batcher.frames() sends every response ready in one turn in ONE send call", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.frames(1, bytes(1));
  b.frames(2, bytes(2));
  b.done(2, 0);
  b.frames(3, bytes(3));
  b.done(1, 128);
  b.done(3, 0, true);
  await turn();
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0], [
    { sessionId: 1, payload: bytes(1), done: false, reserved: 0, closed: false },
    { sessionId: 2, payload: bytes(2), done: true, reserved: 0, closed: false },
    { sessionId: 3, payload: bytes(3), done: false, reserved: 0, closed: false },
    { sessionId: 1, payload: bytes(), done: true, reserved: 128, closed: false },
    { sessionId: 3, payload: bytes(), done: true, reserved: 0, closed: true },
  ]);
});

Deno.test("Batcher.frames() joins consecutive frames of the same session", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.frames(7, bytes(1, 2));
  b.frames(7, bytes(3));
  b.frames(7, bytes(4, 5, 6));
  b.done(7, 1);
  await turn();
  assert.deepEqual(calls, [[
    { sessionId: 7, payload: bytes(1, 2, 3, 4, 5, 6), done: true, reserved: 1, closed: false },
  ]]);
});

Deno.test("Batcher.frames() starts a new response after the session's done()", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.frames(7, bytes(1));
  b.done(7, 0);
  b.frames(7, bytes(2));
  b.done(7, 0);
  await turn();
  assert.deepEqual(calls, [[
    { sessionId: 7, payload: bytes(1), done: true, reserved: 0, closed: false },
    { sessionId: 7, payload: bytes(2), done: true, reserved: 0, closed: false },
  ]]);
});

Deno.test("Batcher.done() marks the last response of the session complete", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.frames(4, bytes(9));
  b.done(4, 129, true);
  await turn();
  assert.deepEqual(calls, [[
    { sessionId: 4, payload: bytes(9), done: true, reserved: 129, closed: true },
  ]]);
});

Deno.test("Batcher.done() without frames sends an empty completed response", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.done(5, 0);
  await turn();
  assert.deepEqual(calls, [[
    { sessionId: 5, payload: bytes(), done: true, reserved: 0, closed: false },
  ]]);
});

Deno.test("Batcher.frames() copies: the caller may overwrite its view right after the call", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  const receiveBuffer = new Uint8Array(16);
  const view = receiveBuffer.subarray(4, 8);
  view.set([1, 2, 3, 4]);
  b.frames(1, view);
  view.fill(0xee); // the backend reads the next chunk into the same buffer
  view.set([5, 6, 7, 8]);
  b.frames(2, view);
  view.fill(0xee);
  view.set([9]);
  b.frames(2, view.subarray(0, 1));
  receiveBuffer.fill(0xff);
  await turn();
  assert.deepEqual(calls, [[
    { sessionId: 1, payload: bytes(1, 2, 3, 4), done: false, reserved: 0, closed: false },
    { sessionId: 2, payload: bytes(5, 6, 7, 8, 9), done: false, reserved: 0, closed: false },
  ]]);
});

Deno.test("Batcher.frames() in a later turn goes out in a second send call", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.frames(1, bytes(1));
  await turn();
  b.frames(1, bytes(2));
  b.done(1, 0);
  await turn();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[0].map((r) => [...r.payload]), [[1]]);
  assert.deepEqual(calls[1].map((r) => [...r.payload]), [[2]]);
  assert.equal(calls[1][0].done, true);
});

Deno.test("Batcher.flush() sends what is pending at once and nothing when there is nothing", async () => {
  const { calls, send } = recorder();
  const b = new Batcher(send);
  b.flush();
  assert.equal(calls.length, 0);
  b.frames(1, bytes(1));
  b.flush();
  assert.equal(calls.length, 1);
  await turn();
  assert.equal(calls.length, 1, "the scheduled flush found nothing left to send");
});

Deno.test("Batcher.congested() is null while send() accepts", async () => {
  const { send } = recorder(() => true);
  const b = new Batcher(send);
  assert.equal(b.congested(), null);
  b.frames(1, bytes(1));
  await turn();
  assert.equal(b.congested(), null);
});

Deno.test("Batcher.congested() returns a promise after send() returned false; drained() resolves it", async () => {
  let accept = false;
  const { calls, send } = recorder(() => accept);
  const b = new Batcher(send);
  b.frames(1, bytes(1));
  await turn();
  assert.equal(calls.length, 1);
  const wait = b.congested();
  assert.ok(wait instanceof Promise);

  // Still congested, and the same promise, while the stream keeps refusing.
  b.frames(1, bytes(2));
  await turn();
  assert.equal(b.congested(), wait);

  let resumed = false;
  const waiter = wait.then(() => (resumed = true));
  await turn();
  assert.equal(resumed, false, "producers wait until the stream drains");

  accept = true;
  b.drained();
  await waiter;
  assert.equal(resumed, true);
  assert.equal(b.congested(), null);
});

Deno.test("Batcher.drained() without congestion does nothing", () => {
  const { send } = recorder();
  const b = new Batcher(send);
  b.drained();
  assert.equal(b.congested(), null);
});

Deno.test("Batcher.frames() splits a result larger than a piece and never exceeds a batch", async () => {
  const sent: SessionResponse[][] = [];
  const b = new Batcher((r) => {
    sent.push(r);
    return true;
  });
  const big = new Uint8Array(MAX_BATCH_BYTES + 3 * MAX_PAYLOAD_PIECE + 17).map((_, i) => i & 0xff);
  b.frames(7, big);
  b.done(7, 0);
  await Promise.resolve();
  const all = sent.flat();
  for (const r of all) assert.ok(r.payload.length <= MAX_PAYLOAD_PIECE);
  for (const batch of sent) {
    const bytes = batch.reduce((n, r) => n + r.payload.length, 0);
    assert.ok(bytes <= MAX_BATCH_BYTES, `a batch of ${bytes} bytes`);
  }
  const joined = new Uint8Array(all.reduce((n, r) => n + r.payload.length, 0));
  let off = 0;
  for (const r of all) {
    joined.set(r.payload, off);
    off += r.payload.length;
  }
  assert.deepEqual(joined, big);
  assert.equal(all.filter((r) => r.done).length, 1);
  assert.ok(all[all.length - 1].done);
});
