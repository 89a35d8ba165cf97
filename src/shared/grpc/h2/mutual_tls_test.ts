import assert from "node:assert/strict";
import {
  type DataPlaneRequest,
  type DataPlaneResponse,
  grpc,
  makeClient,
  mutualTls,
} from "../mod.ts";
import { encodeDataPlaneRequest } from "../dataplane_codec.ts";
import { makeTestPki } from "../testing_pki.ts";
import { connectBidi } from "./client.ts";
import { GrpcStatus } from "./grpc_status.ts";
import type { GrpcStream } from "./stream.ts";
import { type BidiServer, serveBidi } from "./server.ts";
import { listenMutualTls } from "./mutual_tls.ts";

const PATH = "/multigres.multipooler.MultiPooler/DataPlane";
const MiB = 1024 * 1024;
// node:tls and grpc-js keep timers and sockets a moment past close.
const LEAKY = { sanitizeOps: false, sanitizeResources: false };

const pki = await makeTestPki();

/** An echo server on a mutual-TLS listener; counts streams and refused clients. */
async function echoServer(): Promise<
  { server: BidiServer; port: number; streams: number; refused: Error[] }
> {
  const state = { streams: 0, refused: [] as Error[] };
  const listener = await listenMutualTls({
    hostname: "127.0.0.1",
    port: 0,
    ca: pki.ca,
    cert: pki.cert,
    key: pki.key,
    onRefused: (e) => state.refused.push(e),
  });
  const server = serveBidi(listener, {
    path: PATH,
    onStream(stream) {
      state.streams++;
      stream.onMessage = (msg) => stream.write(msg);
      stream.onEnd = () => stream.end();
    },
  });
  return Object.assign(state, { server, port: listener.addr.port });
}

/** Our client over TLS with the given identity (none: no client certificate). */
function tlsClient(
  port: number,
  id: { cert: string; key: string } | null,
  onMessage: (msg: Uint8Array) => void = () => {},
): Promise<GrpcStream> {
  if (!id) {
    // Without a certificate: dial ourselves (connectBidi's `tls` always shows one).
    return Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [pki.ca],
      alpnProtocols: ["h2"],
    }).then((conn) => connectBidi({ conn, hostname: "127.0.0.1", port, path: PATH, onMessage }));
  }
  return connectBidi({
    hostname: "127.0.0.1",
    port,
    path: PATH,
    tls: { caCerts: [pki.ca], cert: id.cert, key: id.key },
    onMessage,
  });
}

Deno.test("listenMutualTls", LEAKY, async (t) => {
  try {
    await t.step("a client with a certificate from the CA streams both ways", async () => {
      const s = await echoServer();
      try {
        const sizes = [...Array.from({ length: 500 }, (_, i) => i % 200 + 1), 6 * MiB, 3 * MiB];
        const got: number[] = [];
        const stream = await tlsClient(s.port, pki, (msg) => got.push(msg.length));
        for (const n of sizes) stream.write(new Uint8Array(n).fill(n & 0xff));
        stream.end();
        assert.equal((await stream.closed).code, GrpcStatus.OK);
        assert.deepEqual(got, sizes);
        assert.equal(s.streams, 1);
        assert.deepEqual(s.refused, []);
      } finally {
        await s.server.close();
      }
    });

    await t.step("a client without a certificate is refused before any stream", async () => {
      const s = await echoServer();
      try {
        const stream = await tlsClient(s.port, null);
        stream.write(new Uint8Array(8));
        const st = await stream.closed;
        assert.equal(st.code, GrpcStatus.UNAVAILABLE);
        assert.equal(s.streams, 0);
        assert.equal(s.refused.length, 1);
      } finally {
        await s.server.close();
      }
    });

    await t.step("a client with a certificate from another CA is refused", async () => {
      const s = await echoServer();
      try {
        const rogue = { cert: pki.rogueCert, key: pki.rogueKey };
        const stream = await tlsClient(s.port, rogue);
        stream.write(new Uint8Array(8));
        assert.equal((await stream.closed).code, GrpcStatus.UNAVAILABLE);
        assert.equal(s.streams, 0);
        assert.equal(s.refused.length, 1);
      } finally {
        await s.server.close();
      }
    });

    await t.step(
      "a grpc-js client with mutual TLS opens DataPlane; without, it is refused",
      async () => {
        const s = await echoServer();
        const good = mutualTls({ caPem: pki.ca, certPem: pki.cert, keyPem: pki.key });
        const rogue = mutualTls({ caPem: pki.ca, certPem: pki.rogueCert, keyPem: pki.rogueKey });
        const addr = `127.0.0.1:${s.port}`;
        try {
          for (const [security, ok] of [[good, true], [rogue, false]] as const) {
            const client = makeClient("MultiPooler", addr, security);
            try {
              // deno-lint-ignore no-explicit-any
              const call = (client as any).DataPlane() as grpc.ClientDuplexStream<
                DataPlaneRequest,
                DataPlaneResponse
              >;
              const outcome = new Promise<number>((resolve) => {
                call.on("data", () => call.end());
                call.on("error", (e: grpc.ServiceError) => resolve(e.code));
                call.on("status", (st: grpc.StatusObject) => resolve(st.code));
              });
              call.write({ requests: [] });
              assert.equal(await outcome, ok ? grpc.status.OK : grpc.status.UNAVAILABLE);
            } finally {
              client.close();
            }
          }
          assert.equal(s.streams, 1);
        } finally {
          await s.server.close();
        }
      },
    );

    await t.step("close() stops accepting and ends open streams", async () => {
      const s = await echoServer();
      const stream = await tlsClient(s.port, pki);
      stream.write(encodeDataPlaneRequest({ requests: [] }));
      await s.server.close();
      assert.equal((await stream.closed).code, GrpcStatus.UNAVAILABLE);
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: s.port }));
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
