import {
  COMMON_FLAGS,
  type FlagSpecs,
  parseComponentFlags,
  runMain,
  startComponent,
} from "../shared/servenv/mod.ts";
import {
  callUnary,
  type grpc,
  makeClient,
  startGrpcServer,
  stopGrpcServer,
  unary,
} from "../shared/grpc/mod.ts";
import { Gateway, MAX_PID_PREFIX, pidPrefixOf } from "./gateway.ts";
import type { Topo } from "../shared/topo/mod.ts";
import { Router } from "./router/router.ts";
import { initPlanner } from "./planner/mod.ts";
import { loadTlsContext } from "./session/transport.ts";
import { AuthFileError, gatewayAccess, HbaConfig } from "./hba/mod.ts";

export const GATEWAY_FLAGS = {
  ...COMMON_FLAGS,
  "id": { type: "string", default: "", help: "Gateway id, unique in the cell (default: random)" },
  "pg-port": { type: "number", default: 15432, help: "PostgreSQL protocol port" },
  "pg-replica-port": {
    type: "number",
    default: 0,
    help: "Second PostgreSQL port whose sessions read from replicas (read-only); 0: none",
  },
  "http-port": { type: "number", default: 15100, help: "HTTP port (/live, /ready, /metrics)" },
  "grpc-port": { type: "number", default: 15170, help: "gRPC port" },
  "pid-prefix": {
    type: "number",
    default: 0,
    help: `High bits of the virtual backend PIDs (1-${MAX_PID_PREFIX}; default: random)`,
  },
  "tls-cert-file": {
    type: "string",
    default: "",
    help: "PEM certificate for TLS (SSLRequest); without it clients are told TLS is off",
  },
  "tls-key-file": { type: "string", default: "", help: "PEM private key of --tls-cert-file" },
  "hba-file": {
    type: "string",
    default: "",
    help:
      "Client authentication rules in pg_hba.conf format, reloaded on SIGHUP (default: scram-sha-256 for every connection)",
  },
  "ident-file": {
    type: "string",
    default: "",
    help:
      "User name maps in pg_ident.conf format for map= (default: pg_ident.conf beside --hba-file)",
  },
  "failover-window-ms": {
    type: "number",
    default: 15_000,
    help: "How long sessions wait for a new primary (failover, switchover) before an error",
  },
  "failover-max-waiting": {
    type: "number",
    default: 10_000,
    help: "Most sessions waiting at once to move to a new primary; more get an error at once",
  },
} as const satisfies FlagSpecs;

async function main(): Promise<void> {
  const cfg = parseComponentFlags("multigateway", GATEWAY_FLAGS);
  const id = cfg.id || `gateway-${crypto.randomUUID().slice(0, 8)}`;
  // Read before anything starts: an error in the rules stops the gateway with one line.
  const hba = loadHba(cfg["hba-file"], cfg["ident-file"]);
  const { logger, env, topo } = await startComponent("multigateway", id, cfg);
  hba.useLogger(logger);
  logger.info("pg_hba rules loaded", { file: hba.source, rules: hba.rules.length });
  // As Postgres: SIGHUP reads the pg_hba rules again (an error keeps the old ones, logged).
  const reloadHba = () => hba.reload();
  Deno.addSignalListener("SIGHUP", reloadHba);
  env.onShutdown(() => Deno.removeSignalListener("SIGHUP", reloadHba));
  const failoverWindowMs = cfg["failover-window-ms"];
  // The Postgres grammar (WebAssembly) the planner parses statements with.
  await initPlanner();
  const router = new Router(topo, logger, { failoverWindowMs });
  router.start();
  env.onShutdown(() => router.stop());
  const pidPrefix = cfg["pid-prefix"] || await unusedPidPrefix(topo);
  const gatewayClients = new Map<string, grpc.Client>();
  env.onShutdown(() => gatewayClients.forEach((c) => c.close()));
  const gateway = new Gateway(router, {
    pidPrefix,
    logger,
    failoverWindowMs,
    maxWaiting: cfg["failover-max-waiting"],
    // One secret for every gateway of the cluster (in the global topo): an unknown role's mock
    // SCRAM salt is the same whichever gateway a client asks.
    access: gatewayAccess(hba, await topo.clusterSecret("mock-auth")),
    // A CancelRequest may reach any gateway: send it to the one whose prefix the PID carries.
    forwardCancel: async (pid, secret) => {
      const owner = (await topo.listGateways()).find((g) => g.pidPrefix === pidPrefixOf(pid));
      if (!owner) return;
      let c = gatewayClients.get(owner.grpcAddr);
      if (!c) gatewayClients.set(owner.grpcAddr, c = makeClient("MultiGateway", owner.grpcAddr));
      await callUnary(c, "CancelRequest", { pid, secret }, { deadlineMs: 2000 });
    },
  });
  const host = cfg["bind-address"];

  const sessions = env.metrics.meter.createObservableGauge("multigateway_sessions", {
    description: "Client sessions open",
  });
  sessions.addCallback((r) => r.observe(gateway.sessions));

  const status = () => ({
    id,
    cell: cfg.cell,
    sessions: gateway.sessions,
    primaries: router.primaries(),
    hba: { file: hba.source, rules: hba.rules.length },
  });
  const { server } = await startGrpcServer(host, cfg["grpc-port"], {
    MultiGateway: {
      Status: unary(() => Promise.resolve(status())),
      CancelRequest: unary((req: { pid: number; secret: number }) => {
        gateway.cancelLocal(req.pid, req.secret);
        return Promise.resolve({});
      }),
    },
  });
  env.onShutdown(() => stopGrpcServer(server));
  await env.serveHttp(host, cfg["http-port"]);
  env.setStatus(status);
  env.setReadiness(() => Object.keys(router.primaries()).length > 0);

  const certFile = cfg["tls-cert-file"];
  const keyFile = cfg["tls-key-file"];
  if (!certFile !== !keyFile) {
    throw new Error("Give both --tls-cert-file and --tls-key-file, or neither");
  }
  const tlsContext = certFile ? loadTlsContext(certFile, keyFile) : undefined;
  if (!tlsContext && hba.rules.some((r) => r.type === "hostssl")) {
    logger.warn("hostssl rules cannot match: the gateway has no TLS certificate (--tls-cert-file)");
  }
  await router.ready();
  await gateway.listen(host, cfg["pg-port"], tlsContext);
  if (cfg["pg-replica-port"]) {
    await gateway.listen(host, cfg["pg-replica-port"], tlsContext, { replica: true });
  }
  env.onShutdown(() => gateway.stopListening());
  const registration = topo.registerGateway({
    id,
    cell: cfg.cell,
    grpcAddr: `${host}:${cfg["grpc-port"]}`,
    pgAddr: `${host}:${cfg["pg-port"]}`,
    httpAddr: `${host}:${cfg["http-port"]}`,
    pidPrefix,
  });
  env.onShutdown(() => registration.revoke());
  env.installSignalHandlers();
  await registration.ready();
  logger.info("multigateway serving", { pg: `${host}:${cfg["pg-port"]}` });
}

/** The pg_hba rules at start; an error in the files stops the gateway with one clear line. */
function loadHba(hbaFile: string, identFile: string): HbaConfig {
  try {
    return new HbaConfig({ hbaFile, identFile });
  } catch (e) {
    if (!(e instanceof AuthFileError)) throw e;
    throw new Error(`Invalid authentication file: ${e.message}`);
  }
}

/** A PID prefix no other gateway of the cell has registered. */
async function unusedPidPrefix(topo: Topo): Promise<number> {
  const used = new Set((await topo.listGateways().catch(() => [])).map((g) => g.pidPrefix));
  for (;;) {
    const p = 1 + Math.floor(Math.random() * MAX_PID_PREFIX);
    if (!used.has(p)) return p;
  }
}

if (import.meta.main) runMain(main);
