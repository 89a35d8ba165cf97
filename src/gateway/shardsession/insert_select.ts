/**
 * `INSERT … SELECT` into a sharded table from a source that reads no table of a tablegroup
 * (`generate_series`, VALUES in FROM, UNION ALL of constants, functions): the SELECT runs once,
 * on the database's default shard in the client's own session (so volatile functions run once,
 * as in Postgres), and its rows become an `INSERT … VALUES` split by row (`split_insert.ts`).
 *
 * Each value goes back as a literal of the type the SELECT gave it (`'…'::type`, the type's
 * text output read by its input function: exact for every built-in type while
 * `extra_float_digits` is at least 1, its default), so the shard's INSERT assigns it to the
 * column as Postgres would have; a bare string literal or NULL at the top of the SELECT goes
 * untyped, as Postgres gives it the column's type. The sharding column's value is hashed as the
 * column's type reads it; a source type whose text the column's type would read differently
 * (an assignment cast that rounds or trims) is refused.
 *
 * @module
 */

import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { ShardingType } from "../../shared/keyspace/mod.ts";
import { literal } from "../../shared/sql/mod.ts";
import { BackendCode, parseErrorFields } from "../../shared/wire/mod.ts";
import { describeColumns } from "../merge/rows.ts";
import type { InsertSource, InsertSplit } from "../planner/mod.ts";
import { body, dataRows, errorFrame, type Message, splitMessages } from "./messages.ts";

/** The most row data a source may give (its rows are held while the shards insert them). */
export const MAX_SOURCE_BYTES = 64 << 20;

/** A source's answer on the default shard: its columns' types and its rows (text). */
export interface SourceAnswer {
  types: { oid: number; modifier: number }[];
  rows: (string | null)[][];
}

/**
 * The source's answer read from the default shard's `answer` to its SELECT; an ErrorResponse
 * frame (the SELECT's own error, its position moved to where the SELECT is in the statement)
 * when it failed.
 */
export function readSource(
  answer: Uint8Array,
  source: InsertSource,
): SourceAnswer | { error: Uint8Array } {
  const msgs = splitMessages(answer);
  const failed = msgs.find((m) => m.code === BackendCode.ErrorResponse);
  if (failed) return { error: movedError(failed, source.offset) };
  const desc = msgs.find((m) => m.code === BackendCode.RowDescription);
  if (!desc) {
    return { error: errorFrame(new PgError(SqlState.SYNTAX_ERROR, "the SELECT returned no rows")) };
  }
  let bytes = 0;
  for (const m of msgs) if (m.code === BackendCode.DataRow) bytes += m.frame.length;
  if (bytes > MAX_SOURCE_BYTES) {
    return {
      error: errorFrame(
        new PgError(
          SqlState.PROGRAM_LIMIT_EXCEEDED,
          `INSERT … SELECT into a sharded table may give at most ${
            MAX_SOURCE_BYTES >> 20
          } MB of rows`,
          { hint: "Insert the rows in parts, or load them with COPY." },
        ),
      ),
    };
  }
  return {
    types: describeColumns(desc.frame).map((c) => ({
      oid: c.typeOid,
      modifier: c.typeModifier ?? -1,
    })),
    rows: dataRows(answer),
  };
}

/** An ErrorResponse with its position moved by `offset` characters. */
function movedError(m: Message, offset: number): Uint8Array {
  const err = parseErrorFields(body(m));
  if (err.position === undefined || offset === 0) return m.frame;
  // A negative offset: the SELECT ran as other text than the client's; no position at all.
  const position = offset < 0 ? undefined : err.position + offset;
  return errorFrame(new PgError(err.sqlstate, err.message, { ...err, position }));
}

/** Built-in types' names by `oid/modifier` (their names never change). */
const builtinNames = new Map<string, string>();
/** OIDs below this are Postgres's own (FirstNormalObjectId). */
const FIRST_USER_OID = 16384;

const typeKey = (t: { oid: number; modifier: number }) => `${t.oid}/${t.modifier}`;

/**
 * The query that names the source's column types (`format_type`), or null when every name is
 * known already; read its answer with {@linkcode typeNames}.
 */
export function typeNamesQuery(types: SourceAnswer["types"]): string | null {
  const unknown = types.filter((t) => !builtinNames.has(typeKey(t)));
  if (!unknown.length) return null;
  return "SELECT " +
    unknown.map((t) => `pg_catalog.format_type(${t.oid}, ${t.modifier})`).join(", ");
}

/** The names of `types`, from the answer to {@linkcode typeNamesQuery} (null: none needed). */
export function typeNames(types: SourceAnswer["types"], answer: Uint8Array | null): string[] {
  const fresh = new Map<string, string>();
  if (answer !== null) {
    const failed = splitMessages(answer).find((m) => m.code === BackendCode.ErrorResponse);
    if (failed) throw parseErrorFields(body(failed));
    const unknown = types.filter((t) => !builtinNames.has(typeKey(t)));
    const row = dataRows(answer)[0] ?? [];
    unknown.forEach((t, i) => {
      const name = row[i];
      if (name === null || name === undefined) return;
      fresh.set(typeKey(t), name);
      if (t.oid < FIRST_USER_OID) builtinNames.set(typeKey(t), name);
    });
  }
  return types.map((t) => {
    const name = builtinNames.get(typeKey(t)) ?? fresh.get(typeKey(t));
    if (name === undefined) {
      throw new PgError(SqlState.INTERNAL_ERROR, `no name for the type of OID ${t.oid}`);
    }
    return name;
  });
}

/** Source types whose text a sharding column of each type reads as the assignment would. */
const SAME_KEY: Record<ShardingType, readonly number[]> = {
  int2: [21],
  int4: [21, 23],
  int8: [20, 21, 23],
  numeric: [20, 21, 23, 1700],
  text: [25, 1043, 19],
  uuid: [2950],
};

/**
 * The split INSERT of the source's rows, or a 0A000 error when the sharding column's source
 * type could hash differently from what the column stores.
 */
export function sourceSplit(
  source: InsertSource,
  answer: SourceAnswer,
  names: string[],
  keyType: ShardingType,
): InsertSplit {
  const k = source.column;
  if (k >= answer.types.length) {
    // The INSERT names more columns than the SELECT gives: the shard's Postgres says so.
    throw new PgError(SqlState.SYNTAX_ERROR, "INSERT has more target columns than expressions");
  }
  if (!source.untyped[k] && !SAME_KEY[keyType].includes(answer.types[k].oid)) {
    throw new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `INSERT … SELECT into a sharded table gives sharding column "${source.columnName}" a value of type ${
        names[k]
      }, which is not supported`,
      { hint: `Cast the value to the column's type (${keyType}) in the SELECT.` },
    );
  }
  const cast = names.map((n, i) => (source.untyped[i] ? "" : `::${n}`));
  return {
    head: source.head + "VALUES ",
    rows: answer.rows.map((row) => ({
      text: "(" +
        row.map((v, i) => (v === null ? "NULL" : literal(v)) + cast[i]).join(", ") + ")",
      key: { literal: row[k] },
    })),
    tail: source.tail,
    returning: source.returning,
    maySkipRows: source.maySkipRows,
  };
}

/**
 * The statement for a source without rows: an INSERT of none, typed as the SELECT was, so that
 * a shard answers `INSERT 0 0` (and the RETURNING list's RowDescription).
 */
export function emptyInsert(source: InsertSource, names: string[]): string {
  const nulls = names.map((n, i) => (source.untyped[i] ? "NULL" : `NULL::${n}`));
  return `${source.head}SELECT ${nulls.join(", ")} WHERE false${source.tail}`;
}
