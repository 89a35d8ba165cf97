import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { protoDir } from "./_load.ts";
import {
  decodeDataPlaneRequest,
  decodeDataPlaneResponse,
  encodeDataPlaneRequest,
  encodeDataPlaneResponse,
} from "./dataplane_codec.ts";
import type { DataPlaneRequest, DataPlaneResponse } from "./types.ts";

// protobufjs, reading the .proto files, is the reference our hand-written codec must agree with.
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => `${protoDir()}${target}`;
root.loadSync("multipoolerdata.proto");
const RequestType = root.lookupType("multigres.multipooler.DataPlaneRequest");
const ResponseType = root.lookupType("multigres.multipooler.DataPlaneResponse");
const ENUMS: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true };

const request: DataPlaneRequest = {
  requests: [
    {
      sessionId: 1,
      op: "OPEN",
      user: "ålice",
      database: "app",
      startup: { application_name: "psql", DateStyle: "ISO, MDY" },
      payload: new Uint8Array(0),
      acked: 0,
      reason: 0,
      replica: true,
      clientPid: 2_147_000_123,
    },
    {
      sessionId: 300_000,
      op: "EXECUTE",
      user: "",
      database: "",
      startup: {},
      payload: new Uint8Array(300).map((_, i) => i),
      acked: 0,
      reason: 0,
      replica: false,
      clientPid: 0,
    },
    {
      sessionId: 2 ** 40,
      op: "ACK",
      user: "",
      database: "",
      startup: {},
      payload: new Uint8Array(0),
      acked: 524_288,
      reason: 0,
      replica: false,
      clientPid: 0,
    },
    {
      sessionId: 5,
      op: "CLOSE",
      user: "",
      database: "",
      startup: {},
      payload: new Uint8Array(0),
      acked: 0,
      reason: 2,
      replica: false,
      clientPid: 0,
    },
  ],
};

const response: DataPlaneResponse = {
  responses: [
    {
      sessionId: 9,
      payload: new TextEncoder().encode("Z\0\0\0\x05I"),
      done: true,
      reserved: 0,
      closed: false,
      acked: 0,
      flags: 0,
      settled: 0,
    },
    {
      sessionId: 123_456_789,
      payload: new Uint8Array(0),
      done: true,
      reserved: 129,
      closed: true,
      acked: 262_144,
      flags: 3,
      settled: 70_000,
    },
  ],
};

/** CloseReason's names by number (multipoolerdata.proto). */
const CLOSE_REASONS = [
  "CLOSE_REASON_GONE",
  "CLOSE_REASON_TERMINATE",
  "CLOSE_REASON_EOF",
  "CLOSE_REASON_PROTOCOL_ERROR",
  "CLOSE_REASON_SHUTDOWN",
  "CLOSE_REASON_MALFORMED",
];

/** Bytes (Uint8Array or protobufjs's Buffer) as a hex string, so that values compare plainly. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return Array.from(x, (b) => b.toString(16)).join(",");
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  }
  return x;
}

Deno.test("data-plane requests: our bytes decode with protobufjs, and its bytes with ours", () => {
  const ours = encodeDataPlaneRequest(request);
  const theirs = RequestType.toObject(RequestType.decode(ours), ENUMS);
  // CloseReason travels as its number on our side, as its name from protobufjs.
  for (const r of theirs.requests) r.reason = CLOSE_REASONS.indexOf(r.reason);
  assert.deepEqual(plain(theirs), plain(request));

  const fromProtobufjs = RequestType.encode(RequestType.fromObject(request)).finish();
  assert.deepEqual(plain(decodeDataPlaneRequest(fromProtobufjs)), plain(request));
  assert.deepEqual(plain(decodeDataPlaneRequest(ours)), plain(request));
});

Deno.test("data-plane responses: our bytes decode with protobufjs, and its bytes with ours", () => {
  const ours = encodeDataPlaneResponse(response);
  const theirs = ResponseType.toObject(ResponseType.decode(ours), ENUMS);
  assert.deepEqual(plain(theirs), plain(response));

  const fromProtobufjs = ResponseType.encode(ResponseType.fromObject(response)).finish();
  assert.deepEqual(plain(decodeDataPlaneResponse(fromProtobufjs)), plain(response));
});

Deno.test("data-plane payloads decode as plain Uint8Array views of the message, not copies", () => {
  const buf = encodeDataPlaneResponse(response); // a node Buffer, as grpc-js hands them over
  const payload = decodeDataPlaneResponse(buf).responses[0].payload;
  assert.equal(payload.buffer, buf.buffer);
  assert.equal(payload.constructor, Uint8Array);
  const req = decodeDataPlaneRequest(encodeDataPlaneRequest(request)).requests[1].payload;
  assert.equal(req.constructor, Uint8Array);
});

Deno.test("data-plane decoding skips unknown fields and refuses truncated messages", () => {
  // Field 15 (varint 42), then a known field: a newer peer's extra field is ignored.
  const withUnknown = new Uint8Array([0x0a, 0x04, 0x78, 0x2a, 0x08, 0x07]);
  assert.equal(decodeDataPlaneResponse(withUnknown).responses[0].sessionId, 7);

  const whole = encodeDataPlaneRequest(request);
  assert.throws(() => decodeDataPlaneRequest(whole.subarray(0, whole.length - 10)), RangeError);
  assert.throws(() => decodeDataPlaneResponse(new Uint8Array([0x0a, 0x05, 0x08])), RangeError);
});
