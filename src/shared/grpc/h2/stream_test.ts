import assert from "node:assert/strict";
import { connectBidi, connectH2 } from "./client.ts";
import type { H2ConnectionOptions } from "./connection.ts";
import { GrpcError, GrpcStatus } from "./grpc_status.ts";
import { type BidiServer, serveBidi } from "./server.ts";
import type { GrpcStream } from "./stream.ts";

const PATH = "/multigres.multipooler.MultiPooler/DataPlane";

function echoServer(opts: H2ConnectionOptions & { onStream?: (s: GrpcStream) => void } = {}): {
  server: BidiServer;
  port: number;
} {
  const server = serveBidi(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    ...opts,
    path: PATH,
    onStream: opts.onStream ?? ((s) => {
      s.onMessage = (m) => s.write(m);
      s.onEnd = () => s.end();
    }),
  });
  return { server, port: (server.addr as Deno.NetAddr).port };
}

/** Resolves once `n` messages arrived; keeps copies. */
function collector(n: number) {
  const got: Uint8Array[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => done = r);
  return {
    got,
    all,
    onMessage(m: Uint8Array) {
      got.push(m.slice());
      if (got.length === n) done();
    },
  };
}

Deno.test("GrpcStream: an echo exchange ends OK and closes the client connection", async () => {
  const { server, port } = echoServer();
  const c = collector(3);
  const stream = await connectBidi({
    hostname: "127.0.0.1",
    port,
    path: PATH,
    onMessage: c.onMessage,
  });
  let closes = 0;
  stream.onClose = () => closes++;
  assert.equal(stream.write(new Uint8Array([1])), true);
  stream.write(new Uint8Array(0));
  stream.write(new Uint8Array([2, 3]));
  stream.end();
  assert.throws(() => stream.write(new Uint8Array([4])), /after end/);
  assert.deepEqual(await stream.closed, { code: GrpcStatus.OK, message: "" });
  assert.deepEqual(c.got.map((m) => [...m]), [[1], [], [2, 3]]);
  assert.equal(closes, 1);
  assert.equal(stream.isClosed, true);
  await server.close();
});

Deno.test("GrpcStream: messages of several MiB cross windows and frames both ways", async () => {
  const { server, port } = echoServer({ streamWindow: 256 * 1024, connectionWindow: 512 * 1024 });
  const sizes = [5 * 1024 * 1024, 1, 3 * 1024 * 1024 + 7, 70_000];
  const c = collector(sizes.length);
  const stream = await connectBidi({
    hostname: "127.0.0.1",
    port,
    path: PATH,
    onMessage: c.onMessage,
    streamWindow: 100_000, // smaller than one message: the echo must wait for our updates
  });
  const msgs = sizes.map((n, i) => new Uint8Array(n).map((_, j) => (i * 31 + j) & 0xff));
  for (const m of msgs) stream.write(m);
  await c.all;
  assert.deepEqual(c.got.map((m) => m.length), sizes);
  for (let i = 0; i < msgs.length; i++) assert.deepEqual(c.got[i], msgs[i]);
  stream.end();
  assert.equal((await stream.closed).code, GrpcStatus.OK);
  await server.close();
});

Deno.test("GrpcStream: many small messages keep their order", async () => {
  const { server, port } = echoServer();
  const n = 20_000;
  const c = collector(n);
  const stream = await connectBidi({
    hostname: "127.0.0.1",
    port,
    path: PATH,
    onMessage: c.onMessage,
  });
  for (let i = 0; i < n; i++) {
    stream.write(new Uint8Array([i & 0xff, (i >> 8) & 0xff, i >> 16]));
    if (i % 1000 === 999) await new Promise((r) => setTimeout(r, 0)); // spread over turns
  }
  await c.all;
  c.got.forEach((m, i) => assert.equal(m[0] | (m[1] << 8) | (m[2] << 16), i));
  stream.end();
  await stream.closed;
  await server.close();
});

Deno.test("GrpcStream: a server status with a message reaches the client", async () => {
  const { server, port } = echoServer({
    onStream(s) {
      s.onMessage = () => s.end(GrpcStatus.FAILED_PRECONDITION, "pas de session: 100% sûr\n");
    },
  });
  const stream = await connectBidi({ hostname: "127.0.0.1", port, path: PATH, onMessage() {} });
  stream.write(new Uint8Array(1));
  assert.deepEqual(await stream.closed, {
    code: GrpcStatus.FAILED_PRECONDITION,
    message: "pas de session: 100% sûr\n",
  });
  await server.close();
});

Deno.test("GrpcStream: an unknown path is UNIMPLEMENTED", async () => {
  const { server, port } = echoServer();
  const stream = await connectBidi({
    hostname: "127.0.0.1",
    port,
    path: "/x.Y/Nope",
    onMessage() {},
  });
  const status = await stream.closed;
  assert.equal(status.code, GrpcStatus.UNIMPLEMENTED);
  assert.match(status.message, /Method not found: \/x.Y\/Nope/);
  await server.close();
});

Deno.test("GrpcStream.cancel() closes both ends as CANCELLED", async () => {
  let serverStream!: GrpcStream;
  const opened = Promise.withResolvers<void>();
  const { server, port } = echoServer({
    onStream(s) {
      serverStream = s;
      s.onMessage = () => opened.resolve();
    },
  });
  const stream = await connectBidi({ hostname: "127.0.0.1", port, path: PATH, onMessage() {} });
  stream.write(new Uint8Array(1));
  await opened.promise;
  stream.cancel("the client went away");
  assert.deepEqual(await stream.closed, {
    code: GrpcStatus.CANCELLED,
    message: "the client went away",
  });
  assert.equal((await serverStream.closed).code, GrpcStatus.CANCELLED);
  await server.close();
});

Deno.test("GrpcStream: closing the server ends client streams as UNAVAILABLE", async () => {
  const opened = Promise.withResolvers<void>();
  const { server, port } = echoServer({ onStream: (s) => (s.onMessage = () => opened.resolve()) });
  const stream = await connectBidi({ hostname: "127.0.0.1", port, path: PATH, onMessage() {} });
  stream.write(new Uint8Array(1));
  await opened.promise;
  await server.close();
  assert.deepEqual(await stream.closed, {
    code: GrpcStatus.UNAVAILABLE,
    message: "the server is shutting down",
  });
});

Deno.test("GrpcStream: a handler exception fails the stream, with the error as its cause", async () => {
  let serverStatus: unknown;
  const { server, port } = echoServer({
    onStream(s) {
      s.onMessage = () => {
        throw new GrpcError(GrpcStatus.INVALID_ARGUMENT, "bad request");
      };
      s.onClose = (status) => serverStatus = status;
    },
  });
  const stream = await connectBidi({ hostname: "127.0.0.1", port, path: PATH, onMessage() {} });
  stream.write(new Uint8Array(1));
  assert.deepEqual(await stream.closed, {
    code: GrpcStatus.INVALID_ARGUMENT,
    message: "bad request",
  });
  assert.ok((serverStatus as { cause: unknown }).cause instanceof GrpcError);
  await server.close();
});

Deno.test("GrpcStream: a message over maxMessageSize is RESOURCE_EXHAUSTED", async () => {
  const { server, port } = echoServer({ maxMessageSize: 1000 });
  const stream = await connectBidi({ hostname: "127.0.0.1", port, path: PATH, onMessage() {} });
  stream.write(new Uint8Array(1001));
  const status = await stream.closed;
  assert.equal(status.code, GrpcStatus.RESOURCE_EXHAUSTED);
  assert.match(status.message, /larger than max \(1001 vs. 1000\)/);
  await server.close();
});

Deno.test("GrpcStream: with retainMessages a message outlives its callback", async () => {
  const { server, port } = echoServer();
  const kept: Uint8Array[] = [];
  const done = Promise.withResolvers<void>();
  const stream = await connectBidi({
    hostname: "127.0.0.1",
    port,
    path: PATH,
    retainMessages: true,
    onMessage(m) {
      kept.push(m);
      if (kept.length === 50) done.resolve();
    },
  });
  for (let i = 0; i < 50; i++) stream.write(new Uint8Array(100).fill(i));
  await done.promise;
  kept.forEach((m, i) => assert.ok(m.every((b) => b === i)));
  stream.end();
  await stream.closed;
  await server.close();
});

Deno.test("H2Connection: several streams share one connection", async () => {
  const { server, port } = echoServer();
  const h2 = await connectH2({ hostname: "127.0.0.1", port });
  const streams = [0, 1, 2].map((i) => {
    const c = collector(10);
    const s = h2.openStream(PATH, { onMessage: c.onMessage });
    for (let j = 0; j < 10; j++) s.write(new Uint8Array([i, j]));
    return { s, c };
  });
  assert.equal(h2.streamCount, 3);
  for (const { s, c } of streams) {
    await c.all;
    s.end();
    assert.equal((await s.closed).code, GrpcStatus.OK);
  }
  streams.forEach(({ c }, i) =>
    assert.deepEqual(c.got.map((m) => [...m]), [...Array(10)].map((_, j) => [i, j]))
  );
  assert.equal(h2.streamCount, 0);
  assert.deepEqual(streams.map(({ s }) => s.id), [1, 3, 5]);
  await h2.close();
  assert.equal(await h2.closed, null);
  await server.close();
});
