/**
 * A throwaway PostgreSQL 15 for tests that need only a server, not a cluster: initdb (UTF8, the
 * given locale) into a temp directory, start on 127.0.0.1 only (user postgres, trust), run `fn`,
 * then stop it and remove everything, also when `fn` throws. Run as root, Postgres runs as the
 * `postgres` OS user (it refuses root).
 *
 * @module
 */

import pg from "pg";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const decoder = new TextDecoder();

interface RunResult {
  ok: boolean;
  out: string;
}

async function osUser(name: string): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) => {
    const r = await new Deno.Command("id", { args: [flag, name], stdin: "null" }).output();
    if (!r.success) throw new Error(`no OS user "${name}": ${decoder.decode(r.stderr).trim()}`);
    return Number(decoder.decode(r.stdout).trim());
  };
  return { uid: await id("-u"), gid: await id("-g") };
}

async function run(prefix: string[], cmd: string, args: string[]): Promise<RunResult> {
  const argv = [...prefix, cmd, ...args];
  const r = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).output();
  return { ok: r.success, out: decoder.decode(r.stdout) + decoder.decode(r.stderr) };
}

async function killPostmaster(dataDir: string): Promise<void> {
  let pid = 0;
  try {
    pid = Number((await Deno.readTextFile(`${dataDir}/postmaster.pid`)).split("\n")[0]);
  } catch {
    return; // never started, or stopped cleanly
  }
  if (pid > 0) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** How the throwaway server is made. */
export interface ThrowawayPostgresOptions {
  /** `initdb --locale` (the cluster's databases use C.UTF-8). */
  locale: string;
  /** Prefix of the temp directory's name. */
  name: string;
  /** `max_connections`. */
  maxConnections: number;
}

/** Runs `fn` while a fresh Postgres listens on 127.0.0.1:`port`. */
export async function withThrowawayPostgres(
  port: number,
  opts: ThrowawayPostgresOptions,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await Deno.stat(`${PG_BIN}/initdb`);
  } catch {
    throw new Error(
      `PostgreSQL 15 is not installed (no ${PG_BIN}/initdb): run \`deno run -A src/cli/main.ts prereqs\``,
    );
  }
  const root = await Deno.makeTempDir({ prefix: `${opts.name}_` });
  const dataDir = `${root}/data`;
  let prefix: string[] = [];
  let started = false;
  try {
    await Deno.chmod(root, 0o755); // the postgres OS user must traverse it
    if (Deno.uid() === 0) {
      const user = await osUser("postgres");
      await Deno.chown(root, user.uid, user.gid);
      prefix = [
        "setpriv",
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        "--init-groups",
        "--reset-env",
      ];
    }
    const init = await run(prefix, `${PG_BIN}/initdb`, [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      `--locale=${opts.locale}`,
      "-N",
    ]);
    if (!init.ok) throw new Error(`initdb failed:\n${init.out}`);
    await Deno.mkdir(`${root}/sock`);
    if (prefix.length > 0) {
      const { uid, gid } = await osUser("postgres");
      await Deno.chown(`${root}/sock`, uid, gid);
    }
    const options = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      `-k ${root}/sock`,
      "-c fsync=off",
      `-c max_connections=${opts.maxConnections}`,
      "-c shared_buffers=16MB",
    ].join(" ");
    started = true;
    const start = await run(prefix, `${PG_BIN}/pg_ctl`, [
      "-D",
      dataDir,
      "-l",
      `${root}/postgres.log`,
      "-w",
      "-t",
      "60",
      "-o",
      options,
      "start",
    ]);
    if (!start.ok) {
      const log = await Deno.readTextFile(`${root}/postgres.log`).catch(() => "");
      throw new Error(`pg_ctl start failed:\n${start.out}\n${log}`);
    }
    await fn();
  } finally {
    if (started) {
      const stop = await run(prefix, `${PG_BIN}/pg_ctl`, [
        "-D",
        dataDir,
        "-m",
        "immediate",
        "-w",
        "-t",
        "30",
        "stop",
      ]);
      if (!stop.ok) await killPostmaster(dataDir);
    }
    await Deno.remove(root, { recursive: true });
  }
}

/** {@linkcode withThrowawayPostgres}, with `fn` given a connected client (ended afterwards). */
export async function withThrowawayClient(
  port: number,
  opts: ThrowawayPostgresOptions,
  fn: (client: pg.Client) => Promise<void>,
): Promise<void> {
  await withThrowawayPostgres(port, opts, async () => {
    const client = new pg.Client({
      host: "127.0.0.1",
      port,
      user: "postgres",
      database: "postgres",
    });
    await client.connect();
    try {
      await fn(client);
    } finally {
      await client.end();
    }
  });
}
