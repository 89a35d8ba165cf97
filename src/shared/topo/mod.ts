/**
 * The topology client: records in etcd at the paths DESIGN.md fixes, stored as the proto3 JSON
 * form of `proto/clustermetadata.proto` messages; leased registrations; prefix watches.
 *
 * @module
 */
export { TopoPaths, validateName } from "./paths.ts";
export { decodeRecord, encodeRecord, newestPrimary, type RecordType } from "./records.ts";
export { etcdHosts, PrefixWatch, Registration, TopoServer } from "./topo_server.ts";
export { REGISTRATION_TTL_SECONDS, Topo } from "./topo.ts";
