/**
 * One Postgres instance managed by pgctld: initdb, start, stop, reload, status and crash
 * watching, for a postmaster started here or adopted from `postmaster.pid`.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import {
  confString,
  findPgBinDir,
  includeLine,
  MULTIGRES_CONF,
  renderMultigresConf,
  renderPgHba,
} from "./_config.ts";
import {
  describeExit,
  dropPrivileges,
  errorText,
  isPostmasterFor,
  isProcessAlive,
  lookupOsUser,
  oneLine,
  type OsUser,
  readPostmasterPid,
  runCommand,
  sleep,
  tailFile,
} from "./_process.ts";

/** Where an instance is in its life. */
export type PostgresState =
  | "NOT_INITIALIZED"
  | "STOPPED"
  | "STARTING"
  | "RUNNING"
  | "STOPPING"
  | "CRASHED";

/** Postgres shutdown modes: `smart` waits for clients, `fast` disconnects them, `immediate` aborts. */
export type StopMode = "smart" | "fast" | "immediate";

/** The logger pgctld hands in; fields must not carry credentials. */
export interface PgctldLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** How to find, run and reach one Postgres instance. */
export interface PostgresInstanceOptions {
  /** The data directory; made absolute. */
  dataDir: string;
  /** TCP port, also the suffix of the unix socket name. */
  port: number;
  /** TCP listen address. @default "127.0.0.1" */
  listenAddress?: string;
  /** Unix socket directory. @default `${dataDir}/../sock` */
  socketDir?: string;
  /** Superuser role created by initdb. @default "postgres" */
  superuser?: string;
  /** Superuser password set by initdb. @default "postgres" */
  superuserPassword?: string;
  /** Directory of initdb and postgres. @default findPgBinDir() */
  pgBinDir?: string;
  /** OS user that runs Postgres when pgctld runs as root (ignored otherwise). @default "postgres" */
  osUser?: string;
  logger?: PgctldLogger;
  /** Called with `lastExit` when the postmaster dies without being asked to stop. */
  onCrash?: (lastExit: string) => void;
  /** How long start() waits for Postgres to accept connections. @default 30000 */
  startTimeoutMs?: number;
  /** How long stop() waits before sending SIGKILL. @default 60000 */
  stopTimeoutMs?: number;
}

/** What status() reports. */
export interface PostgresStatus {
  state: PostgresState;
  /** Postmaster pid, 0 when none is running. */
  pid: number;
  dataDir: string;
  port: number;
  socketDir: string;
  /** Server version, e.g. `15.18`; empty when it cannot be determined. */
  version: string;
  /** How the last postmaster ended (`exit code N`, `signal SIGKILL`…); empty if none has. */
  lastExit: string;
}

/** Options for start() and restart(). */
export interface StartOptions {
  /** Extra settings passed as `postgres -c name=value`. */
  options?: Record<string, string>;
}

const STOP_SIGNALS: Record<StopMode, Deno.Signal> = {
  smart: "SIGTERM",
  fast: "SIGINT",
  immediate: "SIGQUIT",
};
const READY_STATUSES = new Set(["ready", "standby"]);
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;
// Opens the log as the caller (root), then execs the postmaster in place, as pg_ctl does.
const START_SCRIPT = 'log=$1; shift; exec "$@" </dev/null >>"$log" 2>&1';
const MAX_SOCKET_PATH = 107;
const noopLogger: PgctldLogger = { info() {}, warn() {}, error() {} };

/**
 * Manages one Postgres data directory. Operations that change the server are serialised; the
 * postmaster runs in its own session, so it outlives pgctld, and a new instance on the same data
 * directory adopts it through `postmaster.pid`.
 */
export class PostgresInstance {
  readonly #dataDir: string;
  readonly #port: number;
  readonly #listenAddress: string;
  readonly #socketDir: string;
  readonly #superuser: string;
  readonly #password: string;
  readonly #osUserName: string;
  readonly #logger: PgctldLogger;
  readonly #onCrash?: (lastExit: string) => void;
  readonly #startTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  #binDir: string | undefined;
  #osUser: Promise<OsUser | null> | undefined;
  #version: Promise<string> | undefined;
  #child: Deno.ChildProcess | null = null;
  #adopted: { pid: number; timer: ReturnType<typeof setInterval> } | null = null;
  #phase: "starting" | "stopping" | null = null;
  #crashed = false;
  #lastExit = "";
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: PostgresInstanceOptions) {
    this.#dataDir = resolve(opts.dataDir);
    this.#port = opts.port;
    this.#listenAddress = opts.listenAddress ?? "127.0.0.1";
    this.#socketDir = resolve(opts.socketDir ?? resolve(this.#dataDir, "..", "sock"));
    this.#superuser = opts.superuser ?? "postgres";
    this.#password = opts.superuserPassword ?? "postgres";
    this.#binDir = opts.pgBinDir;
    this.#osUserName = opts.osUser ?? "postgres";
    this.#logger = opts.logger ?? noopLogger;
    this.#onCrash = opts.onCrash;
    this.#startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    this.#stopTimeoutMs = opts.stopTimeoutMs ?? 60_000;
  }

  /** The Postgres server log: `${dataDir}/../postgres.log`. */
  get logPath(): string {
    return resolve(this.#dataDir, "..", "postgres.log");
  }

  /**
   * Runs initdb and writes pgctld's settings (`multigres.conf`, `pg_hba.conf`).
   *
   * @returns false when the data directory already holds a cluster, true when it was created.
   */
  initDataDir(opts: { superuserPassword?: string } = {}): Promise<boolean> {
    return this.#exclusive(async () => {
      if (await exists(`${this.#dataDir}/PG_VERSION`)) return false;
      const password = opts.superuserPassword ?? this.#password;
      if (/[\r\n]/.test(password)) throw new Error("Superuser password must not contain a newline");
      const user = await this.#user();
      const initdb = this.#bin("initdb");
      await Deno.mkdir(dirname(this.#dataDir), { recursive: true });
      await makePrivateDir(this.#dataDir, user);
      if (user) {
        const probe = await runCommand("test", ["-w", this.#dataDir], { user });
        if (!probe.success) {
          throw new Error(
            `Data directory is not writable by OS user ${user.name}: ${this.#dataDir} ` +
              "(every parent directory must be traversable: chmod o+x)",
          );
        }
      }
      const pwfile = await Deno.makeTempFile({ prefix: "pgctld-pw-" });
      try {
        await Deno.writeTextFile(pwfile, `${password}\n`, { mode: 0o600 });
        if (user) await Deno.chown(pwfile, user.uid, user.gid);
        const result = await runCommand(initdb, [
          "-D",
          this.#dataDir,
          "-U",
          this.#superuser,
          `--pwfile=${pwfile}`,
          "--auth-local=trust",
          "--auth-host=scram-sha-256",
          "-E",
          "UTF8",
          `--locale=${await utf8Locale()}`,
        ], { user });
        if (!result.success) {
          throw new Error(
            `initdb failed (${describeExit(result)}): ${oneLine(result.stderr || result.stdout)}`,
          );
        }
      } finally {
        await Deno.remove(pwfile).catch(() => {});
      }
      await this.#writeSettings(user);
      this.#logger.info("initialised data directory", { dataDir: this.#dataDir });
      return true;
    });
  }

  /**
   * Makes the data directory a streaming replica of the Postgres at `primary`: a base backup
   * taken with pg_basebackup (WAL streamed alongside, so it is consistent), pgctld's settings for
   * this instance's own port, `standby.signal`, and a `primary_conninfo` naming this replica
   * `applicationName` (what `synchronous_standby_names` and `pg_stat_replication` call it). The
   * password travels in a passfile, never on a command line; it is kept in
   * `postgresql.auto.conf`, inside the private data directory, as pg_basebackup -R would.
   *
   * @returns false when the data directory already holds a cluster, true when it was created.
   */
  initReplica(opts: ReplicaSource): Promise<boolean> {
    return this.#exclusive(async () => {
      if (await exists(`${this.#dataDir}/PG_VERSION`)) return false;
      const user = await this.#user();
      await Deno.mkdir(dirname(this.#dataDir), { recursive: true });
      await makePrivateDir(this.#dataDir, user);
      await this.#baseBackup(opts, user);
      await this.#writeSettings(user);
      await this.#writeStandbySettings(opts, user);
      this.#logger.info("initialised replica data directory", {
        dataDir: this.#dataDir,
        primary: `${opts.host}:${opts.port}`,
      });
      return true;
    });
  }

  /** pg_basebackup of `source` into the (empty) data directory; removes it on failure. */
  async #baseBackup(source: ReplicaSource, user: OsUser | null): Promise<void> {
    const result = await this.#withPassfile(
      source,
      user,
      (conn) =>
        runCommand(this.#bin("pg_basebackup"), [
          "-D",
          this.#dataDir,
          "-d",
          conn,
          "--wal-method=stream",
          "--checkpoint=fast",
          "--no-password",
        ], { user }),
    );
    if (!result.success) {
      await Deno.remove(this.#dataDir, { recursive: true }).catch(() => {});
      throw new Error(
        `pg_basebackup from ${source.host}:${source.port} failed (${describeExit(result)}): ${
          oneLine(result.stderr || result.stdout)
        }`,
      );
    }
  }

  /** The libpq parameters for connecting to `source` as its replication role. */
  #sourceConn(source: ReplicaSource): { params: Record<string, string>; password: string } {
    const password = source.password ?? this.#password;
    if (/[\r\n]/.test(password)) {
      throw new Error("Replication password must not contain a newline");
    }
    return {
      params: {
        host: source.host,
        port: String(source.port),
        user: source.user ?? this.#superuser,
        application_name: source.applicationName,
      },
      password,
    };
  }

  /**
   * Runs `fn` with a connection string for `source` whose password is in a passfile (never on a
   * command line), readable by `user`; the passfile is removed afterwards.
   */
  async #withPassfile<T>(
    source: ReplicaSource,
    user: OsUser | null,
    fn: (conninfo: string) => Promise<T>,
  ): Promise<T> {
    const { params, password } = this.#sourceConn(source);
    const passfile = await Deno.makeTempFile({ prefix: "pgctld-pgpass-" });
    try {
      const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
      await Deno.writeTextFile(
        passfile,
        `${escape(source.host)}:${source.port}:*:${escape(params.user)}:${escape(password)}\n`,
        { mode: 0o600 },
      );
      if (user) await Deno.chown(passfile, user.uid, user.gid);
      return await fn(conninfo({ ...params, passfile }));
    } finally {
      await Deno.remove(passfile).catch(() => {});
    }
  }

  /**
   * `standby.signal` and the `primary_conninfo` this replica streams from (`null`: none, so the
   * standby stops receiving WAL and replays only what it has), in `postgresql.auto.conf` as
   * pg_basebackup -R would write it, replacing any earlier one.
   */
  async #writeStandbySettings(source: ReplicaSource | null, user: OsUser | null): Promise<void> {
    await writeOwned(`${this.#dataDir}/standby.signal`, "", user);
    const auto = `${this.#dataDir}/postgresql.auto.conf`;
    const kept = (await Deno.readTextFile(auto).catch(() => ""))
      .split("\n")
      .filter((l) => l && !/^\s*primary_conninfo\s*=/.test(l));
    if (source) {
      const { params, password } = this.#sourceConn(source);
      kept.push(`primary_conninfo = ${confString(conninfo({ ...params, password }))}`);
    }
    await writeOwned(auto, kept.map((l) => l + "\n").join(""), user);
  }

  /**
   * Points this standby at another primary (or, with `null`, at none: it keeps what it received
   * and stops streaming). A running standby re-reads the setting at once (SIGHUP).
   */
  follow(source: ReplicaSource | null): Promise<void> {
    return this.#exclusive(async () => {
      if (!(await exists(`${this.#dataDir}/PG_VERSION`))) {
        throw new Error(`No cluster in ${this.#dataDir} to point at a primary`);
      }
      await this.#writeStandbySettings(source, await this.#user());
      const pid = await this.#probe();
      if (pid) Deno.kill(pid, "SIGHUP");
      this.#logger.info("following", {
        primary: source ? `${source.host}:${source.port}` : "none",
      });
    });
  }

  /**
   * Turns this data directory, a primary that lost its place, into a standby of `source`:
   * stops Postgres, winds its history back to where it and `source` diverged (pg_rewind, which
   * runs crash recovery first when the stop was not clean), and starts it as a standby. When
   * pg_rewind cannot do it, the old directory is set aside (`<dataDir>.old`) and a fresh base
   * backup replaces it.
   *
   * @returns how it was done.
   */
  rewind(source: ReplicaSource): Promise<"rewound" | "recloned"> {
    return this.#exclusive(async () => {
      if (!(await exists(`${this.#dataDir}/PG_VERSION`))) {
        throw new Error(`No cluster in ${this.#dataDir} to rewind`);
      }
      const user = await this.#user();
      await this.#stop("fast");
      const result = await this.#withPassfile(source, user, async (conn) => {
        // A just-promoted primary records its new timeline in pg_control only at its first
        // checkpoint; before that pg_rewind sees one timeline and wrongly finds nothing to do.
        const checkpoint = await runCommand(this.#bin("psql"), [
          "-d",
          `${conn} dbname='postgres'`,
          "-Xqc",
          "CHECKPOINT",
        ], { user });
        if (!checkpoint.success) {
          throw new Error(
            `CHECKPOINT on ${source.host}:${source.port} failed: ${oneLine(checkpoint.stderr)}`,
          );
        }
        return await runCommand(this.#bin("pg_rewind"), [
          "--target-pgdata",
          this.#dataDir,
          "--source-server",
          `${conn} dbname='postgres'`,
        ], { user });
      });
      let how: "rewound" | "recloned" = "rewound";
      if (!result.success) {
        this.#logger.warn("pg_rewind failed; taking a new base backup instead", {
          error: oneLine(result.stderr || result.stdout),
        });
        const aside = `${this.#dataDir}.old`;
        await Deno.remove(aside, { recursive: true }).catch(() => {});
        await Deno.rename(this.#dataDir, aside);
        await makePrivateDir(this.#dataDir, user);
        await this.#baseBackup(source, user);
        how = "recloned";
      }
      await this.#writeSettings(user);
      await this.#writeStandbySettings(source, user);
      this.#logger.info("rejoined as a standby", {
        primary: `${source.host}:${source.port}`,
        how,
      });
      await this.#start({});
      return how;
    });
  }

  /**
   * Starts the postmaster and waits until it accepts connections (or runs as a standby).
   *
   * @returns the postmaster pid; the running one if Postgres is already up.
   */
  start(opts: StartOptions = {}): Promise<number> {
    return this.#exclusive(() => this.#start(opts));
  }

  /** Stops the postmaster, escalating to SIGKILL after the stop timeout; a no-op when stopped. */
  stop(mode: StopMode = "fast"): Promise<void> {
    return this.#exclusive(() => this.#stop(mode));
  }

  /** Stops then starts Postgres. @returns the new postmaster pid. */
  restart(mode: StopMode = "fast", opts: StartOptions = {}): Promise<number> {
    return this.#exclusive(async () => {
      await this.#stop(mode);
      return await this.#start(opts);
    });
  }

  /** Makes Postgres re-read its configuration files (SIGHUP). */
  reload(): Promise<void> {
    return this.#exclusive(async () => {
      const pid = await this.#probe();
      if (!pid) throw new Error(`Postgres is not running: cannot reload ${this.#dataDir}`);
      Deno.kill(pid, "SIGHUP");
      this.#logger.info("reloaded postgres configuration", { pid });
    });
  }

  /** Reports the state of the instance; RUNNING only while a live postmaster serves the data. */
  async status(): Promise<PostgresStatus> {
    const version = await this.#serverVersion().catch(() => "");
    const base = {
      dataDir: this.#dataDir,
      port: this.#port,
      socketDir: this.#socketDir,
      version,
      lastExit: this.#lastExit,
    };
    if (!(await exists(`${this.#dataDir}/PG_VERSION`))) {
      return { state: "NOT_INITIALIZED", pid: 0, ...base };
    }
    const pid = await this.#probe();
    let state: PostgresState;
    if (this.#phase === "starting") state = "STARTING";
    else if (this.#phase === "stopping") state = "STOPPING";
    else if (pid) state = "RUNNING";
    else state = this.#crashed ? "CRASHED" : "STOPPED";
    return { state, pid, ...base, lastExit: this.#lastExit };
  }

  /**
   * Stops watching the postmaster without stopping it (for pgctld's own shutdown); the next call
   * on this object, or a new object, adopts it again from `postmaster.pid`.
   */
  close(): void {
    this.#unwatchAdopted();
    this.#child = null;
  }

  async #start(opts: StartOptions): Promise<number> {
    if (!(await exists(`${this.#dataDir}/PG_VERSION`))) {
      throw new Error(`Data directory is not initialised: ${this.#dataDir}`);
    }
    const logOffset = await fileSize(this.logPath);
    const running = await this.#probe();
    if (running) {
      await this.#waitReady(running, logOffset);
      return running;
    }
    const args = ["-D", this.#dataDir];
    for (const [name, value] of Object.entries(opts.options ?? {})) {
      if (!SETTING_NAME.test(name)) throw new Error(`Invalid Postgres setting name: ${name}`);
      args.push("-c", `${name}=${value}`);
    }
    const user = await this.#user();
    // A data directory made by an older pgctld gets today's settings (pgctld owns the file).
    await this.#writeConf(user);
    const postgres = this.#bin("postgres");
    const socketPath = `${this.#socketDir}/.s.PGSQL.${this.#port}`;
    if (new TextEncoder().encode(socketPath).length > MAX_SOCKET_PATH) {
      throw new Error(`Unix socket path is too long (maximum 107 bytes): ${socketPath}`);
    }
    await makePrivateDir(this.#socketDir, user);
    try {
      (await Deno.open(this.logPath, { append: true, create: true })).close();
    } catch (err) {
      throw new Error(`Cannot open the Postgres log ${this.logPath}: ${errorText(err)}`);
    }
    this.#crashed = false;
    this.#phase = "starting";
    try {
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command("sh", {
          args: ["-c", START_SCRIPT, "pgctld-postgres", this.logPath, ...dropPrivileges(user)]
            .concat(postgres, args),
          stdin: "null",
          stdout: "null",
          stderr: "null",
          detached: true, // own session: a Ctrl-C to pgctld's process group does not reach it
        }).spawn();
      } catch (err) {
        throw new Error(`Cannot start Postgres: ${errorText(err)}`);
      }
      child.unref();
      this.#child = child;
      child.status.then((status) => this.#childExited(child, status));
      this.#logger.info("starting postgres", { pid: child.pid, dataDir: this.#dataDir });
      await this.#waitReady(child.pid, logOffset);
      this.#logger.info("postgres is ready", { pid: child.pid, port: this.#port });
      return child.pid;
    } finally {
      this.#phase = null;
    }
  }

  async #waitReady(pid: number, logOffset: number): Promise<void> {
    const own = this.#child?.pid === pid;
    const deadline = Date.now() + this.#startTimeoutMs;
    for (;;) {
      const alive = own ? this.#child?.pid === pid : await isProcessAlive(pid);
      if (!alive) {
        const exit = own ? this.#lastExit : "exit status unknown";
        const tail = await tailFile(this.logPath, logOffset);
        throw new Error(`Postgres exited during startup (${exit}): ${tail || "no log output"}`);
      }
      const pidFile = await readPostmasterPid(this.#dataDir);
      if (pidFile?.pid === pid && READY_STATUSES.has(pidFile.status)) return;
      if (Date.now() >= deadline) {
        const tail = await tailFile(this.logPath, logOffset);
        if (own) {
          this.#phase = "stopping"; // leave nothing half-started behind: a retry starts clean
          await this.#terminate(pid, "SIGQUIT", 10_000);
        }
        throw new Error(
          `Postgres did not accept connections within ${this.#startTimeoutMs / 1000} s: ` +
            (tail || "no log output"),
        );
      }
      await sleep(100);
    }
  }

  async #stop(mode: StopMode): Promise<void> {
    const signal = STOP_SIGNALS[mode];
    if (!signal) throw new Error(`Unknown stop mode: ${mode} (use smart, fast or immediate)`);
    const pid = await this.#probe();
    this.#crashed = false;
    if (!pid) {
      this.#unwatchAdopted();
      return;
    }
    const child = this.#child;
    this.#phase = "stopping";
    try {
      this.#logger.info("stopping postgres", { pid, mode });
      await this.#terminate(pid, signal, this.#stopTimeoutMs);
      if (child) await child.status;
      else this.#lastExit = `exit status unknown (adopted postmaster, ${mode} stop)`;
      this.#unwatchAdopted();
      this.#logger.info("postgres stopped", { pid, lastExit: this.#lastExit });
    } finally {
      this.#phase = null;
    }
  }

  /** Sends `signal`, waits up to `timeoutMs` for the process to go, then SIGKILLs it. */
  async #terminate(pid: number, signal: Deno.Signal, timeoutMs: number): Promise<void> {
    if (await signalAndWait(pid, signal, timeoutMs)) return;
    this.#logger.warn("postgres did not stop in time: sending SIGKILL", { pid, signal });
    if (!(await signalAndWait(pid, "SIGKILL", 10_000))) {
      throw new Error(`Postgres (pid ${pid}) did not exit after SIGKILL`);
    }
  }

  /** The pid of the live postmaster for this data directory, adopting one we did not start. */
  async #probe(): Promise<number> {
    if (this.#child) return this.#child.pid;
    const pidFile = await readPostmasterPid(this.#dataDir);
    if (pidFile && (await isPostmasterFor(pidFile.pid, this.#dataDir))) {
      this.#adopt(pidFile.pid);
      return pidFile.pid;
    }
    return 0;
  }

  #childExited(child: Deno.ChildProcess, status: Deno.CommandStatus): void {
    if (this.#child !== child) return;
    this.#child = null;
    this.#lastExit = describeExit(status);
    if (this.#phase !== null) return; // start() or stop() reports it
    this.#crashed = true;
    this.#reportCrash(child.pid);
  }

  #adopt(pid: number): void {
    if (this.#adopted?.pid === pid) return;
    this.#unwatchAdopted();
    this.#logger.info("adopted running postgres", { pid, dataDir: this.#dataDir });
    // Not our child, so no exit status: poll its liveness instead.
    const timer = setInterval(() => void this.#checkAdopted(pid), 1000);
    Deno.unrefTimer(timer);
    this.#adopted = { pid, timer };
  }

  async #checkAdopted(pid: number): Promise<void> {
    if (!this.#watching(pid) || (await isProcessAlive(pid)) || !this.#watching(pid)) return;
    this.#unwatchAdopted();
    this.#lastExit = "exit status unknown (adopted postmaster vanished)";
    this.#crashed = true;
    this.#reportCrash(pid);
  }

  #watching(pid: number): boolean {
    return this.#adopted?.pid === pid && this.#phase !== "stopping";
  }

  #unwatchAdopted(): void {
    if (this.#adopted) clearInterval(this.#adopted.timer);
    this.#adopted = null;
  }

  #reportCrash(pid: number): void {
    this.#logger.error("postgres exited unexpectedly", {
      pid,
      lastExit: this.#lastExit,
      dataDir: this.#dataDir,
    });
    try {
      this.#onCrash?.(this.#lastExit);
    } catch (err) {
      this.#logger.error("onCrash callback failed", { error: errorText(err) });
    }
  }

  async #writeSettings(user: OsUser | null): Promise<void> {
    await this.#writeConf(user);
    await writeOwned(`${this.#dataDir}/pg_hba.conf`, renderPgHba(), user);
  }

  /** `multigres.conf` and the line of `postgresql.conf` that includes it. */
  async #writeConf(user: OsUser | null): Promise<void> {
    const conf = `${this.#dataDir}/postgresql.conf`;
    if (!(await Deno.readTextFile(conf)).includes(`'${MULTIGRES_CONF}'`)) {
      await Deno.writeTextFile(conf, includeLine(), { append: true });
    }
    await writeOwned(
      `${this.#dataDir}/${MULTIGRES_CONF}`,
      renderMultigresConf({
        listenAddress: this.#listenAddress,
        port: this.#port,
        socketDir: this.#socketDir,
      }),
      user,
    );
  }

  #bin(name: string): string {
    this.#binDir ??= findPgBinDir();
    return `${this.#binDir}/${name}`;
  }

  #user(): Promise<OsUser | null> {
    this.#osUser ??= Deno.uid() === 0 ? lookupOsUser(this.#osUserName) : Promise.resolve(null);
    const pending = this.#osUser;
    pending.catch(() => {
      if (this.#osUser === pending) this.#osUser = undefined; // retry the lookup next time
    });
    return pending;
  }

  #serverVersion(): Promise<string> {
    this.#version ??= (async () => {
      const out = await runCommand(this.#bin("postgres"), ["--version"]);
      const match = /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(out.stdout);
      if (!out.success || !match) {
        throw new Error(`Cannot read the Postgres version: ${out.stderr}`);
      }
      return match[1];
    })();
    const pending = this.#version;
    pending.catch(() => {
      if (this.#version === pending) this.#version = undefined;
    });
    return pending;
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.then(() => {}, () => {});
    return run;
  }
}

/** Creates `dir` (mode 0700), owned by `user` when given. */
async function makePrivateDir(dir: string, user: OsUser | null): Promise<void> {
  if (user) {
    const out = await runCommand("install", [
      "-d",
      "-o",
      user.name,
      "-g",
      `${user.gid}`,
      "-m",
      "700",
      dir,
    ]);
    if (!out.success) throw new Error(`Cannot create directory ${dir}: ${oneLine(out.stderr)}`);
    return;
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
}

/** Writes a file that Postgres reads (mode 0600, owned by `user` when given). */
/** Where a replica copies its data from and then streams WAL from. */
export interface ReplicaSource {
  host: string;
  port: number;
  /** Role with the REPLICATION attribute. @default the instance's superuser */
  user?: string;
  /** Its password. @default the instance's superuser password */
  password?: string;
  /** The replica's name on the primary (pg_stat_replication, synchronous_standby_names). */
  applicationName: string;
}

/** A libpq connection string; values quoted as libpq wants. */
function conninfo(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}='${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`)
    .join(" ");
}

async function writeOwned(path: string, text: string, user: OsUser | null): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  if (user) await Deno.chown(path, user.uid, user.gid);
}

/** Sends `signal` to `pid` and waits up to `timeoutMs` for it to be gone. */
async function signalAndWait(pid: number, signal: Deno.Signal, timeoutMs: number) {
  try {
    Deno.kill(pid, signal);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw new Error(`Cannot signal Postgres (pid ${pid}): ${errorText(err)}`);
  }
  const deadline = Date.now() + timeoutMs;
  while (await isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

/** `C.UTF-8` when the system has it, else `C`. */
async function utf8Locale(): Promise<string> {
  try {
    const out = await runCommand("locale", ["-a"]);
    const names = out.stdout.toLowerCase().split("\n").map((l) => l.trim());
    if (names.includes("c.utf8") || names.includes("c.utf-8")) return "C.UTF-8";
  } catch {
    // no locale(1): plain C is always there
  }
  return "C";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}
