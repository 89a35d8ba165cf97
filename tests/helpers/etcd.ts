/**
 * Starts and stops a single-node etcd for tests. It listens on 127.0.0.1 only, keeps its data in
 * the directory it is given (so `restart()` brings back the same keys and leases), and is stopped
 * with SIGTERM, then SIGKILL if it has not exited within `stopTimeoutMs`.
 *
 * ```ts
 * const etcd = await startEtcd({ clientPort: 26150, peerPort: 26151, dataDir });
 * try {
 *   // … talk to etcd.address …
 * } finally {
 *   await etcd.stop();
 * }
 * ```
 *
 * @module
 */
import { portAnswers } from "./net.ts";

/** Where and how to run etcd. */
export interface EtcdOptions {
  clientPort: number;
  peerPort: number;
  /** Must be empty or hold data of an etcd started with the same ports. */
  dataDir: string;
  /** How long to wait for etcd to answer after spawning it (default 15 s). */
  startTimeoutMs?: number;
  /** How long to wait after SIGTERM before SIGKILL (default 5 s). */
  stopTimeoutMs?: number;
  /** etcd binary (default `etcd` on PATH). */
  binary?: string;
}

/** A running etcd started by `startEtcd`. */
export interface EtcdHandle {
  /** PID of the current etcd process (changes on `restart()`). */
  readonly pid: number;
  /** `127.0.0.1:<clientPort>`, the form `TopoServer` takes. */
  readonly address: string;
  /** Stops etcd (SIGTERM, then SIGKILL after the timeout). Safe to call twice. */
  stop(): Promise<void>;
  /** Stops etcd and starts it again on the same data directory and ports. */
  restart(): Promise<void>;
}

/** Bytes of etcd's output kept for error messages. */
const LOG_TAIL_BYTES = 8192;

/** Spawns etcd and resolves once it reports itself healthy (it has a leader). */
export async function startEtcd(opts: EtcdOptions): Promise<EtcdHandle> {
  const host = "127.0.0.1";
  const clientUrl = `http://${host}:${opts.clientPort}`;
  const peerUrl = `http://${host}:${opts.peerPort}`;
  const args = [
    "--name=test",
    `--data-dir=${opts.dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=test=${peerUrl}`,
    "--initial-cluster-state=new",
    "--log-level=warn",
    "--logger=zap",
  ];
  const startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 5_000;

  let current: Running | undefined;

  const handle: EtcdHandle = {
    address: `${host}:${opts.clientPort}`,
    get pid() {
      return current?.child.pid ?? 0;
    },
    async stop() {
      const running = current;
      current = undefined;
      if (running) await stopRunning(running, stopTimeoutMs);
    },
    async restart() {
      await handle.stop();
      current = await spawnHealthy(opts, args, clientUrl, startTimeoutMs, stopTimeoutMs);
    },
  };
  current = await spawnHealthy(opts, args, clientUrl, startTimeoutMs, stopTimeoutMs);
  return handle;
}

interface Running {
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
  /** Resolves once both output streams are drained. */
  drained: Promise<void>;
  log: LogTail;
}

async function spawnHealthy(
  opts: EtcdOptions,
  args: string[],
  clientUrl: string,
  startTimeoutMs: number,
  stopTimeoutMs: number,
): Promise<Running> {
  for (const port of [opts.clientPort, opts.peerPort]) {
    if (await portAnswers(port)) {
      throw new Error(`Cannot start etcd: port ${port} on 127.0.0.1 is already in use`);
    }
  }
  await Deno.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const child = new Deno.Command(opts.binary ?? "etcd", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = new LogTail();
  const running: Running = {
    child,
    status: child.status,
    exited: false,
    drained: Promise.all([log.drain(child.stdout), log.drain(child.stderr)]).then(() => {}),
    log,
  };
  running.status.then(() => running.exited = true);
  try {
    await waitHealthy(running, clientUrl, startTimeoutMs);
  } catch (e) {
    await stopRunning(running, stopTimeoutMs);
    throw e;
  }
  return running;
}

async function waitHealthy(running: Running, clientUrl: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (running.exited) {
      const { code } = await running.status;
      throw new Error(`etcd exited with code ${code} while starting:\n${running.log.text()}`);
    }
    if (await healthy(clientUrl)) return;
    await sleep(100);
  }
  throw new Error(
    `etcd did not become healthy at ${clientUrl} within ${timeoutMs} ms:\n${running.log.text()}`,
  );
}

/** etcd's `/health` says true once the member has a leader and can serve. */
async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = await res.text();
    return res.ok && JSON.parse(body).health === "true";
  } catch {
    return false;
  }
}

async function stopRunning(running: Running, timeoutMs: number): Promise<void> {
  if (!running.exited) {
    try {
      running.child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      running.status.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), timeoutMs)),
    ]);
    clearTimeout(timer);
    if (timedOut && !running.exited) {
      try {
        running.child.kill("SIGKILL");
      } catch {
        // Exited in the meantime.
      }
    }
  }
  await running.status;
  await running.drained;
}

/** Keeps the last few KiB of a process's output for error messages. */
class LogTail {
  #chunks: Uint8Array[] = [];
  #size = 0;

  async drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream) {
        this.#chunks.push(chunk);
        this.#size += chunk.length;
        while (this.#size - this.#chunks[0].length >= LOG_TAIL_BYTES) {
          this.#size -= this.#chunks.shift()!.length;
        }
      }
    } catch {
      // The stream broke because the process died: what we have is the log.
    }
  }

  text(): string {
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const c of this.#chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(all).slice(-LOG_TAIL_BYTES);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
