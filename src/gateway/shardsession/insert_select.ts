/**
 * `INSERT … SELECT` into a sharded table from a source that reads no table of a tablegroup
 * (`generate_series`, VALUES in FROM, UNION ALL of constants, functions): the SELECT runs once,
 * on the database's default shard in the client's own session (so volatile functions run once,
 * as in Postgres), and its rows become an `INSERT … VALUES` split by row (`split_insert.ts`).
 *
 * The SELECT is read through a cursor, in batches, so that its size is bounded as it comes
 * (64 MiB of rows), in a block: the client's, or one of its own that commits only if the INSERT
 * did. Each value goes back as a literal of the type the SELECT gave it (`'…'::type`, the
 * type's text output read by its input function), so the shard's INSERT assigns it to the
 * column as Postgres would have; a bare string literal or NULL at the top of the SELECT goes
 * untyped, as Postgres gives it the column's type. Text that would not read back as the same
 * value under the session's settings (timestamptz under a DateStyle other than ISO, floats with
 * `extra_float_digits` below 1) is refused. The sharding column's value is hashed as the
 * column's type reads its text; a source type whose text that type would read otherwise
 * (numeric into bigint) is refused. (A sharding column's type has no modifier that would round
 * or trim it on assignment: CREATE TABLE refuses one.)
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
/** The cursor the source is read through, and the most rows one FETCH takes. */
export const SOURCE_CURSOR = "multigres_insert_source";
const SOURCE_BATCH = 10_000;

/**
 * How the source is read on the default shard: DECLARE a cursor for it, then FETCH it in
 * batches (so that its size is bounded as it comes, not after), then CLOSE it.
 */
export function declareSource(source: InsertSource): { sql: string; shift: number | null } {
  const sql = `DECLARE ${SOURCE_CURSOR} NO SCROLL CURSOR FOR ${source.select}`;
  const head = sql.length - source.select.length;
  return { sql, shift: source.offset < 0 ? null : source.offset - head };
}

export const CLOSE_SOURCE = `CLOSE ${SOURCE_CURSOR}`;

/** A source's answer on the default shard: its columns' types and its rows (text). */
export interface SourceAnswer {
  types: { oid: number; modifier: number }[];
  rows: (string | null)[][];
}

/** The source's rows so far, gathered batch by batch. */
export class SourceRows implements SourceAnswer {
  types: SourceAnswer["types"] = [];
  rows: (string | null)[][] = [];
  /** The NoticeResponses the source's statements gave (a function's RAISE NOTICE). */
  notices: Uint8Array[] = [];
  /** The last FETCH gave fewer rows than it asked for: the source is read. */
  done = false;
  #bytes = 0;
  #largest = 0;
  /** Rows the last FETCH asked for (-1: none asked yet). */
  #asked = -1;
  readonly #max: number;

  constructor(max = MAX_SOURCE_BYTES) {
    this.#max = max;
  }

  /**
   * The next FETCH: one row first, then as many as fit in what is left of the size limit at the
   * largest row seen so far (at most 10,000), so that the gateway never holds much more than
   * the limit.
   */
  fetch(): string {
    const left = Math.max(0, this.#max - this.#bytes);
    this.#asked = this.#largest === 0
      ? 1
      : Math.max(1, Math.min(SOURCE_BATCH, Math.floor(left / this.#largest)));
    return `FETCH FORWARD ${this.#asked} FROM ${SOURCE_CURSOR}`;
  }

  /**
   * Takes the answer to a DECLARE or FETCH: null when it went well (`more`: a FETCH filled its
   * batch), else the ErrorResponse frame for the client: the default shard's own error (its
   * position moved by `shift` characters, or dropped for null), or 54000 past the size limit.
   */
  take(answer: Uint8Array, shift: number | null): Uint8Array | null {
    const msgs = splitMessages(answer);
    for (const m of msgs) if (m.code === BackendCode.NoticeResponse) this.notices.push(m.frame);
    const failed = msgs.find((m) => m.code === BackendCode.ErrorResponse);
    if (failed) return movedError(failed, shift);
    const desc = msgs.find((m) => m.code === BackendCode.RowDescription);
    if (desc && !this.types.length) {
      this.types = describeColumns(desc.frame).map((c) => ({
        oid: c.typeOid,
        modifier: c.typeModifier ?? -1,
      }));
    }
    for (const m of msgs) {
      if (m.code !== BackendCode.DataRow) continue;
      this.#bytes += m.frame.length;
      this.#largest = Math.max(this.#largest, m.frame.length);
    }
    if (this.#bytes > this.#max) {
      return errorFrame(
        new PgError(
          SqlState.PROGRAM_LIMIT_EXCEEDED,
          `INSERT … SELECT into a sharded table may give at most ${
            Math.ceil(this.#max / (1 << 20))
          } MB of rows`,
          { hint: "Insert the rows in parts, or load them with COPY." },
        ),
      );
    }
    const rows = dataRows(answer);
    if (this.#asked >= 0) this.done = rows.length < this.#asked;
    for (const r of rows) this.rows.push(r);
    return null;
  }
}

/**
 * Column types whose text output does not always read back as the same value under the
 * session's settings: timestamptz under a DateStyle other than ISO (zone abbreviations are
 * ambiguous), float4/float8 with `extra_float_digits` below 1 (rounded). The query that reads
 * those settings, or null when the source has no such column.
 */
export function settingsQuery(types: SourceAnswer["types"]): string | null {
  // Anything but types whose text never depends on those settings (ranges and composites of
  // timestamptz or floats, user types) is checked.
  const risky = types.some((t) => !SETTLED.has(t.oid));
  return risky
    ? "SELECT pg_catalog.current_setting('DateStyle'), pg_catalog.current_setting('extra_float_digits')"
    : null;
}

const TIMESTAMPTZ = [1184, 1185];
const FLOATS = [700, 701, 1021, 1022];
/**
 * Types whose text reads back as the same value whatever DateStyle and extra_float_digits are:
 * bool, bytea, name, int8, int2, int4, text, json, xml, jsonb, date, time, timestamp,
 * interval, numeric, uuid, char, varchar, inet, cidr, money, and their arrays.
 */
const SETTLED = new Set([
  16,
  17,
  19,
  20,
  21,
  23,
  25,
  114,
  142,
  3802,
  1082,
  1083,
  1114,
  1186,
  1700,
  2950,
  1042,
  1043,
  869,
  650,
  790,
  1000,
  1001,
  1003,
  1016,
  1005,
  1007,
  1009,
  199,
  143,
  3807,
  1182,
  1183,
  1115,
  1187,
  1231,
  2951,
  1014,
  1015,
  1041,
  651,
  791,
]);

/**
 * Throws 0A000 when a source column would not read back exactly (see settingsQuery): a DateStyle
 * other than ISO, or extra_float_digits below 1, with any column not known to be settled.
 */
export function checkExact(types: SourceAnswer["types"], settings: Uint8Array): void {
  const [dateStyle, digits] = dataRows(settings)[0] ?? [];
  const unsettled = types.filter((t) => !SETTLED.has(t.oid)).map((t) => t.oid);
  // Floats need only the digits, timestamptz only the DateStyle; other types (ranges,
  // composites, user types) both.
  const needsIso = unsettled.filter((o) => !FLOATS.includes(o));
  const needsDigits = unsettled.filter((o) => !TIMESTAMPTZ.includes(o));
  const refuse = (why: string, hint: string) =>
    new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `INSERT … SELECT into a sharded table cannot pass ${why} on exactly`,
      { hint },
    );
  if (needsIso.length && !/^\s*ISO/i.test(dateStyle ?? "")) {
    const what = needsIso.some((o) => TIMESTAMPTZ.includes(o)) ? "timestamptz" : "these";
    throw refuse(
      `${what} values under DateStyle ${dateStyle}`,
      "SET DateStyle TO ISO for this statement.",
    );
  }
  if (needsDigits.length && Number(digits ?? "1") < 1) {
    const what = needsDigits.some((o) => FLOATS.includes(o)) ? "float" : "these";
    throw refuse(
      `${what} values with extra_float_digits ${digits}`,
      "SET extra_float_digits TO 1 (the default) for this statement.",
    );
  }
}

/** An ErrorResponse with its position moved by `shift` characters (null: without one). */
function movedError(m: Message, shift: number | null): Uint8Array {
  const err = parseErrorFields(body(m));
  if (err.position === undefined || shift === 0) return m.frame;
  const position = shift === null ? undefined : err.position + shift;
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

/** The anonymous row type, `record`, and its array. */
const RECORD = 2249;
const RECORD_ARRAY = 2287;

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
  if (answer.types.some((t) => t.oid === RECORD || t.oid === RECORD_ARRAY)) {
    // An anonymous row's text has no input function to read it back ('(1,2)'::record).
    throw new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      "INSERT … SELECT into a sharded table cannot pass on a value of an anonymous row type (record)",
      { hint: "Cast the row to the column's composite type in the SELECT." },
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
