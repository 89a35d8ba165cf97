/**
 * Failover on a 3-cell cluster (one Postgres per cell, AT_LEAST_N 2): clients keep writing
 * through the gateway while the primary loses its Postgres, then its pooler, then all of its
 * processes. After each, every acknowledged row is on the new primary and the old primary
 * rejoins as a replica. Client-visible errors are reported.
 */
import assert from "node:assert/strict";
import { E2E, eventually, psql, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { missing, Writers } from "../helpers/writers.ts";
import { findPrimary, freezeCell, killPrimary, streams } from "../helpers/failover.ts";

const OFFSET = 2100;

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

    await t.step("the replica port serves read-only sessions from replicas", async () => {
      const ins = await c.psql(["-c", "insert into fo values (-1, 1)"]);
      assert.equal(ins.code, 0, ins.stderr);
      const replicaPort = c.cluster.ports.gatewayPgReplica;
      const seen = await eventually(async () => {
        const r = await psql(replicaPort, [
          "-tAc",
          "select pg_is_in_recovery(), count(*) from fo where client = -1",
        ], c.password);
        return r.stdout.trim() === "t|1";
      });
      assert.ok(seen, "a replica session did not see the committed row");
      const w = await psql(replicaPort, ["-c", "insert into fo values (-1, 2)"], c.password);
      assert.notEqual(w.code, 0);
      assert.match(w.stderr, /ERROR:\s+cannot execute INSERT in a read-only transaction/);
    });

    await t.step(
      "an in-place tablespace (Postgres's regression suite makes one) replays on replicas",
      async () => {
        const made = await c.psql([
          "-c",
          "set allow_in_place_tablespaces = on",
          "-c",
          "create tablespace regress_in_place location ''",
          "-c",
          "create table in_place (v int) tablespace regress_in_place",
          "-c",
          "insert into in_place values (42)",
        ]);
        assert.equal(made.code, 0, made.stderr);
        const replicaPort = c.cluster.ports.gatewayPgReplica;
        const seen = await eventually(async () => {
          const r = await psql(replicaPort, ["-tAc", "select v from in_place"], c.password);
          return r.stdout.trim() === "42";
        });
        assert.ok(seen, "the replica did not replay the in-place tablespace");
        const dropped = await c.psql([
          "-c",
          "drop table in_place",
          "-c",
          "drop tablespace regress_in_place",
        ]);
        assert.equal(dropped.code, 0, dropped.stderr);
      },
    );

    await t.step(
      "a replica's cell cut off: commits go on while the policy can be met, then wait",
      async () => {
        const { rec } = await findPrimary(c.cluster);
        const replicas = [c.cluster, ...c.cluster.members].filter((m) => m.cfg.cell !== rec.cell);
        const sql = c.sql({ max: 1 });
        try {
          await freezeCell(replicas[0], "SIGSTOP");
          // One replica of two still acknowledges: AT_LEAST_N 2 is met.
          await sql`insert into fo values (-2, 1)`;
          await freezeCell(replicas[1], "SIGSTOP");
          // No replica answers: the commit waits rather than being acknowledged.
          let done = false;
          const pending = sql`insert into fo values (-2, 2)`.then(() => (done = true));
          await new Promise((r) => setTimeout(r, 3000));
          assert.equal(done, false, "a commit was acknowledged with no replica reachable");
          await freezeCell(replicas[0], "SIGCONT");
          await pending;
          const rows = await sql`select seq from fo where client = -2 order by seq`;
          assert.deepEqual(rows.map((r) => r.seq), [1, 2]);
        } finally {
          for (const m of replicas) await freezeCell(m, "SIGCONT");
          await sql.end();
        }
      },
    );

    const kinds = ["postgres", "pooler", "all"] as const;
    for (const [i, what] of kinds.entries()) {
      await t.step(
        `kill -9 ${what === "all" ? "all of the primary's processes" : `the primary's ${what}`}`,
        async () => {
          const before = await findPrimary(c.cluster);
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
          killPrimary(before.cell, what);

          // A new primary takes over and writes through the gateway succeed again.
          const replaced = await eventually(
            async () => (await findPrimary(c.cluster)).rec.id !== before.rec.id,
            40_000,
          );
          assert.ok(replaced, "no new primary took over");
          const healed = await eventually(
            () => writers.healedAfter(killedAt) !== null,
            40_000,
          );
          assert.ok(healed, "no write succeeded after the kill");
          await new Promise((r) => setTimeout(r, 1000));
          const report = await writers.stop();
          const after = await findPrimary(c.cluster);
          assert.notEqual(after.rec.id, before.rec.id, "the dead primary is still the primary");
          assert.ok(after.rec.term > before.rec.term, "the new primary has no newer term");

          const lost = missing(report.acked, await rowsPresent(c));
          console.log(
            `[failover ${what}] first write ${
              writers.healedAfter(killedAt)! - killedAt
            } ms after the kill; ` +
              `${report.acked.size} acknowledged, ${lost.length} lost, ` +
              `${report.errors.length} client-visible errors` +
              (report.errors.length
                ? ` (${[...new Set(report.errors.map((e) => e.message))].join("; ")})`
                : ""),
          );
          assert.deepEqual(lost, [], "acknowledged rows are missing on the new primary");
          // Only a statement under way at the kill may fail (whether it committed cannot be
          // known): at most one per writer. Writers between statements only wait.
          assert.ok(report.errors.length <= 4, `${report.errors.length} errors for 4 writers`);

          // The old primary comes back (its processes restarted, as a supervisor would) and
          // rejoins as a streaming replica of the new one.
          if (what !== "postgres") await before.cell.start();
          const psql = async (sql: string) => (await c.psql(["-tAc", sql])).stdout;
          const rejoined = await eventually(async () =>
            await streams(psql, before.rec.id) &&
            (await c.cluster.status()).poolers.some((p) =>
              p.id === before.rec.id && p.type === "REPLICA"
            ), 60_000);
          assert.ok(rejoined, `${before.rec.id} did not rejoin as a replica`);
        },
      );
    }

    await t.step("planned switchover under load: no client-visible error", async () => {
      const before = await findPrimary(c.cluster);
      const writers = new Writers({
        port: c.port,
        password: c.password,
        clients: 4,
        firstClient: 100,
        table: "fo",
        maxMs: 90_000,
      }).start();
      await eventually(() => writers.report.acked.size >= 50);
      const started = Date.now();
      const res = await c.cluster.switchover();
      assert.notEqual(res.primary, before.rec.id);
      assert.ok(res.term > before.rec.term);
      const switched = Date.now();
      const healed = await eventually(() => writers.firstAckAfter(switched) !== null, 30_000);
      assert.ok(healed, "no write succeeded after the switchover");
      const report = await writers.stop();
      const lost = missing(report.acked, await rowsPresent(c));
      console.log(
        `[switchover] ${before.rec.id} -> ${res.primary} in ${Date.now() - started} ms; ` +
          `${report.acked.size} acknowledged, ${lost.length} lost, ` +
          `${report.errors.length} client-visible errors`,
      );
      assert.deepEqual(report.errors, [], "clients saw errors during a planned switchover");
      assert.deepEqual(lost, []);
      const psql = async (sql: string) => (await c.psql(["-tAc", sql])).stdout;
      assert.ok(await eventually(() => streams(psql, before.rec.id), 60_000));
    });
  } finally {
    await c.stop();
  }
});
