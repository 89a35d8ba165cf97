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
  type HealthStatus,
  makeClient,
  type PoolerRecord,
  type PreparedTransaction,
  type ShardRule,
  startGrpcServer,
  stopGrpcServer,
  type TwoPhaseDecision,
  type TwoPhaseDecisionRecord,
  unary,
} from "../shared/grpc/mod.ts";
import { Orch, type Recruit } from "./orch.ts";
import { TwoPhaseRecovery } from "./two_phase_recovery.ts";

export const ORCH_FLAGS = {
  ...COMMON_FLAGS,
  "id": { type: "string", default: "", help: "Orch id, unique in the cell (default: random)" },
  "http-port": { type: "number", default: 15300, help: "HTTP port (/live, /ready, /metrics)" },
  "grpc-port": { type: "number", default: 15370, help: "gRPC port" },
  "two-phase-min-age": {
    type: "number",
    default: 10,
    help: "Seconds a transaction stays prepared without a decision before the recovery ends it",
  },
} as const satisfies FlagSpecs;

async function main(): Promise<void> {
  const cfg = parseComponentFlags("multiorch", ORCH_FLAGS);
  const id = cfg.id || `orch-${crypto.randomUUID().slice(0, 8)}`;
  const { logger, env, topo } = await startComponent("multiorch", id, cfg);
  const clients = new Map<string, grpc.Client>();
  env.onShutdown(() => clients.forEach((c) => c.close()));
  const client = (p: PoolerRecord) => {
    let c = clients.get(p.addr);
    if (!c) clients.set(p.addr, c = makeClient("MultiPooler", p.addr));
    return c;
  };
  const orch = new Orch(topo, {
    appointPrimary: async (pooler, rule) => {
      // The rule commits under the durability policy: it waits for the replicas.
      const res = await callUnary<{ rule: ShardRule }>(client(pooler), "AppointPrimary", { rule }, {
        deadlineMs: 60_000,
      });
      return res.rule;
    },
    recruit: (pooler, term) =>
      callUnary<Recruit>(client(pooler), "Recruit", { term }, { deadlineMs: 15_000 }),
    promote: async (pooler, term, standbys, n) => {
      await callUnary(client(pooler), "Promote", { term, standbys, n }, { deadlineMs: 90_000 });
    },
    repoint: async (pooler, term, primary) => {
      await callUnary(client(pooler), "Repoint", { term, primary }, { deadlineMs: 600_000 });
    },
    demote: async (pooler, drainMs) => {
      const res = await callUnary<{ lsn: string }>(client(pooler), "Demote", { drainMs }, {
        deadlineMs: drainMs + 120_000,
      });
      return res.lsn;
    },
    watchHealth: (pooler, onHealth, onEnd) => {
      // deno-lint-ignore no-explicit-any
      const stream = (client(pooler) as any).HealthStream({}) as grpc.ClientReadableStream<
        HealthStatus
      >;
      let ended = false;
      const end = (why: string) => {
        if (ended) return;
        ended = true;
        onEnd(why);
      };
      stream.on("data", onHealth);
      stream.on("error", (e: Error) => end(e.message));
      stream.on("end", () => end("stream ended"));
      return {
        stop: () => {
          ended = true;
          stream.cancel();
        },
      };
    },
  }, logger);
  const host = cfg["bind-address"];
  const status = () => ({ id, cell: cfg.cell, shards: orch.status() });
  const { server } = await startGrpcServer(host, cfg["grpc-port"], {
    MultiOrch: {
      Status: unary(() => Promise.resolve(status())),
      Switchover: unary(
        (
          req: { database: string; tablegroup: string; shard: string; to: string; drainMs: number },
        ) =>
          orch.switchover(
            {
              database: req.database || "postgres",
              tablegroup: req.tablegroup || "default",
              shard: req.shard || "0-inf",
            },
            { to: req.to || undefined, drainMs: req.drainMs || undefined },
          ),
      ),
    },
  });
  env.onShutdown(() => stopGrpcServer(server));
  await env.serveHttp(host, cfg["http-port"]);
  env.setStatus(status);
  orch.start();
  env.onShutdown(() => orch.stop());
  // Two-phase commits a crash left prepared: finished from the decisions recorded.
  const recovery = new TwoPhaseRecovery(
    () => topo.listAllPoolers(),
    {
      listPrepared: async (p) =>
        (await callUnary<{ prepared?: PreparedTransaction[] }>(client(p), "ListPrepared", {}))
          .prepared ?? [],
      finishPrepared: async (p, tx, commit) =>
        (await callUnary<{ finished: boolean }>(client(p), "FinishPrepared", { ...tx, commit }))
          .finished,
      decide: async (p, gid, decision) =>
        (await callUnary<{ decision: TwoPhaseDecision }>(client(p), "DecideTwoPhase", {
          gid,
          decision,
          participants: [],
        })).decision,
      listDecisions: async (p, minAgeSeconds) =>
        (await callUnary<{ decisions?: TwoPhaseDecisionRecord[] }>(
          client(p),
          "ListTwoPhaseDecisions",
          { minAgeSeconds },
        )).decisions ?? [],
      forget: async (p, gids) => {
        await callUnary(client(p), "ForgetTwoPhase", { gids });
      },
    },
    logger,
    { minAgeSeconds: cfg["two-phase-min-age"] },
  );
  recovery.start();
  env.onShutdown(() => recovery.stop());
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
