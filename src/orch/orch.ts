import type { PoolerRecord, ShardRule, ShardStatus } from "../shared/grpc/types.ts";
import type { Logger } from "../shared/log/mod.ts";
import type { PrefixWatch, Topo } from "../shared/topo/mod.ts";

/** How the orch reaches a pooler (gRPC in main.ts; a fake in tests). */
export interface PoolerControl {
  appointPrimary(pooler: PoolerRecord, rule: ShardRule): Promise<ShardRule>;
}

function shardKey(p: { database: string; tablegroup: string; shard: string }): string {
  return `${p.database}/${p.tablegroup}/${p.shard}`;
}

/**
 * MultiOrch: watches the cell's poolers and, for a shard with no primary, appoints one (the
 * first candidate by id) under a term above every term seen, written as the shard's rule by the
 * pooler itself. Failure detection and failover build on this loop.
 */
export class Orch {
  readonly #topo: Topo;
  readonly #control: PoolerControl;
  readonly #logger: Logger;
  #poolers: PoolerRecord[] = [];
  #watch?: PrefixWatch;
  #timer?: ReturnType<typeof setInterval>;
  readonly #inFlight = new Set<string>();

  constructor(topo: Topo, control: PoolerControl, logger: Logger) {
    this.#topo = topo;
    this.#control = control;
    this.#logger = logger;
  }

  start(intervalMs = 2000): void {
    this.#watch = this.#topo.watchPoolers((poolers) => {
      this.#poolers = poolers;
      this.reconcile();
    });
    this.#timer = setInterval(() => this.reconcile(), intervalMs);
  }

  /** Appoints a primary for every shard that has none. */
  reconcile(): void {
    const shards = new Map<string, PoolerRecord[]>();
    for (const p of this.#poolers) {
      const k = shardKey(p);
      shards.set(k, [...(shards.get(k) ?? []), p]);
    }
    for (const [key, members] of shards) {
      if (members.some((p) => p.type === "PRIMARY")) continue;
      if (this.#inFlight.has(key)) continue;
      const candidates = members.filter((p) => p.type === "POOLER_TYPE_UNSPECIFIED")
        .sort((a, b) => a.id.localeCompare(b.id));
      if (!candidates.length) continue;
      this.#inFlight.add(key);
      this.#appoint(key, candidates[0], members).finally(() => this.#inFlight.delete(key));
    }
  }

  async #appoint(key: string, leader: PoolerRecord, members: PoolerRecord[]): Promise<void> {
    const term = Math.max(0, ...members.map((m) => m.term)) + 1;
    const rule: ShardRule = {
      term,
      leaderId: leader.id,
      cohort: members.map((m) => m.id).sort(),
      durabilityPolicy: { kind: "AT_LEAST_N", n: 1 },
    };
    this.#logger.info("appointing primary", { shard: key, pooler: leader.id, term });
    try {
      await this.#control.appointPrimary(leader, rule);
      this.#logger.info("primary appointed", { shard: key, pooler: leader.id, term });
    } catch (e) {
      this.#logger.warn("appointment failed; will retry", {
        shard: key,
        pooler: leader.id,
        error: e,
      });
    }
  }

  status(): ShardStatus[] {
    const out = new Map<string, ShardStatus>();
    for (const p of this.#poolers) {
      const k = shardKey(p);
      const s = out.get(k) ?? {
        database: p.database,
        tablegroup: p.tablegroup,
        shard: p.shard,
        primary: "",
        term: 0,
        replicas: [],
        durabilityPolicy: null,
      };
      if (p.type === "PRIMARY") {
        s.primary = p.id;
        s.term = p.term;
      } else {
        s.replicas.push(p.id);
      }
      out.set(k, s);
    }
    return [...out.values()];
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#watch?.stop();
  }
}
