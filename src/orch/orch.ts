import type { HealthStatus, PoolerRecord, ShardRule, ShardStatus } from "../shared/grpc/types.ts";
import type { Logger } from "../shared/log/mod.ts";
import { newestPrimary, type Topo } from "../shared/topo/mod.ts";

/** What a recruit reports (RecruitResponse). */
export interface Recruit {
  term: number;
  lsn: string;
  rule: ShardRule | null;
}

/** How the orch reaches a pooler (gRPC in main.ts). */
export interface PoolerControl {
  appointPrimary(pooler: PoolerRecord, rule: ShardRule): Promise<ShardRule>;
  recruit(pooler: PoolerRecord, term: number): Promise<Recruit>;
  promote(pooler: PoolerRecord, term: number, standbys: string[], n: number): Promise<void>;
  repoint(pooler: PoolerRecord, term: number, primary: PoolerRecord): Promise<void>;
  /** Drains the primary and stops its Postgres cleanly; resolves to its last LSN. */
  demote(pooler: PoolerRecord, drainMs: number): Promise<string>;
  /** Streams the pooler's health until `stop()`; `onEnd` when the stream breaks. */
  watchHealth(
    pooler: PoolerRecord,
    onHealth: (h: HealthStatus) => void,
    onEnd: (why: string) => void,
  ): { stop: () => void };
}

export interface OrchOptions {
  /** A primary whose health stream is silent this long is dead. */
  staleMs?: number;
  /** A primary whose Postgres is down this long is dead. */
  postgresDownMs?: number;
  /** How often shards are checked. */
  intervalMs?: number;
  /**
   * A primary whose registration left the topo this long is dead (a pooler that stops cleanly
   * revokes it: a restart within this time is not a failover).
   */
  goneMs?: number;
}

type ShardKey = { database: string; tablegroup: string; shard: string };

function shardKey(p: ShardKey): string {
  return `${p.database}/${p.tablegroup}/${p.shard}`;
}

/** "16/B374D848" as a number that orders like the LSN. */
export function lsnValue(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn);
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : -1n;
}

/** One pooler's health as the orch sees it. */
interface Watched {
  addr: string;
  stream: { stop: () => void };
  /** When the stream was opened (a new stream gets `staleMs` to say something). */
  since: number;
  last?: HealthStatus;
  lastAt: number;
  /** When its Postgres was first reported down (0 while up). */
  downSince: number;
}

/**
 * MultiOrch: watches the poolers of every cell (topo) and their health streams, and keeps every
 * shard led by a live primary. A shard with no primary gets one appointed (bootstrap); a shard
 * whose primary is dead (its health stream silent, or its Postgres down, for a while) fails over:
 * under the shard's topo lock, a new term is recruited by the other members, which promise to
 * ignore lower terms and stop streaming; when enough of them answered that every acknowledged
 * commit is among them, the most advanced (by rule, then LSN) is promoted, the rest follow it,
 * and it writes the new rule. Several orchs may run: the lock makes one act per shard at a time.
 */
export class Orch {
  readonly #topo: Topo;
  readonly #control: PoolerControl;
  readonly #logger: Logger;
  readonly #staleMs: number;
  readonly #postgresDownMs: number;
  readonly #intervalMs: number;
  readonly #goneMs: number;
  #poolers: PoolerRecord[] = [];
  #poll?: { stop: () => void };
  #timer?: ReturnType<typeof setInterval>;
  readonly #inFlight = new Set<string>();
  readonly #health = new Map<string, Watched>();
  /** Highest term this orch has tried per shard, so a failed attempt's promises are passed. */
  readonly #triedTerm = new Map<string, number>();
  /** The last primary seen per shard: a primary whose registration expired is still known. */
  readonly #lastLeader = new Map<string, PoolerRecord>();
  readonly #goneSince = new Map<string, number>();
  /** Failovers done by this orch, for status. */
  failovers = 0;

  constructor(topo: Topo, control: PoolerControl, logger: Logger, opts: OrchOptions = {}) {
    this.#topo = topo;
    this.#control = control;
    this.#logger = logger;
    this.#staleMs = opts.staleMs ?? 2000;
    this.#postgresDownMs = opts.postgresDownMs ?? 1000;
    this.#intervalMs = opts.intervalMs ?? 250;
    this.#goneMs = opts.goneMs ?? 5000;
  }

  start(): void {
    this.#poll = this.#topo.pollAllPoolers((poolers) => {
      this.#poolers = poolers;
      this.#watchHealth();
      this.reconcile();
    });
    this.#timer = setInterval(() => this.reconcile(), this.#intervalMs);
  }

  /** A health stream to every pooler in the topo (and none to those that left). */
  #watchHealth(): void {
    const live = new Map(this.#poolers.map((p) => [p.id, p]));
    for (const [id, w] of this.#health) {
      const p = live.get(id);
      if (!p || p.addr !== w.addr) {
        w.stream.stop();
        this.#health.delete(id);
      }
    }
    for (const p of this.#poolers) {
      if (!this.#health.has(p.id)) this.#openHealth(p);
    }
  }

  #openHealth(p: PoolerRecord, previous?: Watched): void {
    const w: Watched = {
      addr: p.addr,
      // A reopened stream: the silence began with the old one.
      since: previous ? previous.lastAt || previous.since : Date.now(),
      last: previous?.last,
      lastAt: previous?.lastAt ?? 0,
      downSince: previous?.downSince ?? 0,
      stream: { stop: () => {} },
    };
    this.#health.set(p.id, w);
    w.stream = this.#control.watchHealth(p, (h) => {
      w.last = h;
      w.lastAt = Date.now();
      if (h.postgresUp) w.downSince = 0;
      else w.downSince ||= Date.now();
    }, () => {
      // Reconnect after a pause, unless it left the topo (or the orch stopped) meanwhile.
      setTimeout(() => {
        if (this.#health.get(p.id) !== w || !this.#timer) return;
        const now = this.#poolers.find((q) => q.id === p.id && q.addr === w.addr);
        if (now) this.#openHealth(now, w);
        else this.#health.delete(p.id);
      }, 250);
    });
  }

  /** Why `p` cannot serve as primary now, or null when it is alive. */
  #deadReason(p: PoolerRecord, members: PoolerRecord[]): string | null {
    const now = Date.now();
    if (!members.some((m) => m.id === p.id)) {
      // A pooler restarting leaves the topo for a moment: only a lasting absence counts.
      const since = this.#goneSince.get(p.id) ?? now;
      this.#goneSince.set(p.id, since);
      return now - since > this.#goneMs ? "its registration left the topo" : null;
    }
    this.#goneSince.delete(p.id);
    const w = this.#health.get(p.id);
    if (!w) return null;
    const heard = Math.max(w.lastAt, w.since);
    if (now - heard > this.#staleMs) return `no health report for ${now - heard} ms`;
    if (w.downSince && now - w.downSince > this.#postgresDownMs) {
      return `its Postgres has been down for ${now - w.downSince} ms`;
    }
    return null;
  }

  #alive(p: PoolerRecord): boolean {
    const w = this.#health.get(p.id);
    return !!w?.last && Date.now() - w.lastAt <= this.#staleMs && w.last.postgresUp;
  }

  /** Appoints a primary where a shard has none; fails over where its primary is dead. */
  reconcile(): void {
    for (const [key, members] of this.#shards()) {
      if (this.#inFlight.has(key)) continue;
      let leader = newestPrimary(members) ?? this.#lastLeader.get(key);
      if (leader && members.includes(leader)) this.#lastLeader.set(key, leader);
      if (!leader && members.some((p) => p.type === "REPLICA")) {
        // Replicas and no primary this orch ever saw (its registration expired before this orch
        // started): a primary that is gone, known only by the rule the replicas hold.
        leader = { ...members[0], id: "", type: "PRIMARY", addr: "", postgresAddr: "", term: 0 };
      }
      if (!leader) {
        const candidates = members.filter((p) => p.type === "POOLER_TYPE_UNSPECIFIED")
          .sort((a, b) => a.id.localeCompare(b.id));
        if (!candidates.length) continue;
        this.#locked(key, members[0], () => this.#appoint(key, candidates[0], members));
        continue;
      }
      const why = this.#deadReason(leader, members);
      if (why) this.#locked(key, leader, () => this.#failover(key, leader, why));
    }
  }

  #shards(): Map<string, PoolerRecord[]> {
    const shards = new Map<string, PoolerRecord[]>();
    for (const p of this.#poolers) {
      const k = shardKey(p);
      shards.set(k, [...(shards.get(k) ?? []), p]);
    }
    return shards;
  }

  /** Runs `fn` holding the shard's topo lock (one orch acts per shard at a time). */
  #locked(key: string, shard: ShardKey, fn: () => Promise<void>): void {
    this.#inFlight.add(key);
    (async () => {
      let release: () => Promise<void>;
      try {
        release = await this.#topo.lockShard(shard);
      } catch (e) {
        // Another orch acts on the shard (or etcd is out of reach): look again next round.
        this.#logger.debug("shard lock not taken", { shard: key, error: e });
        return;
      }
      try {
        await fn();
      } finally {
        await release();
      }
    })()
      .catch((e) => this.#logger.warn("shard action failed; will retry", { shard: key, error: e }))
      .finally(() => this.#inFlight.delete(key));
  }

  /** The shard's members as the topo shows them now (not this orch's last view). */
  async #members(key: string): Promise<PoolerRecord[]> {
    return (await this.#topo.listAllPoolers()).filter((p) => shardKey(p) === key);
  }

  async #appoint(key: string, leader: PoolerRecord, members: PoolerRecord[]): Promise<void> {
    // Another orch may have acted while this one waited for the lock.
    const now = await this.#members(key);
    if (newestPrimary(now)) return;
    const term = Math.max(0, ...members.map((m) => m.term)) + 1;
    const rule: ShardRule = {
      term,
      leaderId: leader.id,
      cohort: members.map((m) => m.id).sort(),
      durabilityPolicy: { kind: "AT_LEAST_N", n: 1 },
    };
    this.#logger.info("appointing primary", { shard: key, pooler: leader.id, term });
    await this.#control.appointPrimary(leader, rule);
    this.#logger.info("primary appointed", { shard: key, pooler: leader.id, term });
  }

  async #failover(key: string, leader: PoolerRecord, why: string): Promise<void> {
    const members = await this.#members(key);
    const current = newestPrimary(members);
    // Re-checked under the lock: another orch may have failed over already.
    if (current && current.id !== leader.id) return;
    if (!this.#deadReason(leader, members)) return;
    this.#logger.warn("primary is dead: failing over", { shard: key, primary: leader.id, why });
    await this.#elect(key, leader, members);
    this.failovers++;
  }

  /**
   * Planned change of a shard's primary (`multigres switchover`): the primary drains and stops
   * cleanly, then a replica is elected as in a failover (`to`, when it is among the most
   * advanced). Sessions wait at their gateways meanwhile.
   */
  async switchover(
    shard: ShardKey,
    opts: { to?: string; drainMs?: number } = {},
  ): Promise<{ primary: string; term: number }> {
    const key = shardKey(shard);
    if (this.#inFlight.has(key)) throw new Error(`shard ${key} is busy: try again`);
    this.#inFlight.add(key);
    try {
      const release = await this.#topo.lockShard(shard);
      try {
        const members = await this.#members(key);
        const leader = newestPrimary(members);
        if (!leader) throw new Error(`shard ${key} has no primary`);
        if (opts.to && !members.some((p) => p.id === opts.to && p.id !== leader.id)) {
          throw new Error(`${opts.to} is not a replica of ${key}`);
        }
        if (!members.some((p) => p.id !== leader.id && this.#alive(p))) {
          throw new Error(`shard ${key} has no live replica to hand over to`);
        }
        this.#logger.info("switchover: draining the primary", { shard: key, primary: leader.id });
        const lsn = await this.#control.demote(leader, opts.drainMs ?? 5000);
        return await this.#elect(key, leader, members, { prefer: opts.to, atLeast: lsn });
      } finally {
        await release();
      }
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /**
   * Elects and installs a new primary for a shard whose primary `leader` is gone (dead, or
   * stopped by a switchover): recruitment under a new term, promotion of the most advanced
   * recruit (`prefer` wins a tie), the others and the old primary repointed, the rule written.
   */
  async #elect(
    key: string,
    leader: PoolerRecord,
    members: PoolerRecord[],
    opts: { prefer?: string; atLeast?: string } = {},
  ): Promise<{ primary: string; term: number }> {
    const started = Date.now();
    const others = members.filter((p) => p.id !== leader.id && this.#alive(p));
    const db = await this.#topo.getDatabase(leader.database);
    const policy = db?.durabilityPolicy;
    const n = policy?.kind === "AT_LEAST_N" ? Math.max(1, policy.n) : 1;
    const seenTerms = members.map((m) => m.term);
    for (const p of members) seenTerms.push(this.#health.get(p.id)?.last?.term ?? 0);
    const term = Math.max(this.#triedTerm.get(key) ?? 0, ...seenTerms) + 1;
    this.#triedTerm.set(key, term);
    this.#logger.info("recruiting", { shard: key, term, candidates: others.map((p) => p.id) });
    const answers = await Promise.allSettled(
      others.map((p) => withTimeout(this.#control.recruit(p, term), 15_000, `recruit ${p.id}`)),
    );
    const recruits: { pooler: PoolerRecord; r: Recruit }[] = [];
    answers.forEach((a, i) => {
      if (a.status === "fulfilled") recruits.push({ pooler: others[i], r: a.value });
      else {
        this.#logger.warn("member not recruited", { pooler: others[i].id, error: a.reason });
      }
    });
    // Every acknowledged commit is on the old primary and n-1 members of its cohort: enough
    // recruits that any n-1 of the cohort include one of them, and the newest rule is among them.
    const newestRule = recruits.map((x) => x.r.rule).filter((r): r is ShardRule => !!r)
      .sort((a, b) => b.term - a.term)[0];
    const cohort = new Set([...(newestRule?.cohort ?? []), ...others.map((p) => p.id)]);
    // A primary gone from the topo before this orch saw it is known by the rule only.
    const oldId = leader.id || newestRule?.leaderId || "";
    cohort.delete(oldId);
    const need = n > 1 ? Math.max(1, cohort.size - (n - 1) + 1) : 1;
    // After a switchover the old primary's last LSN is known: a recruit that has it has every
    // commit, whatever answered.
    const complete = !!opts.atLeast &&
      recruits.some((x) => lsnValue(x.r.lsn) >= lsnValue(opts.atLeast!));
    if (!complete && recruits.length < need) {
      throw new Error(
        `cannot elect a primary for ${key}: ${recruits.length} of the cohort ` +
          `(${[...cohort].join(", ")}) answered, ${need} needed`,
      );
    }
    recruits.sort((a, b) => {
      const rt = (b.r.rule?.term ?? 0) - (a.r.rule?.term ?? 0);
      if (rt) return rt;
      const d = lsnValue(b.r.lsn) - lsnValue(a.r.lsn);
      if (d) return d > 0n ? 1 : -1;
      if (opts.prefer && (a.pooler.id === opts.prefer || b.pooler.id === opts.prefer)) {
        return a.pooler.id === opts.prefer ? -1 : 1;
      }
      return a.pooler.id.localeCompare(b.pooler.id);
    });
    const best = recruits[0].pooler;
    if (opts.atLeast && lsnValue(recruits[0].r.lsn) < lsnValue(opts.atLeast)) {
      this.#logger.warn("the most advanced replica is behind the old primary's last LSN", {
        replica: best.id,
        lsn: recruits[0].r.lsn,
        primaryLsn: opts.atLeast,
      });
    }
    const standbys = [...new Set([...cohort, oldId])].filter((id) => id && id !== best.id)
      .sort();
    this.#logger.info("promoting", { shard: key, pooler: best.id, lsn: recruits[0].r.lsn, term });
    await this.#control.promote(best, term, standbys, n);
    const primary = { ...best, type: "PRIMARY" as const, term };
    await Promise.allSettled(
      recruits.slice(1).map((x) =>
        this.#control.repoint(x.pooler, term, primary).catch((e) =>
          this.#logger.warn("member did not follow the new primary", {
            pooler: x.pooler.id,
            error: e,
          })
        )
      ),
    );
    // The old primary, if its pooler still answers, steps down and rewinds (not waited for).
    if (leader.addr) this.#control.repoint(leader, term, primary).catch(() => {});
    await this.#control.appointPrimary(best, {
      term,
      leaderId: best.id,
      cohort: [best.id, ...standbys].sort(),
      durabilityPolicy: policy ?? null,
    });
    this.#logger.info("new primary in place", {
      shard: key,
      primary: best.id,
      term,
      ms: Date.now() - started,
    });
    return { primary: best.id, term };
  }

  status(): ShardStatus[] {
    const out = new Map<string, ShardStatus>();
    for (const [key, members] of this.#shards()) {
      const leader = newestPrimary(members);
      const first = members[0];
      out.set(key, {
        database: first.database,
        tablegroup: first.tablegroup,
        shard: first.shard,
        primary: leader?.id ?? "",
        term: leader?.term ?? 0,
        replicas: members.filter((p) => p !== leader).map((p) => p.id),
        durabilityPolicy: null,
      });
    }
    return [...out.values()];
  }

  stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#poll?.stop();
    for (const w of this.#health.values()) w.stream.stop();
    this.#health.clear();
    return Promise.resolve();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
