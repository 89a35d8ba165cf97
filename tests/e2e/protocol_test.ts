import assert from "node:assert/strict";
import { FrameReader, parseErrorFields, WireWriter } from "../../src/shared/wire/mod.ts";
import { E2E, eventually, psql, startCluster, type TestCluster } from "../helpers/cluster.ts";

/** Sends raw frames on an npm:pg connection's socket and collects the answer up to ReadyForQuery. */
async function rawExchange(c: TestCluster, direct: boolean, build: (w: WireWriter) => void) {
  const pg = (await import("pg")).default;
  const client = new pg.Client({
    host: "127.0.0.1",
    port: direct ? c.directPort : c.port,
    user: "postgres",
    password: c.password,
  });
  await client.connect();
  // deno-lint-ignore no-explicit-any
  const stream = (client as any).connection.stream;
  // Take the socket over: npm:pg must not see these frames.
  stream.removeAllListeners("data");
  const r = new FrameReader();
  const seen: string[] = [];
  const done = new Promise<void>((resolve) => {
    stream.on("data", (chunk: Uint8Array) => {
      r.push(chunk);
      while (r.next()) {
        const code = String.fromCharCode(r.code);
        seen.push(code === "E" ? `E:${parseErrorFields(r.body).sqlstate}` : code);
        if (code === "Z") resolve();
      }
    });
  });
  const w = new WireWriter();
  build(w);
  stream.write(w.view().slice());
  await done;
  // npm:pg reports the socket it no longer owns closing: expected here.
  client.on("error", () => {});
  stream.destroy();
  return seen;
}

Deno.test(
  "the protocol through the gateway: notify, COPY, cursors, pipelines, errors",
  E2E,
  async (t) => {
    const c = await startCluster(1850);
    const sql = c.sql();
    try {
      await t.step("LISTEN/NOTIFY: notifications arrive asynchronously", async () => {
        const got: string[] = [];
        // Its own client: a listening session keeps its backend, and it ends with this step.
        const listener = c.sql();
        try {
          await listener.listen("news", (payload) => got.push(payload));
          const other = c.sql({ max: 1 });
          try {
            await other`select pg_notify('news', 'first')`;
            await other.unsafe("notify news, 'second'");
          } finally {
            await other.end();
          }
          assert.ok(await eventually(() => got.length === 2), `got ${JSON.stringify(got)}`);
          assert.deepEqual(got, ["first", "second"]);
        } finally {
          await listener.end();
        }
      });

      await t.step("COPY FROM STDIN and TO STDOUT with npm:postgres", async () => {
        await sql`create table copied (id int, name text)`;
        const writable = await sql`copy copied from stdin`.writable();
        await new Promise<void>((resolve, reject) => {
          writable.on("error", reject);
          writable.write("1\tuno\n2\tdos\n");
          writable.end("3\ttrés\n", resolve);
        });
        const [{ n }] = await sql`select count(*)::int as n from copied`;
        assert.equal(n, 3);
        const readable = await sql`copy (select * from copied order by id) to stdout`.readable();
        let text = "";
        for await (const chunk of readable) text += new TextDecoder().decode(chunk);
        assert.equal(text, "1\tuno\n2\tdos\n3\ttrés\n");
      });

      await t.step(
        "COPY with bad data fails with Postgres's error and the session goes on",
        async () => {
          const script = `${c.dir}/bad_copy.sql`;
          await Deno.writeTextFile(
            script,
            "\\copy copied from stdin\nnot-a-number\tx\n\\.\nselect 'still here', count(*) from copied;\n",
          );
          const r = await psql(
            c.port,
            ["-tA", "-v", "VERBOSITY=verbose", "-f", script],
            c.password,
          );
          assert.match(r.stderr, /ERROR:\s+22P02: invalid input syntax for type integer/);
          assert.equal(r.stdout.trim(), "still here|3");
        },
      );

      await t.step(
        "cursors: postgres.js .cursor() reads in batches inside a transaction",
        async () => {
          let rows = 0;
          let batches = 0;
          await sql.begin(async (tx) => {
            for await (const batch of tx`select g from generate_series(1, 1000) g`.cursor(100)) {
              rows += batch.length;
              batches++;
            }
          });
          assert.equal(rows, 1000);
          assert.equal(batches, 10);
        },
      );

      await t.step("pipelining: many queries in flight on one connection", async () => {
        const one = c.sql({ max: 1 });
        try {
          const results = await Promise.all(
            Array.from({ length: 200 }, (_, i) => one`select ${i}::int as v`),
          );
          assert.deepEqual(results.map((r) => r[0].v), Array.from({ length: 200 }, (_, i) => i));
        } finally {
          await one.end();
        }
      });

      await t.step(
        "Bind to a missing statement, Execute of a missing portal: Postgres's errors",
        async () => {
          const missing = (w: WireWriter) => {
            w.begin(0x42 /* B */).cstring("").cstring("nope").int16(0).int16(0).int16(0).end();
            w.begin(0x45 /* E */).cstring("no_portal").int32(0).end();
            w.begin(0x53 /* S */).end();
          };
          const direct = await rawExchange(c, true, missing);
          assert.deepEqual(direct, ["E:26000", "Z"]);
          assert.deepEqual(await rawExchange(c, false, missing), direct);
        },
      );

      await t.step("out-of-order messages: Execute before Bind, Describe of nothing", async () => {
        const outOfOrder = (w: WireWriter) => {
          w.begin(0x45 /* E */).cstring("").int32(0).end();
          w.begin(0x44 /* D */).int8(0x50).cstring("ghost").end();
          w.begin(0x53 /* S */).end();
        };
        const direct = await rawExchange(c, true, outOfOrder);
        assert.equal(direct[0], "E:34000");
        assert.deepEqual(await rawExchange(c, false, outOfOrder), direct);
      });

      await t.step(
        "a client that vanishes mid-transaction: rolled back, backend reused clean",
        async () => {
          await sql`create table tx_left (v int)`;
          const pg = (await import("pg")).default;
          const gone = new pg.Client({
            host: "127.0.0.1",
            port: c.port,
            user: "postgres",
            password: c.password,
          });
          await gone.connect();
          gone.on("error", () => {});
          await gone.query("begin");
          await gone.query("insert into tx_left values (1)");
          await gone.query("set local work_mem = '64MB'");
          // deno-lint-ignore no-explicit-any
          (gone as any).connection.stream.destroy();
          const idle = await eventually(async () => {
            const res = await fetch(`http://127.0.0.1:${c.cluster.ports.poolerHttp}/status`);
            return (await res.json()).backendsInUse === 0;
          });
          assert.ok(idle);
          const [{ n }] = await sql`select count(*)::int as n from tx_left`;
          assert.equal(n, 0);
          // Every pooled backend is clean: no open transaction, default settings.
          const others = c.sql({ max: 10 });
          try {
            const rs = await Promise.all(
              Array.from(
                { length: 10 },
                () =>
                  others`select current_setting('work_mem') as w, pg_current_xact_id_if_assigned() is null as fresh_tx`,
              ),
            );
            for (const [r] of rs) {
              assert.deepEqual({ ...r }, { w: "4MB", fresh_tx: true });
            }
          } finally {
            await others.end();
          }
        },
      );
    } finally {
      await sql.end();
      await c.stop();
    }
  },
);
