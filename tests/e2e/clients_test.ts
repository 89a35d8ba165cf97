import assert from "node:assert/strict";
import { E2E, startCluster } from "../helpers/cluster.ts";

Deno.test("npm:pg and npm:postgres work through the gateway", E2E, async (t) => {
  const c = await startCluster(1100);
  try {
    await t.step("npm:pg: DDL, DML, NULLs and non-ASCII text", async () => {
      const db = await c.client();
      try {
        await db.query("create table people (id serial primary key, name text, age int)");
        const ins = await db.query(
          "insert into people (name, age) values ('Zoë', 31), ('李雷', null), (null, 7) returning id",
        );
        assert.equal(ins.rowCount, 3);
        assert.equal(ins.command, "INSERT");
        const upd = await db.query("update people set age = age + 1 where age is not null");
        assert.equal(upd.rowCount, 2);
        const r = await db.query("select name, age from people order by id");
        assert.deepEqual(r.rows, [
          { name: "Zoë", age: 32 },
          { name: "李雷", age: null },
          { name: null, age: 8 },
        ]);
      } finally {
        await db.end();
      }
    });

    await t.step("npm:pg: a multi-statement query returns every result", async () => {
      const db = await c.client();
      try {
        const results = await db.query("select 1 as a; select 'two' as b; select null as c");
        assert.ok(Array.isArray(results));
        const all = results as unknown as { rows: unknown[] }[];
        assert.deepEqual(all.map((x) => x.rows), [[{ a: 1 }], [{ b: "two" }], [{ c: null }]]);
      } finally {
        await db.end();
      }
    });

    await t.step("npm:pg: 100k rows arrive complete and in order", async () => {
      const db = await c.client();
      try {
        const r = await db.query(
          "select g as n, md5(g::text) as h from generate_series(1, 100000) g order by g",
        );
        assert.equal(r.rows.length, 100000);
        assert.deepEqual(r.rows[0], { n: 1, h: "c4ca4238a0b923820dcc509a6f75849b" });
        assert.equal(r.rows[99999].n, 100000);
        let ordered = true;
        for (let i = 0; i < r.rows.length; i++) if (r.rows[i].n !== i + 1) ordered = false;
        assert.ok(ordered);
      } finally {
        await db.end();
      }
    });

    await t.step("npm:pg: a 70 MB value (bigger than one gRPC message) arrives whole", async () => {
      const db = await c.client();
      const other = await c.client();
      try {
        const big = 70 * 1024 * 1024;
        const [r, o] = await Promise.all([
          db.query(`select repeat('ab', ${big / 2}) as v`),
          other.query("select 'unaffected' as v"),
        ]);
        assert.equal(r.rows[0].v.length, big);
        assert.equal(r.rows[0].v.slice(-4), "abab");
        assert.equal(o.rows[0].v, "unaffected");
        const echo = await db.query("select length($1::text) as n", ["é".repeat(3_000_000)]);
        assert.equal(echo.rows[0].n, 3_000_000);
      } finally {
        await db.end();
        await other.end();
      }
    });

    await t.step("npm:pg: an error keeps the session usable, with Postgres's fields", async () => {
      const db = await c.client();
      try {
        await assert.rejects(db.query("select * from no_such_table"), (
          e: Error & {
            code?: string;
            position?: string;
            severity?: string;
          },
        ) => {
          assert.equal(e.code, "42P01");
          assert.equal(e.position, "15");
          assert.equal(e.severity, "ERROR");
          assert.match(e.message, /relation "no_such_table" does not exist/);
          return true;
        });
        await assert.rejects(db.query("insert into people (id) values (1)"), /duplicate key/);
        const r = await db.query("select count(*)::int as n from people");
        assert.equal(r.rows[0].n, 3);
      } finally {
        await db.end();
      }
    });

    await t.step("npm:pg: parameters (extended protocol) work", async () => {
      const db = await c.client();
      try {
        const r = await db.query("select $1::int + $2::int as sum, $3::text as t", [2, 40, "ñ"]);
        assert.deepEqual(r.rows, [{ sum: 42, t: "ñ" }]);
      } finally {
        await db.end();
      }
    });

    await t.step("npm:postgres: simple protocol queries, NULLs, non-ASCII, errors", async () => {
      const sql = c.sql({ max: 1 });
      try {
        const rows = await sql`select name, age from people order by id`.simple();
        assert.deepEqual(rows.map((r) => [r.name, r.age]), [["Zoë", 32], ["李雷", null], [
          null,
          8,
        ]]);
        const multi = await sql.unsafe("select 1 as x; select 2 as y").simple();
        assert.equal(multi.length, 2);
        await assert.rejects(
          sql.unsafe("select 1 frm people").simple(),
          (e: Error & { code?: string }) => e.code === "42601",
        );
        const big = await sql.unsafe("select g from generate_series(1, 100000) g").simple();
        assert.equal(big.length, 100000);
        const ddl = await sql.unsafe(
          "create table notes (id int, body text); insert into notes values (1, 'ü')",
        ).simple();
        // postgres.js reports the last statement's row count for a multi-statement string.
        assert.equal(ddl.count, 1);
        const [note] = await sql.unsafe("select body from notes").simple();
        assert.equal(note.body, "ü");
      } finally {
        await sql.end();
      }
    });

    await t.step("TLS: psql sslmode=require and verify-full use TLS", async () => {
      const cert = `${c.dir}/tls/server.crt`;
      const modes: Record<string, string>[] = [
        { PGSSLMODE: "require" },
        { PGSSLMODE: "verify-full", PGSSLROOTCERT: cert },
      ];
      for (const env of modes) {
        const out = await new Deno.Command("psql", {
          args: [
            "-X",
            "-h",
            "localhost",
            "-p",
            String(c.port),
            "-U",
            "postgres",
            "-c",
            "\\conninfo",
          ],
          env: { PGPASSWORD: c.password, ...env },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, text);
        assert.match(text, /SSL connection \(protocol: TLSv1\.[23]/);
      }
    });

    await t.step("TLS: npm:pg and npm:postgres with ssl", async () => {
      const ca = await Deno.readTextFile(`${c.dir}/tls/server.crt`);
      const pg = (await import("pg")).default;
      const db = new pg.Client({
        host: "localhost",
        port: c.port,
        user: "postgres",
        password: c.password,
        database: "postgres",
        ssl: { ca },
      });
      await db.connect();
      try {
        const r = await db.query("select $1::text as v", ["über TLS"]);
        assert.equal(r.rows[0].v, "über TLS");
      } finally {
        await db.end();
      }
      const sql = c.sql({ ssl: "require", max: 1 });
      try {
        const [r] = await sql`select ${"tls"}::text as v`;
        assert.equal(r.v, "tls");
      } finally {
        await sql.end();
      }
    });

    await t.step(
      "TLS: bytes sent after SSLRequest before the handshake are never read as the startup",
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: c.port });
        try {
          const ssl = new Uint8Array(8);
          new DataView(ssl.buffer).setInt32(0, 8);
          new DataView(ssl.buffer).setInt32(4, 80877103);
          const junk = new TextEncoder().encode("junk");
          const both = new Uint8Array(12);
          both.set(ssl);
          both.set(junk, 8);
          await conn.write(both);
          const buf = new Uint8Array(512);
          let text = "";
          for (;;) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) break;
            text += new TextDecoder().decode(buf.subarray(0, n));
          }
          // As Postgres: 'S', then the handshake must come first; the pipelined bytes are never
          // taken for a startup packet (no authentication request follows), and the session
          // ends (Postgres waits for the handshake until its authentication timeout).
          assert.equal(text, "S");
        } finally {
          try {
            conn.close();
          } catch {
            // closed by the gateway
          }
        }
      },
    );

    await t.step("npm:postgres: its default (extended, prepared) queries work", async () => {
      const sql = c.sql({ max: 2 });
      try {
        const [r] = await sql`select ${5}::int * 2 as v`;
        assert.equal(r.v, 10);
        const rows = await sql`select id from people where age > ${1} order by id`;
        assert.equal(rows.length, 2);
      } finally {
        await sql.end();
      }
    });
  } finally {
    await c.stop();
  }
});
