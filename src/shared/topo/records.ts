import protobuf from "protobufjs";
import { join } from "node:path";
import { protoDir } from "../grpc/mod.ts";
import type { PoolerRecord } from "../grpc/types.ts";

/** The record types stored in the topo, by message name in clustermetadata.proto. */
export type RecordType = "Cell" | "Database" | "Pooler" | "Gateway" | "Orch";

let root: protobuf.Root | undefined;

function type(name: RecordType): protobuf.Type {
  root ??= protobuf.loadSync(join(protoDir(), "clustermetadata.proto"));
  return root.lookupType(`multigres.clustermetadata.${name}`);
}

/**
 * The proto3 JSON form of a record (camelCase keys, enums by name, unset fields left out), passed
 * through the message's schema: fields it does not define are dropped.
 */
export function encodeRecord(name: RecordType, value: object): string {
  const t = type(name);
  // proto3 JSON writes 64-bit integers as strings.
  return JSON.stringify(t.toObject(t.fromObject(value), { enums: String, longs: String }));
}

/** Parses a stored record, filling in proto defaults for missing fields. */
export function decodeRecord<T>(name: RecordType, json: string): T {
  const t = type(name);
  const obj = camelKeys(JSON.parse(json)) as Record<string, unknown>;
  return t.toObject(t.fromObject(obj), {
    enums: String,
    longs: Number,
    defaults: true,
    arrays: true,
  }) as T;
}

/** proto3 JSON readers accept the proto field names too: `postgres_addr` as `postgresAddr`. */
function camelKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelKeys);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = camelKeys(val);
  }
  return out;
}

/**
 * The primary among `poolers` with the highest term (a primary that lost its place may still be
 * registered, under an older term), considering only those `accept` lets through.
 */
export function newestPrimary(
  poolers: readonly PoolerRecord[],
  accept: (p: PoolerRecord) => boolean = () => true,
): PoolerRecord | undefined {
  let best: PoolerRecord | undefined;
  for (const p of poolers) {
    if (p.type === "PRIMARY" && (!best || p.term > best.term) && accept(p)) best = p;
  }
  return best;
}
