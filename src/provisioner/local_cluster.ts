import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import type {
  CellRecord,
  DatabaseLayout,
  DatabaseRecord,
  PoolerRecord,
  PoolerStatusResponse,
} from "../shared/grpc/types.ts";
import { callUnary, type GrpcSecurity, makeClient } from "../shared/grpc/mod.ts";
import { decodeRecord, encodeRecord, Topo, TopoPaths, TopoServer } from "../shared/topo/mod.ts";
import { envName, grpcSecurityFromFlags } from "../shared/servenv/mod.ts";
import { ensureClusterCerts, grpcCertFiles, type GrpcIdentity } from "./certs.ts";
import { ensurePrereqs, type Prereqs } from "./prereqs.ts";
import { alive, type ProcessSpec, readPid, sleep, spawnDetached, stopPid } from "./processes.ts";
import { readMetadata, ShardProvisioner } from "./shards.ts";

/** Everything that defines a local cluster; saved as `<data-dir>/cluster.json`. */
export interface LocalClusterConfig {
  dataDir: string;
  cluster: string;
  cell: string;
  /** Added to every default port, so several clusters can run side by side. */
  portOffset: number;
  /** Password of the `postgres` superuser, set when the data directory is first created. */
  password: string;
  logLevel: string;
  /** Folder of compiled executables; empty: run the sources with this Deno. */
  binDir: string;
  /** Address the gateway's PostgreSQL port listens on (0.0.0.0 in a container). */
  gatewayListenAddress: string;
  /** The pooler's pooling mode: session or transaction. */
  poolMode: string;
  /** Backend connections the pooler may open (0: the pooler's default). */
  poolCapacity?: number;
  /** Whether the gateway offers TLS (a self-signed certificate); default true. */
  tls?: boolean;
  /**
   * Plaintext, unauthenticated gRPC between components (`--grpc-insecure`); default false:
   * mutual TLS with certificates from the cluster's own CA (see grpcCertDir).
   */
  grpcInsecure?: boolean;
  /**
   * Where the cluster CA and the components' certificates live (absolute); default
   * `<data-dir>/tls/grpc` of the first cell, shared by further cells and shards.
   */
  grpcCertDir?: string;
  /**
   * Seconds a transaction stays prepared without a decision before the orchs' two-phase
   * recovery ends it (the orch's `--two-phase-min-age`; its default when absent).
   */
  twoPhaseMinAgeSeconds?: number;
  /**
   * The gateways' client authentication rules (pg_hba.conf format; `--hba-file`), an absolute
   * path; absent: the gateway's default (scram-sha-256 for every connection).
   */
  hbaFile?: string;
  /**
   * How many cells, each with its own Postgres (default 1). The first cell holds etcd, the
   * primary, an orch and the gateway; each further cell a pgctld, an orch and a pooler whose
   * Postgres joins as a streaming replica of the primary.
   */
  cells?: number;
  /** Set on the further cells: the first cell's etcd address (no etcd or gateway here). */
  memberOf?: string;
  /**
   * The transport of the gateway-pooler data-plane stream: `h2` (default: the lean HTTP/2
   * implementation on its own port) or `grpc-js` (DataPlane on the pooler's gRPC port).
   */
  dataPlane?: "h2" | "grpc-js";
  /**
   * How long start() waits for a replica cell to join before it reports it and goes on (the
   * join is then retried in the background). Default 300 s: a base backup takes a while.
   */
  joinTimeoutMs?: number;
  /**
   * Set for the processes of one shard of a tablegroup other than `default` (started by the
   * shard provisioner from the hidden schema): only pgctld and a pooler, on the shard's ports.
   */
  shard?: ShardCellSpec;
}

/** One cell's member of a shard the provisioner runs. */
export interface ShardCellSpec {
  database: string;
  tablegroup: string;
  name: string;
  /** The shard's slot: it picks the ports (see shardPorts). */
  slot: number;
  /** 0 for the cell that bootstraps the shard's primary; further cells join as replicas. */
  cellIndex: number;
}

export const DEFAULT_CONFIG: LocalClusterConfig = {
  dataDir: "./multigres_local",
  cluster: "local",
  cell: "zone1",
  portOffset: 0,
  password: "postgres",
  logLevel: "info",
  binDir: "",
  gatewayListenAddress: "127.0.0.1",
  poolMode: "transaction",
  cells: 1,
};

/** Processes of a further cell (see LocalClusterConfig.cells). */
const MEMBER_COMPONENTS = ["pgctld", "multipooler", "multiorch"] as const;
/** Processes of a shard's member in a cell (the cell's orch serves every shard). */
const SHARD_COMPONENTS = ["pgctld", "multipooler"] as const;

/** Most shards the local provisioner runs at once (slots 1…MAX_SHARD_SLOTS). */
export const MAX_SHARD_SLOTS = 99;

/**
 * The ports of a shard's member: 20000 + port offset + 20 × slot + 6 × cell index, then pgctld
 * HTTP, pgctld gRPC, pooler HTTP, pooler gRPC, pooler data plane, Postgres (at most 3 cells).
 */
export function shardPorts(offset: number, slot: number, cellIndex: number) {
  const base = 20000 + offset + 20 * slot + 6 * cellIndex;
  return {
    ...clusterPorts(offset),
    pgctldHttp: base,
    pgctldGrpc: base + 1,
    poolerHttp: base + 2,
    poolerGrpc: base + 3,
    poolerDataPlane: base + 4,
    postgres: base + 5,
  };
}

/** The ports of a cluster with the given offset (DESIGN.md's defaults at offset 0). */
export function clusterPorts(offset: number) {
  return {
    etcd: 2379 + offset,
    etcdPeer: 12380 + offset,
    gatewayPg: 15432 + offset,
    /** The gateway's replica port: sessions read from replicas. */
    gatewayPgReplica: 15442 + offset,
    gatewayHttp: 15100 + offset,
    gatewayGrpc: 15170 + offset,
    poolerHttp: 15200 + offset,
    poolerGrpc: 15270 + offset,
    poolerDataPlane: 15280 + offset,
    orchHttp: 15300 + offset,
    orchGrpc: 15370 + offset,
    pgctldHttp: 15400 + offset,
    pgctldGrpc: 15470 + offset,
    postgres: 25432 + offset,
  };
}

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Start order; stop runs it backwards. */
const COMPONENTS = [
  "etcd",
  "pgctld",
  "multipooler",
  "multiorch",
  "multigateway",
  "provisioner",
] as const;
export type Component = typeof COMPONENTS[number];
const SOURCES: Record<Exclude<Component, "etcd">, string> = {
  pgctld: "src/pgctld/main.ts",
  multipooler: "src/pooler/main.ts",
  multiorch: "src/orch/main.ts",
  multigateway: "src/gateway/main.ts",
  // The shard provisioner is a subcommand of the CLI (`multigres cluster provision`).
  provisioner: "src/cli/main.ts",
};

/** A cluster on this machine: one etcd and, for the cell, pgctld + Postgres, pooler, orch, gateway. */
export class LocalCluster {
  readonly cfg: LocalClusterConfig;
  readonly ports: ReturnType<typeof clusterPorts>;
  readonly #log: (msg: string) => void;
  /** The further cells (replicas), each a cluster of its own processes sharing our etcd. */
  readonly members: LocalCluster[] = [];

  constructor(cfg: LocalClusterConfig, log: (msg: string) => void = console.error) {
    // A compiled `multigres` starts the compiled components beside it.
    const binDir = cfg.binDir || (Deno.build.standalone ? dirname(Deno.execPath()) : "");
    this.cfg = { ...DEFAULT_CONFIG, ...cfg, binDir, dataDir: resolve(cfg.dataDir) };
    if (this.cfg.hbaFile) this.cfg.hbaFile = resolve(this.cfg.hbaFile);
    this.cfg.grpcCertDir = resolve(this.cfg.grpcCertDir ?? `${this.cfg.dataDir}/tls/grpc`);
    this.ports = cfg.shard
      ? shardPorts(cfg.portOffset, cfg.shard.slot, cfg.shard.cellIndex)
      : clusterPorts(cfg.portOffset);
    this.#log = log;
    if (this.cfg.memberOf) return;
    for (let i = 2; i <= (this.cfg.cells ?? 1); i++) {
      const cell = /^(.*?)(\d+)$/.test(this.cfg.cell)
        ? this.cfg.cell.replace(/\d+$/, String(i))
        : `${this.cfg.cell}${i}`;
      this.members.push(
        new LocalCluster({
          ...this.cfg,
          cell,
          cells: 1,
          dataDir: `${this.cfg.dataDir}/cells/${cell}`,
          portOffset: this.cfg.portOffset + i - 1,
          memberOf: this.topoAddress,
        }, log),
      );
    }
  }

  /** The processes this cell runs. */
  get #components(): readonly Component[] {
    if (this.cfg.shard) return SHARD_COMPONENTS;
    return this.cfg.memberOf ? MEMBER_COMPONENTS : COMPONENTS;
  }

  /** This cell's pooler id. */
  get poolerId(): string {
    const shard = this.cfg.shard;
    return shard ? `${this.cfg.cell}-s${shard.slot}-pooler` : `${this.cfg.cell}-pooler-0`;
  }

  /** Reads the config a started cluster saved in its data directory. */
  static load(dataDir: string, log?: (msg: string) => void): LocalCluster {
    const path = `${resolve(dataDir)}/cluster.json`;
    let cfg: LocalClusterConfig;
    try {
      cfg = { ...DEFAULT_CONFIG, ...JSON.parse(Deno.readTextFileSync(path)) };
    } catch {
      throw new Error(`No cluster in ${resolve(dataDir)}: start one with multigres cluster start`);
    }
    return new LocalCluster({ ...cfg, dataDir }, log);
  }

  /**
   * The `--grpc-*` flags of a component (or of `multigres`, the CLI): its certificate and key
   * and the cluster CA, or `--grpc-insecure` when the cluster runs without mTLS.
   */
  grpcFlags(who: GrpcIdentity): string[] {
    if (this.cfg.grpcInsecure) return ["--grpc-insecure"];
    const f = grpcCertFiles(this.cfg.grpcCertDir!, who);
    return [
      `--grpc-ca-file=${f.caFile}`,
      `--grpc-cert-file=${f.certFile}`,
      `--grpc-key-file=${f.keyFile}`,
    ];
  }

  #grpcSecurity?: GrpcSecurity;

  /** How this process's own gRPC calls to the cluster are secured: the CLI's certificate. */
  get grpcSecurity(): GrpcSecurity {
    if (!this.#grpcSecurity) {
      const f = grpcCertFiles(this.cfg.grpcCertDir!, "multigres");
      this.#grpcSecurity = grpcSecurityFromFlags({
        "grpc-insecure": this.cfg.grpcInsecure ?? false,
        "grpc-ca-file": this.cfg.grpcInsecure ? "" : f.caFile,
        "grpc-cert-file": this.cfg.grpcInsecure ? "" : f.certFile,
        "grpc-key-file": this.cfg.grpcInsecure ? "" : f.keyFile,
      });
    }
    return this.#grpcSecurity;
  }

  get topoAddress(): string {
    return this.cfg.memberOf ?? `127.0.0.1:${this.ports.etcd}`;
  }

  get pgDataDir(): string {
    return `${this.cfg.dataDir}/pg/${this.cfg.cell}/data`;
  }

  /** The psql command line a user runs to connect. */
  get psqlLine(): string {
    return `PGPASSWORD=${this.cfg.password} psql -h 127.0.0.1 -p ${this.ports.gatewayPg} -U postgres`;
  }

  #pidPath(c: Component): string {
    return `${this.cfg.dataDir}/run/${c}.pid`;
  }

  logPath(c: Component): string {
    return `${this.cfg.dataDir}/logs/${c}.log`;
  }

  /** The postmaster's pid from its `postmaster.pid` (0 when none runs). */
  postgresPid(): number {
    const pid = readPid(`${this.pgDataDir}/postmaster.pid`);
    return pid && alive(pid) ? pid : 0;
  }

  /** Sends `signal` to a running component (for tests: SIGKILL, SIGSTOP…); false if none runs. */
  signal(c: Component, signal: Deno.Signal): boolean {
    const pid = this.running()[c];
    if (!pid) return false;
    Deno.kill(pid, signal);
    return true;
  }

  /** Pids of the components that run now. */
  running(): Partial<Record<Component, number>> {
    const out: Partial<Record<Component, number>> = {};
    for (const c of this.#components) {
      const pid = readPid(this.#pidPath(c));
      if (pid && alive(pid)) out[c] = pid;
    }
    return out;
  }

  /** Starts every component not already running; resolves once a query works through the gateway. */
  async start(): Promise<void> {
    const pre = await ensurePrereqs(this.#log);
    this.#prepareDirs();
    if (!this.cfg.grpcInsecure) {
      // The gateway's address is in every certificate too: it registers its gRPC port there.
      const ip = this.cfg.gatewayListenAddress;
      ensureClusterCerts(this.cfg.grpcCertDir!, {
        cluster: this.cfg.cluster,
        ips: /^[\d.]+$|:/.test(ip) ? [ip] : [],
      });
    }
    // Everything but the password: stop and status do not need it.
    const { password: _, ...saved } = this.cfg;
    Deno.writeTextFileSync(
      `${this.cfg.dataDir}/cluster.json`,
      JSON.stringify(saved, null, 2) + "\n",
    );
    const running = this.running();
    for (const c of this.#components) {
      if (running[c]) {
        this.#log(`${c} already running (pid ${running[c]})`);
      } else {
        spawnDetached(this.#spec(c, pre), this.logPath(c), this.#pidPath(c));
      }
      if (c === "etcd") await this.#bootstrapTopo();
    }
    if (this.cfg.memberOf) return;
    await this.waitForQuery();
    // One at a time: each base backup forces a checkpoint on the primary, and one taken while
    // another streams can recycle WAL that the other still needs.
    let joined = 0;
    for (const m of this.members) {
      try {
        await m.#joinMember(this.cfg.joinTimeoutMs);
        joined++;
      } catch (e) {
        // A broken replica must not take the serving primary down with it: say so, and keep
        // trying in the background (while this process runs: `cluster start --foreground`).
        this.#log(
          `warning: cell ${m.cfg.cell}'s replica did not join: ${(e as Error).message}; ` +
            "the primary keeps serving, and the replica is retried in the background",
        );
        this.#retryJoin(m);
      }
    }
    if (this.members.length && joined === this.members.length) await this.#waitForPolicy();
  }

  async #joinMember(timeoutMs?: number): Promise<void> {
    await this.#bootstrapMemberCell();
    await this.start();
    await this.waitForReplica(timeoutMs);
  }

  /** Retries a member cell's join with a growing pause until it works or the cluster stops. */
  async #retryJoin(m: LocalCluster): Promise<void> {
    for (let pause = 5_000; !this.#stopping; pause = Math.min(pause * 2, 60_000)) {
      await new Promise((r) => setTimeout(r, pause));
      if (this.#stopping) return;
      try {
        await m.#joinMember(120_000);
        this.#log(`cell ${m.cfg.cell}'s replica joined`);
        return;
      } catch (e) {
        this.#log(
          `warning: cell ${m.cfg.cell}'s replica still did not join: ${(e as Error).message}`,
        );
      }
    }
  }

  /**
   * Resolves once the primary enforces the durability policy over the replicas (from then on
   * a commit is acknowledged only once a replica has it too).
   */
  async #waitForPolicy(timeoutMs = 60_000): Promise<void> {
    const pre = await ensurePrereqs(this.#log);
    await retryUntil(timeoutMs, "the primary did not apply the durability policy", async () => {
      const out = await new Deno.Command(`${pre.pgBinDir}/psql`, {
        args: psqlArgs(this.ports.gatewayPg, "show synchronous_standby_names"),
        env: { PGPASSWORD: this.cfg.password, PGCONNECT_TIMEOUT: "3" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const names = new TextDecoder().decode(out.stdout);
      // Every pooler but the primary's (whichever cell holds it now) is a standby candidate.
      const cells = [this, ...this.members].map((m) => `"${m.cfg.cell}-pooler-0"`);
      if (cells.filter((id) => names.includes(id)).length < this.members.length) {
        throw new Error(`synchronous_standby_names is ${names.trim() || "empty"}`);
      }
    });
  }

  #prepareDirs(): void {
    const dirs = ["run", "logs", `pg/${this.cfg.cell}`];
    if (!this.cfg.memberOf) dirs.push("etcd", "backups");
    for (const d of dirs) {
      Deno.mkdirSync(`${this.cfg.dataDir}/${d}`, { recursive: true, mode: 0o755 });
    }
    if (Deno.uid() === 0) {
      // Postgres runs as the postgres user: it must reach its folder.
      Deno.chmodSync(this.cfg.dataDir, 0o755);
      const pgDir = `${this.cfg.dataDir}/pg/${this.cfg.cell}`;
      Deno.chmodSync(`${this.cfg.dataDir}/pg`, 0o755);
      new Deno.Command("chown", { args: ["postgres:postgres", pgDir] }).outputSync();
    }
  }

  #spec(c: Component, pre: Prereqs): ProcessSpec {
    const p = this.ports;
    if (c === "etcd") {
      return {
        name: c,
        cmd: pre.etcd,
        args: [
          "--name=multigres",
          `--data-dir=${this.cfg.dataDir}/etcd`,
          `--listen-client-urls=http://127.0.0.1:${p.etcd}`,
          `--advertise-client-urls=http://127.0.0.1:${p.etcd}`,
          `--listen-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
          `--initial-cluster=multigres=http://127.0.0.1:${p.etcdPeer}`,
          "--log-level=warn",
        ],
      };
    }
    const common = [
      `--cluster=${this.cfg.cluster}`,
      `--cell=${this.cfg.cell}`,
      `--topo-global-address=${this.topoAddress}`,
      `--log-level=${this.cfg.logLevel}`,
      ...(c === "provisioner" ? [] : this.grpcFlags(c)),
    ];
    const args: Record<Exclude<Component, "etcd" | "provisioner">, string[]> = {
      pgctld: [
        `--http-port=${p.pgctldHttp}`,
        `--grpc-port=${p.pgctldGrpc}`,
        `--pg-data-dir=${this.pgDataDir}`,
        `--pg-port=${p.postgres}`,
        `--pg-bin-dir=${pre.pgBinDir}`,
        "--stop-postgres-on-exit",
      ],
      multipooler: [
        `--id=${this.poolerId}`,
        ...(this.cfg.shard
          ? [
            `--database=${this.cfg.shard.database}`,
            `--tablegroup=${this.cfg.shard.tablegroup}`,
            `--shard=${this.cfg.shard.name}`,
          ]
          : []),
        `--http-port=${p.poolerHttp}`,
        `--grpc-port=${p.poolerGrpc}`,
        `--data-plane-port=${this.cfg.dataPlane === "grpc-js" ? 0 : p.poolerDataPlane}`,
        `--pgctld-addr=127.0.0.1:${p.pgctldGrpc}`,
        `--pool-mode=${this.cfg.poolMode}`,
        ...(this.cfg.poolCapacity ? [`--pool-capacity=${this.cfg.poolCapacity}`] : []),
        ...(this.cfg.memberOf && (this.cfg.shard?.cellIndex ?? 1) > 0 ? ["--join"] : []),
        `--state-file=${this.cfg.dataDir}/pooler-state.json`,
      ],
      multiorch: [
        `--id=${this.cfg.cell}-orch-0`,
        `--http-port=${p.orchHttp}`,
        `--grpc-port=${p.orchGrpc}`,
        ...(this.cfg.twoPhaseMinAgeSeconds !== undefined
          ? [`--two-phase-min-age=${this.cfg.twoPhaseMinAgeSeconds}`]
          : []),
      ],
      multigateway: [
        `--id=${this.cfg.cell}-gateway-0`,
        `--pg-port=${p.gatewayPg}`,
        ...((this.cfg.cells ?? 1) > 1 ? [`--pg-replica-port=${p.gatewayPgReplica}`] : []),
        `--http-port=${p.gatewayHttp}`,
        `--grpc-port=${p.gatewayGrpc}`,
        `--bind-address=${this.cfg.gatewayListenAddress}`,
        ...this.#tlsFlags(),
        ...(this.cfg.hbaFile ? [`--hba-file=${this.cfg.hbaFile}`] : []),
      ],
    };
    // The shard provisioner is the CLI's `cluster provision`: it reads the rest from cluster.json.
    const flags = c === "provisioner"
      ? ["cluster", "provision", `--data-dir=${this.cfg.dataDir}`]
      : [...common, ...args[c]];
    // The password goes through the environment, not the command line, which `ps` shows.
    const env = c === "pgctld" || c === "provisioner"
      ? { [envName("pg-superuser-password")]: this.cfg.password }
      : undefined;
    if (this.cfg.binDir) {
      const exe = c === "provisioner" ? "multigres" : c;
      return { name: c, cmd: `${this.cfg.binDir}/${exe}`, args: flags, env };
    }
    // MULTIGRES_CPU_PROF_DIR: the gateway and pooler write V8 CPU profiles there on exit (with a
    // markdown summary), to find where the time of a request goes.
    const profDir = Deno.env.get("MULTIGRES_CPU_PROF_DIR");
    const prof = profDir && (c === "multigateway" || c === "multipooler")
      ? [`--cpu-prof-dir=${profDir}`, "--cpu-prof-md", `--cpu-prof-name=${c}.cpuprofile`]
      : [];
    // MULTIGRES_V8_FLAGS: V8 flags for the gateway and pooler (e.g. `--perf-basic-prof`, so that
    // `perf` names JavaScript frames).
    const v8 = Deno.env.get("MULTIGRES_V8_FLAGS");
    if (v8 && (c === "multigateway" || c === "multipooler")) prof.push(`--v8-flags=${v8}`);
    return {
      name: c,
      cmd: Deno.execPath(),
      args: ["run", "-A", "--quiet", ...prof, `${REPO_ROOT}${SOURCES[c]}`, ...flags],
      cwd: REPO_ROOT,
      env,
    };
  }

  /**
   * The gateway's TLS flags: a self-signed certificate made once under `<data-dir>/tls` with
   * openssl (none when openssl is missing: clients are then told TLS is off).
   */
  #tlsFlags(): string[] {
    if (this.cfg.tls === false) return [];
    const dir = `${this.cfg.dataDir}/tls`;
    const cert = `${dir}/server.crt`;
    const key = `${dir}/server.key`;
    try {
      Deno.statSync(cert);
      Deno.statSync(key);
    } catch {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      try {
        const out = new Deno.Command("openssl", {
          args: [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
          ],
          stdout: "null",
          stderr: "piped",
        }).outputSync();
        if (!out.success) return [];
        Deno.chmodSync(key, 0o600);
      } catch {
        return [];
      }
    }
    return [`--tls-cert-file=${cert}`, `--tls-key-file=${key}`];
  }

  /** Waits for etcd, then writes the global topo: the cell and the default database. */
  async #bootstrapTopo(): Promise<void> {
    const topo = new TopoServer(this.topoAddress);
    const paths = new TopoPaths(this.cfg.cluster);
    try {
      await retryUntil(20_000, "etcd did not come up", () => topo.get("/multigres"));
      await this.#putCell(topo, paths);
      const db: DatabaseRecord = {
        name: "postgres",
        // With replicas, a commit is acknowledged once one of them has it too.
        durabilityPolicy: { kind: "AT_LEAST_N", n: (this.cfg.cells ?? 1) > 1 ? 2 : 1 },
        backupLocation: `${this.cfg.dataDir}/backups`,
        cells: [this.cfg.cell],
      };
      await topo.create(paths.database(db.name), encodeRecord("Database", db));
    } finally {
      topo.close();
    }
  }

  /** This cell's record (and its local topo's address) in the global topo. */
  async #putCell(topo: TopoServer, paths: TopoPaths): Promise<CellRecord> {
    const cell: CellRecord = {
      name: this.cfg.cell,
      localTopoAddress: this.topoAddress,
      root: paths.cellRoot(this.cfg.cell),
    };
    await topo.put(paths.cell(cell.name), encodeRecord("Cell", cell));
    await topo.put(paths.cellLocalTopo(cell.name), cell.localTopoAddress);
    return cell;
  }

  /** A further cell: its record in the global topo, and its name in the database's cells. */
  async #bootstrapMemberCell(): Promise<void> {
    const topo = new TopoServer(this.topoAddress);
    const paths = new TopoPaths(this.cfg.cluster);
    try {
      const cell = await this.#putCell(topo, paths);
      const json = await topo.get(paths.database("postgres"));
      if (json) {
        const db = decodeRecord<DatabaseRecord>("Database", json);
        if (!db.cells.includes(cell.name)) {
          db.cells = [...db.cells, cell.name];
          await topo.put(paths.database(db.name), encodeRecord("Database", db));
        }
      }
    } finally {
      topo.close();
    }
  }

  /**
   * Resolves once this cell's pooler is registered as a replica (the base backup is done), or
   * as the primary (after a failover).
   */
  async waitForReplica(timeoutMs = 300_000): Promise<void> {
    const id = this.poolerId;
    let last = "not registered yet";
    await retryUntil(timeoutMs, () => `${id} did not become a replica: ${last}`, async () => {
      this.#assertAlive();
      const topo = new TopoServer(this.topoAddress);
      try {
        const json = await topo.get(new TopoPaths(this.cfg.cluster).pooler(this.cfg.cell, id));
        const rec = json ? decodeRecord<PoolerRecord>("Pooler", json) : null;
        last = rec ? `registered as ${rec.type}` : "not registered yet";
        // After a failover, a member may be the primary.
        if (rec?.type !== "REPLICA" && rec?.type !== "PRIMARY") throw new Error(last);
      } finally {
        topo.close();
      }
    });
  }

  /** Resolves once `select 1` works through the gateway (first start runs initdb: be patient). */
  async waitForQuery(timeoutMs = 120_000): Promise<void> {
    const pre = await ensurePrereqs(this.#log);
    let last = "";
    await retryUntil(timeoutMs, () => `the gateway did not answer a query: ${last}`, async () => {
      this.#assertAlive();
      const out = await new Deno.Command(`${pre.pgBinDir}/psql`, {
        args: psqlArgs(this.ports.gatewayPg, "select 1"),
        env: { PGPASSWORD: this.cfg.password, PGCONNECT_TIMEOUT: "3" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        last = new TextDecoder().decode(out.stderr).trim();
        throw new Error(last);
      }
    });
  }

  /** Gives up waiting (Fatal) as soon as a component this cell started has exited. */
  #assertAlive(): void {
    for (const [c, pid] of Object.entries(this.#expectedPids())) {
      if (!alive(pid)) throw new Fatal(`${c} exited; see ${this.logPath(c as Component)}`);
    }
  }

  #expectedPids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.#components) {
      const pid = readPid(this.#pidPath(c));
      if (pid) out[c] = pid;
    }
    return out;
  }

  /** Set once stop() begins: background joins give up. */
  #stopping = false;

  /** Stops every component by PID, gateway first, etcd last; Postgres with its pgctld. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (!this.cfg.memberOf) {
      // The shard provisioner first (it would start shards again), then every shard.
      const pid = readPid(this.#pidPath("provisioner"));
      if (pid) await stopPid(pid, "SIGTERM", 15_000);
      const shards = new ShardProvisioner(this, this.#log).allCells();
      await Promise.all(shards.map((c) => c.stop()));
    }
    for (const m of this.members) await m.stop();
    for (const c of [...this.#components].reverse()) {
      const pid = readPid(this.#pidPath(c));
      if (pid) await stopPid(pid, "SIGTERM", c === "pgctld" ? 60_000 : 15_000);
      if (c === "pgctld") await this.#stopOrphanPostgres();
      try {
        Deno.removeSync(this.#pidPath(c));
      } catch {
        // no pid file
      }
    }
  }

  /** A postmaster left running (pgctld was killed) is stopped through its postmaster.pid. */
  async #stopOrphanPostgres(): Promise<void> {
    const pid = readPid(`${this.pgDataDir}/postmaster.pid`);
    if (pid && alive(pid)) await stopPid(pid, "SIGINT", 60_000);
  }

  /** Asks this cell's orch to hand the shard's primary over (see Orch.switchover). */
  async switchover(
    opts: { to?: string; drainMs?: number } = {},
  ): Promise<{ primary: string; term: number }> {
    const client = makeClient("MultiOrch", `127.0.0.1:${this.ports.orchGrpc}`, this.grpcSecurity);
    try {
      return await callUnary(client, "Switchover", {
        database: "postgres",
        tablegroup: "default",
        shard: "0-inf",
        to: opts.to ?? "",
        drainMs: opts.drainMs ?? 0,
      }, { deadlineMs: 300_000 });
    } finally {
      client.close();
    }
  }

  /** What runs, and what the topo says of the poolers. */
  async status(): Promise<ClusterStatus> {
    const running = this.running();
    const out: ClusterStatus = {
      processes: [
        ...COMPONENTS.map((c) => ({ name: c, pid: running[c] ?? 0 })),
        ...this.members.flatMap((m) => {
          const r = m.running();
          return MEMBER_COMPONENTS.map((c) => ({ name: `${m.cfg.cell} ${c}`, pid: r[c] ?? 0 }));
        }),
        ...(this.cfg.memberOf ? [] : new ShardProvisioner(this, () => {}).allCells()).flatMap(
          (m) => {
            const r = m.running();
            return SHARD_COMPONENTS.map((c) => ({
              name: `${m.cfg.cell} s${m.cfg.shard!.slot} ${c}`,
              pid: r[c] ?? 0,
            }));
          },
        ),
      ],
      poolers: [],
      lsns: {},
      policies: {},
      gateways: [],
      orchs: [],
      notJoined: [],
      layout: null,
      topoError: "",
    };
    if (!running.etcd) {
      out.topoError = "etcd is not running";
      return out;
    }
    let topo: Topo | undefined;
    try {
      topo = await Topo.connect({
        globalAddress: this.topoAddress,
        cluster: this.cfg.cluster,
        cell: this.cfg.cell,
        waitMs: 3000,
      });
      out.poolers = await topo.listAllPoolers();
      await Promise.all(out.poolers.map(async (p) => {
        out.lsns[p.id] = await poolerLsn(p.addr, this.grpcSecurity);
      }));
      for (const d of await topo.listDatabases()) {
        const pol = d.durabilityPolicy;
        out.policies[d.name] = pol?.kind === "AT_LEAST_N" ? `AT_LEAST_N ${pol.n}` : "none";
      }
      for (const m of this.members) {
        const rec = out.poolers.find((p) => p.id === `${m.cfg.cell}-pooler-0`);
        if (rec?.type !== "REPLICA" && rec?.type !== "PRIMARY") out.notJoined.push(m.cfg.cell);
      }
      out.layout = (await readMetadata(out.poolers, this.grpcSecurity))?.databases ?? null;
      out.gateways = (await topo.listGateways()).map((g) => `${g.id} ${g.pgAddr}`);
      // One orch per cell; the dev cluster's cells share one etcd.
      for (const c of [this, ...this.members]) {
        out.orchs.push(...(await topo.listOrchs(c.cfg.cell)).map((o) => o.id));
      }
    } catch (e) {
      out.topoError = (e as Error).message;
    } finally {
      topo?.close();
    }
    return out;
  }
}

export interface ClusterStatus {
  processes: { name: string; pid: number }[];
  poolers: PoolerRecord[];
  /** Each pooler's WAL position (written on a primary, replayed on a replica); "" if unknown. */
  lsns: Record<string, string>;
  /** Durability policy by database, as the global topo records it. */
  policies: Record<string, string>;
  gateways: string[];
  orchs: string[];
  /** Replica cells whose pooler is not registered as a replica (or primary): not joined yet. */
  notJoined: string[];
  /** Databases → tablegroups → shards and tables, from the hidden schema (null: unreadable). */
  layout: DatabaseLayout[] | null;
  topoError: string;
}

/** A pooler's WAL position from its Status call; "" when it does not answer in time. */
async function poolerLsn(addr: string, security: GrpcSecurity): Promise<string> {
  const client = makeClient("MultiPooler", addr, security);
  try {
    const st = await callUnary<PoolerStatusResponse>(client, "Status", {}, { deadlineMs: 2000 });
    return st.lsn ?? "";
  } catch {
    return "";
  } finally {
    client.close();
  }
}

/** Bytes between two WAL positions (`X/Y`, hex), or null when either is unknown. */
export function lsnBytes(lsn: string): bigint | null {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn);
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : null;
}

/** An error that stops retryUntil at once. */
class Fatal extends Error {}

async function retryUntil(
  timeoutMs: number,
  what: string | (() => string),
  fn: () => Promise<unknown>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fn();
      return;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      if (Date.now() > deadline) {
        throw new Error(typeof what === "string" ? `${what}: ${(e as Error).message}` : what());
      }
    }
    await sleep(250);
  }
}

/** psql's arguments for one query to the gateway at `port`, as postgres, unaligned. */
function psqlArgs(port: number, sql: string): string[] {
  return ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-tAc", sql];
}
