import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  grpc,
  type GrpcSecurity,
  INSECURE_GRPC,
  makeClient,
  mutualTls,
  startGrpcServer,
  stopGrpcServer,
  unary,
} from "./mod.ts";
import { hostOf } from "./security.ts";
import { serviceCtor } from "./_load.ts";
import { makeTestPki } from "./testing_pki.ts";
import { connectBidi } from "./h2/client.ts";
import { GrpcStatus } from "./h2/grpc_status.ts";
import { serveBidi } from "./h2/server.ts";
import { listenMutualTls } from "./h2/mutual_tls.ts";

// grpc-js keeps timers and sockets a moment past its shutdown callbacks.
const LEAKY = { sanitizeOps: false, sanitizeResources: false };
const pki = await makeTestPki();

const SERVER = mutualTls({ caPem: pki.ca, certPem: pki.cert, keyPem: pki.key });
const CLIENT = SERVER;
const ROGUE = mutualTls({ caPem: pki.ca, certPem: pki.rogueCert, keyPem: pki.rogueKey });
/** The gRPC code a MultiGateway.Status call from `client` ends with (0: answered). */
function callStatus(client: grpc.Client): Promise<number> {
  return new Promise<number>((resolve) => {
    // deno-lint-ignore no-explicit-any
    (client as any).Status(
      {},
      { deadline: Date.now() + 3000 },
      (err: grpc.ServiceError | null) => resolve(err ? err.code : 0),
    );
  }).finally(() => client.close());
}

function statusCode(addr: string, security: GrpcSecurity): Promise<number> {
  return callStatus(makeClient("MultiGateway", addr, security));
}

/** A TLS client that trusts the CA but shows no certificate of its own. */
function noCertClient(addr: string): grpc.Client {
  const Client = serviceCtor("MultiGateway");
  return new Client(addr, grpc.credentials.createSsl(Buffer.from(pki.ca)), {
    "grpc.ssl_target_name_override": "localhost",
  });
}

Deno.test("gRPC mutual TLS", LEAKY, async (t) => {
  let calls = 0;
  const services = {
    MultiGateway: {
      Status: unary(() => {
        calls++;
        return Promise.resolve({});
      }),
    },
  };
  try {
    await t.step("a server with mTLS answers a client with a certificate from its CA", async () => {
      const { server, port } = await startGrpcServer("127.0.0.1", 0, services, {
        security: SERVER,
      });
      try {
        calls = 0;
        assert.equal(await statusCode(`127.0.0.1:${port}`, CLIENT), 0);
        assert.equal(await statusCode(`localhost:${port}`, CLIENT), 0);
        assert.equal(calls, 2);
      } finally {
        await stopGrpcServer(server, 500);
      }
    });

    await t.step(
      "it refuses, before any RPC runs, clients without a certificate, with one from another CA, or plaintext",
      async () => {
        const { server, port } = await startGrpcServer("127.0.0.1", 0, services, {
          security: SERVER,
        });
        try {
          calls = 0;
          const addr = `127.0.0.1:${port}`;
          assert.equal(await callStatus(noCertClient(addr)), 14);
          assert.equal(await statusCode(addr, ROGUE), 14);
          assert.equal(await statusCode(addr, INSECURE_GRPC), 14);
          assert.equal(calls, 0);
        } finally {
          await stopGrpcServer(server, 500);
        }
      },
    );

    await t.step(
      "a client refuses a server whose certificate does not name its address",
      async () => {
        const other = mutualTls({
          caPem: pki.ca,
          certPem: pki.otherNameCert,
          keyPem: pki.otherNameKey,
        });
        const { server, port } = await startGrpcServer("127.0.0.1", 0, services, {
          security: other,
        });
        try {
          calls = 0;
          assert.equal(await statusCode(`127.0.0.1:${port}`, CLIENT), 14);
          assert.equal(calls, 0);
        } finally {
          await stopGrpcServer(server, 500);
        }
      },
    );

    await t.step(
      "the data-plane client refuses a server whose certificate does not name it",
      async () => {
        const listener = await listenMutualTls({
          hostname: "127.0.0.1",
          port: 0,
          ca: pki.ca,
          cert: pki.otherNameCert,
          key: pki.otherNameKey,
        });
        let streams = 0;
        const server = serveBidi(listener, { path: "/p", onStream: () => streams++ });
        try {
          const stream = connectBidi({
            hostname: "127.0.0.1",
            port: listener.addr.port,
            path: "/p",
            tls: { caCerts: [pki.ca], cert: pki.cert, key: pki.key },
            onMessage() {},
          });
          // Deno.connectTls may refuse at once, or the first write may find the socket closed.
          const refused = await stream.then(
            async (s) => (await s.closed).code === GrpcStatus.UNAVAILABLE,
            () => true,
          );
          assert.ok(refused);
          assert.equal(streams, 0);
        } finally {
          await server.close();
        }
      },
    );

    await t.step("hostOf() takes the host of host:port", () => {
      assert.equal(hostOf("127.0.0.1:15270"), "127.0.0.1");
      assert.equal(hostOf("localhost:1"), "localhost");
      assert.equal(hostOf("[::1]:1"), "::1");
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
