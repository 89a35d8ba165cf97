import { PgError, SqlState } from "../shared/errors/mod.ts";
import type {
  GetAuthCredentialsResponse,
  GetMetadataResponse,
  HealthStatus,
  PgctldStatusResponse,
  PoolerRecord,
  PoolerStatusResponse,
  PoolerType,
  ShardRule,
} from "../shared/grpc/types.ts";
import type { Logger } from "../shared/log/mod.ts";
import { encodeRecord, type Registration, type Topo } from "../shared/topo/mod.ts";
import { AdminConn } from "./admin.ts";
import type { PgAddress } from "./backend/backend_conn.ts";
import { literal, readLayout, readRule, schemaSql, writeRuleSql } from "./metadata/schema.ts";
import { Pool } from "./pool/pool.ts";

/** What the pooler needs from pgctld (the gRPC client in main.ts provides it). */
export interface PgctldApi {
  status(): Promise<PgctldStatusResponse>;
  initDataDir(): Promise<void>;
  /** Makes the empty data directory a streaming replica of the Postgres at host:port. */
  initReplica(source: { host: string; port: number; applicationName: string }): Promise<void>;
  start(): Promise<void>;
}

export interface PoolerConfig {
  id: string;
  cell: string;
  database: string;
  tablegroup: string;
  shard: string;
  grpcAddr: string;
  httpAddr: string;
  adminUser: string;
  poolCapacity: number;
  /** How often Postgres is probed. */
  healthIntervalMs: number;
  /**
   * An empty data directory joins the shard as a streaming replica of its primary (found in the
   * topo, in any cell) instead of being initialised as a new cluster.
   */
  join?: boolean;
  /** How long joining waits for the shard to have a primary. */
  joinWaitMs?: number;
}

/**
 * One multipooler: owns the connections to one Postgres instance (started through pgctld), keeps
 * its topo registration current, and holds the shard's rule as its Postgres records it.
 */
export class Pooler {
  readonly cfg: PoolerConfig;
  readonly pool: Pool;
  readonly #topo: Topo;
  readonly #pgctld: PgctldApi;
  readonly #logger: Logger;
  readonly #admin: AdminConn;
  #address?: PgAddress;
  #postgresAddr = "";
  #registration?: Registration;
  #rule: ShardRule | null = null;
  #type: PoolerType = "POOLER_TYPE_UNSPECIFIED";
  #postgresUp = false;
  #lsn = "";
  #timer?: ReturnType<typeof setInterval>;
  #probing = false;
  #stopped = false;
  readonly #listeners = new Set<(h: HealthStatus) => void>();
  /** Replicas of this shard ever seen while primary: the synchronous standby candidates. */
  readonly #standbys = new Set<string>();
  /** The policy is enforced once the shard first had enough members; never relaxed after. */
  #policyArmed = false;
  /** The synchronous_standby_names this pooler last set ("" until it sets one). */
  #syncNames: string | null = null;
  #lastPolicyCheck = 0;
  #enforcing = false;
  /** Sessions across every data-plane stream (kept by the adapter). */
  sessionCount = () => 0;

  constructor(cfg: PoolerConfig, deps: { topo: Topo; pgctld: PgctldApi; logger: Logger }) {
    this.cfg = cfg;
    this.#topo = deps.topo;
    this.#pgctld = deps.pgctld;
    this.#logger = deps.logger;
    this.#admin = new AdminConn({
      address: () => this.#pgAddress(),
      user: cfg.adminUser,
      database: cfg.database,
      logger: deps.logger,
    });
    this.pool = new Pool({
      address: { path: "" },
      capacity: cfg.poolCapacity,
      logger: deps.logger,
    });
  }

  #pgAddress(): PgAddress {
    if (!this.#address) throw new PgError(SqlState.CANNOT_CONNECT_NOW, "Postgres is not up yet");
    return this.#address;
  }

  /** Makes sure Postgres runs, reads the rule, registers in the topo, starts probing. */
  async start(): Promise<void> {
    await this.#ensurePostgres();
    await this.#loadRule();
    await this.#readLsn();
    this.#registration = this.#topo.registerPooler(this.record());
    await this.#registration.ready();
    this.#timer = setInterval(() => this.#probe(), this.cfg.healthIntervalMs);
  }

  /** pgctld may start after us: wait for it rather than fail. */
  async #pgctldStatus(waitMs = 60_000): Promise<PgctldStatusResponse> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        return await this.#pgctld.status();
      } catch (e) {
        if (Date.now() > deadline) {
          throw new Error(`pgctld is unreachable: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async #ensurePostgres(): Promise<void> {
    let st = await this.#pgctldStatus();
    if (st.state === "NOT_INITIALIZED" && this.cfg.join) {
      const primary = await this.#findPrimary();
      const [host, port] = splitHostPort(primary.postgresAddr);
      this.#logger.info("joining the shard as a replica of its primary", {
        primary: primary.id,
        postgres: primary.postgresAddr,
      });
      await this.#pgctld.initReplica({ host, port, applicationName: this.cfg.id });
      st = await this.#pgctld.status();
    } else if (st.state === "NOT_INITIALIZED") {
      this.#logger.info("initialising the data directory through pgctld");
      await this.#pgctld.initDataDir();
      st = await this.#pgctld.status();
    }
    if (st.state !== "RUNNING") {
      this.#logger.info("starting Postgres through pgctld", { state: st.state });
      await this.#pgctld.start();
      st = await this.#pgctld.status();
    }
    if (st.state !== "RUNNING") {
      throw new Error(`Postgres did not start (pgctld says ${st.state} ${st.lastExit})`);
    }
    this.#address = { path: `${st.socketDir}/.s.PGSQL.${st.port}` };
    this.#postgresAddr = `127.0.0.1:${st.port}`;
    this.pool.setAddress(this.#address);
    // A standby reports itself started before it accepts connections (it replays WAL up to a
    // consistent point first): wait for that rather than fail.
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await this.#admin.query("SELECT 1");
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    this.#postgresUp = true;
  }

  /** The shard's primary pooler in any cell, once there is one (with its Postgres address). */
  async #findPrimary(): Promise<PoolerRecord> {
    const deadline = Date.now() + (this.cfg.joinWaitMs ?? 120_000);
    const key = this.#shardKey();
    for (;;) {
      const all = await this.#topo.listAllPoolers().catch(() => []);
      const primary = all.find((p) => p.type === "PRIMARY" && p.postgresAddr && this.#isPeer(p));
      if (primary) return primary;
      if (Date.now() > deadline) {
        throw new Error(
          `No primary to join for ${key.database}/${key.tablegroup}/${key.shard}: ` +
            "none is registered in the topo",
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async #loadRule(): Promise<void> {
    const rec = await this.#admin.query("SELECT pg_is_in_recovery()");
    const inRecovery = rec.rows[0]?.[0] === "t";
    this.#rule = await readRule(this.#admin, this.#shardKey());
    if (this.#rule && this.#rule.leaderId === this.cfg.id && !inRecovery) {
      this.#type = "PRIMARY";
      // Keep the metadata schema current with this version's definition.
      await this.#admin.query(schemaSql(this.cfg.database));
      this.#logger.info("primary by the recorded rule", { term: this.#rule.term });
    } else {
      this.#type = inRecovery ? "REPLICA" : "POOLER_TYPE_UNSPECIFIED";
    }
  }

  /** Another pooler of this pooler's shard. */
  #isPeer(p: PoolerRecord): boolean {
    return p.id !== this.cfg.id && p.database === this.cfg.database &&
      p.tablegroup === this.cfg.tablegroup && p.shard === this.cfg.shard;
  }

  #shardKey(): { database: string; tablegroup: string; shard: string } {
    return { database: this.cfg.database, tablegroup: this.cfg.tablegroup, shard: this.cfg.shard };
  }

  /** The topo record as it stands now. */
  record(): PoolerRecord {
    return {
      id: this.cfg.id,
      cell: this.cfg.cell,
      addr: this.cfg.grpcAddr,
      httpAddr: this.cfg.httpAddr,
      database: this.cfg.database,
      tablegroup: this.cfg.tablegroup,
      shard: this.cfg.shard,
      type: this.#type,
      term: this.#rule?.term ?? 0,
      serving: this.serving,
      postgresAddr: this.#postgresAddr,
    };
  }

  get serving(): boolean {
    return this.#type === "PRIMARY" && this.#postgresUp && !this.#stopped;
  }

  /** Why a new session cannot be served here, or null. */
  canServe(): PgError | null {
    if (this.#stopped) {
      return new PgError(SqlState.ADMIN_SHUTDOWN, "the pooler is shutting down", {
        severity: "FATAL",
        retryable: true,
      });
    }
    if (!this.#postgresUp) {
      return new PgError(SqlState.CANNOT_CONNECT_NOW, "the database system is not available", {
        severity: "FATAL",
        retryable: true,
      });
    }
    if (this.#type !== "PRIMARY") {
      return new PgError(SqlState.CANNOT_CONNECT_NOW, "this pooler is not serving the primary", {
        severity: "FATAL",
        retryable: true,
      });
    }
    return null;
  }

  health(): HealthStatus {
    return {
      poolerId: this.cfg.id,
      type: this.#type,
      term: this.#rule?.term ?? 0,
      serving: this.serving,
      postgresUp: this.#postgresUp,
      lsn: this.#lsn,
      timestampMs: Date.now(),
      database: this.cfg.database,
      tablegroup: this.cfg.tablegroup,
      shard: this.cfg.shard,
    };
  }

  /** Calls `fn` with every health status taken from now on; returns an unsubscribe function. */
  onHealth(fn: (h: HealthStatus) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The WAL position: written on a primary, replayed on a replica. */
  async #readLsn(): Promise<void> {
    const r = await this.#admin.query(
      "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END",
    );
    this.#lsn = r.rows[0]?.[0] ?? "";
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#stopped) return;
    this.#probing = true;
    const before = JSON.stringify(this.record());
    try {
      await this.#readLsn();
      if (!this.#postgresUp) this.#logger.info("Postgres is reachable again");
      this.#postgresUp = true;
    } catch (e) {
      if (this.#postgresUp) this.#logger.warn("Postgres is unreachable", { error: e });
      this.#postgresUp = false;
      this.pool.closeIdle();
      await this.#restartPostgres();
    } finally {
      this.#probing = false;
    }
    if (this.#type === "PRIMARY" && this.#postgresUp && !this.#enforcing) {
      // Not awaited: it reads the topo, and with etcd down that must not hold up health probes.
      this.#enforcing = true;
      this.#enforceDurability()
        .catch((e) => this.#logger.warn("cannot apply the durability policy", { error: e }))
        .finally(() => (this.#enforcing = false));
    }
    if (JSON.stringify(this.record()) !== before) {
      await this.#registration?.update(this.#encodedRecord());
    }
    const h = this.health();
    for (const fn of this.#listeners) fn(h);
  }

  /**
   * AT_LEAST_N (the database's policy in the global topo): a commit is acknowledged once n copies
   * have it, the primary's and n-1 replicas', through `synchronous_standby_names = 'ANY n-1
   * (replicas)'`. The candidates are every replica of the shard seen so far (a replica that went
   * away stays a candidate: dropping it could only make the policy weaker). A new shard serves
   * before its replicas exist; the policy is armed once it first has n-1 of them and stays armed:
   * from then on, commits wait rather than be acknowledged with fewer copies.
   */
  async #enforceDurability(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastPolicyCheck < POLICY_CHECK_MS) return;
    this.#lastPolicyCheck = now;
    const db = await this.#topo.getDatabase(this.cfg.database);
    const policy = db?.durabilityPolicy;
    const n = policy?.kind === "AT_LEAST_N" ? Math.max(1, policy.n) : 1;
    for (const p of await this.#topo.listAllPoolers()) {
      if (p.type === "REPLICA" && this.#isPeer(p)) this.#standbys.add(p.id);
    }
    if (n > 1 && this.#standbys.size >= n - 1) this.#policyArmed = true;
    const names = this.#policyArmed && n > 1
      ? `ANY ${n - 1} (${[...this.#standbys].sort().map(quoteIdent).join(", ")})`
      : "";
    if (this.#syncNames === null) {
      const cur = await this.#admin.query("SHOW synchronous_standby_names");
      this.#syncNames = cur.rows[0]?.[0] ?? "";
    }
    if (names === this.#syncNames || (!names && !this.#policyArmed)) return;
    // ALTER SYSTEM persists it (a restarted primary keeps waiting); it cannot share a query.
    await this.#admin.query(`ALTER SYSTEM SET synchronous_standby_names = ${literal(names)}`);
    await this.#admin.query("SELECT pg_reload_conf()");
    this.#syncNames = names;
    this.#logger.info("durability policy applied", {
      policy: `AT_LEAST_N ${n}`,
      synchronousStandbyNames: names,
    });
  }

  #encodedRecord(): string {
    return encodeRecord("Pooler", this.record());
  }

  async #restartPostgres(): Promise<void> {
    try {
      const st = await this.#pgctld.status();
      if (st.state === "STOPPED" || st.state === "CRASHED") {
        this.#logger.info("asking pgctld to start Postgres again", { state: st.state });
        await this.#pgctld.start();
      }
    } catch (e) {
      this.#logger.warn("pgctld is unreachable", { error: e });
    }
  }

  async getAuthCredentials(user: string): Promise<GetAuthCredentialsResponse> {
    const r = await this.#admin.query(
      `SELECT rolpassword, rolcanlogin, rolvaliduntil, coalesce(rolvaliduntil < now(), false)
         FROM pg_catalog.pg_authid WHERE rolname = ${literal(user)}`,
    );
    if (!r.rows.length) {
      return { exists: false, verifier: "", canLogin: false, validUntil: "", expired: false };
    }
    const [pw, canLogin, validUntil, expired] = r.rows[0];
    return {
      exists: true,
      verifier: pw ?? "",
      canLogin: canLogin === "t",
      validUntil: validUntil ?? "",
      expired: expired === "t",
    };
  }

  async getMetadata(): Promise<GetMetadataResponse> {
    return await readLayout(this.#admin);
  }

  /** Becomes the primary of the shard under `rule` (bootstrap appointment by the orch). */
  async appointPrimary(rule: ShardRule): Promise<ShardRule> {
    const current = this.#rule?.term ?? 0;
    if (rule.term <= current) {
      if (this.#rule && rule.term === current && this.#rule.leaderId === rule.leaderId) {
        return this.#rule;
      }
      throw new PgError(
        SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        `term ${rule.term} is not above the current term ${current}`,
      );
    }
    if (rule.leaderId !== this.cfg.id) {
      throw new PgError(SqlState.INTERNAL_ERROR, `rule names ${rule.leaderId}, not ${this.cfg.id}`);
    }
    const rec = await this.#admin.query("SELECT pg_is_in_recovery()");
    if (rec.rows[0]?.[0] === "t") {
      throw new PgError(SqlState.CANNOT_CONNECT_NOW, "Postgres is in recovery; cannot be primary");
    }
    await this.#admin.query(schemaSql(this.cfg.database));
    await this.#admin.query(writeRuleSql(this.#shardKey(), rule));
    this.#rule = await readRule(this.#admin, this.#shardKey());
    this.#type = "PRIMARY";
    this.#logger.info("appointed primary", { term: rule.term });
    await this.#registration?.update(this.#encodedRecord());
    return this.#rule ?? rule;
  }

  status(): PoolerStatusResponse {
    const st = this.pool.stats;
    return {
      pooler: this.record(),
      rule: this.#rule,
      postgresUp: this.#postgresUp,
      sessions: this.sessionCount(),
      backendsInUse: st.inUse,
      backendsIdle: st.idle,
      lsn: this.#lsn,
    };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#registration?.revoke();
    this.pool.close();
    this.#admin.close();
  }
}

/** How often the primary re-reads the policy and the shard's replicas. */
const POLICY_CHECK_MS = 2000;

/** A name for synchronous_standby_names, double-quoted. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** "host:port" (IPv6 hosts in brackets) as host and port. */
function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0) {
    throw new Error(`Invalid Postgres address in the topo: ${addr}`);
  }
  return [host, port];
}
