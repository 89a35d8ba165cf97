import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { E2E, eventually, psql, psqlCommand } from "../helpers/cluster.ts";
import { streams } from "../helpers/failover.ts";
import { alive, LocalCluster } from "../../src/provisioner/mod.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const OFFSET = 1400;

function cli(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
}

Deno.test(
  "the dev cluster: foreground start, status, metrics, Ctrl-C stops it all",
  E2E,
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "multigres_cli_" });
    await Deno.chmod(dir, 0o755);
    const child = cli([
      "cluster",
      "start",
      "--foreground",
      "--data-dir",
      dir,
      "--port-offset",
      String(OFFSET),
    ]).spawn();
    const out: string[] = [];
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        out.push(value);
      }
    })();
    const errText = new Response(child.stderr).text();
    const port = 15432 + OFFSET;
    try {
      await t.step("it prints the psql line once a query works", async () => {
        const up = await eventually(() => out.join("").includes("Press Ctrl-C"), 120_000);
        if (!up) {
          const err = await Promise.race([errText, new Promise((r) => setTimeout(r, 1000, ""))]);
          assert.fail(`never came up: ${out.join("")}\n${err}`);
        }
        assert.ok(
          out.join("").includes(`PGPASSWORD=postgres psql -h 127.0.0.1 -p ${port} -U postgres`),
        );
        const r = await psql(port, ["-tAc", "select 1"], "postgres");
        assert.equal(r.stdout.trim(), "1");
      });

      await t.step(
        "the orch appointed the primary under term 1, recorded in Postgres",
        async () => {
          const r = await psql(port, [
            "-tA",
            "-c",
            "select term, leader_id, cohort from multigres.rule",
            "-c",
            "select d.name, t.name, s.name from multigres.database d join multigres.tablegroup t on t.database = d.name join multigres.shard s on s.database = d.name and s.tablegroup = t.name",
          ], "postgres");
          assert.equal(r.code, 0, r.stderr);
          // The cohort grows as the replicas join (each enters it before it counts toward
          // the durability policy).
          assert.deepEqual(r.stdout.trim().split("\n"), [
            "1|zone1-pooler-0|{zone1-pooler-0,zone2-pooler-0,zone3-pooler-0}",
            "postgres|default|0-inf",
          ]);
        },
      );

      await t.step("multigres cluster status shows every component and the primary", async () => {
        const res = await cli(["cluster", "status", "--data-dir", dir]).output();
        const text = new TextDecoder().decode(res.stdout);
        assert.equal(res.code, 0, text);
        for (const c of ["etcd", "pgctld", "multipooler", "multiorch", "multigateway"]) {
          assert.match(text, new RegExp(`${c}\\s+running \\(pid \\d+\\)`));
        }
        assert.match(
          text,
          /postgres\/default\/0-inf {2}primary: zone1-pooler-0 \(term 1\) {2}policy: AT_LEAST_N 2/,
        );
        // The default is three cells: the other two hold streaming replicas.
        for (const cell of ["zone2", "zone3"]) {
          assert.match(text, new RegExp(`${cell} pgctld\\s+running \\(pid \\d+\\)`));
          assert.match(text, new RegExp(`${cell}-pooler-0\\s+REPLICA .* lag \\d+ B`));
        }
        assert.match(text, /zone1-pooler-0\s+PRIMARY .* lsn [0-9A-F]+\/[0-9A-F]+ /);
        assert.match(text, /Gateways: zone1-gateway-0/);
      });

      await t.step(
        "a commit through the gateway streams to both replicas, which stay read-only",
        async () => {
          const w = await psql(port, [
            "-tAc",
            "create table replicated (v text); insert into replicated values ('hello')",
          ], "postgres");
          assert.equal(w.code, 0, w.stderr);
          for (const replicaPort of [25433 + OFFSET, 25434 + OFFSET]) {
            const arrived = await eventually(async () => {
              const r = await psql(replicaPort, ["-tAc", "select v from replicated"], "postgres");
              return r.stdout.trim() === "hello";
            }, 30_000);
            assert.ok(arrived, `the row did not reach the replica on port ${replicaPort}`);
            const ro = await psql(
              replicaPort,
              ["-tAc", "insert into replicated values ('x')"],
              "postgres",
            );
            assert.match(ro.stderr, /cannot execute INSERT in a read-only transaction/);
          }
          const names = await psql(port, [
            "-tAc",
            "select string_agg(application_name || ' ' || state, ', ' order by application_name) from pg_stat_replication",
          ], "postgres");
          assert.equal(names.stdout.trim(), "zone2-pooler-0 streaming, zone3-pooler-0 streaming");
          // AT_LEAST_N 2 (the default with replicas): a commit waits for one of the two replicas.
          const sync = await eventually(async () => {
            const r = await psql(port, [
              "-tAc",
              "select current_setting('synchronous_standby_names') || ' / ' || string_agg(sync_state, ',') from pg_stat_replication",
            ], "postgres");
            return r.stdout.trim() === 'ANY 1 ("zone2-pooler-0", "zone3-pooler-0") / quorum,quorum';
          }, 30_000);
          assert.ok(sync, "synchronous_standby_names was not set to the policy");
        },
      );

      await t.step("with no replica up, a commit waits instead of being acknowledged", async () => {
        const cluster = LocalCluster.load(dir, () => {});
        for (const m of cluster.members) await m.stop();
        const commit = psqlCommand(
          port,
          ["-tAc", "insert into replicated values ('waited')"],
          "postgres",
        )
          .spawn();
        let finished = false;
        const result = commit.output().then((o) => {
          finished = true;
          return o;
        });
        try {
          await new Promise((r) => setTimeout(r, 3000));
          assert.equal(finished, false, "the commit was acknowledged with no replica to hold it");
          // One replica back is enough for AT_LEAST_N 2: the waiting commit completes.
          await cluster.members[0].start();
          await cluster.members[0].waitForReplica();
          const out = await result;
          assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
        } finally {
          if (!finished) commit.kill("SIGKILL");
        }
        await cluster.members[1].start();
        await cluster.members[1].waitForReplica();
        const r = await psql(port, ["-tAc", "select count(*) from replicated"], "postgres");
        assert.equal(r.stdout.trim(), "2");
      });

      await t.step("etcd frozen for 10 s: new sessions and commits keep working", async () => {
        const etcd = LocalCluster.load(dir, () => {}).running().etcd!;
        Deno.kill(etcd, "SIGSTOP");
        try {
          const started = Date.now();
          for (let i = 0; Date.now() - started < 10_000; i++) {
            const r = await psql(
              port,
              ["-tAc", `insert into replicated values ('etcd-down ${i}')`],
              "postgres",
            );
            assert.equal(r.code, 0, `insert ${i} with etcd frozen: ${r.stderr}`);
            await new Promise((res) => setTimeout(res, 500));
          }
        } finally {
          Deno.kill(etcd, "SIGCONT");
        }
      });

      await t.step("every component serves /live, /ready and Prometheus /metrics", async () => {
        for (const http of [15100, 15200, 15300, 15400].map((p) => p + OFFSET)) {
          assert.equal((await fetch(`http://127.0.0.1:${http}/live`)).status, 200);
          // /ready follows the component's own probes, which may trail a fresh start a little.
          const ready = await eventually(async () => {
            const res = await fetch(`http://127.0.0.1:${http}/ready`);
            await res.body?.cancel();
            return res.status === 200;
          });
          assert.ok(ready, `not ready: ${http}`);
        }
        const held = await psql(port, ["-tAc", "select 1"], "postgres");
        assert.equal(held.code, 0);
        const metrics = await (await fetch(`http://127.0.0.1:${15100 + OFFSET}/metrics`)).text();
        assert.match(metrics, /^# TYPE multigateway_sessions gauge$/m);
      });

      await t.step(
        "kill -9 of the primary's Postgres: a replica takes over, the old primary rejoins",
        async () => {
          const cluster = LocalCluster.load(dir, () => {});
          const pm = Number(
            (await Deno.readTextFile(`${cluster.pgDataDir}/postmaster.pid`)).split("\n")[0],
          );
          Deno.kill(pm, "SIGKILL");
          const back = await eventually(async () => {
            const r = await psql(port, ["-tAc", "select 'back'"], "postgres");
            return r.stdout.trim() === "back";
          }, 60_000);
          assert.ok(back, "queries did not work again after Postgres was killed");
          const log = await Deno.readTextFile(cluster.logPath("pgctld"));
          assert.match(log, /Postgres exited unexpectedly/);
          // The old primary comes back as a streaming replica of the new one.
          const sql = async (q: string) => (await psql(port, ["-tAc", q], "postgres")).stdout;
          const rejoined = await eventually(() => streams(sql, "zone1-pooler-0"), 60_000);
          assert.ok(rejoined, "zone1's Postgres did not rejoin as a replica");
          // A primary of a newer term serves (status is read from the topo, which trails the
          // election a little).
          const promoted = await eventually(async () => {
            const st = await cluster.status();
            return st.poolers.some((p) => p.type === "PRIMARY" && p.term >= 2 && p.serving);
          }, 30_000);
          assert.ok(promoted, JSON.stringify((await cluster.status()).poolers));
        },
      );

      await t.step("Ctrl-C stops every process", async () => {
        const cluster = LocalCluster.load(dir, () => {});
        const pids = Object.values(cluster.running());
        assert.equal(
          pids.length,
          6,
          "etcd, pgctld, pooler, orch, gateway and the shard provisioner",
        );
        const cells = [cluster, ...cluster.members];
        const memberPids = cluster.members.flatMap((m) => Object.values(m.running()));
        assert.equal(
          memberPids.length,
          6,
          "pgctld, pooler and orch in each of the two other cells",
        );
        const postmasters = await Promise.all(
          cells.map(async (c) =>
            Number((await Deno.readTextFile(`${c.pgDataDir}/postmaster.pid`)).split("\n")[0])
          ),
        );
        child.kill("SIGINT");
        const status = await child.status;
        assert.equal(status.code, 0, await errText);
        for (const pid of [...pids, ...memberPids, ...postmasters]) {
          assert.ok(!alive(pid), `pid ${pid} still runs`);
        }
      });
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await pump.catch(() => {});
      await LocalCluster.load(dir, () => {}).stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
