/**
 * A throwaway PostgreSQL 15 for the merge's differential test: initdb (UTF8, C.UTF-8, as the
 * cluster's databases) into a temp directory, start on 127.0.0.1 only, run `fn`, then stop it
 * and remove everything, also when `fn` throws. Run as root, Postgres runs as the `postgres` OS
 * user (it refuses root).
 *
 * @module
 */

const PG_BIN = "/usr/lib/postgresql/15/bin";
const decoder = new TextDecoder();

async function run(prefix: string[], cmd: string, args: string[]): Promise<string> {
  const argv = [...prefix, cmd, ...args];
  const r = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).output();
  const out = decoder.decode(r.stdout) + decoder.decode(r.stderr);
  if (!r.success) throw new Error(`${cmd} failed:\n${out}`);
  return out;
}

async function osId(flag: string): Promise<number> {
  const r = await new Deno.Command("id", { args: [flag, "postgres"], stdin: "null" }).output();
  if (!r.success) throw new Error(`no OS user "postgres": ${decoder.decode(r.stderr).trim()}`);
  return Number(decoder.decode(r.stdout).trim());
}

/** Runs `fn` while a fresh Postgres listens on 127.0.0.1:`port` (user postgres, trust). */
export async function withPostgres(port: number, fn: () => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "merge_test_" });
  const dataDir = `${root}/data`;
  let prefix: string[] = [];
  let started = false;
  try {
    await Deno.chmod(root, 0o755);
    if (Deno.uid() === 0) {
      const uid = await osId("-u");
      const gid = await osId("-g");
      await Deno.chown(root, uid, gid);
      prefix = ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--reset-env"];
    }
    await run(prefix, `${PG_BIN}/initdb`, [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "-N",
    ]);
    const options = [
      `-p ${port}`,
      "-c listen_addresses=127.0.0.1",
      `-k ${root}`,
      "-c fsync=off",
      "-c max_connections=20",
      "-c shared_buffers=16MB",
    ].join(" ");
    started = true;
    await run(prefix, `${PG_BIN}/pg_ctl`, [
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
    await fn();
  } finally {
    if (started) {
      try {
        await run(prefix, `${PG_BIN}/pg_ctl`, ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
      } catch {
        const pid = Number(
          (await Deno.readTextFile(`${dataDir}/postmaster.pid`).catch(() => "0")).split("\n")[0],
        );
        if (pid > 0) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* already gone */ }
        }
      }
    }
    await Deno.remove(root, { recursive: true });
  }
}
