/**
 * The server environment every component shares: flags (command line, `MULTIGRES_*` env, a JSON
 * config file), JSON logs, an HTTP port with `/live`, `/ready`, `/metrics` (OpenTelemetry meters in
 * Prometheus format) and a status page, gRPC security from the shared `--grpc-*` flags (mutual
 * TLS with the cluster CA, or explicit plaintext), and clean shutdown on SIGTERM.
 *
 * @module
 */
export { COMMON_FLAGS, envName, flagHelp, parseComponentFlags, parseFlags } from "./flags.ts";
export type { FlagSpec, FlagSpecs, FlagValues } from "./flags.ts";
export { Metrics } from "./metrics.ts";
export { ServerEnv } from "./server_env.ts";
export { runMain } from "./run_main.ts";
export { type ComponentFlags, startComponent } from "./component.ts";
export {
  configureGrpcSecurity,
  type GrpcSecurityFlags,
  grpcSecurityFromFlags,
} from "./grpc_security.ts";
