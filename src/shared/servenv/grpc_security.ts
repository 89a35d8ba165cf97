import {
  checkCertificates,
  type GrpcSecurity,
  INSECURE_GRPC,
  mutualTls,
  useGrpcSecurity,
} from "../grpc/mod.ts";

/** The gRPC security flags every component takes (see COMMON_FLAGS). */
export interface GrpcSecurityFlags {
  readonly "grpc-ca-file": string;
  readonly "grpc-cert-file": string;
  readonly "grpc-key-file": string;
  readonly "grpc-insecure": boolean;
}

/**
 * Reads and checks the certificates the flags name (mutual TLS), or returns plaintext for an
 * explicit `--grpc-insecure`. Throws an Error with one clear line when neither is given, when
 * both are, when a file is missing or unreadable, and on every fault `checkCertificates` finds.
 */
export function grpcSecurityFromFlags(cfg: GrpcSecurityFlags): GrpcSecurity {
  const files = {
    caFile: cfg["grpc-ca-file"],
    certFile: cfg["grpc-cert-file"],
    keyFile: cfg["grpc-key-file"],
  };
  const given = [files.caFile, files.certFile, files.keyFile].filter((f) => f).length;
  if (cfg["grpc-insecure"]) {
    if (given) {
      throw new Error(
        "Give either --grpc-insecure or --grpc-ca-file, --grpc-cert-file and --grpc-key-file, not both",
      );
    }
    return INSECURE_GRPC;
  }
  if (given === 0) {
    throw new Error(
      "No gRPC certificates: give --grpc-ca-file, --grpc-cert-file and --grpc-key-file " +
        "(mutual TLS), or --grpc-insecure for plaintext gRPC",
    );
  }
  if (given < 3) {
    throw new Error("Give all three of --grpc-ca-file, --grpc-cert-file and --grpc-key-file");
  }
  const certs = {
    caPem: readPem(files.caFile, "--grpc-ca-file"),
    certPem: readPem(files.certFile, "--grpc-cert-file"),
    keyPem: readPem(files.keyFile, "--grpc-key-file"),
  };
  checkCertificates(certs, files);
  return mutualTls(certs);
}

/**
 * `grpcSecurityFromFlags`, then made this process's choice for every gRPC client and server it
 * opens (a component's main calls it before anything listens or dials).
 */
export function configureGrpcSecurity(cfg: GrpcSecurityFlags): GrpcSecurity {
  const security = grpcSecurityFromFlags(cfg);
  useGrpcSecurity(security);
  return security;
}

function readPem(path: string, flag: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`Cannot read ${flag} ${path}: ${(e as Error).message}`);
  }
}
