/**
 * Aggregate and window function calls in a parse tree (not looking into subqueries).
 *
 * @module
 */

import type { Node } from "libpg-query";
import { stringsOf } from "./_ast.ts";

/** Postgres's built-in aggregate functions (names in pg_catalog). */
export const AGGREGATES = new Set(
  (
    "count sum avg min max bool_and bool_or every string_agg array_agg json_agg jsonb_agg " +
    "json_agg_strict jsonb_agg_strict json_object_agg jsonb_object_agg json_object_agg_strict " +
    "jsonb_object_agg_strict json_object_agg_unique jsonb_object_agg_unique " +
    "json_object_agg_unique_strict jsonb_object_agg_unique_strict json_arrayagg json_objectagg " +
    "stddev stddev_pop stddev_samp variance var_pop var_samp bit_and bit_or bit_xor xmlagg " +
    "corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 " +
    "regr_slope regr_sxx regr_sxy regr_syy range_agg range_intersect_agg any_value mode " +
    "percentile_cont percentile_disc"
  ).split(" "),
);

/** The first aggregate or window function call in `v`, not looking into subqueries. */
export function aggregateIn(v: unknown): string | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = aggregateIn(x);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  for (const [k, x] of Object.entries(v)) {
    if (k === "SubLink" || k === "SelectStmt") continue;
    if (k === "FuncCall") {
      // deno-lint-ignore no-explicit-any
      const f = x as any;
      const names = stringsOf(f.funcname);
      const name = names[names.length - 1] ?? "";
      const builtin = names.length === 1 || names[0] === "pg_catalog";
      if (f.over !== undefined) return `window function ${name}()`;
      if (
        f.agg_star || f.agg_distinct || f.agg_filter !== undefined || f.agg_within_group ||
        (f.agg_order?.length ?? 0) > 0 || (builtin && AGGREGATES.has(name))
      ) {
        return `aggregate function ${name}()`;
      }
    }
    if (k === "GroupingFunc") return "GROUPING()";
    if (k === "JsonArrayAgg") return "aggregate function json_arrayagg()";
    if (k === "JsonObjectAgg") return "aggregate function json_objectagg()";
    if (typeof x === "object" && x !== null) {
      const r = aggregateIn(x);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** Whether `n` is an aggregate call (a built-in aggregate, or a call with aggregate syntax). */
export function isAggregateCall(n: Node): boolean {
  if (!("FuncCall" in n)) return false;
  const f = n.FuncCall;
  const names = stringsOf(f.funcname);
  const builtin = names.length === 1 || names[0] === "pg_catalog";
  return f.over === undefined &&
    (!!f.agg_star || !!f.agg_distinct || f.agg_filter !== undefined || !!f.agg_within_group ||
      (f.agg_order?.length ?? 0) > 0 || (builtin && AGGREGATES.has(names[names.length - 1])));
}
