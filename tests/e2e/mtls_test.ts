/**
 * Mutual TLS between components, on a real dev cluster: on every gRPC port (gateway, pooler,
 * pooler data plane, pgctld, orch) a client without a certificate, with one from another CA,
 * or in plaintext is refused during the handshake, before any RPC runs; a client with the
 * cluster's own certificate gets answers (on the data plane: a session that runs a query). A
 * component given neither certificates nor --grpc-insecure refuses to start with one line.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import {
  grpc,
  INSECURE_GRPC,
  makeClient,
  mutualTls,
  type ServiceName,
} from "../../src/shared/grpc/mod.ts";
import { DATA_PLANE_PATH, type SessionResponse } from "../../src/shared/grpc/types.ts";
import {
  decodeDataPlaneResponse,
  encodeDataPlaneRequest,
} from "../../src/shared/grpc/dataplane_codec.ts";
import { connectBidi, GrpcStatus, type GrpcStream } from "../../src/shared/grpc/h2/mod.ts";
import { makeTestPki } from "../../src/shared/grpc/testing_pki.ts";
import { serviceCtor } from "../../src/shared/grpc/_load.ts";
import { grpcCertFiles } from "../../src/provisioner/certs.ts";
import { E2E, startCluster } from "../helpers/cluster.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("mutual TLS between components", E2E, async (t) => {
  const pki = await makeTestPki();
  const c = await startCluster(3500, { cells: 1 });
  try {
    const p = c.cluster.ports;
    const files = grpcCertFiles(c.cluster.cfg.grpcCertDir!, "multigres");
    const caPem = Deno.readTextFileSync(files.caFile);
    const own = mutualTls({
      caPem,
      certPem: Deno.readTextFileSync(files.certFile),
      keyPem: Deno.readTextFileSync(files.keyFile),
    });
    // A CA of our own making, and a client certificate it issued: trusted by nobody here.
    const rogue = mutualTls({ caPem, certPem: pki.rogueCert, keyPem: pki.rogueKey });

    const ports: [string, ServiceName, number][] = [
      ["gateway", "MultiGateway", p.gatewayGrpc],
      ["pooler", "MultiPooler", p.poolerGrpc],
      ["pooler data plane", "MultiPooler", p.poolerDataPlane],
      ["pgctld", "Pgctld", p.pgctldGrpc],
      ["orch", "MultiOrch", p.orchGrpc],
    ];
    for (const [name, service, port] of ports) {
      await t.step(`${name}: no certificate, another CA's, or plaintext: refused`, async () => {
        const addr = `127.0.0.1:${port}`;
        const rpc = port === p.poolerDataPlane ? openDataPlane : callStatus;
        for (
          const [who, client] of [
            ["no certificate", noCertClient(service, addr, caPem)],
            ["another CA", makeClient(service, addr, rogue)],
            ["plaintext", makeClient(service, addr, INSECURE_GRPC)],
          ] as const
        ) {
          const err = await rpc(client);
          assert.ok(err, `${who}: answered`);
          assert.equal(err.code, grpc.status.UNAVAILABLE, `${who}: ${err.details}`);
          // The channel never came up: the call did not reach the server.
          assert.match(err.details, /No connection established|Connection dropped/, who);
        }
      });

      await t.step(`${name}: the cluster's own certificate gets an answer`, async () => {
        const client = makeClient(service, `127.0.0.1:${port}`, own);
        if (port === p.poolerDataPlane) {
          assert.equal(await openDataPlane(client), null);
        } else {
          assert.equal(await callStatus(client), null);
        }
      });
    }

    await t.step(
      "data plane on our h2 client: refused without, served with a certificate",
      async () => {
        const port = p.poolerDataPlane;
        const noCert = await Deno.connectTls({
          hostname: "127.0.0.1",
          port,
          caCerts: [caPem],
          alpnProtocols: ["h2"],
        });
        const refused = [
          await dataPlaneSession(port, { conn: noCert }),
          await dataPlaneSession(port, {
            tls: { caCerts: [caPem], cert: pki.rogueCert, key: pki.rogueKey },
          }),
          await dataPlaneSession(port, {}),
        ];
        for (const r of refused) {
          assert.equal(r.answer, "");
          assert.equal(r.status.code, GrpcStatus.UNAVAILABLE);
        }
        const ok = await dataPlaneSession(port, {
          tls: {
            caCerts: [caPem],
            cert: Deno.readTextFileSync(files.certFile),
            key: Deno.readTextFileSync(files.keyFile),
          },
        });
        assert.match(ok.answer, /mtls-4242/);
        assert.equal(ok.status.code, GrpcStatus.OK);
        const log = await Deno.readTextFile(c.cluster.logPath("multipooler"));
        assert.match(log, /data-plane client refused/);
      },
    );

    await t.step("a component without certificates or --grpc-insecure does not start", async () => {
      // Ports of our own in case one started after all (each is killed after 60 s then).
      const free = p.gatewayGrpc + 60;
      const common = [
        "--cluster=e2e",
        `--topo-global-address=${c.cluster.topoAddress}`,
        `--http-port=${free}`,
        `--grpc-port=${free + 1}`,
      ];
      const runs = await Promise.all([
        run("src/pgctld/main.ts", [...common, `--pg-data-dir=${c.dir}/none`, "--pg-port=1"]),
        run("src/pooler/main.ts", [...common, "--id=nobody", "--data-plane-port=0"]),
        run("src/orch/main.ts", common),
        run("src/gateway/main.ts", [...common, `--pg-port=${free + 2}`]),
        run("src/orch/main.ts", [
          ...common,
          `--grpc-ca-file=${pki.file("v1Ca")}`,
          `--grpc-cert-file=${pki.file("v1Cert")}`,
          `--grpc-key-file=${pki.file("v1Key")}`,
        ]),
        run("src/orch/main.ts", [
          ...common,
          `--grpc-ca-file=${files.caFile}`,
          `--grpc-cert-file=${files.certFile}`,
          `--grpc-key-file=${pki.file("strayKey")}`,
        ]),
      ]);
      for (const r of runs.slice(0, 4)) {
        assert.equal(r.code, 1);
        assert.equal(
          r.stderr,
          "error: No gRPC certificates: give --grpc-ca-file, --grpc-cert-file and --grpc-key-file " +
            "(mutual TLS), or --grpc-insecure for plaintext gRPC\n",
        );
      }
      assert.equal(runs[4].code, 1);
      assert.match(
        runs[4].stderr,
        /^error: .* is an X\.509 v1 certificate: a CA must be X\.509 v3\n$/,
      );
      assert.equal(runs[5].code, 1);
      assert.match(runs[5].stderr, /^error: .*strayKey\.pem is not the private key of .*\n$/);
    });
  } finally {
    await c.stop();
    await Deno.remove(pki.dir, { recursive: true });
  }
});

type CallError = { code: number; details: string };

/** A unary Status call; null when answered, else the gRPC error. Closes the client. */
function callStatus(client: grpc.Client): Promise<CallError | null> {
  return new Promise<CallError | null>((resolve) => {
    // deno-lint-ignore no-explicit-any
    (client as any).Status(
      {},
      { deadline: Date.now() + 5000 },
      (err: grpc.ServiceError | null) =>
        resolve(err ? { code: err.code, details: err.details } : null),
    );
  }).finally(() => client.close());
}

/**
 * A grpc-js DataPlane stream: one empty request, then half-close; null when the server ends it
 * with OK, else the gRPC error. Closes the client.
 */
function openDataPlane(client: grpc.Client): Promise<CallError | null> {
  return new Promise<CallError | null>((resolve) => {
    // deno-lint-ignore no-explicit-any
    const call = (client as any).DataPlane({
      deadline: Date.now() + 5000,
    }) as grpc.ClientDuplexStream<
      unknown,
      unknown
    >;
    call.on("data", () => {});
    call.on("error", (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on(
      "status",
      (st: grpc.StatusObject) =>
        resolve(st.code === grpc.status.OK ? null : { code: st.code, details: st.details }),
    );
    call.write({ requests: [] });
    call.end();
  }).finally(() => client.close());
}

/** A grpc-js client that trusts the cluster CA but shows no certificate. */
function noCertClient(service: ServiceName, addr: string, caPem: string): grpc.Client {
  const Ctor = serviceCtor(service);
  return new Ctor(addr, grpc.credentials.createSsl(Buffer.from(caPem)), {
    "grpc.ssl_target_name_override": "localhost",
  });
}

/**
 * Through our h2 client (`conn`, `tls`, or plaintext when neither): opens a session as postgres
 * on the data plane and runs one query. Returns the text of what came back and how the stream
 * ended.
 */
async function dataPlaneSession(
  port: number,
  how: { conn?: Deno.TlsConn; tls?: { caCerts: string[]; cert: string; key: string } },
): Promise<{ answer: string; status: { code: number; message: string } }> {
  const responses: SessionResponse[] = [];
  let onDone: (() => void) | null = null;
  let stream: GrpcStream;
  try {
    stream = await connectBidi({
      hostname: "127.0.0.1",
      port,
      path: DATA_PLANE_PATH,
      ...how,
      retainMessages: true,
      onMessage: (msg) => {
        for (const r of decodeDataPlaneResponse(msg).responses) {
          responses.push(r);
          if (r.done) onDone?.();
        }
      },
      onClose: () => onDone?.(),
    });
  } catch (e) {
    return { answer: "", status: { code: GrpcStatus.UNAVAILABLE, message: String(e) } };
  }
  const done = () => new Promise<void>((resolve) => onDone = resolve);
  const request = (op: "OPEN" | "EXECUTE" | "CLOSE", payload: Uint8Array = new Uint8Array()) =>
    stream.write(encodeDataPlaneRequest({
      requests: [{
        sessionId: 1,
        op,
        user: "postgres",
        database: "postgres",
        startup: {},
        payload,
      }],
    }));
  // Each step waits for the session's answer, or for the stream to end.
  let wait = done();
  request("OPEN");
  await Promise.race([wait, stream.closed]);
  if (!stream.isClosed) {
    wait = done();
    request("EXECUTE", queryMessage("select 'mtls-' || 4242"));
    await Promise.race([wait, stream.closed]);
    request("CLOSE");
    stream.end();
  }
  const status = await stream.closed;
  const answer = new TextDecoder().decode(
    Buffer.concat(responses.map((r) => r.payload)),
  );
  return { answer, status };
}

/** A simple-protocol Query message. */
function queryMessage(sql: string): Uint8Array {
  const text = new TextEncoder().encode(sql);
  const out = new Uint8Array(1 + 4 + text.length + 1);
  out[0] = 0x51; // 'Q'
  new DataView(out.buffer).setInt32(1, 4 + text.length + 1);
  out.set(text, 5);
  return out;
}

/** Runs a component's main with `args`; waits for it to exit. */
async function run(main: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${REPO}${main}`, ...args],
    cwd: REPO,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    // Killed if it does start after all (the assertions then fail).
    signal: AbortSignal.timeout(60_000),
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}
