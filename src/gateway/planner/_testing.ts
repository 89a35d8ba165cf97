/**
 * A small fake {@linkcode SchemaView} for the planner's tests and benchmarks.
 *
 * Tablegroups: `tg` (sharded, 2 shards) with `orders` (id bigint), `items` (order_id bigint),
 * `users` (uid text), `accounts` (aid uuid), `amounts` (n numeric), `small` (k smallint),
 * `s.events` (id int) and `"Mixed"` (Key bigint); `flat` (one shard) with `flat` and `notes`;
 * `other_tg` (sharded) with `others` (id bigint). Every other table is in the default tablegroup.
 *
 * @module
 */

import type { SchemaView, TableInfo } from "./types.ts";

const TABLES: Record<string, TableInfo> = {
  "public.orders": { tablegroup: "tg", column: "id", type: "int8" },
  "public.items": { tablegroup: "tg", column: "order_id", type: "int8" },
  "public.users": { tablegroup: "tg", column: "uid", type: "text" },
  "public.accounts": { tablegroup: "tg", column: "aid", type: "uuid" },
  "public.amounts": { tablegroup: "tg", column: "n", type: "numeric" },
  "public.small": { tablegroup: "tg", column: "k", type: "int2" },
  "s.events": { tablegroup: "tg", column: "id", type: "int4" },
  "public.Mixed": { tablegroup: "tg", column: "Key", type: "int8" },
  "public.flat": { tablegroup: "flat", column: null, type: null },
  "public.notes": { tablegroup: "flat", column: null, type: null },
  "public.others": { tablegroup: "other_tg", column: "id", type: "int8" },
};

const TABLEGROUPS: Record<string, string[]> = {
  tg: ["0-8", "8-inf"],
  flat: ["0-inf"],
  other_tg: ["0-4", "4-8", "8-c", "c-inf"],
  empty_tg: ["0-8", "8-inf"],
  one: ["0-inf"],
};

/** The fake layout described in the module doc. */
export const VIEW: SchemaView = {
  hasTablegroupTables: true,
  table: (schema, name) =>
    Object.hasOwn(TABLES, `${schema ?? "public"}.${name}`)
      ? TABLES[`${schema ?? "public"}.${name}`]
      : undefined,
  tablegroup: (name) =>
    Object.hasOwn(TABLEGROUPS, name) ? { shards: TABLEGROUPS[name] } : undefined,
};

/** A database with tablegroups but no table in them yet. */
export const EMPTY_VIEW: SchemaView = {
  hasTablegroupTables: false,
  table: () => undefined,
  tablegroup: VIEW.tablegroup,
};

/** A database without tablegroup tables whose lookups throw: proves the fast path skips them. */
export const THROWING_VIEW: SchemaView = {
  hasTablegroupTables: false,
  table: () => {
    throw new Error("table() called on the fast path");
  },
  tablegroup: () => {
    throw new Error("tablegroup() called on the fast path");
  },
};
