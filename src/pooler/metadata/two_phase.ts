/**
 * Two-phase commit's records, in SQL. Decisions live in the hidden schema of the default
 * tablegroup's server (`multigres.two_phase`), written in ordinary transactions, so a decision
 * commits under the durability policy and fails over with the data; prepared transactions are
 * Postgres's own (`pg_prepared_xacts`) on each participant's primary.
 *
 * @module
 */

import {
  type PreparedTransaction,
  TWO_PHASE_GID,
  type TwoPhaseDecision,
  type TwoPhaseDecisionRecord,
} from "../../shared/grpc/types.ts";
import { literal } from "../../shared/sql/mod.ts";
import type { Queryable } from "./schema.ts";

const COMMIT: TwoPhaseDecision = "TWO_PHASE_DECISION_COMMIT";
const ABORT: TwoPhaseDecision = "TWO_PHASE_DECISION_ABORT";

function sqlArray(items: string[]): string {
  return `ARRAY[${items.map(literal).join(", ")}]::text[]`;
}

/**
 * Records `decision` for `gid` unless a decision is recorded already, and returns the one in
 * force: the first writer wins, so a gateway committing and the recovery aborting a transaction
 * it found prepared for too long cannot both win.
 */
export async function decideTwoPhase(
  conn: Queryable,
  gid: string,
  decision: TwoPhaseDecision,
  participants: string[],
): Promise<TwoPhaseDecision> {
  const value = decision === COMMIT ? "'commit'" : "'abort'";
  // The statement's snapshot does not see a row another transaction committed while this one
  // waited on its conflict: the read is then tried again, with a new snapshot.
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await conn.query(`
WITH inserted AS (
  INSERT INTO multigres.two_phase (gid, decision, participants)
  VALUES (${literal(gid)}, ${value}, ${sqlArray(participants)})
  ON CONFLICT (gid) DO NOTHING
  RETURNING decision)
SELECT decision FROM inserted
UNION ALL
SELECT decision FROM multigres.two_phase WHERE gid = ${literal(gid)}
LIMIT 1`);
    const found = r.rows[0]?.[0];
    if (found) return found === "commit" ? COMMIT : ABORT;
  }
  throw new Error(`the decision for ${gid} could not be read back`);
}

/** Decisions at least `minAgeSeconds` old. */
export async function listTwoPhaseDecisions(
  conn: Queryable,
  minAgeSeconds: number,
): Promise<TwoPhaseDecisionRecord[]> {
  const r = await conn.query(`
SELECT gid, decision, array_to_json(participants)::text,
       extract(epoch FROM now() - decided_at)::float8
  FROM multigres.two_phase
 WHERE decided_at <= now() - make_interval(secs => ${Number(minAgeSeconds) || 0})
 ORDER BY decided_at`);
  return r.rows.map(([gid, decision, participants, age]) => ({
    gid: gid!,
    decision: decision === "commit" ? COMMIT : ABORT,
    participants: JSON.parse(participants ?? "[]"),
    ageSeconds: Number(age),
  }));
}

/** Forgets these decisions. */
export async function forgetTwoPhase(conn: Queryable, gids: string[]): Promise<void> {
  if (!gids.length) return;
  await conn.query(`DELETE FROM multigres.two_phase WHERE gid = ANY (${sqlArray(gids)})`);
}

/** The transactions Multigres prepared on this server, oldest first. */
export async function listPrepared(conn: Queryable): Promise<PreparedTransaction[]> {
  const r = await conn.query(`
SELECT gid, database, extract(epoch FROM now() - prepared)::float8
  FROM pg_catalog.pg_prepared_xacts
 WHERE gid ~ ${literal(TWO_PHASE_GID.source)}
 ORDER BY prepared`);
  return r.rows.map(([gid, database, age]) => ({
    gid: gid!,
    database: database!,
    ageSeconds: Number(age),
  }));
}

/**
 * COMMIT PREPARED or ROLLBACK PREPARED of `gid` on `conn` (connected to its database as a
 * superuser); false when it is not prepared (any more): finished by someone else.
 */
export async function finishPrepared(
  conn: Queryable,
  gid: string,
  commit: boolean,
): Promise<boolean> {
  try {
    await conn.query(`${commit ? "COMMIT" : "ROLLBACK"} PREPARED ${literal(gid)}`);
    return true;
  } catch (e) {
    // 42704: prepared transaction with identifier "…" does not exist.
    if ((e as { sqlstate?: string }).sqlstate === "42704") return false;
    throw e;
  }
}
