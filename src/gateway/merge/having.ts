/**
 * HAVING evaluated at the gateway on a merged group, with SQL's three-valued logic: a
 * comparison with NULL is unknown, AND/OR/NOT follow SQL's truth tables, and only groups for
 * which the condition is true are kept.
 *
 * @module
 */

import type { HavingExpr, HavingOperand } from "../planner/mod.ts";
import { compareNumeric, type Numeric, numericOfBigInt, parseNumeric } from "./numeric.ts";
import { compareValues, type Value } from "./values.ts";

const encoder = new TextEncoder();

/** What a HAVING operand refers to: merged aggregates, the group's columns, parameters. */
export interface GroupValues {
  aggregate(i: number): Value;
  column(i: number): Value;
  /** Parameter `$n`'s text (null for NULL). */
  param(n: number): string | null;
}

/** Whether `expr` is true for the group (false or unknown: the group is dropped). */
export function havingHolds(expr: HavingExpr, g: GroupValues): boolean {
  return evaluate(expr, g) === true;
}

function evaluate(e: HavingExpr, g: GroupValues): boolean | null {
  switch (e.op) {
    case "and": {
      let unknown = false;
      for (const a of e.args) {
        const v = evaluate(a, g);
        if (v === false) return false;
        if (v === null) unknown = true;
      }
      return unknown ? null : true;
    }
    case "or": {
      let unknown = false;
      for (const a of e.args) {
        const v = evaluate(a, g);
        if (v === true) return true;
        if (v === null) unknown = true;
      }
      return unknown ? null : false;
    }
    case "not": {
      const v = evaluate(e.arg, g);
      return v === null ? null : !v;
    }
    case "is_null": {
      const v = operand(e.arg, g, null);
      return (v === null) !== e.negated;
    }
    case "cmp": {
      const l = operand(e.left, g, null);
      const r = operand(e.right, g, l);
      const left = "constant" in e.left || "param" in e.left ? operand(e.left, g, r) : l;
      if (left === null || r === null) return null;
      const c = compareMixed(left, r);
      switch (e.cmp) {
        case "<":
          return c < 0;
        case "<=":
          return c <= 0;
        case "=":
          return c === 0;
        case "<>":
          return c !== 0;
        case ">":
          return c > 0;
        case ">=":
          return c >= 0;
      }
    }
  }
}

/** An operand's value; a constant is read as the type of `other` (the other side's value). */
function operand(o: HavingOperand, g: GroupValues, other: Value): Value {
  if ("aggregate" in o) return g.aggregate(o.aggregate);
  if ("column" in o) return g.column(o.column);
  const text = "param" in o ? g.param(o.param) : o.constant;
  if (text === null) return null;
  const kind = "param" in o ? "string" : o.kind;
  if (other === null || other.t === "numeric" || other.t === "int") {
    if (kind === "bool") return { t: "bool", v: text === "true" };
    if (kind === "string" && other === null) return { t: "bytes", v: encoder.encode(text) };
    const n = parseNumeric(text);
    if (n === undefined) return { t: "bytes", v: encoder.encode(text) };
    if (n.kind === "finite" && n.scale === 0) return { t: "int", v: n.coef };
    return { t: "numeric", v: n };
  }
  if (other.t === "float") return { t: "float", v: Number(text) };
  if (other.t === "bool") return { t: "bool", v: ["t", "true", "yes", "on", "1"].includes(text) };
  return { t: "bytes", v: encoder.encode(text) };
}

/** Compares two non-null values, reading ints and numerics (and floats) on one scale. */
function compareMixed(a: Exclude<Value, null>, b: Exclude<Value, null>): number {
  if (a.t === b.t) return compareValues(a, b);
  if (a.t === "float" || b.t === "float") return compareValues(asFloat(a), asFloat(b));
  return compareNumeric(asNumeric(a), asNumeric(b));
}

function asFloat(v: Exclude<Value, null>): { t: "float"; v: number } {
  if (v.t === "float") return v;
  if (v.t === "int") return { t: "float", v: Number(v.v) };
  if (v.t === "numeric") {
    const n = v.v;
    return { t: "float", v: n.kind === "finite" ? Number(n.coef) / 10 ** n.scale : NaN };
  }
  return { t: "float", v: NaN };
}

function asNumeric(v: Exclude<Value, null>): Numeric {
  if (v.t === "numeric") return v.v;
  if (v.t === "int") return numericOfBigInt(v.v);
  return { kind: "nan" };
}
