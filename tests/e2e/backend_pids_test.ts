import assert from "node:assert/strict";
import type pg from "pg";
import {
  E2E,
  eventually,
  startCluster,
  startExtraGateway,
  type TestCluster,
} from "../helpers/cluster.ts";

/** What a client saw of its pids, the same shape directly and through the gateway. */
interface Seen {
  /** pg_backend_pid() equals the BackendKeyData pid, in every transaction and both protocols. */
  ownPid: boolean[];
  columns: string[];
  /** pg_isolation_test_session_is_blocked(B, {A, B}) while B waits for A's lock. */
  blocked: boolean;
  /** pg_blocking_pids(B), as pids the clients know. */
  blockers: "A" | string;
  cancelB: { result: boolean; bGot: string };
  /** A's connection ends (the FATAL 57P01 itself: see bad_input_test) and its work is undone. */
  terminateA: { result: boolean; aEnded: boolean; rowsLeft: number };
  terminateIdle: { result: boolean; dGot: string };
  cancelIdle: { result: boolean; eAfter: string };
  unknown: { result: boolean; notices: string[] };
  /** A notification names its sender by the sender's pid. */
  notifier: "B" | number;
}

const NO_SUCH_PID = 2_147_483_000;

/**
 * Runs the same steps on clients made by `connect` (Postgres directly, or the gateway); the
 * session that asks, cancels and terminates (C) is made by `signaller`.
 */
async function scenario(
  connect: () => Promise<pg.Client>,
  signaller = connect,
): Promise<Seen> {
  const clients: pg.Client[] = [];
  const fatal = new Map<pg.Client, string>();
  const open = async (how = connect) => {
    const c = await how();
    // A terminated session's client reports the FATAL error as an event, or on its next query,
    // whichever comes first (a race directly as well as through the gateway).
    c.on("error", (err: Error & { code?: string }) => fatal.set(c, err.code ?? err.message));
    clients.push(c);
    return c;
  };
  try {
    const [a, b, d, e] = [await open(), await open(), await open(), await open()];
    const c = await open(signaller);
    const ownPid: boolean[] = [];
    let columns: string[] = [];
    for (let i = 0; i < 3; i++) {
      // Other sessions' transactions in between: under transaction pooling the next one of `a`
      // may run on another backend.
      await b.query("select 1");
      const r = await a.query("select pg_backend_pid()");
      columns = r.fields.map((f: { name: string; dataTypeID: number }) =>
        `${f.name}:${f.dataTypeID}`
      );
      ownPid.push(r.rows[0].pg_backend_pid === a.processID);
      const x = await a.query("select pg_catalog.pg_backend_pid() as me where $1::int = 1", [1]);
      ownPid.push(x.rows[0].me === a.processID);
    }
    await c.query("create table pids_t (x int)");
    await a.query("begin");
    await a.query("insert into pids_t values (1)");
    await a.query("lock table pids_t in access exclusive mode");
    const waiting = b.query("select count(*) from pids_t").then(
      () => "ok",
      (err: Error & { code?: string }) => err.code ?? err.message,
    );
    // As isolationtester asks: a prepared statement, the pid as a parameter.
    const isBlocked = {
      name: "blocked",
      text:
        `SELECT pg_catalog.pg_isolation_test_session_is_blocked($1, '{${a.processID},${b.processID}}')`,
    };
    const blocked = await eventually(async () =>
      (await c.query({ ...isBlocked, values: [b.processID] })).rows[0]
        .pg_isolation_test_session_is_blocked === true
    );
    const bp = (await c.query("select pg_blocking_pids($1)", [b.processID])).rows[0]
      .pg_blocking_pids as number[];
    const blockers = bp.length === 1 && bp[0] === a.processID ? "A" : JSON.stringify(bp);

    const cancelB = (await c.query(`select pg_cancel_backend(${b.processID})`)).rows[0]
      .pg_cancel_backend as boolean;
    const bGot = await waiting;

    const terminateA = (await c.query("select pg_terminate_backend($1)", [a.processID])).rows[0]
      .pg_terminate_backend as boolean;
    // npm:pg reports the FATAL error or only the closed connection, whichever it reads first
    // (directly as well): the connection's end is what is compared.
    const aEnded = await eventually(async () =>
      fatal.has(a) || await a.query("select 1").then(() => false, () => true)
    );
    // A's transaction is rolled back: its row is gone and its lock released.
    const rowsLeft = Number((await c.query("select count(*) from pids_t")).rows[0].count);

    const terminateIdle = (await c.query(`select pg_terminate_backend(${d.processID})`)).rows[0]
      .pg_terminate_backend as boolean;
    const dClosed = await eventually(async () =>
      await d.query("select 1").then(() => false, () => true)
    );

    const cancelIdle = (await c.query("select pg_cancel_backend($1)", [e.processID])).rows[0]
      .pg_cancel_backend as boolean;
    const eAfter = (await e.query("select 'still here' as v")).rows[0].v;

    const notices: string[] = [];
    c.on(
      "notice",
      (n: { severity?: string; message: string }) => notices.push(`${n.severity} ${n.message}`),
    );
    const unknown = (await c.query(`select pg_terminate_backend(${NO_SUCH_PID})`)).rows[0]
      .pg_terminate_backend as boolean;
    await c.query("drop table pids_t");

    const heard = new Promise<number>((resolve) =>
      e.on("notification", (n: { processId: number }) => resolve(n.processId))
    );
    await e.query("listen pids_channel");
    await b.query("notify pids_channel, 'hello'");
    const sender = await heard;
    return {
      ownPid,
      columns,
      blocked,
      blockers,
      cancelB: { result: cancelB, bGot },
      terminateA: { result: terminateA, aEnded, rowsLeft },
      terminateIdle: { result: terminateIdle, dGot: dClosed ? "closed" : "still open" },
      cancelIdle: { result: cancelIdle, eAfter },
      unknown: { result: unknown, notices },
      notifier: sender === b.processID ? "B" : sender,
    };
  } finally {
    for (const c of clients) await c.end().catch(() => {});
  }
}

const EXPECTED: Seen = {
  ownPid: [true, true, true, true, true, true],
  columns: ["pg_backend_pid:23"],
  blocked: true,
  blockers: "A",
  cancelB: { result: true, bGot: "57014" },
  terminateA: { result: true, aEnded: true, rowsLeft: 0 },
  terminateIdle: { result: true, dGot: "closed" },
  cancelIdle: { result: true, eAfter: "still here" },
  unknown: {
    result: false,
    notices: [`WARNING PID ${NO_SUCH_PID} is not a PostgreSQL backend process`],
  },
  notifier: "B",
};

Deno.test("session pids: pg_backend_pid, blocking pids, cancel and terminate", E2E, async (t) => {
  for (const poolMode of ["transaction", "session"] as const) {
    const cluster: TestCluster = await startCluster(3700, { poolMode });
    try {
      const direct = await scenario(() => cluster.client({ direct: true }));
      await t.step(`${poolMode} pooling: directly, Postgres answers as expected`, () => {
        assert.deepEqual(direct, EXPECTED);
      });
      await t.step(`${poolMode} pooling: through the gateway, the same`, async () => {
        assert.deepEqual(await scenario(() => cluster.client()), direct);
      });
      await t.step(`${poolMode} pooling: multigres.session_backends maps sessions`, async () => {
        const [a, c] = [await cluster.client(), await cluster.client()];
        try {
          // pg_stat_activity shows the session under its own pid; session_backends says which
          // backend serves it.
          const stateOf = async () =>
            (await c.query(
              `select a.state, s.backend_pid > 0 as mapped from pg_stat_activity a
                 left join multigres.session_backends s on s.session_pid = a.pid
                where a.pid = $1`,
              [a.processID],
            )).rows.map((r: { state: string; mapped: boolean }) => `${r.state}:${r.mapped}`);
          await a.query("begin");
          await a.query("select 1");
          assert.deepEqual(await stateOf(), ["idle in transaction:true"]);
          await a.query("commit");
          // Between transactions a session holds a backend only under session pooling.
          assert.deepEqual(await stateOf(), poolMode === "session" ? ["idle:true"] : []);
        } finally {
          await a.end();
          await c.end();
        }
      });
      await t.step(`${poolMode} pooling: signalled from another gateway, the same`, async () => {
        const other = await startExtraGateway(cluster, 60);
        try {
          const seen = await scenario(
            () => cluster.client(),
            () => cluster.client({ port: other.port }),
          );
          assert.deepEqual(seen, direct);
        } finally {
          await other.stop();
        }
      });
    } finally {
      await cluster.stop();
    }
  }
});
