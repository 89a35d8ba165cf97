import {
  COMMON_FLAGS,
  type FlagSpecs,
  parseComponentFlags,
  runMain,
  startComponent,
} from "../shared/servenv/mod.ts";
import {
  callUnary,
  type GetAuthCredentialsResponse,
  type GetMetadataResponse,
  makeClient,
  type PgctldStatusResponse,
  processGrpcSecurity,
  startGrpcServer,
  stopGrpcServer,
} from "../shared/grpc/mod.ts";
import { Pooler, type ReplicaSource } from "./pooler.ts";
import { DataPlaneStreams, poolerService } from "./grpc_service.ts";
import { DEFAULT_TABLEGROUP, UNSHARDED } from "./metadata/schema.ts";
import { newestPrimary } from "../shared/topo/mod.ts";
import { type H2Listener, listenMutualTls } from "../shared/grpc/h2/mod.ts";

export const POOLER_FLAGS = {
  ...COMMON_FLAGS,
  "id": { type: "string", default: "", help: "Pooler id, unique in the cell (required)" },
  "http-port": { type: "number", default: 15200, help: "HTTP port (/live, /ready, /metrics)" },
  "grpc-port": { type: "number", default: 15270, help: "gRPC port" },
  "data-plane-port": {
    type: "number",
    default: 15280,
    help:
      "Port of the data-plane stream on the lean HTTP/2 transport (still gRPC; 0: serve it on the gRPC port only)",
  },
  "pgctld-addr": {
    type: "string",
    default: "127.0.0.1:15470",
    help: "gRPC address of the pgctld that runs this pooler's Postgres",
  },
  "database": {
    type: "string",
    default: "postgres",
    help: "Multigres database whose shard this Postgres holds",
  },
  "tablegroup": { type: "string", default: DEFAULT_TABLEGROUP, help: "Tablegroup of the shard" },
  "shard": { type: "string", default: UNSHARDED, help: "Shard (key range) this Postgres holds" },
  "admin-user": {
    type: "string",
    default: "postgres",
    help: "Postgres superuser the pooler uses for control work",
  },
  "pool-capacity": {
    type: "number",
    default: 50,
    help: "Most backend connections open at once, over all users",
  },
  "health-interval-ms": { type: "number", default: 1000, help: "How often Postgres is probed" },
  "join": {
    type: "boolean",
    default: false,
    help:
      "An empty data directory becomes a streaming replica of the shard's primary (found in the topo) instead of a new cluster",
  },
  "state-file": {
    type: "string",
    default: "",
    help:
      "File where the pooler keeps the highest term it promised in a failover (required with replicas; empty: memory only)",
  },
  "pool-mode": {
    type: "string",
    default: "transaction",
    help:
      "session: a client session keeps one backend; transaction: backends are shared between transactions, session state replayed",
  },
} as const satisfies FlagSpecs;

async function main(): Promise<void> {
  const cfg = parseComponentFlags("multipooler", POOLER_FLAGS);
  if (!cfg.id) throw new Error("Missing --id: every pooler needs an id unique in its cell");
  const mode = cfg["pool-mode"];
  if (mode !== "session" && mode !== "transaction") {
    throw new Error(`Invalid --pool-mode: ${mode} (want session or transaction)`);
  }
  const { logger, env, topo } = await startComponent("multipooler", cfg.id, cfg);

  const pgctldClient = makeClient("Pgctld", cfg["pgctld-addr"]);
  env.onShutdown(() => pgctldClient.close());
  const pgctld = {
    status: () => callUnary<PgctldStatusResponse>(pgctldClient, "Status", {}),
    initDataDir: async () => {
      await callUnary(pgctldClient, "InitDataDir", {}, { deadlineMs: 120_000 });
    },
    initReplica: async (source: ReplicaSource) => {
      // A base backup copies the whole database: allow it time.
      await callUnary(pgctldClient, "InitReplica", source, { deadlineMs: 3_600_000 });
    },
    start: async () => {
      await callUnary(pgctldClient, "Start", {}, { deadlineMs: 60_000 });
    },
    follow: async (source: ReplicaSource | null) => {
      await callUnary(pgctldClient, "Follow", source ?? {}, { deadlineMs: 30_000 });
    },
    stop: async () => {
      await callUnary(pgctldClient, "Stop", { mode: "FAST" }, { deadlineMs: 120_000 });
    },
    rewind: async (source: ReplicaSource) => {
      // It may fall back to a new base backup: allow it time.
      await callUnary(pgctldClient, "Rewind", source, { deadlineMs: 3_600_000 });
    },
  };

  // A shard's pooler asks the default database's primary pooler for roles and owners it copies.
  const defaultServer = {
    call: async <Res>(method: string, req: unknown): Promise<Res> => {
      const rec = newestPrimary(
        await topo.listAllPoolers(),
        (p) => p.serving && p.tablegroup === DEFAULT_TABLEGROUP && p.shard === UNSHARDED,
      );
      if (!rec) throw new Error("no primary of the default tablegroup is serving");
      const client = makeClient("MultiPooler", rec.addr);
      try {
        return await callUnary<Res>(client, method, req, { deadlineMs: 10_000 });
      } finally {
        client.close();
      }
    },
    getAuthCredentials(user: string) {
      return this.call<GetAuthCredentialsResponse>("GetAuthCredentials", { user });
    },
    getMetadata() {
      return this.call<GetMetadataResponse>("GetMetadata", {});
    },
  };

  const host = cfg["bind-address"];
  const pooler = new Pooler({
    id: cfg.id,
    cell: cfg.cell,
    database: cfg.database,
    tablegroup: cfg.tablegroup,
    shard: cfg.shard,
    grpcAddr: `${host}:${cfg["grpc-port"]}`,
    httpAddr: `${host}:${cfg["http-port"]}`,
    dataPlaneAddr: cfg["data-plane-port"] ? `${host}:${cfg["data-plane-port"]}` : "",
    adminUser: cfg["admin-user"],
    poolCapacity: cfg["pool-capacity"],
    healthIntervalMs: cfg["health-interval-ms"],
    join: cfg.join,
    stateFile: cfg["state-file"],
  }, { topo, pgctld, logger, defaultServer });

  const streams = new DataPlaneStreams(pooler, logger, mode);
  const { server } = await startGrpcServer(host, cfg["grpc-port"], {
    MultiPooler: poolerService(pooler, streams),
  });
  env.onShutdown(() => stopGrpcServer(server));
  if (cfg["data-plane-port"]) {
    let listener: H2Listener;
    try {
      // With mutual TLS, the data plane too requires a client certificate from the cluster CA.
      const security = processGrpcSecurity();
      listener = security.mode === "mtls"
        ? await listenMutualTls({
          hostname: host,
          port: cfg["data-plane-port"],
          ca: security.certs.caPem,
          cert: security.certs.certPem,
          key: security.certs.keyPem,
          onRefused: (e) => logger.warn("data-plane client refused", { error: e.message }),
        })
        : Deno.listen({ hostname: host, port: cfg["data-plane-port"] });
    } catch (e) {
      throw new Error(
        `Cannot listen on ${host}:${cfg["data-plane-port"]} (data plane): ${(e as Error).message}`,
      );
    }
    const h2 = streams.serveH2(listener);
    env.onShutdown(() => h2.close());
  }
  await env.serveHttp(host, cfg["http-port"]);
  env.setReadiness(() => pooler.serving);
  env.setStatus(() => pooler.status());
  env.installSignalHandlers();

  await pooler.start();
  env.onShutdown(() => pooler.stop());
  logger.info("multipooler serving", { grpc: `${host}:${cfg["grpc-port"]}` });
}

if (import.meta.main) runMain(main);
