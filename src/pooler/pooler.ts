import { PgError, SqlState } from "../shared/errors/mod.ts";
import { TWO_PHASE_GID } from "../shared/grpc/types.ts";
import type {
  ChangeMetadataRequest,
  GetAuthCredentialsResponse,
  GetMetadataResponse,
  HealthStatus,
  PgctldStatusResponse,
  PoolerRecord,
  PoolerStatusResponse,
  PoolerType,
  PreparedTransaction,
  ShardRule,
  TwoPhaseDecision,
  TwoPhaseDecisionRecord,
} from "../shared/grpc/types.ts";
import type { Logger } from "../shared/log/mod.ts";
import { encodeRecord, newestPrimary, type Registration, type Topo } from "../shared/topo/mod.ts";
import { AdminConn } from "./admin.ts";
import type { PgAddress } from "./backend/backend_conn.ts";
import { changeMetadata } from "./metadata/changes.ts";
import * as twoPhase from "./metadata/two_phase.ts";
import { literal, quoteIdent } from "../shared/sql/mod.ts";
import {
  DEFAULT_TABLEGROUP,
  readLayout,
  readRule,
  schemaSql,
  updateCohortSql,
  writeRuleSql,
} from "./metadata/schema.ts";
import { TermStore } from "./consensus/term_store.ts";
import { Pool } from "./pool/pool.ts";

/**
 * What a shard's pooler asks of the default database's server (through its primary pooler;
 * main.ts provides the gRPC calls): the roles and database owners a new shard copies.
 */
export interface DefaultServerApi {
  getAuthCredentials(user: string): Promise<GetAuthCredentialsResponse>;
  getMetadata(): Promise<GetMetadataResponse>;
}

/** What the pooler needs from pgctld (the gRPC client in main.ts provides it). */
export interface PgctldApi {
  status(): Promise<PgctldStatusResponse>;
  initDataDir(): Promise<void>;
  /** Makes the empty data directory a streaming replica of the Postgres at host:port. */
  initReplica(source: ReplicaSource): Promise<void>;
  start(): Promise<void>;
  /** Points this standby at a primary's Postgres, or (null) at none: it stops streaming. */
  follow(source: ReplicaSource | null): Promise<void>;
  /** Makes this former primary a standby of `source` (pg_rewind or a new base backup). */
  rewind(source: ReplicaSource): Promise<void>;
  /** Stops Postgres (fast: open sessions are ended). */
  stop(): Promise<void>;
}

/** A primary's Postgres to copy from or stream from, and this replica's name on it. */
export interface ReplicaSource {
  host: string;
  port: number;
  applicationName: string;
}

export interface PoolerConfig {
  id: string;
  cell: string;
  database: string;
  tablegroup: string;
  shard: string;
  grpcAddr: string;
  httpAddr: string;
  /** Where the data plane is served on the lean h2 transport ("" : grpc-js only). */
  dataPlaneAddr?: string;
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
  /** Where the highest promised term is kept (empty: in memory only). */
  stateFile?: string;
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
  /**
   * Writes that wait for the durability policy (the rule) go on a connection of their own, so
   * that health probes never queue behind a commit waiting for replicas.
   */
  readonly #ruleWriter: AdminConn;
  #ruleWrites = 0;
  #terms?: TermStore;
  /** The primary's Postgres this replica was last pointed at ("" when unknown or none). */
  #upstream = "";
  /** When this primary's Postgres was first seen down (0 while it is up). */
  #downSince = 0;
  /** A rejoin (follow or rewind) is under way. */
  #rejoining = false;
  /** A switchover drains this primary: no new transaction starts here. */
  #draining = false;
  /** Stopped for a switchover: Postgres stays down until this pooler rejoins as a replica. */
  #demoted = false;
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
  #cohortWrite: Promise<void> | null = null;
  /** Sessions across every data-plane stream (kept by the adapter). */
  sessionCount = () => 0;

  readonly #defaultServer?: DefaultServerApi;

  constructor(
    cfg: PoolerConfig,
    deps: { topo: Topo; pgctld: PgctldApi; logger: Logger; defaultServer?: DefaultServerApi },
  ) {
    this.#defaultServer = deps.defaultServer;
    this.cfg = cfg;
    this.#topo = deps.topo;
    this.#pgctld = deps.pgctld;
    this.#logger = deps.logger;
    const admin = () =>
      new AdminConn({
        address: () => this.#pgAddress(),
        user: cfg.adminUser,
        // The maintenance database every server has: a shard's own database is made only
        // once it is appointed primary (see #ensureDatabase).
        database: MAINTENANCE_DATABASE,
        logger: deps.logger,
      });
    this.#admin = admin();
    this.#ruleWriter = admin();
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
    this.#terms = await TermStore.open(this.cfg.stateFile ?? "");
    await this.#ensurePostgres();
    await this.#loadRule();
    if (this.#type === "PRIMARY") {
      // A primary coming back after a failover finds a newer one: it must not serve (nor write:
      // its commits would wait for replicas that follow another primary now).
      const leader = this.#leaderOf(await this.#topo.listAllPoolers().catch(() => []));
      if (leader && leader.term > (this.#rule?.term ?? 0)) await this.#rejoin(leader);
    }
    if (this.#type === "PRIMARY") {
      // Keep the metadata schema current with this version's definition. Not awaited: it
      // commits under the durability policy, which may wait for replicas.
      this.#writeRule(this.#schemaSql())
        .catch((e) => this.#logger.warn("cannot update the metadata schema", { error: e }));
    }
    await this.#readLsn();
    this.#registration = this.#topo.registerPooler(this.record());
    this.#published = this.#encodedRecord();
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
    await this.#waitForPostgres();
    this.#postgresUp = true;
  }

  /**
   * A standby reports itself started before it accepts connections (it replays WAL up to a
   * consistent point first): wait for that rather than fail.
   */
  async #waitForPostgres(): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await this.#admin.query("SELECT 1");
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
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
    const inRecovery = await this.#inRecovery();
    this.#rule = await readRule(this.#admin, this.#shardKey());
    if (this.#rule && this.#rule.leaderId === this.cfg.id && !inRecovery) {
      this.#type = "PRIMARY";
      this.#logger.info("primary by the recorded rule", { term: this.#rule.term });
    } else {
      this.#type = inRecovery ? "REPLICA" : "POOLER_TYPE_UNSPECIFIED";
    }
    if (inRecovery) {
      const r = await this.#admin.query("SHOW primary_conninfo");
      const info = r.rows[0]?.[0] ?? "";
      const host = /\bhost='?([^' ]*)/.exec(info)?.[1];
      const port = /\bport='?(\d+)/.exec(info)?.[1];
      this.#upstream = host && port ? `${host}:${port}` : "";
    }
  }

  /** Another pooler of this pooler's shard. */
  #isPeer(p: PoolerRecord): boolean {
    return p.id !== this.cfg.id && p.database === this.cfg.database &&
      p.tablegroup === this.cfg.tablegroup && p.shard === this.cfg.shard;
  }

  /** The shard's leader as the topo shows it: the serving primary peer with the highest term. */
  #leaderOf(all: PoolerRecord[]): PoolerRecord | undefined {
    return newestPrimary(all, (p) => p.serving && !!p.postgresAddr && this.#isPeer(p));
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
      dataPlaneAddr: this.cfg.dataPlaneAddr ?? "",
    };
  }

  /** Serving its role: the primary's sessions, or (a replica) read-only sessions. */
  get serving(): boolean {
    if (!this.#postgresUp || this.#stopped || this.#rejoining) return false;
    return this.#type === "PRIMARY" ? !this.#draining : this.#type === "REPLICA";
  }

  /** Why a session (`replica`: a read-only one) cannot be served here now, or null. */
  canServe(replica = false): PgError | null {
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
    if (replica) {
      return this.#type === "REPLICA" && !this.#rejoining ? null : new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        "this pooler is not serving a replica",
        { severity: "FATAL", retryable: true },
      );
    }
    if (this.#draining) {
      return new PgError(SqlState.CANNOT_CONNECT_NOW, "the primary is being handed over", {
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
    try {
      await this.#readLsn();
      if (!this.#postgresUp) this.#logger.info("Postgres is reachable again");
      this.#postgresUp = true;
      this.#downSince = 0;
    } catch (e) {
      if (this.#postgresUp) this.#logger.warn("Postgres is unreachable", { error: e });
      this.#postgresUp = false;
      this.pool.closeIdle();
      this.#downSince ||= Date.now();
      // A primary with replicas is not restarted at once: the orch fails over to a replica,
      // and this one rejoins as a replica of the new primary (see #shardTick). Only when no
      // failover happens for a while does it come back as it was.
      const waitForFailover = this.#type === "PRIMARY" && this.#standbys.size > 0 &&
        Date.now() - this.#downSince < PRIMARY_RESTART_GRACE_MS;
      if (!waitForFailover && !this.#rejoining && !this.#demoted) await this.#restartPostgres();
    } finally {
      this.#probing = false;
    }
    if (!this.#enforcing && !this.#rejoining) {
      // Not awaited: it reads the topo, and with etcd down that must not hold up health probes.
      this.#enforcing = true;
      this.#shardTick()
        .catch((e) => this.#logger.warn("cannot check the shard's state", { error: e }))
        .finally(() => (this.#enforcing = false));
    }
    // What changed since the record was last written (here, or by a detached shard check).
    if (this.#encodedRecord() !== this.#published) {
      await this.#publish();
    }
    const h = this.health();
    for (const fn of this.#listeners) fn(h);
  }

  /**
   * Every couple of seconds, from the topo: a primary applies the durability policy, or, when a
   * newer primary exists, stops serving and rejoins as its replica; a replica follows the newest
   * primary whose term it has not promised to ignore.
   */
  async #shardTick(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastPolicyCheck < POLICY_CHECK_MS) return;
    this.#lastPolicyCheck = now;
    const all = await this.#topo.listAllPoolers();
    const leader = this.#leaderOf(all);
    if (this.#type === "PRIMARY") {
      if (leader && leader.term > (this.#rule?.term ?? 0)) {
        this.#logger.warn("a newer primary leads the shard: stepping down", {
          primary: leader.id,
          term: leader.term,
        });
        await this.#rejoin(leader);
      } else if (this.#postgresUp) {
        await this.#enforceDurability(all);
      }
    } else if (this.#type === "REPLICA" && this.#postgresUp) {
      // The rule replicates like any row: keep the term this replica reports current.
      this.#rule = await readRule(this.#admin, this.#shardKey());
      if (
        leader && leader.term >= (this.#terms?.term ?? 0) &&
        leader.postgresAddr !== this.#upstream
      ) await this.#rejoin(leader);
    }
  }

  /**
   * AT_LEAST_N (the database's policy in the global topo): a commit is acknowledged once n copies
   * have it, the primary's and n-1 replicas', through `synchronous_standby_names = 'ANY n-1
   * (replicas)'`. The candidates are every replica of the shard seen so far (a replica that went
   * away stays a candidate: dropping it could only make the policy weaker). A new shard serves
   * before its replicas exist; the policy is armed once it first has n-1 of them and stays armed:
   * from then on, commits wait rather than be acknowledged with fewer copies.
   */
  async #enforceDurability(all: PoolerRecord[]): Promise<void> {
    const db = await this.#topo.getDatabase(this.cfg.database);
    const policy = db?.durabilityPolicy;
    const n = policy?.kind === "AT_LEAST_N" ? Math.max(1, policy.n) : 1;
    const seen = new Set(this.#standbys);
    for (const p of all) {
      if (p.type === "REPLICA" && this.#isPeer(p)) seen.add(p.id);
    }
    const cohort = [this.cfg.id, ...seen].sort();
    if (this.#rule && cohort.join() !== [...this.#rule.cohort].sort().join()) {
      // A failover counts its quorum against the rule's cohort: a new replica enters the cohort
      // (a commit under the policy as it stands) before it counts toward the policy. Not awaited:
      // with the policy unmet that commit waits, and this check must go on.
      const rule = { ...this.#rule, cohort, durabilityPolicy: policy };
      this.#cohortWrite ??= this.#writeRule(updateCohortSql(this.#shardKey(), rule))
        .then(() => {
          this.#rule = rule;
          for (const id of seen) this.#standbys.add(id);
          this.#lastPolicyCheck = 0; // apply the policy at the next probe, not a period later
        })
        .catch((e) => this.#logger.warn("cannot record the shard's cohort", { error: e }))
        .finally(() => (this.#cohortWrite = null));
      return;
    }
    for (const id of seen) this.#standbys.add(id);
    if (n > 1 && this.#standbys.size >= n - 1) this.#policyArmed = true;
    const names = this.#policyArmed ? syncStandbyNames(n, this.#standbys) : "";
    if (this.#syncNames === null) {
      const cur = await this.#admin.query("SHOW synchronous_standby_names");
      this.#syncNames = cur.rows[0]?.[0] ?? "";
    }
    if (names === this.#syncNames || (!names && !this.#policyArmed)) return;
    await this.#setSyncNames(names);
    this.#logger.info("durability policy applied", {
      policy: `AT_LEAST_N ${n}`,
      synchronousStandbyNames: names,
    });
  }

  /** Sets synchronous_standby_names with ALTER SYSTEM (a restarted primary keeps waiting). */
  async #setSyncNames(names: string): Promise<void> {
    // ALTER SYSTEM cannot share a query with anything else.
    await this.#admin.query(`ALTER SYSTEM SET synchronous_standby_names = ${literal(names)}`);
    await this.#admin.query("SELECT pg_reload_conf()");
    this.#syncNames = names;
  }

  #encodedRecord(): string {
    return encodeRecord("Pooler", this.record());
  }

  /** The record as last written to the topo. */
  #published = "";

  async #publish(): Promise<void> {
    this.#published = this.#encodedRecord();
    await this.#registration?.update(this.#published);
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

  /**
   * A role's stored secret and login attributes; with `database`, also what the role may do
   * there (CONNECT privilege, connection limits) and every role it is a member of (pg_hba's
   * `+group` and `samerole`). Read afresh for every login, so password changes apply at once.
   */
  async getAuthCredentials(user: string, database = ""): Promise<GetAuthCredentialsResponse> {
    const r = await this.#admin.query(
      `WITH RECURSIVE member_of(id) AS (
         SELECT oid FROM pg_catalog.pg_authid WHERE rolname = ${literal(user)}
         UNION SELECT am.roleid FROM pg_catalog.pg_auth_members am
           JOIN member_of m ON am.member = m.id)
       SELECT a.rolpassword, a.rolcanlogin, a.rolvaliduntil,
              coalesce(a.rolvaliduntil < now(), false), a.rolsuper, a.rolconnlimit,
              (SELECT json_agg(rolname) FROM pg_catalog.pg_authid
                WHERE oid IN (SELECT id FROM member_of)),
              d.oid IS NOT NULL, coalesce(d.datallowconn, false),
              d.oid IS NOT NULL AND has_database_privilege(a.oid, d.oid, 'CONNECT'),
              coalesce(d.datconnlimit, -1)
         FROM pg_catalog.pg_authid a
         LEFT JOIN pg_catalog.pg_database d ON d.datname = ${literal(database)}
        WHERE a.rolname = ${literal(user)}`,
    );
    if (!r.rows.length) {
      return { exists: false, verifier: "", canLogin: false, validUntil: "", expired: false };
    }
    const [
      pw,
      canLogin,
      validUntil,
      expired,
      sup,
      roleLimit,
      members,
      dbExists,
      allow,
      connect,
      dbLimit,
    ] = r.rows[0];
    const creds: GetAuthCredentialsResponse = {
      exists: true,
      verifier: pw ?? "",
      canLogin: canLogin === "t",
      validUntil: validUntil ?? "",
      expired: expired === "t",
      superuser: sup === "t",
      roleConnLimit: Number(roleLimit),
      memberOf: JSON.parse(members ?? "[]"),
    };
    if (database) {
      creds.databaseExists = dbExists === "t";
      creds.databaseAllowsConnections = allow === "t";
      creds.canConnect = connect === "t";
      creds.databaseConnLimit = Number(dbLimit);
    }
    return creds;
  }

  async getMetadata(): Promise<GetMetadataResponse> {
    return await readLayout(this.#admin);
  }

  /**
   * Writes a change to the hidden schema's databases, tablegroups and tables: only the default
   * tablegroup's primary holds them.
   */
  async changeMetadata(req: ChangeMetadataRequest): Promise<void> {
    if (this.#type !== "PRIMARY" || this.cfg.tablegroup !== DEFAULT_TABLEGROUP) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        "this pooler is not the primary of the default tablegroup",
        { retryable: true },
      );
    }
    await changeMetadata(this.#ruleWriter, req);
  }

  /** The hidden schema; only the default tablegroup's server records the cluster's databases. */
  #schemaSql(): string {
    return schemaSql(this.cfg.database, { seed: this.cfg.tablegroup === DEFAULT_TABLEGROUP });
  }

  /**
   * A new shard's server gets the database its tables live in (the default database's server
   * has it: Postgres's own CREATE DATABASE made it there).
   */
  async #ensureDatabase(): Promise<void> {
    const db = this.cfg.database;
    if (db === MAINTENANCE_DATABASE) return;
    const r = await this.#admin.query(
      `SELECT 1 FROM pg_catalog.pg_database WHERE datname = ${literal(db)}`,
    );
    if (r.rows.length) return;
    // Owned by the role that owns it on the default database's server, so that the tables its
    // users make there can be made here too.
    const md = await this.#defaultServer?.getMetadata();
    const owner = md?.databases.find((d) => d.name === db)?.owner || this.cfg.adminUser;
    if (owner !== this.cfg.adminUser) await this.ensureRole(owner);
    this.#logger.info("creating the shard's database", { database: db, owner });
    await this.#admin.query(`CREATE DATABASE ${quoteIdent(db)} OWNER ${quoteIdent(owner)}`);
  }

  // ---- two-phase commit (see metadata/two_phase.ts) ----

  /**
   * Decisions live on the default tablegroup's primary, beside the metadata: written on the
   * connection for writes that wait for the durability policy (#ruleWriter), read on the admin
   * connection (the recovery lists them every few seconds).
   */
  #decisions(write: boolean): AdminConn {
    if (this.#type !== "PRIMARY" || this.cfg.tablegroup !== DEFAULT_TABLEGROUP) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        "this pooler is not the primary of the default tablegroup",
        { retryable: true },
      );
    }
    return write ? this.#ruleWriter : this.#admin;
  }

  decideTwoPhase(
    gid: string,
    decision: TwoPhaseDecision,
    participants: string[],
  ): Promise<TwoPhaseDecision> {
    return twoPhase.decideTwoPhase(this.#decisions(true), gid, decision, participants);
  }

  listTwoPhaseDecisions(minAgeSeconds: number): Promise<TwoPhaseDecisionRecord[]> {
    return twoPhase.listTwoPhaseDecisions(this.#decisions(false), minAgeSeconds);
  }

  forgetTwoPhase(gids: string[]): Promise<void> {
    return twoPhase.forgetTwoPhase(this.#decisions(true), gids);
  }

  /** Transactions Multigres prepared on this server (a primary's; a replica has none to end). */
  listPrepared(): Promise<PreparedTransaction[]> {
    if (this.#type !== "PRIMARY") {
      // Not "none": a pooler that just stopped being the primary cannot speak for the shard.
      return Promise.reject(
        new PgError(SqlState.CANNOT_CONNECT_NOW, "this pooler is not a primary", {
          retryable: true,
        }),
      );
    }
    return twoPhase.listPrepared(this.#admin);
  }

  /** COMMIT PREPARED or ROLLBACK PREPARED, connected to the transaction's database. */
  async finishPrepared(gid: string, database: string, commit: boolean): Promise<boolean> {
    if (this.#type !== "PRIMARY") {
      throw new PgError(SqlState.CANNOT_CONNECT_NOW, "this pooler is not a primary", {
        retryable: true,
      });
    }
    if (!TWO_PHASE_GID.test(gid)) {
      throw new PgError(SqlState.INVALID_PARAMETER_VALUE, `not a Multigres transaction: ${gid}`);
    }
    const conn = new AdminConn({
      address: () => this.#pgAddress(),
      user: this.cfg.adminUser,
      database: database || MAINTENANCE_DATABASE,
      logger: this.#logger,
    });
    try {
      return await twoPhase.finishPrepared(conn, gid, commit);
    } finally {
      conn.close();
    }
  }

  /**
   * Creates `user` on this shard's server as the default database's server has it (login or
   * not; no password: the pooler reaches Postgres over its trusted socket, and clients
   * authenticate at the gateway). A role the default server does not have gets 28000.
   */
  async ensureRole(user: string): Promise<void> {
    const have = await this.#admin.query(
      `SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${literal(user)}`,
    );
    if (have.rows.length) return;
    if (this.cfg.tablegroup === DEFAULT_TABLEGROUP || !this.#defaultServer) {
      throw new PgError(
        SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        `role "${user}" does not exist`,
      );
    }
    const creds = await this.#defaultServer.getAuthCredentials(user);
    if (!creds.exists) {
      throw new PgError(
        SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        `role "${user}" does not exist`,
      );
    }
    this.#logger.info("creating a role the default server has", { role: user });
    try {
      await this.#admin.query(
        `CREATE ROLE ${quoteIdent(user)} ${creds.canLogin ? "LOGIN" : "NOLOGIN"}`,
      );
    } catch (e) {
      // Made meanwhile by another session's request: as good.
      if (!(e instanceof PgError && e.sqlstate === SqlState.DUPLICATE_OBJECT)) throw e;
    }
  }

  /**
   * Becomes the primary of the shard under `rule`: at bootstrap, and as the last step of a
   * failover (after promote()). The rule is written as a row in this Postgres, so it commits
   * under the durability policy like any other write.
   */
  async appointPrimary(rule: ShardRule): Promise<ShardRule> {
    const current = this.#rule?.term ?? 0;
    this.#checkTerm(rule.term);
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
    if (await this.#inRecovery()) {
      throw new PgError(SqlState.CANNOT_CONNECT_NOW, "Postgres is in recovery; cannot be primary");
    }
    await this.#writeRule(this.#schemaSql());
    await this.#ensureDatabase();
    await this.#writeRule(writeRuleSql(this.#shardKey(), rule));
    this.#rule = await readRule(this.#admin, this.#shardKey());
    await this.#terms?.promise(rule.term);
    this.#type = "PRIMARY";
    this.#upstream = "";
    this.#logger.info("appointed primary", { term: rule.term });
    await this.#publish();
    return this.#rule ?? rule;
  }

  /**
   * Runs a write that commits under the durability policy on a connection of its own (see
   * #ruleWriter), closed once no such write is under way: these are rare.
   */
  async #writeRule(sql: string): Promise<void> {
    this.#ruleWrites++;
    try {
      await this.#ruleWriter.query(sql);
    } finally {
      if (--this.#ruleWrites === 0) this.#ruleWriter.close();
    }
  }

  /** Refuses a request under a term below the one this pooler promised. */
  #checkTerm(term: number): void {
    const promised = this.#terms?.term ?? 0;
    if (term < promised) {
      throw new PgError(
        SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        `term ${term} is below the term ${promised} this pooler promised`,
      );
    }
  }

  /**
   * Failover, step 1: promises (on disk) to ignore every term below `term`, stops streaming from
   * the old primary, and reports how far this replica got: the WAL it received and the rule it
   * holds. Refused by the shard's serving primary and under a term below a promise made.
   */
  async recruit(term: number): Promise<RecruitResult> {
    // A term is recruited once: two orchs racing with the same term cannot both win.
    if (term <= (this.#terms?.term ?? 0)) {
      throw new PgError(
        SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        `term ${term} is not above the term ${this.#terms?.term} this pooler promised`,
      );
    }
    if (this.#type === "PRIMARY" && this.serving) {
      throw new PgError(SqlState.OBJECT_IN_USE, `${this.cfg.id} is the serving primary`);
    }
    if (!this.#postgresUp) {
      throw new PgError(SqlState.CANNOT_CONNECT_NOW, `Postgres of ${this.cfg.id} is not up`);
    }
    await this.#terms!.promise(term);
    const inRecovery = await this.#inRecovery();
    if (inRecovery) {
      await this.#pgctld.follow(null);
      this.#upstream = "";
      // What the WAL receiver wrote before it stopped is what this replica has.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const r = await this.#admin.query("SELECT count(*) FROM pg_stat_wal_receiver");
        if (r.rows[0]?.[0] === "0") break;
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    const r = await this.#admin.query(
      `SELECT CASE WHEN pg_is_in_recovery()
         THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
         ELSE pg_current_wal_lsn() END`,
    );
    this.#logger.info("recruited", { term });
    return {
      term,
      lsn: r.rows[0]?.[0] ?? "",
      rule: await readRule(this.#admin, this.#shardKey()),
    };
  }

  /**
   * Failover, step 2 (on the most advanced recruit): leaves recovery and puts the durability
   * policy over `standbys` in place before anything can commit. appointPrimary() follows.
   */
  async promote(term: number, standbys: string[], n: number): Promise<string> {
    this.#checkTerm(term);
    if (term !== this.#terms?.term) {
      throw new PgError(
        SqlState.OBJECT_IN_USE,
        `${this.cfg.id} was not recruited for term ${term}`,
      );
    }
    if (await this.#inRecovery()) {
      const r = await this.#admin.query("SELECT pg_promote(true, 60)");
      if (r.rows[0]?.[0] !== "t") {
        throw new PgError(SqlState.INTERNAL_ERROR, "Postgres did not leave recovery in 60 s");
      }
    }
    const names = syncStandbyNames(n, standbys);
    await this.#setSyncNames(names);
    for (const id of standbys) this.#standbys.add(id);
    this.#policyArmed = n > 1 && standbys.length >= n - 1;
    this.#upstream = "";
    this.#logger.info("promoted", { term, synchronousStandbyNames: names });
    await this.#readLsn();
    return this.#lsn;
  }

  /**
   * Failover, step 3 (on every other member): follow the new primary. A former primary is
   * fenced at once (serves nothing) and rewound into a replica.
   */
  async repoint(term: number, primary: PoolerRecord): Promise<void> {
    this.#checkTerm(term);
    await this.#terms!.promise(term);
    await this.#rejoin(primary);
  }

  /**
   * Switchover, step 1 (on the primary): no new transaction starts here (sessions between
   * transactions are told to go elsewhere, and wait at their gateway for the new primary), the
   * transactions under way get up to `drainMs` to finish, then Postgres stops cleanly, which
   * sends the replicas all of its WAL. Returns the last LSN written.
   */
  async demote(drainMs: number): Promise<string> {
    if (this.#type !== "PRIMARY" || !this.#postgresUp) {
      throw new PgError(SqlState.OBJECT_IN_USE, `${this.cfg.id} is not the serving primary`);
    }
    this.#draining = true;
    await this.#publish();
    this.#logger.info("draining for a switchover", { inUse: this.pool.stats.inUse });
    const deadline = Date.now() + drainMs;
    while (this.pool.stats.inUse > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.#readLsn();
    const lsn = this.#lsn;
    this.#demoted = true;
    this.pool.closeIdle();
    this.#admin.close();
    this.#ruleWriter.close();
    await this.#pgctld.stop();
    this.#postgresUp = false;
    this.#logger.info("stopped for a switchover", { lsn, stillInUse: this.pool.stats.inUse });
    return lsn;
  }

  /** Follows `leader`'s Postgres; rewinds this one first when it is not a standby. */
  async #rejoin(leader: PoolerRecord): Promise<void> {
    if (this.#rejoining) return;
    this.#rejoining = true;
    try {
      const [host, port] = splitHostPort(leader.postgresAddr);
      const source = { host, port, applicationName: this.cfg.id };
      const standby = this.#postgresUp && await this.#inRecovery().catch(() => false);
      if (standby) {
        if (this.#upstream !== leader.postgresAddr) {
          await this.#pgctld.follow(source);
          this.#upstream = leader.postgresAddr;
          this.#logger.info("following the primary", { primary: leader.id, term: leader.term });
        }
        return;
      }
      // Fenced: no new session or transaction starts here from now on.
      this.#type = "REPLICA";
      this.#postgresUp = false;
      this.pool.closeIdle();
      await this.#publish();
      this.#logger.warn("rewinding into a replica of the new primary", {
        primary: leader.id,
        term: leader.term,
      });
      this.#admin.close();
      this.#ruleWriter.close();
      await this.#pgctld.rewind(source);
      this.#upstream = leader.postgresAddr;
      await this.#waitForPostgres();
      this.#postgresUp = true;
      this.#standbys.clear();
      this.#policyArmed = false;
      this.#syncNames = null;
      this.#rule = await readRule(this.#admin, this.#shardKey());
      this.#draining = false;
      this.#demoted = false;
      await this.#publish();
      this.#logger.info("rejoined as a replica", { primary: leader.id });
    } finally {
      this.#rejoining = false;
    }
  }

  async #inRecovery(): Promise<boolean> {
    const r = await this.#admin.query("SELECT pg_is_in_recovery()");
    return r.rows[0]?.[0] === "t";
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
    this.#ruleWriter.close();
  }
}

/** The database every Postgres server has, where the pooler's own connection goes. */
const MAINTENANCE_DATABASE = "postgres";

/** How often the primary re-reads the policy and the shard's replicas. */
const POLICY_CHECK_MS = 2000;

/** How long a primary with replicas waits for a failover before restarting its own Postgres. */
const PRIMARY_RESTART_GRACE_MS = 30_000;

/** What a recruit reports: the term it promised, the WAL it has, the rule it holds. */
export interface RecruitResult {
  term: number;
  lsn: string;
  rule: ShardRule | null;
}

/**
 * synchronous_standby_names for AT_LEAST_N `n` over `standbys`: `ANY n-1 ("a", "b")`, or "" when
 * commits need no replica (n of 1, or no standby).
 */
function syncStandbyNames(n: number, standbys: Iterable<string>): string {
  const ids = [...standbys].sort();
  return n > 1 && ids.length ? `ANY ${n - 1} (${ids.map(quoteIdent).join(", ")})` : "";
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
