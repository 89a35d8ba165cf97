/**
 * HAVING of a merged statement: which conjuncts stay on the shards, and the condition the
 * gateway evaluates on merged groups ({@linkcode HavingExpr}): comparisons (and BETWEEN, IS
 * [NOT] NULL) of aggregates, grouped columns, constants and parameters, with AND, OR and NOT.
 *
 * @module
 */

import type { FuncCall, Node } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { conjunctsOf, stringsOf } from "./_ast.ts";
import { aggregateIn, isAggregateCall } from "./_aggregates.ts";
import { type Clause, type SelectLayout, type Span, tokenAt } from "./_clauses.ts";
import { indexOfByte, isPunct, isWord } from "./_lexer.ts";
import type { HavingExpr, HavingOperand } from "./types.ts";

/** What HAVING planning needs of the merge planner. */
export interface HavingContext {
  sql: string;
  layout: SelectLayout;
  /** The aggregate of a call (partials added as hidden columns when new). */
  aggregate(f: FuncCall): number;
  /** A hidden column of `text`. */
  hidden(text: string): number;
}

function refuse(message: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message);
}

const CAST_TYPES = new Set([
  "int2",
  "int4",
  "int8",
  "integer",
  "bigint",
  "smallint",
  "numeric",
  "decimal",
  "float4",
  "float8",
  "real",
  "text",
  "varchar",
]);

const COMPARISONS: Record<string, "<" | "<=" | "=" | "<>" | ">" | ">="> = {
  "<": "<",
  "<=": "<=",
  "=": "=",
  "<>": "<>",
  "!=": "<>",
  ">": ">",
  ">=": ">=",
};

/**
 * HAVING: conjuncts without aggregates stay on the shards (they depend on the group keys only);
 * the others are evaluated by the gateway, and kept on the shards only to be checked there
 * (`(…) IS NULL OR TRUE` filters nothing). `text` replaces the clause in the shards' statement.
 */
export function planHaving(
  h: Node | undefined,
  clause: Clause | undefined,
  ctx: HavingContext,
): { expr: HavingExpr | null; clause?: Span; text: string } {
  if (h === undefined || clause === undefined) return { expr: null, text: "" };
  const text = (s: Span) => ctx.sql.slice(s.start, s.end);
  const conjuncts = conjunctsOf(h);
  const pieces = splitAnd(ctx.layout, clause.body);
  const pushed: string[] = [];
  const here: Node[] = [];
  const checked: string[] = [];
  conjuncts.forEach((c, i) => {
    if (pieces.length === conjuncts.length && aggregateIn(c) === undefined) {
      pushed.push(`(${text(pieces[i])})`);
    } else {
      here.push(c);
    }
  });
  if (here.length > 0) {
    checked.push(
      pieces.length === conjuncts.length
        ? `((${
          pieces.filter((_, i) => here.includes(conjuncts[i])).map((p) => text(p)).join(
            ") AND (",
          )
        }) IS NULL OR TRUE)`
        : `((${text(clause.body)}) IS NULL OR TRUE)`,
    );
  }
  const expr = here.length === 0
    ? null
    : here.length === 1
    ? havingExpr(ctx, here[0])
    : { op: "and" as const, args: here.map((c) => havingExpr(ctx, c)) };
  const all = pieces.length === conjuncts.length ? [...pushed, ...checked] : checked;
  return { expr, clause, text: `HAVING ${all.join(" AND ")}` };
}

function havingExpr(ctx: HavingContext, n: Node): HavingExpr {
  if ("BoolExpr" in n) {
    const b = n.BoolExpr;
    const args = (b.args ?? []).map((a) => havingExpr(ctx, a));
    if (b.boolop === "NOT_EXPR") return { op: "not", arg: args[0] };
    return { op: b.boolop === "OR_EXPR" ? "or" : "and", args };
  }
  if ("NullTest" in n) {
    return {
      op: "is_null",
      arg: operand(ctx, n.NullTest.arg!),
      negated: n.NullTest.nulltesttype === "IS_NOT_NULL",
    };
  }
  if (
    "A_Expr" in n && (n.A_Expr.kind === "AEXPR_BETWEEN" || n.A_Expr.kind === "AEXPR_NOT_BETWEEN")
  ) {
    const r = n.A_Expr.rexpr;
    const bounds = r !== undefined && "List" in r ? r.List.items ?? [] : [];
    if (n.A_Expr.lexpr !== undefined && bounds.length === 2) {
      const left = operand(ctx, n.A_Expr.lexpr);
      const within: HavingExpr = {
        op: "and",
        args: [
          { op: "cmp", cmp: ">=", left, right: operand(ctx, bounds[0]) },
          { op: "cmp", cmp: "<=", left, right: operand(ctx, bounds[1]) },
        ],
      };
      return n.A_Expr.kind === "AEXPR_BETWEEN" ? within : { op: "not", arg: within };
    }
  }
  if ("A_Expr" in n && n.A_Expr.kind === "AEXPR_OP") {
    const names = stringsOf(n.A_Expr.name);
    const cmp = COMPARISONS[names[names.length - 1]];
    if (cmp !== undefined && n.A_Expr.lexpr !== undefined && n.A_Expr.rexpr !== undefined) {
      return {
        op: "cmp",
        cmp,
        left: operand(ctx, n.A_Expr.lexpr),
        right: operand(ctx, n.A_Expr.rexpr),
      };
    }
  }
  throw refuse(
    "this HAVING condition across shards is not supported (only comparisons of aggregates and grouped columns with constants, combined with AND, OR and NOT)",
  );
}

function operand(ctx: HavingContext, n: Node): HavingOperand {
  if (isAggregateCall(n)) {
    return { aggregate: ctx.aggregate((n as { FuncCall: FuncCall }).FuncCall) };
  }
  if ("A_Const" in n) return constantOf(n);
  if ("ParamRef" in n && n.ParamRef.number !== undefined) return { param: n.ParamRef.number };
  if ("TypeCast" in n && n.TypeCast.arg !== undefined && "A_Const" in n.TypeCast.arg) {
    const names = stringsOf(n.TypeCast.typeName?.names);
    if (CAST_TYPES.has(names[names.length - 1] ?? "") && !n.TypeCast.typeName?.arrayBounds) {
      return constantOf(n.TypeCast.arg);
    }
  }
  if ("ColumnRef" in n) {
    const tokens = ctx.layout.tokens;
    const first = tokenAt(tokens, indexOfByte(ctx.sql, n.ColumnRef.location ?? 0));
    const count = (n.ColumnRef.fields?.length ?? 1) * 2 - 1;
    const last = tokens[first + count - 1];
    if (first >= 0 && last !== undefined) {
      return { column: ctx.hidden(ctx.sql.slice(tokens[first].start, last.end)) };
    }
  }
  throw refuse(
    "this HAVING condition across shards is not supported (only comparisons of aggregates and grouped columns with constants, combined with AND, OR and NOT)",
  );
}

function constantOf(n: Node): HavingOperand {
  const c = (n as { A_Const: NonNullable<Extract<Node, { A_Const: unknown }>["A_Const"]> }).A_Const;
  if (c.isnull) return { constant: null, kind: "number" };
  if (c.ival !== undefined) return { constant: String(c.ival.ival ?? 0), kind: "number" };
  if (c.fval !== undefined) return { constant: c.fval.fval ?? "0", kind: "number" };
  if (c.sval !== undefined) return { constant: c.sval.sval ?? "", kind: "string" };
  if (c.boolval !== undefined) {
    return { constant: c.boolval.boolval ? "true" : "false", kind: "bool" };
  }
  throw refuse("this HAVING constant across shards is not supported");
}

/** The AND-separated pieces of a span at depth 0 (BETWEEN … AND makes them not match). */
function splitAnd(layout: SelectLayout, s: Span): Span[] {
  const tokens = layout.tokens.filter((t) => t.start >= s.start && t.end <= s.end);
  const out: Span[] = [];
  let depth = 0;
  let first = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (isPunct(t, "(") || isPunct(t, "[")) depth++;
    else if (isPunct(t, ")") || isPunct(t, "]")) depth--;
    else if (depth === 0 && isWord(t, "and")) {
      out.push({ start: tokens[first].start, end: tokens[i - 1].end });
      first = i + 1;
    }
  }
  if (first < tokens.length) {
    out.push({ start: tokens[first].start, end: tokens[tokens.length - 1].end });
  }
  return out;
}
