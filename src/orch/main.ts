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
  type ShardRule,
  startGrpcServer,
  stopGrpcServer,
  unary,
} from "../shared/grpc/mod.ts";
import { Orch } from "./orch.ts";

export const ORCH_FLAGS = {
  ...COMMON_FLAGS,
  "id": { type: "string", default: "", help: "Orch id, unique in the cell (default: random)" },
  "http-port": { type: "number", default: 15300, help: "HTTP port (/live, /ready, /metrics)" },
  "grpc-port": { type: "number", default: 15370, help: "gRPC port" },
} as const satisfies FlagSpecs;

async function main(): Promise<void> {
  const cfg = parseComponentFlags("multiorch", ORCH_FLAGS);
  const id = cfg.id || `orch-${crypto.randomUUID().slice(0, 8)}`;
  const { logger, env, topo } = await startComponent("multiorch", id, cfg);
  const clients = new Map<string, grpc.Client>();
  env.onShutdown(() => clients.forEach((c) => c.close()));
  const orch = new Orch(topo, {
    appointPrimary: async (pooler, rule) => {
      let c = clients.get(pooler.addr);
      if (!c) clients.set(pooler.addr, c = makeClient("MultiPooler", pooler.addr));
      const res = await callUnary<{ rule: ShardRule }>(c, "AppointPrimary", { rule }, {
        deadlineMs: 30_000,
      });
      return res.rule;
    },
  }, logger);
  const host = cfg["bind-address"];
  const status = () => ({ id, cell: cfg.cell, shards: orch.status() });
  const { server } = await startGrpcServer(host, cfg["grpc-port"], {
    MultiOrch: { Status: unary(() => Promise.resolve(status())) },
  });
  env.onShutdown(() => stopGrpcServer(server));
  await env.serveHttp(host, cfg["http-port"]);
  env.setStatus(status);
  orch.start();
  env.onShutdown(() => orch.stop());
  const registration = topo.registerOrch({
    id,
    cell: cfg.cell,
    grpcAddr: `${host}:${cfg["grpc-port"]}`,
    httpAddr: `${host}:${cfg["http-port"]}`,
  });
  env.onShutdown(() => registration.revoke());
  env.installSignalHandlers();
  await registration.ready();
  logger.info("multiorch serving", { grpc: `${host}:${cfg["grpc-port"]}` });
}

if (import.meta.main) runMain(main);
