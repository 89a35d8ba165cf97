/**
 * Failover on a 3-cell cluster (one Postgres per cell, AT_LEAST_N 2): clients keep writing
 * through the gateway while the primary loses its Postgres, then its pooler, then all of its
 * processes. After each, every acknowledged row is on the new primary and the old primary
 * rejoins as a replica. Client-visible errors are reported.
 */
import assert from "node:assert/strict";
import type { LocalCluster } from "../../src/provisioner/mod.ts";
import type { PoolerRecord } from "../../src/shared/grpc/types.ts";
import { E2E, eventually, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { missing, Writers } from "../helpers/writers.ts";

const OFFSET = 2100;

type Kill = "postgres" | "pooler" | "all";

/** The shard's primary (highest term) and the cell that runs it. */
async function primary(c: TestCluster): Promise<{ rec: PoolerRecord; cell: LocalCluster }> {
  const st = await c.cluster.status();
  const rec = st.poolers.filter((p) => p.type === "PRIMARY" && p.serving)
    .sort((a, b) => b.term - a.term)[0];
  assert.ok(rec, "no serving primary");
  const cell = [c.cluster, ...c.cluster.members].find((m) => m.cfg.cell === rec.cell);
  assert.ok(cell, `no local cell ${rec.cell}`);
  return { rec, cell };
}

function kill(cell: LocalCluster, what: Kill): void {
  const pg = cell.postgresPid();
  if (what === "postgres") {
    assert.ok(pg, "the primary's Postgres is not running");
    Deno.kill(pg, "SIGKILL");
    return;
  }
  assert.ok(cell.signal("multipooler", "SIGKILL"));
  if (what === "all") {
    assert.ok(cell.signal("pgctld", "SIGKILL"));
    if (pg) Deno.kill(pg, "SIGKILL");
  }
}

async function rowsPresent(c: TestCluster): Promise<string[]> {
  const r = await c.psql(["-tAc", "select client || ':' || seq from fo"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean);
}

Deno.test("failover: no acknowledged write is lost, the old primary rejoins", E2E, async (t) => {
  const c = await startCluster(OFFSET, { cells: 3 });
  try {
    const setup = await c.psql([
      "-c",
      "create table fo (client int, seq int, primary key (client, seq))",
    ]);
    assert.equal(setup.code, 0, setup.stderr);

    const kinds = ["postgres", "pooler", "all"] as const;
    for (const [i, what] of kinds.entries()) {
      await t.step(
        `kill -9 ${what === "all" ? "all of the primary's processes" : `the primary's ${what}`}`,
        async () => {
          const before = await primary(c);
          const writers = new Writers({
            port: c.port,
            password: c.password,
            clients: 4,
            firstClient: i * 10,
            table: "fo",
            maxMs: 90_000,
          }).start();
          await eventually(() => writers.report.acked.size >= 50);
          const killedAt = Date.now();
          kill(before.cell, what);

          // A new primary takes over and writes through the gateway succeed again.
          const healed = await eventually(
            () => writers.firstAckAfter(killedAt) !== null,
            40_000,
          );
          assert.ok(healed, "no write succeeded after the kill");
          await new Promise((r) => setTimeout(r, 1000));
          const report = await writers.stop();
          const after = await primary(c);
          assert.notEqual(after.rec.id, before.rec.id, "the dead primary is still the primary");
          assert.ok(after.rec.term > before.rec.term, "the new primary has no newer term");

          const lost = missing(report.acked, await rowsPresent(c));
          console.log(
            `[failover ${what}] first write ${
              writers.firstAckAfter(killedAt)! - killedAt
            } ms after the kill; ` +
              `${report.acked.size} acknowledged, ${lost.length} lost, ` +
              `${report.errors.length} client-visible errors` +
              (report.errors.length
                ? ` (${[...new Set(report.errors.map((e) => e.message))].join("; ")})`
                : ""),
          );
          assert.deepEqual(lost, [], "acknowledged rows are missing on the new primary");

          // The old primary comes back (its processes restarted, as a supervisor would) and
          // rejoins as a streaming replica of the new one.
          if (what !== "postgres") await before.cell.start();
          const rejoined = await eventually(async () => {
            const r = await c.psql([
              "-tAc",
              `select count(*) from pg_stat_replication
              where application_name = '${before.rec.id}' and state = 'streaming'`,
            ]);
            return r.stdout.trim() === "1";
          }, 60_000);
          assert.ok(rejoined, `${before.rec.id} did not rejoin as a replica`);
          const st = await c.cluster.status();
          assert.equal(st.poolers.find((p) => p.id === before.rec.id)?.type, "REPLICA");
        },
      );
    }
  } finally {
    await c.stop();
  }
});
