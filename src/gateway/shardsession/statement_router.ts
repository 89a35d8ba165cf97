import {
  featureNotSupported,
  PgError,
  SqlState,
  toPgError,
  withSeverity,
} from "../../shared/errors/mod.ts";
import type { ChangeMetadataRequest, TwoPhaseDecision } from "../../shared/grpc/types.ts";
import { CloseReason, ReservationReason } from "../../shared/grpc/types.ts";
import {
  concatBytes,
  FrontendCode,
  parseErrorFields,
  readCString,
  SYNC,
  TxStatus,
} from "../../shared/wire/mod.ts";
import type { ShardMap } from "../router/shard_map.ts";
import type { Plan } from "../planner/types.ts";
import type { SessionBackend } from "../session/handler.ts";
import { DdlRunner, isMissingShell } from "./ddl_runner.ts";
import { CopyRunner, simpleOnly } from "./copy_runner.ts";
import {
  answerUnit,
  body,
  closeStatement,
  commandComplete,
  errorFrame,
  firstError,
  type Message,
  query,
  readyForQuery,
  splitMessages,
  withReadyStatus,
} from "./messages.ts";
import { mergeAnswers } from "../merge/mod.ts";
import {
  type CopyCheck,
  type InsertSource,
  type InsertSplit,
  type MergeSpec,
  tokenize,
} from "../planner/mod.ts";
import {
  columnCount,
  type MergeLookup,
  mergeOf,
  readParse,
  rewriteExtended,
  rewriteParse,
  rewriteQuery,
} from "./merged_unit.ts";
import { ShardSession, type ShardSessionOptions } from "./shard_session.ts";
import {
  answerAtBind,
  extendedAnswer,
  inlineParams,
  inlineSplit,
  rowsByShard,
  shardQuery,
  type ShardRows,
  splitAnswers,
} from "./split_insert.ts";
import { copyOutAnswer } from "./merged_copy.ts";
import {
  checkExact,
  CLOSE_SOURCE,
  declareSource,
  emptyInsert,
  settingsQuery,
  SourceRows,
  sourceSplit,
  typeNames,
  typeNamesQuery,
} from "./insert_select.ts";
import { commitTwoPhase, newGid, twoPhaseDeps, type TwoPhaseParticipant } from "./two_phase.ts";
import {
  type BindInfo,
  commandTagOf,
  concatAnswers,
  dropPrepended,
  EMPTY,
  endsWithSync,
  errorAnswerFor,
  formatOf,
  isFlushed,
  keyIds,
  parseBind,
  ROLLBACK,
  samePlanTarget,
  statementText as statementTextOf,
  undefinedTablegroup,
} from "./units.ts";

const { Idle: IDLE, InTransaction: IN_TX, Failed: FAILED } = TxStatus;
/** The database's default tablegroup's shard, as a transaction block's participant. */
const DEFAULT = "default";
/** How long a shard session's opening is tried again while its shard has no reachable primary. */
const OPEN_RETRY_MS = 15_000;
const OPEN_RETRY_STEP_MS = 200;

/** What the statement router needs from the rest of the gateway. */
export interface ShardingDeps {
  /** The session's database's shard map (null: unknown database). */
  map(): ShardMap | null;
  /** Another database's shard map (null: unknown database). */
  mapOf(database: string): ShardMap | null;
  /** Plans a statement against `map` (cached by text and map version). */
  plan(sql: string, map: ShardMap): Plan;
  routeShard(tablegroup: string, shard: string): Promise<SessionBackend>;
  /** Makes sure the session's role exists on a shard's server (copied from the default's). */
  ensureRole(tablegroup: string, shard: string): Promise<void>;
  newDataPlaneId(): number;
  /** `database` defaults to the session's. */
  changeMetadata(
    req: Omit<ChangeMetadataRequest, "user" | "database"> & { database?: string },
  ): Promise<void>;
  /** Fetches the metadata again (after a change). */
  refresh(): Promise<void>;
  /** Shards of the tablegroup without a serving primary now. */
  missingShards(tablegroup: string, shards: readonly string[], database?: string): string[];
  /** See Router.decideTwoPhase. */
  decideTwoPhase(
    gid: string,
    decision: TwoPhaseDecision,
    participants: string[],
    deadline: number,
  ): Promise<TwoPhaseDecision>;
  /** Forgets a finished two-phase commit's decision. */
  forgetTwoPhase(gid: string): Promise<void>;
  /** Logs a warning (what a two-phase commit leaves for the recovery). */
  warn(message: string, fields: Record<string, unknown>): void;
}

/** The client session's own relay to its database's default shard. */
export interface DefaultRelay {
  /** Runs `payload` on the default shard and resolves with its whole answer (not sent on). */
  collect(payload: Uint8Array): Promise<Uint8Array>;
  /** ReservationReason bits of the default session now. */
  reserved(): number;
  /** The status byte of the default session's last ReadyForQuery ('I', 'T' or 'E'). */
  status(): number;
  /** Resolves once the relay has answered everything sent to it. */
  idle(): Promise<void>;
  /** Writes bytes to the client now, after what is queued (answers streamed from a shard). */
  send(bytes: Uint8Array): void;
  /** Resolves once everything queued for the client so far is written (or it is gone). */
  written(): Promise<void>;
  /**
   * The value the server last reported (ParameterStatus) of client_encoding or
   * standard_conforming_strings, in any answer of the session.
   */
  parameter(name: string): string | undefined;
}

/** A named or unnamed statement whose plan sends it elsewhere than the default shard. */
interface Statement {
  sql: string;
  plan: Plan;
  /** Its Parse message, sent again to every shard that does not have it yet. */
  parse: Uint8Array;
}

/**
 * Routes a client session's statements when its database has tablegroups of its own: each unit
 * (a Query, or extended-protocol messages up to Sync) is planned; the default shard's go through
 * the session's relay, the others run on per-shard sessions, whose answers come back here to be
 * passed on or concatenated. Transactions stay on one shard; new DDL is carried out here.
 */
export class StatementRouter {
  readonly #deps: ShardingDeps;
  readonly #relay: DefaultRelay;
  readonly #opts: ShardSessionOptions;
  readonly #sessions = new Map<string, ShardSession>();
  /** Named statements (and "" for the unnamed one) planned elsewhere than the default shard. */
  readonly #statements = new Map<string, Statement>();
  /** SET/RESET units, replayed on each shard session when it opens. */
  #settings: Uint8Array[] = [];
  /**
   * In a transaction block: where it touched tables ("default", or tablegroup/shard), in the
   * order it got there. Two or more commit with two-phase commit.
   */
  readonly #participants = new Set<string>();
  /** The unit that began the transaction block, replayed on each shard it goes to. */
  #begin: Uint8Array | null = null;
  /**
   * SAVEPOINT, RELEASE, ROLLBACK TO and transaction-scoped SET units of the block (SET LOCAL,
   * SET TRANSACTION, SET CONSTRAINTS), replayed in order on a shard that joins it.
   */
  #savepoints: Uint8Array[] = [];
  /** A statement was refused inside the transaction block: it is failed until it ends. */
  #failed = false;
  /**
   * A unit the client flushed before its Sync runs on this shard session: the rest of its
   * messages go there too, its answers stream to the client as they come.
   */
  #sticky: ShardSession | null = null;
  /** A flushed unit went to the default shard: what follows up to its Sync goes there too. */
  #defaultUntilSync = false;
  /** After an error in a flushed unit: messages are skipped up to the Sync, as Postgres does. */
  #discarding = false;

  /** The DDL the gateway carries out itself, with this session's shard sessions. */
  readonly #ddl: DdlRunner;
  /** COPY on tablegroup tables, with this session's shard sessions. */
  readonly #copy: CopyRunner;

  constructor(deps: ShardingDeps, relay: DefaultRelay, opts: ShardSessionOptions) {
    this.#deps = deps;
    this.#relay = relay;
    this.#opts = opts;
    this.#ddl = new DdlRunner({
      deps,
      relay,
      database: opts.database,
      inTransaction: () => this.#inTransaction(),
      session: (tg, shard) => this.#session(tg, shard),
      forgetTablegroup: (name) => {
        for (const [key, s] of this.#sessions) {
          if (key.startsWith(`${name}/`)) {
            s.close();
            this.#sessions.delete(key);
          }
        }
      },
    });
    this.#copy = new CopyRunner({
      relay,
      inTransaction: () => this.#inTransaction(),
      session: (tg, shard) => this.#session(tg, shard),
      join: (tg, shard) => this.#join(tg, shard),
      commitSeveral: async (unit, tg, shards, sessions) => {
        const parts = shards.map((shard, i) => this.#participant(tg, shard, sessions[i]));
        const outcome = await commitTwoPhase(parts, newGid(), twoPhaseDeps(this.#deps));
        return outcome.committed ? null : this.#failedCommit(unit, outcome.error);
      },
      failBlock: () => {
        this.#failed = true;
      },
    });
  }

  /**
   * "in" while a COPY FROM STDIN runs on shards: the client's messages go to `copyData()`, not
   * `route()` (CopyData, CopyDone, CopyFail, Flush and Sync; any other fails the COPY);
   * "discard" after one failed before its data ended: CopyData, CopyDone and CopyFail go there
   * to be dropped; null otherwise.
   */
  get copyMode(): "in" | "discard" | null {
    return this.#copy.mode;
  }

  /**
   * Whole client messages while `copyMode` is set: resolves once the shards took them (flow
   * control), with nothing or with the answer that ends the COPY.
   */
  copyData(bytes: Uint8Array): Promise<Uint8Array> {
    return this.#copy.data(bytes);
  }

  /** Whether a unit needs planning at all: the database has tables outside `default`. */
  get active(): boolean {
    return !!this.#deps.map()?.hasTablegroupTables || this.#sessions.size > 0 ||
      this.#statements.size > 0;
  }

  #inTransaction(): boolean {
    return (this.#relay.reserved() & ReservationReason.TRANSACTION) !== 0;
  }

  /**
   * Decides where `unit` goes: null means the default shard, as it is (the caller relays it);
   * otherwise the promise of the answer to send the client.
   */
  route(unit: Message[]): Promise<Uint8Array> | null {
    this.#copy.endDiscard();
    if (this.#discarding) return Promise.resolve(this.#discard(unit));
    if (this.#sticky) return this.#continueSticky(this.#sticky, unit);
    if (this.#defaultUntilSync) {
      // A flushed unit went to the default shard: the rest of it, up to its Sync, follows.
      if (endsWithSync(unit)) this.#defaultUntilSync = false;
      return null;
    }
    const map = this.#deps.map();
    if (!map) return null;
    const answer = this.#routePlanned(unit, map);
    if (answer === null && isFlushed(unit)) this.#defaultUntilSync = true;
    return answer;
  }

  #routePlanned(unit: Message[], map: ShardMap): Promise<Uint8Array> | null {
    // The default shard's part of the block failed (its answer went straight to the client):
    // the whole block is failed, on the shards too.
    // (Only while the block is also on a shard: a block on the default shard alone is Postgres's
    // own to answer, failed or not.)
    const onShards = this.#onShards();
    if (onShards) this.#noteDefaultFailure();
    if (onShards && !this.#inTransaction()) {
      // The block ended where the gateway did not see it: its shards' parts are rolled back.
      this.#abandonShards();
    }
    const unreadable = map.hasTablegroupTables && !this.#failed ? this.#unreadable(unit) : null;
    if (unreadable) return Promise.resolve(this.#refuse(unit, unreadable));
    let plan: Plan;
    let binds: BindInfo[] = [];
    try {
      const p = this.#planUnit(unit, map);
      if (!p) {
        if (this.#failed) return Promise.resolve(this.#abortedAnswer(unit));
        if (this.#inTransaction() && runsSomething(unit)) this.#participants.add(DEFAULT);
        return null;
      }
      plan = p.plan;
      binds = p.binds;
    } catch (e) {
      return Promise.resolve(this.#refuse(unit, toPgError(e)));
    }
    if (plan.kind === "default") {
      if (this.#failed) return Promise.resolve(this.#abortedAnswer(unit));
      if (plan.controlsTransaction && this.#onShards()) {
        return Promise.resolve(this.#refuse(
          unit,
          featureNotSupported(
            "a query string with several statements cannot end a transaction block that is on several shards",
            { hint: "Send COMMIT or ROLLBACK as a statement of its own." },
          ),
        ));
      }
      const touches = plan.touchesTables !== false;
      const inTx = this.#inTransaction();
      const first = inTx ? this.#participants.values().next().value : undefined;
      if (!touches && first !== undefined && !this.#participants.has(DEFAULT)) {
        // Catalogs are on every shard: the block's first shard answers, so that an error (or a
        // write a function makes) belongs to a block that commits.
        const home = this.#sessions.get(first);
        if (home && !home.closed) {
          return this.#relay.idle().then(() => this.#runOn(home, unit))
            .then((answer) => {
              if (firstError(splitMessages(answer))) this.#failed = true;
              return answer;
            })
            .catch((e) => this.#refuse(unit, toPgError(e)));
        }
      }
      // Whatever runs on the default shard in a block (a function may write) makes it a part.
      if (inTx) this.#participants.add(DEFAULT);
      return null;
    }
    if (plan.kind === "transaction") return this.#transaction(unit, plan.op);
    if (this.#failed) return Promise.resolve(this.#abortedAnswer(unit));
    if (plan.kind === "session_setting") return this.#setting(unit);
    // Whatever runs elsewhere starts once the relay's answers before it are out (and not when
    // the default shard failed the block meanwhile).
    return this.#relay.idle().then(() => {
      this.#noteDefaultFailure();
      return this.#failed ? this.#abortedAnswer(unit) : this.#run(unit, plan, binds, map);
    }).catch((e) => this.#refuse(unit, toPgError(e)));
  }

  /** A failure of the default shard's part of the block fails the whole block. */
  #noteDefaultFailure(): void {
    if (!this.#failed && this.#relay.status() === FAILED && this.#inTransaction()) {
      this.#failed = true;
    }
  }

  /** Whether the transaction block is on a shard other than the default one. */
  #onShards(): boolean {
    for (const k of this.#participants) if (k !== DEFAULT) return true;
    return false;
  }

  /** The shards (not the default one) the transaction block is on. */
  #shardKeys(): string[] {
    return [...this.#participants].filter((k) => k !== DEFAULT);
  }

  /** Closes the block's shard sessions (their poolers roll back) and forgets the block. */
  #abandonShards(): void {
    for (const k of this.#shardKeys()) {
      this.#sessions.get(k)?.close();
      this.#sessions.delete(k);
    }
    this.#endTransaction();
  }

  /** The messages of a flushed unit up to its Sync, on the shard that runs it. */
  async #continueSticky(s: ShardSession, unit: Message[]): Promise<Uint8Array> {
    const { payload, dropped } = this.#prepare(s, unit);
    this.#sinkTo(s, dropped);
    if (!endsWithSync(unit)) {
      s.send(payload);
      return EMPTY;
    }
    try {
      await s.run(payload);
    } finally {
      s.sink = null;
      this.#sticky = null;
    }
    return EMPTY;
  }

  /** Skips what follows an error in a flushed unit, answering its Sync. */
  #discard(unit: Message[]): Uint8Array {
    if (!endsWithSync(unit)) return EMPTY;
    this.#discarding = false;
    return readyForQuery(this.#inTransaction() ? (this.#failed ? FAILED : IN_TX) : IDLE);
  }

  /** Ends every shard session (the pooler rolls back what is open there). */
  close(reason: number = CloseReason.TERMINATE): void {
    for (const s of this.#sessions.values()) s.close(reason);
    this.#sessions.clear();
  }

  /** Cancels what the shard sessions run (a client's CancelRequest). */
  cancel(): void {
    for (const s of this.#sessions.values()) s.cancel();
  }

  // ---- planning ----

  /**
   * The plan of a unit, or null when nothing in it goes anywhere but the default shard. In an
   * extended-protocol unit, every statement named must agree.
   */
  #planUnit(unit: Message[], map: ShardMap): { plan: Plan; binds: BindInfo[] } | null {
    if (unit.length === 1 && unit[0].code === FrontendCode.Query) {
      const sql = readCString(body(unit[0]), 0)[0];
      return { plan: this.#deps.plan(sql, map), binds: [] };
    }
    let plan: Plan | null = null;
    const binds: BindInfo[] = [];
    const consider = (p: Plan) => {
      if (p.kind === "default" && !plan) return;
      if (plan && plan.kind !== "default" && !samePlanTarget(plan, p)) {
        throw featureNotSupported(
          "an extended-protocol batch may not mix statements of several tablegroups before a Sync",
        );
      }
      if (p.kind !== "default" || !plan) plan = p;
    };
    for (const m of unit) {
      if (m.code === FrontendCode.Parse) {
        const [name, at] = readCString(body(m), 0);
        const sql = readCString(body(m), at)[0];
        const p = this.#deps.plan(sql, map);
        const merge = mergeOf(p);
        if (p.kind === "default") this.#statements.delete(name);
        else if (merge) {
          // Prepared on the shards as the rewritten statement the merge reads.
          this.#statements.set(name, {
            sql: merge.sql,
            plan: p,
            parse: rewriteParse(m, merge).frame,
          });
        } else this.#statements.set(name, { sql, plan: p, parse: m.frame.slice() });
        consider(p);
      } else if (m.code === FrontendCode.Bind) {
        const b = parseBind(body(m));
        const st = this.#statements.get(b.statement);
        if (st) {
          binds.push(b);
          consider(st.plan);
        }
      } else if (m.code === FrontendCode.Describe || m.code === FrontendCode.Close) {
        const kind = body(m)[0];
        const name = readCString(body(m), 1)[0];
        if (kind === 0x53 /* S */) {
          const st = this.#statements.get(name);
          if (st) consider(st.plan);
          if (m.code === FrontendCode.Close) {
            // Closed where the unit goes; on the other shards it is closed when next needed.
            for (const s of this.#sessions.values()) if (s.prepared.has(name)) s.stale.add(name);
          }
        }
      }
    }
    return plan ? { plan, binds } : null;
  }

  // ---- running elsewhere ----

  async #run(unit: Message[], plan: Plan, binds: BindInfo[], map: ShardMap): Promise<Uint8Array> {
    if (isFlushed(unit) && plan.kind !== "keyed" && plan.kind !== "scatter") {
      throw featureNotSupported("this statement cannot be flushed before its Sync here");
    }
    if (plan.kind !== "refused") this.#checkEncoding(unit, plan, binds);
    if (
      plan.kind !== "keyed" && plan.kind !== "scatter" && plan.kind !== "refused" &&
      !unit.some((m) => m.code === FrontendCode.Execute || m.code === FrontendCode.Query)
    ) {
      // DDL the gateway carries out runs at its Execute: a Parse or Describe of it (a driver
      // preparing it) is answered here, and nothing runs yet.
      return answerUnit(unit, EMPTY, this.#inTransaction() ? IN_TX : IDLE);
    }
    switch (plan.kind) {
      case "refused":
        return this.#refuse(
          unit,
          new PgError(plan.sqlstate ?? SqlState.FEATURE_NOT_SUPPORTED, plan.message, {
            position: plan.position,
          }),
        );
      case "keyed":
      case "scatter": {
        const answer = await this.#dataStatement(unit, plan, binds, map);
        // An error on any shard fails the whole block, as an error fails a Postgres block.
        if (this.#inTransaction() && firstError(splitMessages(answer))) this.#failed = true;
        return answer;
      }
      case "copy_in":
        return await this.#copy.copyIn(unit, plan, map);
      case "copy_out":
        if (plan.merged !== undefined) return await this.#copyMerged(unit, plan, map);
        return await this.#copy.copyOut(unit, plan, map);
      case "fanout_ddl":
      case "create_table":
        return await this.#ddl.fanOutDdl(unit, plan, map);
      case "create_tablegroup":
        return await this.#ddl.createTablegroup(unit, plan);
      case "drop_tablegroup":
        return await this.#ddl.dropTablegroup(unit, plan, map);
      case "drop_index":
        return await this.#ddl.dropIndex(unit, plan, map);
      case "database_ddl":
        return await this.#ddl.databaseDdl(unit, plan, map);
      default:
        throw featureNotSupported(`statement not supported here (${plan.kind})`);
    }
  }

  /** The shards a keyed or scattered statement goes to. */
  #targets(plan: Plan, binds: BindInfo[], map: ShardMap): string[] {
    if (plan.kind === "scatter") {
      const tg = map.tablegroup(plan.tablegroup);
      if (!tg) throw undefinedTablegroup(plan.tablegroup);
      return tg.shards;
    }
    if (plan.kind !== "keyed") return [];
    const out = new Set<string>();
    for (const key of plan.keys) {
      for (const id of keyIds(key, plan.type, binds)) {
        const shard = map.shardFor(plan.tablegroup, id);
        if (shard) out.add(shard);
      }
    }
    if (!out.size) {
      // Only NULL keys: no row can match; any one shard answers with the right shape.
      const tg = map.tablegroup(plan.tablegroup);
      if (!tg) throw undefinedTablegroup(plan.tablegroup);
      out.add(tg.shards[0]);
    }
    return [...out];
  }

  async #dataStatement(
    unit: Message[],
    plan: Extract<Plan, { kind: "keyed" | "scatter" }>,
    binds: BindInfo[],
    map: ShardMap,
  ): Promise<Uint8Array> {
    const inTx = this.#inTransaction();
    if (
      plan.kind === "keyed" && plan.source !== undefined &&
      unit.some((m) => m.code === FrontendCode.Query || m.code === FrontendCode.Execute)
    ) {
      return await this.#insertSelect(unit, plan, plan.source, binds[0], map, inTx);
    }
    let shards = this.#targets(plan, binds, map);
    if (plan.kind === "keyed" && plan.split !== undefined) {
      // An INSERT of several rows: whole where its rows all go to one shard, else cut by row.
      const split = plan.split;
      if (unit.length === 1 && unit[0].code === FrontendCode.Query) {
        const parts = rowsByShard(plan, split, map);
        if (parts.length > 1) return await this.#splitInsert(unit, plan, split, parts, inTx);
        shards = [parts[0].shard];
      } else if (!unit.some((m) => m.code === FrontendCode.Execute)) {
        shards = shards.slice(0, 1); // a Parse or Describe: one shard answers it
      } else if (shards.length > 1) {
        return await this.#splitInsertExtended(unit, plan, split, binds[0], map, inTx);
      }
    }
    if (isFlushed(unit) && shards.length > 1 && unit.some((m) => m.code === FrontendCode.Execute)) {
      throw featureNotSupported(
        "a statement on several shards cannot be flushed before its Sync",
      );
    }
    if (shards.length > 1 && unit.filter((m) => m.code === FrontendCode.Execute).length > 1) {
      throw featureNotSupported(
        "several Executes before a Sync may not read from several shards",
      );
    }
    if (plan.merge !== undefined) {
      return await this.#mergedStatement(unit, plan, plan.merge, shards, inTx);
    }
    if (inTx) {
      const sessions: ShardSession[] = [];
      for (const shard of shards) sessions.push(await this.#join(plan.tablegroup, shard));
      if (sessions.length === 1) return await this.#runOn(sessions[0], unit);
      const answers = await Promise.all(sessions.map((s) => this.#runOn(s, unit)));
      return concatAnswers(answers);
    }
    if (isFlushed(unit)) {
      return await this.#runFlushed(await this.#session(plan.tablegroup, shards[0]), unit);
    }
    const sessions = await Promise.all(shards.map((sh) => this.#session(plan.tablegroup, sh)));
    if (sessions.length === 1) return await this.#runOn(sessions[0], unit);
    if (plan.write) {
      const parts = shards.map((shard, i) => ({ shard, session: sessions[i], unit }));
      return await this.#writeOnSeveral(unit, plan.tablegroup, parts, concatAnswers);
    }
    const answers = await Promise.all(sessions.map((s) => this.#runOn(s, unit)));
    return concatAnswers(answers);
  }

  /**
   * A simple-protocol INSERT whose rows belong to several shards: each shard runs it with its
   * own rows, in the transaction block (each shard joining it) or, outside one, atomically as
   * any write on several shards. RETURNING rows come back in VALUES order, so a RETURNING that
   * may skip rows (ON CONFLICT DO NOTHING, DO UPDATE … WHERE) is refused before anything runs.
   */
  async #splitInsert(
    unit: Message[],
    plan: Extract<Plan, { kind: "keyed" }>,
    split: InsertSplit,
    parts: ShardRows[],
    inTx: boolean,
  ): Promise<Uint8Array> {
    if (split.returning && split.maySkipRows) {
      throw featureNotSupported(
        `INSERT of several rows with RETURNING and ON CONFLICT DO NOTHING or DO UPDATE … WHERE into a table of sharded tablegroup "${plan.tablegroup}" is not supported when its rows belong to several shards`,
        { hint: "Insert the rows of each shard in a statement of its own, or drop RETURNING." },
      );
    }
    const combine = (answers: Uint8Array[]) => splitAnswers(answers, parts);
    if (inTx) {
      const sessions: ShardSession[] = [];
      for (const p of parts) sessions.push(await this.#join(plan.tablegroup, p.shard));
      const answers = await Promise.all(
        sessions.map((s, i) => this.#runOn(s, shardQuery(split, parts[i].rows))),
      );
      return combine(answers);
    }
    const sessions = await Promise.all(parts.map((p) => this.#session(plan.tablegroup, p.shard)));
    const work = parts.map((p, i) => ({
      shard: p.shard,
      session: sessions[i],
      unit: shardQuery(split, p.rows),
    }));
    return await this.#writeOnSeveral(unit, plan.tablegroup, work, combine);
  }

  /**
   * An extended-protocol INSERT of several rows whose rows belong to several shards (a driver's
   * bulk insert): the Bind's values are written into the statement as literals
   * (`#boundValues`, `inlineSplit`), the rows go to their shards as for the simple protocol,
   * and the answers become the unit's (`extendedAnswer`).
   */
  async #splitInsertExtended(
    unit: Message[],
    plan: Extract<Plan, { kind: "keyed" }>,
    split: InsertSplit,
    bind: BindInfo | undefined,
    map: ShardMap,
    inTx: boolean,
  ): Promise<Uint8Array> {
    const bound = await this.#boundValues(
      unit,
      bind,
      `INSERT of several rows into a table of sharded tablegroup "${plan.tablegroup}" whose rows belong to several shards`,
    );
    if ("answer" in bound) return bound.answer;
    const inlined = inlineSplit(split, bound.values, bound.names);
    const parts = rowsByShard(plan, inlined, map);
    const whole = splitMessages(query(bound.sql));
    let answer: Uint8Array;
    if (parts.length > 1) answer = await this.#splitInsert(whole, plan, inlined, parts, inTx);
    else {
      const s = inTx
        ? await this.#join(plan.tablegroup, parts[0].shard)
        : await this.#session(plan.tablegroup, parts[0].shard);
      answer = await this.#runOn(s, shardQuery(inlined, parts[0].rows));
    }
    return extendedAnswer(unit, answer);
  }

  /**
   * What an extended-protocol unit binds, to be written into its statement as literals: its one
   * Bind's values (text) and, for each parameter, the type its Parse gave it (null: left to
   * Postgres). Refused (0A000, `what` names the statement) when the unit is not one Bind and one
   * Execute without a row limit before a Sync, or binds or asks for binary.
   */
  async #boundValues(
    unit: Message[],
    bind: BindInfo | undefined,
    what: string,
  ): Promise<
    { sql: string; values: (string | null)[]; names: (string | null)[] } | { answer: Uint8Array }
  > {
    const refuse = (how: string) =>
      featureNotSupported(`${what} is not supported in the extended query protocol ${how}`, {
        hint: "Send the statement in the simple query protocol.",
      });
    const executes = unit.filter((m) => m.code === FrontendCode.Execute);
    if (!endsWithSync(unit)) throw refuse("when executed before a Sync (after a Flush)");
    if (
      bind === undefined || executes.length !== 1 ||
      unit.filter((m) => m.code === FrontendCode.Bind).length !== 1
    ) {
      throw refuse("with several Binds or Executes before a Sync");
    }
    const st = this.#statements.get(bind.statement);
    if (!st) throw refuse("(its statement is unknown)");
    const declared = readParse({ code: FrontendCode.Parse, frame: st.parse }).types;
    // No shard sees this Parse and Bind: their parameter count is checked here, as Postgres
    // checks it at the Bind (its Parse answered, the rest skipped to the Sync).
    let required = declared.length;
    for (const t of tokenize(st.sql)) {
      if (t.kind === "param") required = Math.max(required, Number(t.text.slice(1)));
    }
    if (bind.values.length !== required) {
      const error = errorFrame(
        new PgError(
          SqlState.PROTOCOL_VIOLATION,
          `bind message supplies ${bind.values.length} parameters, but prepared statement "${bind.statement}" requires ${required}`,
        ),
      );
      return { answer: answerAtBind(unit, error, this.#inTransaction() ? FAILED : IDLE) };
    }
    const maxRows = new DataView(executes[0].frame.buffer, executes[0].frame.byteOffset)
      .getInt32(executes[0].frame.length - 4);
    if (maxRows !== 0) throw refuse("with a row limit on its Execute");
    if (bind.formats.some((f) => f !== 0) || bind.resultFormats.some((f) => f !== 0)) {
      throw refuse("with values or results in binary");
    }
    if (unit.some((m) => m.code === FrontendCode.Describe && body(m)[0] === 0x53)) {
      throw refuse("with a Describe of the statement before the Sync");
    }
    const typed = declared.filter((t) => t !== 0).map((oid) => ({ oid, modifier: -1 }));
    const known = typeNames(typed, await this.#collectOrNull(typeNamesQuery(typed)));
    let k = 0;
    const names = declared.map((t) => (t === 0 ? null : known[k++]));
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    const values = bind.values.map((v) => (v === null ? null : decoder.decode(v)));
    return { sql: st.sql, values, names };
  }

  /**
   * An INSERT … SELECT from a constant source (`insert_select.ts`): the SELECT runs on the
   * default shard in the client's session (in its block, which the default shard then is part
   * of), and its rows go to their shards as an INSERT … VALUES, split as any. In the extended
   * protocol, the Bind's values are written into the statement first (its errors then carry no
   * position: the text they would point into is not the client's).
   */
  async #insertSelect(
    unit: Message[],
    plan: Extract<Plan, { kind: "keyed" }>,
    source: InsertSource,
    bind: BindInfo | undefined,
    map: ShardMap,
    inTx: boolean,
  ): Promise<Uint8Array> {
    const simple = unit.length === 1 && unit[0].code === FrontendCode.Query;
    let src = source;
    let whole = unit;
    if (!simple) {
      const bound = await this.#boundValues(
        unit,
        bind,
        `INSERT … SELECT into a table of sharded tablegroup "${plan.tablegroup}"`,
      );
      if ("answer" in bound) return bound.answer;
      const inline = (text: string) => inlineParams(text, bound.values, bound.names);
      src = {
        ...source,
        head: inline(source.head),
        select: inline(source.select),
        tail: inline(source.tail),
        offset: -1,
        // A parameter the Parse left untyped takes the column's type, as an untyped literal.
        untyped: source.untyped.map((u, i) => {
          const n = source.params[i];
          return u || (n !== null && n !== undefined && !bound.names[n - 1]);
        }),
      };
      whole = splitMessages(query(bound.sql));
    }
    const answer = await this.#insertSelectSimple(whole, plan, src, map, inTx);
    return simple ? answer : extendedAnswer(unit, answer);
  }

  async #insertSelectSimple(
    unit: Message[],
    plan: Extract<Plan, { kind: "keyed" }>,
    source: InsertSource,
    map: ShardMap,
    inTx: boolean,
  ): Promise<Uint8Array> {
    // The SELECT runs in a block on the default shard: the client's, or, outside one, a block
    // of its own that commits with the shards' INSERT by two-phase commit (a function the SELECT
    // calls may write), or rolls back.
    if (inTx) this.#participants.add(DEFAULT);
    const status = inTx ? IN_TX : IDLE;
    if (!inTx) {
      const begun = firstError(splitMessages(await this.#relay.collect(query("BEGIN"))));
      if (begun) return answerUnit(unit, begun.frame, IDLE);
    }
    const read = new SourceRows();
    const noticed = (answer: Uint8Array) =>
      read.notices.length ? concatBytes([...read.notices, answer]) : answer;
    try {
      const declare = declareSource(source);
      let failed = read.take(await this.#relay.collect(query(declare.sql)), declare.shift);
      while (!failed && !read.done) {
        failed = read.take(await this.#relay.collect(query(read.fetch())), declare.shift);
      }
      if (failed) {
        // A cursor the server did not fail with (the size limit) is closed now.
        if (inTx) await this.#relay.collect(query(CLOSE_SOURCE)).catch(() => undefined);
        return noticed(answerUnit(unit, failed, status));
      }
      await this.#relay.collect(query(CLOSE_SOURCE));
      const settings = settingsQuery(read.types);
      if (settings) checkExact(read.types, await this.#relay.collect(query(settings)));
      const names = typeNames(read.types, await this.#collectOrNull(typeNamesQuery(read.types)));
      const split = sourceSplit(source, read, names, plan.type);
      let parts: ShardRows[];
      let statements: Message[][];
      let combine = (answers: Uint8Array[]) => splitAnswers(answers, parts);
      if (split.rows.length === 0) {
        const tg = map.tablegroup(plan.tablegroup);
        if (!tg) throw undefinedTablegroup(plan.tablegroup);
        parts = [{ shard: tg.shards[0], rows: [] }];
        statements = [splitMessages(query(emptyInsert(source, names)))];
        combine = (answers) => answers[0];
      } else {
        parts = rowsByShard(plan, split, map);
        statements = parts.map((p) => shardQuery(split, p.rows));
      }
      if (inTx) {
        if (parts.length > 1) {
          return noticed(await this.#splitInsert(unit, plan, split, parts, inTx));
        }
        const s = await this.#join(plan.tablegroup, parts[0].shard);
        return noticed(await this.#runOn(s, statements[0]));
      }
      const sessions = await Promise.all(
        parts.map((p) => this.#session(plan.tablegroup, p.shard)),
      );
      const work = parts.map((p, i) => ({
        shard: p.shard,
        session: sessions[i],
        unit: statements[i],
      }));
      const own: TwoPhaseParticipant = {
        name: `${this.#opts.database}/default/0-inf`,
        run: (sql) => this.#relay.collect(query(sql)),
        finish: (sql) => this.#relay.collect(query(sql)),
      };
      return noticed(await this.#writeOnSeveral(unit, plan.tablegroup, work, combine, own));
    } finally {
      // Still in its own block (the SELECT or a shard failed before the two-phase commit took
      // it over): rolled back.
      if (!inTx && this.#inTransaction()) {
        await this.#relay.collect(ROLLBACK).catch(() => undefined);
      }
    }
  }

  /**
   * `COPY (query) TO STDOUT` whose query needs merging (`merged_copy.ts`): the query is merged
   * as a SELECT is, and its rows written as COPY's lines.
   */
  async #copyMerged(
    unit: Message[],
    plan: Extract<Plan, { kind: "copy_out" }>,
    map: ShardMap,
  ): Promise<Uint8Array> {
    simpleOnly(unit, plan.tablegroup);
    const { plan: inner, sql, layout, check } = plan.merged!;
    const inTx = this.#inTransaction();
    // Postgres checks the COPY's options (and the query) on a COPY of none of its rows.
    const checked = firstError(splitMessages(await this.#relay.collect(query(check.sql))));
    // (A table made before the default shard kept shells has none there: not checked then.)
    if (checked && !(isMissingShell(checked) && !inTx)) {
      if (inTx) this.#failed = true;
      return answerUnit(unit, checkedError(checked, check), inTx ? IN_TX : IDLE);
    }
    const shards = this.#targets(inner, [], map);
    const answer = await this.#mergedStatement(
      splitMessages(query(sql)),
      inner,
      inner.merge!,
      shards,
      inTx,
    );
    if (inTx && firstError(splitMessages(answer))) this.#failed = true;
    return copyOutAnswer(answer, layout);
  }

  /** The default shard's answer to `sql` (null for none). */
  async #collectOrNull(sql: string | null): Promise<Uint8Array | null> {
    return sql === null ? null : await this.#relay.collect(query(sql));
  }

  /**
   * A statement whose answers are merged (ORDER BY, LIMIT, aggregates… across shards): each
   * shard runs the rewritten unit (`merged_unit.ts`), and the merge makes one answer of theirs.
   */
  async #mergedStatement(
    unit: Message[],
    plan: Extract<Plan, { kind: "keyed" | "scatter" }>,
    merge: MergeSpec,
    shards: string[],
    inTx: boolean,
  ): Promise<Uint8Array> {
    if (isFlushed(unit)) {
      if (unit.some((m) => m.code === FrontendCode.Execute)) {
        throw featureNotSupported(
          "a statement merged across shards cannot be executed before a Sync (after a Flush)",
        );
      }
      // A Parse and Describe to learn types (postgres.js): answered with a Sync of ours,
      // whose ReadyForQuery is dropped; the next unit is planned afresh, by its Bind.
      const synced = [...unit.slice(0, -1), { code: FrontendCode.Sync, frame: SYNC }];
      const answer = await this.#mergedStatement(synced, plan, merge, shards, inTx);
      return concatBytes(splitMessages(answer).slice(0, -1).map((m) => m.frame));
    }
    const sessions: ShardSession[] = [];
    if (inTx) {
      for (const shard of shards) sessions.push(await this.#join(plan.tablegroup, shard));
    } else {
      sessions.push(...await Promise.all(shards.map((sh) => this.#session(plan.tablegroup, sh))));
    }
    const map = this.#deps.map();
    const lookup: MergeLookup = {
      statement: (name) => {
        const st = this.#statements.get(name);
        return st ? mergeOf(st.plan) : undefined;
      },
      text: (sql) => map ? mergeOf(this.#deps.plan(sql, map)) : undefined,
      columns: (spec) => columnCount(sessions[0], spec),
    };
    const rewritten = unit.length === 1 && unit[0].code === FrontendCode.Query
      ? await rewriteQuery(merge, lookup)
      : await rewriteExtended(unit, lookup);
    const answers = await Promise.all(sessions.map((s) => this.#runOn(s, rewritten.messages)));
    return mergeAnswers(answers, rewritten.script);
  }

  /**
   * The shard's session, in the client's transaction block: a shard the block had not touched
   * yet joins it (its BEGIN and savepoints replayed there).
   */
  async #join(tablegroup: string, shard: string): Promise<ShardSession> {
    const key = `${tablegroup}/${shard}`;
    const s = await this.#session(tablegroup, shard);
    if (this.#participants.has(key)) return s;
    if (!this.#begin) {
      // The block began where the gateway could not see it (a BEGIN among other statements
      // of one query string): it cannot be begun on the shard the same way.
      throw featureNotSupported(
        "this transaction block began in a query string with other statements; a shard cannot join it",
        { hint: "Send BEGIN as a statement of its own." },
      );
    }
    await this.#replay(s, this.#begin);
    for (const u of this.#savepoints) await this.#replay(s, u);
    this.#participants.add(key);
    return s;
  }

  /**
   * A write outside a transaction block that touches several shards: as Postgres makes one
   * statement atomic, it runs in a block on each shard (each its own `unit`: the client's, or
   * its rows of a split INSERT), committed with two-phase commit (or rolled back everywhere when
   * one shard fails it). `combine` makes one answer of the shards' (`concatAnswers`: row counts
   * summed, RETURNING rows concatenated).
   */
  async #writeOnSeveral(
    unit: Message[],
    tablegroup: string,
    work: { shard: string; session: ShardSession; unit: Message[] }[],
    combine: (answers: Uint8Array[]) => Uint8Array,
    also?: TwoPhaseParticipant,
  ): Promise<Uint8Array> {
    const begin = query("BEGIN");
    const begun = await Promise.allSettled(work.map((w) => this.#replay(w.session, begin)));
    const notBegun = begun.find((r) => r.status === "rejected");
    if (notBegun) {
      // No shard may keep a block the client never sees.
      await Promise.all(
        work.map((w, i) =>
          begun[i].status === "fulfilled" ? w.session.run(ROLLBACK).catch(() => undefined) : null
        ),
      );
      throw (notBegun as PromiseRejectedResult).reason;
    }
    const answers = await Promise.all(
      work.map((w) =>
        this.#runOn(w.session, w.unit).catch((e) => errorAnswerFor(w.unit, e, IN_TX))
      ),
    );
    if (answers.some((a) => firstError(splitMessages(a)))) {
      await Promise.all(work.map((w) => w.session.run(ROLLBACK).catch(() => undefined)));
      return withReadyStatus(concatAnswers(answers), IDLE);
    }
    const parts = work.map((w) => this.#participant(tablegroup, w.shard, w.session));
    // `also`: a block of the statement's own elsewhere (the default shard's), committed with it.
    if (also) parts.unshift(also);
    const outcome = await commitTwoPhase(parts, newGid(), twoPhaseDeps(this.#deps));
    if (!outcome.committed) return this.#failedCommit(unit, outcome.error);
    return withReadyStatus(combine(answers), IDLE);
  }

  /**
   * Runs a client unit on one shard session, first sending the Parse of every statement it
   * binds or describes that the shard does not have yet; their ParseCompletes are dropped.
   */
  async #runOn(s: ShardSession, unit: Message[]): Promise<Uint8Array> {
    if (isFlushed(unit)) return await this.#runFlushed(s, unit);
    const { payload, dropped } = this.#prepare(s, unit);
    const answer = await s.run(payload);
    return dropped.parse || dropped.close ? dropPrepended(answer, { ...dropped }) : answer;
  }

  /**
   * A unit the client flushed before its Sync. Without an Execute (a Parse and Describe, to
   * learn types) it runs here with a Sync of ours, whose ReadyForQuery is dropped: the next
   * unit is planned afresh, by its Bind. With an Execute (its shard decided) it stays on that
   * shard up to its Sync, the answers streaming to the client as they come.
   */
  async #runFlushed(s: ShardSession, unit: Message[]): Promise<Uint8Array> {
    if (this.#inTransaction() && unit.some((m) => m.code === FrontendCode.Execute)) {
      // What follows up to the Sync goes to this shard unplanned: it could end the block there
      // alone (a COMMIT), while the block is on other shards too.
      throw featureNotSupported(
        "an Execute flushed before its Sync inside a transaction block is not supported on tables of a tablegroup",
        { hint: "Send Sync after Execute." },
      );
    }
    if (!unit.some((m) => m.code === FrontendCode.Execute)) {
      const head = unit.slice(0, -1);
      const answer = await this.#runOn(s, [...head, { code: FrontendCode.Sync, frame: SYNC }]);
      const msgs = splitMessages(answer);
      return concatBytes(msgs.slice(0, -1).map((m) => m.frame));
    }
    const { payload, dropped } = this.#prepare(s, unit);
    this.#sinkTo(s, dropped);
    this.#sticky = s;
    s.send(payload);
    return EMPTY;
  }

  /** Answers of `s` stream to the client, without the completions of what we prepended. */
  #sinkTo(s: ShardSession, dropped: { parse: number; close: number }): void {
    const drop = { ...dropped };
    s.sink = (frames) => {
      if (drop.parse > 0 || drop.close > 0) frames = dropPrepended(frames, drop);
      if (frames.length) this.#relay.send(frames);
    };
  }

  /**
   * A unit's payload for one shard session: first, for every statement it binds or describes
   * that the shard does not have as the client last parsed it, a Close of the stale one (if
   * any) and its Parse (`dropped`: how many completions of those the answer will hold).
   */
  #prepare(
    s: ShardSession,
    unit: Message[],
  ): { payload: Uint8Array; dropped: { parse: number; close: number } } {
    const pre: Uint8Array[] = [];
    const frames: Uint8Array[] = [];
    const dropped = { parse: 0, close: 0 };
    for (const m of unit) {
      if (m.code === FrontendCode.Parse) {
        const [name, at] = readCString(body(m), 0);
        if (name && s.stale.has(name) && s.prepared.has(name)) {
          // The client closed it on another shard: close it here before it is parsed again.
          pre.push(closeStatement(name));
          dropped.close++;
        }
        s.stale.delete(name);
        s.prepared.set(name, readCString(body(m), at)[0]);
      } else if (m.code === FrontendCode.Bind || m.code === FrontendCode.Describe) {
        const name = m.code === FrontendCode.Bind
          ? readCString(body(m), readCString(body(m), 0)[1])[0]
          : body(m)[0] === 0x53
          ? readCString(body(m), 1)[0]
          : null;
        const st = name === null ? undefined : this.#statements.get(name);
        if (st && name !== null && s.prepared.get(name) !== st.sql) {
          if (name && s.prepared.has(name)) {
            pre.push(closeStatement(name));
            dropped.close++;
          }
          pre.push(st.parse);
          dropped.parse++;
          s.prepared.set(name, st.sql);
        }
      } else if (m.code === FrontendCode.Close && body(m)[0] === 0x53) {
        const name = readCString(body(m), 1)[0];
        s.prepared.delete(name);
        s.stale.delete(name);
      }
      frames.push(m.frame);
    }
    return { payload: concatBytes([...pre, ...frames]), dropped };
  }

  /** The session's pooler session on one shard, opened (with its settings) on first use. */
  async #session(tablegroup: string, shard: string): Promise<ShardSession> {
    const key = `${tablegroup}/${shard}`;
    const have = this.#sessions.get(key);
    if (have && !have.closed) return have;
    if (have?.closed && this.#participants.has(key) && this.#inTransaction()) {
      throw new PgError(
        SqlState.CONNECTION_FAILURE,
        `the transaction's shard ${shard} of tablegroup "${tablegroup}" was lost`,
      );
    }
    let s = await this.#openShard(key, tablegroup, shard);
    if (!s) {
      // A role the shard's server does not have yet: made there as the default server has it.
      await this.#deps.ensureRole(tablegroup, shard);
      s = await this.#openShard(key, tablegroup, shard);
      if (!s) {
        throw new PgError(
          SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
          `role "${this.#opts.user}" does not exist on shard ${shard}`,
        );
      }
    }
    for (const setting of this.#settings) await this.#replay(s, setting);
    this.#sessions.set(key, s);
    return s;
  }

  /**
   * Runs a unit of the client's again on a shard session (its BEGIN, its SETs), answer dropped.
   * Sent in the extended protocol, it replaced the shard's unnamed statement: forgotten here,
   * so the next Bind of the client's unnamed statement parses it there again.
   */
  async #replay(s: ShardSession, payload: Uint8Array): Promise<void> {
    await s.run(payload);
    s.prepared.delete("");
  }

  /** A new shard session, or null when its role does not exist on that server. */
  async #openShard(key: string, tablegroup: string, shard: string): Promise<ShardSession | null> {
    // Opening runs nothing: while the shard's primary is going away (its registration not
    // expired yet) or a failover is under way, try again, up to the failover window.
    const deadline = Date.now() + OPEN_RETRY_MS;
    for (;;) {
      const backend = await this.#deps.routeShard(tablegroup, shard);
      const s = new ShardSession(key, backend, this.#deps.newDataPlaneId());
      try {
        await s.open(this.#opts);
        return s;
      } catch (e) {
        if (e instanceof PgError && e.sqlstate === SqlState.INVALID_AUTHORIZATION_SPECIFICATION) {
          return null;
        }
        const unreachable = e instanceof PgError &&
          (e.sqlstate.startsWith("08") || e.sqlstate === SqlState.CANNOT_CONNECT_NOW);
        if (!unreachable || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, OPEN_RETRY_STEP_MS));
      }
    }
  }

  // ---- transactions and settings ----

  async #transaction(unit: Message[], op: string): Promise<Uint8Array> {
    const payload = concatBytes(unit.map((m) => m.frame));
    const shardKeys = [...this.#participants].filter((k) => k !== DEFAULT);
    const homes = shardKeys.map((k) => this.#sessions.get(k)).filter((s) => s !== undefined);
    const ends = op === "commit" || op === "rollback" || op === "prepare";
    if (op === "begin") {
      if (this.#inTransaction()) {
        // A BEGIN inside a block only warns, in Postgres: the block and its shards stay.
        return homes.length && !this.#participants.has(DEFAULT)
          ? await this.#runOn(homes[0], unit)
          : await this.#relay.collect(payload);
      }
      this.#begin = payload;
      this.#participants.clear();
      this.#savepoints = [];
      this.#failed = false;
      return await this.#relay.collect(payload);
    }
    if (
      shardKeys.length && (op === "commit" || op === "rollback") && /\band\s+chain\b/i.test(
        statementTextOf(unit),
      )
    ) {
      // The shard's next block would begin where the gateway cannot see it.
      return this.#refuse(unit, featureNotSupported("AND CHAIN is not supported on a shard yet"));
    }
    if (this.#failed && (op === "savepoint" || op === "release")) {
      // As Postgres: nothing but ROLLBACK [TO] runs in a failed block.
      return this.#abortedAnswer(unit);
    }
    if (this.#failed && ends) {
      // As Postgres: a failed block ends with ROLLBACK whatever the client says.
      for (const k of shardKeys) {
        this.#sessions.get(k)?.close();
        this.#sessions.delete(k);
      }
      const answer = await this.#relay.collect(ROLLBACK);
      this.#endTransaction();
      const tag = op === "prepare" ? "ROLLBACK" : commandTagOf(answer) ?? "ROLLBACK";
      return answerUnit(unit, commandComplete(tag), IDLE);
    }
    if (!shardKeys.length) {
      const answer = await this.#relay.collect(payload);
      const ok = !firstError(splitMessages(answer));
      if (ends) this.#endTransaction();
      else if (ok) this.#savepoint(op, payload);
      if (op === "rollback_to" && ok) this.#failed = false;
      return answer;
    }
    const several = shardKeys.length + (this.#participants.has(DEFAULT) ? 1 : 0) > 1;
    if (several && op === "commit") return await this.#commitSeveral(unit, shardKeys);
    if (op === "prepare") {
      // Prepared on a shard, it could be finished by no COMMIT PREPARED the gateway can route.
      return this.#refuse(
        unit,
        featureNotSupported(
          "PREPARE TRANSACTION of a transaction on tables of a tablegroup is not supported",
        ),
      );
    }
    // One shard (whose answer the client gets), or a ROLLBACK or savepoint on several.
    const answers = await Promise.all(
      homes.map((s) => s.run(payload).catch((e) => errorAnswerFor(unit, e))),
    );
    // The default shard's block holds nothing of the client's unless it joined: end or mirror
    // it there (a failure there is then logged by the pooler, not the client's).
    const own = await this.#relay.collect(ends ? ROLLBACK : payload).catch((e) =>
      errorAnswerFor(unit, e)
    );
    if (this.#participants.has(DEFAULT) && !ends) answers.push(own);
    const answer = answers.find((a) => firstError(splitMessages(a))) ?? answers[0];
    const ok = !firstError(splitMessages(answer));
    if (ends) this.#endTransaction();
    else if (ok) this.#savepoint(op, payload);
    if (op === "rollback_to" && ok) this.#failed = false;
    return answer;
  }

  /**
   * The gateway reads statements, keys and values as UTF-8. Under another client_encoding, a
   * statement on a tablegroup with bytes beyond ASCII, or one whose rows the gateway reads or
   * rewrites (merged, INSERT … SELECT, merged COPY), is refused rather than hashed or written
   * wrong. (COPY FROM checks its encoding itself, against the server.)
   */
  #checkEncoding(unit: Message[], plan: Plan, binds: BindInfo[]): void {
    const encoding = this.#nonUtf8();
    if (encoding === null) return;
    const rewritten = ((plan.kind === "keyed" || plan.kind === "scatter") &&
      (plan.merge !== undefined || (plan.kind === "keyed" && plan.source !== undefined))) ||
      (plan.kind === "copy_out" && plan.merged !== undefined);
    // A text key bound in binary is text in the client's encoding too.
    const binaryText = plan.kind === "keyed" && plan.type === "text" &&
      binds.some((b) =>
        b.values.some((v, i) => v !== null && formatOf(b, i) === 1 && v.some((x) => x >= 0x80))
      );
    if (rewritten || binaryText) throw encodingRefused(encoding);
  }

  /** The session's client_encoding when it is not one the gateway reads as UTF-8, else null. */
  #nonUtf8(): string | null {
    const encoding = (this.#relay.parameter("client_encoding") ?? "UTF8").toUpperCase();
    return encoding === "UTF8" || encoding === "UNICODE" || encoding === "SQL_ASCII"
      ? null
      : encoding;
  }

  /**
   * Why the planner cannot read a unit's text as the server will, in a database with
   * tablegroups (null: it can): text beyond ASCII under another client_encoding (decoded as
   * UTF-8, a table's name could go unrecognised and the statement to the default shard's
   * shells), or a backslash with standard_conforming_strings off (the planner reads literals as
   * with it on).
   */
  #unreadable(unit: Message[]): PgError | null {
    const encoding = this.#nonUtf8();
    if (encoding !== null && unit.some(hasTextBeyondAscii)) return encodingRefused(encoding);
    if (
      this.#relay.parameter("standard_conforming_strings") === "off" && unit.some(hasBackslash)
    ) {
      return featureNotSupported(
        "in a database with tablegroups, statements with a backslash need standard_conforming_strings on",
        { hint: "SET standard_conforming_strings TO on." },
      );
    }
    return null;
  }

  /** A savepoint unit that succeeded: replayed on every shard that joins the block later. */
  #savepoint(op: string, payload: Uint8Array): void {
    if (op === "savepoint" || op === "release" || op === "rollback_to") {
      this.#savepoints.push(payload);
    }
  }

  /** COMMIT of a block on several shards: two-phase commit, or a rollback everywhere. */
  async #commitSeveral(unit: Message[], shardKeys: string[]): Promise<Uint8Array> {
    const parts: TwoPhaseParticipant[] = shardKeys.map((key) => {
      const [tablegroup, shard] = key.split("/");
      return this.#participant(tablegroup, shard, this.#sessions.get(key)!);
    });
    if (this.#participants.has(DEFAULT)) {
      parts.unshift({
        name: `${this.#opts.database}/default/0-inf`,
        run: (sql) => this.#relay.collect(query(sql)),
        finish: (sql) => this.#relay.collect(query(sql)),
      });
    }
    const outcome = await commitTwoPhase(parts, newGid(), twoPhaseDeps(this.#deps));
    if (!this.#participants.has(DEFAULT)) {
      // The default shard's block holds nothing of the client's: ended there.
      await this.#relay.collect(ROLLBACK).catch(() => undefined);
    }
    this.#endTransaction();
    if (!outcome.committed) return this.#failedCommit(unit, outcome.error);
    return answerUnit(unit, commandComplete("COMMIT"), IDLE);
  }

  /** A shard of a two-phase commit: its block in `s`; what follows the block in any session. */
  #participant(tablegroup: string, shard: string, s: ShardSession): TwoPhaseParticipant {
    return {
      name: `${this.#opts.database}/${tablegroup}/${shard}`,
      run: (sql) => s.run(query(sql)),
      finish: async (sql) => {
        // The block is over there (prepared): a lost session is replaced, not refused.
        const key = `${tablegroup}/${shard}`;
        if (this.#sessions.get(key)?.closed) this.#sessions.delete(key);
        const now = s.closed ? await this.#session(tablegroup, shard) : s;
        return await now.run(query(sql));
      },
    };
  }

  /** The answer to a COMMIT that rolled back: its error, or Postgres's plain ROLLBACK. */
  #failedCommit(unit: Message[], error: Message | PgError | null): Uint8Array {
    if (error === null) return answerUnit(unit, commandComplete("ROLLBACK"), IDLE);
    if (error instanceof PgError) return errorAnswerFor(unit, error, IDLE);
    return answerUnit(unit, error.frame, IDLE);
  }

  #endTransaction(): void {
    this.#participants.clear();
    this.#begin = null;
    this.#savepoints = [];
    this.#failed = false;
  }

  async #setting(unit: Message[]): Promise<Uint8Array> {
    const payload = concatBytes(unit.map((m) => m.frame));
    const answer = await this.#relay.collect(payload);
    if (firstError(splitMessages(answer))) {
      // As in Postgres, a failed statement fails the block, wherever the block's work is.
      if (this.#inTransaction()) this.#failed = true;
      return answer;
    }
    const text = statementTextOf(unit);
    if (/^\s*set\s+(local|transaction|constraints)\b/i.test(text)) {
      // Scoped to the transaction block: it goes with the block to every shard the block is
      // on and joins later, and not to the session's later shard sessions.
      if (!this.#inTransaction()) return answer;
      this.#savepoints.push(payload);
      for (const k of this.#shardKeys()) {
        const s = this.#sessions.get(k);
        if (s && !s.closed) {
          const there = await s.run(payload).catch((e) => errorAnswerFor(unit, e));
          if (firstError(splitMessages(there))) {
            this.#failed = true;
            return there;
          }
          s.prepared.delete("");
        }
      }
      return answer;
    }
    if (/^\s*(discard\s+all|reset\s+all)\b/i.test(text)) {
      // What was set is gone (and with DISCARD ALL every prepared statement, on every shard).
      this.#settings = [];
      if (/^\s*discard/i.test(text)) {
        for (const s of this.#sessions.values()) s.prepared.clear();
        this.#statements.clear();
      }
    }
    this.#settings.push(payload);
    for (const s of this.#sessions.values()) {
      if (!s.closed) await this.#replay(s, payload).catch(() => undefined);
    }
    return answer;
  }

  /** An error for the client; inside a transaction block the block is failed from then on. */
  #refuse(unit: Message[], err: PgError): Uint8Array {
    const inTx = this.#inTransaction();
    if (inTx) this.#failed = true;
    if (isFlushed(unit)) {
      // The client waits for answers before its Sync: the error now, the rest skipped.
      this.#discarding = true;
      return errorFrame(withSeverity(err, "ERROR"));
    }
    return errorAnswerFor(unit, withSeverity(err, "ERROR"), inTx ? IN_TX : IDLE);
  }

  #abortedAnswer(unit: Message[]): Uint8Array {
    return errorAnswerFor(
      unit,
      new PgError(
        SqlState.IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
      ),
      IN_TX,
    );
  }
}

/** Whether a unit runs a statement (not only a Sync, or a Close or Describe of a portal). */
function runsSomething(unit: Message[]): boolean {
  return unit.some((m) =>
    m.code === FrontendCode.Execute || m.code === FrontendCode.Query ||
    m.code === FrontendCode.FunctionCall
  );
}

/** The SQL of a Query or Parse (a Parse's statement name before it), as bytes; else null. */
function sqlBytes(m: Message): Uint8Array | null {
  const b = body(m);
  if (m.code === FrontendCode.Query) return b;
  if (m.code !== FrontendCode.Parse) return null;
  const end = b.indexOf(0, b.indexOf(0) + 1);
  return end < 0 ? b : b.subarray(0, end);
}

/** Whether a message carries text the gateway decodes (SQL, text-format values) beyond ASCII. */
function hasTextBeyondAscii(m: Message): boolean {
  const beyond = (bytes: Uint8Array) => bytes.some((x) => x >= 0x80);
  const sql = sqlBytes(m);
  if (sql !== null) return beyond(sql);
  if (m.code !== FrontendCode.Bind) return false;
  const bind = parseBind(body(m));
  return bind.values.some((v, i) => v !== null && formatOf(bind, i) === 0 && beyond(v));
}

/** The error of a COPY's check, its position moved into the client's statement. */
function checkedError(m: Message, check: CopyCheck): Uint8Array {
  const err = parseErrorFields(body(m));
  const p = err.position;
  if (p === undefined) return m.frame;
  const position = p >= check.tail[0]
    ? p - check.tail[0] + check.tail[1]
    : p >= check.query[0]
    ? p - check.query[0] + check.query[1]
    : undefined;
  return errorFrame(new PgError(err.sqlstate, err.message, { ...err, position }));
}

/** Whether a Query's or Parse's SQL has a backslash (read otherwise without standard strings). */
function hasBackslash(m: Message): boolean {
  return sqlBytes(m)?.includes(0x5c) ?? false;
}

function encodingRefused(encoding: string): PgError {
  return featureNotSupported(
    `in a database with tablegroups, statements with text beyond ASCII, or whose rows the gateway merges or rewrites, need client_encoding UTF8, not ${encoding}`,
    { hint: "SET client_encoding TO 'UTF8' (psql: \\encoding UTF8)." },
  );
}
