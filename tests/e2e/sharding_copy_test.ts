// COPY on a sharded table, end to end (ports 22900+): COPY FROM STDIN in text, CSV and binary
// split by row over two shards, COPY TO STDOUT concatenated, errors, CopyFail and transaction
// blocks. The oracle is the same COPY on an unsharded table of the same database: the same
// rows, the same row counts, the same errors (SQLSTATE, message, CONTEXT line).

import assert from "node:assert/strict";
import type pg from "pg";
import { shardPorts } from "../../src/provisioner/local_cluster.ts";
import { inRangeSql, keyspaceIdSql, parseKeyRange } from "../../src/shared/keyspace/mod.ts";
import type { PgError } from "../../src/shared/errors/mod.ts";
import {
  FrameReader,
  parseCommandComplete,
  parseErrorFields,
  WireWriter,
  writeQuery,
} from "../../src/shared/wire/mod.ts";
import { E2E, errorOf, psql, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { scramLogin } from "../helpers/login.ts";

const OFFSET = 2900;
const DB = "copydb";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Column values of row `i` (text, or null), varied: NULLs, non-ASCII, quotes, escapes. */
function rowValues(i: number): [string, string | null, string | null, string | null] {
  const kinds: (string | null)[] = [
    `plain ${i}`,
    `ünïcödé 日本 ${i} 🎉`,
    `quote ' and " ${i}`,
    `back\\slash \\N ${i}`,
    "",
    null,
    `tab\there\nnewline\r ${i}`,
    `comma, semicolon; ${i}`,
  ];
  const name = kinds[i % kinds.length];
  const note = i % 997 === 0 ? "x".repeat(9000) + i : kinds[(i * 7 + 3) % kinds.length];
  const qty = i % 11 === 0 ? null : String(i % 50);
  return [String(i), name, note, qty];
}

/** COPY text format. */
function textLine(values: (string | null)[]): string {
  return values.map((v) =>
    v === null ? "\\N" : v.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n")
      .replace(/\r/g, "\\r")
  ).join("\t") + "\n";
}

/** CSV with `;`, quote `'`, escape `\`, NULL as NULL: every value quoted. */
function csvLine(values: (string | null)[]): string {
  return values.map((v) => v === null ? "NULL" : `'${v.replace(/[\\']/g, (c) => "\\" + c)}'`)
    .join(";") + "\n";
}

/** Bytes cut in pieces of the given sizes, in turn (rows split across CopyData messages). */
function pieces(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = sizes[k % sizes.length];
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

interface CopyAnswer {
  tag: string | null;
  error: PgError | null;
  /** ReadyForQuery's status; 0: the server closed the connection instead. */
  status: number;
  /** A FATAL error that ended the connection. */
  fatal: PgError | null;
}

/** One raw connection that speaks the protocol itself: COPY data exactly as the test cuts it. */
class RawClient {
  readonly #conn: Deno.Conn;
  readonly #r = new FrameReader();

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async connect(c: TestCluster): Promise<RawClient> {
    return new RawClient(await scramLogin(c.port, "postgres", c.password, DB));
  }

  async #next(): Promise<{ code: number; body: Uint8Array } | null> {
    while (!this.#r.next()) {
      const n = await this.#conn.read(this.#r.writable()).catch(() => null);
      if (n === null) return null;
      this.#r.commit(n);
    }
    return { code: this.#r.code, body: this.#r.body.slice() };
  }

  /** Reads up to ReadyForQuery (or the end): the tag, the first error, the status. */
  async #answer(): Promise<CopyAnswer> {
    const out: CopyAnswer = { tag: null, error: null, status: 0, fatal: null };
    for (;;) {
      const m = await this.#next();
      if (m === null) return out;
      if (m.code === 0x43) out.tag = parseCommandComplete(m.body);
      if (m.code === 0x45) {
        const e = parseErrorFields(m.body);
        if (e.severity === "FATAL") out.fatal = e;
        else out.error ??= e;
      }
      if (m.code === 0x5a) {
        out.status = m.body[0];
        return out;
      }
    }
  }

  async query(sql: string): Promise<CopyAnswer> {
    const w = new WireWriter();
    writeQuery(w, sql);
    await this.#conn.write(w.view());
    return await this.#answer();
  }

  /**
   * `sql` (a COPY FROM STDIN), then each chunk as one CopyData message (a `{ frame }` as it is),
   * then CopyDone (or CopyFail with `fail`), written while the answer is read, as libpq does.
   */
  async copyIn(
    sql: string,
    chunks: (Uint8Array | { frame: Uint8Array })[],
    fail?: string,
  ): Promise<CopyAnswer> {
    const w = new WireWriter();
    writeQuery(w, sql);
    await this.#conn.write(w.view());
    const first = await this.#next();
    if (first === null) throw new Error("connection closed");
    if (first.code !== 0x47) {
      // Refused before any data: the rest of its answer.
      const rest = await this.#answer();
      if (first.code === 0x45) rest.error = parseErrorFields(first.body);
      return rest;
    }
    const writing = (async () => {
      for (const chunk of chunks) {
        w.reset();
        if (chunk instanceof Uint8Array) w.begin(0x64).bytes(chunk).end();
        else w.raw(chunk.frame);
        await writeAll(this.#conn, w.view());
      }
      w.reset();
      if (fail === undefined) w.begin(0x63).end();
      else w.begin(0x66).cstring(fail).end();
      await writeAll(this.#conn, w.view());
    })().catch(() => {}); // a server that ends the connection stops the writing
    const answer = await this.#answer();
    await writing;
    return answer;
  }

  close(): void {
    this.#conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** An answer, comparable with the unsharded table's: table names made alike. */
function outcome(a: CopyAnswer): Record<string, unknown> {
  const plain = (s: string | undefined) => s?.replaceAll("_plain", "");
  return {
    tag: a.tag,
    status: String.fromCharCode(a.status),
    fatal: a.fatal?.message,
    code: a.error?.sqlstate,
    message: plain(a.error?.message),
    detail: plain(a.error?.detail),
    where: plain(a.error?.where),
  };
}

function sortedRows(r: pg.QueryResult): string[] {
  return r.rows.map((row: unknown) => JSON.stringify(row)).sort();
}

Deno.test({
  name: "sharding: COPY FROM STDIN split by row, COPY TO STDOUT concatenated",
  ...E2E,
  async fn(t) {
    const c: TestCluster = await startCluster(OFFSET, { cells: 1 });
    const opened: { end(): Promise<void> }[] = [];
    const client = async (opts: Parameters<TestCluster["client"]>[0] = {}) => {
      const cl = await c.client(opts);
      cl.on("error", () => {});
      opened.push(cl);
      return cl;
    };
    const raws: RawClient[] = [];
    const raw = async () => {
      const r = await RawClient.connect(c);
      raws.push(r);
      return r;
    };
    try {
      const admin = await client();
      await admin.query(`create database ${DB}`);
      const db = await client({ database: DB });
      await db.query("create tablegroup copy_tg shards 2");
      for (const [name, group] of [["items", " in copy_tg"], ["items_plain", ""]]) {
        await db.query(
          `create table ${name} (id bigint primary key, name text, note text, qty int)${group}`,
        );
      }
      await db.query("create table tags (tag text primary key, n int) in copy_tg");
      await db.query("create table tags_plain (tag text primary key, n int)");
      const shards = [
        await client({ port: shardPorts(OFFSET, 1, 0).postgres, database: DB, direct: true }),
        await client({ port: shardPorts(OFFSET, 2, 0).postgres, database: DB, direct: true }),
      ];

      /** Both tables hold the same rows. */
      const same = async (table = "items") => {
        const a = await db.query(`select * from ${table}`);
        const b = await db.query(`select * from ${table}_plain`);
        assert.equal(a.rowCount, b.rowCount, `${table}: row count`);
        assert.deepEqual(sortedRows(a), sortedRows(b), table);
        return a.rowCount ?? 0;
      };
      /** Every row sits on the shard its key's hash says, and both shards hold some. */
      const placed = async (table: string, column: string, type: "int8" | "text") => {
        const counts: number[] = [];
        for (const [i, range] of ["0-8", "8-inf"].entries()) {
          const r = await shards[i].query(
            `select count(*)::int as n, count(*) filter (where not (${
              inRangeSql(keyspaceIdSql(type, column), parseKeyRange(range))
            }))::int as outside from ${table}`,
          );
          assert.equal(r.rows[0].outside, 0, `${table} on ${range}: every row in its range`);
          counts.push(r.rows[0].n);
        }
        assert.ok(counts.every((n) => n > 0), `${table}: rows on both shards ${counts}`);
        return counts;
      };
      /** Rows per shard now (a failed COPY must leave them as they were). */
      const perShard = async () => {
        const out: number[] = [];
        for (const s of shards) {
          out.push((await s.query("select count(*)::int as n from items")).rows[0].n);
        }
        return out;
      };
      /** The same COPY on both tables: the same answer. */
      const bothCopy = async (
        sql: string,
        chunks: (Uint8Array | { frame: Uint8Array })[],
        fail?: string,
      ): Promise<Record<string, unknown>> => {
        const conn = await raw();
        const a = outcome(await conn.copyIn(sql, chunks, fail));
        const b = outcome(
          await conn.copyIn(sql.replace(/\b(items|tags)\b/, "$1_plain"), chunks, fail),
        );
        assert.deepEqual(a, b, sql);
        // The session goes on.
        assert.equal((await conn.query("select 1")).error, null);
        return a;
      };

      await t.step("text: psql \\copy of rows with NULLs, escapes and non-ASCII text", async () => {
        let data = "";
        for (let i = 1; i <= 3000; i++) data += textLine(rowValues(i));
        const file = `${c.dir}/items.txt`;
        await Deno.writeTextFile(file, data);
        for (const table of ["items", "items_plain"]) {
          // psql sends the file in 8 kB CopyData messages: rows split anywhere.
          const r = await psql(
            c.port,
            ["-X", "-c", `\\copy ${table} from '${file}'`],
            c.password,
            DB,
          );
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.trim(), "COPY 3000");
        }
        assert.equal(await same(), 3000);
        await placed("items", "id", "int8");
      });

      await t.step("CSV with HEADER, another delimiter, quote, escape and NULL", async () => {
        let data = "id;name;note;qty\n";
        for (let i = 3001; i <= 4500; i++) data += csvLine(rowValues(i));
        const sql =
          "copy items from stdin with (format csv, header match, delimiter ';', null 'NULL', quote '''', escape '\\')";
        const a = await bothCopy(sql, pieces(enc.encode(data), [1, 7, 100, 4096, 3]));
        assert.equal(a.tag, "COPY 1500");
        assert.equal(await same(), 4500);
        await placed("items", "id", "int8");
        // The default CSV: "" quotes, empty unquoted is NULL; a row cut into tiny pieces.
        const small = '4501,"a ""q"", b",,7\n4502,,"line\nbreak",\n';
        assert.equal(
          (await bothCopy("copy items from stdin csv", pieces(enc.encode(small), [1, 2]))).tag,
          "COPY 2",
        );
        assert.equal(await same(), 4502);
      });

      await t.step("binary: Postgres's own binary COPY, header once per shard", async () => {
        const file = `${c.dir}/items.bin`;
        const out = await psql(
          c.port,
          [
            "-X",
            "-c",
            `\\copy (select id + 100000, name, note, qty from items_plain) to '${file}' with (format binary)`,
          ],
          c.password,
          DB,
        );
        assert.equal(out.code, 0, out.stderr);
        const bytes = await Deno.readFile(file);
        const a = await bothCopy(
          "copy items from stdin (format binary)",
          pieces(bytes, [5, 19, 1000, 65536]),
        );
        assert.equal(a.tag, "COPY 4502");
        assert.equal(await same(), 9004);
        await placed("items", "id", "int8");
      });

      await t.step("text keys: the de-escaped value is what is hashed", async () => {
        const keys = ["a\tb", "ü", "日本", "x\\y", "A", "", "line\nbreak", "🎉", "\\N ", "end\\."];
        let data = "";
        keys.forEach((k, i) => data += textLine([k, String(i)]));
        for (let i = 0; i < 200; i++) data += textLine([`key ${i} ü`, String(i)]);
        // An octal and a hex escape spell "B" and "C".
        data += "\\102\t1\n\\x43\t2\n";
        const a = await bothCopy("copy tags from stdin", pieces(enc.encode(data), [3, 50]));
        assert.equal(a.tag, `COPY ${keys.length + 202}`);
        await same("tags");
        await placed("tags", "tag", "text");
        const bc = await db.query("select tag from tags where tag in ('B', 'C') order by 1");
        assert.deepEqual(bc.rows, [{ tag: "B" }, { tag: "C" }]);
      });

      await t.step("postgres.js .writable(): a large COPY streams through", async () => {
        const sql = c.sql({ database: DB });
        try {
          for (const table of ["items", "items_plain"]) {
            const w = await sql.unsafe(`copy ${table} from stdin`).writable();
            await new Promise<void>((resolve, reject) => {
              w.on("error", reject);
              let i = 200_000;
              const more = () => {
                while (i < 260_000) {
                  let chunk = "";
                  for (let k = 0; k < 500; k++, i++) chunk += textLine(rowValues(i));
                  if (!w.write(chunk)) return void w.once("drain", more);
                }
                w.end(resolve);
              };
              more();
            });
          }
        } finally {
          await sql.end();
        }
        assert.equal(await same(), 69_004);
        await placed("items", "id", "int8");
      });

      await t.step("a bad row fails the whole COPY: nothing lands on any shard", async () => {
        const before = await perShard();
        const rows = (from: number, n: number, bad?: { at: number; line: string }) => {
          let s = "";
          for (let i = 0; i < n; i++) {
            s += bad?.at === i ? bad.line : textLine(rowValues(from + i));
          }
          return enc.encode(s);
        };
        const cases: [string, Uint8Array, string][] = [
          // A key Postgres refuses: the gateway reads it, with Postgres's words and CONTEXT.
          ["bad key", rows(500_000, 2000, { at: 1499, line: "abc\tx\ty\t1\n" }), "22P02"],
          // A bad value in another column: a shard refuses it; its line is the client's.
          [
            "bad qty",
            rows(510_000, 2000, { at: 1699, line: "511699\tx\ty\tnot a number\n" }),
            "22P02",
          ],
          // A key that exists: the unique index on its shard.
          ["duplicate", rows(520_000, 1000, { at: 800, line: "77\tdup\tdup\t1\n" }), "23505"],
          // NULL key: where an INSERT of it goes; the primary key refuses it there.
          ["null key", rows(530_000, 1000, { at: 600, line: "\\N\tn\tn\t1\n" }), "23502"],
          ["extra column", rows(540_000, 50, { at: 10, line: "540010\ta\tb\t1\tc\n" }), "22P04"],
          ["missing column", rows(550_000, 50, { at: 20, line: "550020\ta\n" }), "22P04"],
          ["mixed line ends", rows(560_000, 50, { at: 30, line: "560030\ta\tb\t1\r\n" }), "22P04"],
        ];
        for (const [what, data, code] of cases) {
          const a = await bothCopy("copy items from stdin", pieces(data, [333, 4096]));
          assert.equal(a.code, code, `${what}: ${JSON.stringify(a)}`);
          assert.match(String(a.where), /^COPY items, line \d+/, what);
          assert.deepEqual(await perShard(), before, `${what}: the shards hold what they held`);
        }
        assert.equal(await same(), 69_004);
      });

      await t.step("CopyFail from the client fails the COPY with Postgres's error", async () => {
        const before = await perShard();
        let data = "";
        for (let i = 600_000; i < 600_100; i++) data += textLine(rowValues(i));
        const a = await bothCopy("copy items from stdin", pieces(enc.encode(data), [1000]), "nope");
        assert.equal(a.code, "57014");
        assert.equal(a.message, "COPY from stdin failed: nope");
        assert.deepEqual(await perShard(), before);
        // A message that is no COPY message fails it too (08P01), and, as in Postgres, ends
        // the connection (the protocol is out of step).
        const w = new WireWriter();
        w.begin(0x51).cstring("select 1").end(); // a Query inside the COPY's data
        const chunks = [
          enc.encode("600000\ta\tb\t1\n"),
          { frame: w.view().slice() },
          enc.encode("600001\ta\tb\t1\n"),
        ];
        const answers = [];
        for (const table of ["items", "items_plain"]) {
          const conn = await raw();
          answers.push(outcome(await conn.copyIn(`copy ${table} from stdin`, chunks)));
        }
        assert.deepEqual(answers[0], answers[1]);
        assert.equal(answers[0].code, "08P01");
        assert.equal(answers[0].message, "unexpected message type 0x51 during COPY from stdin");
        assert.equal(
          answers[0].fatal,
          "terminating connection because protocol synchronization was lost",
        );
        assert.deepEqual(await perShard(), before);
        assert.equal(await same(), 69_004);
      });

      await t.step("in a transaction block: shards join it; ROLLBACK leaves nothing", async () => {
        const before = await perShard();
        let data = "";
        for (let i = 700_000; i < 700_400; i++) data += textLine(rowValues(i));
        const script = (end: string) =>
          `begin;\ncopy items from stdin;\n${data}\\.\nselect count(*) from items where id >= 700000;\n${end};\n`;
        const file = `${c.dir}/block.sql`;
        await Deno.writeTextFile(file, script("rollback"));
        let r = await psql(
          c.port,
          ["-X", "-tA", "-v", "ON_ERROR_STOP=1", "-f", file],
          c.password,
          DB,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ["BEGIN", "COPY 400", "400", "ROLLBACK"]);
        assert.deepEqual(await perShard(), before);
        await Deno.writeTextFile(file, script("commit"));
        r = await psql(c.port, ["-X", "-tA", "-v", "ON_ERROR_STOP=1", "-f", file], c.password, DB);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ["BEGIN", "COPY 400", "400", "COMMIT"]);
        const after = await perShard();
        assert.equal(after[0] + after[1], before[0] + before[1] + 400);
        // A COPY that fails in a block fails the block; ROLLBACK ends it.
        const conn = await raw();
        assert.equal((await conn.query("begin")).error, null);
        const bad = await conn.copyIn("copy items from stdin", [enc.encode("1\tdup\tdup\t1\n")]);
        assert.equal(bad.error?.sqlstate, "23505");
        assert.equal(String.fromCharCode(bad.status), "E");
        assert.equal((await conn.query("select 1 from items limit 1")).error?.sqlstate, "25P02");
        assert.equal((await conn.query("rollback")).tag, "ROLLBACK");
        await db.query("delete from items where id >= 700000");
      });

      await t.step("COPY TO STDOUT: the same lines as the unsharded table's", async () => {
        // psql's \copy … to 'file' is COPY … TO STDOUT, its data written to the file as it comes.
        const read = async (q: string) => {
          const file = `${c.dir}/out.data`;
          const [src, opts] = q.split(" with ");
          const copy = `\\copy ${src} to '${file}'${opts ? ` with ${opts}` : ""}`;
          const r = await psql(c.port, ["-X", "-c", copy], c.password, DB);
          assert.equal(r.code, 0, r.stderr);
          return { data: await Deno.readFile(file), tag: r.stdout.trim() };
        };
        const lines = (b: Uint8Array) => dec.decode(b).split("\n").sort();
        for (
          const q of [
            "items",
            "items (id, name) with (format csv, header)",
            "(select id, note from items where qty > 10)",
            "(select * from items where id in (1, 2, 3, 4, 5)) with (format csv)",
          ]
        ) {
          const a = await read(q);
          const b = await read(q.replace(/\bitems\b/, "items_plain"));
          assert.equal(a.tag, b.tag, q);
          assert.deepEqual(lines(a.data), lines(b.data), q);
          if (q.includes("header")) assert.equal(dec.decode(a.data).split("\n")[0], "id,name");
        }
        // A query that needs merging: its rows merged as a SELECT's, then written as COPY
        // lines; ORDER BY fixes the order, so the bytes must be Postgres's own.
        for (
          const q of [
            "(select id, name, note from items order by id limit 500) with (format csv, header)",
            "(select id, name, note from items order by id desc limit 300 offset 7)",
            "(select qty, count(*), min(name), max(note) from items group by qty order by qty) " +
            "with (format csv, delimiter ';', null 'NULL', header)",
            "(select count(*), sum(qty), avg(qty) from items)",
            "(select distinct qty from items order by qty nulls first) " +
            "with (format text, null '-', delimiter '|', header)",
            "(select name from items order by id limit 60) with (format csv, quote '*')",
          ]
        ) {
          const a = await read(q);
          const b = await read(q.replace(/\bitems\b/, "items_plain"));
          assert.equal(a.tag, b.tag, q);
          assert.equal(dec.decode(a.data), dec.decode(b.data), q);
        }
        // Binary: one header, the tuples, one trailer.
        const tuples = (b: Uint8Array) => {
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          assert.equal(dec.decode(b.subarray(0, 6)), "PGCOPY");
          let at = 19 + dv.getInt32(15);
          const out: string[] = [];
          for (;;) {
            const n = dv.getInt16(at);
            if (n === -1) break;
            const start = at;
            at += 2;
            for (let f = 0; f < n; f++) {
              const len = dv.getInt32(at);
              at += 4 + Math.max(0, len);
            }
            out.push([...b.subarray(start, at)].join(","));
          }
          assert.equal(at + 2, b.length, "the trailer ends the data");
          return out.sort();
        };
        const a = await read("items with (format binary)");
        const b = await read("items_plain with (format binary)");
        assert.equal(a.tag, "COPY 69004");
        assert.deepEqual(tuples(a.data), tuples(b.data));
        // postgres.js .readable() (one use per connection: after a COPY TO it may leave its
        // socket paused, with Postgres too).
        const sql = c.sql({ database: DB, max: 1 });
        try {
          let text = "";
          for await (
            const ch of await sql`copy (select id from items where id < 4) to stdout`.readable()
          ) {
            text += dec.decode(ch);
          }
          assert.deepEqual(text.split("\n").sort(), ["", "1", "2", "3"]);
        } finally {
          await sql.end();
        }
      });

      await t.step("INSERT … SELECT without FROM goes to its key's shard", async () => {
        for (const table of ["items", "items_plain"]) {
          const r = await db.query(
            `insert into ${table} (id, name, qty) select 900001, 'from select', 3`,
          );
          assert.equal(r.rowCount, 1);
          const none = await db.query(
            `insert into ${table} (id, name) select 900002, 'never' where false`,
          );
          assert.equal(none.rowCount, 0);
        }
        await placed("items", "id", "int8");
        assert.equal(await same(), 69_005);
        const mixed = await errorOf(db.query("insert into items select * from items_plain"));
        assert.equal(mixed?.code, "0A000", String(mixed?.message));
        const fromTable = await errorOf(
          db.query("insert into items (id, name) select id + 1000000, name from items"),
        );
        assert.equal(fromTable?.code, "0A000", String(fromTable?.message));
        await db.query("delete from items where id = 900001");
        await db.query("delete from items_plain where id = 900001");
      });

      await t.step("INSERT … SELECT from a constant source is split by row", async () => {
        const before = await same();
        /** What a client sees of the statement on the sharded table and on the plain one. */
        const seen = async (sql: string, shift = 0, plain = "", params?: unknown[]) =>
          await db.query(sql, params).then(
            (r: pg.QueryResult) => ({
              command: r.command,
              rowCount: r.rowCount,
              rows: r.rows,
              fields: r.fields.map((f: pg.FieldDef) => [f.name, f.dataTypeID]),
            }),
            (e: pg.DatabaseError) => ({
              code: e.code,
              message: plain ? e.message.replaceAll(`${plain}_plain`, plain) : e.message,
              // Where the error is, in the statement on the sharded table.
              position: e.position === undefined ? undefined : Number(e.position) - shift,
              detail: e.detail,
            }),
          );
        const both = async (sql: string, table = "items", params?: unknown[]) => {
          const sharded = await seen(sql, 0, "", params);
          const plain = await seen(
            sql.replace(new RegExp(`\\b${table}\\b`), `${table}_plain`),
            "_plain".length,
            table,
            params,
          );
          assert.deepEqual(sharded, plain, sql);
          return sharded as Record<string, unknown>;
        };
        const inserted = (a: Record<string, unknown>) => a.rowCount as number;
        try {
          // generate_series, with RETURNING in the SELECT's order.
          assert.equal(
            inserted(
              await both(
                "insert into items (id, name, qty) select g, 'gs ' || g, g % 7 " +
                  "from generate_series(1000001, 1000200) g",
              ),
            ),
            200,
          );
          assert.equal(
            inserted(
              await both(
                "insert into items (id, name) select g, 'r' || g from generate_series(1000201, 1000230) g " +
                  "returning id, name, qty",
              ),
            ),
            30,
          );
          // VALUES in FROM: NULLs, non-ASCII text, quotes; an untyped literal into an int column.
          await both(
            "insert into items (id, name, note, qty) select v.id, v.n, null, '5' from (values " +
              "(1000301, 'ü 日本 🎉'), (1000302, null), (1000303, 'quote''s \\ back'), " +
              "(1000304, '')) v(id, n) returning *",
          );
          // UNION ALL of constants; numeric into int (the assignment rounds) and a computed key.
          await both(
            "insert into items (id, name, qty) select 1000401, 'a', 1.5 union all " +
              "select 1000402, 'b', 2.5 union all select 1000403 + 1, 'c', null returning *",
          );
          await both(
            "insert into items (id, note) select (1000500 + 1)::bigint, current_setting('port')",
          );
          // No rows: INSERT 0 0, and the RETURNING list's description.
          await both(
            "insert into items (id, name) select g, 'x' from generate_series(1, 0) g returning id",
          );
          // The SELECT's own error, at its place in the statement; a duplicate key on one shard.
          const missing = await both(
            "insert into items (id, name) select g, nosuch from generate_series(1, 3) g",
          );
          assert.equal(missing.code, "42703");
          assert.ok(missing.position, "a position");
          const dup = await both(
            "insert into items (id, name) select g, 'dup' from generate_series(1000231, 1000240) g " +
              "union all select 1000003, 'dup'",
          );
          assert.equal(dup.code, "23505");
          // ON CONFLICT DO NOTHING counts what it inserted, over both shards.
          assert.equal(
            inserted(
              await both(
                "insert into items (id, name) select g, 'on conflict' from " +
                  "generate_series(1000195, 1000210) g on conflict do nothing",
              ),
            ),
            0,
          );
          // Text keys.
          await both(
            "insert into tags (tag, n) select 'tag ' || g, g from generate_series(1, 60) g returning tag",
            "tags",
          );
          await placed("tags", "tag", "text");
          // In a block: the rows wait for COMMIT; ROLLBACK leaves none on either shard.
          await db.query("begin");
          await db.query(
            "insert into items (id, name) select g, 'tx' from generate_series(1000601, 1000640) g",
          );
          assert.equal(
            (await db.query("select count(*)::int as n from items where name = 'tx'")).rows[0].n,
            40,
          );
          await db.query("rollback");
          assert.equal(
            (await db.query("select count(*)::int as n from items where name = 'tx'")).rows[0].n,
            0,
          );
          await placed("items", "id", "int8");
          assert.equal(await same(), before + 200 + 30 + 4 + 3 + 1);
          // The extended protocol (npm:pg with parameters): the values written in first.
          assert.equal(
            inserted(
              await both(
                "insert into items (id, name, qty) select g, $1 || g, $2 from " +
                  "generate_series($3::int, $4::int) g returning id, name, qty",
                "items",
                ["ext ", "7", 1000701, 1000720],
              ),
            ),
            20,
          );
          const extError = await both(
            "insert into items (id, name) select g, $1 from generate_series($2::int, $3::int) g " +
              "union all select 1, $1",
            "items",
            ["dup", 1000721, 1000730],
          );
          assert.equal(extError.code, "23505");
          // A function the SELECT calls writes (to a table of the default tablegroup): when the
          // INSERT fails, its rows go too, as Postgres rolls back the whole statement.
          await db.query("create table if not exists audit (n int)");
          await db.query(
            "create or replace function log_row(g int) returns text language sql volatile " +
              "as 'insert into audit values (g) returning g::text'",
          );
          const audited = async () =>
            (await db.query("select count(*)::int as n from audit")).rows[0].n;
          const logged = await both(
            "insert into items (id, name) select g, log_row(g) from " +
              "generate_series(1000741, 1000745) g union all select 1, 'dup'",
          );
          assert.equal(logged.code, "23505");
          assert.equal(await audited(), 0, "the function's rows rolled back with the INSERT");
          await both(
            "insert into items (id, name) select g, log_row(g) from generate_series(1000741, 1000745) g",
          );
          assert.equal(await audited(), 10, "and kept when it commits (5 per table)");
          // Its writes commit with the shards' rows, or neither does: a deferred constraint they
          // break fails the statement at its end, as in Postgres.
          await db.query(
            "create table if not exists dlog (n int unique deferrable initially deferred)",
          );
          await db.query(
            "create or replace function dlog_row(g int) returns text language sql volatile " +
              "as 'insert into dlog values (1) returning g::text'",
          );
          const deferred = await both(
            "insert into items (id, name) select g, dlog_row(g) from generate_series(1000751, 1000752) g",
          );
          assert.equal(deferred.code, "23505");
          assert.equal(
            (await db.query("select count(*)::int as n from items where id > 1000750")).rows[0].n,
            0,
            "no row of it on any shard",
          );
          // Text that would not read back as the same value: refused, not changed.
          await db.query("set datestyle to 'SQL, DMY'");
          const style = await errorOf(
            db.query(
              "insert into items (id, note) select g, now() from generate_series(1000746, 1000747) g",
            ),
          );
          await db.query("reset datestyle");
          assert.equal(style?.code, "0A000", String(style?.message));
          // A value that begins with U+FEFF keeps it.
          await both(
            "insert into items (id, name) select 1000747, E'\\uFEFFbom' " +
              "union all select 1000748, 'x' returning name",
          );
          // postgres.js (a Parse and Describe first, then Bind and Execute of the named statement).
          const pjs = c.sql({ database: DB, max: 1 });
          try {
            const got: number[][] = [];
            for (const t of ["items", "items_plain"]) {
              const rows = await pjs<{ id: number }[]>`insert into ${pjs(t)} (id, name)
                select g, ${"pjs"} from generate_series(${1000731}::int, ${1000740}::int) g
                returning id::int`;
              got.push(rows.map((r) => r.id));
            }
            assert.equal(got[0].length, 10);
            assert.deepEqual(got[0], got[1]);
          } finally {
            await pjs.end();
          }
          // Refused: a key whose type could hash differently.
          const numericKey = await errorOf(
            db.query("insert into items (id) select g::numeric from generate_series(1, 3) g"),
          );
          assert.equal(numericKey?.code, "0A000", String(numericKey?.message));
          assert.equal(await same(), before + 238 + 20 + 5 + 2 + 10);
        } finally {
          // The next steps count the rows from before this one.
          await db.query("rollback");
          await db.query("delete from items where id > 1000000");
          await db.query("delete from items_plain where id > 1000000");
          await db.query("delete from tags where tag like 'tag %'");
          await db.query("delete from tags_plain where tag like 'tag %'");
        }
      });

      await t.step("what COPY cannot do across shards is refused with 0A000", async () => {
        for (
          const q of [
            "copy (select * from items order by id) to stdout with (format binary)",
            "copy (select count(*) from items) to stdout with (force_quote *)",
            "copy (select id, rank() over (order by id) from items) to stdout",
            "copy items (name) from stdin",
            "copy items from '/tmp/x'",
          ]
        ) {
          const e = await errorOf(db.query(q));
          assert.equal(e?.code, "0A000", `${q}: ${e?.message}`);
        }
        // A merged COPY's options are Postgres's to check: the same errors, at the same places.
        for (
          const q of [
            "copy (select id from items order by id) to stdout with (format xml)",
            "copy (select id from items order by id) to stdout with (delimiter 'ab')",
            "copy (select id from items order by id) to stdout (foo 1)",
            "copy (select id, nosuch from items order by id) to stdout",
            "copy (select id from items order by id) to stdout with (header match)",
            "copy (select id from items order by id) to stdout with (format csv, null ',')",
          ]
        ) {
          const sharded = await errorOf(db.query(q));
          const plainSql = q.replace(/\bitems\b/, "items_plain");
          const plain = await errorOf(db.query(plainSql));
          assert.ok(plain, q);
          // Where the plain statement's error is, in the sharded one's text.
          const at = plain.position === undefined ? undefined : Number(plain.position);
          const moved = at !== undefined && at > plainSql.indexOf("items_plain") + 1 ? at - 6 : at;
          assert.deepEqual(
            [sharded?.code, sharded?.message, sharded?.position],
            [plain.code, plain.message, moved === undefined ? undefined : String(moved)],
            q,
          );
        }
        assert.equal(await same(), 69_004);
      });
    } finally {
      for (const r of raws) r.close();
      for (const cl of opened) await cl.end().catch(() => {});
      await c.stop();
    }
  },
});
