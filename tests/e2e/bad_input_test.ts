import assert from "node:assert/strict";
import {
  FrameReader,
  parseErrorFields,
  WireWriter,
  writeQuery,
  writeStartupMessage,
} from "../../src/shared/wire/mod.ts";
import type { PgError } from "../../src/shared/errors/mod.ts";
import { E2E, eventually, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { scramLogin } from "../helpers/login.ts";

/** Sends raw bytes to the gateway and returns the first ErrorResponse and whether it closed. */
async function sendRaw(
  port: number,
  ...chunks: Uint8Array[]
): Promise<{ error?: PgError; closed: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (const c of chunks) await conn.write(c);
    const r = new FrameReader();
    let error: PgError | undefined;
    for (;;) {
      const n = await conn.read(r.writable()).catch(() => null);
      if (n === null) return { error, closed: true };
      r.commit(n);
      while (r.next()) {
        if (r.code === 0x45 /* E */ && !error) error = parseErrorFields(r.body);
      }
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

async function stillServes(c: TestCluster): Promise<void> {
  const r = await c.psql(["-tAc", "select 'alive'"]);
  assert.equal(r.stdout.trim(), "alive", r.stderr);
}

/** A logged-in raw connection (SCRAM done by our own client code), ready for queries. */
function rawSession(c: TestCluster): Promise<Deno.Conn> {
  return scramLogin(c.port, "postgres", c.password);
}

async function poolerStatus(c: TestCluster): Promise<{ backendsInUse: number; sessions: number }> {
  const res = await fetch(`http://127.0.0.1:${c.cluster.ports.poolerHttp}/status`);
  return await res.json();
}

Deno.test("bad input gets Postgres's errors and loses nothing", E2E, async (t) => {
  const c = await startCluster(1200);
  const held = await c.client(); // a session that must survive everyone else's mistakes
  try {
    await held.query("create table kept (v int)");
    await held.query("insert into kept values (1)");

    await t.step("wrong password → FATAL 28P01 and no session is opened", async () => {
      const before = await poolerStatus(c);
      await assert.rejects(c.client({ password: "wrong" }), (e: Error & { code?: string }) => {
        assert.equal(e.code, "28P01");
        assert.match(e.message, /password authentication failed for user "postgres"/);
        return true;
      });
      const r = await c.psql(["-c", "select 1"], { password: "nope" });
      assert.match(r.stderr, /FATAL:\s+password authentication failed for user "postgres"/);
      const after = await poolerStatus(c);
      assert.equal(after.sessions, before.sessions);
    });

    await t.step("unknown user → the same 28P01 (no hint that the role is missing)", async () => {
      const out = await new Deno.Command("psql", {
        args: ["-X", "-h", "127.0.0.1", "-p", String(c.port), "-U", "ghost", "-d", "postgres"],
        env: { PGPASSWORD: "x" },
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      assert.match(
        new TextDecoder().decode(out.stderr),
        /FATAL:\s+password authentication failed for user "ghost"/,
      );
    });

    await t.step("unknown database → FATAL 3D000", async () => {
      await assert.rejects(
        c.client({ database: "no_such_db" }),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, "3D000");
          assert.match(e.message, /database "no_such_db" does not exist/);
          return true;
        },
      );
    });

    await t.step("template1 is there, template0 refused, as Postgres answers", async () => {
      for (const direct of [false, true]) {
        const t1 = await c.client({ database: "template1", direct });
        try {
          const r = await t1.query("select current_database() as db");
          assert.deepEqual(r.rows, [{ db: "template1" }]);
        } finally {
          await t1.end();
        }
        await assert.rejects(
          c.client({ database: "template0", direct }),
          (e: Error & { code?: string }) => {
            assert.equal(e.code, "55000", `direct: ${direct}`);
            assert.match(e.message, /database "template0" is not currently accepting connections/);
            return true;
          },
        );
      }
    });

    await t.step(
      "a startup packet with a bad length → closed without a word, as Postgres does",
      async () => {
        // Postgres only logs "invalid length of startup packet" (COMMERROR) and closes.
        for (const port of [c.port, c.directPort]) {
          const tooShort = await sendRaw(port, u32(3), new Uint8Array(4));
          assert.deepEqual(tooShort, { error: undefined, closed: true });
          const tooLong = await sendRaw(port, u32(20000), new Uint8Array(64));
          assert.deepEqual(tooLong, { error: undefined, closed: true });
        }
        await stillServes(c);
      },
    );

    await t.step("a startup packet without its terminator → FATAL 08P01", async () => {
      const body = new TextEncoder().encode("user\0postgres"); // no NULs at the end
      const pkt = new Uint8Array(8 + body.length);
      new DataView(pkt.buffer).setInt32(0, pkt.length);
      new DataView(pkt.buffer).setInt32(4, 196608);
      pkt.set(body, 8);
      const r = await sendRaw(c.port, pkt);
      assert.equal(r.error?.sqlstate, "08P01");
      assert.ok(r.closed);
    });

    await t.step("an oversized or unknown message mid-session → FATAL 08P01", async () => {
      // Start a real session with npm:pg, then break the protocol on a raw socket of our own.
      const w = new WireWriter();
      writeStartupMessage(w, { user: "postgres", database: "postgres" });
      const hdr = new Uint8Array(5);
      hdr[0] = 0x51;
      new DataView(hdr.buffer).setInt32(1, 0x7fff_fff0);
      // The gateway asks for SASL first; a 'Q' frame that large is refused as it arrives.
      const r = await sendRaw(c.port, w.view().slice(), hdr);
      assert.equal(r.error?.sqlstate, "08P01");
      assert.ok(r.closed);
      await stillServes(c);
    });

    await t.step("a message type that does not exist, after login → FATAL 08P01", async () => {
      const client = await c.client();
      const result = await new Promise<string>((resolve) => {
        client.on("error", (e: Error & { code?: string }) => resolve(e.code ?? e.message));
        // deno-lint-ignore no-explicit-any
        const stream = (client as any).connection.stream;
        stream.write(new Uint8Array([0x7a, 0, 0, 0, 4]));
      });
      assert.equal(result, "08P01");
      await client.end().catch(() => {});
      await stillServes(c);
    });

    await t.step(
      "a client that disconnects mid-query: the statement ends as in Postgres, the backend is freed",
      async () => {
        const w = new WireWriter();
        // Under transaction pooling an idle session (the held one) keeps no backend.
        const baseline = 0;
        assert.ok(await eventually(async () => (await poolerStatus(c)).backendsInUse === baseline));
        const client = await c.client();
        client.on("error", () => {}); // it is about to lose its socket on purpose
        // deno-lint-ignore no-explicit-any
        const stream = (client as any).connection.stream;
        writeQuery(w, "select pg_sleep(2) /* abandoned */");
        stream.write(w.view().slice());
        const direct = await c.client({ direct: true });
        try {
          const running = await eventually(async () => {
            const r = await direct.query(
              "select count(*)::int as n from pg_stat_activity where query like '%abandoned%' and state = 'active' and pid <> pg_backend_pid()",
            );
            return r.rows[0].n === 1;
          });
          assert.ok(running, "the sleep never started");
          // The client vanishes without Terminate. Postgres notices a vanished client only when it
          // next reads or writes, so the statement runs to its end there; here too, and then the
          // backend is rolled back and given back.
          stream.destroy();
          let seen = "";
          const gone = await eventually(async () => {
            const r = await direct.query(
              "select count(*)::int as n from pg_stat_activity where query like '%abandoned%' and state = 'active' and pid <> pg_backend_pid()",
            );
            const st = await poolerStatus(c);
            seen = `active queries ${
              r.rows[0].n
            }, backends in use ${st.backendsInUse} (want ${baseline})`;
            return r.rows[0].n === 0 && st.backendsInUse === baseline;
          });
          assert.ok(gone, `the abandoned query's backend stayed reserved: ${seen}`);
        } finally {
          await direct.end();
        }
      },
    );

    await t.step("a client that stops reading holds back its own backend, not memory", async () => {
      const gatewayPid = c.cluster.running().multigateway!;
      const rss = () =>
        Number(/VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${gatewayPid}/status`))![1]);
      const before = rss();
      const rows = 200_000; // ~200 MB of results
      const conn = await rawSession(c);
      const w = new WireWriter();
      writeQuery(w, `select repeat('x', 1000) /* slow reader */ from generate_series(1, ${rows})`);
      await conn.write(w.view());
      const direct = await c.client({ direct: true });
      try {
        // Postgres itself reports that the backend waits for its client (the pooler) to read.
        const blocked = await eventually(async () => {
          const r = await direct.query(
            "select wait_event from pg_stat_activity where query like '%slow reader%' and pid <> pg_backend_pid()",
          );
          return r.rows[0]?.wait_event === "ClientWrite";
        });
        assert.ok(blocked, "the backend never waited on its client");
        const grown = rss() - before;
        assert.ok(grown < 100 * 1024, `the gateway grew by ${grown} kB while the client slept`);
        // Now read everything: every row arrives.
        const r = new FrameReader();
        let dataRows = 0;
        let ready = false;
        let error = "";
        while (!ready) {
          const n = await conn.read(r.writable(65536));
          if (n === null) break;
          r.commit(n);
          while (r.next()) {
            if (r.code === 0x44 /* D */) dataRows++;
            if (r.code === 0x45 /* E */) error = parseErrorFields(r.body).message;
            if (r.code === 0x5a /* Z */) ready = true;
          }
        }
        assert.equal(error, "");
        assert.equal(dataRows, rows);
      } finally {
        conn.close();
        await direct.end();
      }
    });

    await t.step("Terminate right after a write: the write still happens", async () => {
      const conn = await rawSession(c);
      const w = new WireWriter();
      writeQuery(w, "select pg_sleep(0.5); insert into kept values (42)");
      w.begin(0x58 /* Terminate */).end();
      await conn.write(w.view());
      conn.close();
      const landed = await eventually(async () => {
        const r = await held.query("select count(*)::int as n from kept where v = 42");
        return r.rows[0].n === 1;
      });
      assert.ok(landed, "the statement sent before Terminate was lost");
    });

    await t.step("a client that vanishes mid-COPY leaves a clean backend", async () => {
      const conn = await rawSession(c);
      const w = new WireWriter();
      writeQuery(w, "copy kept from stdin");
      await conn.write(w.view());
      const r = new FrameReader();
      let copyIn = false;
      while (!copyIn) {
        const n = await conn.read(r.writable());
        if (n === null) break;
        r.commit(n);
        while (r.next()) if (r.code === 0x47 /* G */) copyIn = true;
      }
      assert.ok(copyIn);
      w.reset();
      w.begin(0x64 /* CopyData */).string("7\n").end();
      await conn.write(w.view());
      conn.close(); // gone without CopyDone
      const settled = await eventually(async () => (await poolerStatus(c)).backendsInUse === 0 // an idle session holds none
      );
      assert.ok(settled, "the backend stayed reserved after the COPY was abandoned");
      // The half-done COPY was rolled back, and every pooled backend still answers plainly.
      const rows = await held.query("select count(*)::int as n from kept where v = 7");
      assert.equal(rows.rows[0].n, 0);
      for (let i = 0; i < 4; i++) await stillServes(c);
    });

    await t.step("pg_terminate_backend: the client sees exactly what Postgres sends", async () => {
      // The same scenario directly against Postgres and through the gateway.
      const codes = async (direct: boolean) => {
        const victim = await c.client({ direct });
        const errors: string[] = [];
        victim.on("error", (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
        // In a transaction the session holds its backend (between transactions it holds none,
        // and terminating an idle pooled backend is nothing the client can see).
        await victim.query("begin");
        // The backend's own pid (through the gateway, pg_backend_pid() is the session's).
        const pid = (await victim.query(
          direct
            ? "select pg_backend_pid() as pid"
            : "select backend_pid as pid from multigres.session_backends where session_pid = pg_backend_pid()",
        )).rows[0].pid;
        const admin = await c.client({ direct: true });
        try {
          await admin.query("select pg_terminate_backend($1)", [pid]);
        } finally {
          await admin.end();
        }
        assert.ok(await eventually(() => errors.length > 0));
        await new Promise((r) => setTimeout(r, 500)); // anything more would arrive by now
        await victim.end().catch(() => {});
        return errors;
      };
      const direct = await codes(true);
      assert.equal(direct[0], "57P01");
      assert.deepEqual(await codes(false), direct);
      await stillServes(c);
    });

    await t.step("the held session saw none of it", async () => {
      const r = await held.query("select v from kept order by v");
      assert.deepEqual(r.rows, [{ v: 1 }, { v: 42 }]); // 42: the write sent before Terminate
    });
  } finally {
    await held.end().catch(() => {});
    await c.stop();
  }
});
