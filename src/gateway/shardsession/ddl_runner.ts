import { featureNotSupported, PgError, SqlState, toPgError } from "../../shared/errors/mod.ts";
import type { Plan } from "../planner/types.ts";
import type { ShardMap } from "../router/shard_map.ts";
import {
  answerUnit,
  commandComplete,
  commandTag,
  dataRows,
  errorFrame,
  firstError,
  type Message,
  query,
  splitMessages,
} from "./messages.ts";
import type { ShardSession } from "./shard_session.ts";
import type { DefaultRelay, ShardingDeps } from "./statement_router.ts";
import { BackendCode, concatBytes, parseErrorFields, TxStatus } from "../../shared/wire/mod.ts";
import { literal, quoteIdent } from "../../shared/sql/mod.ts";
import { statementText, undefinedTablegroup } from "./units.ts";
import {
  commitTwoPhase,
  newGid,
  twoPhaseDeps,
  type TwoPhaseOutcome,
  type TwoPhaseParticipant,
} from "./two_phase.ts";

const IDLE = TxStatus.Idle;
const ROLLBACK = query("ROLLBACK");

/**
 * The default shard's error says it has no shell of the table (one made before shells were):
 * what is only checked there is skipped, not failed.
 */
export function isMissingShell(error: Message): boolean {
  const code = parseErrorFields(error.frame.subarray(5)).sqlstate;
  return code === "42P01" || code === "42704";
}

/** COMMIT of a block on one participant: null, or the error frame that ended it. */
async function commitOne(p: TwoPhaseParticipant): Promise<Uint8Array | null> {
  try {
    const msgs = splitMessages(await p.run("COMMIT"));
    const err = firstError(msgs);
    if (err) return err.frame;
    const done = msgs.find((m) => m.code === BackendCode.CommandComplete);
    // COMMIT of a failed block answers ROLLBACK.
    return done && commandTag(done) === "ROLLBACK"
      ? errorFrame(new PgError(SqlState.TRANSACTION_ROLLBACK, "the DDL was rolled back"))
      : null;
  } catch (e) {
    return errorFrame(toPgError(e));
  }
}

/** The error frame of a two-phase commit that did not commit, or null. */
function failedCommit(outcome: TwoPhaseOutcome): Uint8Array | null {
  if (outcome.committed) return null;
  const e = outcome.error;
  if (e === null) {
    return errorFrame(new PgError(SqlState.TRANSACTION_ROLLBACK, "the DDL was rolled back"));
  }
  return e instanceof PgError ? errorFrame(e) : e.frame;
}
/** How long CREATE TABLEGROUP waits for its shards to serve. */
const TABLEGROUP_WAIT_MS = 300_000;

/** What DDL needs of the client session's statement router. */
export interface DdlContext {
  deps: ShardingDeps;
  relay: DefaultRelay;
  /** The session's database. */
  database: string;
  inTransaction(): boolean;
  /** The session's pooler session on one shard (opened on first use). */
  session(tablegroup: string, shard: string): Promise<ShardSession>;
  /** Closes and forgets the session's shard sessions of a dropped tablegroup. */
  forgetTablegroup(name: string): void;
}

/**
 * Carries out the DDL the gateway owns: the new syntax (CREATE/DROP TABLEGROUP, CREATE TABLE …
 * IN), DDL on tablegroup tables (on every shard under BEGIN, then COMMIT on all or ROLLBACK on
 * all), and CREATE/DROP/ALTER DATABASE with their records in the hidden schema. Each method
 * returns the unit's whole answer, or throws a PgError for the client.
 */
export class DdlRunner {
  readonly #ctx: DdlContext;

  constructor(ctx: DdlContext) {
    this.#ctx = ctx;
  }

  /** DDL on every shard of a tablegroup, or on none. */
  async fanOutDdl(
    unit: Message[],
    plan: Extract<Plan, { kind: "fanout_ddl" | "create_table" }>,
    map: ShardMap,
  ): Promise<Uint8Array> {
    if (this.#ctx.inTransaction()) {
      throw new PgError(
        SqlState.ACTIVE_SQL_TRANSACTION,
        "DDL on tables of a tablegroup cannot run inside a transaction block yet",
      );
    }
    const tg = map.tablegroup(plan.tablegroup);
    if (!tg) throw undefinedTablegroup(plan.tablegroup);
    let sql: string;
    if (plan.kind === "create_table") {
      const sharded = tg.shards.length > 1 || tg.shards[0] !== "0-inf";
      if (sharded && !plan.column) {
        throw new PgError(
          "42P16",
          `a table in sharded tablegroup "${plan.tablegroup}" needs a sharding column`,
          { hint: "Add SHARD BY (column) or a single-column primary key." },
        );
      }
      sql = plan.sql;
    } else {
      sql = statementText(unit);
    }
    const sessions = await Promise.all(
      tg.shards.map((sh) => this.#ctx.session(plan.tablegroup, sh)),
    );
    if (plan.kind === "fanout_ddl" && plan.outsideBlock) {
      return await this.#eachOnItsOwn(unit, sql, sessions);
    }
    const begin = query("BEGIN");
    const answers: Uint8Array[] = [];
    let failure: Uint8Array | null = null;
    // The default shard keeps an empty shell of every table of the database's other tablegroups
    // (as Citus's coordinator does), so that catalog queries there (psql's \d, drivers, pgbench)
    // see the tables; statements on them never go there. A table made before shells were has
    // none: DDL that does not find its shell there leaves the default shard alone.
    const shell = this.#ctx.relay;
    let shellMissing = false;
    try {
      await Promise.all([...sessions.map((s) => s.run(begin)), shell.collect(begin)]);
      const [shellAnswer, ...runs] = await Promise.all([
        shell.collect(query(sql)),
        ...sessions.map((s) => s.run(query(sql))),
      ]);
      for (const a of runs) {
        const msgs = splitMessages(a);
        const err = firstError(msgs);
        if (err && !failure) failure = err.frame;
        answers.push(a);
      }
      const shellError = firstError(splitMessages(shellAnswer));
      if (shellError && !failure) {
        if (plan.kind === "fanout_ddl" && isMissingShell(shellError)) shellMissing = true;
        else failure = shellError.frame;
      }
      if (!failure && plan.kind === "create_table" && tg.shards.length > 1) {
        // serial, bigserial and identity columns: shard i of n hands out i+1, i+1+n, … so that
        // ids are unique across shards and increasing on each.
        const table = `${quoteIdent(plan.table.schema)}.${quoteIdent(plan.table.name)}`;
        const spaced = await Promise.all(
          sessions.map((s, i) => s.run(query(interleaveSequencesSql(table, i, sessions.length)))),
        );
        for (const a of spaced) {
          const err = firstError(splitMessages(a));
          if (err && !failure) failure = err.frame;
        }
      }
      if (!failure) await this.#recordDdl(plan, map, sessions[0]);
    } catch (e) {
      failure ??= errorFrame(toPgError(e));
    }
    if (failure || shellMissing) await shell.collect(ROLLBACK).catch(() => undefined);
    if (failure) {
      await Promise.all(sessions.map((s) => s.run(ROLLBACK).catch(() => undefined)));
    } else {
      // On every shard (and the shell) or on none: a two-phase commit, as for any transaction
      // on several shards.
      const parts: TwoPhaseParticipant[] = sessions.map((s, i) => ({
        name: `${this.#ctx.database}/${plan.tablegroup}/${tg.shards[i]}`,
        run: (sql) => s.run(query(sql)),
        finish: async (sql) => {
          const now = s.closed ? await this.#ctx.session(plan.tablegroup, tg.shards[i]) : s;
          return await now.run(query(sql));
        },
      }));
      if (!shellMissing) {
        parts.push({
          name: `${this.#ctx.database}/default/0-inf`,
          run: (sql) => shell.collect(query(sql)),
          finish: (sql) => shell.collect(query(sql)),
        });
      }
      failure = parts.length === 1
        ? await commitOne(parts[0])
        : failedCommit(await commitTwoPhase(parts, newGid(), twoPhaseDeps(this.#ctx.deps)));
    }
    await this.#ctx.deps.refresh();
    if (failure) return answerUnit(unit, failure, IDLE);
    const done = splitMessages(answers[0]).find((m) => m.code === BackendCode.CommandComplete);
    return answerUnit(unit, done ? done.frame : commandComplete("OK"), IDLE);
  }

  /**
   * VACUUM or REINDEX … CONCURRENTLY, which refuse a transaction block: on every shard and the
   * shell, each on its own (a shell that is missing is left alone); the first error, or the
   * first shard's tag.
   */
  async #eachOnItsOwn(
    unit: Message[],
    sql: string,
    sessions: ShardSession[],
  ): Promise<Uint8Array> {
    const [shell, ...answers] = await Promise.all([
      this.#ctx.relay.collect(query(sql)),
      ...sessions.map((s) => s.run(query(sql))),
    ]);
    const shellError = firstError(splitMessages(shell));
    const shellGone = shellError !== undefined && isMissingShell(shellError);
    for (const a of shellGone ? answers : [...answers, shell]) {
      const err = firstError(splitMessages(a));
      if (err) return answerUnit(unit, err.frame, IDLE);
    }
    const done = splitMessages(answers[0]).find((m) => m.code === BackendCode.CommandComplete);
    return answerUnit(unit, done ? done.frame : commandComplete("OK"), IDLE);
  }

  /**
   * The metadata after DDL that ran on every shard (not committed yet): a new table, dropped or
   * renamed ones, and where each table's sharding column sits now (an INSERT without a column
   * list takes its value from there), as the first shard's catalog says.
   */
  async #recordDdl(
    plan: Extract<Plan, { kind: "fanout_ddl" | "create_table" }>,
    map: ShardMap,
    shard: ShardSession,
  ): Promise<void> {
    const change = this.#ctx.deps.changeMetadata;
    const tables = map.tablesOf(plan.tablegroup);
    if (plan.kind === "create_table") {
      const name = `${plan.table.schema}.${plan.table.name}`;
      if (plan.ifNotExists && tables.some((t) => t.name === name)) return;
      const position = plan.column
        ? (await this.#positions(shard, [{ name, column: plan.column }])).get(name)
        : undefined;
      await change({
        change: "METADATA_CHANGE_ADD_TABLE",
        name,
        tablegroup: plan.tablegroup,
        shardingColumn: plan.column ?? "",
        shardingType: plan.type ?? "",
        shardingPosition: position ?? 0,
      });
      return;
    }
    const dropped = new Set(plan.dropped.map((t) => `${t.schema}.${t.name}`));
    for (const name of dropped) await change({ change: "METADATA_CHANGE_DROP_TABLE", name });
    const renamed = plan.renamed;
    const from = renamed ? `${renamed.from.schema}.${renamed.from.name}` : "";
    const to = renamed ? `${renamed.to.schema}.${renamed.to.name}` : "";
    if (renamed && from !== to) {
      await change({ change: "METADATA_CHANGE_UPDATE_TABLE", name: from, newName: to });
    }
    const live = tables
      .filter((t) => !dropped.has(t.name) && t.column)
      .map((t) => ({ ...t, name: t.name === from ? to : t.name }));
    if (!live.length) return;
    const now = await this.#positions(
      shard,
      live.map((t) => ({ name: t.name, column: t.column! })),
    );
    for (const t of live) {
      const p = now.get(t.name);
      if (p && p !== t.position) {
        await change({ change: "METADATA_CHANGE_UPDATE_TABLE", name: t.name, shardingPosition: p });
      }
    }
  }

  /** Each table's sharding column's place among its live columns, from a shard's catalog. */
  async #positions(
    s: ShardSession,
    tables: { name: string; column: string }[],
  ): Promise<Map<string, number>> {
    const values = tables.map((t) => {
      const dot = t.name.indexOf(".");
      return `(${literal(t.name)}, ${literal(t.name.slice(0, dot))}, ${
        literal(t.name.slice(dot + 1))
      }, ${literal(t.column)})`;
    });
    const answer = await s.run(query(
      `SELECT t.name, (SELECT count(*) FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attnum <= (SELECT attnum FROM pg_catalog.pg_attribute
                              WHERE attrelid = c.oid AND attname = t.col))
         FROM (VALUES ${values.join(", ")}) AS t(name, nsp, rel, col)
         JOIN pg_catalog.pg_namespace n ON n.nspname = t.nsp
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.rel`,
    ));
    const out = new Map<string, number>();
    for (const [name, p] of dataRows(answer)) if (name && p) out.set(name, Number(p));
    return out;
  }

  async createTablegroup(
    unit: Message[],
    plan: Extract<Plan, { kind: "create_tablegroup" }>,
  ): Promise<Uint8Array> {
    if (this.#ctx.inTransaction()) {
      throw new PgError(
        SqlState.ACTIVE_SQL_TRANSACTION,
        "CREATE TABLEGROUP cannot run inside a transaction block",
      );
    }
    // The seed's `CREATE TABLEGROUP tg FOR db` names the database; without FOR, the session's.
    const database = plan.database ?? this.#ctx.database;
    await this.#ctx.deps.changeMetadata({
      change: "METADATA_CHANGE_CREATE_TABLEGROUP",
      database,
      name: plan.name,
      shards: plan.shards,
    });
    await this.#ctx.deps.refresh();
    // The provisioner (or the operator) brings the shards up from the metadata: wait for them.
    const deadline = Date.now() + TABLEGROUP_WAIT_MS;
    let missing = this.#ctx.deps.missingShards(plan.name, plan.shards, database);
    while (missing.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      missing = this.#ctx.deps.missingShards(plan.name, plan.shards, database);
    }
    if (missing.length) {
      throw new PgError(
        SqlState.CANNOT_CONNECT_NOW,
        `tablegroup "${plan.name}" is recorded, but shards ${missing.join(", ")} do not serve yet`,
        {
          detail: `No primary serves ${
            missing.map((s) => `${database}/${plan.name}/${s}`).join(", ")
          } after ${TABLEGROUP_WAIT_MS / 1000} s.`,
          hint: "multigres cluster status shows what runs; DROP TABLEGROUP removes it.",
        },
      );
    }
    return answerUnit(unit, commandComplete("CREATE TABLEGROUP"), IDLE);
  }

  async dropTablegroup(
    unit: Message[],
    plan: Extract<Plan, { kind: "drop_tablegroup" }>,
    map: ShardMap,
  ): Promise<Uint8Array> {
    if (this.#ctx.inTransaction()) {
      throw new PgError(
        SqlState.ACTIVE_SQL_TRANSACTION,
        "DROP TABLEGROUP cannot run inside a transaction block",
      );
    }
    await this.#ctx.deps.changeMetadata({
      change: "METADATA_CHANGE_DROP_TABLEGROUP",
      name: plan.name,
      cascade: plan.cascade,
      ifExists: plan.ifExists,
    });
    this.#ctx.forgetTablegroup(plan.name);
    // Its tables' shells on the default shard go with it (best effort: the tablegroup is gone).
    const shells = map.tablesOf(plan.name).map((t) => {
      const dot = t.name.indexOf(".");
      return `${quoteIdent(t.name.slice(0, dot))}.${quoteIdent(t.name.slice(dot + 1))}`;
    });
    if (shells.length) {
      await this.#ctx.relay.collect(query(`DROP TABLE IF EXISTS ${shells.join(", ")}`))
        .catch(() => undefined);
    }
    await this.#ctx.deps.refresh();
    return answerUnit(unit, commandComplete("DROP TABLEGROUP"), IDLE);
  }

  /**
   * DROP INDEX: fanned out to the tablegroup whose shards hold the indexes (looked up in its
   * first shard's catalog), or run on the default shard when no tablegroup has them.
   */
  async dropIndex(
    unit: Message[],
    plan: Extract<Plan, { kind: "drop_index" }>,
    map: ShardMap,
  ): Promise<Uint8Array> {
    const names = plan.indexes.map((i) => literal(`${quoteIdent(i.schema)}.${quoteIdent(i.name)}`));
    const holders: string[] = [];
    for (const tg of map.tablegroups) {
      const shards = map.tablegroup(tg)?.shards ?? [];
      if (!shards.length || !map.tablesOf(tg).length) continue;
      const s = await this.#ctx.session(tg, shards[0]);
      const answer = await s.run(query(
        `SELECT count(*) FROM (VALUES (${names.join("), (")})) AS v(n)
          WHERE pg_catalog.to_regclass(v.n) IS NOT NULL`,
      ));
      if (Number(dataRows(answer)[0]?.[0] ?? 0) > 0) holders.push(tg);
    }
    if (!holders.length) {
      return await this.#ctx.relay.collect(concatBytes(unit.map((m) => m.frame)));
    }
    if (holders.length > 1) {
      throw featureNotSupported(
        `DROP INDEX may not drop indexes of tablegroups ${
          holders.map((h) => `"${h}"`).join(", ")
        } at once`,
      );
    }
    return await this.fanOutDdl(
      unit,
      { kind: "fanout_ddl", tablegroup: holders[0], dropped: [] },
      map,
    );
  }

  /** CREATE/DROP/ALTER DATABASE: Postgres's own statement, with the metadata around it. */
  async databaseDdl(
    unit: Message[],
    plan: Extract<Plan, { kind: "database_ddl" }>,
    _map: ShardMap,
  ): Promise<Uint8Array> {
    const payload = concatBytes(unit.map((m) => m.frame));
    if (this.#ctx.inTransaction()) return await this.#ctx.relay.collect(payload); // Postgres refuses it
    if (plan.op === "create") {
      await this.#ctx.deps.changeMetadata({
        change: "METADATA_CHANGE_CREATE_DATABASE",
        name: plan.name,
        database: plan.name,
      });
      const answer = await this.#ctx.relay.collect(payload).catch((e) => e);
      if (!(answer instanceof Uint8Array) || firstError(splitMessages(answer))) {
        await this.#ctx.deps.changeMetadata({
          change: "METADATA_CHANGE_DROP_DATABASE",
          name: plan.name,
          database: plan.name,
        }).catch(() => undefined);
      }
      await this.#ctx.deps.refresh();
      if (!(answer instanceof Uint8Array)) throw answer;
      return answer;
    }
    if (plan.op === "rename") {
      const other = this.#ctx.deps.mapOf(plan.name);
      if (other?.tablegroups.length) {
        throw featureNotSupported(
          `cannot rename database "${plan.name}": it has tablegroups of its own`,
        );
      }
    }
    const answer = await this.#ctx.relay.collect(payload);
    if (!firstError(splitMessages(answer))) {
      await this.#ctx.deps.changeMetadata({
        change: plan.op === "drop"
          ? "METADATA_CHANGE_DROP_DATABASE"
          : "METADATA_CHANGE_RENAME_DATABASE",
        name: plan.name,
        database: plan.name,
        newName: plan.newName,
      });
    }
    await this.#ctx.deps.refresh();
    return answer;
  }
}

/**
 * SQL that makes every sequence a table owns (serial and identity columns) hand out
 * `index + 1`, `index + 1 + count`, …: shard `index` of `count` never gives an id another gives.
 */
export function interleaveSequencesSql(table: string, index: number, count: number): string {
  return `DO $mg$
DECLARE s regclass;
BEGIN
  FOR s IN SELECT c.oid::regclass
             FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind = 'S'
            WHERE d.classid = 'pg_catalog.pg_class'::regclass
              AND d.refobjid = ${literal(table)}::regclass AND d.deptype IN ('a', 'i')
  LOOP
    EXECUTE format('ALTER SEQUENCE %s INCREMENT BY ${count} START WITH ${index + 1} RESTART', s);
  END LOOP;
END
$mg$`;
}
