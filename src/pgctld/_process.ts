/**
 * Process plumbing for pgctld: running Postgres binaries as the OS user that owns the data,
 * reading `postmaster.pid`, and probing whether a pid is a live postmaster.
 *
 * @module
 */

/** The non-root OS user that runs Postgres when pgctld itself runs as root. */
export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** What a finished command printed and how it ended. */
export interface CommandResult {
  success: boolean;
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

/** The `setpriv` prefix that drops root to `user`; empty when running as the current user. */
export function dropPrivileges(user: OsUser | null): string[] {
  if (user === null) return [];
  return [
    "setpriv",
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--init-groups",
    "--reset-env",
  ];
}

/** Runs `cmd args…` (as `user` when given) to completion and collects its output. */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: { user?: OsUser | null; env?: Record<string, string> } = {},
): Promise<CommandResult> {
  const argv = [...dropPrivileges(opts.user ?? null), cmd, ...args];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: opts.env,
    }).output();
  } catch (err) {
    throw new Error(`Cannot run ${cmd}: ${errorText(err)}`);
  }
  return {
    success: out.success,
    code: out.code,
    signal: out.signal,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Looks up the uid and gid of an OS user by name. */
export async function lookupOsUser(name: string): Promise<OsUser> {
  const [uid, gid] = await Promise.all([
    runCommand("id", ["-u", name]),
    runCommand("id", ["-g", name]),
  ]);
  if (!uid.success || !gid.success) {
    throw new Error(
      `OS user ${name} does not exist: create it or pass osUser (Postgres refuses to run as root)`,
    );
  }
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** The fields of `postmaster.pid` that pgctld uses (lines 1, 4, 5 and 8). */
export interface PostmasterPidFile {
  pid: number;
  port: number;
  socketDir: string;
  /** `starting`, `stopping`, `ready` or `standby`; empty while the postmaster is very young. */
  status: string;
}

/** Reads `${dataDir}/postmaster.pid`; null when it is missing or not yet complete. */
export async function readPostmasterPid(dataDir: string): Promise<PostmasterPidFile | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dataDir}/postmaster.pid`);
  } catch {
    return null;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return {
    pid,
    port: Number(lines[3] ?? 0),
    socketDir: (lines[4] ?? "").trim(),
    status: (lines[7] ?? "").trim(),
  };
}

/** True when `pid` exists and is not a zombie (an exited child nobody has reaped yet). */
export async function isProcessAlive(pid: number): Promise<boolean> {
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return false;
  }
  // Field 3 (state) follows the parenthesised command name, which may itself hold ")".
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X" && state !== "";
}

/**
 * True when `pid` is a live postgres process serving `dataDir`: its command line names postgres
 * and, where /proc lets us look, its working directory is the data directory (the postmaster
 * changes into it first thing), which tells a recycled pid from the real postmaster.
 */
export async function isPostmasterFor(pid: number, dataDir: string): Promise<boolean> {
  if (!(await isProcessAlive(pid))) return false;
  let cmdline: string;
  try {
    cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
  } catch {
    return false;
  }
  if (!cmdline.includes("postgres")) return false;
  let cwd: string;
  try {
    cwd = await Deno.readLink(`/proc/${pid}/cwd`);
  } catch {
    return true; // another user's process: the command line is all we can check
  }
  try {
    return cwd === dataDir || cwd === (await Deno.realPath(dataDir));
  } catch {
    return false;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last `maxLines` non-empty lines of `path` from byte `offset` on, joined on one line. */
export async function tailFile(path: string, offset = 0, maxLines = 8): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return "";
  }
  const text = decoder.decode(bytes.subarray(Math.min(offset, bytes.length)));
  return oneLine(text, maxLines);
}

/** Squeezes the last `maxLines` non-empty lines of `text` onto one line, at most ~2 kB. */
export function oneLine(text: string, maxLines = 8): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const joined = lines.slice(-maxLines).join(" | ");
  return joined.length > 2000 ? `…${joined.slice(-2000)}` : joined;
}

/** The message of an unknown thrown value. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `exit code N` or `signal SIGNAME`, the way pgctld reports how a postmaster ended. */
export function describeExit(status: { code: number; signal: string | null }): string {
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}
