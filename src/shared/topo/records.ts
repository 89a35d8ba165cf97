import protobuf from "protobufjs";
import { join } from "node:path";
import { protoDir } from "../grpc/mod.ts";

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
  return JSON.stringify(t.toObject(t.fromObject(value), { enums: String, longs: Number }));
}

/** Parses a stored record, filling in proto defaults for missing fields. */
export function decodeRecord<T>(name: RecordType, json: string): T {
  const t = type(name);
  const obj = JSON.parse(json);
  return t.toObject(t.fromObject(obj), {
    enums: String,
    longs: Number,
    defaults: true,
    arrays: true,
  }) as T;
}
