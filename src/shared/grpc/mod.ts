/**
 * gRPC helpers: the protos loaded once with one option set, clients with a deadline on every
 * call, a server starter, and PgError ↔ gRPC status mapping (SQLSTATE and severity travel in
 * metadata). Domain code never imports grpc-js; each component's adapter uses this module.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { serviceCtor, type ServiceName } from "./_load.ts";
import { fromServiceError, toServiceError } from "./_errors.ts";
import {
  channelCredentials,
  channelOptionsFor,
  type GrpcSecurity,
  hostOf,
  processGrpcSecurity,
  serverCredentials,
} from "./security.ts";

export { fromServiceError, toServiceError };
export {
  channelCredentials,
  type GrpcSecurity,
  INSECURE_GRPC,
  mutualTls,
  processGrpcSecurity,
  serverCredentials,
  useGrpcSecurity,
} from "./security.ts";
export {
  type CertificateFiles,
  type CertificateSet,
  checkCertificates,
  isX509v3,
  pemCertificates,
} from "./certs.ts";
export { protoDir, protos, type ServiceName } from "./_load.ts";
export * from "./types.ts";
export { grpc };

/** Default deadline of a unary call. */
export const DEFAULT_DEADLINE_MS = 5000;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.max_send_message_length": 64 * 1024 * 1024,
  // A peer that restarts (a pooler after a crash) is reached again within a second, not after
  // grpc's default backoff of up to two minutes.
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 1000,
};

/**
 * A client of one service at `addr` (host:port), secured as `security` says (default: the
 * process's choice, see useGrpcSecurity): with mutual TLS it shows its certificate and accepts
 * only a server whose certificate the cluster CA issued for that address.
 */
export function makeClient(
  service: ServiceName,
  addr: string,
  security: GrpcSecurity = processGrpcSecurity(),
): grpc.Client {
  const Ctor = serviceCtor(service);
  const host = hostOf(addr);
  return new Ctor(
    addr,
    channelCredentials(security, host),
    channelOptionsFor(security, host, CHANNEL_OPTIONS),
  );
}

/** Calls a unary method with a deadline; rejects with a PgError. */
export function callUnary<Res>(
  client: grpc.Client,
  method: string,
  request: unknown,
  opts: { deadlineMs?: number } = {},
): Promise<Res> {
  const deadline = new Date(Date.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS));
  return new Promise((resolve, reject) => {
    // deno-lint-ignore no-explicit-any
    const fn = (client as any)[method];
    if (typeof fn !== "function") {
      reject(new Error(`No gRPC method ${method}`));
      return;
    }
    fn.call(
      client,
      request,
      new grpc.Metadata(),
      { deadline },
      (err: grpc.ServiceError | null, res: Res) => {
        if (err) reject(fromServiceError(err));
        else resolve(res);
      },
    );
  });
}

/** Wraps a plain async function as a unary handler, mapping thrown errors to gRPC statuses. */
export function unary<Req, Res>(
  fn: (req: Req) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (e) => callback(toServiceError(e) as grpc.ServiceError, null),
    );
  };
}

/**
 * A gRPC server with the given services; resolves once bound. Secured as `opts.security` says
 * (default: the process's choice): with mutual TLS a client without a certificate from the
 * cluster CA is refused during the handshake, before any RPC runs.
 */
export async function startGrpcServer(
  host: string,
  port: number,
  services: Partial<Record<ServiceName, grpc.UntypedServiceImplementation>>,
  opts: { security?: GrpcSecurity } = {},
): Promise<{ server: grpc.Server; port: number }> {
  const credentials = serverCredentials(opts.security ?? processGrpcSecurity());
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
  });
  for (const [name, impl] of Object.entries(services)) {
    server.addService(serviceCtor(name as ServiceName).service, impl!);
  }
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials, (err, p) => {
      if (err) reject(new Error(`Cannot listen on gRPC ${host}:${port}: ${err.message}`));
      else resolve(p);
    });
  });
  return { server, port: bound };
}

/** Stops a server: graceful for `graceMs`, then forced. */
export function stopGrpcServer(server: grpc.Server, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
