/**
 * `deno task bench` stopped by a signal stops everything it started: its cluster (etcd, pgctld,
 * Postgres, pooler, orch, gateway) and PgBouncer.
 */
import assert from "node:assert/strict";
import { E2E, eventually } from "../helpers/cluster.ts";
import { portAnswers } from "../helpers/net.ts";

/** The bench's ports (scripts/bench.ts runs at port offset 3000). */
const PORTS = { gateway: 15432 + 3000, postgres: 25432 + 3000, etcd: 2379 + 3000 };

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`deno task bench stopped by ${signal} stops its cluster`, E2E, async () => {
    const bench = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/bench.ts", "--clients", "1", "--rounds", "1", "--skip-memory"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const status = bench.status.finally(() => (exited = true));
    const stderr = new Response(bench.stderr).text();
    try {
      // Once its gateway answers, the whole cluster is up (PgBouncer starts right after).
      const up = await eventually(() => exited || portAnswers(PORTS.gateway), 120_000, 250);
      if (!up || exited) assert.fail(`the bench did not start its cluster:\n${await stderr}`);
      bench.kill(signal);
      const { code } = await status;
      assert.equal(code, 130, await stderr);
      for (const [name, port] of Object.entries(PORTS)) {
        assert.equal(await portAnswers(port), false, `${name} still answers on ${port}`);
      }
      const pgrep = await new Deno.Command("pgrep", { args: ["-f", "multigres_bench_"] }).output();
      assert.equal(new TextDecoder().decode(pgrep.stdout).trim(), "", "processes left behind");
    } finally {
      if (!exited) bench.kill("SIGKILL");
      await status.catch(() => {});
    }
  });
}
