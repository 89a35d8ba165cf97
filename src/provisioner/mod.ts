/**
 * The local provisioner: what the Kubernetes operator is to a cluster, for one machine. It
 * installs or finds the prerequisites, starts etcd and each component as a detached process with
 * a log and a pid file under one data directory, writes the global topo, and stops everything by
 * PID. Its shard provisioner watches the hidden schema and runs a pgctld + Postgres and a pooler
 * per cell for every shard of every tablegroup it records (ports: see shardPorts).
 *
 * @module
 */
export {
  clusterPorts,
  type ClusterStatus,
  DEFAULT_CONFIG,
  LocalCluster,
  type LocalClusterConfig,
  lsnBytes,
} from "./local_cluster.ts";
export { ensurePrereqs, type Prereqs } from "./prereqs.ts";
export { alive, readPid, stopPid } from "./processes.ts";
export { shardPorts, ShardProvisioner } from "./shards.ts";
export { watchShards } from "./watch.ts";
