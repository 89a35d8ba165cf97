import { PgError, SqlState, unknownDatabase, withSeverity } from "../../shared/errors/mod.ts";
import type {
  GetAuthCredentialsResponse,
  GetMetadataResponse,
  PoolerRecord,
} from "../../shared/grpc/types.ts";
import type { Logger } from "../../shared/log/mod.ts";
import { newestPrimary, type Topo } from "../../shared/topo/mod.ts";
import { PoolerConn } from "../poolergateway/pooler_conn.ts";

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
   * A role's credentials, from a serving pooler. While none serves (a failover), it waits up to
   * the failover window for one.
   */
  async credentials(user: string): Promise<GetAuthCredentialsResponse> {
    let last: unknown = noPooler();
    const deadline = Date.now() + this.#failoverWindowMs;
    do {
      for (const rec of this.#anyServing()) {
        try {
          return await this.#conn(rec).getAuthCredentials(user);
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
    if (!this.#hasDatabase(database)) {
      if (!this.#metadata) throw asFatal(noPooler());
      throw unknownDatabase(database);
    }
    // A database without a pooler of its own lives on the default database's server. While
    // no primary serves it (a failover), wait up to the failover window for one.
    const pick = replica
      ? (db: string) => this.#replicaRecord(db)
      : (db: string) => this.#primaryRecord(db);
    const find = () => pick(database) ?? pick(this.#metadata?.defaultDatabase ?? "");
    let rec = find();
    const deadline = Date.now() + this.#failoverWindowMs;
    while (!rec && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
      rec = find();
    }
    if (!rec) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        `no ${replica ? "replica" : "primary"} is serving database "${database}" right now`,
        { severity: "FATAL", retryable: true },
      );
    }
    return this.#conn(rec);
  }

  #hasDatabase(name: string): boolean {
    return !!this.#metadata?.databases.some((d) => d.name === name);
  }

  #refreshMetadata(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        for (const rec of this.#anyServing()) {
          try {
            this.#metadata = await this.#conn(rec).getMetadata();
            this.#metadataAt = Date.now();
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
