import assert from "node:assert/strict";
import { E2E, psql, startCluster, type TestCluster } from "../helpers/cluster.ts";

async function pgbench(c: TestCluster, args: string[]): Promise<string> {
  const out = await new Deno.Command("pgbench", {
    args: ["-h", "127.0.0.1", "-p", String(c.port), "-U", "postgres", ...args, "postgres"],
    env: { PGPASSWORD: c.password },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  return text;
}

function processed(text: string): [number, number] {
  const m = /number of transactions actually processed: (\d+)\/(\d+)/.exec(text);
  assert.ok(m, text);
  return [Number(m[1]), Number(m[2])];
}

Deno.test(
  "pgbench runs every built-in script in every mode through the gateway",
  E2E,
  async (t) => {
    const c = await startCluster(1600);
    try {
      await t.step("pgbench -i (COPY) loads scale 1", async () => {
        await pgbench(c, ["-i", "-s", "1", "-q"]);
        const r = await psql(c.port, ["-tAc", "select count(*) from pgbench_accounts"], c.password);
        assert.equal(r.stdout.trim(), "100000");
      });

      for (const mode of ["simple", "extended", "prepared"]) {
        for (const script of ["tpcb-like", "simple-update", "select-only"]) {
          await t.step(`-M ${mode} -b ${script}: every transaction succeeds`, async () => {
            const text = await pgbench(c, [
              "-n",
              "-M",
              mode,
              "-b",
              script,
              "-c",
              "4",
              "-j",
              "2",
              "-t",
              "25",
            ]);
            assert.deepEqual(processed(text), [100, 100]);
            assert.match(text, /number of failed transactions: 0 /);
          });
        }
      }

      await t.step("-C (a new connection per transaction) works", async () => {
        const text = await pgbench(c, [
          "-n",
          "-C",
          "-M",
          "prepared",
          "-b",
          "tpcb-like",
          "-c",
          "4",
          "-t",
          "10",
        ]);
        assert.deepEqual(processed(text), [40, 40]);
      });

      await t.step("pgbench's invariants hold", async () => {
        // -n keeps pgbench from truncating the history between runs. tpcb-like and simple-update
        // both move accounts and log history by the same delta; only tpcb-like moves tellers and
        // branches, by the same delta each. One history row per writing transaction: 3 modes ×
        // 100 of each writing script, plus 40 with -C.
        const r = await psql(c.port, [
          "-tAc",
          `select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history),
                (select sum(tbalance) from pgbench_tellers) = (select sum(bbalance) from pgbench_branches),
                (select count(*) from pgbench_history) = 640`,
        ], c.password);
        assert.equal(r.stdout.trim(), "t|t|t");
      });

      await t.step("a \\startpipeline script works", async () => {
        const script = `${c.dir}/pipeline.sql`;
        await Deno.writeTextFile(
          script,
          [
            "\\set aid random(1, 100000 * :scale)",
            "\\set delta random(-5000, 5000)",
            "\\startpipeline",
            "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;",
            "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, now());",
            "\\endpipeline",
          ].join("\n"),
        );
        const text = await pgbench(c, [
          "-n",
          "-M",
          "extended",
          "-f",
          script,
          "-c",
          "4",
          "-t",
          "25",
        ]);
        assert.deepEqual(processed(text), [100, 100]);
        const r = await psql(c.port, [
          "-tAc",
          "select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)",
        ], c.password);
        assert.equal(r.stdout.trim(), "t");
      });
    } finally {
      await c.stop();
    }
  },
);
