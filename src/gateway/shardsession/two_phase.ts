/**
 * Two-phase commit of a transaction block that wrote on several shards: PREPARE TRANSACTION on
 * every participant, the decision written durably on the default tablegroup's primary (the first
 * decision recorded wins, so the recovery's abort of a transaction it found prepared too long
 * and this commit cannot both hold), then COMMIT PREPARED everywhere. What a crash leaves
 * prepared, the orch's recovery finishes (`src/orch/two_phase_recovery.ts`): committed where a
 * commit decision is recorded, rolled back otherwise.
 *
 * @module
 */

import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { TWO_PHASE_GID_PREFIX, type TwoPhaseDecision } from "../../shared/grpc/types.ts";
import { literal } from "../../shared/sql/mod.ts";
import { BackendCode, parseErrorFields } from "../../shared/wire/mod.ts";
import { body, commandTag, type Message, splitMessages } from "./messages.ts";

/** How long the decision's write is tried while the default tablegroup has no primary. */
const DECIDE_WINDOW_MS = 15_000;
/**
 * How long COMMIT PREPARED is tried again on a participant that fails it (its pooler or its
 * Postgres restarting, its shard failing over), so that a commit the client is told of is
 * visible on every shard; past it, the recovery commits it (in `--two-phase-min-age`).
 */
const FINISH_WINDOW_MS = 15_000;
const FINISH_RETRY_MS = 200;

/** One shard (or the default one) that holds part of the transaction block. */
export interface TwoPhaseParticipant {
  /** "database/tablegroup/shard". */
  name: string;
  /** Runs one statement in the session that holds the block there; resolves with its answer. */
  run(sql: string): Promise<Uint8Array>;
  /**
   * Runs one statement on the shard after the block ended there (COMMIT PREPARED), in that
   * session or, if it was lost, a new one.
   */
  finish(sql: string): Promise<Uint8Array>;
}

/** What the coordinator needs from the gateway. */
export interface TwoPhaseDeps {
  /** See Router.decideTwoPhase. */
  decide(
    gid: string,
    decision: TwoPhaseDecision,
    participants: string[],
    deadline: number,
  ): Promise<TwoPhaseDecision>;
  /** Forgets a decision once every participant committed. */
  forget(gid: string): Promise<void>;
  /** Logs what the recovery will have to finish. */
  warn(message: string, fields: Record<string, unknown>): void;
  /** How long a failed COMMIT PREPARED is tried again (default 15 s; tests set less). */
  finishWindowMs?: number;
}

/** The coordinator's needs, from the gateway's sharding dependencies. */
export function twoPhaseDeps(deps: {
  decideTwoPhase: TwoPhaseDeps["decide"];
  forgetTwoPhase: TwoPhaseDeps["forget"];
  warn: TwoPhaseDeps["warn"];
}): TwoPhaseDeps {
  return {
    decide: (gid, decision, participants, deadline) =>
      deps.decideTwoPhase(gid, decision, participants, deadline),
    forget: (gid) => deps.forgetTwoPhase(gid),
    warn: (message, fields) => deps.warn(message, fields),
  };
}

/** How a two-phase commit ended, for the client's COMMIT. */
export type TwoPhaseOutcome =
  /** Committed (on every participant, or recorded so that the recovery completes it). */
  | { committed: true }
  /**
   * Rolled back everywhere: `error` is what to answer the COMMIT with (a participant's own
   * error from PREPARE TRANSACTION, as Postgres answers a COMMIT that fails), null for a plain
   * ROLLBACK (a participant's block had failed).
   */
  | { committed: false; error: Message | PgError | null };

const COMMIT: TwoPhaseDecision = "TWO_PHASE_DECISION_COMMIT";

/** A new global transaction id. */
export function newGid(): string {
  return TWO_PHASE_GID_PREFIX + crypto.randomUUID().replaceAll("-", "");
}

type Prepared = { ok: true } | { ok: false; error: Message | PgError | null };

async function prepare(p: TwoPhaseParticipant, gid: string): Promise<Prepared> {
  try {
    const msgs = splitMessages(await p.run(`PREPARE TRANSACTION ${literal(gid)}`));
    const error = msgs.find((m) => m.code === BackendCode.ErrorResponse);
    if (error) return { ok: false, error };
    const done = msgs.find((m) => m.code === BackendCode.CommandComplete);
    // PREPARE TRANSACTION in a failed block rolls it back and says ROLLBACK.
    return done && commandTag(done) === "PREPARE TRANSACTION"
      ? { ok: true }
      : { ok: false, error: null };
  } catch (e) {
    // Lost on the way: it may have prepared. Without a commit decision, the recovery rolls it
    // back once it is old enough.
    return {
      ok: false,
      error: e instanceof PgError ? e : new PgError(SqlState.CONNECTION_FAILURE, String(e)),
    };
  }
}

/**
 * Commits a block held by `parts` (two or more) atomically, or rolls it back everywhere.
 * `gid` comes from {@linkcode newGid}.
 */
export async function commitTwoPhase(
  parts: TwoPhaseParticipant[],
  gid: string,
  deps: TwoPhaseDeps,
): Promise<TwoPhaseOutcome> {
  const names = parts.map((p) => p.name);
  await fault("before_prepare");
  let results: Prepared[];
  if (faultAt("between_prepares")) {
    const first = await prepare(parts[0], gid);
    await fault("between_prepares");
    results = [first, ...await Promise.all(parts.slice(1).map((p) => prepare(p, gid)))];
  } else {
    results = await Promise.all(parts.map((p) => prepare(p, gid)));
  }
  const failed = results.find((r) => !r.ok);
  if (failed && !failed.ok) {
    await rollbackPrepared(parts.filter((_, i) => results[i].ok), gid, deps);
    return { committed: false, error: failed.error };
  }
  await fault("after_prepares");

  let decision: TwoPhaseDecision;
  try {
    decision = await deps.decide(gid, COMMIT, names, Date.now() + DECIDE_WINDOW_MS);
  } catch (e) {
    deps.warn("two-phase commit: the decision could not be recorded; recovery will end it", {
      gid,
      participants: names,
      error: String(e),
    });
    return {
      committed: false,
      error: new PgError(
        SqlState.TRANSACTION_RESOLUTION_UNKNOWN,
        "could not record the commit of a transaction on several shards",
        {
          detail: `The transaction ${gid} is prepared on every shard; it will be rolled back ` +
            "unless its commit was recorded.",
        },
      ),
    };
  }
  if (decision !== COMMIT) {
    // The recovery found it prepared for too long and decided first.
    await rollbackPrepared(parts, gid, deps);
    return {
      committed: false,
      error: new PgError(
        SqlState.TRANSACTION_ROLLBACK,
        "the transaction was rolled back: its commit took too long across shards",
      ),
    };
  }
  await fault("after_decision");

  const sql = `COMMIT PREPARED ${literal(gid)}`;
  const finishBy = Date.now() + (deps.finishWindowMs ?? FINISH_WINDOW_MS);
  const finish = async (p: TwoPhaseParticipant) => {
    let error: unknown;
    /** An earlier attempt may have committed it (its answer was lost). */
    let uncertain = false;
    for (;;) {
      try {
        const msgs = splitMessages(await p.finish(sql));
        const e = msgs.find((m) => m.code === BackendCode.ErrorResponse);
        if (!e) return true;
        error = parseErrorFields(body(e));
        // Not prepared any more after an attempt whose answer was lost: that attempt committed
        // it. Without one, it is not known (a replica promoted without the PREPARE, someone's
        // ROLLBACK PREPARED): warned of below, the decision kept for the recovery.
        const code = (error as PgError).sqlstate ?? "";
        if (code === SqlState.UNDEFINED_OBJECT) {
          if (uncertain) return true;
          break;
        }
        // The connection or the server went away mid-commit: it may have committed.
        if (code.startsWith("08") || code.startsWith("57")) uncertain = true;
      } catch (e) {
        error = e;
        uncertain = true;
      }
      if (Date.now() + FINISH_RETRY_MS > finishBy) break;
      await new Promise((r) => setTimeout(r, FINISH_RETRY_MS));
    }
    deps.warn("two-phase commit: COMMIT PREPARED failed; recovery will finish it", {
      gid,
      participant: p.name,
      error: String(error),
    });
    return false;
  };
  let done: boolean[];
  if (faultAt("between_commits")) {
    const first = await finish(parts[0]);
    await fault("between_commits");
    done = [first, ...await Promise.all(parts.slice(1).map(finish))];
  } else {
    done = await Promise.all(parts.map(finish));
  }
  if (done.every(Boolean)) {
    deps.forget(gid).catch((e) =>
      deps.warn("two-phase commit: could not forget a finished decision", {
        gid,
        error: String(e),
      })
    );
  }
  return { committed: true };
}

async function rollbackPrepared(
  parts: TwoPhaseParticipant[],
  gid: string,
  deps: TwoPhaseDeps,
): Promise<void> {
  const sql = `ROLLBACK PREPARED ${literal(gid)}`;
  await Promise.all(parts.map(async (p) => {
    try {
      const msgs = splitMessages(await p.finish(sql));
      if (!msgs.some((m) => m.code === BackendCode.ErrorResponse)) return;
    } catch {
      // below
    }
    deps.warn("two-phase commit: ROLLBACK PREPARED failed; recovery will finish it", {
      gid,
      participant: p.name,
    });
  }));
}

// ---- fault injection, for the tests of what a crash at each step leaves ----

/**
 * `MULTIGRES_TWO_PHASE_FAULT=crash@STEP` kills the gateway (SIGKILL) at STEP;
 * `pause@STEP` writes the file `MULTIGRES_TWO_PHASE_FAULT_FILE` and waits until it is removed.
 * Steps: before_prepare, between_prepares, after_prepares, after_decision, between_commits.
 */
const FAULT = (() => {
  try {
    const spec = Deno.env.get("MULTIGRES_TWO_PHASE_FAULT") ?? "";
    const [action, step] = spec.split("@");
    if (!step || (action !== "crash" && action !== "pause")) return null;
    return { action, step, file: Deno.env.get("MULTIGRES_TWO_PHASE_FAULT_FILE") ?? "" };
  } catch {
    return null; // no permission to read the environment: no faults
  }
})();

function faultAt(step: string): boolean {
  return FAULT?.step === step;
}

async function fault(step: string): Promise<void> {
  if (!FAULT || FAULT.step !== step) return;
  if (FAULT.action === "crash") Deno.kill(Deno.pid, "SIGKILL");
  if (!FAULT.file) return;
  await Deno.writeTextFile(FAULT.file, step);
  for (;;) {
    try {
      await Deno.stat(FAULT.file);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
