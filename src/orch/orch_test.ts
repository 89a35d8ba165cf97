import assert from "node:assert/strict";
import type {
  DatabaseRecord,
  HealthStatus,
  PoolerRecord,
  ShardRule,
} from "../shared/grpc/types.ts";
import type { Logger } from "../shared/log/mod.ts";
import type { Topo } from "../shared/topo/mod.ts";
import { lsnValue, Orch, type PoolerControl, type Recruit } from "./orch.ts";

const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
} as unknown as Logger;

function pooler(id: string, type: PoolerRecord["type"], term = 1): PoolerRecord {
  return {
    id,
    cell: id.split("-")[0],
    addr: `${id}:1`,
    httpAddr: "",
    database: "postgres",
    tablegroup: "default",
    shard: "0-inf",
    type,
    term,
    serving: true,
    postgresAddr: `${id}:5432`,
  };
}

/** A topo holding a fixed set of poolers, a database with AT_LEAST_N `n`, and a shard lock. */
function fakeTopo(poolers: PoolerRecord[], n: number) {
  let locked = false;
  const db: DatabaseRecord = {
    name: "postgres",
    durabilityPolicy: { kind: "AT_LEAST_N", n },
    backupLocation: "",
    cells: [],
  };
  const topo = {
    cell: "zone1",
    pollAllPoolers: (onChange: (p: PoolerRecord[]) => void) => {
      queueMicrotask(() => onChange(poolers));
      return { stop: () => {} };
    },
    listAllPoolers: () => Promise.resolve(poolers),
    getDatabase: () => Promise.resolve(db),
    lockShard: () => {
      if (locked) return Promise.reject(new Error("locked"));
      locked = true;
      return Promise.resolve(() => {
        locked = false;
        return Promise.resolve();
      });
    },
  };
  return topo as unknown as Topo;
}

/** Pooler control that records every call; health and recruit answers are set per pooler. */
class FakeControl implements PoolerControl {
  readonly calls: string[] = [];
  readonly appointed: ShardRule[] = [];
  readonly recruitAnswer = new Map<string, Recruit | Error>();
  readonly #health = new Map<string, (h: HealthStatus) => void>();

  health(id: string, postgresUp: boolean, term = 1): void {
    this.#health.get(id)?.({
      poolerId: id,
      type: "REPLICA",
      term,
      serving: postgresUp,
      postgresUp,
      lsn: "",
      timestampMs: Date.now(),
      database: "postgres",
      tablegroup: "default",
      shard: "0-inf",
    });
  }

  appointPrimary(p: PoolerRecord, rule: ShardRule): Promise<ShardRule> {
    this.calls.push(`appoint ${p.id} ${rule.term}`);
    this.appointed.push(rule);
    return Promise.resolve(rule);
  }
  recruit(p: PoolerRecord, term: number): Promise<Recruit> {
    this.calls.push(`recruit ${p.id} ${term}`);
    const a = this.recruitAnswer.get(p.id);
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a!);
  }
  promote(p: PoolerRecord, term: number, standbys: string[], n: number): Promise<void> {
    this.calls.push(`promote ${p.id} ${term} [${standbys.join(",")}] n=${n}`);
    return Promise.resolve();
  }
  repoint(p: PoolerRecord, term: number, primary: PoolerRecord): Promise<void> {
    this.calls.push(`repoint ${p.id} ${term} -> ${primary.id}`);
    return Promise.resolve();
  }
  demote(p: PoolerRecord): Promise<string> {
    this.calls.push(`demote ${p.id}`);
    return Promise.resolve("0/300");
  }
  watchHealth(p: PoolerRecord, onHealth: (h: HealthStatus) => void) {
    this.#health.set(p.id, onHealth);
    return { stop: () => this.#health.delete(p.id) };
  }
}

const rule = (cohort: string[]): ShardRule => ({
  term: 1,
  leaderId: "zone1-p",
  cohort,
  durabilityPolicy: { kind: "AT_LEAST_N", n: 2 },
});

/** Health reports every 10 ms: the members in `down` report their Postgres down. */
function heartbeat(control: FakeControl, down: string[] = []): () => void {
  const timer = setInterval(() => {
    for (const id of ["zone1-p", "zone2-p", "zone3-p"]) control.health(id, !down.includes(id));
  }, 10);
  return () => clearInterval(timer);
}

async function until(fn: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setup(n = 2, withPrimary = true) {
  const members = [
    ...(withPrimary ? [pooler("zone1-p", "PRIMARY")] : []),
    pooler("zone2-p", "REPLICA"),
    pooler("zone3-p", "REPLICA"),
  ];
  const control = new FakeControl();
  const orch = new Orch(fakeTopo(members, n), control, quiet, {
    staleMs: 200,
    postgresDownMs: 50,
    intervalMs: 20,
    goneMs: 200,
  });
  return { members, control, orch };
}

Deno.test("lsnValue orders WAL positions across the slash", () => {
  assert.ok(lsnValue("1/0") > lsnValue("0/FFFFFFFF"));
  assert.ok(lsnValue("0/3000148") > lsnValue("0/30000F0"));
  assert.equal(lsnValue(""), -1n);
});

Deno.test("a primary whose Postgres is down is replaced by the most advanced replica", async () => {
  const { control, orch } = setup();
  const cohort = ["zone1-p", "zone2-p", "zone3-p"];
  control.recruitAnswer.set("zone2-p", { term: 2, lsn: "0/3000100", rule: rule(cohort) });
  control.recruitAnswer.set("zone3-p", { term: 2, lsn: "0/3000200", rule: rule(cohort) });
  orch.start();
  try {
    await until(() => control.calls.length === 0 && orch.status().length === 1);
    const stop = heartbeat(control, ["zone1-p"]);
    try {
      await until(() => control.appointed.length === 1);
    } finally {
      stop();
    }
    assert.deepEqual(control.calls.filter((c) => !c.startsWith("repoint zone1")), [
      "recruit zone2-p 2",
      "recruit zone3-p 2",
      "promote zone3-p 2 [zone1-p,zone2-p] n=2",
      "repoint zone2-p 2 -> zone3-p",
      "appoint zone3-p 2",
    ]);
    assert.ok(control.calls.includes("repoint zone1-p 2 -> zone3-p"), "the old primary is told");
    assert.deepEqual(control.appointed[0].cohort, cohort);
    assert.equal(control.appointed[0].leaderId, "zone3-p");
  } finally {
    await orch.stop();
  }
});

Deno.test("no promotion unless enough of the cohort answered to hold every commit", async () => {
  const { control, orch } = setup();
  const cohort = ["zone1-p", "zone2-p", "zone3-p"];
  control.recruitAnswer.set("zone2-p", { term: 2, lsn: "0/3000100", rule: rule(cohort) });
  control.recruitAnswer.set("zone3-p", new Error("unreachable"));
  orch.start();
  const stop = heartbeat(control, ["zone1-p"]);
  try {
    // With ANY 1 of two replicas, a commit may be on zone3 only: zone2 alone is not enough.
    await until(() => control.calls.filter((c) => c.startsWith("recruit")).length >= 4);
    assert.ok(!control.calls.some((c) => c.startsWith("promote")), control.calls.join("\n"));
    // Each new attempt uses a new term, above what the last one had zone2 promise.
    assert.ok(control.calls.includes("recruit zone2-p 3"));
  } finally {
    stop();
    await orch.stop();
  }
});

Deno.test("a live primary is left alone", async () => {
  const { control, orch } = setup();
  orch.start();
  const stop = heartbeat(control);
  try {
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(control.calls, []);
  } finally {
    stop();
    await orch.stop();
  }
});

Deno.test("switchover drains the primary, then promotes the replica asked for", async () => {
  const { control, orch } = setup();
  const cohort = ["zone1-p", "zone2-p", "zone3-p"];
  // Both caught up with the old primary's last LSN: the one asked for wins the tie.
  control.recruitAnswer.set("zone2-p", { term: 2, lsn: "0/300", rule: rule(cohort) });
  control.recruitAnswer.set("zone3-p", { term: 2, lsn: "0/300", rule: rule(cohort) });
  orch.start();
  const stop = heartbeat(control);
  try {
    await until(() => orch.status().length === 1);
    await new Promise((r) => setTimeout(r, 50));
    const res = await orch.switchover(
      { database: "postgres", tablegroup: "default", shard: "0-inf" },
      { to: "zone3-p" },
    );
    assert.deepEqual(res, { primary: "zone3-p", term: 2 });
    assert.equal(control.calls[0], "demote zone1-p");
    assert.ok(control.calls.includes("promote zone3-p 2 [zone1-p,zone2-p] n=2"));
    await assert.rejects(
      orch.switchover({ database: "postgres", tablegroup: "default", shard: "0-inf" }, {
        to: "zone9-p",
      }),
      /zone9-p is not a replica/,
    );
  } finally {
    stop();
    await orch.stop();
  }
});

Deno.test("a primary gone before the orch started is replaced too, known by the replicas' rule", async () => {
  const { control, orch } = setup(2, false);
  const cohort = ["zone1-p", "zone2-p", "zone3-p"];
  control.recruitAnswer.set("zone2-p", { term: 2, lsn: "0/3000200", rule: rule(cohort) });
  control.recruitAnswer.set("zone3-p", { term: 2, lsn: "0/3000100", rule: rule(cohort) });
  orch.start();
  const stop = heartbeat(control);
  try {
    await until(() => control.appointed.length === 1);
    assert.ok(control.calls.includes("promote zone2-p 2 [zone1-p,zone3-p] n=2"));
    assert.deepEqual(control.appointed[0].cohort, cohort);
    assert.ok(!control.calls.some((c) => c.startsWith("repoint zone1")));
  } finally {
    stop();
    await orch.stop();
  }
});
