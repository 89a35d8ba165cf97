/** Starting the cluster's processes detached, with logs and pid files, and stopping them by PID. */

export interface ProcessSpec {
  name: string;
  cmd: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
}

/**
 * Starts a process in its own session (so Ctrl-C in the terminal reaches only us, and we stop the
 * children in order), appending stdout and stderr to `logPath`, and records its pid. The pid is
 * the program's own: `sh` execs it.
 */
export function spawnDetached(spec: ProcessSpec, logPath: string, pidPath: string): number {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'log=$1; shift; exec "$@" </dev/null >>"$log" 2>&1',
      "sh",
      logPath,
      spec.cmd,
      ...spec.args,
    ],
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  // Reap it if it dies while we are alive, so liveness checks do not see a zombie.
  child.status.catch(() => {});
  Deno.writeTextFileSync(pidPath, `${child.pid}\n`);
  return child.pid;
}

/** Whether `pid` is a live (non-zombie) process. */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export function readPid(pidPath: string): number | null {
  try {
    const n = Number(Deno.readTextFileSync(pidPath).trim().split("\n")[0]);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Sends `signal`, waits up to `timeoutMs` for the process to go, then SIGKILLs it. */
export async function stopPid(
  pid: number,
  signal: Deno.Signal = "SIGTERM",
  timeoutMs = 15_000,
): Promise<void> {
  if (!alive(pid)) return;
  try {
    Deno.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
    while (alive(pid)) await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
