import assert from "node:assert/strict";
import { Topo } from "../../src/shared/topo/mod.ts";
import { E2E, eventually, startCluster, type TestCluster } from "../helpers/cluster.ts";

async function poolerIds(c: TestCluster): Promise<string[]> {
  const topo = await Topo.connect({
    globalAddress: c.cluster.topoAddress,
    cluster: c.cluster.cfg.cluster,
    cell: c.cluster.cfg.cell,
    waitMs: 2000,
  });
  try {
    return (await topo.listPoolers()).map((p) => p.id);
  } finally {
    topo.close();
  }
}

async function count(c: TestCluster): Promise<string> {
  const r = await c.psql(["-tAc", "select count(*) from events"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

Deno.test(
  "the cluster survives a killed pooler, an etcd restart and a full restart",
  E2E,
  async (t) => {
    const c = await startCluster(1300);
    try {
      const setup = await c.psql([
        "-c",
        "create table events (id serial primary key, what text)",
        "-c",
        "insert into events (what) select 'e' || g from generate_series(1, 50) g",
      ]);
      assert.equal(setup.code, 0, setup.stderr);

      await t.step(
        "kill -9 the pooler: sessions wait for it, then carry on where they were",
        async () => {
          const held = await c.client();
          assert.equal((await held.query("select 1 as one")).rows[0].one, 1);
          const pid = c.cluster.running().multipooler!;
          Deno.kill(pid, "SIGKILL");
          // The registration is leased: it disappears once the lease runs out.
          const gone = await eventually(async () =>
            !(await poolerIds(c)).includes("zone1-pooler-0")
          );
          assert.ok(gone, "the dead pooler stayed registered");
          // An idle session and a new client wait (the failover window) instead of failing.
          const waiting = held.query("select count(*)::int as n from events");
          const newcomer = c.psql(["-tAc", "select count(*) from events"]);
          await c.cluster.start(); // starts what is not running: the pooler
          assert.equal((await waiting).rows[0].n, 50);
          const r = await newcomer;
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.trim(), "50");
          await held.end();
        },
      );

      await t.step("etcd down and back: the cluster keeps serving", async () => {
        const held = await c.client();
        const etcd = c.cluster.running().etcd!;
        Deno.kill(etcd, "SIGKILL");
        await eventually(() => !c.cluster.running().etcd);
        // Both an open session and new connections keep working without the topo.
        const r1 = await held.query(
          "insert into events (what) values ('during outage') returning id",
        );
        assert.equal(r1.rowCount, 1);
        assert.equal(await count(c), "51");
        await new Promise((r) => setTimeout(r, 3000));
        assert.equal(await count(c), "51");
        await c.cluster.start(); // etcd again, same data directory
        const back = await eventually(async () => (await poolerIds(c)).includes("zone1-pooler-0"));
        assert.ok(back, "the pooler did not register again after etcd came back");
        const r2 = await held.query("select count(*)::int as n from events");
        assert.equal(r2.rows[0].n, 51);
        assert.equal(await count(c), "51");
        await held.end();
      });

      await t.step("stop and start the whole cluster: the data is still there", async () => {
        await c.cluster.stop();
        assert.deepEqual(c.cluster.running(), {});
        await c.cluster.start();
        assert.equal(await count(c), "51");
        const st = await c.cluster.status();
        const primary = st.poolers.find((p) => p.type === "PRIMARY");
        assert.equal(primary?.id, "zone1-pooler-0");
        assert.equal(primary?.term, 1, "a restart must not invent a new term");
      });
    } finally {
      await c.stop();
    }
  },
);
