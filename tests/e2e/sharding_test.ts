// Sharding, part 1, end to end (ports 22600+): a database, a tablegroup of two shards brought up
// by the provisioner from the hidden schema, a sharded table, routed and scattered statements in
// both protocols, DDL fanned out (every shard or none), and what is refused. The oracle is the
// same data in an unsharded table of the same database.

import assert from "node:assert/strict";
import type pg from "pg";
import { shardPorts } from "../../src/provisioner/local_cluster.ts";
import { inRangeSql, keyspaceIdSql, parseKeyRange } from "../../src/shared/keyspace/mod.ts";
import {
  E2E,
  errorOf,
  eventually,
  startCluster,
  type TestCluster,
  topoPoolers,
} from "../helpers/cluster.ts";

const OFFSET = 2600;
const ROWS = 10_000;

function rowsOf(r: pg.QueryResult): string[] {
  return r.rows.map((row: unknown) => JSON.stringify(row)).sort();
}

Deno.test({
  name: "sharding: databases, tablegroups and shards are real",
  ...E2E,
  async fn(t) {
    const c: TestCluster = await startCluster(OFFSET, { cells: 1 });
    const opened: pg.Client[] = [];
    const client = async (opts: Parameters<TestCluster["client"]>[0] = {}) => {
      const cl = await c.client(opts);
      // A shard's Postgres stopped by DROP TABLEGROUP ends its idle connections with a FATAL
      // notice; the queries of a test still fail on their own.
      cl.on("error", () => {});
      opened.push(cl);
      return cl;
    };
    try {
      const admin = await client();
      const direct = await client({ direct: true });

      await t.step(
        "CREATE DATABASE is recorded in the hidden schema, a failed one is not",
        async () => {
          await admin.query("create database shop");
          const recorded = await direct.query(
            "select name from multigres.database where name = 'shop'",
          );
          assert.equal(recorded.rowCount, 1);
          const tgs = await direct.query(
            "select tablegroup, name from multigres.shard where database = 'shop'",
          );
          assert.deepEqual(tgs.rows, [{ tablegroup: "default", name: "0-inf" }]);
          // The same statement again: Postgres's own error, and the record stays.
          const again = await errorOf(admin.query("create database shop"));
          const againDirect = await errorOf(direct.query("create database shop"));
          assert.deepEqual(again, againDirect);
          assert.equal(again?.code, "42P04");
          assert.equal(
            (await direct.query("select 1 from multigres.database where name = 'shop'")).rowCount,
            1,
          );
          // A CREATE DATABASE that Postgres refuses leaves no record behind.
          const bad = await errorOf(admin.query("create database nope template no_such_template"));
          assert.equal(bad?.code, "3D000");
          assert.equal(
            (await direct.query("select 1 from multigres.database where name = 'nope'")).rowCount,
            0,
          );
        },
      );

      const shop = await client({ database: "shop" });

      await t.step("CREATE TABLEGROUP … SHARDS 2 returns once both shards serve", async () => {
        const bad = await errorOf(shop.query("create tablegroup bad_tg shards ('0-4', '8-inf')"));
        assert.equal(bad?.code, "22023", String(bad?.message));
        await shop.query("create tablegroup orders_tg shards 2");
        const shards = await direct.query(
          `select name, key_range_start, key_range_end from multigres.shard
            where database = 'shop' and tablegroup = 'orders_tg' order by name`,
        );
        assert.deepEqual(shards.rows, [
          { name: "0-8", key_range_start: "0", key_range_end: "8" },
          { name: "8-inf", key_range_start: "8", key_range_end: "" },
        ]);
        const dup = await errorOf(shop.query("create tablegroup orders_tg shards 2"));
        assert.equal(dup?.code, "42710");
      });

      await t.step(
        "CREATE TABLE … IN creates the table on every shard and records it",
        async () => {
          const noKey = await errorOf(
            shop.query(
              "create table t_bad (id bigint, code text unique) in orders_tg shard by (id)",
            ),
          );
          assert.equal(noKey?.code, "0A000", String(noKey?.message));
          const noGroup = await errorOf(
            shop.query("create table t_none (id bigint primary key) in no_such_tg"),
          );
          assert.equal(noGroup?.code, "42704", String(noGroup?.message));
          await shop.query(
            "create table orders (id bigint primary key, customer text, total numeric) in orders_tg",
          );
          const rec = await direct.query(
            `select table_name, tablegroup, sharding_column, sharding_type
             from multigres.tablegroup_table where database = 'shop'`,
          );
          assert.deepEqual(rec.rows, [{
            table_name: "public.orders",
            tablegroup: "orders_tg",
            sharding_column: "id",
            sharding_type: "int8",
          }]);
          // The unsharded copy: the oracle.
          await shop.query(
            "create table orders_plain (id bigint primary key, customer text, total numeric)",
          );
        },
      );

      await t.step(`${ROWS} rows inserted one by one land on their shards`, async () => {
        for (let i = 1; i <= ROWS; i++) {
          const customer = `c${i % 97} ü`;
          const total = `${i}.${i % 100}`;
          if (i % 2) {
            await shop.query(
              `insert into orders values (${i}, '${customer}', ${total})`,
            );
          } else {
            await shop.query("insert into orders (id, customer, total) values ($1, $2, $3)", [
              i,
              customer,
              total,
            ]);
          }
        }
        await shop.query(
          "insert into orders_plain select i, 'c' || (i % 97) || ' ü', (i || '.' || (i % 100))::numeric from generate_series(1, $1::int) i",
          [ROWS],
        );
        // Poolers reach Postgres over its Unix socket, where inet_server_port() is NULL (as for
        // psql on the socket): the server's own port setting says which server answered.
        const ports = await shop.query("select current_setting('port')::int as port from orders");
        assert.equal(ports.rowCount, ROWS);
        const counts = new Map<number, number>();
        for (const r of ports.rows) counts.set(r.port, (counts.get(r.port) ?? 0) + 1);
        assert.equal(counts.size, 2, `rows come from two servers: ${[...counts.keys()]}`);
        for (const n of counts.values()) assert.ok(n > ROWS / 4, `a fair share: ${n}`);
      });

      await t.step(
        "every row's keyspace id lies in its shard's range (Postgres's own hash)",
        async () => {
          for (const [slot, shard] of [[1, "0-8"], [2, "8-inf"]] as const) {
            const sh = await client({
              port: shardPorts(OFFSET, slot, 0).postgres,
              database: "shop",
              direct: true,
            });
            const kid = keyspaceIdSql("int8", "id");
            const r = await sh.query(
              `select count(*)::int as n, count(*) filter (where not (${
                inRangeSql(kid, parseKeyRange(shard))
              }))::int as outside from orders`,
            );
            assert.ok(r.rows[0].n > 0, `shard ${shard} holds rows`);
            assert.equal(r.rows[0].outside, 0, `shard ${shard}: every row in its range`);
          }
        },
      );

      await t.step("the same answers as the unsharded table, in both protocols", async () => {
        for (const id of [1, 2, 77, 5000, 9999, 10_001]) {
          const a = await shop.query(`select * from orders where id = ${id}`);
          const b = await shop.query(`select * from orders_plain where id = ${id}`);
          assert.deepEqual(rowsOf(a), rowsOf(b), `id ${id}`);
          const pa = await shop.query("select * from orders where id = $1", [id]);
          assert.deepEqual(rowsOf(pa), rowsOf(b), `id $1 = ${id}`);
          const named = await shop.query({
            name: "by_id",
            text: "select id, customer from orders where id = $1",
            values: [id],
          });
          const plain = await shop.query(`select id, customer from orders_plain where id = ${id}`);
          assert.deepEqual(rowsOf(named), rowsOf(plain), `prepared by_id ${id}`);
        }
        const inList = await shop.query("select * from orders where id in (3, 4, 5, 6000)");
        const inPlain = await shop.query("select * from orders_plain where id in (3, 4, 5, 6000)");
        assert.deepEqual(rowsOf(inList), rowsOf(inPlain));
        const all = await shop.query("select * from orders where customer = 'c5 ü'");
        const allPlain = await shop.query("select * from orders_plain where customer = 'c5 ü'");
        assert.deepEqual(rowsOf(all), rowsOf(allPlain));
        assert.equal(all.rowCount, allPlain.rowCount);
        // postgres.js: everything in the extended protocol.
        const sql = c.sql({ database: "shop" });
        try {
          const x = await sql`select id, total::text from orders where id = ${42}`;
          assert.deepEqual([...x], [{ id: "42", total: "42.42" }]);
          const u = await sql`update orders set customer = 'moved' where id = ${42}`;
          assert.equal(u.count, 1);
          await sql`update orders_plain set customer = 'moved' where id = ${42}`;
        } finally {
          await sql.end();
        }
      });

      await t.step(
        "merged answers: ORDER BY/LIMIT, aggregates, GROUP BY, DISTINCT as the unsharded copy",
        async () => {
          const same = async (q: string, values?: unknown[]) => {
            const a = await shop.query(q.replaceAll("$T", "orders"), values);
            const b = await shop.query(q.replaceAll("$T", "orders_plain"), values);
            assert.deepEqual(a.rows, b.rows, q);
            assert.deepEqual(
              a.fields.map((
                f: pg.FieldDef,
              ) => [f.name, f.dataTypeID, f.dataTypeModifier, f.format]),
              b.fields.map((
                f: pg.FieldDef,
              ) => [f.name, f.dataTypeID, f.dataTypeModifier, f.format]),
              `${q}: columns`,
            );
            assert.equal(a.command, b.command, q);
            assert.equal(a.rowCount, b.rowCount, q);
            return a;
          };
          // npm:pg without values: the simple protocol; with values: the extended one.
          const top = await same(
            "select id, customer, total from $T order by total desc, id limit 10 offset 3",
          );
          assert.equal(top.rowCount, 10);
          await same("select * from $T order by customer, id desc limit 25");
          await same("select id, total from $T order by total desc, id limit $1 offset $2", [7, 2]);
          await same(
            "select count(*), sum(total), avg(total), min(customer), max(id), count(distinct id) from $T",
          );
          await same("select avg(id), sum(id), bool_or(total > 9000) from $T where id > $1", [42]);
          await same(
            "select customer, count(*), sum(total), avg(total) from $T group by customer having count(*) > 100 order by sum(total) desc, customer limit 5",
          );
          await same(
            "select customer, max(total) from $T group by 1 having max(total) > $1 order by 1",
            [9900],
          );
          await same("select distinct customer from $T order by customer limit $1", [4]);
          await same("select distinct on (customer) customer, id from $T order by customer, id");
          // A named prepared statement: prepared on each shard as the rewritten statement.
          for (const n of [3, 5]) {
            const named = await shop.query({
              name: "top_totals",
              text: "select id, total from orders order by total desc, id limit $1",
              values: [n],
            });
            const plain = await shop.query(
              `select id, total from orders_plain order by total desc, id limit ${n}`,
            );
            assert.deepEqual(named.rows, plain.rows, `prepared top_totals ${n}`);
          }
          // postgres.js: everything extended, values typed by the server.
          const sql = c.sql({ database: "shop" });
          try {
            const rows = await sql`select customer, count(*) as n, avg(total) as a
              from orders group by customer order by customer limit ${3}`;
            const plain = await sql`select customer, count(*) as n, avg(total) as a
              from orders_plain group by customer order by customer limit ${3}`;
            assert.deepEqual([...rows], [...plain]);
            assert.equal(rows.length, 3);
          } finally {
            await sql.end();
          }
          // UNION ALL of parts that each read the sharded table: rows concatenated.
          const union =
            "select id, total from $T where id < 5 union all select id, total from $T where customer = 'c7 ü'";
          assert.deepEqual(
            rowsOf(await shop.query(union.replaceAll("$T", "orders"))),
            rowsOf(await shop.query(union.replaceAll("$T", "orders_plain"))),
          );
          // What cannot be merged exactly is refused, never answered wrongly.
          for (
            const q of [
              "select count(distinct customer) from orders",
              "select sum(total) + 1 from orders",
              'select customer from orders order by customer collate "en-x-icu"',
              "select id, row_number() over () from orders",
            ]
          ) {
            const e = await errorOf(shop.query(q));
            assert.equal(e?.code, "0A000", `${q}: ${e?.message}`);
          }
          // A scattered write runs on every shard, atomically (two-phase commit), its row
          // counts summed.
          const w = await shop.query("update orders set total = total where customer = 'x'");
          const wPlain = await shop.query(
            "update orders_plain set total = total where customer = 'x'",
          );
          assert.equal(w.rowCount, wPlain.rowCount);
          // A keyed one goes to its shard.
          const k = await shop.query("delete from orders where id = 10000");
          assert.equal(k.rowCount, 1);
          await shop.query("delete from orders_plain where id = 10000");
          await same("select count(*), sum(total) from $T");
        },
      );

      await t.step("a transaction may span shards; an error fails the whole block", async () => {
        // Keys on either shard: find one of each.
        const ports = await shop.query(
          "select id, current_setting('port')::int as port from orders where id in (1, 2, 3, 4, 5, 6, 7, 8)",
        );
        const byPort = new Map<number, number>();
        for (const r of ports.rows) byPort.set(r.port, Number(r.id));
        const [a, b] = [...byPort.values()];
        assert.ok(a && b, "keys on two shards");
        await shop.query("begin");
        await shop.query(`update orders set customer = 'tx' where id = ${a}`);
        // A second shard joins the block (committed with two-phase commit: two_phase_test).
        await shop.query(`update orders set customer = 'tx' where id = ${b}`);
        const failing = await errorOf(shop.query(`select 1/0 from orders where id = ${b}`));
        assert.equal(failing?.code, "22012");
        const aborted = await errorOf(shop.query(`select * from orders where id = ${a}`));
        assert.equal(aborted?.code, "25P02");
        await shop.query("rollback");
        // Nothing of it committed, and the session goes on.
        const r = await shop.query(`select customer from orders where id in (${a}, ${b})`);
        assert.ok(r.rows.every((x: { customer: string }) => x.customer !== "tx"));
        await shop.query("begin");
        await shop.query(`update orders set customer = 'tx1' where id = ${a}`);
        await shop.query("commit");
        const after = await shop.query(`select customer from orders where id = ${a}`);
        assert.equal(after.rows[0].customer, "tx1");
        // A second BEGIN only warns (as in Postgres): the block keeps its shards.
        await shop.query("begin");
        await shop.query(`update orders set customer = 'tx2' where id = ${a}`);
        await shop.query("begin");
        await shop.query(`update orders set customer = 'tx2' where id = ${b}`);
        await shop.query("rollback");
        const none = await shop.query(
          `select count(*)::int as n from orders where customer = 'tx2'`,
        );
        assert.equal(none.rows[0].n, 0);
        // An error in a catalog-only statement fails the block on its shard: COMMIT rolls back.
        await shop.query("begin");
        await shop.query(`update orders set customer = 'tx3' where id = ${a}`);
        const zero = await errorOf(shop.query("select 1/0"));
        assert.equal(zero?.code, "22012");
        const end = await shop.query("commit");
        assert.equal(end.command, "ROLLBACK");
        const kept = await shop.query(`select customer from orders where id = ${a}`);
        assert.equal(kept.rows[0].customer, "tx1");
        // A block begun among other statements of one query string cannot reach a shard.
        await shop.query("begin; select 1");
        const hidden = await errorOf(
          shop.query(`update orders set customer = 'tx4' where id = ${a}`),
        );
        assert.equal(hidden?.code, "0A000", String(hidden?.message));
        await shop.query("rollback");
        const still = await shop.query(`select customer from orders where id = ${a}`);
        assert.equal(still.rows[0].customer, "tx1");
      });

      await t.step(
        "settings follow the session to its shards; catalog reads join any block",
        async () => {
          await shop.query("set statement_timeout = '1234ms'");
          for (const id of [1, 2, 3, 4]) {
            const r = await shop.query(
              `select current_setting('statement_timeout') as v from orders where id = ${id}`,
            );
            assert.deepEqual(r.rows, [{ v: "1234ms" }]);
          }
          await shop.query("reset statement_timeout");
          await shop.query("begin");
          await shop.query("update orders set customer = 'n' where id = 1");
          const now = await shop.query("select now() is not null as ok");
          assert.deepEqual(now.rows, [{ ok: true }]);
          // A table of the default tablegroup joins the block too (two-phase commit at COMMIT).
          const plain = await shop.query("select id from orders_plain where id = 1");
          assert.equal(plain.rowCount, 1);
          await shop.query("rollback");
          const kept = await shop.query("select customer from orders where id = 1");
          assert.notEqual(kept.rows[0].customer, "n");
        },
      );

      await t.step(
        "multigres cluster status lists the databases, tablegroups and shards",
        async () => {
          const st = await c.cluster.status();
          const shopLayout = st.layout?.find((d) => d.name === "shop");
          const tg = shopLayout?.tablegroups.find((g) => g.name === "orders_tg");
          assert.deepEqual(tg?.shards.map((s) => s.name), ["0-8", "8-inf"]);
          assert.deepEqual(shopLayout?.tables?.map((x) => x.name), ["public.orders"]);
          for (const shard of ["0-8", "8-inf"]) {
            assert.ok(
              st.poolers.some((p) =>
                p.database === "shop" && p.tablegroup === "orders_tg" && p.shard === shard &&
                p.type === "PRIMARY" && p.serving
              ),
              `shard ${shard} has a serving primary`,
            );
          }
        },
      );

      await t.step("under another client_encoding, text beyond ASCII is refused", async () => {
        // The gateway hashes keys and rewrites statements as UTF-8: what it would read wrong it
        // refuses, and plain ASCII statements go on.
        const latin = await client({ database: "shop" });
        await latin.query("set client_encoding to 'LATIN1'");
        const one = await latin.query("select id, total from orders where id = 7");
        const plain = await latin.query("select id, total from orders_plain where id = 7");
        assert.deepEqual(one.rows, plain.rows);
        for (
          const q of [
            "select id from orders where customer = 'ü'",
            "select count(*) from orders",
            "insert into orders (id, customer) values (90000001, 'é')",
          ]
        ) {
          const e = await errorOf(latin.query(q));
          assert.equal(e?.code, "0A000", `${q}: ${e?.message}`);
          assert.match(e?.message ?? "", /client_encoding UTF8, not LATIN1/);
        }
        await latin.query("reset client_encoding");
        // Without standard_conforming_strings, a backslash in a string means something else.
        await latin.query("set standard_conforming_strings to off");
        const e = await errorOf(
          latin.query("select id from orders where customer = 'a\\'' or true"),
        );
        assert.equal(e?.code, "0A000", String(e?.message));
        assert.deepEqual(
          (await latin.query("select id from orders where id = 7")).rows,
          [{ id: "7" }],
        );
        await latin.query("reset standard_conforming_strings");
        const count = async (t: string) =>
          (await latin.query(`select count(*)::int as n from ${t}`)).rows[0].n;
        assert.equal(await count("orders"), await count("orders_plain"));
      });

      await t.step("DDL fans out to every shard, or to none", async () => {
        await shop.query("alter table orders add column note text");
        await shop.query("create index orders_customer on orders (customer)");
        const s1 = await client({ port: shardPorts(OFFSET, 1, 0).postgres, database: "shop" });
        const s2 = await client({ port: shardPorts(OFFSET, 2, 0).postgres, database: "shop" });
        for (const s of [s1, s2]) {
          const cols = await s.query(
            "select 1 from information_schema.columns where table_name = 'orders' and column_name = 'note'",
          );
          assert.equal(cols.rowCount, 1);
        }
        await shop.query("comment on table orders is 'sharded orders'");
        await shop.query("create table scratch (id bigint primary key) in orders_tg");
        for (let i = 1; i <= 8; i++) await shop.query(`insert into scratch values (${i})`);
        await shop.query("truncate scratch");
        for (const s of [s1, s2]) {
          const r = await s.query(
            "select obj_description('orders'::regclass) as c, (select count(*)::int from scratch) as n",
          );
          assert.deepEqual(r.rows, [{ c: "sharded orders", n: 0 }]);
        }
        await shop.query("drop table scratch");
        const rec = await direct.query(
          "select 1 from multigres.tablegroup_table where table_name = 'public.scratch'",
        );
        assert.equal(rec.rowCount, 0, "DROP TABLE forgets the table");
        // An index name taken on one shard only: the statement fails everywhere.
        await s1.query("create index taken on orders (total)");
        const e = await errorOf(shop.query("create index taken on orders (customer, total)"));
        assert.equal(e?.code, "42P07", String(e?.message));
        const onS2 = await s2.query("select 1 from pg_class where relname = 'taken'");
        assert.equal(onS2.rowCount, 0, "rolled back on the other shard");
        // DDL commits with two-phase commit: nothing is left prepared, the decisions go.
        const prepared = async () => {
          let n = 0;
          for (const s of [s1, s2, direct]) {
            n += (await s.query("select count(*)::int as n from pg_prepared_xacts")).rows[0].n;
          }
          return n;
        };
        assert.equal(await prepared(), 0);
        assert.ok(
          await eventually(async () =>
            (await direct.query(
              "select count(*)::int as n from multigres.two_phase where decision = 'commit'",
            )).rows[0].n === 0
          ),
          "DDL's commit decisions forgotten",
        );
        // VACUUM and REINDEX … CONCURRENTLY refuse a transaction block: each shard runs them on
        // its own, and the client gets Postgres's answer.
        for (
          const q of [
            "vacuum orders",
            "vacuum (analyze, verbose false) orders",
            "reindex (concurrently) table orders",
            "analyze orders",
          ]
        ) {
          const sharded = await shop.query(q);
          const plain = await shop.query(q.replace("orders", "orders_plain"));
          assert.equal(sharded.command, plain.command, q);
        }
        const inBlock = async (q: string) => {
          await shop.query("begin");
          const err = await errorOf(shop.query(q));
          await shop.query("rollback");
          return err?.code;
        };
        assert.equal(await inBlock("vacuum orders"), await inBlock("vacuum orders_plain"));
      });

      await t.step("an ordinary role shards its own database", async () => {
        await admin.query("create role app login createdb password 'app-pw'");
        const app = await client({ password: "app-pw", database: "postgres", user: "app" });
        await app.query("create database appdb");
        const appdb = await client({ password: "app-pw", database: "appdb", user: "app" });
        await appdb.query("create tablegroup app_tg shards 2");
        await appdb.query("create table items (id bigint primary key, name text) in app_tg");
        for (let i = 1; i <= 20; i++) {
          await appdb.query("insert into items values ($1, $2)", [i, `item ${i}`]);
        }
        const r = await appdb.query(
          "select current_setting('port') as port, current_user as who from items",
        );
        assert.equal(r.rowCount, 20);
        assert.equal(new Set(r.rows.map((x: { port: string }) => x.port)).size, 2);
        assert.ok(r.rows.every((x: { who: string }) => x.who === "app"));
        // On each shard, the database and the table belong to app, as on the default server.
        for (const slot of [3, 4]) {
          const sh = await client({
            port: shardPorts(OFFSET, slot, 0).postgres,
            database: "appdb",
          });
          const own = await sh.query(
            `select pg_get_userbyid(d.datdba) as db, pg_get_userbyid(c.relowner) as tbl
               from pg_database d, pg_class c where d.datname = 'appdb' and c.relname = 'items'`,
          );
          assert.deepEqual(own.rows, [{ db: "app", tbl: "app" }]);
        }
        await appdb.query("drop tablegroup app_tg cascade");
      });

      await t.step("DROP INDEX finds the tablegroup its index lives in", async () => {
        await shop.query("drop index orders_customer");
        for (const slot of [1, 2]) {
          const sh = await client({ port: shardPorts(OFFSET, slot, 0).postgres, database: "shop" });
          const r = await sh.query("select 1 from pg_class where relname = 'orders_customer'");
          assert.equal(r.rowCount, 0, `dropped on shard slot ${slot}`);
        }
        // An index of a default-tablegroup table is Postgres's as ever.
        await shop.query("create index plain_customer on orders_plain (customer)");
        await shop.query("drop index plain_customer");
        const gone = await errorOf(shop.query("drop index no_such_index"));
        const goneDirect = await errorOf(
          (await client({ direct: true, database: "shop" })).query("drop index no_such_index"),
        );
        assert.deepEqual(gone, goneDirect);
      });

      await t.step("an unsharded tablegroup (FOR db) takes every statement whole", async () => {
        await admin.query("create tablegroup single_tg for shop");
        const rec = await direct.query(
          "select name from multigres.shard where database = 'shop' and tablegroup = 'single_tg'",
        );
        assert.deepEqual(rec.rows, [{ name: "0-inf" }]);
        await shop.query("create table notes (id serial primary key, body text) in single_tg");
        await shop.query("insert into notes (body) values ('b'), ('a'), ('c')");
        const sorted = await shop.query("select body from notes order by body limit 2");
        assert.deepEqual(sorted.rows, [{ body: "a" }, { body: "b" }]);
        const n = await shop.query("select count(*)::int as n from notes");
        assert.deepEqual(n.rows, [{ n: 3 }]);
        const mixed = await errorOf(shop.query("select * from notes, orders_plain"));
        assert.equal(mixed?.code, "0A000", String(mixed?.message));
        await shop.query("drop table notes");
        await shop.query("drop tablegroup single_tg");
      });

      await t.step("the metadata keeps itself whole: tiling, renames, drops", async () => {
        // Ranges that leave a gap are refused by the hidden schema itself, whoever writes them.
        const gap = await errorOf(direct.query(
          `insert into multigres.shard values ('shop', 'orders_tg', '9-inf', '9', '')`,
        ));
        assert.equal(gap?.code, "23514", String(gap?.message));
        // A database with tablegroups of its own cannot be renamed (yet); others follow Postgres.
        const ren = await errorOf(admin.query("alter database shop rename to shop2"));
        assert.equal(ren?.code, "0A000", String(ren?.message));
        await admin.query("create database tmpdb");
        await admin.query("alter database tmpdb rename to tmpdb2");
        const names = async () =>
          (await direct.query(
            "select name from multigres.database where name like 'tmpdb%' order by 1",
          )).rows.map((r: { name: string }) => r.name);
        assert.deepEqual(await names(), ["tmpdb2"]);
        const tg = await direct.query(
          "select database from multigres.tablegroup where database like 'tmpdb%'",
        );
        assert.deepEqual(tg.rows, [{ database: "tmpdb2" }]);
        await admin.query("drop database tmpdb2");
        assert.deepEqual(await names(), []);
      });

      await t.step(
        "DROP TABLEGROUP refuses while tables depend on it; CASCADE stops the shards",
        async () => {
          const e = await errorOf(shop.query("drop tablegroup orders_tg"));
          assert.equal(e?.code, "2BP01", String(e?.message));
          await shop.query("drop tablegroup orders_tg cascade");
          const left = await direct.query(
            "select 1 from multigres.shard where database = 'shop' and tablegroup = 'orders_tg'",
          );
          assert.equal(left.rowCount, 0);
          const gone = await eventually(async () => {
            const poolers = await topoPoolers(c.cluster);
            return !poolers.some((p) => p.tablegroup === "orders_tg");
          }, 60_000);
          assert.ok(gone, "the shards' poolers left the topo");
        },
      );
    } finally {
      for (const cl of opened) await cl.end().catch(() => {});
      await c.stop();
    }
  },
});
