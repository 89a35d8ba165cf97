import assert from "node:assert/strict";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { TwoPhaseDecision } from "../../shared/grpc/types.ts";
import { READY_IDLE } from "../../shared/wire/mod.ts";
import { commandComplete, errorFrame } from "./messages.ts";
import {
  commitTwoPhase,
  newGid,
  type TwoPhaseDeps,
  type TwoPhaseParticipant,
} from "./two_phase.ts";

function answer(result: Uint8Array, ready: Uint8Array): Uint8Array {
  const out = new Uint8Array(result.length + ready.length);
  out.set(result);
  out.set(ready, result.length);
  return out;
}

/** A participant that answers each statement as `reply` says, and records what it ran. */
function participant(
  name: string,
  reply: (sql: string) => Uint8Array | Error = (sql) =>
    answer(commandComplete(sql.split(" ").slice(0, 2).join(" ")), READY_IDLE),
): TwoPhaseParticipant & { ran: string[] } {
  const ran: string[] = [];
  const run = (sql: string) => {
    ran.push(sql);
    const r = reply(sql);
    return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
  };
  return { name, ran, run, finish: run };
}

function deps(decide: (d: TwoPhaseDecision) => Promise<TwoPhaseDecision>) {
  const log = { decided: [] as string[][], forgotten: [] as string[], warnings: 0 };
  const d: TwoPhaseDeps = {
    decide: (_gid, decision, participants) => {
      log.decided.push(participants);
      return decide(decision);
    },
    forget: (gid) => {
      log.forgotten.push(gid);
      return Promise.resolve();
    },
    warn: () => void log.warnings++,
    finishWindowMs: 1_000,
  };
  return { d, log };
}

Deno.test("commitTwoPhase() prepares everywhere, records the commit, then commits everywhere", async () => {
  const a = participant("db/tg/0-8");
  const b = participant("db/tg/8-inf");
  const { d, log } = deps((x) => Promise.resolve(x));
  const gid = newGid();
  const out = await commitTwoPhase([a, b], gid, d);
  assert.deepEqual(out, { committed: true });
  for (const p of [a, b]) {
    assert.deepEqual(p.ran, [`PREPARE TRANSACTION '${gid}'`, `COMMIT PREPARED '${gid}'`]);
  }
  assert.deepEqual(log.decided, [["db/tg/0-8", "db/tg/8-inf"]]);
  await Promise.resolve();
  assert.deepEqual(log.forgotten, [gid]);
});

Deno.test("commitTwoPhase() rolls back the prepared ones when one PREPARE fails, and answers its error", async () => {
  const err = errorFrame(new PgError(SqlState.UNIQUE_VIOLATION, "duplicate key value"));
  const a = participant("a");
  const b = participant(
    "b",
    (sql) =>
      sql.startsWith("PREPARE")
        ? answer(err, READY_IDLE)
        : answer(commandComplete("X"), READY_IDLE),
  );
  const { d, log } = deps((x) => Promise.resolve(x));
  const gid = newGid();
  const out = await commitTwoPhase([a, b], gid, d);
  assert.equal(out.committed, false);
  assert.ok(!out.committed && out.error && !(out.error instanceof PgError));
  assert.deepEqual(a.ran, [`PREPARE TRANSACTION '${gid}'`, `ROLLBACK PREPARED '${gid}'`]);
  assert.deepEqual(b.ran, [`PREPARE TRANSACTION '${gid}'`], "its PREPARE rolled it back already");
  assert.deepEqual(log.decided, [], "nothing recorded");
});

Deno.test("commitTwoPhase() answers ROLLBACK when a participant's block had failed", async () => {
  const a = participant("a");
  const b = participant("b", () => answer(commandComplete("ROLLBACK"), READY_IDLE));
  const { d } = deps((x) => Promise.resolve(x));
  const out = await commitTwoPhase([a, b], newGid(), d);
  assert.deepEqual(out, { committed: false, error: null });
});

Deno.test("commitTwoPhase() rolls back when the recovery decided first", async () => {
  const a = participant("a");
  const b = participant("b");
  const { d } = deps(() => Promise.resolve("TWO_PHASE_DECISION_ABORT"));
  const gid = newGid();
  const out = await commitTwoPhase([a, b], gid, d);
  assert.ok(!out.committed && out.error instanceof PgError);
  assert.equal((out.error as PgError).sqlstate, SqlState.TRANSACTION_ROLLBACK);
  for (const p of [a, b]) assert.equal(p.ran.at(-1), `ROLLBACK PREPARED '${gid}'`);
});

Deno.test("commitTwoPhase() leaves an unrecordable decision to the recovery with 08007", async () => {
  const a = participant("a");
  const b = participant("b");
  const { d, log } = deps(() => Promise.reject(new Error("no primary")));
  const out = await commitTwoPhase([a, b], newGid(), d);
  assert.ok(!out.committed && out.error instanceof PgError);
  assert.equal((out.error as PgError).sqlstate, SqlState.TRANSACTION_RESOLUTION_UNKNOWN);
  assert.equal(a.ran.length, 1, "prepared, then left as it is");
  assert.equal(log.warnings, 1);
});

Deno.test("commitTwoPhase() answers COMMIT once recorded, even when a COMMIT PREPARED fails", async () => {
  const a = participant("a");
  const b = participant(
    "b",
    (sql) =>
      sql.startsWith("COMMIT")
        ? new Error("connection lost")
        : answer(commandComplete("PREPARE TRANSACTION"), READY_IDLE),
  );
  const { d, log } = deps((x) => Promise.resolve(x));
  const out = await commitTwoPhase([a, b], newGid(), d);
  assert.deepEqual(out, { committed: true });
  assert.equal(log.warnings, 1);
  assert.deepEqual(log.forgotten, [], "the recovery forgets it once it finished");
});

Deno.test("commitTwoPhase() tries a failed COMMIT PREPARED again, so the client's commit is visible", async () => {
  let failures = 2; // the participant's pooler restarts meanwhile
  const a = participant("a");
  const b = participant("b", (sql) => {
    if (sql.startsWith("COMMIT") && failures-- > 0) return new Error("connection lost");
    return answer(commandComplete(sql.split(" ").slice(0, 2).join(" ")), READY_IDLE);
  });
  const { d, log } = deps((x) => Promise.resolve(x));
  const gid = newGid();
  const out = await commitTwoPhase([a, b], gid, d);
  assert.deepEqual(out, { committed: true });
  assert.equal(b.ran.filter((q) => q.startsWith("COMMIT PREPARED")).length, 3);
  assert.equal(log.warnings, 0);
  await Promise.resolve();
  assert.deepEqual(log.forgotten, [gid]);
});

Deno.test("commitTwoPhase() takes a COMMIT PREPARED of what is not prepared any more as done", async () => {
  // The first answer was lost after it committed; the second finds nothing left to commit.
  const gone = errorFrame(
    new PgError(
      SqlState.UNDEFINED_OBJECT,
      'prepared transaction with identifier "x" does not exist',
    ),
  );
  let tries = 0;
  const a = participant("a");
  const b = participant("b", (sql) => {
    if (!sql.startsWith("COMMIT")) {
      return answer(commandComplete("PREPARE TRANSACTION"), READY_IDLE);
    }
    return tries++ ? answer(gone, READY_IDLE) : new Error("connection lost");
  });
  const { d, log } = deps((x) => Promise.resolve(x));
  const out = await commitTwoPhase([a, b], newGid(), d);
  assert.deepEqual(out, { committed: true });
  assert.equal(log.warnings, 0);
});

Deno.test("commitTwoPhase() keeps the decision when a participant lost its prepared part unseen", async () => {
  // No attempt could have committed it (a replica promoted without the PREPARE, or someone's
  // ROLLBACK PREPARED): not counted as done, warned of, the decision kept for the recovery.
  const gone = errorFrame(
    new PgError(
      SqlState.UNDEFINED_OBJECT,
      'prepared transaction with identifier "x" does not exist',
    ),
  );
  const a = participant("a");
  const b = participant(
    "b",
    (sql) =>
      sql.startsWith("COMMIT")
        ? answer(gone, READY_IDLE)
        : answer(commandComplete("PREPARE TRANSACTION"), READY_IDLE),
  );
  const { d, log } = deps((x) => Promise.resolve(x));
  const out = await commitTwoPhase([a, b], newGid(), d);
  assert.deepEqual(out, { committed: true });
  assert.equal(log.warnings, 1);
  assert.deepEqual(log.forgotten, []);
});
