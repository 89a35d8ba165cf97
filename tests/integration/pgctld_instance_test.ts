// Integration tests of pgctld's PostgresInstance against a real PostgreSQL 15+ (ports 26001-26016).

import assert from "node:assert/strict";
import { PostgresInstance, type PostgresInstanceOptions } from "../../src/pgctld/mod.ts";
import { portAnswers } from "../helpers/net.ts";

const PASSWORD = "s3cret-pw";
const MOD_URL = new URL("../../src/pgctld/mod.ts", import.meta.url).href;

interface Fixture {
  root: string;
  dataDir: string;
  socketDir: string;
  port: number;
  crashes: string[];
  make(extra?: Partial<PostgresInstanceOptions>): PostgresInstance;
}

/** Runs `fn` with a fresh temp directory; stops every postmaster of that directory and removes it. */
async function withFixture(port: number, fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "pgctld_test_" });
  await Deno.chmod(root, 0o755); // the postgres OS user must traverse it
  const dataDir = `${root}/data`;
  const crashes: string[] = [];
  const made: PostgresInstance[] = [];
  const fx: Fixture = {
    root,
    dataDir,
    socketDir: `${root}/sock`,
    port,
    crashes,
    make(extra = {}) {
      const pg = new PostgresInstance({
        dataDir,
        port,
        superuserPassword: PASSWORD,
        onCrash: (lastExit) => crashes.push(lastExit),
        ...extra,
      });
      made.push(pg);
      return pg;
    },
  };
  try {
    await fn(fx);
  } finally {
    for (const pg of made) {
      await pg.stop("immediate").catch(() => {});
      pg.close();
    }
    await killLeftover(dataDir);
    await Deno.remove(root, { recursive: true });
  }
}

/** Last resort: SIGKILL by the pid in postmaster.pid if it is still alive. */
async function killLeftover(dataDir: string): Promise<void> {
  let pid = 0;
  try {
    pid = Number((await Deno.readTextFile(`${dataDir}/postmaster.pid`)).split("\n")[0]);
  } catch {
    return;
  }
  if (pid > 0 && (await alive(pid))) {
    Deno.kill(pid, "SIGKILL");
    await waitFor(async () => !(await alive(pid)), 10_000, `pid ${pid} to die`);
  }
}

async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `psql -X -At -c sql` against host (a directory means the unix socket). */
async function psql(host: string, port: number, sql: string, password = PASSWORD) {
  const out = await new Deno.Command("psql", {
    args: ["-X", "-At", "-h", host, "-p", `${port}`, "-U", "postgres", "-d", "postgres", "-c", sql],
    env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: "5", PGSSLMODE: "disable" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, stdout: dec.decode(out.stdout).trim(), stderr: dec.decode(out.stderr) };
}

/** Starts Postgres from a separate deno process that exits right after; returns the pid. */
async function startFromOtherProcess(fx: Fixture): Promise<number> {
  const code = `
    import { PostgresInstance } from ${JSON.stringify(MOD_URL)};
    const pg = new PostgresInstance({ dataDir: Deno.env.get("T_DATA"), port: Number(Deno.env.get("T_PORT")), superuserPassword: ${
    JSON.stringify(PASSWORD)
  } });
    await pg.initDataDir();
    console.log(await pg.start());
    pg.close();
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { T_DATA: fx.dataDir, T_PORT: `${fx.port}`, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, `helper process failed: ${dec.decode(out.stderr)}`);
  return Number(dec.decode(out.stdout).trim());
}

Deno.test("PostgresInstance.initDataDir() creates the cluster once, with pgctld's settings", async () => {
  await withFixture(26001, async (fx) => {
    const pg = fx.make();
    assert.equal((await pg.status()).state, "NOT_INITIALIZED");
    assert.equal(await pg.initDataDir(), true);
    assert.equal(await pg.initDataDir(), false);

    const conf = await Deno.readTextFile(`${fx.dataDir}/postgresql.conf`);
    assert.match(conf, /^include_if_exists = 'multigres\.conf'$/m);
    const ours = await Deno.readTextFile(`${fx.dataDir}/multigres.conf`);
    assert.match(ours, /^port = 26001$/m);
    assert.match(ours, new RegExp(`^unix_socket_directories = '${fx.socketDir}'$`, "m"));
    assert.match(ours, /^wal_log_hints = on$/m);
    const hba = await Deno.readTextFile(`${fx.dataDir}/pg_hba.conf`);
    assert.match(hba, /^local\s+all\s+all\s+trust$/m);
    assert.match(hba, /^host\s+all\s+all\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
    for await (const e of Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp")) {
      assert.ok(!e.name.startsWith("pgctld-pw-"), `password file left behind: ${e.name}`);
    }

    const st = await pg.status();
    assert.equal(st.state, "STOPPED");
    assert.equal(st.pid, 0);
    assert.equal(st.dataDir, fx.dataDir);
    assert.equal(st.socketDir, fx.socketDir);
    assert.match(st.version, /^1[5-9]\.\d+$|^[2-9]\d\.\d+$/);
  });
});

Deno.test("PostgresInstance.start() serves SCRAM over TCP and trust over the socket", async () => {
  await withFixture(26002, async (fx) => {
    const pg = fx.make();
    await pg.initDataDir();
    await assert.rejects(pg.reload(), /Postgres is not running/);
    const pid = await pg.start();
    assert.ok(pid > 0);
    assert.equal(await pg.start(), pid, "start() again returns the running pid");
    const st = await pg.status();
    assert.equal(st.state, "RUNNING");
    assert.equal(st.pid, pid);

    const tcp = await psql("127.0.0.1", fx.port, "select 1");
    assert.ok(tcp.ok, tcp.stderr);
    assert.equal(tcp.stdout, "1");
    const wrong = await psql("127.0.0.1", fx.port, "select 1", "not-the-password");
    assert.equal(wrong.ok, false);
    assert.match(wrong.stderr, /password authentication failed/);
    const sock = await psql(fx.socketDir, fx.port, "select 1", "");
    assert.ok(sock.ok, sock.stderr);
    assert.equal(sock.stdout, "1");
    assert.equal((await Deno.stat(fx.socketDir)).mode! & 0o777, 0o700);

    // reload() makes Postgres pick up a changed setting.
    const set = await psql(fx.socketDir, fx.port, "alter system set work_mem = '7MB'");
    assert.ok(set.ok, set.stderr);
    assert.equal((await psql(fx.socketDir, fx.port, "show work_mem")).stdout, "4MB");
    await pg.reload();
    await waitFor(
      async () => (await psql(fx.socketDir, fx.port, "show work_mem")).stdout === "7MB",
      10_000,
      "work_mem to be reloaded",
    );
    assert.equal((await pg.status()).pid, pid);
  });
});

Deno.test("PostgresInstance.stop() closes the port and restart() brings a new postmaster", async () => {
  await withFixture(26003, async (fx) => {
    const pg = fx.make();
    await pg.initDataDir();
    const first = await pg.start({ options: { application_name: "pgctld_test" } });
    assert.equal(await portAnswers(fx.port), true);

    await pg.stop("fast");
    const st = await pg.status();
    assert.equal(st.state, "STOPPED");
    assert.equal(st.pid, 0);
    assert.equal(st.lastExit, "exit code 0");
    assert.equal(await alive(first), false);
    assert.equal(await portAnswers(fx.port), false);
    await pg.stop("fast"); // no-op
    assert.deepEqual(fx.crashes, []);

    const second = await pg.start();
    const third = await pg.restart("fast");
    assert.notEqual(third, second);
    assert.equal(await alive(second), false);
    assert.equal((await pg.status()).state, "RUNNING");
    assert.equal((await psql("127.0.0.1", fx.port, "select 2")).stdout, "2");
    await pg.stop("immediate");
    assert.equal((await pg.status()).state, "STOPPED");
    assert.deepEqual(fx.crashes, []);
  });
});

Deno.test("PostgresInstance reports CRASHED after kill -9 and starts again", async () => {
  await withFixture(26004, async (fx) => {
    const pg = fx.make();
    await pg.initDataDir();
    const pid = await pg.start();
    assert.ok((await psql(fx.socketDir, fx.port, "create table t as select 42 as x")).ok);

    Deno.kill(pid, "SIGKILL");
    await waitFor(async () => (await pg.status()).state === "CRASHED", 10_000, "CRASHED");
    const st = await pg.status();
    assert.equal(st.pid, 0);
    assert.match(st.lastExit, /SIGKILL/);
    assert.deepEqual(fx.crashes, [st.lastExit]);

    const again = await pg.start();
    assert.notEqual(again, pid);
    assert.equal((await pg.status()).state, "RUNNING");
    assert.equal((await psql(fx.socketDir, fx.port, "select x from t")).stdout, "42");
    await pg.stop();
    assert.equal((await pg.status()).state, "STOPPED");
  });
});

Deno.test("PostgresInstance.start() fails with the Postgres log when Postgres cannot start", async () => {
  await withFixture(26005, async (fx) => {
    const pg = fx.make();
    await pg.initDataDir();
    await assert.rejects(
      pg.start({ options: { shared_buffers: "plenty" } }),
      (err: Error) => {
        assert.match(
          err.message,
          /^Postgres exited during startup \(exit code 1\): .*shared_buffers/,
        );
        assert.ok(!err.message.includes("\n"), "one-line message");
        return true;
      },
    );
    assert.equal((await pg.status()).state, "STOPPED");
    await assert.rejects(pg.start({ options: { "bad name": "1" } }), /Invalid Postgres setting/);
    assert.deepEqual(fx.crashes, []);
  });
});

Deno.test("PostgresInstance adopts a postmaster that outlived the process that started it", async () => {
  await withFixture(26006, async (fx) => {
    const pid = await startFromOtherProcess(fx);
    assert.ok(await alive(pid), "postmaster survives its parent");
    const sid = Number((await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ")[3]);
    assert.equal(sid, pid, "postmaster leads its own session");

    const pg = fx.make();
    const st = await pg.status();
    assert.equal(st.state, "RUNNING");
    assert.equal(st.pid, pid);
    assert.equal(await pg.start(), pid);
    await pg.reload();
    assert.equal((await psql("127.0.0.1", fx.port, "select 3")).stdout, "3");
    await pg.stop("fast");
    assert.equal((await pg.status()).state, "STOPPED");
    assert.equal(await alive(pid), false);
    assert.equal(await portAnswers(fx.port), false);
    assert.deepEqual(fx.crashes, []);

    // An adopted postmaster that dies is noticed by polling.
    const pid2 = await startFromOtherProcess(fx);
    const watcher = fx.make();
    assert.equal((await watcher.status()).pid, pid2);
    Deno.kill(pid2, "SIGKILL");
    await waitFor(() => Promise.resolve(fx.crashes.length === 1), 5_000, "onCrash");
    const crashed = await watcher.status();
    assert.equal(crashed.state, "CRASHED");
    assert.equal(crashed.pid, 0);
    assert.match(crashed.lastExit, /unknown/);
  });
});

Deno.test("PostgresInstance.initReplica() copies a primary and streams from it, read-only", async () => {
  await withFixture(26011, async (fx) => {
    const primary = fx.make();
    await primary.initDataDir();
    await primary.start();
    const seed = await psql(
      fx.socketDir,
      fx.port,
      "create table t (v int); insert into t values (1)",
    );
    assert.ok(seed.ok, seed.stderr);

    const replicaPort = 26012;
    const replicaSock = `${fx.root}/replica_sock`;
    const replica = fx.make({
      dataDir: `${fx.root}/replica`,
      port: replicaPort,
      socketDir: replicaSock,
    });
    const source = { host: "127.0.0.1", port: fx.port, applicationName: "zone2_pooler_0" };
    assert.equal(await replica.initReplica(source), true);
    assert.equal(await replica.initReplica(source), false, "a second call leaves it alone");
    await replica.start();

    // start() returns once the postmaster runs as a standby; it accepts connections once it has
    // replayed up to a consistent point.
    await waitFor(
      async () => (await psql(replicaSock, replicaPort, "select 1", "")).ok,
      30_000,
      "the replica to accept connections",
    );
    const recovery = await psql(replicaSock, replicaPort, "select pg_is_in_recovery()", "");
    assert.equal(recovery.stdout, "t");
    assert.equal((await psql(replicaSock, replicaPort, "select v from t", "")).stdout, "1");
    // Its own settings (port, socket), not the primary's copied ones; SCRAM over TCP as before.
    assert.equal((await psql("127.0.0.1", replicaPort, "show port")).stdout, `${replicaPort}`);

    // New commits on the primary stream over, and the primary sees the replica by its name.
    assert.ok((await psql(fx.socketDir, fx.port, "insert into t values (2)")).ok);
    await waitFor(
      async () =>
        (await psql(replicaSock, replicaPort, "select count(*) from t", "")).stdout === "2",
      10_000,
      "the second row on the replica",
    );
    const repl = await psql(
      fx.socketDir,
      fx.port,
      "select application_name, state from pg_stat_replication",
    );
    assert.equal(repl.stdout, "zone2_pooler_0|streaming");

    // A replica refuses writes with Postgres's own error.
    const write = await psql(replicaSock, replicaPort, "insert into t values (3)", "");
    assert.equal(write.ok, false);
    assert.match(write.stderr, /cannot execute INSERT in a read-only transaction/);
  });
});

Deno.test("PostgresInstance.initReplica() fails clearly and leaves no data directory behind", async () => {
  await withFixture(26013, async (fx) => {
    const replica = fx.make();
    await assert.rejects(
      replica.initReplica({ host: "127.0.0.1", port: 26014, applicationName: "r" }),
      /pg_basebackup from 127\.0\.0\.1:26014 failed .*(refused|could not connect)/,
    );
    assert.equal((await replica.status()).state, "NOT_INITIALIZED");
  });
});

Deno.test("PostgresInstance.rewind() turns a diverged old primary into a standby of the new one", async () => {
  await withFixture(26015, async (fx) => {
    const oldPrimary = fx.make();
    await oldPrimary.initDataDir();
    await oldPrimary.start();
    assert.ok(
      (await psql(fx.socketDir, fx.port, "create table t (v int); insert into t values (1)")).ok,
    );
    const newPort = 26016;
    const newSock = `${fx.root}/new_sock`;
    const next = fx.make({ dataDir: `${fx.root}/new`, port: newPort, socketDir: newSock });
    await next.initReplica({ host: "127.0.0.1", port: fx.port, applicationName: "next" });
    await next.start();
    await waitFor(
      async () => (await psql(newSock, newPort, "select count(*) from t", "")).stdout === "1",
      30_000,
      "the replica to have the first row",
    );

    // Cut off (follow none), then promoted: the two histories part here.
    await next.follow(null);
    await waitFor(
      async () =>
        (await psql(newSock, newPort, "select count(*) from pg_stat_wal_receiver", "")).stdout ===
          "0",
      10_000,
      "the WAL receiver to stop",
    );
    assert.equal((await psql(newSock, newPort, "select pg_promote(true, 60)", "")).stdout, "t");
    assert.ok((await psql(newSock, newPort, "insert into t values (2)", "")).ok);
    // The old primary, still up, takes a write no one else has.
    assert.ok((await psql(fx.socketDir, fx.port, "insert into t values (99)")).ok);

    assert.equal(
      await oldPrimary.rewind({ host: "127.0.0.1", port: newPort, applicationName: "old" }),
      "rewound",
    );
    await waitFor(
      async () =>
        (await psql(fx.socketDir, fx.port, "select string_agg(v::text, ',' order by v) from t", ""))
          .stdout === "1,2",
      30_000,
      "the old primary to follow the new one",
    );
    assert.equal((await psql(fx.socketDir, fx.port, "select pg_is_in_recovery()", "")).stdout, "t");
    const repl = await psql(
      newSock,
      newPort,
      "select application_name from pg_stat_replication",
      "",
    );
    assert.equal(repl.stdout, "old");
    // What the new primary writes streams to it.
    assert.ok((await psql(newSock, newPort, "insert into t values (3)", "")).ok);
    await waitFor(
      async () => (await psql(fx.socketDir, fx.port, "select max(v) from t", "")).stdout === "3",
      10_000,
      "a new row on the rewound standby",
    );
  });
});
