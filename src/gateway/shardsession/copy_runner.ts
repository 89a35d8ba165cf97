/**
 * {@linkcode CopyRunner}: COPY on tables of a tablegroup, for one client session's statement
 * router. `COPY … FROM STDIN` runs on every shard of the tablegroup at once (`split_copy.ts`
 * cuts the client's data by row); outside a transaction block it runs in a block of its own on
 * each shard and commits with two-phase commit, inside one each shard joins the client's block.
 * `COPY … TO STDOUT` runs on each shard in turn, its rows streamed to the client.
 *
 * While a COPY FROM runs, the client session hands the client's messages here (`data()`)
 * instead of planning them: CopyData, CopyDone, CopyFail, Flush and Sync, and any other
 * message, which fails the COPY as Postgres fails it. After a COPY that failed before the
 * client's data ended, its remaining CopyData, CopyDone and CopyFail are dropped, as Postgres
 * drops them (`mode` "discard").
 *
 * @module
 */

import { featureNotSupported, PgError, SqlState } from "../../shared/errors/mod.ts";
import { FLOW_ACK_BYTES } from "../../shared/grpc/types.ts";
import { concatBytes, FrontendCode, readCString, TxStatus } from "../../shared/wire/mod.ts";
import { literal, quoteIdent } from "../../shared/sql/mod.ts";
import type { Plan } from "../planner/types.ts";
import type { ShardMap } from "../router/shard_map.ts";
import {
  body,
  commandComplete,
  dataRows,
  errorFrame,
  firstError,
  type Message,
  query,
  readyForQuery,
  splitMessages,
} from "./messages.ts";
import type { ShardSession } from "./shard_session.ts";
import { CopyIn, type CopyInResult, CopyOutJoin } from "./split_copy.ts";
import type { DefaultRelay } from "./statement_router.ts";
import { EMPTY, keyIds, ROLLBACK, statementText, undefinedTablegroup } from "./units.ts";

const { Idle: IDLE, InTransaction: IN_TX, Failed: FAILED } = TxStatus;

/** What COPY needs of the client session's statement router. */
export interface CopyContext {
  relay: DefaultRelay;
  inTransaction(): boolean;
  /** The session's pooler session on one shard (opened on first use). */
  session(tablegroup: string, shard: string): Promise<ShardSession>;
  /** The same, joined to the client's transaction block. */
  join(tablegroup: string, shard: string): Promise<ShardSession>;
  /**
   * Commits the blocks a write opened on these shards with two-phase commit: null once
   * committed, else the answer to `unit` (its error; everything rolled back).
   */
  commitSeveral(
    unit: Message[],
    tablegroup: string,
    shards: string[],
    sessions: ShardSession[],
  ): Promise<Uint8Array | null>;
  /** An error inside the client's transaction block fails the block. */
  failBlock(): void;
}

/** A COPY FROM STDIN under way (`copy` null: failed, the client's data still coming). */
interface CopyRun {
  unit: Message[];
  copy: CopyIn | null;
  tablegroup: string;
  shards: string[];
  sessions: ShardSession[];
  inTx: boolean;
  /** Outside a block, on several shards: each runs it in a block the gateway began. */
  begun: boolean;
}

/** COPY on tables of a tablegroup: see the module doc. */
export class CopyRunner {
  readonly #ctx: CopyContext;
  #run: CopyRun | null = null;

  constructor(ctx: CopyContext) {
    this.#ctx = ctx;
  }

  /** "in": a COPY FROM STDIN takes the client's messages; "discard": it failed, see the doc. */
  get mode(): "in" | "discard" | null {
    return this.#run === null ? null : this.#run.copy === null ? "discard" : "in";
  }

  /** A message other than COPY data came after a failed COPY: it is the client's next. */
  endDiscard(): void {
    if (this.#run?.copy === null) this.#run = null;
  }

  /**
   * Starts `COPY … FROM STDIN` on every shard of the tablegroup: resolves with the
   * CopyInResponse for the client (then `mode` is "in"), or with the unit's error answer.
   */
  async copyIn(
    unit: Message[],
    plan: Extract<Plan, { kind: "copy_in" }>,
    map: ShardMap,
  ): Promise<Uint8Array> {
    simpleOnly(unit, plan.tablegroup);
    const tg = map.tablegroup(plan.tablegroup);
    if (!tg) throw undefinedTablegroup(plan.tablegroup);
    const shards = tg.shards;
    const inTx = this.#ctx.inTransaction();
    const sessions = await this.#sessions(plan.tablegroup, shards, inTx);
    const run: CopyRun = {
      unit,
      copy: null,
      tablegroup: plan.tablegroup,
      shards,
      sessions,
      inTx,
      begun: false,
    };
    let key = null;
    if (plan.column !== null && plan.type !== null) {
      const found = await this.#keyIndex(sessions[0], plan);
      if (found instanceof Uint8Array) return this.#failed(run, found);
      key = { column: plan.column, type: plan.type, index: found };
    }
    if (!inTx && shards.length > 1) {
      const begin = query("BEGIN");
      const begun = await Promise.allSettled(sessions.map((s) => s.run(begin)));
      run.begun = true;
      const notBegun = begun.find((r) => r.status === "rejected");
      if (notBegun) {
        await this.#rollback(run);
        throw (notBegun as PromiseRejectedResult).reason;
      }
      for (const s of sessions) s.prepared.delete("");
    }
    const index = new Map(shards.map((s, i) => [s, i]));
    const copy = new CopyIn(sessions, {
      sql: statementText(unit),
      format: plan.format,
      key,
      shardOf: (id) => index.get(map.shardFor(plan.tablegroup, id) ?? shards[0]) ?? 0,
      relation: plan.table.name,
      notice: (frame) => this.#ctx.relay.send(frame),
    });
    run.copy = copy;
    const response = await copy.start();
    if (response === null) return await this.#ended(run, await copy.finish(), true);
    this.#run = run;
    return response;
  }

  /**
   * Whole client messages during a COPY FROM (see the module doc): resolves once the shards
   * took the data (flow control), with nothing, or with the answer that ends the COPY.
   */
  async data(bytes: Uint8Array): Promise<Uint8Array> {
    const run = this.#run;
    if (run === null) return EMPTY;
    const copy = run.copy;
    for (const m of splitMessages(bytes)) {
      const code = m.code;
      if (copy === null) {
        // Postgres drops the data of a COPY that failed.
        if (code === FrontendCode.CopyDone || code === FrontendCode.CopyFail) this.#run = null;
        continue;
      }
      if (code === FrontendCode.CopyData) {
        try {
          copy.data(body(m));
        } catch (e) {
          if (!(e instanceof PgError)) throw e;
          return await this.#ended(run, await copy.abort(e), false);
        }
      } else if (code === FrontendCode.CopyDone) {
        return await this.#ended(run, await copy.finish(), true);
      } else if (code === FrontendCode.CopyFail) {
        return await this.#ended(run, await copy.fail(readCString(body(m), 0)[0]), true);
      } else if (code !== FrontendCode.Flush && code !== FrontendCode.Sync) {
        // As Postgres: the COPY fails, and the connection ends (the message was not read, so the
        // protocol is out of step).
        const result = await copy.unexpected(code);
        this.#run = null;
        if (result.error) this.#ctx.relay.send(result.error);
        throw new PgError(
          SqlState.PROTOCOL_VIOLATION,
          "terminating connection because protocol synchronization was lost",
          { severity: "FATAL" },
        );
      }
    }
    if (copy === null) return EMPTY;
    const wait = copy.writable();
    if (wait) await wait;
    // A shard refused a row: the COPY ends now (Postgres answers at once, mid-data).
    if (copy.failed) return await this.#ended(run, await copy.finish(), false);
    return EMPTY;
  }

  /**
   * `COPY … TO STDOUT` on each of its shards in turn; the rows stream to the client as they
   * come (each shard's results acknowledged once written, so a slow client slows the shard).
   */
  async copyOut(
    unit: Message[],
    plan: Extract<Plan, { kind: "copy_out" }>,
    map: ShardMap,
  ): Promise<Uint8Array> {
    simpleOnly(unit, plan.tablegroup);
    const tg = map.tablegroup(plan.tablegroup);
    if (!tg) throw undefinedTablegroup(plan.tablegroup);
    let shards = tg.shards;
    if (plan.keyed) {
      const { type, keys } = plan.keyed;
      const owned = new Set<string>();
      for (const k of keys) {
        for (const id of keyIds(k, type, [])) {
          const shard = map.shardFor(plan.tablegroup, id);
          if (shard) owned.add(shard);
        }
      }
      // Only NULL keys: no row can match; one shard answers.
      shards = owned.size ? shards.filter((s) => owned.has(s)) : shards.slice(0, 1);
    }
    const inTx = this.#ctx.inTransaction();
    const sessions = await this.#sessions(plan.tablegroup, shards, inTx);
    const join = new CopyOutJoin(shards.length, plan.format, plan.header);
    const sql = statementText(unit);
    const relay = this.#ctx.relay;
    for (let i = 0; i < sessions.length && join.error === null; i++) {
      const s = sessions[i];
      await new Promise<void>((resolve) => {
        let unacked = 0;
        let acking = false;
        const ack = () => {
          if (acking || unacked < FLOW_ACK_BYTES) return;
          acking = true;
          const n = unacked;
          unacked = 0;
          relay.written().then(() => {
            s.ack(n);
            acking = false;
            ack();
          });
        };
        s.prepared.delete("");
        s.stream({
          message: (code, frame) => {
            join.message(i, code, frame, (bytes) => relay.send(bytes));
            unacked += frame.length;
            ack();
          },
          done: () => {
            s.stream(null);
            s.ack(unacked);
            resolve();
          },
          lost: (err) => {
            join.error ??= errorFrame(err);
            resolve();
          },
        }, { manualAck: true });
        try {
          s.send(query(sql));
        } catch (e) {
          s.stream(null);
          join.error ??= errorFrame(e instanceof PgError ? e : shardError(e));
          resolve();
        }
      });
    }
    if (join.error !== null) {
      // Mid-data, an ErrorResponse ends the client's copy-out, as Postgres ends it.
      if (inTx) this.#ctx.failBlock();
      return concatBytes([join.error, readyForQuery(inTx ? FAILED : IDLE)]);
    }
    return concatBytes([
      join.end(),
      commandComplete(`COPY ${join.rows}`),
      readyForQuery(inTx ? IN_TX : IDLE),
    ]);
  }

  async #sessions(tablegroup: string, shards: string[], inTx: boolean): Promise<ShardSession[]> {
    if (!inTx) return await Promise.all(shards.map((s) => this.#ctx.session(tablegroup, s)));
    const out: ShardSession[] = [];
    for (const shard of shards) out.push(await this.#ctx.join(tablegroup, shard));
    return out;
  }

  /**
   * The sharding column's place among the COPY's columns (without a column list: every column
   * COPY reads, that is neither dropped nor generated), read on a shard with the session's
   * client_encoding, which must be UTF8 (or SQL_ASCII): keys are hashed from UTF-8 bytes. Else
   * the error answer for the client.
   */
  async #keyIndex(
    s: ShardSession,
    plan: Extract<Plan, { kind: "copy_in" }>,
  ): Promise<number | Uint8Array> {
    const rel = literal(
      (plan.table.schema === null ? "" : `${quoteIdent(plan.table.schema)}.`) +
        quoteIdent(plan.table.name),
    );
    const position = plan.keyIndex !== null
      ? "NULL"
      : `(SELECT count(*) FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = ${rel}::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = '' AND a.attnum < (SELECT k.attnum FROM pg_catalog.pg_attribute k
            WHERE k.attrelid = ${rel}::pg_catalog.regclass AND k.attname = ${
        literal(plan.column!)
      }))`;
    const answer = await s.run(
      query(`SELECT pg_catalog.current_setting('client_encoding'), ${position}`),
    );
    s.prepared.delete("");
    const error = firstError(splitMessages(answer));
    if (error) return error.frame.slice();
    const [[encoding, place]] = dataRows(answer);
    if (encoding !== "UTF8" && encoding !== "SQL_ASCII") {
      return errorFrame(
        featureNotSupported(
          `COPY FROM into table "${plan.table.name}" of sharded tablegroup "${plan.tablegroup}" needs client_encoding UTF8, not ${encoding}`,
          { hint: "SET client_encoding TO 'UTF8' (psql: \\encoding UTF8)." },
        ),
      );
    }
    return plan.keyIndex ?? Number(place);
  }

  /** A COPY that failed before it started: the unit's error answer. */
  async #failed(run: CopyRun, error: Uint8Array): Promise<Uint8Array> {
    if (run.inTx) this.#ctx.failBlock();
    if (run.begun) await this.#rollback(run);
    return concatBytes([error, readyForQuery(run.inTx ? FAILED : IDLE)]);
  }

  /**
   * The COPY ended (`dataEnded`: with the client's CopyDone or CopyFail; else the rest of its
   * data is dropped): committed (two-phase outside a block on several shards), or rolled back.
   */
  async #ended(run: CopyRun, result: CopyInResult, dataEnded: boolean): Promise<Uint8Array> {
    this.#run = dataEnded ? null : { ...run, copy: null };
    if (result.error !== null) return await this.#failed(run, result.error);
    if (run.begun) {
      const failure = await this.#ctx.commitSeveral(
        run.unit,
        run.tablegroup,
        run.shards,
        run.sessions,
      );
      if (failure !== null) return failure;
    }
    return concatBytes([
      commandComplete(`COPY ${result.rows}`),
      readyForQuery(run.inTx ? IN_TX : IDLE),
    ]);
  }

  async #rollback(run: CopyRun): Promise<void> {
    await Promise.all(run.sessions.map((s) => s.run(ROLLBACK).catch(() => undefined)));
    for (const s of run.sessions) s.prepared.delete("");
  }
}

/** COPY on tablegroup tables runs from a simple Query only: else 0A000. */
export function simpleOnly(unit: Message[], tablegroup: string): void {
  if (unit.length === 1 && unit[0].code === FrontendCode.Query) return;
  throw featureNotSupported(
    `COPY on tables of tablegroup "${tablegroup}" is only supported in the simple query protocol`,
    { hint: "Send COPY as a simple Query (as psql and postgres.js do)." },
  );
}

function shardError(e: unknown): PgError {
  return new PgError(SqlState.CONNECTION_FAILURE, String(e));
}
