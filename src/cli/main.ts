import { parseArgs } from "node:util";
import {
  type ClusterStatus,
  DEFAULT_CONFIG,
  ensurePrereqs,
  LocalCluster,
  lsnBytes,
  watchShards,
} from "../provisioner/mod.ts";
import { newestPrimary } from "../shared/topo/mod.ts";

const USAGE = `multigres: run a Multigres cluster on this machine

Usage:
  multigres cluster start [--foreground] [options]   start the local cluster (dev: --foreground)
  multigres cluster stop [--data-dir DIR]             stop it by PID
  multigres cluster status [--data-dir DIR]           show every component and the primary
  multigres switchover [--data-dir DIR] [--to ID]     hand the primary over to a replica (drains
                                                      first: clients see a pause, not an error)
  multigres prereqs                                   find or install PostgreSQL and etcd

Options for start:
  --data-dir DIR      where everything lives (default ${DEFAULT_CONFIG.dataDir})
  --password PW       postgres superuser password, set on first start (default postgres)
  --port-offset N     add N to every port (default 0: gateway on 127.0.0.1:15432)
  --cluster NAME      cluster name in the topo (default local)
  --cell NAME         cell name (default zone1)
  --log-level LEVEL   debug, info, warn or error (default info)
  --bin-dir DIR       run compiled executables from DIR instead of the sources
  --listen ADDR       address the gateway listens on (default 127.0.0.1; 0.0.0.0 in a container)
  --pool-mode MODE    transaction (backends shared between transactions, the default) or session
  --cells N           cells, one Postgres each (default 3): the first holds the primary, the
                      others a streaming replica each; 1 runs a single Postgres
  --hba-file FILE     client authentication rules (pg_hba.conf format) for every gateway,
                      reloaded on SIGHUP (default: scram-sha-256 for every connection)
  --grpc-insecure     plaintext gRPC between components (default: mutual TLS with the
                      cluster's own CA, made on first start in DIR/tls/grpc)`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      "foreground": { type: "boolean", default: false },
      "data-dir": { type: "string", default: DEFAULT_CONFIG.dataDir },
      "password": { type: "string", default: DEFAULT_CONFIG.password },
      "port-offset": { type: "string", default: "0" },
      "cluster": { type: "string", default: DEFAULT_CONFIG.cluster },
      "cell": { type: "string", default: DEFAULT_CONFIG.cell },
      "log-level": { type: "string", default: DEFAULT_CONFIG.logLevel },
      "bin-dir": { type: "string", default: "" },
      "listen": { type: "string", default: DEFAULT_CONFIG.gatewayListenAddress },
      "pool-mode": { type: "string", default: DEFAULT_CONFIG.poolMode },
      "cells": { type: "string", default: "3" },
      "hba-file": { type: "string", default: "" },
      "grpc-insecure": { type: "boolean", default: false },
      "to": { type: "string", default: "" },
      "help": { type: "boolean", short: "h", default: false },
    },
  });
  const [group, verb] = positionals;
  if (values.help || !group) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (group === "prereqs") {
    const p = await ensurePrereqs();
    console.log(`PostgreSQL: ${p.pgBinDir}\netcd: ${p.etcd}`);
    return 0;
  }
  if (group === "switchover") {
    const cluster = LocalCluster.load(values["data-dir"]!);
    const res = await cluster.switchover({ to: values.to || undefined });
    console.log(`Switched over: ${res.primary} is the primary (term ${res.term}).`);
    return 0;
  }
  if (group === "cluster" && verb === "provision") {
    // The shard provisioner's process (started by `cluster start`; not for people to run).
    await watchShards(values["data-dir"]!);
    return 0;
  }
  if (group !== "cluster" || !["start", "stop", "status"].includes(verb ?? "")) {
    console.error(`error: unknown command: ${positionals.join(" ")}\n\n${USAGE}`);
    return 2;
  }
  if (verb === "start") {
    const offset = Number(values["port-offset"]);
    if (!Number.isInteger(offset) || offset < 0) {
      throw new Error(`Invalid --port-offset: ${values["port-offset"]}`);
    }
    const cells = Number(values.cells);
    if (!Number.isInteger(cells) || cells < 1 || cells > 9) {
      throw new Error(`Invalid --cells: ${values.cells} (want 1 to 9)`);
    }
    const cluster = new LocalCluster({
      dataDir: values["data-dir"]!,
      password: values.password!,
      portOffset: offset,
      cluster: values.cluster!,
      cell: values.cell!,
      logLevel: values["log-level"]!,
      binDir: values["bin-dir"]!,
      gatewayListenAddress: values.listen!,
      poolMode: values["pool-mode"]!,
      cells,
      hbaFile: values["hba-file"] || undefined,
      grpcInsecure: values["grpc-insecure"] || undefined,
    });
    if (cluster.cfg.hbaFile) {
      try {
        Deno.statSync(cluster.cfg.hbaFile);
      } catch (e) {
        throw new Error(`Cannot read --hba-file ${cluster.cfg.hbaFile}: ${(e as Error).message}`);
      }
    }
    console.error(`Starting the Multigres cluster in ${cluster.cfg.dataDir} ...`);
    try {
      await cluster.start();
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      if (values.foreground) await cluster.stop();
      return 1;
    }
    console.log(`\nMultigres is up. Connect with:\n\n  ${cluster.psqlLine}\n`);
    if (cells > 1) {
      console.log(
        `Read-only sessions on the replicas: the same with -p ${cluster.ports.gatewayPgReplica}\n`,
      );
    }
    if (!values.foreground) {
      console.log(`Stop it with: multigres cluster stop --data-dir ${cluster.cfg.dataDir}`);
      return 0;
    }
    console.log("Press Ctrl-C to stop the cluster.");
    await new Promise<void>((resolve) => {
      // A signal listener alone does not keep Deno's event loop alive: a timer does.
      const keepAlive = setInterval(() => {}, 1 << 30);
      const stop = () => {
        clearInterval(keepAlive);
        resolve();
      };
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
    });
    console.error("\nStopping the cluster ...");
    await cluster.stop();
    console.error("Stopped. Data is kept in " + cluster.cfg.dataDir);
    return 0;
  }
  const cluster = LocalCluster.load(values["data-dir"]!);
  if (verb === "stop") {
    await cluster.stop();
    console.log("Stopped.");
    return 0;
  }
  const st = await cluster.status();
  console.log(formatStatus(cluster, st));
  return st.processes.every((p) => p.pid) ? 0 : 3;
}

function formatStatus(cluster: LocalCluster, st: ClusterStatus): string {
  const lines = [`Cluster ${cluster.cfg.cluster} in ${cluster.cfg.dataDir}`, "", "Processes:"];
  for (const p of st.processes) {
    lines.push(`  ${p.name.padEnd(22)} ${p.pid ? `running (pid ${p.pid})` : "stopped"}`);
  }
  if (st.topoError) {
    lines.push("", `Topo: ${st.topoError}`);
    return lines.join("\n");
  }
  lines.push("", "Shards:");
  const shards = new Map<string, typeof st.poolers>();
  for (const p of st.poolers) {
    const k = `${p.database}/${p.tablegroup}/${p.shard}`;
    shards.set(k, [...(shards.get(k) ?? []), p]);
  }
  if (!shards.size) lines.push("  (no pooler registered)");
  for (const [k, members] of shards) {
    const primary = newestPrimary(members);
    lines.push(
      `  ${k}  primary: ${
        primary
          ? `${primary.id} (term ${primary.term}${primary.serving ? "" : ", not serving"})`
          : "none"
      }  policy: ${st.policies[members[0].database] ?? "none"}`,
    );
    const primaryLsn = primary ? lsnBytes(st.lsns[primary.id] ?? "") : null;
    for (const m of members) {
      const lsn = st.lsns[m.id] ?? "";
      const at = lsnBytes(lsn);
      const wal = m.type === "PRIMARY"
        ? `lsn ${lsn || "?"}`
        : at !== null && primaryLsn !== null
        ? `lag ${primaryLsn > at ? primaryLsn - at : 0n} B`
        : "lag ?";
      lines.push(
        `    ${m.id.padEnd(18)} ${m.type.padEnd(24)} term ${m.term}  ${
          m.serving ? "serving" : "not serving"
        }  ${wal}  postgres ${m.postgresAddr}`,
      );
    }
  }
  for (const cell of st.notJoined) {
    lines.push(
      `  ${
        `${cell}-pooler-0`.padEnd(18)
      } not joined: the replica of cell ${cell} does not stream ` +
        `yet (see ${cluster.cfg.dataDir}/cells/${cell}/logs)`,
    );
  }
  lines.push("", "Databases:");
  if (!st.layout) lines.push("  (the hidden schema cannot be read now: no serving primary)");
  for (const db of st.layout ?? []) {
    lines.push(`  ${db.name}`);
    for (const tg of db.tablegroups) {
      lines.push(`    tablegroup ${tg.name}`);
      for (const sh of tg.shards) {
        const members = st.poolers.filter((p) =>
          p.shard === sh.name && p.tablegroup === tg.name &&
          (p.database === db.name || tg.name === "default")
        );
        // A database's default tablegroup lives on the default database's server.
        const on = tg.name === "default" && !members.some((p) => p.database === db.name)
          ? members.filter((p) => p.database !== db.name)
          : members.filter((p) => p.database === db.name);
        const desc = on.length
          ? on.map((p) => `${p.id} ${p.type}${p.serving ? "" : " (not serving)"}`).join(", ")
          : "no pooler yet";
        lines.push(`      shard ${sh.name.padEnd(10)} ${desc}`);
      }
      for (const t of (db.tables ?? []).filter((t) => t.tablegroup === tg.name)) {
        lines.push(
          `      table ${t.name}${
            t.shardingColumn ? ` sharded by ${t.shardingColumn} (${t.shardingType})` : ""
          }`,
        );
      }
    }
  }
  lines.push("", `Gateways: ${st.gateways.join(", ") || "none"}`);
  lines.push(`Orchs: ${st.orchs.join(", ") || "none"}`);
  return lines.join("\n");
}

if (import.meta.main) {
  main(Deno.args).then(
    (code) => Deno.exit(code),
    (e) => {
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(1);
    },
  );
}
