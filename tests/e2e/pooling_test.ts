import assert from "node:assert/strict";
import type pg from "pg";
import { E2E, eventually, psql, startCluster, type TestCluster } from "../helpers/cluster.ts";

async function poolerStatus(
  c: TestCluster,
): Promise<{ backendsInUse: number; backendsIdle: number }> {
  const res = await fetch(`http://127.0.0.1:${c.cluster.ports.poolerHttp}/status`);
  return await res.json();
}

Deno.test(
  "transaction pooling: far fewer backends, and no session sees another's state",
  E2E,
  async (t) => {
    const c = await startCluster(1750, { poolMode: "transaction" });
    const direct = await c.client({ direct: true });
    try {
      await direct.query("create table counters (id int primary key, n int not null)");
      await direct.query("insert into counters select g, 0 from generate_series(1, 200) g");

      await t.step(
        "200 concurrent sessions of short transactions share a few backends",
        async () => {
          const clients: pg.Client[] = [];
          for (let i = 0; i < 200; i++) clients.push(await c.client());
          let maxBackends = 0;
          let sampling = true;
          const sampler = (async () => {
            while (sampling) {
              const r = await direct.query(
                "select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()",
              );
              maxBackends = Math.max(maxBackends, r.rows[0].n);
              await new Promise((res) => setTimeout(res, 20));
            }
          })();
          try {
            await Promise.all(clients.map(async (db, i) => {
              for (let k = 0; k < 10; k++) {
                await db.query("begin");
                await db.query("update counters set n = n + 1 where id = $1", [i + 1]);
                await db.query("commit");
              }
            }));
          } finally {
            sampling = false;
            await sampler;
            await Promise.all(clients.map((db) => db.end()));
          }
          const r = await direct.query("select sum(n)::int as total, min(n) as lo from counters");
          assert.deepEqual(r.rows[0], { total: 2000, lo: 10 });
          console.log(`200 sessions, 2000 transactions: at most ${maxBackends} Postgres backends`);
          // The pool's capacity (50 by default) plus the pooler's own admin connection: with a
          // backend per session the 200 sessions would have waited in vain for one.
          assert.ok(maxBackends <= 51, `${maxBackends} backends for 200 sessions`);
        },
      );

      await t.step("settings stay with their session", async () => {
        const a = await c.client();
        const b = await c.client();
        try {
          await a.query("set work_mem = '11MB'");
          await a.query("set application_name = 'session_a'");
          for (let i = 0; i < 20; i++) {
            const [ra, rb] = await Promise.all([
              a.query(
                "select current_setting('work_mem') as w, current_setting('application_name') as n",
              ),
              b.query(
                "select current_setting('work_mem') as w, current_setting('application_name') as n",
              ),
            ]);
            assert.deepEqual(ra.rows[0], { w: "11MB", n: "session_a" });
            assert.deepEqual(rb.rows[0], { w: "4MB", n: "" });
          }
          await a.query("reset work_mem");
          assert.equal((await a.query("show work_mem")).rows[0].work_mem, "4MB");
        } finally {
          await a.end();
          await b.end();
        }
      });

      await t.step("a temp table stays with its session, which keeps its backend", async () => {
        const a = await c.client();
        const b = await c.client();
        try {
          await a.query("create temp table mine (x int)");
          await a.query("insert into mine values (1)");
          for (let i = 0; i < 10; i++) {
            assert.equal((await a.query("select count(*)::int as n from mine")).rows[0].n, 1);
            await assert.rejects(b.query("select * from mine"), (e: Error & { code?: string }) => {
              assert.equal(e.code, "42P01");
              return true;
            });
          }
          // DISCARD ALL drops the temp table: the session no longer needs its own backend.
          await a.query("discard all");
          const freed = await eventually(async () => (await poolerStatus(c)).backendsInUse === 0);
          assert.ok(freed, "the session kept its backend after DISCARD ALL");
        } finally {
          await a.end();
          await b.end();
        }
      });

      await t.step("named prepared statements survive moving between backends", async () => {
        const a = await c.client();
        const churn: pg.Client[] = [];
        for (let i = 0; i < 8; i++) churn.push(await c.client());
        try {
          // The backend's own pid: a quoted name is not rewritten to the session's pid.
          const q = { name: "who", text: 'select $1::int as v, "pg_backend_pid"() as pid' };
          const pids = new Set<number>();
          for (let i = 0; i < 15; i++) {
            // Others take backends meanwhile, so `a` lands on different ones.
            await Promise.all(churn.map((x) => x.query("select pg_sleep(0.01)")));
            const r = await a.query({ ...q, values: [i] });
            assert.equal(r.rows[0].v, i);
            pids.add(r.rows[0].pid);
          }
          assert.ok(pids.size > 1, "the session always had the same backend: nothing was tested");
          // Another session using the same statement name gets its own statement.
          const other = churn[0];
          const r = await other.query({ name: "who", text: "select 'other' as v", values: [] });
          assert.equal(r.rows[0].v, "other");
          assert.equal((await a.query({ ...q, values: [99] })).rows[0].v, 99);
        } finally {
          await a.end();
          await Promise.all(churn.map((x) => x.end()));
        }
      });

      await t.step(
        "SQL PREPARE / EXECUTE / DEALLOCATE work (the session keeps its backend)",
        async () => {
          const a = await c.client();
          try {
            await a.query("prepare twice(int) as select $1 * 2 as v");
            for (let i = 0; i < 5; i++) {
              assert.equal((await a.query(`execute twice(${i})`)).rows[0].v, i * 2);
            }
            await a.query("deallocate twice");
            await assert.rejects(
              a.query("execute twice(1)"),
              /prepared statement "twice" does not exist/,
            );
          } finally {
            await a.end();
          }
        },
      );

      await t.step("a failed transaction is rolled back before the backend is shared", async () => {
        const a = await c.client();
        const b = await c.client();
        try {
          await a.query("begin");
          await a.query("insert into counters values (1000, 1)");
          await assert.rejects(a.query("select 1/0"));
          await assert.rejects(a.query("select 1"), /current transaction is aborted/);
          await a.query("rollback");
          const r = await b.query("select count(*)::int as n from counters where id = 1000");
          assert.equal(r.rows[0].n, 0);
          assert.equal((await a.query("select 'fine' as v")).rows[0].v, "fine");
        } finally {
          await a.end();
          await b.end();
        }
      });

      await t.step(
        "a COPY that fails in a block leaves the block to end as Postgres ends it",
        async () => {
          // The regression suite's copy2 (COPY … FREEZE refused after a savepoint), through the
          // gateway and directly: the same output, and the COMMIT answered.
          await direct.query("create table vistest (a text)");
          const file = await Deno.makeTempFile({ suffix: ".sql" });
          try {
            await Deno.writeTextFile(
              file,
              "begin;\ntruncate vistest;\nsavepoint s1;\ncopy vistest from stdin csv freeze;\np\n\\.\n" +
                "commit;\nselect 'end' as x;\n",
            );
            const via = await c.psql(["-f", file]);
            const own = await psql(c.directPort, ["-f", file], c.password);
            assert.match(via.stdout, /end/);
            assert.equal(via.stdout, own.stdout);
            assert.equal(
              via.stderr.replaceAll(file, "F").replace(/\d+/g, "N"),
              own.stderr.replaceAll(file, "F").replace(/\d+/g, "N"),
            );
          } finally {
            await Deno.remove(file);
          }
        },
      );

      await t.step(
        "a prepared transaction belongs to no session: another one commits or rolls it back",
        async () => {
          const a = await c.client();
          const b = await c.client();
          try {
            for (const [gid, id] of [["pool-2pc-commit", 2001], ["pool-2pc-rollback", 2002]]) {
              await a.query("begin");
              await a.query("insert into counters values ($1, 7)", [id]);
              await a.query(`prepare transaction '${gid}'`);
              // Out of its transaction, the session shares backends again; the prepared
              // transaction waits in Postgres, seen by every session, directly too.
              assert.equal((await a.query("select 'free' as v")).rows[0].v, "free");
              const seen = await direct.query(
                "select gid from pg_prepared_xacts where gid = $1",
                [gid],
              );
              assert.equal(seen.rowCount, 1);
            }
            await b.query("commit prepared 'pool-2pc-commit'");
            await b.query("rollback prepared 'pool-2pc-rollback'");
            const r = await direct.query(
              "select id from counters where id in (2001, 2002) order by id",
            );
            assert.deepEqual(r.rows, [{ id: 2001 }]);
            // Postgres's own answer to a second COMMIT PREPARED, through the gateway and directly.
            const again = "commit prepared 'pool-2pc-commit'";
            const viaGateway = await b.query(again).catch((e: pg.DatabaseError) => e);
            const viaPostgres = await direct.query(again).catch((e: pg.DatabaseError) => e);
            assert.equal(viaGateway.code, "42704");
            assert.equal(viaGateway.code, viaPostgres.code);
            assert.equal(viaGateway.message, viaPostgres.message);
            const left = await direct.query("select count(*)::int as n from pg_prepared_xacts");
            assert.equal(left.rows[0].n, 0);
          } finally {
            await a.end();
            await b.end();
          }
        },
      );
    } finally {
      await direct.end();
      await c.stop();
    }
  },
);
