import {
  type DataPlaneRequest,
  type DataPlaneResponse,
  grpc,
  type HealthStatus,
  type PoolerRecord,
  unary,
} from "../shared/grpc/mod.ts";
import type { Logger } from "../shared/log/mod.ts";
import { Batcher } from "./dataplane/batcher.ts";
import { type PoolMode, SessionTable } from "./dataplane/session_table.ts";
import type { Pooler } from "./pooler.ts";

/** The MultiPooler gRPC service: decodes requests, calls the Pooler, maps errors. */
export function poolerService(
  pooler: Pooler,
  logger: Logger,
  mode: PoolMode = "transaction",
): grpc.UntypedServiceImplementation {
  const tables = new Set<SessionTable>();
  pooler.sessionCount = () => {
    let n = 0;
    for (const t of tables) n += t.size;
    return n;
  };
  return {
    DataPlane(call: grpc.ServerDuplexStream<DataPlaneRequest, DataPlaneResponse>) {
      const batcher = new Batcher((responses) => call.write({ responses }));
      call.on("drain", () => batcher.drained());
      const table = new SessionTable({
        pool: pooler.pool,
        sink: batcher,
        canServe: (replica) => pooler.canServe(replica),
        logger,
        mode,
      });
      tables.add(table);
      call.on("data", (msg: DataPlaneRequest) => {
        for (const req of msg.requests) table.handle(req);
      });
      const finish = () => {
        if (!tables.delete(table)) return;
        table.closeAll();
        batcher.drained();
      };
      call.on("end", () => {
        finish();
        call.end();
      });
      call.on("cancelled", finish);
      call.on("error", finish);
      call.on("close", finish);
    },

    HealthStream(call: grpc.ServerWritableStream<unknown, HealthStatus>) {
      call.write(pooler.health());
      const off = pooler.onHealth((h) => call.write(h));
      const stop = () => off();
      call.on("cancelled", stop);
      call.on("close", stop);
      call.on("error", stop);
    },

    GetAuthCredentials: unary((req: { user: string }) => pooler.getAuthCredentials(req.user)),
    GetMetadata: unary(() => pooler.getMetadata()),
    AppointPrimary: unary(async (req: { rule: Parameters<Pooler["appointPrimary"]>[0] }) => ({
      rule: await pooler.appointPrimary(req.rule),
    })),
    Status: unary(() => Promise.resolve(pooler.status())),
    Recruit: unary((req: { term: number }) => pooler.recruit(req.term)),
    Promote: unary(async (req: { term: number; standbys: string[]; n: number }) => ({
      lsn: await pooler.promote(req.term, req.standbys ?? [], req.n || 1),
    })),
    Demote: unary(async (req: { drainMs: number }) => ({
      lsn: await pooler.demote(req.drainMs || 5000),
    })),
    Repoint: unary(async (req: { term: number; primary: PoolerRecord }) => {
      await pooler.repoint(req.term, req.primary);
      return {};
    }),
  };
}
