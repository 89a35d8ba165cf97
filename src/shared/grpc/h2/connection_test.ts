import assert from "node:assert/strict";
import { connectH2 } from "./client.ts";
import { ErrorCode, FrameFlag, FrameType, Setting } from "./constants.ts";
import { getUint32 } from "./frame_header.ts";
import { GrpcStatus } from "./grpc_status.ts";
import { encodeHeaderBlock } from "./hpack_encoder.ts";
import { huffmanEncode } from "./huffman.ts";
import { serveBidi } from "./server.ts";
import type { GrpcStream } from "./stream.ts";
import {
  be,
  concat,
  frameBytes,
  grpcMessage,
  RawPeer,
  RawServer,
  type SeenFrame,
  settingsBytes,
} from "./_testing.ts";

const PATH = "/multigres.multipooler.MultiPooler/DataPlane";

const REQUEST = encodeHeaderBlock([
  [":method", "POST"],
  [":scheme", "http"],
  [":path", PATH],
  [":authority", "127.0.0.1"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
]);
const RESPONSE = encodeHeaderBlock([[":status", "200"], ["content-type", "application/grpc"]]);

/** Our client connected to a scripted server that sent `settings` as its preface. */
async function clientAndRawServer(settings = settingsBytes()) {
  const raw = new RawServer();
  const h2 = await connectH2({ hostname: "127.0.0.1", port: raw.port });
  const peer = await raw.accept();
  await peer.send(settings);
  // The client's SETTINGS, then its ACK of ours: from then on our settings apply.
  await peer.expect(FrameType.SETTINGS);
  const ack = await peer.expect(FrameType.SETTINGS);
  assert.equal(ack.flags, FrameFlag.ACK);
  return {
    h2,
    peer,
    async close() {
      await h2.close();
      peer.close();
      raw.close();
    },
  };
}

/** An echo server of ours, and a raw client that has exchanged SETTINGS with it. */
async function serverAndRawClient(onStream?: (s: GrpcStream) => void) {
  const server = serveBidi(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    path: PATH,
    onStream: onStream ?? ((s) => {
      s.onMessage = (m) => s.write(m);
      s.onEnd = () => s.end();
    }),
  });
  const peer = await RawPeer.client((server.addr as Deno.NetAddr).port);
  await peer.expect(FrameType.SETTINGS); // the server's preface
  return {
    server,
    peer,
    async close() {
      peer.close();
      await server.close();
    },
  };
}

/** The bytes of every DATA frame on `streamId` until `n` bytes came. */
async function readData(peer: RawPeer, streamId: number, n: number): Promise<SeenFrame[]> {
  const frames: SeenFrame[] = [];
  let got = 0;
  while (got < n) {
    const f = await peer.expect(FrameType.DATA);
    assert.equal(f.streamId, streamId);
    frames.push(f);
    got += f.payload.length;
  }
  return frames;
}

Deno.test("H2Connection: a write blocked by a small stream window resumes on WINDOW_UPDATE", async () => {
  const { h2, peer, close } = await clientAndRawServer(
    settingsBytes([Setting.INITIAL_WINDOW_SIZE, 10]),
  );
  let drained = 0;
  const stream = h2.openStream(PATH, { onDrain: () => drained++ });
  const msg = new Uint8Array(100).map((_, i) => i);
  assert.equal(stream.write(msg), false);
  assert.equal(stream.bufferedAmount, 95);
  await peer.expect(FrameType.HEADERS);
  const first = await readData(peer, 1, 10);
  assert.equal(first[0].payload.length, 10);

  await peer.send(frameBytes(FrameType.WINDOW_UPDATE, 0, 1, be(50, 4)));
  const second = await readData(peer, 1, 50);
  assert.equal(stream.bufferedAmount, 45);
  assert.equal(drained, 0);

  await peer.send(frameBytes(FrameType.WINDOW_UPDATE, 0, 1, be(1000, 4)));
  const third = await readData(peer, 1, 45);
  assert.equal(stream.bufferedAmount, 0);
  assert.equal(drained, 1);
  const all = concat(...[...first, ...second, ...third].map((f) => f.payload));
  assert.deepEqual(all, grpcMessage(msg));
  await close();
});

Deno.test("H2Connection: the connection window blocks a large message until WINDOW_UPDATE", async () => {
  const { h2, peer, close } = await clientAndRawServer(
    settingsBytes([Setting.INITIAL_WINDOW_SIZE, 1 << 20]),
  );
  const stream = h2.openStream(PATH);
  const msg = new Uint8Array(100_000).fill(9);
  stream.write(msg);
  await peer.expect(FrameType.HEADERS);
  const first = await readData(peer, 1, 65_535); // the default connection window
  assert.ok(first.every((f) => f.payload.length <= 16_384), "frames above the peer's max size");
  assert.equal(stream.bufferedAmount, 100_005 - 65_535);
  await peer.send(frameBytes(FrameType.WINDOW_UPDATE, 0, 0, be(1 << 20, 4)));
  const rest = await readData(peer, 1, 100_005 - 65_535);
  assert.deepEqual(concat(...[...first, ...rest].map((f) => f.payload)), grpcMessage(msg));
  await close();
});

Deno.test("H2Connection: messages written in one turn leave in one DATA frame", async () => {
  const { h2, peer, close } = await clientAndRawServer();
  const stream = h2.openStream(PATH);
  for (let i = 0; i < 100; i++) stream.write(new Uint8Array(10).fill(i));
  await peer.expect(FrameType.HEADERS);
  const data = await peer.expect(FrameType.DATA);
  assert.equal(data.payload.length, 100 * 15);
  assert.equal(data.payload[5 + 15 * 99], 99);
  await close();
});

Deno.test("H2Connection: a PING is answered with a PING ACK of the same data", async () => {
  const { peer, close } = await serverAndRawClient();
  const data = [1, 2, 3, 4, 5, 6, 7, 8];
  await peer.send(frameBytes(FrameType.PING, 0, 0, data));
  const ack = await peer.expect(FrameType.PING);
  assert.equal(ack.flags, FrameFlag.ACK);
  assert.deepEqual([...ack.payload], data);
  await close();
});

Deno.test("H2Connection.ping() resolves when the peer acknowledges", async () => {
  const { h2, peer, close } = await clientAndRawServer();
  const rtt = h2.ping();
  const ping = await peer.expect(FrameType.PING);
  await peer.send(frameBytes(FrameType.PING, FrameFlag.ACK, 0, ping.payload));
  assert.ok(await rtt >= 0);
  await close();
});

Deno.test("H2Connection: GOAWAY fails streams the server did not process, as UNAVAILABLE", async () => {
  const { h2, peer, close } = await clientAndRawServer();
  const stream = h2.openStream(PATH);
  await peer.expect(FrameType.HEADERS);
  await peer.send(frameBytes(FrameType.GOAWAY, 0, 0, [...be(0, 4), ...be(0, 4), 0x62, 0x79, 0x65]));
  const status = await stream.closed;
  assert.equal(status.code, GrpcStatus.UNAVAILABLE);
  assert.match(status.message, /GOAWAY NO_ERROR: bye.*not processed/);
  assert.equal(h2.isClosed, true);
  assert.throws(() => h2.openStream(PATH), /closed|going away/);
  assert.equal(await h2.closed, null); // it closed itself once no stream was left
  await close();
});

Deno.test("H2Connection: GOAWAY with an error code fails every stream and closes", async () => {
  const { h2, peer, close } = await clientAndRawServer();
  const stream = h2.openStream(PATH);
  await peer.expect(FrameType.HEADERS);
  const goaway = [...be(1, 4), ...be(ErrorCode.ENHANCE_YOUR_CALM, 4), 0x78];
  await peer.send(frameBytes(FrameType.GOAWAY, 0, 0, goaway));
  const status = await stream.closed;
  assert.equal(status.code, GrpcStatus.UNAVAILABLE);
  assert.match(status.message, /GOAWAY ENHANCE_YOUR_CALM: x/);
  assert.match(String(await h2.closed), /ENHANCE_YOUR_CALM/);
  await close();
});

Deno.test("H2Connection: a server that dies mid-frame fails the stream instead of hanging", async () => {
  const { h2, peer, close } = await clientAndRawServer();
  const got: number[][] = [];
  const stream = h2.openStream(PATH, { onMessage: (m) => got.push([...m]) });
  stream.write(new Uint8Array([1]));
  await peer.expect(FrameType.HEADERS);
  const data = frameBytes(FrameType.DATA, 0, 1, concat(grpcMessage([7]), grpcMessage([8, 8, 8])));
  await peer.send(frameBytes(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, RESPONSE));
  await peer.send(data.subarray(0, data.length - 2));
  peer.close();
  const status = await stream.closed;
  assert.equal(status.code, GrpcStatus.UNAVAILABLE);
  assert.match(status.message, /closed by the peer mid-frame \(21 of 23 bytes/);
  assert.deepEqual(got, []);
  assert.match(String(await h2.closed), /mid-frame/);
  await close();
});

Deno.test("H2Connection: a client that dies mid-frame fails the server's stream", async () => {
  let stream: GrpcStream | undefined;
  const { peer, close } = await serverAndRawClient((s) => {
    stream = s;
    s.onMessage = () => {};
  });
  await peer.send(frameBytes(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, REQUEST));
  await peer.send(frameBytes(FrameType.DATA, 0, 1, grpcMessage([1, 2, 3])).subarray(0, 12));
  peer.close();
  while (stream === undefined) await new Promise((r) => setTimeout(r, 5));
  const status = await stream.closed;
  assert.equal(status.code, GrpcStatus.UNAVAILABLE);
  assert.match(status.message, /mid-frame/);
  await close();
});

Deno.test("H2Connection: a trailers-only response and an HTTP error end streams with a status", async () => {
  const { h2, peer, close } = await clientAndRawServer();
  const a = h2.openStream(PATH);
  const b = h2.openStream(PATH);
  await peer.expect(FrameType.HEADERS);
  await peer.expect(FrameType.HEADERS);
  const trailersOnly = encodeHeaderBlock([
    [":status", "200"],
    ["content-type", "application/grpc+proto"],
    ["grpc-status", "5"],
    ["grpc-message", "no%20such%20session"],
  ]);
  const endHeaders = FrameFlag.END_HEADERS | FrameFlag.END_STREAM;
  await peer.send(frameBytes(FrameType.HEADERS, endHeaders, 1, trailersOnly));
  await peer.send(
    frameBytes(FrameType.HEADERS, endHeaders, 3, encodeHeaderBlock([[":status", "404"]])),
  );
  assert.deepEqual(await a.closed, { code: GrpcStatus.NOT_FOUND, message: "no such session" });
  const sb = await b.closed;
  assert.equal(sb.code, GrpcStatus.UNIMPLEMENTED);
  assert.match(sb.message, /HTTP status 404/);
  await close();
});

Deno.test("H2Connection: the server decodes header blocks split over CONTINUATION, Huffman and indexed", async () => {
  const paths: string[] = [];
  const { peer, close } = await serverAndRawClient((s) => {
    paths.push(s.path);
    s.onMessage = (m) => s.write(m);
    s.onEnd = () => s.end();
  });
  const text = (s: string) => new TextEncoder().encode(s);
  const huff = (s: string) => {
    const h = huffmanEncode(text(s));
    return [0x80 | h.length, ...h]; // short strings only
  };
  // Literals with incremental indexing (0x40 | static name index), strings Huffman-coded.
  const block = new Uint8Array([
    0x83, // :method POST
    0x86, // :scheme http
    0x44,
    ...huff(PATH), // :path, indexed as 62 after the next two are added
    0x41,
    ...huff("127.0.0.1:1"), // :authority
    0x5f,
    ...huff("application/grpc"), // content-type (31)
    0x40,
    ...huff("te"),
    ...huff("trailers"),
  ]);
  await peer.send(
    frameBytes(FrameType.HEADERS, 0, 1, block.subarray(0, 20)),
    frameBytes(FrameType.CONTINUATION, 0, 1, block.subarray(20, 30)),
    frameBytes(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, block.subarray(30)),
    frameBytes(FrameType.DATA, FrameFlag.END_STREAM, 1, grpcMessage([42])),
  );
  // Stream 3 names every field by its dynamic index: te 62, content-type 63, :authority 64,
  // :path 65.
  await peer.send(
    frameBytes(FrameType.HEADERS, FrameFlag.END_HEADERS, 3, [0x83, 0x86, 0xc1, 0xc0, 0xbf, 0xbe]),
  );
  await peer.send(frameBytes(FrameType.DATA, FrameFlag.END_STREAM, 3, grpcMessage([43])));
  const seen: Record<number, { data: number[]; trailers: string[][] }> = {
    1: { data: [], trailers: [] },
    3: { data: [], trailers: [] },
  };
  let ended = 0;
  while (ended < 2) {
    const f = await peer.next();
    assert.ok(f !== null, "connection ended early");
    if (f.type === FrameType.DATA) seen[f.streamId].data.push(...f.payload);
    if (f.type === FrameType.HEADERS) {
      const headers = peer.headers(f);
      if (f.flags & FrameFlag.END_STREAM) {
        seen[f.streamId].trailers = headers;
        ended++;
      } else assert.deepEqual(headers, [[":status", "200"], ["content-type", "application/grpc"]]);
    }
  }
  assert.deepEqual(paths, [PATH, PATH]);
  assert.deepEqual(seen[1], { data: [...grpcMessage([42])], trailers: [["grpc-status", "0"]] });
  assert.deepEqual(seen[3], { data: [...grpcMessage([43])], trailers: [["grpc-status", "0"]] });
  await close();
});

Deno.test("H2Connection: DATA on stream 0 is a connection error: GOAWAY PROTOCOL_ERROR", async () => {
  const { peer, close } = await serverAndRawClient();
  await peer.send(frameBytes(FrameType.DATA, 0, 0, [1]));
  const goaway = await peer.expect(FrameType.GOAWAY);
  assert.equal(getUint32(goaway.payload, 4), ErrorCode.PROTOCOL_ERROR);
  assert.deepEqual(await peer.drain(), []); // then the socket closes
  await close();
});

Deno.test("H2Connection: a frame above our maximum size is GOAWAY FRAME_SIZE_ERROR", async () => {
  const { peer, close } = await serverAndRawClient();
  await peer.send(new Uint8Array([0x20, 0x00, 0x00, FrameType.DATA, 0, 0, 0, 0, 1])); // 2 MiB
  const goaway = await peer.expect(FrameType.GOAWAY);
  assert.equal(getUint32(goaway.payload, 4), ErrorCode.FRAME_SIZE_ERROR);
  await close();
});

Deno.test("H2Connection: a server refuses a non-gRPC request with HTTP 415", async () => {
  const { peer, close } = await serverAndRawClient();
  const block = encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", PATH],
    [":authority", "x"],
    ["content-type", "text/plain"],
  ]);
  await peer.send(
    frameBytes(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, 1, block),
  );
  const response = await peer.expect(FrameType.HEADERS);
  assert.deepEqual(peer.headers(response), [[":status", "415"]]);
  assert.equal(response.flags & FrameFlag.END_STREAM, FrameFlag.END_STREAM);
  await close();
});

Deno.test("H2Connection: an HPACK table size reduction is announced in the next header block", async () => {
  const { h2, peer, close } = await clientAndRawServer(
    settingsBytes([Setting.HEADER_TABLE_SIZE, 0]),
  );
  h2.openStream(PATH);
  const headers = await peer.expect(FrameType.HEADERS);
  assert.equal(headers.payload[0], 0x20); // dynamic table size update to 0
  assert.equal(peer.headers(headers)[0][0], ":method");
  await close();
});
