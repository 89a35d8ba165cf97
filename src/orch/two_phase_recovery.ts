import type {
  PoolerRecord,
  PreparedTransaction,
  TwoPhaseDecision,
  TwoPhaseDecisionRecord,
} from "../shared/grpc/types.ts";
import type { Logger } from "../shared/log/mod.ts";
import { newestPrimary } from "../shared/topo/mod.ts";

/** How the recovery reaches poolers (gRPC in main.ts). */
export interface TwoPhaseControl {
  listPrepared(pooler: PoolerRecord): Promise<PreparedTransaction[]>;
  finishPrepared(
    pooler: PoolerRecord,
    tx: { gid: string; database: string },
    commit: boolean,
  ): Promise<boolean>;
  decide(pooler: PoolerRecord, gid: string, decision: TwoPhaseDecision): Promise<TwoPhaseDecision>;
  listDecisions(pooler: PoolerRecord, minAgeSeconds: number): Promise<TwoPhaseDecisionRecord[]>;
  forget(pooler: PoolerRecord, gids: string[]): Promise<void>;
}

export interface TwoPhaseRecoveryOptions {
  /** How often prepared transactions are looked for. */
  intervalMs?: number;
  /**
   * A transaction prepared this long without a recorded decision is rolled back (its gateway
   * died or gave up between PREPARE and the decision; one at work decides in milliseconds).
   */
  minAgeSeconds?: number;
  /**
   * How long a decision the recovery made (to roll back) is kept: a gateway that stalled for
   * longer than this between its PREPAREs and its decision could still record a commit.
   */
  abortRetentionSeconds?: number;
}

const COMMIT: TwoPhaseDecision = "TWO_PHASE_DECISION_COMMIT";
const ABORT: TwoPhaseDecision = "TWO_PHASE_DECISION_ABORT";

/** "database/tablegroup/shard" of a pooler. */
function shardName(p: PoolerRecord): string {
  return `${p.database}/${p.tablegroup}/${p.shard}`;
}

/**
 * Finishes what two-phase commits left prepared: a gateway that crashed between its PREPAREs
 * and its COMMIT PREPAREDs, a participant's pooler or primary that died meanwhile. On a timer
 * (and at once when started), on every shard's primary, each transaction Multigres prepared
 * that is old enough is committed when a commit decision is recorded for it, and rolled back
 * otherwise, after recording that decision first (so that a late gateway cannot commit it
 * afterwards: the first decision recorded wins). Decisions whose transaction is prepared on no
 * participant any more are forgotten.
 *
 * Several orchs may run it at once: every step is idempotent (a decision is recorded once, a
 * prepared transaction is finished once; finishing one that is gone is not an error).
 */
export class TwoPhaseRecovery {
  readonly #listPoolers: () => Promise<PoolerRecord[]>;
  readonly #control: TwoPhaseControl;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #minAgeSeconds: number;
  readonly #abortRetentionSeconds: number;
  #timer?: ReturnType<typeof setTimeout>;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();

  constructor(
    listPoolers: () => Promise<PoolerRecord[]>,
    control: TwoPhaseControl,
    logger: Logger,
    opts: TwoPhaseRecoveryOptions = {},
  ) {
    this.#listPoolers = listPoolers;
    this.#control = control;
    this.#logger = logger;
    this.#intervalMs = opts.intervalMs ?? 2_000;
    this.#minAgeSeconds = opts.minAgeSeconds ?? 10;
    this.#abortRetentionSeconds = opts.abortRetentionSeconds ?? 3_600;
  }

  start(): void {
    const tick = () => {
      if (this.#stopped) return;
      this.#running = this.runOnce()
        .catch((e) => this.#logger.warn("two-phase recovery failed", { error: e }))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#intervalMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One pass over every primary. */
  async runOnce(): Promise<void> {
    const poolers = await this.#listPoolers();
    const primaries = new Map<string, PoolerRecord>();
    for (const p of poolers) {
      const key = shardName(p);
      if (primaries.has(key)) continue;
      const leader = newestPrimary(poolers, (q) => q.serving && shardName(q) === key);
      if (leader) primaries.set(key, leader);
    }
    const decider = newestPrimary(
      poolers,
      (p) => p.serving && p.tablegroup === "default" && p.shard === "0-inf",
    );
    if (!decider) return;

    // Decisions first, then what is prepared: a decision listed here whose transaction is
    // still prepared anywhere shows in the listing that follows, so none is forgotten early.
    const decisions = await this.#control.listDecisions(decider, this.#minAgeSeconds);

    // Every primary's prepared transactions; a primary that cannot answer is "unknown".
    const prepared = new Map<string, PreparedTransaction[]>();
    await Promise.all([...primaries].map(async ([key, p]) => {
      try {
        prepared.set(key, await this.#control.listPrepared(p));
      } catch (e) {
        this.#logger.debug("two-phase recovery: a primary did not list", { shard: key, error: e });
      }
    }));

    const finishedHere = new Set<string>();
    let failures = 0;
    for (const [key, txs] of prepared) {
      for (const tx of txs) {
        if (tx.ageSeconds < this.#minAgeSeconds) continue;
        try {
          const decision = await this.#control.decide(decider, tx.gid, ABORT);
          const commit = decision === COMMIT;
          await this.#control.finishPrepared(primaries.get(key)!, tx, commit);
          finishedHere.add(`${key}\0${tx.gid}`);
          this.#logger.info("two-phase recovery finished a prepared transaction", {
            gid: tx.gid,
            shard: key,
            outcome: commit ? "committed" : "rolled back",
          });
        } catch (e) {
          // The others are still worth finishing; this one is tried again next time.
          failures++;
          this.#logger.warn("two-phase recovery could not finish a prepared transaction", {
            gid: tx.gid,
            shard: key,
            error: e,
          });
        }
      }
    }
    if (failures) return; // nothing is forgotten in a pass that left something unfinished

    // Decisions nothing is prepared under any more (on every participant that answered).
    const stillPrepared = new Set<string>();
    for (const [key, txs] of prepared) {
      for (const tx of txs) {
        if (!finishedHere.has(`${key}\0${tx.gid}`)) stillPrepared.add(tx.gid);
      }
    }
    // A database's default tablegroup is served by the default server (its pooler's record
    // names the server's own database): a participant named after the client's database.
    const answered = (name: string) =>
      prepared.has(name) ||
      (name.endsWith("/default/0-inf") && !primaries.has(name) && prepared.has(shardName(decider)));
    const forget: string[] = [];
    for (const d of decisions) {
      if (d.decision === ABORT) {
        if (d.ageSeconds >= this.#abortRetentionSeconds) forget.push(d.gid);
        continue;
      }
      if (d.participants.every(answered) && !stillPrepared.has(d.gid)) forget.push(d.gid);
    }
    if (forget.length) await this.#control.forget(decider, forget);
  }
}
