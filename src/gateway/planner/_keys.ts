/**
 * Values of a sharding column in expressions: a constant (`5`, `-5`, `'abc'`, `'5'::bigint`,
 * `CAST(… AS …)`, NULL) or a bound parameter (`$1`), as {@linkcode KeyValue}s.
 *
 * A literal's text is what Postgres's input function for the column's type will read (the
 * executor parses and hashes it the same way), so a value is taken only when that holds: casts
 * must stay within the column's hash family (`'5'::bigint` on an int column, not `5.7::int`,
 * which rounds) and carry no type modifier (`::numeric(4,1)` rounds, `::varchar(2)` truncates),
 * and a non-integer numeric literal does not key an integer column.
 *
 * @module
 */

import type { Node } from "libpg-query";
import type { ShardingType } from "../../shared/keyspace/mod.ts";
import { hashFamily, shardingTypeOfTypeName } from "./_ast.ts";
import type { KeyValue } from "./types.ts";

/** The key `expr` denotes for a column of type `type`, or undefined when it is not a constant. */
export function keyOf(expr: Node | undefined, type: ShardingType): KeyValue | undefined {
  const family = hashFamily(type);
  let e = expr;
  while (e !== undefined && "TypeCast" in e) {
    // A type modifier may change the value (numeric(4,1) rounds, varchar(2) truncates).
    if ((e.TypeCast.typeName?.typmods?.length ?? 0) > 0) return undefined;
    const cast = shardingTypeOfTypeName(e.TypeCast.typeName);
    if (cast === undefined || hashFamily(cast) !== family) return undefined;
    e = e.TypeCast.arg;
  }
  if (e === undefined) return undefined;
  if ("ParamRef" in e) {
    const n = e.ParamRef.number;
    return n !== undefined && n > 0 ? { param: n } : undefined;
  }
  if (!("A_Const" in e)) return undefined;
  const c = e.A_Const;
  if (c.isnull) return { literal: null };
  if (c.sval !== undefined) return { literal: c.sval.sval ?? "" };
  if (family === "text" || family === "uuid") return undefined;
  if (c.ival !== undefined) return { literal: String(c.ival.ival ?? 0) };
  if (c.fval !== undefined) {
    const text = c.fval.fval ?? "";
    if (family === "int" && !/^-?[0-9]+$/.test(text)) return undefined;
    return { literal: text };
  }
  return undefined;
}

/**
 * The keys of `= ANY(…)`'s right side: `ARRAY[c, …]` or an array literal `'{…}'` (possibly cast
 * to an array of the column's family); undefined for anything else (e.g. `ANY($1)`).
 */
export function keysOfAny(expr: Node | undefined, type: ShardingType): KeyValue[] | undefined {
  if (expr === undefined) return undefined;
  if ("A_ArrayExpr" in expr) return keysOfList(expr.A_ArrayExpr.elements, type);
  let e: Node | undefined = expr;
  while (e !== undefined && "TypeCast" in e) {
    const tn = e.TypeCast.typeName;
    if (tn === undefined || (tn.arrayBounds?.length ?? 0) !== 1 || (tn.typmods?.length ?? 0) > 0) {
      return undefined;
    }
    const cast = shardingTypeOfTypeName({ ...tn, arrayBounds: [] });
    if (cast === undefined || hashFamily(cast) !== hashFamily(type)) return undefined;
    e = e.TypeCast.arg;
  }
  if (e === undefined || !("A_Const" in e) || e.A_Const.sval === undefined) return undefined;
  const items = parseArrayLiteral(e.A_Const.sval.sval ?? "");
  if (items === undefined || items.length === 0) return undefined;
  return items.map((literal) => ({ literal }));
}

/** The keys of a list of constants (an IN list), or undefined if one is not a constant. */
export function keysOfList(list: Node[] | undefined, type: ShardingType): KeyValue[] | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const out: KeyValue[] = [];
  for (const item of list) {
    const k = keyOf(item, type);
    if (k === undefined) return undefined;
    out.push(k);
  }
  return out;
}

/**
 * The elements of a one-dimensional array literal (`{1,2}`, `{"a b",NULL}`), NULL as null;
 * undefined for what this small reader does not handle (nested arrays, dimension decorations).
 */
export function parseArrayLiteral(text: string): (string | null)[] | undefined {
  const s = text.trim();
  if (!s.startsWith("{") || !s.endsWith("}")) return undefined;
  const out: (string | null)[] = [];
  let i = 1;
  const end = s.length - 1;
  const skip = () => {
    while (i < end && /\s/.test(s[i])) i++;
  };
  skip();
  if (i === end) return out;
  for (;;) {
    skip();
    let value = "";
    if (s[i] === '"') {
      i++;
      while (i < end && s[i] !== '"') {
        if (s[i] === "\\") i++;
        value += s[i++];
      }
      if (s[i] !== '"') return undefined;
      i++;
      out.push(value);
    } else {
      let quoted = false;
      while (i < end && s[i] !== ",") {
        if (s[i] === "{" || s[i] === "}" || s[i] === '"') return undefined;
        if (s[i] === "\\") {
          i++;
          quoted = true;
        }
        value += s[i++];
      }
      value = value.trim();
      if (value === "") return undefined;
      out.push(!quoted && value.toUpperCase() === "NULL" ? null : value);
    }
    skip();
    if (i === end) return out;
    if (s[i] !== ",") return undefined;
    i++;
  }
}

/** A key's identity, to compare and deduplicate keys. */
export function keyId(k: KeyValue): string {
  return "param" in k ? `$${k.param}` : k.literal === null ? "null" : `'${k.literal}`;
}
