/**
 * Start/stop of a real local cluster for end-to-end tests: etcd, pgctld + Postgres, pooler,
 * orch and gateway as separate processes, on 127.0.0.1, under a temp directory, on ports moved
 * by a per-file offset so files never collide. Always stopped by PID, also on failure.
 */
import pg from "pg";
import postgres from "postgres";
import { LocalCluster, stopPid } from "../../src/provisioner/mod.ts";
import type { PoolerRecord } from "../../src/shared/grpc/types.ts";
import { Topo } from "../../src/shared/topo/mod.ts";

export interface TestCluster {
  cluster: LocalCluster;
  /** What the provisioner said while starting (warnings about replicas, say). */
  logs: string[];
  dir: string;
  /** Gateway port (the PostgreSQL protocol). */
  port: number;
  /** Postgres's own port, for checks that must bypass the gateway. */
  directPort: number;
  password: string;
  /** Runs psql against the gateway. */
  psql(args: string[], opts?: { password?: string; database?: string }): Promise<PsqlResult>;
  /** A connected npm:pg client to the gateway (or to Postgres directly). */
  client(
    opts?: { direct?: boolean; port?: number; database?: string; password?: string; user?: string },
  ): Promise<pg.Client>;
  /** An npm:postgres (postgres.js) client of the gateway, as postgres; `opts` add or override. */
  sql(opts?: postgres.Options<Record<string, postgres.PostgresType>>): postgres.Sql;
  stop(): Promise<void>;
}

export interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts a cluster; `offset` must be unique per test file (1000, 1100, …). */
export async function startCluster(
  offset: number,
  opts: {
    poolMode?: "session" | "transaction";
    cells?: number;
    joinTimeoutMs?: number;
    /** The gateway's --hba-file. */
    hbaFile?: string;
    /** The orchs' --two-phase-min-age (seconds). */
    twoPhaseMinAgeSeconds?: number;
  } = {},
): Promise<TestCluster> {
  await reapLeftover(offset);
  const dir = await Deno.makeTempDir({ prefix: "multigres_e2e_" });
  await Deno.writeTextFile(markerPath(offset), dir);
  await Deno.chmod(dir, 0o755); // Postgres runs as the postgres user and must reach its folder
  const password = "postgres";
  const logs: string[] = [];
  const cluster = new LocalCluster({
    dataDir: dir,
    cluster: "e2e",
    cell: "zone1",
    portOffset: offset,
    password,
    logLevel: "info",
    binDir: "",
    gatewayListenAddress: "127.0.0.1",
    poolMode: opts.poolMode ?? "transaction",
    cells: opts.cells ?? 1,
    joinTimeoutMs: opts.joinTimeoutMs,
    hbaFile: opts.hbaFile,
    twoPhaseMinAgeSeconds: opts.twoPhaseMinAgeSeconds,
  }, (msg) => logs.push(msg));
  try {
    await cluster.start();
  } catch (e) {
    await dumpLogs(cluster);
    await cluster.stop();
    throw e;
  }
  const port = cluster.ports.gatewayPg;
  const directPort = cluster.ports.postgres;
  return {
    cluster,
    logs,
    dir,
    port,
    directPort,
    password,
    psql: (args, opts = {}) => psql(port, args, opts.password ?? password, opts.database),
    client: async (opts = {}) => {
      const c = new pg.Client({
        host: "127.0.0.1",
        port: opts.port ?? (opts.direct ? directPort : port),
        user: opts.user ?? "postgres",
        password: opts.password ?? password,
        database: opts.database ?? "postgres",
      });
      await c.connect();
      return c;
    },
    sql: (opts = {}) =>
      postgres({
        host: "127.0.0.1",
        port,
        user: "postgres",
        pass: password,
        database: "postgres",
        onnotice: () => {},
        ...opts,
      }),
    stop: async () => {
      await cluster.stop();
      // MULTIGRES_KEEP_E2E=1 keeps the data and logs of a failed run for a look.
      if (Deno.env.get("MULTIGRES_KEEP_E2E")) console.error(`kept ${dir}`);
      else await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(markerPath(offset)).catch(() => {});
    },
  };
}

function markerPath(offset: number): string {
  return `/tmp/multigres_e2e_offset_${offset}`;
}

/** Stops a cluster a killed earlier run left on the same offset. */
async function reapLeftover(offset: number): Promise<void> {
  let dir: string;
  try {
    dir = (await Deno.readTextFile(markerPath(offset))).trim();
  } catch {
    return;
  }
  try {
    await LocalCluster.load(dir, () => {}).stop();
  } catch {
    // nothing left to stop
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Prints the tail of every component log (on a failed start). */
export async function dumpLogs(cluster: LocalCluster): Promise<void> {
  for (const c of ["etcd", "pgctld", "multipooler", "multiorch", "multigateway"] as const) {
    try {
      const text = await Deno.readTextFile(cluster.logPath(c));
      console.error(`--- ${c}.log\n${text.split("\n").slice(-15).join("\n")}`);
    } catch {
      // no log
    }
  }
}

export async function psql(
  port: number,
  args: string[],
  password: string,
  database = "postgres",
): Promise<PsqlResult> {
  const out = await psqlCommand(port, args, password, database).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** psql as the postgres user on 127.0.0.1:`port`, output piped (to spawn one that must wait). */
export function psqlCommand(
  port: number,
  args: string[],
  password: string,
  database = "postgres",
): Deno.Command {
  return new Deno.Command("psql", {
    args: ["-X", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, ...args],
    env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: "10" },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Polls `fn` until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  stepMs = 200,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return true;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Every pooler the topo lists now (one etcd read; lighter than `cluster.status()`, which also
 * asks each pooler for its WAL position: for tests that poll).
 */
export async function topoPoolers(cluster: LocalCluster): Promise<PoolerRecord[]> {
  const topo = await Topo.connect({
    globalAddress: cluster.topoAddress,
    cluster: cluster.cfg.cluster,
    cell: cluster.cfg.cell,
    waitMs: 3000,
  });
  try {
    return await topo.listAllPoolers();
  } finally {
    topo.close();
  }
}

/** Test options for tests that drive real processes and npm clients. */
export const E2E = { sanitizeOps: false, sanitizeResources: false } as const;

/** The error a query gets (or null), as SQLSTATE and message. */
export async function errorOf(
  p: Promise<unknown>,
): Promise<{ code: string; message: string; position?: string } | null> {
  try {
    await p;
    return null;
  } catch (e) {
    const err = e as { code?: string; message: string; position?: string };
    const out: { code: string; message: string; position?: string } = {
      code: err.code ?? "",
      message: err.message,
    };
    if (err.position !== undefined) out.position = err.position;
    return out;
  }
}

/**
 * A second gateway in the cluster's cell, on the cluster's gateway ports moved by `shift`, up and
 * answering when this returns. `stop()` ends it by PID.
 */
export async function startExtraGateway(
  c: TestCluster,
  shift: number,
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = c.port + shift;
  const gw = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      new URL("../../src/gateway/main.ts", import.meta.url).pathname,
      "--cluster=e2e",
      "--cell=zone1",
      `--topo-global-address=${c.cluster.topoAddress}`,
      `--id=zone1-gateway-${shift}`,
      `--pg-port=${port}`,
      `--http-port=${c.cluster.ports.gatewayHttp + shift}`,
      `--grpc-port=${c.cluster.ports.gatewayGrpc + shift}`,
      ...c.cluster.grpcFlags("multigateway"),
    ],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const stop = async () => {
    await stopPid(gw.pid);
    await gw.status;
  };
  const up = await eventually(async () =>
    (await psql(port, ["-tAc", "select 1"], c.password)).stdout.trim() === "1"
  );
  if (!up) {
    await stop();
    throw new Error("the second gateway did not come up");
  }
  return { port, pid: gw.pid, stop };
}
