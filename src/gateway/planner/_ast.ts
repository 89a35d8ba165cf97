/**
 * Small readers for libpg-query's JSON parse tree (Postgres's raw parse tree: names are folded
 * already, `location` fields are UTF-8 byte offsets into the parsed text).
 *
 * @module
 */

import type { Node, RangeVar, TypeName } from "libpg-query";
import { type ShardingType, shardingTypeOf } from "../../shared/keyspace/mod.ts";

/** The text of a `String` node. */
export function stringOf(n: Node | undefined): string | undefined {
  return n !== undefined && "String" in n ? n.String.sval ?? "" : undefined;
}

/** The texts of a list of `String` nodes (others are skipped). */
export function stringsOf(list: Node[] | undefined): string[] {
  const out: string[] = [];
  for (const n of list ?? []) {
    const s = stringOf(n);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** The operator of an `A_Expr` (`=` for `=` and for `OPERATOR(pg_catalog.=)`). */
export function operatorOf(name: Node[] | undefined): string {
  const names = stringsOf(name);
  if (names.length === 2 && names[0] !== "pg_catalog") return "";
  return names[names.length - 1] ?? "";
}

/** The AND-conjuncts of a boolean expression (nested ANDs flattened). */
export function conjunctsOf(expr: Node | undefined, out: Node[] = []): Node[] {
  if (expr === undefined) return out;
  if ("BoolExpr" in expr && expr.BoolExpr.boolop === "AND_EXPR") {
    for (const a of expr.BoolExpr.args ?? []) conjunctsOf(a, out);
  } else {
    out.push(expr);
  }
  return out;
}

/** Whether a value of the parse tree is a RangeVar body (`relation` fields are not wrapped). */
export function isRangeVar(v: unknown): v is RangeVar {
  return typeof v === "object" && v !== null && typeof (v as RangeVar).relname === "string";
}

/** Calls `fn` on every RangeVar below `node`, wrapped or not, in document order. */
export function forEachRangeVar(node: unknown, fn: (rv: RangeVar) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) forEachRangeVar(n, fn);
  } else if (typeof node === "object" && node !== null) {
    if (isRangeVar(node)) {
      fn(node);
      return;
    }
    for (const v of Object.values(node)) {
      if (typeof v === "object" && v !== null) forEachRangeVar(v, fn);
    }
  }
}

/**
 * Whether a table name is a system catalog, present on every shard: schema `pg_catalog` or
 * `information_schema`, or an unqualified name starting with `pg_`.
 */
export function isCatalog(schema: string | null, name: string): boolean {
  if (schema === null) return name.startsWith("pg_");
  return schema === "pg_catalog" || schema === "information_schema";
}

/** The sharding type of a column or cast type, or undefined (arrays, domains, other types). */
export function shardingTypeOfTypeName(tn: TypeName | undefined): ShardingType | undefined {
  if (tn === undefined || (tn.arrayBounds?.length ?? 0) > 0 || tn.setof || tn.pct_type) {
    return undefined;
  }
  const names = stringsOf(tn.names);
  if (names.length === 0 || names.length > 2) return undefined;
  if (names.length === 2 && names[0] !== "pg_catalog") return undefined;
  const name = names[names.length - 1];
  return shardingTypeOf(name);
}

const SQL_TYPE_NAMES: Record<string, string> = {
  int2: "smallint",
  int4: "integer",
  int8: "bigint",
  float4: "real",
  float8: "double precision",
  bool: "boolean",
  bpchar: "character",
  varchar: "character varying",
  timestamptz: "timestamp with time zone",
  timestamp: "timestamp without time zone",
  timetz: "time with time zone",
  time: "time without time zone",
  varbit: "bit varying",
};

/** A type name for messages, as Postgres's `format_type` spells the common ones. */
export function typeNameText(tn: TypeName | undefined): string {
  if (tn === undefined) return "unknown";
  const names = stringsOf(tn.names);
  const bare = names.length === 2 && names[0] === "pg_catalog" ? [names[1]] : names;
  const text = bare.length === 1 ? SQL_TYPE_NAMES[bare[0]] ?? bare[0] : bare.join(".");
  return text + "[]".repeat(tn.arrayBounds?.length ?? 0);
}

/**
 * The hash family of a sharding type: values of one family with equal values hash alike
 * (int2, int4 and int8 hash as int8 does).
 */
export function hashFamily(t: ShardingType): string {
  return t === "int2" || t === "int4" || t === "int8" ? "int" : t;
}
