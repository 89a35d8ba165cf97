/**
 * How a process's gRPC connections are secured: mutual TLS with certificates from one cluster CA
 * (every server asks for a client certificate from that CA, every client shows its own and
 * checks the server's), or plaintext, which must be asked for explicitly.
 *
 * A component's `main` sets the process's choice once ({@linkcode useGrpcSecurity}, from its
 * flags); `makeClient`, `startGrpcServer` and the data plane use it unless given another. A
 * process that never chose cannot open or serve gRPC at all.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import tls from "node:tls";
import type { CertificateSet } from "./certs.ts";

/** Mutual TLS with a set of PEM texts (checked with `checkCertificates`), or plaintext. */
export type GrpcSecurity =
  | { readonly mode: "mtls"; readonly certs: CertificateSet }
  | { readonly mode: "insecure" };

/** Plaintext gRPC (only behind an explicit `--grpc-insecure`). */
export const INSECURE_GRPC: GrpcSecurity = Object.freeze({ mode: "insecure" });

/** Mutual TLS with `certs` (check them first with `checkCertificates`). */
export function mutualTls(certs: CertificateSet): GrpcSecurity {
  return Object.freeze({ mode: "mtls", certs: Object.freeze({ ...certs }) });
}

let processSecurity: GrpcSecurity | undefined;

/** Sets how this process's gRPC clients and servers are secured (a component's main, once). */
export function useGrpcSecurity(security: GrpcSecurity): void {
  processSecurity = security;
}

/** The process's choice (see useGrpcSecurity); throws when none was made. */
export function processGrpcSecurity(): GrpcSecurity {
  if (!processSecurity) {
    throw new Error(
      "gRPC security is not configured: give certificates (mutual TLS) or choose plaintext",
    );
  }
  return processSecurity;
}

/** Server credentials: a client certificate from the CA is required. */
export function serverCredentials(security: GrpcSecurity): grpc.ServerCredentials {
  if (security.mode === "insecure") return grpc.ServerCredentials.createInsecure();
  const { caPem, certPem, keyPem } = security.certs;
  return grpc.ServerCredentials.createSsl(
    Buffer.from(caPem),
    [{ cert_chain: Buffer.from(certPem), private_key: Buffer.from(keyPem) }],
    true,
  );
}

/**
 * Channel credentials to a server at `host`: our certificate shown, the server's checked
 * against the CA and against `host` (a name or an IP address its certificate must list).
 */
export function channelCredentials(security: GrpcSecurity, host: string): grpc.ChannelCredentials {
  if (security.mode === "insecure") return grpc.credentials.createInsecure();
  const { caPem, certPem, keyPem } = security.certs;
  return grpc.credentials.createSsl(
    Buffer.from(caPem),
    Buffer.from(keyPem),
    Buffer.from(certPem),
    // grpc-js checks the name it sent as SNI, which cannot be an IP address (see
    // channelOptionsFor): the check is made against the address dialled instead.
    { checkServerIdentity: (_sni, cert) => tls.checkServerIdentity(host, cert) },
  );
}

/**
 * Channel options for a server at `host`. Deno's node:tls refuses an IP address as the SNI
 * name grpc-js derives from the target, so a TLS channel to an IP address sends `localhost`
 * instead (the certificate is still checked against the IP address: channelCredentials).
 */
export function channelOptionsFor(
  security: GrpcSecurity,
  host: string,
  options: grpc.ChannelOptions,
): grpc.ChannelOptions {
  if (security.mode === "insecure" || !isIP(host)) return options;
  return { ...options, "grpc.ssl_target_name_override": "localhost" };
}

/** The host of `host:port` (`[v6]:port` too). */
export function hostOf(addr: string): string {
  const i = addr.lastIndexOf(":");
  const host = i < 0 ? addr : addr.slice(0, i);
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}
