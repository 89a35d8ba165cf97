import {
  COMMON_FLAGS,
  configureGrpcSecurity,
  type FlagSpecs,
  parseComponentFlags,
  runMain,
  ServerEnv,
} from "../shared/servenv/mod.ts";
import { Logger, parseLogLevel } from "../shared/log/mod.ts";
import { startGrpcServer, stopGrpcServer } from "../shared/grpc/mod.ts";
import { PostgresInstance } from "./instance.ts";
import { pgctldService } from "./grpc_service.ts";

export const PGCTLD_FLAGS = {
  ...COMMON_FLAGS,
  "http-port": { type: "number", default: 15400, help: "HTTP port (/live, /ready, /metrics)" },
  "grpc-port": { type: "number", default: 15470, help: "gRPC port" },
  "pg-data-dir": { type: "string", default: "", help: "Postgres data directory (required)" },
  "pg-port": { type: "number", default: 25432, help: "Port Postgres listens on" },
  "pg-listen-address": {
    type: "string",
    default: "127.0.0.1",
    help: "Address Postgres listens on",
  },
  "pg-superuser": { type: "string", default: "postgres", help: "Bootstrap superuser name" },
  "pg-superuser-password": {
    type: "string",
    default: "postgres",
    help: "Bootstrap superuser password (used by initdb only)",
  },
  "pg-bin-dir": {
    type: "string",
    default: "",
    help: "Folder of the Postgres binaries (default: newest /usr/lib/postgresql/N/bin)",
  },
  "stop-postgres-on-exit": {
    type: "boolean",
    default: false,
    help: "Stop Postgres when pgctld shuts down (otherwise it keeps running and is adopted later)",
  },
} as const satisfies FlagSpecs;

async function main(): Promise<void> {
  const cfg = parseComponentFlags("pgctld", PGCTLD_FLAGS);
  if (!cfg["pg-data-dir"]) throw new Error("Missing --pg-data-dir: where Postgres keeps its data");
  // Mutual TLS (or explicit plaintext) for the gRPC server, checked before anything starts.
  configureGrpcSecurity(cfg);
  const logger = new Logger({
    level: parseLogLevel(cfg["log-level"]),
    fields: { component: "pgctld", cell: cfg.cell },
  });
  const env = new ServerEnv("pgctld", logger);
  const pg = new PostgresInstance({
    dataDir: cfg["pg-data-dir"],
    port: cfg["pg-port"],
    listenAddress: cfg["pg-listen-address"],
    superuser: cfg["pg-superuser"],
    superuserPassword: cfg["pg-superuser-password"],
    pgBinDir: cfg["pg-bin-dir"] || undefined,
    logger,
    onCrash: (lastExit) => logger.error("Postgres exited unexpectedly", { lastExit }),
  });
  const host = cfg["bind-address"];
  const { server } = await startGrpcServer(host, cfg["grpc-port"], {
    Pgctld: pgctldService(pg),
  });
  env.onShutdown(async () => {
    await stopGrpcServer(server);
    if (cfg["stop-postgres-on-exit"]) await pg.stop("fast");
    pg.close();
  });
  await env.serveHttp(host, cfg["http-port"]);
  let lastState = "";
  env.setReadiness(() => lastState === "RUNNING");
  env.setStatus(() => ({ state: lastState }));
  const refresh = async () => {
    lastState = (await pg.status().catch(() => ({ state: "UNKNOWN" }))).state;
  };
  await refresh();
  const poll = setInterval(refresh, 1000);
  env.onShutdown(() => clearInterval(poll));
  env.installSignalHandlers();
  logger.info("pgctld serving", {
    grpc: `${host}:${cfg["grpc-port"]}`,
    dataDir: cfg["pg-data-dir"],
  });
}

if (import.meta.main) runMain(main);
