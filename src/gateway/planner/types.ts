import type { ShardingType } from "../../shared/keyspace/mod.ts";

/** A table of a tablegroup other than `default`, as `multigres.tablegroup_table` records it. */
export interface TableInfo {
  tablegroup: string;
  /** The sharding column; null for a table of an unsharded (one-shard) tablegroup. */
  column: string | null;
  /** The sharding column's type; null with `column`. */
  type: ShardingType | null;
  /**
   * The sharding column's place among the table's columns (1-based), when known: an INSERT
   * without a column list takes its value from there.
   */
  position?: number;
}

/** What the planner may know of a database's layout (the gateway's shard map implements it). */
export interface SchemaView {
  /**
   * The table's tablegroup and sharding column, when it belongs to a tablegroup other than
   * `default`; undefined for every other table (they live on the default tablegroup's shard).
   * `schema` is null for an unqualified name (read as `public`).
   */
  table(schema: string | null, name: string): TableInfo | undefined;
  /** Whether any table of the database lives outside the default tablegroup. */
  readonly hasTablegroupTables: boolean;
  /** A tablegroup of the database, by name (undefined when there is none). */
  tablegroup(name: string): { shards: string[] } | undefined;
}

/** A value of the sharding column in a statement: a literal's text (null: NULL) or `$n`. */
export type KeyValue = { literal: string | null } | { param: number };

/**
 * An `INSERT … VALUES (…), (…) …` cut by row: a shard runs `head`, its rows joined by ", ", then
 * `tail` (its rows keep their order). With RETURNING, each row returns one row, in VALUES order,
 * unless `maySkipRows` (ON CONFLICT DO NOTHING, or DO UPDATE … WHERE): then rows may be missing
 * and the order across shards cannot be rebuilt.
 */
export interface InsertSplit {
  /** The text up to the first row (`INSERT INTO t (…) VALUES `). */
  head: string;
  /** Each row's text `( … )` and its sharding-column value, in VALUES order. */
  rows: { text: string; key: KeyValue }[];
  /** The text after the last row (ON CONFLICT, RETURNING, a final `;`). */
  tail: string;
  returning: boolean;
  maySkipRows: boolean;
}

/**
 * An `INSERT … SELECT` into a sharded table whose SELECT reads no table of a tablegroup (a
 * constant source: `generate_series`, VALUES in FROM, UNION ALL of constants…): the gateway runs
 * `select` once on the database's default shard, in the client's session, and sends each shard
 * `head` + `VALUES` + its rows + `tail`, as an {@linkcode InsertSplit}. `head + select + tail`
 * is the statement.
 */
export interface InsertSource {
  /** The text before the SELECT (`INSERT INTO t (…) [OVERRIDING … VALUE] `). */
  head: string;
  /** The SELECT, as written. */
  select: string;
  /** The text after it (ON CONFLICT, RETURNING, a final `;`). */
  tail: string;
  /**
   * The characters before the SELECT in the statement (to place its errors in the statement);
   * negative when the SELECT runs as other text (its errors then carry no position).
   */
  offset: number;
  /** The sharding column's place among the SELECT's output columns. */
  column: number;
  /** The sharding column's name. */
  columnName: string;
  /**
   * Output column i is a bare string literal or NULL at the top of the SELECT: Postgres gives it
   * the column's type (not text), so it is passed on untyped.
   */
  untyped: boolean[];
  /**
   * Output column i is a bare parameter `$n` (n here): untyped as well when the Parse left its
   * type to Postgres, which then gives it the column's type.
   */
  params: (number | null)[];
  returning: boolean;
  maySkipRows: boolean;
}

/**
 * How COPY lays out its data, from the statement's options (Postgres's defaults where absent):
 * what the gateway needs to cut a COPY FROM's data into rows and read each row's sharding key.
 * Options are not validated here: the shards' Postgres refuses bad ones before any data flows.
 */
export interface CopyFormat {
  format: "text" | "csv" | "binary";
  /** The field delimiter (text: tab, csv: comma). */
  delimiter: string;
  /** The string that stands for NULL (text: `\N`, csv: the empty string). */
  null: string;
  /** CSV: the quote and escape characters (escape defaults to quote). */
  quote: string;
  escape: string;
  /** HEADER (true or MATCH): the first line names the columns. */
  header: boolean;
  /** CSV: FORCE_NOT_NULL names the sharding column (its null string is read as a value). */
  forceNotNull: boolean;
  /** CSV: FORCE_NULL names the sharding column (its quoted null string is NULL too). */
  forceNull: boolean;
}

/**
 * A COPY of no rows that Postgres runs first, to check the options of a COPY the gateway writes
 * itself; its error positions map back to the client's statement: a position at or after
 * `tail[0]` (the text after the query) to `tail[1]`, one at or after `query[0]` (the query) to
 * `query[1]` (1-based characters, as Postgres counts them).
 */
export interface CopyCheck {
  sql: string;
  query: [number, number];
  tail: [number, number];
}

/** A table named in a statement, qualified (`public` when it was not). */
export interface TableName {
  schema: string;
  name: string;
}

/** Where a statement goes and how, as the planner decides from its text. */
export type Plan =
  /** Whole to the database's default tablegroup's only shard, as every statement went before. */
  | {
    kind: "default";
    /**
     * false: the statement names no table but catalogs (`select now()`, SHOW…), so it may run
     * in a transaction block that lives on another shard; absent: it may touch tables.
     */
    touchesTables?: false;
    /**
     * true: a query string of several statements, one of them transaction control (BEGIN,
     * COMMIT, ROLLBACK…): it may end a block that also lives on other shards.
     */
    controlsTransaction?: true;
  }
  /** To the shards owning these sharding-column values (one or more). */
  | {
    kind: "keyed";
    tablegroup: string;
    type: ShardingType;
    keys: KeyValue[];
    /** INSERT, UPDATE, DELETE, SELECT … FOR UPDATE, or a data-modifying CTE. */
    write: boolean;
    /** With several keys: how the shards' answers are merged (as for `scatter`). */
    merge?: MergeSpec;
    /** An INSERT of several rows: the statement cut by row, for rows of several shards. */
    split?: InsertSplit;
    /** An INSERT … SELECT from a constant source (`keys` is empty): its rows are read first. */
    source?: InsertSource;
  }
  /**
   * To every shard of the tablegroup: rows concatenated in shard order, or, with `merge`, each
   * shard runs `merge.sql` and the gateway merges the answers (ORDER BY, LIMIT, aggregates…).
   */
  | { kind: "scatter"; tablegroup: string; write: boolean; merge?: MergeSpec }
  /**
   * DDL on tables of a tablegroup (ALTER/DROP TABLE, CREATE/DROP INDEX, TRUNCATE, COMMENT):
   * on every shard or none. `dropped` are the tables a DROP TABLE removes from the metadata;
   * `renamed` is set by ALTER TABLE … RENAME TO / SET SCHEMA, which the metadata must follow.
   */
  | {
    kind: "fanout_ddl";
    tablegroup: string;
    dropped: TableName[];
    renamed?: { from: TableName; to: TableName };
    /**
     * VACUUM, REINDEX … CONCURRENTLY: not in a transaction block (Postgres refuses one), so run
     * on each shard on its own, not atomically (they change no data).
     */
    outsideBlock?: true;
  }
  /**
   * `CREATE TABLE t (…) IN tg [SHARD BY (col)]`: `sql` is the plain CREATE TABLE Postgres
   * runs on every shard; `column`/`type` null for an unsharded tablegroup.
   */
  | {
    kind: "create_table";
    tablegroup: string;
    table: TableName;
    column: string | null;
    type: ShardingType | null;
    sql: string;
    ifNotExists: boolean;
  }
  /** `CREATE TABLEGROUP name [FOR db] [SHARDS n | SHARDS ('0-8', '8-inf')]`: range names. */
  | { kind: "create_tablegroup"; name: string; database: string | null; shards: string[] }
  | { kind: "drop_tablegroup"; name: string; ifExists: boolean; cascade: boolean }
  /**
   * CREATE DATABASE / DROP DATABASE / ALTER DATABASE … RENAME TO (recorded in the metadata);
   * `ifExists` for DROP DATABASE IF EXISTS.
   */
  | {
    kind: "database_ddl";
    op: "create" | "drop" | "rename";
    name: string;
    newName?: string;
    ifExists?: boolean;
  }
  /**
   * DROP INDEX in a database with tablegroup tables: the text does not say which table an index
   * is on, so the executor finds where the indexes live (a tablegroup's shards, or the default
   * shard) and fans it out there, or runs it on the default shard.
   */
  | { kind: "drop_index"; indexes: TableName[] }
  /** Transaction control. */
  | {
    kind: "transaction";
    op:
      | "begin"
      | "commit"
      | "rollback"
      | "savepoint"
      | "release"
      | "rollback_to"
      | "prepare"
      | "commit_prepared"
      | "rollback_prepared";
  }
  /**
   * `COPY t [(cols)] FROM STDIN` into a table of a tablegroup: every shard runs the client's
   * statement; the gateway cuts the data into rows and sends each row to the shard its
   * sharding-column value belongs to (an unsharded tablegroup: `column`/`type` null, every row
   * to its shard).
   */
  | {
    kind: "copy_in";
    tablegroup: string;
    /** The table as the statement names it (`schema` null: unqualified). */
    table: { schema: string | null; name: string };
    column: string | null;
    type: ShardingType | null;
    /**
     * The sharding column's place among the COPY's columns (0-based); null without a column
     * list (then every column COPY reads, which the executor learns from a shard's catalog).
     */
    keyIndex: number | null;
    format: CopyFormat;
  }
  /**
   * `COPY t TO STDOUT` or `COPY (SELECT …) TO STDOUT` on tables of a tablegroup: run on every
   * shard (or on the shards of the query's keys), one after the other, the data concatenated.
   */
  | {
    kind: "copy_out";
    tablegroup: string;
    /** The query is pinned to these sharding-key values (literals): only their shards. */
    keyed?: { type: ShardingType; keys: KeyValue[] };
    format: "text" | "csv" | "binary";
    header: boolean;
    /**
     * `COPY (query) TO` whose query needs merging: the query (`sql`, planned as `plan`) is merged
     * as a SELECT and its rows written as COPY lines laid out as `layout` says.
     */
    merged?: {
      plan: Extract<Plan, { kind: "keyed" | "scatter" }>;
      sql: string;
      layout: CopyFormat;
      check: CopyCheck;
    };
  }
  /** SET / RESET / SET SESSION CHARACTERISTICS / DISCARD: session state that follows to shards. */
  | { kind: "session_setting" }
  /** Refused with 0A000 (or the given SQLSTATE) and this message, never run. */
  | { kind: "refused"; message: string; sqlstate?: string; position?: number };

/**
 * How the gateway answers a scattered SELECT that needs merging: plain data, cached with the
 * plan. Each shard runs `sql`: the client's target list first (the visible columns, so each
 * shard's RowDescription for them is the one Postgres sends for the original query; `*` makes
 * their number known only then), then `hidden` columns the gateway reads in binary (sort keys,
 * group keys, aggregate partials). "Hidden column h" below is the h-th of those (from 0).
 */
export interface MergeSpec {
  /** The statement each shard runs (same `$n` parameters as the client's). */
  sql: string;
  /** The number of visible columns; null when `*` makes it known only from a RowDescription. */
  visible: number | null;
  hidden: number;
  /** Per visible column: the aggregate whose merged value replaces it, or null (passed on). */
  outputs: (number | null)[];
  /** Aggregates merged at the gateway (their partials are hidden columns). */
  aggregates: MergeAggregate[];
  /** Rows are folded into groups (GROUP BY, or aggregates: one group when `groupKeys` is empty). */
  grouped: boolean;
  /** Hidden columns of the GROUP BY keys. */
  groupKeys: number[];
  /** Hidden columns of DISTINCT (a copy of each visible one) or DISTINCT ON; null: no DISTINCT. */
  distinct: number[] | null;
  /** Sort keys, most significant first; empty: no order. */
  sort: MergeSortKey[];
  /** HAVING, evaluated at the gateway on merged groups; null: none (or run on the shards). */
  having: HavingExpr | null;
  /** LIMIT (`{ literal: null }`: LIMIT ALL / NULL) and OFFSET; null when absent. */
  limit: MergeBound | null;
  offset: MergeBound | null;
}

/** An aggregate function the gateway merges from per-shard partials. */
export interface MergeAggregate {
  fn:
    | "count"
    | "sum"
    | "avg"
    | "min"
    | "max"
    | "bool_and"
    | "bool_or"
    | "string_agg"
    | "array_agg";
  /** Hidden columns holding the partials (avg: sum then count); array_agg: none. */
  args: number[];
  /** The visible column showing it, or null (only in HAVING or ORDER BY). */
  visible: number | null;
  /** string_agg: the delimiter (a constant), null for a NULL delimiter. */
  delimiter?: string | null;
}

/** A sort key: a hidden column (of a group's first row), or a merged aggregate. */
export interface MergeSortKey {
  column?: number;
  aggregate?: number;
  descending: boolean;
  nullsFirst: boolean;
}

/** LIMIT or OFFSET: a literal's digits (null: NULL/ALL) or a bound parameter. */
export type MergeBound = { literal: string | null } | { param: number };

/** A HAVING condition the gateway evaluates (SQL's three-valued logic). */
export type HavingExpr =
  | { op: "and" | "or"; args: HavingExpr[] }
  | { op: "not"; arg: HavingExpr }
  | { op: "is_null"; arg: HavingOperand; negated: boolean }
  | {
    op: "cmp";
    cmp: "<" | "<=" | "=" | "<>" | ">" | ">=";
    left: HavingOperand;
    right: HavingOperand;
  };

/** A side of a HAVING comparison. */
export type HavingOperand =
  | { aggregate: number }
  /** A hidden column of the group's first row (a GROUP BY column). */
  | { column: number }
  | { constant: string | null; kind: "number" | "string" | "bool" }
  /** A bound parameter `$n` (read as a constant of the other side's type). */
  | { param: number };
