// Interop with grpc-js, in the same process: its client against our server, our client against
// its server, on the real MultiPooler.DataPlane method (messages coded by dataplane_codec.ts).
import assert from "node:assert/strict";
import {
  type DataPlaneRequest,
  type DataPlaneResponse,
  grpc,
  INSECURE_GRPC,
  makeClient,
  type SessionRequest,
  startGrpcServer,
  stopGrpcServer,
} from "../mod.ts";
import {
  decodeDataPlaneRequest,
  decodeDataPlaneResponse,
  encodeDataPlaneRequest,
  encodeDataPlaneResponse,
} from "../dataplane_codec.ts";
import { connectBidi } from "./client.ts";
import { GrpcStatus, type StreamStatus } from "./grpc_status.ts";
import { serveBidi } from "./server.ts";

const PATH = "/multigres.multipooler.MultiPooler/DataPlane";
const MiB = 1024 * 1024;
// grpc-js keeps timers and sockets past its own shutdown callbacks.
const LEAKY = { sanitizeOps: false, sanitizeResources: false };

/** Payload sizes: many small ones, and some larger than every default window. */
const SIZES = [
  ...Array.from({ length: 2000 }, (_, i) => i % 97),
  6 * MiB,
  100_000,
  3 * MiB + 1,
  ...Array.from({ length: 200 }, () => 64),
];

function payload(i: number, size: number): Uint8Array {
  return new Uint8Array(size).map((_, j) => (i * 7 + j) & 0xff);
}

function request(i: number): DataPlaneRequest {
  const req: SessionRequest = {
    sessionId: i,
    op: "EXECUTE",
    user: "",
    database: "",
    startup: {},
    payload: payload(i, SIZES[i]),
  };
  return { requests: [req] };
}

/** The echo both servers implement: one response per request, payload and id copied. */
function echo(msg: DataPlaneRequest): DataPlaneResponse {
  return {
    responses: msg.requests.map((r) => ({
      sessionId: r.sessionId,
      payload: r.payload,
      done: true,
      reserved: 0,
      closed: false,
    })),
  };
}

function checkResponses(got: DataPlaneResponse[]): void {
  assert.equal(got.length, SIZES.length);
  got.forEach((res, i) => {
    assert.equal(res.responses.length, 1);
    const r = res.responses[0];
    assert.equal(r.sessionId, i);
    assert.equal(r.done, true);
    assert.equal(r.payload.length, SIZES[i], `response ${i}`);
    assert.deepEqual(r.payload, payload(i, SIZES[i]), `response ${i}`);
  });
}

Deno.test("interop: a grpc-js client streams DataPlane to our server", LEAKY, async () => {
  const server = serveBidi(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    path: PATH,
    onStream(stream) {
      // decode → encode: the payload view is copied into the response before onMessage returns
      stream.onMessage = (msg) =>
        stream.write(encodeDataPlaneResponse(echo(decodeDataPlaneRequest(msg))));
      stream.onEnd = () => stream.end();
    },
  });
  const port = (server.addr as Deno.NetAddr).port;
  const client = makeClient("MultiPooler", `127.0.0.1:${port}`, INSECURE_GRPC);
  try {
    // deno-lint-ignore no-explicit-any
    const call = (client as any).DataPlane() as grpc.ClientDuplexStream<
      DataPlaneRequest,
      DataPlaneResponse
    >;
    const got: DataPlaneResponse[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    const ended = new Promise<void>((resolve, reject) => {
      call.on("data", (res: DataPlaneResponse) => got.push(res));
      call.on("end", resolve);
      call.on("error", reject);
    });
    for (let i = 0; i < SIZES.length; i++) call.write(request(i));
    call.end();
    await ended;
    assert.equal((await status).code, grpc.status.OK);
    checkResponses(got);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("interop: a grpc-js client sees the status our server ends with", LEAKY, async () => {
  const server = serveBidi(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    path: PATH,
    onStream(stream) {
      stream.onMessage = () => stream.end(GrpcStatus.FAILED_PRECONDITION, "not the primary: é");
    },
  });
  const client = makeClient(
    "MultiPooler",
    `127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    INSECURE_GRPC,
  );
  try {
    // deno-lint-ignore no-explicit-any
    const call = (client as any).DataPlane() as grpc.ClientDuplexStream<
      DataPlaneRequest,
      DataPlaneResponse
    >;
    const err = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.write(request(0));
    const e = await err;
    assert.equal(e.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(e.details, "not the primary: é");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("interop: our client streams DataPlane to a grpc-js server", LEAKY, async () => {
  const { server, port } = await startGrpcServer("127.0.0.1", 0, {
    MultiPooler: {
      DataPlane(call: grpc.ServerDuplexStream<DataPlaneRequest, DataPlaneResponse>) {
        call.on("data", (msg: DataPlaneRequest) => call.write(echo(msg)));
        call.on("end", () => call.end());
      },
    },
  }, { security: INSECURE_GRPC });
  try {
    const got: DataPlaneResponse[] = [];
    const stream = await connectBidi({
      hostname: "127.0.0.1",
      port,
      path: PATH,
      // the decoded payloads are views of the borrowed message: copy what is kept
      onMessage: (msg) => got.push(decodeDataPlaneResponse(msg.slice())),
    });
    for (let i = 0; i < SIZES.length; i++) stream.write(encodeDataPlaneRequest(request(i)));
    stream.end();
    const status: StreamStatus = await stream.closed;
    assert.equal(status.code, GrpcStatus.OK); // grpc-js sends grpc-message "OK" with it
    checkResponses(got);
  } finally {
    await stopGrpcServer(server, 500);
  }
});

Deno.test("interop: our client sees the status a grpc-js server ends with", LEAKY, async () => {
  const { server, port } = await startGrpcServer("127.0.0.1", 0, {
    MultiPooler: {
      DataPlane(call: grpc.ServerDuplexStream<DataPlaneRequest, DataPlaneResponse>) {
        call.on("data", () => {
          call.emit("error", { code: grpc.status.UNAVAILABLE, details: "shutting down: 100%" });
        });
      },
    },
  }, { security: INSECURE_GRPC });
  try {
    const stream = await connectBidi({ hostname: "127.0.0.1", port, path: PATH, onMessage() {} });
    stream.write(encodeDataPlaneRequest(request(0)));
    assert.deepEqual(await stream.closed, {
      code: GrpcStatus.UNAVAILABLE,
      message: "shutting down: 100%",
    });
  } finally {
    await stopGrpcServer(server, 500);
  }
});

Deno.test(
  "interop: a grpc-js server answers our client UNIMPLEMENTED for an unknown method",
  LEAKY,
  async () => {
    const { server, port } = await startGrpcServer("127.0.0.1", 0, { MultiPooler: {} }, {
      security: INSECURE_GRPC,
    });
    try {
      const stream = await connectBidi({
        hostname: "127.0.0.1",
        port,
        path: "/multigres.multipooler.MultiPooler/NoSuchMethod",
        onMessage() {},
      });
      stream.write(new Uint8Array(0));
      stream.end();
      assert.equal((await stream.closed).code, GrpcStatus.UNIMPLEMENTED);
    } finally {
      await stopGrpcServer(server, 500);
    }
  },
);
