import { Logger, parseLogLevel } from "../log/mod.ts";
import { Topo } from "../topo/mod.ts";
import { ServerEnv } from "./server_env.ts";
import { configureGrpcSecurity, type GrpcSecurityFlags } from "./grpc_security.ts";

/** The flags every topo-connected component has (see COMMON_FLAGS). */
export interface ComponentFlags extends GrpcSecurityFlags {
  readonly cluster: string;
  readonly cell: string;
  readonly "topo-global-address": string;
  readonly "log-level": string;
}

/**
 * The start every topo-connected component shares: its gRPC security from the `--grpc-*` flags
 * (checked first: a fault stops the component with one clear line), a logger with the
 * component's fixed keys, its ServerEnv, and its view of the topology (closed on shutdown).
 */
export async function startComponent(
  component: string,
  id: string,
  cfg: ComponentFlags,
): Promise<{ logger: Logger; env: ServerEnv; topo: Topo }> {
  configureGrpcSecurity(cfg);
  const logger = new Logger({
    level: parseLogLevel(cfg["log-level"]),
    fields: { component, id, cell: cfg.cell },
  });
  const env = new ServerEnv(component, logger);
  const topo = await Topo.connect({
    globalAddress: cfg["topo-global-address"],
    cluster: cfg.cluster,
    cell: cfg.cell,
    logger,
  });
  env.onShutdown(() => topo.close());
  return { logger, env, topo };
}
