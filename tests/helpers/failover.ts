/**
 * Killing a shard's primary on a local multi-cell cluster, for the failover test and the
 * failover benchmark.
 */
import type { LocalCluster } from "../../src/provisioner/mod.ts";
import type { PoolerRecord } from "../../src/shared/grpc/types.ts";
import { newestPrimary } from "../../src/shared/topo/mod.ts";

/** What a kill takes down: the primary's Postgres, its pooler, or all of its processes. */
export type Kill = "postgres" | "pooler" | "all";

/** The shard's serving primary with the highest term, and the local cell that runs it. */
export async function findPrimary(
  cluster: LocalCluster,
): Promise<{ rec: PoolerRecord; cell: LocalCluster }> {
  const st = await cluster.status();
  const rec = newestPrimary(st.poolers, (p) => p.serving);
  if (!rec) throw new Error("no serving primary");
  const cell = [cluster, ...cluster.members].find((m) => m.cfg.cell === rec.cell);
  if (!cell) throw new Error(`no local cell ${rec.cell}`);
  return { rec, cell };
}

/** kill -9 of what `what` names, in `cell` (pgctld and the pooler before Postgres). */
export function killPrimary(cell: LocalCluster, what: Kill): void {
  const pg = cell.postgresPid();
  if (what !== "postgres" && !cell.signal("multipooler", "SIGKILL")) {
    throw new Error(`no pooler runs in ${cell.cfg.cell}`);
  }
  if (what === "all" && !cell.signal("pgctld", "SIGKILL")) {
    throw new Error(`no pgctld runs in ${cell.cfg.cell}`);
  }
  if (what !== "pooler") {
    if (!pg) throw new Error(`no Postgres runs in ${cell.cfg.cell}`);
    Deno.kill(pg, "SIGKILL");
  }
}

/** Whether `poolerId` streams from the primary (pg_stat_replication, through `psql`). */
export async function streams(
  psql: (sql: string) => Promise<string>,
  poolerId: string,
): Promise<boolean> {
  const n = await psql(
    `select count(*) from pg_stat_replication
      where application_name = '${poolerId}' and state = 'streaming'`,
  );
  return n.trim() === "1";
}

/**
 * Cuts a cell off (SIGSTOP) or reconnects it (SIGCONT): its processes and every process of its
 * Postgres stop answering, with their connections left open, as behind a network partition.
 */
export async function freezeCell(cell: LocalCluster, signal: "SIGSTOP" | "SIGCONT") {
  const postmaster = cell.postgresPid();
  const pids = [...Object.values(cell.running())];
  if (postmaster) pids.push(postmaster, ...await childPids(postmaster));
  for (const pid of pids) Deno.kill(pid, signal);
}

/**
 * kill -9 of a cell's whole Postgres, the postmaster first and then every process of it (as a
 * crash of its machine leaves it: no backend finishes what it was doing); returns their pids.
 */
export async function crashPostgres(cell: LocalCluster): Promise<number[]> {
  const postmaster = cell.postgresPid();
  if (!postmaster) throw new Error(`no Postgres runs in ${cell.cfg.cell}`);
  const pids = [postmaster, ...await childPids(postmaster)];
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function childPids(parent: number): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) out.push(Number(e.name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
