import { PgError, SqlState, withSeverity } from "../../shared/errors/mod.ts";
import type {
  ChangeMetadataRequest,
  GetAuthCredentialsResponse,
  GetMetadataResponse,
  PoolerRecord,
  TwoPhaseDecision,
} from "../../shared/grpc/types.ts";
import type { Logger } from "../../shared/log/mod.ts";
import { newestPrimary, type Topo } from "../../shared/topo/mod.ts";
import { PoolerConn } from "../poolergateway/pooler_conn.ts";
import { ShardMap } from "./shard_map.ts";

const DEFAULT_TABLEGROUP = "default";
const UNSHARDED = "0-inf";
/** How long fetched metadata is trusted before a miss triggers a refetch. */
const METADATA_TTL_MS = 5_000;
/** How often a session waiting for a primary looks again. */
const WAIT_STEP_MS = 100;

/**
 * Knows every pooler of every cell (topo) and the databases → tablegroups → shards layout
 * (fetched from the poolers), and picks the pooler that serves a session: today the primary of
 * the database's default tablegroup's only shard.
 */
export class Router {
  readonly #topo: Topo;
  readonly #logger: Logger;
  #poolers: PoolerRecord[] = [];
  readonly #conns = new Map<string, PoolerConn>();
  #poll?: { stop: () => void };
  #metadata: GetMetadataResponse | null = null;
  #metadataAt = 0;
  #refreshing?: Promise<void>;
  #firstView: Promise<void>;
  #resolveFirstView!: () => void;

  /** How long a session waits for a primary during a failover. */
  readonly #failoverWindowMs: number;

  constructor(topo: Topo, logger: Logger, opts: { failoverWindowMs?: number } = {}) {
    this.#topo = topo;
    this.#logger = logger;
    this.#failoverWindowMs = opts.failoverWindowMs ?? 15_000;
    this.#firstView = new Promise((r) => (this.#resolveFirstView = r));
  }

  start(): void {
    // Every cell's poolers: after a failover the primary may be in another cell.
    this.#poll = this.#topo.pollAllPoolers((poolers) => {
      this.#poolers = poolers;
      // Links to poolers that left the topo go, once no session uses them.
      const live = new Set(poolers.map(connKey));
      for (const [key, c] of this.#conns) {
        if (!live.has(key) && c.sessionCount === 0) {
          c.shutdown();
          this.#conns.delete(key);
        }
      }
      this.#logger.debug("pooler view changed", { poolers: poolers.map((p) => p.id) });
      this.#resolveFirstView();
    });
  }

  /** Resolves once the first topo view arrived (or after `ms`). */
  async ready(ms = 3000): Promise<void> {
    await Promise.race([this.#firstView, new Promise((r) => setTimeout(r, ms))]);
  }

  get poolers(): readonly PoolerRecord[] {
    return this.#poolers;
  }

  #conn(rec: PoolerRecord): PoolerConn {
    const key = connKey(rec);
    let c = this.#conns.get(key);
    if (!c) {
      c = new PoolerConn(rec.addr, this.#logger, rec.dataPlaneAddr ?? "");
      this.#conns.set(key, c);
    }
    return c;
  }

  /** The serving primary of the database's shard; the newest term wins over a stale one. */
  #primaryRecord(database: string): PoolerRecord | undefined {
    return newestPrimary(
      this.#poolers,
      (p) =>
        p.serving && p.database === database && p.tablegroup === DEFAULT_TABLEGROUP &&
        p.shard === UNSHARDED,
    );
  }

  /** A serving replica of the database's shard: this cell's first, in turn. */
  #replicaRecord(database: string): PoolerRecord | undefined {
    const all = this.#poolers.filter((p) =>
      p.type === "REPLICA" && p.serving && p.database === database &&
      p.tablegroup === DEFAULT_TABLEGROUP && p.shard === UNSHARDED
    );
    const local = all.filter((p) => p.cell === this.#topo.cell);
    const choice = local.length ? local : all;
    if (!choice.length) return undefined;
    return choice[this.#nextReplica++ % choice.length];
  }

  #nextReplica = 0;

  #anyServing(): PoolerRecord[] {
    return this.#poolers.filter((p) => p.serving);
  }

  /**
   * A role's credentials (with `database`: also what it may do there), from a serving pooler.
   * While none serves (a failover), it waits up to the failover window for one.
   */
  async credentials(user: string, database = ""): Promise<GetAuthCredentialsResponse> {
    let last: unknown = noPooler();
    const deadline = Date.now() + this.#failoverWindowMs;
    do {
      // Roles live on the default tablegroup's servers (a shard's server has only its own).
      for (const rec of this.#anyServing().filter((p) => p.tablegroup === DEFAULT_TABLEGROUP)) {
        try {
          return await this.#conn(rec).getAuthCredentials(user, database);
        } catch (e) {
          last = e;
        }
      }
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
    } while (Date.now() < deadline);
    throw asFatal(last);
  }

  /**
   * The pooler connection for a session on `database`: its shard's primary, or with `replica` one
   * of its replicas (this cell's first, taken in turn). Throws 3D000 or 57P03 as a FATAL error.
   */
  async route(database: string, replica = false): Promise<PoolerConn> {
    if (!this.#hasDatabase(database) || Date.now() - this.#metadataAt > METADATA_TTL_MS) {
      await this.#refreshMetadata();
    }
    if (!this.#metadata) throw asFatal(noPooler());
    // A database without a pooler of its own lives on the default database's server, and so does
    // one the metadata does not list: that server's Postgres answers for it as it would (template1
    // connects, template0 is refused with 55000, an unknown name gets 3D000). While no primary
    // serves it (a failover), wait up to the failover window for one.
    const pick = replica
      ? (db: string) => this.#replicaRecord(db)
      : (db: string) => this.#primaryRecord(db);
    const rec = await this.#waitFor(() =>
      pick(database) ?? pick(this.#metadata?.defaultDatabase ?? "")
    );
    if (!rec) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        `no ${replica ? "replica" : "primary"} is serving database "${database}" right now`,
        { severity: "FATAL", retryable: true },
      );
    }
    return this.#conn(rec);
  }

  /** `find()`'s pooler, waiting up to the failover window while there is none (undefined). */
  async #waitFor(find: () => PoolerRecord | undefined): Promise<PoolerRecord | undefined> {
    let rec = find();
    const deadline = Date.now() + this.#failoverWindowMs;
    while (!rec && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
      rec = find();
    }
    return rec;
  }

  #hasDatabase(name: string): boolean {
    return !!this.#metadata?.databases.some((d) => d.name === name);
  }

  #refreshMetadata(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        // The default tablegroup's servers hold the metadata (a shard's server has none).
        const servers = this.#anyServing().filter((p) => p.tablegroup === DEFAULT_TABLEGROUP);
        servers.sort((a, b) => (a.type === "PRIMARY" ? 0 : 1) - (b.type === "PRIMARY" ? 0 : 1));
        for (const rec of servers) {
          try {
            this.#metadata = await this.#conn(rec).getMetadata();
            this.#metadataAt = Date.now();
            this.#maps.clear();
            this.#version++;
            return;
          } catch (e) {
            this.#logger.debug("metadata fetch failed", { pooler: rec.id, error: e });
          }
        }
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  readonly #maps = new Map<string, ShardMap>();
  #version = 0;

  /**
   * The database's shard map as last fetched (a stale one starts a refetch in the background);
   * null when the database is unknown.
   */
  shardMap(database: string): ShardMap | null {
    if (Date.now() - this.#metadataAt > METADATA_TTL_MS) {
      this.#refreshMetadata().catch(() => {});
    }
    let map = this.#maps.get(database);
    if (map) return map;
    const layout = this.#metadata?.databases.find((d) => d.name === database);
    if (!layout) return null;
    map = new ShardMap(layout, this.#version);
    this.#maps.set(database, map);
    return map;
  }

  /** Fetches the metadata now (after a change): a fetch already under way may predate it. */
  async refresh(): Promise<void> {
    await this.#refreshing;
    this.#metadataAt = 0;
    return this.#refreshMetadata();
  }

  /**
   * The pooler connection for one shard's primary; while none serves (a failover), waits up to
   * the failover window. Throws 57P03 (an ERROR: the client session goes on) when none comes.
   */
  async routeShard(database: string, tablegroup: string, shard: string): Promise<PoolerConn> {
    const rec = await this.#waitFor(() =>
      newestPrimary(
        this.#poolers,
        (p) =>
          p.serving && p.database === database && p.tablegroup === tablegroup && p.shard === shard,
      )
    );
    if (!rec) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        `no primary is serving shard ${shard} of tablegroup "${tablegroup}" right now`,
        { retryable: true },
      );
    }
    return this.#conn(rec);
  }

  /** Shards of the tablegroup that have no serving primary now. */
  missingShards(database: string, tablegroup: string, shards: readonly string[]): string[] {
    return shards.filter((s) =>
      !this.#poolers.some((p) =>
        p.serving && p.type === "PRIMARY" && p.database === database &&
        p.tablegroup === tablegroup && p.shard === s
      )
    );
  }

  /**
   * Records a two-phase commit's decision on the default tablegroup's primary unless one is
   * recorded (see MultiPooler.DecideTwoPhase) and returns the one in force. While that primary
   * is away (a failover), tried again until `deadline` (ms since the epoch).
   */
  async decideTwoPhase(
    gid: string,
    decision: TwoPhaseDecision,
    participants: string[],
    deadline: number,
  ): Promise<TwoPhaseDecision> {
    for (;;) {
      try {
        return await this.#metadataPrimary().decideTwoPhase(gid, decision, participants);
      } catch (e) {
        if (Date.now() >= deadline) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Forgets a finished two-phase commit's decision (the recovery forgets what this misses). */
  async forgetTwoPhase(gid: string): Promise<void> {
    await this.#metadataPrimary().forgetTwoPhase([gid]);
  }

  /** The default tablegroup's primary, which holds the hidden schema's metadata. */
  #metadataPrimary(): PoolerConn {
    const rec = newestPrimary(
      this.#poolers,
      (p) => p.serving && p.tablegroup === DEFAULT_TABLEGROUP && p.shard === UNSHARDED,
    );
    if (!rec) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        "no primary of the default tablegroup is serving right now",
        { retryable: true },
      );
    }
    return this.#conn(rec);
  }

  /** Writes a metadata change on the default tablegroup's primary (see MultiPooler.ChangeMetadata). */
  async changeMetadata(req: ChangeMetadataRequest): Promise<void> {
    await this.#metadataPrimary().changeMetadata(req);
  }

  /** Pooler id serving each database's primary, for status pages. */
  primaries(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const p of this.#poolers) {
      if (p.type === "PRIMARY" && p.serving) out[`${p.database}/${p.tablegroup}/${p.shard}`] = p.id;
    }
    return out;
  }

  stop(): Promise<void> {
    this.#poll?.stop();
    for (const c of this.#conns.values()) c.shutdown();
    this.#conns.clear();
    return Promise.resolve();
  }
}

function noPooler(): PgError {
  return new PgError(
    SqlState.CANNOT_CONNECT_NOW,
    "no pooler is serving this cell right now",
    { severity: "FATAL", retryable: true },
  );
}

function asFatal(e: unknown): PgError {
  if (e instanceof PgError) return withSeverity(e, "FATAL");
  return new PgError(SqlState.CANNOT_CONNECT_NOW, String(e), { severity: "FATAL" });
}

/** One link per pooler process: its gRPC address and, when it has one, its data-plane address. */
function connKey(rec: PoolerRecord): string {
  return `${rec.addr} ${rec.dataPlaneAddr ?? ""}`;
}
