import * as grpc from "@grpc/grpc-js";
import { PgError, type Severity, SqlState } from "../errors/mod.ts";

/** Turns a domain error into a gRPC error; SQLSTATE and severity travel in metadata. */
export function toServiceError(e: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (e instanceof PgError) {
    metadata.set("sqlstate", e.sqlstate);
    metadata.set("severity", e.severity);
    if (e.detail) metadata.set("detail", e.detail);
    if (e.hint) metadata.set("hint", e.hint);
    if (e.retryable) metadata.set("retryable", "1");
    return { code: grpcCodeFor(e), details: e.message, metadata };
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { code: grpc.status.INTERNAL, details: msg, metadata };
}

function grpcCodeFor(e: PgError): grpc.status {
  switch (e.sqlstate.slice(0, 2)) {
    case "08":
    case "57":
      return grpc.status.UNAVAILABLE;
    case "28":
      return grpc.status.UNAUTHENTICATED;
    case "3D":
      return grpc.status.NOT_FOUND;
    case "53":
      return grpc.status.RESOURCE_EXHAUSTED;
    default:
      return grpc.status.UNKNOWN;
  }
}

/**
 * Turns a gRPC error back into a PgError: the SQLSTATE from metadata when the peer sent one,
 * otherwise 08006 for an unreachable peer (marked retryable) and XX000 for anything else.
 */
export function fromServiceError(e: unknown): PgError {
  const se = e as Partial<grpc.ServiceError>;
  if (typeof se?.code !== "number") {
    return e instanceof PgError ? e : new PgError(SqlState.INTERNAL_ERROR, String(e));
  }
  const md = se.metadata;
  const get = (k: string) => {
    const v = md?.get(k)[0];
    return v === undefined ? undefined : String(v);
  };
  const sqlstate = get("sqlstate");
  const details = se.details ?? se.message ?? "unknown gRPC error";
  if (sqlstate) {
    return new PgError(sqlstate, details, {
      severity: (get("severity") ?? "ERROR") as Severity,
      detail: get("detail"),
      hint: get("hint"),
      retryable: get("retryable") === "1",
    });
  }
  if (se.code === grpc.status.UNAVAILABLE || se.code === grpc.status.DEADLINE_EXCEEDED) {
    return new PgError(SqlState.CONNECTION_FAILURE, details, { retryable: true });
  }
  return new PgError(SqlState.INTERNAL_ERROR, details);
}
