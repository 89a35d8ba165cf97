import assert from "node:assert/strict";
import { E2E, eventually, startCluster } from "../helpers/cluster.ts";

const OFFSET = 2400;

Deno.test(
  "a replica that cannot join leaves the primary serving, says so, and joins once it can",
  E2E,
  async () => {
    // Something else holds the replica cell's Postgres port: its Postgres cannot start.
    const replicaPgPort = 25432 + OFFSET + 1;
    let blocker: Deno.Listener | null = Deno.listen({ hostname: "127.0.0.1", port: replicaPgPort });
    const c = await startCluster(OFFSET, { cells: 2, joinTimeoutMs: 20_000 });
    try {
      // start() came back, with a warning, rather than stopping the serving primary.
      assert.ok(
        c.logs.some((l) => /cell zone2's replica did not join/.test(l)),
        c.logs.join("\n"),
      );
      const r = await c.psql(["-tAc", "select 'serving'"]);
      assert.equal(r.stdout.trim(), "serving", r.stderr);
      const st = await c.cluster.status();
      assert.deepEqual(st.notJoined, ["zone2"]);
      // Once the port is free, the background retry brings the replica in.
      blocker.close();
      blocker = null;
      const joined = await eventually(
        async () => {
          const s = await c.cluster.status();
          return s.notJoined.length === 0 &&
            s.poolers.some((p) => p.id === "zone2-pooler-0" && p.type === "REPLICA");
        },
        180_000,
        1000,
      );
      assert.ok(
        joined,
        `${JSON.stringify((await c.cluster.status()).poolers)}\n${c.logs.join("\n")}`,
      );
    } finally {
      blocker?.close();
      await c.stop();
    }
  },
);
