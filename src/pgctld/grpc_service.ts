import { grpc, type StopMode as ProtoStopMode, unary } from "../shared/grpc/mod.ts";
import type { PostgresInstance, ReplicaSource, StopMode } from "./instance.ts";

function stopMode(m: ProtoStopMode | undefined): StopMode {
  switch (m) {
    case "SMART":
      return "smart";
    case "IMMEDIATE":
      return "immediate";
    default:
      return "fast";
  }
}

/** The Pgctld gRPC service: a thin adapter over PostgresInstance. */
export function pgctldService(pg: PostgresInstance): grpc.UntypedServiceImplementation {
  return {
    InitDataDir: unary(async (req: { superuserPassword?: string }) => ({
      initialized: await pg.initDataDir(
        req.superuserPassword ? { superuserPassword: req.superuserPassword } : undefined,
      ),
    })),
    InitReplica: unary(async (req: SourceRequest) => ({
      initialized: await pg.initReplica(replicaSource(req, "InitReplica")),
    })),
    Follow: unary(async (req: SourceRequest) => {
      await pg.follow(req.host ? replicaSource(req, "Follow") : null);
      return {};
    }),
    Rewind: unary(async (req: SourceRequest) => ({
      how: await pg.rewind(replicaSource(req, "Rewind")),
    })),
    Start: unary(async (req: { options?: Record<string, string> }) => ({
      pid: await pg.start({ options: req.options ?? {} }),
    })),
    Stop: unary(async (req: { mode?: ProtoStopMode }) => {
      await pg.stop(stopMode(req.mode));
      return {};
    }),
    Restart: unary(async (req: { mode?: ProtoStopMode }) => ({
      pid: await pg.restart(stopMode(req.mode)),
    })),
    Reload: unary(async () => {
      await pg.reload();
      return {};
    }),
    Status: unary(() => pg.status()),
  };
}

/** A PrimarySource message (InitReplica, Follow, Rewind). */
interface SourceRequest {
  host: string;
  port: number;
  user?: string;
  password?: string;
  applicationName: string;
}

function replicaSource(req: SourceRequest, rpc: string): ReplicaSource {
  if (!req.host || !req.port || !req.applicationName) {
    throw new Error(`${rpc} needs the primary's host and port and an application name`);
  }
  return {
    host: req.host,
    port: req.port,
    user: req.user || undefined,
    password: req.password || undefined,
    applicationName: req.applicationName,
  };
}
