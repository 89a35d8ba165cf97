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
  }
  /** To the shards owning these sharding-column values (one or more). */
  | {
    kind: "keyed";
    tablegroup: string;
    type: ShardingType;
    keys: KeyValue[];
    /** INSERT, UPDATE, DELETE, SELECT … FOR UPDATE, or a data-modifying CTE. */
    write: boolean;
  }
  /** To every shard of the tablegroup, rows concatenated in shard order. */
  | { kind: "scatter"; tablegroup: string; write: boolean }
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
  /** SET / RESET / SET SESSION CHARACTERISTICS / DISCARD: session state that follows to shards. */
  | { kind: "session_setting" }
  /** Refused with 0A000 (or the given SQLSTATE) and this message, never run. */
  | { kind: "refused"; message: string; sqlstate?: string; position?: number };
