/**
 * The edges of the protocol, judged by Postgres: every case sends the same bytes (and ends the
 * connection the same way) to the gateway and straight to the cluster's Postgres, in the same
 * test, and asserts the same answers, the same close-or-continue, no hang, and the same rows
 * committed afterwards.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { E2E, eventually, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { scramLogin } from "../helpers/login.ts";
import { FrameReader, parseErrorFields } from "../../src/shared/wire/mod.ts";
import {
  type Action,
  CASE_TABLE_SQL,
  committedRows,
  differential,
  Frames,
  GSSENC_REQUEST_CODE,
  runCase,
  type RunOptions,
  settle,
  SSL_REQUEST_CODE,
  type Target,
  type TargetResult,
} from "../helpers/differential.ts";

const f = () => new Frames();
const write = (fr: Frames): Action => ({ write: fr.bytes() });
const HALF_CLOSE: Action = { halfClose: true };
const CLOSE: Action = { close: true };
const RESET: Action = { reset: true };
const awaitMsg = (code: string, count = 1): Action => ({ awaitMessage: code, count });

interface EdgeCase {
  name: string;
  actions: () => Action[];
  opts?: Partial<RunOptions>;
  /**
   * For cases this Postgres cannot judge (it is built with GSSAPI and answers GSSENCRequest with
   * 'G', where the gateway, like a Postgres without GSSAPI, answers 'N'): the gateway's expected
   * outcome, as postmaster.c's ProcessStartupPacket gives it for 'N'.
   */
  expect?: { messages: string[]; closed: boolean };
  /**
   * Postgres answers, then waits for a TLS handshake that never comes (until its authentication
   * timeout): the gateway must give the same answer and must not get further.
   */
  postgresWaits?: boolean;
}

/** A COPY FROM STDIN under way (two rows sent), in an explicit transaction or not. */
function copyUnderWay(explicit: boolean): Action[] {
  return [
    write(f().query(explicit ? "begin" : "select 1")),
    awaitMsg("Z"),
    write(f().query("copy t from stdin")),
    awaitMsg("G"),
    write(f().copyData("c\t1\n").copyData("c\t2\n")),
  ];
}

const big = (n: number, ch = "x") => ch.repeat(n);

const CASES: EdgeCase[] = [
  // ---- work Postgres rolls back ----
  {
    name: "begin + insert, then Terminate in the same write",
    actions: () => [write(f().query("begin; insert into t values ('p', 1)").terminate())],
  },
  {
    name: "begin + insert, then EOF",
    actions: () => [write(f().query("begin; insert into t values ('p', 1)")), HALF_CLOSE],
  },
  {
    name: "unsynced Parse/Bind/Execute of an INSERT, then Terminate",
    actions: () => [
      write(f().parse("insert into t values ('u', 1)").bind().execute().terminate()),
    ],
  },
  {
    name: "unsynced Parse/Bind/Execute of an INSERT, then EOF",
    actions: () => [write(f().parse("insert into t values ('u', 2)").bind().execute()), HALF_CLOSE],
  },
  {
    name: "unsynced Parse/Bind/Execute of an INSERT, then close",
    actions: () => [write(f().parse("insert into t values ('u', 3)").bind().execute()), CLOSE],
  },
  {
    name: "a query and an unsynced INSERT in one write, then EOF",
    actions: () => [
      write(f().query("select 1").parse("insert into t values ('u', 5)").bind().execute()),
      awaitMsg("Z"),
      HALF_CLOSE,
    ],
  },
  {
    name: "unsynced Execute after Flush, then Terminate",
    actions: () => [
      write(f().parse("insert into t values ('u', 4)").bind().execute().flush()),
      awaitMsg("C"),
      write(f().terminate()),
    ],
  },
  ...(["close", "reset", "eof", "terminate", "query"] as const).flatMap((end) =>
    [false, true].map((explicit): EdgeCase => ({
      name: `COPY FROM STDIN${explicit ? " in a transaction" : ""}, then ${end}`,
      actions: () => [
        ...copyUnderWay(explicit),
        end === "close"
          ? CLOSE
          : end === "reset"
          ? RESET
          : end === "eof"
          ? HALF_CLOSE
          : end === "terminate"
          ? write(f().terminate())
          : write(f().query("select 1")),
      ],
    }))
  ),
  // ---- work Postgres commits ----
  {
    name: "an autocommit insert, then Terminate in the same write",
    actions: () => [write(f().query("insert into t values ('a', 1)").terminate())],
  },
  {
    name: "begin, insert, commit, then Terminate in the same write",
    actions: () => [
      write(f().query("begin").query("insert into t values ('a', 2)").query("commit").terminate()),
    ],
  },
  {
    name: "a synced insert pipeline, then EOF",
    actions: () => [
      write(
        f().parse("insert into t values ('a', 3)").bind().execute().sync()
          .parse("insert into t values ('a', 4)").bind().execute().sync(),
      ),
      HALF_CLOSE,
    ],
  },
  {
    name: "COPY FROM STDIN finished with CopyDone, then EOF",
    actions: () => [
      ...copyUnderWay(false),
      write(f().copyDone()),
      HALF_CLOSE,
    ],
  },
  // ---- answers, hangs and losses ----
  { name: "a query, then EOF", actions: () => [write(f().query("select 1")), HALF_CLOSE] },
  {
    name: "a failing query, then EOF",
    actions: () => [write(f().query("select * from no_such_table")), HALF_CLOSE],
  },
  {
    name: "10,000 pipelined queries, then EOF",
    actions: () => {
      const fr = f();
      for (let i = 0; i < 10_000; i++) fr.query(`select ${i}`);
      return [write(fr), HALF_CLOSE];
    },
  },
  { name: "Sync of length 10,001", actions: () => [write(f().header("S", 10_001))] },
  { name: "Execute of length 65,536", actions: () => [write(f().header("E", 65_536))] },
  { name: "Terminate of length 10,004", actions: () => [write(f().header("X", 10_004))] },
  { name: "a length below 4", actions: () => [write(f().header("Q", 3))] },
  {
    name: "Parse of length 4, then Sync",
    actions: () => [write(f().header("P", 4).sync())],
  },
  {
    name: "Bind whose portal name is not terminated, then Sync",
    actions: () => [write(f().header("B", 7, new Uint8Array([0x61, 0x62, 0x63])).sync())],
  },
  {
    name: "a Query whose length swallows the Sync after it",
    actions: () => {
      const q = f().query("select 1").bytes();
      new DataView(q.buffer).setInt32(1, q.length - 1 + 5);
      return [write(f().raw(q).sync())];
    },
  },
  {
    name: "a type byte that is no message, after a query",
    actions: () => [write(f().query("select 1").header("y", 4))],
  },
  {
    name: "a password message after startup",
    actions: () => [write(f().frame("p", (w) => w.cstring("secret")))],
  },
  {
    name: "a 50 MB Query is answered, and so is the next",
    actions: () => [write(f().query(`select length('${big(50 << 20)}')`)), awaitMsg("Z")],
  },
  {
    name: "a Bind with a 20 MB parameter is answered, and so is the next",
    actions: () => [
      write(f().parse("select length($1)").bind([big(20 << 20)]).execute().sync()),
      awaitMsg("Z"),
    ],
  },
  // ---- the startup phase ----
  { name: "connect, then close at once", actions: () => [CLOSE], opts: { login: false } },
  {
    name: "connect, then EOF at once",
    actions: () => [HALF_CLOSE],
    opts: { login: false },
  },
  {
    name: "half a startup packet, then EOF",
    actions: () => [write(f().raw([0, 0, 0, 40, 0, 3])), HALF_CLOSE],
    opts: { login: false },
  },
  {
    name: "a startup packet of length 3",
    actions: () => [write(f().raw([0, 0, 0, 3, 0, 0, 0, 0]))],
    opts: { login: false },
  },
  {
    name: "a startup packet of length 20,000",
    actions: () => [write(f().raw([0, 0, 0x4e, 0x20, 0, 3, 0, 0]))],
    opts: { login: false },
  },
  {
    name: "GSSENCRequest twice",
    actions: () => [
      write(f().startupPacket(GSSENC_REQUEST_CODE)),
      awaitMsg("N"),
      write(f().startupPacket(GSSENC_REQUEST_CODE)),
    ],
    opts: { login: false },
    expect: {
      messages: [
        "byte:N",
        "E:FATAL:0A000:unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0",
      ],
      closed: true,
    },
  },
  {
    name: "GSSENCRequest with the startup packet in the same write",
    actions: () => [write(f().startupPacket(GSSENC_REQUEST_CODE).startup())],
    opts: { login: false },
    expect: {
      messages: [
        "byte:N",
        "E:FATAL:08P01:received unencrypted data after GSSAPI encryption request",
      ],
      closed: true,
    },
  },
  {
    name: "GSSENCRequest, then SSLRequest, then a startup packet",
    actions: () => [
      write(f().startupPacket(GSSENC_REQUEST_CODE)),
      awaitMsg("N"),
      write(f().startupPacket(SSL_REQUEST_CODE)),
      awaitMsg("S"),
      CLOSE,
    ],
    opts: { login: false },
    expect: { messages: ["byte:N", "byte:S"], closed: true },
  },
  {
    name: "GSSENCRequest, then a startup packet",
    actions: () => [
      write(f().startupPacket(GSSENC_REQUEST_CODE)),
      awaitMsg("N"),
      write(f().startup({ user: "postgres", database: "postgres" })),
      awaitMsg("R"),
    ],
    opts: { login: false },
    expect: {
      messages: ["byte:N", "R", "E:FATAL:08P01:expected SASL response, got message type 81"],
      closed: true,
    },
  },
  {
    name: "SSLRequest with the startup packet in the same write",
    actions: () => [write(f().startupPacket(SSL_REQUEST_CODE).startup())],
    opts: { login: false, hangMs: 2000 },
    postgresWaits: true,
  },
  {
    name: "a startup packet of protocol 1234.5680 (a second GSSENCRequest's code) first",
    actions: () => [write(f().startupPacket(80877105))],
    opts: { login: false },
  },
];

/** Turns on TLS in the cluster's Postgres with the gateway's certificate. */
async function postgresTls(c: TestCluster, admin: pg.Client): Promise<void> {
  const pgDir = c.cluster.pgDataDir;
  for (const ext of ["crt", "key"]) {
    await Deno.copyFile(`${c.dir}/tls/server.${ext}`, `${pgDir}/edges.${ext}`);
    await new Deno.Command("chown", { args: ["postgres:postgres", `${pgDir}/edges.${ext}`] })
      .output();
    await Deno.chmod(`${pgDir}/edges.${ext}`, 0o600);
  }
  await admin.query("alter system set ssl_cert_file = 'edges.crt'");
  await admin.query("alter system set ssl_key_file = 'edges.key'");
  await admin.query("alter system set ssl = on");
  await admin.query("select pg_reload_conf()");
  // The reload is asynchronous: wait until new backends see it.
  for (let i = 0; i < 100; i++) {
    const probe = new pg.Client({
      host: "127.0.0.1",
      port: c.directPort,
      user: "postgres",
      password: c.password,
    });
    await probe.connect();
    const { rows } = await probe.query("show ssl");
    await probe.end();
    if (rows[0].ssl === "on") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("Postgres did not turn TLS on");
}

function summary(r: TargetResult): string {
  const m = r.messages.length > 12
    ? [...r.messages.slice(0, 6), `… ${r.messages.length - 12} more …`, ...r.messages.slice(-6)]
    : r.messages;
  return JSON.stringify({ ...r, messages: m });
}

Deno.test(
  "the protocol's edges: the gateway answers and commits as Postgres does",
  E2E,
  async (t) => {
    const c = await startCluster(1950);
    const admin = await c.client({ direct: true });
    try {
      await postgresTls(c, admin);
      const targets = {
        gateway: { name: "gateway" as const, port: c.port, password: c.password },
        postgres: { name: "postgres" as const, port: c.directPort, password: c.password },
      };
      for (const k of CASES) {
        await t.step(k.name, async () => {
          const opts = { login: true, ...k.opts };
          if (k.expect) {
            const got = await runCase(targets.gateway, k.actions(), opts);
            assert.deepEqual({ messages: got.messages, closed: got.closed, hung: got.hung }, {
              ...k.expect,
              hung: false,
            });
            return;
          }
          const r = await differential(targets, admin, k.actions, opts);
          if (k.postgresWaits) {
            assert.ok(r.postgres.hung, JSON.stringify(r));
            assert.deepEqual(r.gateway.messages, r.postgres.messages);
            return;
          }
          const why = `\n  postgres: ${summary(r.postgres)}\n  gateway:  ${summary(r.gateway)}`;
          assert.equal(r.postgres.hung, false, `Postgres itself hung${why}`);
          assert.equal(r.gateway.hung, false, `the gateway hung${why}`);
          assert.equal(r.gateway.lingering, false, `the session stayed busy${why}`);
          assert.deepEqual(r.gateway.rows, r.postgres.rows, `committed rows differ${why}`);
          assert.equal(r.gateway.closed, r.postgres.closed, `close-or-continue differs${why}`);
          assert.deepEqual(r.gateway.messages, r.postgres.messages, `answers differ${why}`);
        });
      }
      await t.step("npm:pg connect() then end() at once: no error, as with Postgres", async () => {
        const errors = async (port: number) => {
          const seen: string[] = [];
          const client = new pg.Client({
            host: "127.0.0.1",
            port,
            user: "postgres",
            password: c.password,
          });
          client.on("error", (e: Error) => seen.push(`event: ${e.message}`));
          // npm:pg leaves connect()'s promise pending when end() comes first: not awaited.
          client.connect().catch((e: Error) => seen.push(`connect: ${e.message}`));
          await client.end().catch((e: Error) => seen.push(`end: ${e.message}`));
          // deno-lint-ignore no-explicit-any
          const stream = (client as any).connection.stream;
          assert.ok(await eventually(() => stream.destroyed), "the socket stayed open");
          return seen;
        };
        assert.deepEqual(await errors(c.port), await errors(c.directPort));
      });
      await t.step(
        "an unsynced INSERT keeps its backend: other sessions' statements cannot commit it",
        async () => {
          await admin.query(CASE_TABLE_SQL);
          const a = await openSession(targets.gateway);
          // Flush: the INSERT's CommandComplete shows it ran, inside its open implicit transaction.
          await a.write(
            f().query("select 1").parse("insert into t values ('leak', 1)").bind().execute()
              .flush(),
          );
          await a.inserted;
          // Other sessions come and go on the pooled backends, each ending with a Sync or Query.
          const others: pg.Client[] = await Promise.all([1, 2, 3].map(() => c.client()));
          for (let i = 0; i < 5; i++) {
            await Promise.all(others.map((o) => o.query("select $1::int", [i])));
          }
          await Promise.all(others.map((o) => o.end()));
          assert.deepEqual(await committedRows(admin), []);
          a.close();
          assert.ok(await settle(admin));
          assert.deepEqual(await committedRows(admin), []);
        },
      );
    } finally {
      await admin.end().catch(() => {});
      await c.stop();
    }
  },
);

/** A logged-in raw session that stays open: write frames, wait for an INSERT to complete. */
async function openSession(target: Target) {
  const conn = await scramLogin(target.port, "postgres", target.password);
  let resolveInserted!: () => void;
  const inserted = new Promise<void>((r) => (resolveInserted = r));
  (async () => {
    const r = new FrameReader();
    for (;;) {
      const n = await conn.read(r.writable()).catch(() => null);
      if (n === null) return;
      r.commit(n);
      while (r.next()) {
        if (r.code === 0x45 /* E */) throw new Error(parseErrorFields(r.body).message);
        const tag = new TextDecoder().decode(r.body);
        if (r.code === 0x43 /* C */ && tag.startsWith("INSERT")) resolveInserted();
      }
    }
  })();
  return {
    inserted,
    write: (fr: Frames) => conn.write(fr.bytes()),
    close: () => conn.close(),
  };
}
