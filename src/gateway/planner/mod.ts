/**
 * The gateway's planner: where a statement goes, decided from its text alone (no I/O).
 *
 * {@linkcode planQuery} reads a query string (simple protocol) or a Parse message's statement
 * with the real Postgres grammar (libpg-query) after recognising the new DDL itself
 * (`CREATE TABLEGROUP`, `DROP TABLEGROUP`, `CREATE TABLE … IN tg [SHARD BY (col)]`), and returns a
 * {@linkcode Plan}: the default tablegroup's shard, the shards owning some sharding keys, every
 * shard of a tablegroup, DDL to fan out, metadata DDL, transaction control, a session setting, or
 * a refusal with a SQLSTATE. A scattered SELECT whose answer needs merging (ORDER BY, LIMIT,
 * aggregates, GROUP BY, DISTINCT) carries a {@linkcode MergeSpec}: the text each shard runs and
 * how the gateway merges their answers. {@linkcode PlanCache} keeps recent plans by statement text and
 * layout version. See README.md for the rules.
 *
 * ```ts
 * import { initPlanner, PlanCache, planQuery, type SchemaView } from "./mod.ts";
 *
 * await initPlanner();
 * const view: SchemaView = {
 *   hasTablegroupTables: true,
 *   table: (_schema, name) =>
 *     name === "orders" ? { tablegroup: "orders_tg", column: "id", type: "int8" } : undefined,
 *   tablegroup: (name) => name === "orders_tg" ? { shards: ["0-8", "8-inf"] } : undefined,
 * };
 * const cache = new PlanCache();
 * const sql = "select * from orders where id = $1";
 * let plan = cache.get(sql, 1);
 * if (plan === undefined) cache.set(sql, 1, plan = planQuery(sql, view));
 * // { kind: "keyed", tablegroup: "orders_tg", type: "int8", keys: [{ param: 1 }], write: false }
 * ```
 *
 * @module
 */

export { initPlanner, planQuery } from "./plan.ts";
export { type CreateTablePlan, MAX_SHARDS, planNewSyntax } from "./ddl.ts";
export { PlanCache, type PlanCacheOptions } from "./plan_cache.ts";
export { tokenize } from "./_lexer.ts";
export { copyFormat } from "./_copy.ts";
export type {
  CopyCheck,
  CopyFormat,
  HavingExpr,
  HavingOperand,
  InsertSource,
  InsertSplit,
  KeyValue,
  MergeAggregate,
  MergeBound,
  MergeSortKey,
  MergeSpec,
  Plan,
  SchemaView,
  TableInfo,
  TableName,
} from "./types.ts";
