/**
 * `deno task bench`: our gateway + pooler against PgBouncer 1.18 (transaction mode, pool 20) and
 * against Postgres directly, on the same Postgres, on this machine, in one run.
 *
 * pgbench select-only at 1, 10 and 50 clients in simple, extended and (not PgBouncer) prepared
 * mode, alternating the targets, several rounds, median of the rounds; tpcb-like at 10 clients;
 * then resident memory with 1,000 and 10,000 idle client connections. Everything listens on
 * 127.0.0.1 and is stopped by PID at the end.
 *
 * Flags: --duration S (per pgbench run, default 15), --rounds N (default 3), --clients 1,10,50,
 * --idle 1000,10000, --skip-memory, --skip-pgbench, --data-plane h2|grpc-js (the transport of
 * the gateway-pooler stream, default h2). --quick measures only select-only simple at 1 and 50
 * clients, 3 × 10 s, and prints the two ratios against PgBouncer (added latency at 1 client, TPS
 * at 50 clients). --floor adds two more targets in front of the same Postgres: one and two
 * chained `scripts/bench_relay.ts` processes (a Deno TCP relay that only copies bytes), the
 * floor of one and of two Deno hops, which the gateway + pooler (two hops) cannot go below.
 * Every row also gives the CPU time (user + system, from /proc) each proxy spent per
 * transaction.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LocalCluster } from "../src/provisioner/mod.ts";
import { alive, stopPid } from "../src/provisioner/mod.ts";
import { scramLogin } from "../tests/helpers/login.ts";

const OFFSET = 3000;
/** The relays of --floor listen here and one port up. */
const RELAY_PORT = 7432 + OFFSET;
const PASSWORD = "postgres";

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "15" },
    rounds: { type: "string", default: "3" },
    clients: { type: "string", default: "1,10,50" },
    idle: { type: "string", default: "1000,10000" },
    "skip-memory": { type: "boolean", default: false },
    "skip-pgbench": { type: "boolean", default: false },
    "quick": { type: "boolean", default: false },
    "data-plane": { type: "string", default: "h2" },
    "floor": { type: "boolean", default: false },
  },
});
const quick = flags.quick!;
const duration = quick ? 10 : Number(flags.duration);
const rounds = quick ? 3 : Number(flags.rounds);
const clientCounts = quick ? [1, 50] : flags.clients!.split(",").map(Number);
const modes = quick ? ["simple"] : ["simple", "extended", "prepared"];
if (flags["data-plane"] !== "h2" && flags["data-plane"] !== "grpc-js") {
  console.error(`error: --data-plane must be h2 or grpc-js`);
  Deno.exit(2);
}
const idleCounts = flags.idle!.split(",").map(Number);

interface Target {
  name: "direct" | "pgbouncer" | "gateway" | "relay1" | "relay2";
  port: number;
  /** The processes in this target's path besides Postgres (their CPU time is measured). */
  pids: () => number[];
}

interface Run {
  tps: number;
  latencyMs: number;
  p99Ms: number;
  /** CPU time (user + system) the target's own processes spent per transaction, in µs. */
  cpuUs: number;
}

/** Clock ticks of CPU time (user + system) a process has used, from /proc/PID/stat. */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

/** Linux's USER_HZ: clock ticks per second in /proc (100 on every Linux this runs on). */
const TICKS_PER_S = 100;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

/** Commands running now (pgbench, mostly): killed when the bench is interrupted. */
const children = new Set<Deno.ChildProcess>();

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).spawn();
  children.add(child);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
  } finally {
    children.delete(child);
  }
}

/** One pgbench run; latency percentiles come from its sampled per-transaction log. */
async function pgbench(t: Target, args: string[], logDir: string): Promise<Run> {
  await Deno.remove(logDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(logDir, { recursive: true });
  const pids = t.pids();
  const ticksBefore = pids.map(cpuTicks);
  const r = await sh("pgbench", [
    "-h",
    "127.0.0.1",
    "-p",
    String(t.port),
    "-U",
    "postgres",
    "-n",
    "-l",
    "--sampling-rate=0.02",
    `--log-prefix=${logDir}/tx`,
    ...args,
    "postgres",
  ], { PGPASSWORD: PASSWORD, PGSSLMODE: "disable" });
  if (r.code !== 0) {
    throw new Error(`pgbench on ${t.name} failed: ${r.err.trim().split("\n").pop()}`);
  }
  const ticks = pids.reduce((n, pid, i) => n + cpuTicks(pid) - ticksBefore[i], 0);
  const tps = Number(/tps = ([\d.]+)/.exec(r.out)?.[1]);
  const txs = Number(/actually processed: (\d+)/.exec(r.out)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(r.out)?.[1]);
  const lat: number[] = [];
  for await (const e of Deno.readDir(logDir)) {
    for (const line of (await Deno.readTextFile(`${logDir}/${e.name}`)).split("\n")) {
      const f = line.split(" ");
      if (f.length > 2) lat.push(Number(f[2]) / 1000);
    }
  }
  lat.sort((a, b) => a - b);
  const p99Ms = lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] : NaN;
  const cpuUs = pids.length ? ticks / TICKS_PER_S * 1e6 / txs : NaN;
  return { tps, latencyMs, p99Ms, cpuUs };
}

/** PgBouncer 1.18 in transaction mode, pool 20, on the cluster's Postgres, run as `postgres`. */
async function startPgBouncer(dir: string, pgPort: number, port: number): Promise<number> {
  const verifier = (await sh("psql", [
    "-X",
    "-tA",
    "-h",
    "127.0.0.1",
    "-p",
    String(pgPort),
    "-U",
    "postgres",
    "-c",
    "select rolpassword from pg_authid where rolname = 'postgres'",
  ], { PGPASSWORD: PASSWORD })).out.trim();
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/userlist.txt`, `"postgres" "${verifier}"\n`);
  await Deno.writeTextFile(
    `${dir}/pgbouncer.ini`,
    [
      "[databases]",
      `postgres = host=127.0.0.1 port=${pgPort} dbname=postgres`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${dir}/userlist.txt`,
      "pool_mode = transaction",
      "default_pool_size = 20",
      "max_client_conn = 15000",
      `logfile = ${dir}/pgbouncer.log`,
      "ignore_startup_parameters = extra_float_digits,options",
      "",
    ].join("\n"),
  );
  await sh("chown", ["-R", "postgres:postgres", dir]);
  // PgBouncer refuses to run as root; setpriv's fresh environment has no /usr/sbin on PATH.
  const find = async () =>
    (await sh("sh", ["-c", "command -v pgbouncer || ls /usr/sbin/pgbouncer"])).out.trim();
  let bin = await find();
  if (!bin && Deno.uid() === 0) {
    // As the dev cluster does for Postgres and etcd: install it, once, when we may.
    console.error("Installing pgbouncer with apt-get (once) ...");
    await sh("apt-get", ["install", "-y", "-q", "pgbouncer"], {
      DEBIAN_FRONTEND: "noninteractive",
    });
    bin = await find();
  }
  if (!bin) throw new Error("PgBouncer is missing: run sudo apt-get install -y pgbouncer");
  const asPostgres = Deno.uid() === 0
    ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--reset-env"]
    : [];
  const child = new Deno.Command(asPostgres[0] ?? bin, {
    args: [
      ...asPostgres.slice(1),
      ...(asPostgres.length ? [bin] : []),
      `${dir}/pgbouncer.ini`,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  for (let i = 0; i < 100; i++) {
    const r = await sh("psql", [
      "-X",
      "-tAc",
      "select 1",
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-U",
      "postgres",
      "postgres",
    ], {
      PGPASSWORD: PASSWORD,
      PGSSLMODE: "disable",
    });
    if (r.out.trim() === "1") return child.pid;
    await new Promise((res) => setTimeout(res, 100));
  }
  const log = await Deno.readTextFile(`${dir}/pgbouncer.log`).catch(
    async () => (await Promise.race([
      stderr,
      new Promise<string>((r) => setTimeout(() => r("(no log)"), 500)),
    ])),
  );
  throw new Error(`PgBouncer did not come up: ${log.trim().split("\n").slice(-3).join(" | ")}`);
}

/** Relays started for --floor: stopped with everything else. */
const relayPids: number[] = [];

/** A `bench_relay.ts` process from 127.0.0.1:`port` to `target`, once it accepts connections. */
async function startRelay(port: number, target: number): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      new URL("./bench_relay.ts", import.meta.url).pathname,
      String(port),
      String(target),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  relayPids.push(child.pid);
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child.pid;
    } catch {
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  throw new Error(`The relay on port ${port} did not come up`);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}

/** Opens an authenticated, idle client connection (SCRAM done by our own client). */
function idleConnection(port: number): Promise<Deno.Conn> {
  return scramLogin(port, "postgres", PASSWORD);
}

/**
 * KiB of resident memory per idle client connection, for each process named: the growth from
 * the first tenth of the connections (which also pays one-off costs such as heap growth and code
 * compiled for logins) to all of them, divided by the connections added.
 */
async function idleMemory(
  port: number,
  count: number,
  pids: Record<string, number>,
): Promise<Record<string, number> & { errors: number }> {
  const conns: Deno.Conn[] = [];
  let errors = 0;
  const open = async (n: number) => {
    for (let i = 0; i < n; i += 100) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(100, n - i) }, () => idleConnection(port)),
      );
      for (const b of batch) b.status === "fulfilled" ? conns.push(b.value) : errors++;
    }
    await new Promise((res) => setTimeout(res, 1000));
  };
  const first = Math.max(1, Math.floor(count / 10));
  await open(first);
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, rssKiB(p)]));
  await open(count - first);
  const out: Record<string, number> = {};
  for (const [k, p] of Object.entries(pids)) out[k] = (rssKiB(p) - before[k]) / (count - first);
  for (const c of conns) c.close();
  await new Promise((res) => setTimeout(res, 1000));
  return { ...out, errors };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "multigres_bench_" });
  await Deno.chmod(dir, 0o755);
  const cluster = new LocalCluster({
    dataDir: `${dir}/cluster`,
    cluster: "bench",
    cell: "zone1",
    portOffset: OFFSET,
    password: PASSWORD,
    logLevel: "warn",
    binDir: "",
    gatewayListenAddress: "127.0.0.1",
    poolMode: "transaction",
    poolCapacity: 20,
    // PgBouncer runs without TLS here; so does the gateway, for a like-for-like comparison, and
    // so does gRPC between the components (mutual TLS costs the data plane ~25 µs a round trip).
    tls: false,
    grpcInsecure: true,
    dataPlane: flags["data-plane"] as "h2" | "grpc-js",
  }, () => {});
  let bouncerPid = 0;
  // Everything started here is stopped on every way out: the end, an error, Ctrl-C, SIGTERM.
  let stopping: Promise<void> | null = null;
  const stopAll = () =>
    stopping ??= (async () => {
      if (bouncerPid && alive(bouncerPid)) await stopPid(bouncerPid);
      for (const pid of relayPids) if (alive(pid)) await stopPid(pid);
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      console.error(`\n${sig}: stopping the cluster and PgBouncer`);
      for (const child of children) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
      }
      stopAll().finally(() => Deno.exit(130));
    });
  }
  try {
    console.error("Starting the cluster and PgBouncer ...");
    await Deno.mkdir(`${dir}/cluster`, { recursive: true });
    await cluster.start();
    const p = cluster.ports;
    const running = () => cluster.running();
    const targets: Target[] = [
      { name: "direct", port: p.postgres, pids: () => [] },
      { name: "pgbouncer", port: 6432 + OFFSET, pids: () => [bouncerPid] },
      {
        name: "gateway",
        port: p.gatewayPg,
        pids: () => [running().multigateway!, running().multipooler!],
      },
    ];
    bouncerPid = await startPgBouncer(`${dir}/pgbouncer`, p.postgres, 6432 + OFFSET);
    // Interrupted while PgBouncer started: stopAll() may have looked before it had a pid.
    if (stopping && alive(bouncerPid)) await stopPid(bouncerPid);
    if (flags.floor) {
      // One relay in front of Postgres, and a second one in front of the first.
      const r1 = await startRelay(RELAY_PORT, p.postgres);
      const r2 = await startRelay(RELAY_PORT + 1, RELAY_PORT);
      targets.push(
        { name: "relay1", port: RELAY_PORT, pids: () => [r1] },
        { name: "relay2", port: RELAY_PORT + 1, pids: () => [r1, r2] },
      );
    }
    const init = await sh("pgbench", [
      "-i",
      "-s",
      "10",
      "-q",
      "-h",
      "127.0.0.1",
      "-p",
      String(p.postgres),
      "-U",
      "postgres",
      "postgres",
    ], {
      PGPASSWORD: PASSWORD,
    });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.err}`);

    const results = new Map<string, Run[]>();
    const cases: { label: string; args: string[]; skip?: string }[] = [];
    for (const c of flags["skip-pgbench"] ? [] : clientCounts) {
      for (const mode of modes) {
        cases.push({
          label: `select-only ${mode} c=${c}`,
          args: ["-S", "-M", mode, "-c", String(c), "-j", String(Math.min(c, 2))],
          skip: mode === "prepared" ? "pgbouncer" : undefined,
        });
      }
    }
    for (const mode of flags["skip-pgbench"] || quick ? [] : ["simple", "extended"]) {
      cases.push({
        label: `tpcb-like ${mode} c=10`,
        args: ["-b", "tpcb-like", "-M", mode, "-c", "10", "-j", "2"],
      });
    }
    const total = rounds *
      cases.reduce((n, c) => n + targets.filter((t) => t.name !== c.skip).length, 0);
    let done = 0;
    if (cases.length) {
      // Warm every target up first, unrecorded: the gateway and pooler run JIT-compiled code,
      // and every target gets its backends opened before it is measured.
      console.error("Warming up ...");
      for (const t of targets) {
        await pgbench(t, ["-S", "-M", "extended", "-c", "20", "-j", "2", "-T", "5"], `${dir}/logs`);
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const c of cases) {
        // Alternate which target goes first from round to round.
        const order = round % 2 ? [...targets].reverse() : targets;
        for (const t of order) {
          if (c.skip === t.name) continue;
          const run = await pgbench(t, [...c.args, "-T", String(duration)], `${dir}/logs`);
          const key = `${c.label}|${t.name}`;
          results.set(key, [...(results.get(key) ?? []), run]);
          console.error(`[${++done}/${total}] ${c.label} ${t.name}: ${run.tps.toFixed(0)} tps`);
        }
      }
    }

    const med = (label: string, t: string, f: keyof Run) =>
      median((results.get(`${label}|${t}`) ?? []).map((r) => r[f]));
    const rows: string[] = [];
    const pad = (s: string, n: number) => s.padEnd(n);
    rows.push(
      `| case | direct TPS | PgBouncer TPS | gateway TPS | gw/PgB | gw/direct | avg ms d / PgB / gw | p99 ms d / PgB / gw | CPU µs/tx PgB / gw+pooler |`,
      `| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |`,
    );
    for (const c of cases) {
      const d = med(c.label, "direct", "tps");
      const b = med(c.label, "pgbouncer", "tps");
      const g = med(c.label, "gateway", "tps");
      const f = (x: number, digits = 0) => Number.isNaN(x) ? "–" : x.toFixed(digits);
      const lat = (k: keyof Run) =>
        ["direct", "pgbouncer", "gateway"].map((t) => f(med(c.label, t, k), 3)).join(" / ");
      rows.push(
        `| ${pad(c.label, 26)} | ${f(d)} | ${f(b)} | ${f(g)} | ${f(g / b, 2)} | ${f(g / d, 2)} | ${
          lat("latencyMs")
        } | ${lat("p99Ms")} | ${f(med(c.label, "pgbouncer", "cpuUs"))} / ${
          f(med(c.label, "gateway", "cpuUs"))
        } |`,
      );
    }
    if (flags.floor) {
      // The floor: what one and two Deno hops that only copy bytes cost on this machine.
      rows.push(
        ``,
        `Floor (scripts/bench_relay.ts: Deno TCP relays that only copy bytes, same Postgres):`,
        ``,
        `| case | 1 relay TPS | 2 relays TPS | gateway TPS | gw / 2 relays | added ms 1 relay / 2 relays / gw | CPU µs/tx 1 relay / 2 relays / gw+pooler |`,
        `| --- | ---: | ---: | ---: | ---: | --- | --- |`,
      );
      for (const c of cases) {
        const f = (x: number, digits = 0) => Number.isNaN(x) ? "–" : x.toFixed(digits);
        const d = med(c.label, "direct", "latencyMs");
        const added = ["relay1", "relay2", "gateway"].map((t) =>
          f(med(c.label, t, "latencyMs") - d, 3)
        );
        const cpu = ["relay1", "relay2", "gateway"].map((t) => f(med(c.label, t, "cpuUs")));
        const r2 = med(c.label, "relay2", "tps");
        const g = med(c.label, "gateway", "tps");
        rows.push(
          `| ${pad(c.label, 26)} | ${f(med(c.label, "relay1", "tps"))} | ${f(r2)} | ${f(g)} | ${
            f(g / r2, 2)
          } | ${added.join(" / ")} | ${cpu.join(" / ")} |`,
        );
      }
    }
    // The latency bar: at 1 client, the latency we add over direct vs PgBouncer's.
    for (const mode of ["simple", "extended"]) {
      const label = `select-only ${mode} c=1`;
      if (!results.has(`${label}|direct`)) continue;
      const d = med(label, "direct", "latencyMs");
      const addedB = med(label, "pgbouncer", "latencyMs") - d;
      const addedG = med(label, "gateway", "latencyMs") - d;
      rows.push(
        ``,
        `Added latency at 1 client (${mode}): gateway +${addedG.toFixed(3)} ms, PgBouncer +${
          addedB.toFixed(3)
        } ms → ${(addedG / addedB).toFixed(2)}× PgBouncer's`,
      );
    }

    if (results.has("select-only simple c=50|direct")) {
      const label = "select-only simple c=50";
      const ratio = med(label, "gateway", "tps") / med(label, "pgbouncer", "tps");
      rows.push(``, `TPS at 50 clients (simple): gateway ${ratio.toFixed(2)}× PgBouncer's`);
    }

    if (!flags["skip-memory"] && !quick) {
      const running = cluster.running();
      for (const n of idleCounts) {
        const gw = await idleMemory(p.gatewayPg, n, {
          gateway: running.multigateway!,
          pooler: running.multipooler!,
        });
        const pb = await idleMemory(6432 + OFFSET, n, { pgbouncer: bouncerPid });
        rows.push(
          ``,
          `${n} idle connections: gateway ${gw.gateway.toFixed(1)} KiB/conn + pooler ${
            gw.pooler.toFixed(1)
          } KiB/conn (errors ${gw.errors}); PgBouncer ${
            pb.pgbouncer.toFixed(1)
          } KiB/conn (errors ${pb.errors})`,
        );
      }
    }
    console.log(
      `\nMultigres bench: ${rounds} rounds × ${duration} s, median of rounds, data plane ${
        flags["data-plane"]
      }\n`,
    );
    console.log(rows.join("\n"));
  } finally {
    await stopAll();
  }
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
});
