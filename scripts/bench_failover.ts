/**
 * `deno task bench:failover`: on a 3-cell local cluster (AT_LEAST_N 2) with clients writing
 * through the gateway, kills the primary again and again (its Postgres, its pooler, all of its
 * processes, in turn) and measures the time from each kill to the first write sent after it
 * that succeeds, the client-visible errors, and the acknowledged writes lost. Targets (issue 5):
 * median under 5 s, max under 10 s, none lost. Listens on 127.0.0.1; stopped by PID at the end.
 *
 * Flags: --kills N (default 10), --clients N (writers, default 4).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LocalCluster } from "../src/provisioner/mod.ts";
import { findPrimary, type Kill, killPrimary, streams } from "../tests/helpers/failover.ts";
import { missing, Writers } from "../tests/helpers/writers.ts";
import { eventually, psql } from "../tests/helpers/cluster.ts";

const OFFSET = 3100;
const PASSWORD = "postgres";
const { values: flags } = parseArgs({
  options: {
    kills: { type: "string", default: "10" },
    clients: { type: "string", default: "4" },
  },
});
const kills = Number(flags.kills);
const clients = Number(flags.clients);

/** One query through the gateway, unaligned output; throws psql's error. */
async function query(cluster: LocalCluster, sql: string): Promise<string> {
  const r = await psql(cluster.ports.gatewayPg, ["-tAc", sql], PASSWORD);
  if (r.code !== 0) throw new Error(r.stderr.trim());
  return r.stdout;
}

/** Waits for `fn` to hold; throws naming `what` after `ms`. */
async function until(what: string, ms: number, fn: () => Promise<boolean> | boolean) {
  if (!(await eventually(fn, ms, 100))) throw new Error(`timed out: ${what}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

const dir = await Deno.makeTempDir({ prefix: "multigres_bench_failover_" });
await Deno.chmod(dir, 0o755);
const cluster = new LocalCluster({
  dataDir: dir,
  cluster: "benchfo",
  cell: "zone1",
  portOffset: OFFSET,
  password: PASSWORD,
  logLevel: "info",
  binDir: "",
  gatewayListenAddress: "127.0.0.1",
  poolMode: "transaction",
  tls: false,
  cells: 3,
}, () => {});
const rows: { kill: Kill; primary: string; healMs: number; errors: number; lost: number }[] = [];
// Stopped on every way out: the end, an error, Ctrl-C, SIGTERM.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    console.error(`\n${sig}: stopping the cluster`);
    cluster.stop().finally(() => Deno.exit(130));
  });
}
try {
  console.error(`starting a 3-cell cluster in ${dir} ...`);
  await cluster.start();
  await query(cluster, "create table fo (client int, seq int, primary key (client, seq))");
  const kinds: Kill[] = ["postgres", "pooler", "all"];
  for (let i = 0; i < kills; i++) {
    const what = kinds[i % kinds.length];
    const before = await findPrimary(cluster);
    const writers = new Writers({
      port: cluster.ports.gatewayPg,
      password: PASSWORD,
      clients,
      firstClient: i * clients,
      table: "fo",
      maxMs: 60_000,
    }).start();
    await until("writes before the kill", 20_000, () => writers.report.acked.size >= 100);
    const killedAt = Date.now();
    killPrimary(before.cell, what);
    await until(
      "a new primary",
      30_000,
      async () => (await findPrimary(cluster)).rec.id !== before.rec.id,
    );
    await until("a write after the kill", 30_000, () => writers.healedAfter(killedAt) !== null);
    await new Promise((r) => setTimeout(r, 500));
    const report = await writers.stop();
    const present = (await query(cluster, "select client || ':' || seq from fo")).split("\n");
    const lost = missing(report.acked, present).length;
    const healMs = writers.healedAfter(killedAt)! - killedAt;
    rows.push({ kill: what, primary: before.rec.id, healMs, errors: report.errors.length, lost });
    console.log(
      `kill ${i + 1}/${kills}: ${
        what.padEnd(8)
      } of ${before.rec.id}: first write after ${healMs} ms, ` +
        `${report.errors.length} client errors, ${lost} acknowledged writes lost`,
    );
    // The old primary's processes come back (as a supervisor would restart them) and it must
    // rejoin as a replica before the next kill.
    if (what !== "postgres") await before.cell.start();
    await until(
      `${before.rec.id} rejoining`,
      120_000,
      () => streams((sql) => query(cluster, sql), before.rec.id),
    );
  }
  const heal = rows.map((r) => r.healMs);
  const errors = rows.reduce((n, r) => n + r.errors, 0);
  const lost = rows.reduce((n, r) => n + r.lost, 0);
  console.log("");
  console.log(
    `failover over ${rows.length} kills: median ${median(heal)} ms, max ${Math.max(...heal)} ms ` +
      `(targets: median < 5000, max < 10000); ${lost} acknowledged writes lost; ` +
      `${errors} client-visible errors (${(errors / rows.length).toFixed(1)} per kill, ` +
      `${clients} writers: statements in flight at the kill)`,
  );
} finally {
  await cluster.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
