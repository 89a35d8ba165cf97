/**
 * The new DDL, recognised on the statement text before the Postgres grammar sees it (the
 * grammar cannot parse it):
 *
 * - `CREATE TABLEGROUP name [FOR db] [SHARDS n | SHARDS ('0-8', '8-inf')]`
 * - `DROP TABLEGROUP [IF EXISTS] name [CASCADE | RESTRICT]`
 * - `CREATE [UNLOGGED] TABLE [IF NOT EXISTS] [schema.]t (…) IN tg [SHARD BY (column)] […]`
 *
 * Keywords are case-insensitive and identifiers folded to lower case unless double-quoted, as
 * Postgres does. Errors are thrown as {@linkcode PgError}s with Postgres's SQLSTATEs and, for a
 * syntax error, the 1-based character position in the original text.
 *
 * @module
 */

import { parseSync } from "libpg-query";
import type { ColumnDef, Constraint, CreateStmt, ParseResult, RangeVar } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import {
  checkTiling,
  equalRanges,
  keyRangeName,
  parseKeyRange,
} from "../../shared/keyspace/mod.ts";
import {
  charPosition,
  indexOfByte,
  indexOfCodePoint,
  isPunct,
  isWord,
  splitStatements,
  type StatementTokens,
  type Token,
  tokenize,
} from "./_lexer.ts";
import {
  forEachRangeVar,
  isCatalog,
  shardingTypeOfTypeName,
  stringsOf,
  typeNameText,
} from "./_ast.ts";
import type { Plan, SchemaView, TableName } from "./types.ts";

/** The most shards `CREATE TABLEGROUP … SHARDS n` may ask for. */
export const MAX_SHARDS = 256;

/** The plan of a `CREATE TABLE … IN tg`. */
export type CreateTablePlan = Extract<Plan, { kind: "create_table" }>;

/**
 * Postgres's reserved key words (and those that may only name a function or type): an unquoted
 * one cannot name a tablegroup, a database or a column.
 */
const RESERVED = new Set(
  (
    "all analyse analyze and any array as asc asymmetric authorization binary both case cast " +
    "check collate collation column concurrently constraint create cross current_catalog " +
    "current_date current_role current_schema current_time current_timestamp current_user " +
    "default deferrable desc distinct do else end except false fetch for foreign freeze from " +
    "full grant group having ilike in initially inner intersect into is isnull join lateral " +
    "leading left like limit localtime localtimestamp natural not notnull null offset on only " +
    "or order outer overlaps placing primary references returning right select session_user " +
    "similar some symmetric system_user table tablesample then to trailing true union unique " +
    "user using variadic verbose when where window with"
  ).split(" "),
);

/**
 * The plan of the new-syntax statement in `sql`, or undefined when `sql` holds none (then the
 * Postgres grammar takes it). Throws a {@linkcode PgError} for a malformed or refused one, and
 * when a new-syntax statement shares the query string with other statements.
 *
 * `CREATE TABLE … IN tg` asks `view.tablegroup(tg)` whether tg is sharded (more than one
 * shard): a table of a sharded tablegroup needs a sharding column (SHARD BY, or else a
 * single-column primary key) of a supported type, and its primary key and unique constraints
 * must include it; a table of a one-shard tablegroup needs none (`column`/`type` null, SHARD BY
 * ignored). A tablegroup the view does not know is an error (42704).
 */
export function planNewSyntax(sql: string, view: SchemaView): Plan | undefined {
  const statements = splitStatements(tokenize(sql));
  for (const stmt of statements) {
    const t = stmt.tokens;
    let kind: "create_tablegroup" | "drop_tablegroup" | "create_table" | undefined;
    let inIndex = -1;
    if (isWord(t[0], "create") && isWord(t[1], "tablegroup")) kind = "create_tablegroup";
    else if (isWord(t[0], "drop") && isWord(t[1], "tablegroup")) kind = "drop_tablegroup";
    else if (isWord(t[0], "create")) {
      inIndex = findInClause(t);
      if (inIndex >= 0) kind = "create_table";
    }
    if (kind === undefined) continue;
    const p = new DdlParser(sql, stmt);
    if (statements.length > 1) {
      if (kind === "create_table") throw severalStatements();
      throw new PgError(
        SqlState.ACTIVE_SQL_TRANSACTION,
        `${
          kind === "create_tablegroup" ? "CREATE" : "DROP"
        } TABLEGROUP cannot run inside a transaction block`,
      );
    }
    if (kind === "create_tablegroup") return p.createTablegroup();
    if (kind === "drop_tablegroup") return p.dropTablegroup();
    return planCreateTable(p, inIndex, view);
  }
  return undefined;
}

/** 0A000: a query string with several statements touches tablegroups. */
export function severalStatements(): PgError {
  return new PgError(
    SqlState.FEATURE_NOT_SUPPORTED,
    "a query string with several statements may not touch tables of tablegroups yet",
  );
}

/**
 * Where `IN tg` starts in `CREATE [GLOBAL|LOCAL] [TEMP|UNLOGGED] TABLE [IF NOT EXISTS] name
 * (…) …`: the first `IN` outside parentheses after the column list, unless an `AS` comes first
 * (`CREATE TABLE t (a) AS SELECT … WHERE a IN …` is ordinary SQL); -1 when there is none.
 */
function findInClause(t: Token[]): number {
  let i = 1;
  if (isWord(t[i], "global") || isWord(t[i], "local")) i++;
  if (isWord(t[i], "temp") || isWord(t[i], "temporary") || isWord(t[i], "unlogged")) i++;
  if (!isWord(t[i], "table")) return -1;
  i++;
  if (isWord(t[i], "if") && isWord(t[i + 1], "not") && isWord(t[i + 2], "exists")) i += 3;
  if (!isName(t[i])) return -1;
  i++;
  while (isPunct(t[i], ".") && isName(t[i + 1])) i += 2;
  if (!isPunct(t[i], "(")) return -1;
  let depth = 0;
  for (; i < t.length; i++) {
    if (isPunct(t[i], "(")) depth++;
    else if (isPunct(t[i], ")")) {
      depth--;
      if (depth === 0) break;
    }
  }
  for (i++; i < t.length; i++) {
    if (isPunct(t[i], "(")) depth++;
    else if (isPunct(t[i], ")")) depth--;
    else if (depth === 0 && isWord(t[i], "as")) return -1;
    else if (depth === 0 && isWord(t[i], "in")) return i;
  }
  return -1;
}

function isName(t: Token | undefined): boolean {
  return t !== undefined && (t.kind === "word" || t.kind === "quoted");
}

/** Reads one statement's tokens; every error carries a position in the original text. */
class DdlParser {
  readonly sql: string;
  readonly t: Token[];
  readonly #semicolon: Token | undefined;

  constructor(sql: string, stmt: StatementTokens) {
    this.sql = sql;
    this.t = stmt.tokens;
    this.#semicolon = stmt.semicolon;
  }

  /** 42601 at token `i` (past the last token: at the `;` or the end of input). */
  syntaxError(i: number): PgError {
    const tok = this.t[i] ?? this.#semicolon;
    if (tok === undefined) {
      return new PgError(SqlState.SYNTAX_ERROR, "syntax error at end of input", {
        position: charPosition(this.sql, this.sql.length),
      });
    }
    const what = tok.unterminated === undefined
      ? "syntax error"
      : `unterminated ${tok.unterminated}`;
    return new PgError(SqlState.SYNTAX_ERROR, `${what} at or near "${tok.text}"`, {
      position: this.position(tok),
    });
  }

  position(tok: Token): number {
    return charPosition(this.sql, tok.start);
  }

  /** The identifier at token `i`, or a syntax error. */
  name(i: number): string {
    const tok = this.t[i];
    if (tok?.kind === "word" && !RESERVED.has(tok.value)) return tok.value;
    if (tok?.kind === "quoted" && tok.unterminated === undefined) {
      if (tok.value === "") {
        throw new PgError(
          SqlState.SYNTAX_ERROR,
          `zero-length delimited identifier at or near "${tok.text}"`,
          { position: this.position(tok) },
        );
      }
      return tok.value;
    }
    throw this.syntaxError(i);
  }

  expectWord(i: number, word: string): void {
    if (!isWord(this.t[i], word)) throw this.syntaxError(i);
  }

  expectPunct(i: number, p: string): void {
    if (!isPunct(this.t[i], p)) throw this.syntaxError(i);
  }

  /** `CREATE TABLEGROUP name [FOR db] [SHARDS n | SHARDS ('r', …)]` (FOR and SHARDS in any order). */
  createTablegroup(): Plan {
    const name = this.name(2);
    let database: string | null = null;
    let shards: string[] | null = null;
    let i = 3;
    while (i < this.t.length) {
      if (database === null && isWord(this.t[i], "for")) {
        database = this.name(i + 1);
        i += 2;
      } else if (shards === null && isWord(this.t[i], "shards")) {
        [shards, i] = this.shards(i + 1);
      } else {
        throw this.syntaxError(i);
      }
    }
    return { kind: "create_tablegroup", name, database, shards: shards ?? ["0-inf"] };
  }

  /** `n` or `('r', …)` at token `i`: the range names and the index after them. */
  shards(i: number): [string[], number] {
    const tok = this.t[i];
    if (tok?.kind === "number") {
      const n = /^[0-9]+$/.test(tok.text) ? Number(tok.text) : NaN;
      if (!(n >= 1 && n <= MAX_SHARDS)) {
        throw new PgError(
          SqlState.INVALID_PARAMETER_VALUE,
          `number of shards must be an integer between 1 and ${MAX_SHARDS}`,
          { position: this.position(tok) },
        );
      }
      return [equalRanges(n), i + 1];
    }
    this.expectPunct(i, "(");
    const open = tok;
    const names: string[] = [];
    let j = i + 1;
    for (;;) {
      const r = this.t[j];
      if (r?.kind !== "string" || r.unterminated !== undefined) throw this.syntaxError(j);
      try {
        parseKeyRange(r.value);
      } catch (e) {
        throw new PgError(SqlState.INVALID_PARAMETER_VALUE, messageOf(e), {
          position: this.position(r),
        });
      }
      names.push(r.value);
      j++;
      if (isPunct(this.t[j], ")")) break;
      this.expectPunct(j, ",");
      j++;
    }
    try {
      checkTiling(names);
    } catch (e) {
      throw new PgError(SqlState.INVALID_PARAMETER_VALUE, messageOf(e), {
        position: this.position(open),
      });
    }
    // Canonical names: lower case, trailing zeros trimmed ('80-INF' is "8-inf").
    return [names.map((n) => keyRangeName(parseKeyRange(n))), j + 1];
  }

  /** `DROP TABLEGROUP [IF EXISTS] name [CASCADE | RESTRICT]`. */
  dropTablegroup(): Plan {
    let i = 2;
    let ifExists = false;
    if (isWord(this.t[i], "if") && isWord(this.t[i + 1], "exists")) {
      ifExists = true;
      i += 2;
    }
    const name = this.name(i++);
    let cascade = false;
    if (isWord(this.t[i], "cascade")) {
      cascade = true;
      i++;
    } else if (isWord(this.t[i], "restrict")) {
      i++;
    }
    if (i < this.t.length) throw this.syntaxError(i);
    return { kind: "drop_tablegroup", name, ifExists, cascade };
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The `IN tg [SHARD BY (col)]` clause of a CREATE TABLE, cut out of its text. */
interface InClause {
  tablegroup: string;
  tablegroupToken: Token;
  shardBy: string | null;
  shardByToken: Token | null;
  /** The plain CREATE TABLE Postgres runs. */
  sql: string;
  /** The JS index in the original text of JS index `i` of `sql`. */
  toOriginal(i: number): number;
}

function readInClause(p: DdlParser, k: number): InClause {
  const t = p.t;
  const tablegroup = p.name(k + 1);
  let last = k + 1;
  let shardBy: string | null = null;
  let shardByToken: Token | null = null;
  if (isWord(t[k + 2], "shard")) {
    p.expectWord(k + 3, "by");
    p.expectPunct(k + 4, "(");
    shardBy = p.name(k + 5);
    shardByToken = t[k + 5];
    p.expectPunct(k + 6, ")");
    last = k + 6;
  }
  const stmtStart = t[0].start;
  const stmtEnd = t[t.length - 1].end;
  const cutStart = t[k].start;
  const cutEnd = t[last].end;
  const head = p.sql.slice(stmtStart, last === t.length - 1 ? t[k - 1].end : cutStart);
  const sql = head + p.sql.slice(cutEnd, stmtEnd);
  return {
    tablegroup,
    tablegroupToken: t[k + 1],
    shardBy,
    shardByToken,
    sql,
    toOriginal: (i) => i < head.length ? stmtStart + i : cutEnd + (i - head.length),
  };
}

function planCreateTable(p: DdlParser, inIndex: number, view: SchemaView): CreateTablePlan {
  const clause = readInClause(p, inIndex);
  const stmt = parseCreateTable(p, clause);
  const tg = view.tablegroup(clause.tablegroup);
  if (tg === undefined) {
    throw new PgError(
      SqlState.UNDEFINED_OBJECT,
      `tablegroup "${clause.tablegroup}" does not exist`,
      { position: p.position(clause.tablegroupToken) },
    );
  }
  return checkCreateTable(p, clause, stmt, view, tg.shards.length > 1);
}

/** Parses the plain CREATE TABLE with the Postgres grammar; errors point into the original. */
function parseCreateTable(p: DdlParser, clause: InClause): CreateStmt {
  let result: ParseResult;
  try {
    result = parseSync(clause.sql) as ParseResult;
  } catch (e) {
    const details = (e as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    if (details === undefined) throw e; // not a syntax error (e.g. initPlanner() not awaited)
    const message = messageOf(e);
    let position: number | undefined;
    if (message.includes("at end of input")) {
      position = charPosition(p.sql, p.sql.length);
    } else if (details.cursorPosition !== undefined) {
      const i = indexOfCodePoint(clause.sql, details.cursorPosition);
      position = charPosition(p.sql, clause.toOriginal(i));
    }
    throw new PgError(SqlState.SYNTAX_ERROR, message, { position });
  }
  const node = result.stmts?.[0]?.stmt;
  if (result.stmts?.length !== 1 || node === undefined || !("CreateStmt" in node)) {
    throw p.syntaxError(0);
  }
  return node.CreateStmt;
}

/** A constraint's position in the original text (its `location` is a byte offset). */
function constraintPosition(p: DdlParser, clause: InClause, location: number | undefined) {
  if (location === undefined || location < 0) return undefined;
  return charPosition(p.sql, clause.toOriginal(indexOfByte(clause.sql, location)));
}

function checkCreateTable(
  p: DdlParser,
  clause: InClause,
  stmt: CreateStmt,
  view: SchemaView,
  sharded: boolean,
): CreateTablePlan {
  const rel = stmt.relation!;
  const table: TableName = { schema: rel.schemaname ?? "public", name: rel.relname ?? "" };
  const tg = clause.tablegroup;
  if (rel.relpersistence === "t" || rel.schemaname?.startsWith("pg_temp")) {
    throw new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `a temporary table cannot belong to tablegroup "${tg}"`,
    );
  }
  if (stmt.partspec !== undefined) {
    throw new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `a partitioned table cannot belong to tablegroup "${tg}" yet`,
    );
  }
  // LIKE, INHERITS and REFERENCES may only name tables of the same tablegroup.
  const others: RangeVar[] = [];
  forEachRangeVar([stmt.tableElts, stmt.inhRelations, stmt.constraints], (rv) => others.push(rv));
  for (const rv of others) {
    if (isSelf(rv, table) || isCatalog(rv.schemaname ?? null, rv.relname!)) continue;
    const info = view.table(rv.schemaname ?? null, rv.relname!);
    if (info?.tablegroup !== tg) {
      throw new PgError(
        SqlState.FEATURE_NOT_SUPPORTED,
        `table "${table.name}" of tablegroup "${tg}" may not refer to table "${rv.relname}", which is not in tablegroup "${tg}"`,
      );
    }
  }
  const plan: CreateTablePlan = {
    kind: "create_table",
    tablegroup: tg,
    table,
    column: null,
    type: null,
    sql: clause.sql,
    ifNotExists: stmt.if_not_exists === true,
  };
  if (!sharded) return plan;

  const columns = new Map<string, ColumnDef>();
  const constraints: { c: Constraint; columns: string[] }[] = [];
  for (const elt of stmt.tableElts ?? []) {
    if ("ColumnDef" in elt) {
      const def = elt.ColumnDef;
      columns.set(def.colname!, def);
      for (const c of def.constraints ?? []) {
        if ("Constraint" in c) constraints.push({ c: c.Constraint, columns: [def.colname!] });
      }
    } else if ("Constraint" in elt) {
      constraints.push({ c: elt.Constraint, columns: stringsOf(elt.Constraint.keys) });
    }
  }
  for (const c of stmt.constraints ?? []) {
    if ("Constraint" in c) {
      constraints.push({ c: c.Constraint, columns: stringsOf(c.Constraint.keys) });
    }
  }

  let column = clause.shardBy;
  if (column === null) {
    const pk = constraints.find(({ c }) => c.contype === "CONSTR_PRIMARY");
    if (pk !== undefined && pk.columns.length === 1) column = pk.columns[0];
  }
  if (column === null) {
    throw new PgError(
      SqlState.INVALID_TABLE_DEFINITION,
      `a table in sharded tablegroup "${tg}" needs a sharding column: add SHARD BY (column) or a single-column primary key`,
    );
  }
  const def = columns.get(column);
  if (def === undefined) {
    throw new PgError(
      SqlState.UNDEFINED_COLUMN,
      clause.shardBy !== null
        ? `column "${column}" named in SHARD BY does not exist`
        : `sharding column "${column}" must be defined in the column list of table "${table.name}"`,
      clause.shardByToken !== null ? { position: p.position(clause.shardByToken) } : undefined,
    );
  }
  const type = shardingTypeOfTypeName(def.typeName);
  if (type === undefined) {
    throw new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `sharding column "${column}" has type ${
        typeNameText(def.typeName)
      }, which cannot be a sharding column (use smallint, integer, bigint, numeric, text, varchar or uuid)`,
    );
  }
  if ((def.typeName?.typmods?.length ?? 0) > 0) {
    // numeric(p,s) rounds and varchar(n) trims trailing spaces when a value is stored: after
    // the gateway hashed it as written, so the row could land on another shard than its value's.
    throw new PgError(
      SqlState.FEATURE_NOT_SUPPORTED,
      `the type of sharding column "${column}" may not have a modifier (${
        typeNameText(def.typeName)
      }(…)): it changes values as they are stored, after the gateway hashed them`,
      {
        hint:
          "Use numeric or varchar without a precision or length (a CHECK constraint can bound it).",
      },
    );
  }
  for (const { c, columns: cols } of constraints) {
    const err = checkConstraint(c, cols, table, tg, column, view);
    if (err !== undefined) {
      throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, err, {
        position: constraintPosition(p, clause, c.location),
      });
    }
  }
  return { ...plan, column, type };
}

function isSelf(rv: RangeVar, table: TableName): boolean {
  return rv.relname === table.name && (rv.schemaname ?? "public") === table.schema;
}

/**
 * Why a constraint of a table of a sharded tablegroup cannot be enforced shard by shard, or
 * undefined when it can: a primary key, unique or exclusion constraint must include the sharding
 * column (with `=`), and a foreign key must map it onto the referenced table's sharding column.
 * `columns` are the constraint's columns (a column constraint's: its column).
 */
export function checkConstraint(
  c: Constraint,
  columns: string[],
  table: TableName,
  tablegroup: string,
  column: string,
  view: SchemaView,
): string | undefined {
  const named = c.conname !== undefined ? ` "${c.conname}"` : "";
  const where = `on table "${table.name}" of sharded tablegroup "${tablegroup}"`;
  switch (c.contype) {
    case "CONSTR_PRIMARY":
      if (columns.includes(column)) return undefined;
      return `primary key${named} ${where} must include its sharding column "${column}"`;
    case "CONSTR_UNIQUE":
      if (columns.includes(column)) return undefined;
      return `unique constraint${named} ${where} must include its sharding column "${column}"`;
    case "CONSTR_EXCLUSION": {
      for (const ex of c.exclusions ?? []) {
        const pair = "List" in ex ? ex.List.items ?? [] : [];
        const elem = pair[0] !== undefined && "IndexElem" in pair[0]
          ? pair[0].IndexElem
          : undefined;
        const op = stringsOf(pair[1] !== undefined && "List" in pair[1] ? pair[1].List.items : []);
        if (elem?.name === column && op[op.length - 1] === "=") return undefined;
      }
      return `exclusion constraint${named} ${where} must include its sharding column "${column}" with operator =`;
    }
    case "CONSTR_FOREIGN": {
      const fk = c.fk_attrs !== undefined ? stringsOf(c.fk_attrs) : columns;
      const at = fk.indexOf(column);
      if (at < 0) {
        return `foreign key${named} ${where} must include its sharding column "${column}"`;
      }
      const pk = stringsOf(c.pk_attrs);
      if (pk.length === 0 || c.pktable === undefined) return undefined;
      const ref = c.pktable;
      const refColumn = isSelf(ref, table)
        ? column
        : view.table(ref.schemaname ?? null, ref.relname!)?.column ?? null;
      if (pk[at] === refColumn) return undefined;
      return `foreign key${named} ${where} must reference the sharding column of table "${ref.relname}" with its sharding column "${column}"`;
    }
    default:
      return undefined;
  }
}
