import assert from "node:assert/strict";
import type {
  PoolerRecord,
  PreparedTransaction,
  TwoPhaseDecision,
  TwoPhaseDecisionRecord,
} from "../shared/grpc/types.ts";
import { Logger } from "../shared/log/mod.ts";
import { type TwoPhaseControl, TwoPhaseRecovery } from "./two_phase_recovery.ts";

function primary(tablegroup: string, shard: string, term = 1): PoolerRecord {
  return {
    id: `${tablegroup}-${shard}-${term}`,
    cell: "zone1",
    addr: `${tablegroup}/${shard}/${term}`,
    database: "db",
    tablegroup,
    shard,
    type: "PRIMARY",
    term,
    serving: true,
    httpAddr: "",
    postgresAddr: "",
  };
}

/** Shards' prepared transactions and the decisions, as the poolers would hold them. */
function world() {
  const prepared = new Map<string, PreparedTransaction[]>();
  const decisions = new Map<string, TwoPhaseDecisionRecord>();
  const finished: string[] = [];
  const down = new Set<string>();
  const control: TwoPhaseControl = {
    listPrepared: (p) => {
      if (down.has(p.addr)) return Promise.reject(new Error("unreachable"));
      return Promise.resolve(prepared.get(p.addr) ?? []);
    },
    finishPrepared: (p, tx, commit) => {
      const list = prepared.get(p.addr) ?? [];
      prepared.set(p.addr, list.filter((t) => t.gid !== tx.gid));
      finished.push(`${p.addr} ${tx.gid} ${commit ? "commit" : "rollback"}`);
      return Promise.resolve(list.some((t) => t.gid === tx.gid));
    },
    decide: (_p, gid, decision: TwoPhaseDecision) => {
      if (!decisions.has(gid)) {
        decisions.set(gid, { gid, decision, participants: [], ageSeconds: 0 });
      }
      return Promise.resolve(decisions.get(gid)!.decision);
    },
    listDecisions: (_p, minAge) =>
      Promise.resolve([...decisions.values()].filter((d) => d.ageSeconds >= minAge)),
    forget: (_p, gids) => {
      for (const g of gids) decisions.delete(g);
      return Promise.resolve();
    },
  };
  return { prepared, decisions, finished, down, control };
}

const logger = new Logger({ level: "error", sink: () => {} });

Deno.test("TwoPhaseRecovery rolls back what is prepared without a decision, once old enough", async () => {
  const w = world();
  const [def, a] = [primary("default", "0-inf"), primary("tg", "0-8")];
  w.prepared.set(a.addr, [
    { gid: "mg_old", database: "db", ageSeconds: 30 },
    { gid: "mg_young", database: "db", ageSeconds: 1 },
  ]);
  const r = new TwoPhaseRecovery(() => Promise.resolve([def, a]), w.control, logger, {
    minAgeSeconds: 10,
  });
  await r.runOnce();
  assert.deepEqual(w.finished, [`${a.addr} mg_old rollback`]);
  assert.equal(w.decisions.get("mg_old")?.decision, "TWO_PHASE_DECISION_ABORT", "recorded first");
  assert.equal(w.prepared.get(a.addr)?.length, 1, "a young one is left to its gateway");
});

Deno.test("TwoPhaseRecovery commits where a commit is recorded, then forgets the decision", async () => {
  const w = world();
  const [def, a, b] = [primary("default", "0-inf"), primary("tg", "0-8"), primary("tg", "8-inf")];
  w.decisions.set("mg_1", {
    gid: "mg_1",
    decision: "TWO_PHASE_DECISION_COMMIT",
    participants: ["db/tg/0-8", "db/tg/8-inf"],
    ageSeconds: 20,
  });
  w.prepared.set(b.addr, [{ gid: "mg_1", database: "db", ageSeconds: 20 }]);
  const r = new TwoPhaseRecovery(() => Promise.resolve([def, a, b]), w.control, logger);
  await r.runOnce();
  assert.deepEqual(w.finished, [`${b.addr} mg_1 commit`]);
  assert.equal(w.decisions.has("mg_1"), false, "finished everywhere: forgotten");
});

Deno.test("TwoPhaseRecovery keeps a decision while a participant cannot answer", async () => {
  const w = world();
  const [def, a, b] = [primary("default", "0-inf"), primary("tg", "0-8"), primary("tg", "8-inf")];
  w.decisions.set("mg_2", {
    gid: "mg_2",
    decision: "TWO_PHASE_DECISION_COMMIT",
    participants: ["db/tg/0-8", "db/tg/8-inf"],
    ageSeconds: 20,
  });
  w.down.add(b.addr);
  const r = new TwoPhaseRecovery(() => Promise.resolve([def, a, b]), w.control, logger);
  await r.runOnce();
  assert.equal(w.decisions.has("mg_2"), true);
  // Its newer primary (a failover) answers: the decision is finished with and forgotten.
  const b2 = primary("tg", "8-inf", 2);
  const r2 = new TwoPhaseRecovery(() => Promise.resolve([def, a, b, b2]), w.control, logger);
  await r2.runOnce();
  assert.equal(w.decisions.has("mg_2"), false);
});
