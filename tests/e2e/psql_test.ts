import assert from "node:assert/strict";
import { E2E, startCluster } from "../helpers/cluster.ts";

Deno.test("psql works through the gateway as it does against Postgres", E2E, async (t) => {
  const c = await startCluster(1000);
  try {
    await t.step("select 1", async () => {
      const r = await c.psql(["-tAc", "select 1"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "1");
    });

    await t.step("create table, insert, select, \\d", async () => {
      const r = await c.psql([
        "-c",
        "create table items (id int primary key, name text not null, note text)",
        "-c",
        "insert into items values (1, 'héllo wörld ✓', null), (2, 'plain', 'x')",
        "-c",
        "select id, name, coalesce(note, '<null>') from items order by id",
        "-c",
        "\\d items",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /CREATE TABLE/);
      assert.match(r.stdout, /INSERT 0 2/);
      assert.match(r.stdout, /héllo wörld ✓/);
      assert.match(r.stdout, /<null>/);
      assert.match(r.stdout, /Table "public\.items"/);
      assert.match(r.stdout, /"items_pkey" PRIMARY KEY, btree \(id\)/);
    });

    await t.step("a syntax error comes back as 42601 with its position", async () => {
      const r = await c.psql(["-v", "VERBOSITY=verbose", "-c", "select 1 frm items"]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /ERROR:\s+42601: syntax error at or near "items"/);
      assert.match(r.stderr, /LINE 1: select 1 frm items\n\s+\^/);
    });

    await t.step("errors keep the session usable; transactions keep their state", async () => {
      const r = await c.psql([
        "-c",
        "select 1/0",
        "-c",
        "select 'still here'",
        "-c",
        "begin",
        "-c",
        "insert into items values (3, 'in tx', null)",
        "-c",
        "select count(*) from items",
        "-c",
        "rollback",
        "-c",
        "select count(*) from items",
      ]);
      assert.match(r.stderr, /division by zero/);
      assert.match(r.stdout, /still here/);
      const counts = [...r.stdout.matchAll(/^\s+(\d+)\s*$/gm)].map((m) => m[1]);
      assert.deepEqual(counts, ["3", "2"]);
    });

    await t.step("multi-statement query strings run as one implicit transaction", async () => {
      const r = await c.psql([
        "-c",
        "insert into items values (10, 'a', null); insert into items values (10, 'dup', null)",
      ]);
      assert.match(r.stderr, /duplicate key value violates unique constraint "items_pkey"/);
      const after = await c.psql(["-tAc", "select count(*) from items where id = 10"]);
      assert.equal(after.stdout.trim(), "0");
    });

    await t.step("a psql script with \\set, \\gset and a large result", async () => {
      const script = `${c.dir}/script.sql`;
      await Deno.writeTextFile(
        script,
        [
          "\\set ON_ERROR_STOP on",
          "select count(*), sum(g) from generate_series(1, 100000) g;",
          "select repeat('x', 100000) as big \\gset",
          "\\echo :big",
        ].join("\n"),
      );
      const r = await c.psql(["-tA", "-f", script]);
      assert.equal(r.code, 0, r.stderr);
      const [first, second] = r.stdout.trim().split("\n");
      assert.equal(first, "100000|5000050000");
      assert.equal(second.length, 100000);
    });

    await t.step("CREATE DATABASE, then connect to it through the gateway", async () => {
      const r = await c.psql(["-c", "create database shop"]);
      assert.equal(r.code, 0, r.stderr);
      const inShop = await c.psql([
        "-tA",
        "-c",
        "create table cart (id int)",
        "-c",
        "select current_database()",
      ], {
        database: "shop",
      });
      assert.equal(inShop.code, 0, inShop.stderr);
      assert.match(inShop.stdout, /^shop$/m);
      const missing = await c.psql(["-c", "select 1"], { database: "shop2" });
      assert.match(missing.stderr, /FATAL:\s+database "shop2" does not exist/);
    });

    await t.step("startup options reach the session; RESET returns to them", async () => {
      const run = async (port: number, env: Record<string, string>, sql: string[]) => {
        const out = await new Deno.Command("psql", {
          args: [
            "-X",
            "-tA",
            "-h",
            "127.0.0.1",
            "-p",
            String(port),
            "-U",
            "postgres",
            ...sql.flatMap((q) => ["-c", q]),
          ],
          env: { PGPASSWORD: c.password, ...env },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const dec = new TextDecoder();
        return { out: dec.decode(out.stdout).trim(), err: dec.decode(out.stderr).trim() };
      };
      const env = {
        PGAPPNAME: "e2e_app",
        PGDATESTYLE: "Postgres, MDY",
        PGOPTIONS: "-c search_path=pg_catalog -c intervalstyle=postgres_verbose",
      };
      const sql = [
        "select current_setting('application_name') || ',' || current_setting('search_path')",
        "set datestyle to iso",
        "reset datestyle",
        "show datestyle",
        "set intervalstyle to iso_8601",
        "reset all",
        "show intervalstyle",
        "select source from pg_settings where name = 'DateStyle'",
      ];
      const direct = await run(c.directPort, env, sql);
      const through = await run(c.port, env, sql);
      assert.equal(
        through.out,
        "e2e_app,pg_catalog\nSET\nRESET\nPostgres, MDY\nSET\nRESET\npostgres_verbose\nclient",
        through.err,
      );
      assert.equal(through.out, direct.out);
      // A bad startup setting: Postgres's own FATAL, word for word.
      const bad = { PGOPTIONS: "-c work_mem=lots" };
      const badDirect = await run(c.directPort, bad, ["select 1"]);
      const badThrough = await run(c.port, bad, ["select 1"]);
      assert.match(badDirect.err, /FATAL:\s+invalid value for parameter "work_mem": "lots"/);
      assert.equal(
        badThrough.err.replace(/port \d+/, "port N"),
        badDirect.err.replace(/port \d+/, "port N"),
      );
    });
  } finally {
    await c.stop();
  }
});
