/**
 * One 64-byte message round trip on 127.0.0.1 (client writes, server echoes, client receives):
 * our h2 client and server (over TCP, and over mutual TLS as the cluster runs it), against
 * grpc-js client and server on the same bidi method (bytes passed through, no protobuf), against
 * a plain TCP ping-pong on Deno sockets (the floor).
 *
 * ```sh
 * deno bench -A src/shared/grpc/h2/h2_bench.ts
 * ```
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { connectBidi } from "./client.ts";
import { serveBidi } from "./server.ts";
import { listenMutualTls } from "./mutual_tls.ts";
import { makeTestPki } from "../testing_pki.ts";

const PATH = "/multigres.multipooler.MultiPooler/DataPlane";
const MESSAGE = new Uint8Array(64).fill(7);
let wake: () => void = () => {};
const onReply = () => wake();
/** One round trip: `send()`, then wait for `onReply`. */
function roundTrip(send: () => void): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  wake = resolve;
  send();
  return promise;
}

// ---- ours ----
const server = serveBidi(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
  path: PATH,
  onStream(s) {
    s.onMessage = (m) => s.write(m);
    s.onEnd = () => s.end();
  },
});
const ours = await connectBidi({
  hostname: "127.0.0.1",
  port: (server.addr as Deno.NetAddr).port,
  path: PATH,
  onMessage: onReply,
});

// ---- ours over mutual TLS (node:tls server, Deno.connectTls client) ----
const pki = await makeTestPki();
const tlsServer = serveBidi(
  await listenMutualTls({
    hostname: "127.0.0.1",
    port: 0,
    ca: pki.ca,
    cert: pki.cert,
    key: pki.key,
  }),
  {
    path: PATH,
    onStream(s) {
      s.onMessage = (m) => s.write(m);
      s.onEnd = () => s.end();
    },
  },
);
const oursTls = await connectBidi({
  hostname: "127.0.0.1",
  port: (tlsServer.addr as Deno.NetAddr).port,
  path: PATH,
  tls: { caCerts: [pki.ca], cert: pki.cert, key: pki.key },
  onMessage: onReply,
});
Deno.removeSync(pki.dir, { recursive: true });

// ---- grpc-js, bytes in and out ----
const identity = (b: Buffer) => b;
const service: grpc.ServiceDefinition = {
  DataPlane: {
    path: PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};
const grpcServer = new grpc.Server();
grpcServer.addService(service, {
  DataPlane(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
    call.on("data", (b: Buffer) => call.write(b));
    call.on("end", () => call.end());
  },
});
const grpcPort = await new Promise<number>((resolve, reject) =>
  grpcServer.bindAsync(
    "127.0.0.1:0",
    grpc.ServerCredentials.createInsecure(),
    (err, port) => err ? reject(err) : resolve(port),
  )
);
const Client = grpc.makeGenericClientConstructor(service, "MultiPooler");
const grpcClient = new Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
// deno-lint-ignore no-explicit-any
const grpcCall = (grpcClient as any).DataPlane() as grpc.ClientDuplexStream<Buffer, Buffer>;
grpcCall.on("data", onReply);
grpcCall.on("error", (e: grpc.ServiceError) => {
  if (e.code !== grpc.status.CANCELLED) console.error(e); // CANCELLED: the process is exiting
});
const grpcMessage = Buffer.from(MESSAGE);

// ---- plain TCP ----
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
(async () => {
  const conn = await listener.accept();
  conn.setNoDelay(true);
  const buf = new Uint8Array(64 * 1024);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    await conn.write(buf.subarray(0, n));
  }
  conn.close();
})();
const tcp = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
tcp.setNoDelay(true);
const tcpBuf = new Uint8Array(64 * 1024);

Deno.bench("64-byte round trip: h2 (ours, client + server)", { group: "rtt" }, async () => {
  await roundTrip(() => ours.write(MESSAGE));
});

Deno.bench("64-byte round trip: h2 over mutual TLS (ours)", { group: "rtt" }, async () => {
  await roundTrip(() => oursTls.write(MESSAGE));
});

Deno.bench(
  "64-byte round trip: grpc-js client + server",
  { group: "rtt", baseline: true },
  async () => {
    await roundTrip(() => grpcCall.write(grpcMessage));
  },
);

Deno.bench("64-byte round trip: TCP ping-pong, Deno sockets", { group: "rtt" }, async () => {
  await tcp.write(MESSAGE);
  for (let got = 0; got < MESSAGE.length;) got += (await tcp.read(tcpBuf)) ?? MESSAGE.length;
});

globalThis.addEventListener("unload", () => {
  ours.end();
  oursTls.end();
  void tlsServer.close();
  grpcCall.end();
  grpcClient.close();
  grpcServer.forceShutdown();
  tcp.close();
  listener.close();
  void server.close();
});
