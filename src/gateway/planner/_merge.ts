/**
 * The merge plan of a scattered SELECT that needs rows of several shards combined: ORDER BY,
 * LIMIT/OFFSET, aggregates, GROUP BY, HAVING, DISTINCT and DISTINCT ON. It rewrites the
 * statement's text into the one each shard runs (the client's target list kept as the first
 * columns, hidden columns appended for sort keys, group keys and aggregate partials; HAVING,
 * ORDER BY and LIMIT adapted) and says how the gateway merges the answers
 * ({@linkcode MergeSpec}). What cannot be merged exactly is refused with 0A000.
 *
 * @module
 */

import type { FuncCall, Node, ResTarget, SelectStmt } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { stringOf, stringsOf } from "./_ast.ts";
import { aggregateIn, isAggregateCall } from "./_aggregates.ts";
import { planHaving } from "./_merge_having.ts";
import { bound, shardLimit } from "./_merge_limit.ts";
import {
  type Clause,
  matching,
  type SelectLayout,
  selectLayout,
  type Span,
  tokenAt,
} from "./_clauses.ts";
import { indexOfByte, isPunct, isWord } from "./_lexer.ts";
import type { Occurrence } from "./_tables.ts";
import type { HavingExpr, MergeAggregate, MergeSortKey, MergeSpec } from "./types.ts";

function refuse(message: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message);
}

/** Aggregates merged from partials, by name (`every` is bool_and). */
const MERGEABLE: Record<string, MergeAggregate["fn"]> = {
  count: "count",
  sum: "sum",
  avg: "avg",
  min: "min",
  max: "max",
  bool_and: "bool_and",
  every: "bool_and",
  bool_or: "bool_or",
  string_agg: "string_agg",
  array_agg: "array_agg",
};

/** Collations that order text as the databases' default (code point order) does. */
const BYTE_ORDER_COLLATIONS = new Set(["c", "posix", "default"]);

interface Target {
  node: Node;
  span: Span;
  /** The expression's text, without its alias. */
  expr: string;
  /** The output column name ORDER BY may use, if known. */
  name: string | undefined;
  star: boolean;
  /** The aggregate this target shows, if it is one. */
  agg: number | null;
  /** The type it is cast to (`count(*)::int`), if it is. */
  cast?: string;
}

/** Builds a merge plan; one per statement. */
class MergePlanner {
  readonly #sel: SelectStmt;
  readonly #sql: string;
  readonly #layout: SelectLayout;
  readonly #occ: Occurrence[];
  readonly #hidden: string[] = [];
  readonly #aggs: MergeAggregate[] = [];
  readonly #aggTexts: string[] = [];
  #targets: Target[] = [];

  constructor(sel: SelectStmt, sql: string, layout: SelectLayout, occ: Occurrence[]) {
    this.#sel = sel;
    this.#sql = sql;
    this.#layout = layout;
    this.#occ = occ;
  }

  plan(): MergeSpec {
    const sel = this.#sel;
    if (sel.intoClause !== undefined) throw refuse("SELECT INTO across shards is not supported");
    if ((sel.lockingClause?.length ?? 0) > 0) {
      throw refuse("FOR UPDATE/SHARE with a result merged across shards is not supported");
    }
    if ((sel.windowClause?.length ?? 0) > 0) throw refuse("WINDOW across shards is not supported");
    const fn = aggregateIn([sel.targetList, sel.havingClause, sel.sortClause]);
    if (fn?.startsWith("window function")) throw refuse(`${fn} across shards is not supported`);
    if (fn === "GROUPING()" || JSON.stringify(sel.groupClause ?? []).includes('"GroupingSet"')) {
      throw refuse("GROUPING SETS, ROLLUP and CUBE across shards are not supported");
    }
    if (sel.limitOption === "LIMIT_OPTION_WITH_TIES") {
      throw refuse("FETCH FIRST … WITH TIES across shards is not supported");
    }
    const grouped = fn !== undefined || (sel.groupClause?.length ?? 0) > 0 ||
      sel.havingClause !== undefined;
    this.#readTargets(grouped);
    const edits: { at: Span; text: string }[] = [];
    let groupKeys: number[] = [];
    let having: HavingExpr | null = null;
    if (grouped) {
      if ((sel.distinctClause?.length ?? 0) > 0) {
        throw refuse(
          "DISTINCT together with aggregates or GROUP BY across shards is not supported",
        );
      }
      groupKeys = this.#groupKeys();
      const h = this.#having();
      having = h.expr;
      if (h.clause !== undefined) edits.push({ at: h.clause, text: h.text });
    }
    const sort = this.#sortKeys(grouped);
    const order = this.#clause("order");
    if (grouped && order !== undefined) edits.push({ at: order, text: "" });
    const distinct = grouped ? null : this.#distinct();
    const limit = bound(sel.limitCount, "LIMIT");
    const offset = bound(sel.limitOffset, "OFFSET");
    for (const c of this.#layout.clauses) {
      if (c.kind === "limit" || c.kind === "offset" || c.kind === "fetch") {
        edits.push({ at: c, text: "" });
      }
    }
    const tail = shardLimit(limit, offset, grouped);
    const head = this.#hidden.map((h) => `, ${h}`).join("");
    edits.push({
      at: { start: this.#layout.targets.end, end: this.#layout.targets.end },
      text: head,
    });
    edits.push({ at: { start: this.#layout.end, end: this.#layout.end }, text: tail });
    edits.sort((a, b) => a.at.start - b.at.start || a.at.end - b.at.end);
    let sql = "";
    let at = 0;
    for (const e of edits) {
      sql += this.#sql.slice(at, e.at.start) + e.text;
      at = e.at.end;
    }
    sql += this.#sql.slice(at, this.#layout.end);
    return {
      sql,
      visible: this.#targets.some((t) => t.star) ? null : this.#targets.length,
      hidden: this.#hidden.length,
      outputs: this.#targets.some((t) => t.star) ? [] : this.#targets.map((t) => t.agg),
      aggregates: this.#aggs,
      grouped,
      groupKeys,
      distinct,
      sort,
      having,
      limit,
      offset,
    };
  }

  #clause(kind: Clause["kind"]): Clause | undefined {
    return this.#layout.clauses.find((c) => c.kind === kind);
  }

  #text(s: Span): string {
    return this.#sql.slice(s.start, s.end);
  }

  /** A hidden column of `text` (one per distinct text). */
  #addHidden(text: string): number {
    const at = this.#hidden.indexOf(text);
    if (at >= 0) return at;
    this.#hidden.push(text);
    return this.#hidden.length - 1;
  }

  // ---- the target list ----

  #readTargets(grouped: boolean): void {
    const list = this.#sel.targetList ?? [];
    const spans = this.#layout.targetItems;
    if (spans.length !== list.length) {
      throw refuse("this target list cannot be merged across shards");
    }
    const tokens = this.#layout.tokens;
    this.#targets = list.map((n, i) => {
      const res = (n as { ResTarget: ResTarget }).ResTarget;
      const node = res.val!;
      const span = spans[i];
      let end = span.end;
      if (res.name !== undefined) {
        // Drop "[AS] alias".
        const last = tokens.findLastIndex((t) => t.end <= span.end);
        end = isWord(tokens[last - 1], "as") ? tokens[last - 1].start : tokens[last].start;
        end = tokens.findLast((t) => t.end <= end)!.end;
      }
      const star = "ColumnRef" in node &&
        (node.ColumnRef.fields ?? []).some((f) => "A_Star" in f);
      return {
        node,
        span,
        expr: this.#sql.slice(span.start, end),
        name: res.name ?? outputName(node),
        star,
        agg: null,
      };
    });
    if (!grouped) return;
    this.#targets.forEach((t, i) => {
      if (t.star) {
        throw refuse("SELECT * with aggregates or GROUP BY across shards is not supported");
      }
      const cast = castAggregate(t.node);
      if (isAggregateCall(t.node)) {
        t.agg = this.#aggregate((t.node as { FuncCall: FuncCall }).FuncCall, i);
      } else if (cast !== undefined) {
        // count(*)::int: the merged value converted at the gateway, as Postgres casts it.
        t.agg = this.#aggregate(cast.call, i);
        t.cast = cast.type;
      } else {
        const inner = aggregateIn(t.node);
        if (inner !== undefined && ("JsonArrayAgg" in t.node || "JsonObjectAgg" in t.node)) {
          throw refuse(`${inner} across shards is not supported`);
        }
        if (inner !== undefined) {
          throw refuse(
            `${inner} inside an expression across shards is not supported (select the aggregate itself)`,
          );
        }
      }
    });
  }

  /** The target an ORDER BY / DISTINCT ON / GROUP BY item names by position or output name. */
  #targetOf(node: Node): Target | undefined {
    if ("A_Const" in node && node.A_Const.ival !== undefined) {
      const k = node.A_Const.ival.ival ?? 0;
      const t = this.#targets[k - 1];
      if (t === undefined || this.#targets.slice(0, k).some((x) => x.star)) {
        throw refuse(
          "a position in ORDER BY or GROUP BY past SELECT * across shards is not supported",
        );
      }
      return t;
    }
    if ("ColumnRef" in node && node.ColumnRef.fields?.length === 1) {
      const name = stringOf(node.ColumnRef.fields[0]);
      if (name === undefined) return undefined;
      return this.#targets.find((t) => t.name === name);
    }
    return undefined;
  }

  // ---- aggregates ----

  /** The aggregate of a call (a new one for a visible target, else one of the same text). */
  #aggregate(f: FuncCall, visible: number | null): number {
    const names = stringsOf(f.funcname);
    const name = names[names.length - 1];
    if (names.length > 1 && names[0] !== "pg_catalog") {
      throw refuse(`aggregate function ${names.join(".")}() across shards is not supported`);
    }
    const kind = MERGEABLE[name];
    if (kind === undefined) {
      throw refuse(`aggregate function ${name}() across shards is not supported`);
    }
    if (f.over !== undefined) {
      throw refuse(`window function ${name}() across shards is not supported`);
    }
    if (f.agg_within_group) throw refuse(`${name}() WITHIN GROUP across shards is not supported`);
    if ((f.agg_order?.length ?? 0) > 0) {
      throw refuse(`${name}() with ORDER BY inside the call across shards is not supported`);
    }
    if (
      f.agg_distinct && kind !== "min" && kind !== "max" && kind !== "bool_and" &&
      kind !== "bool_or"
    ) {
      if (kind !== "count" || !this.#isShardingColumn(f.args?.[0])) {
        throw refuse(
          `${name}(DISTINCT …) across shards is only supported as count(DISTINCT sharding column)`,
        );
      }
    }
    const call = this.#callText(f);
    if (visible === null && kind === "array_agg") {
      throw refuse("array_agg() in HAVING or ORDER BY across shards is not supported");
    }
    if (visible === null) {
      const same = this.#aggTexts.indexOf(call.text);
      if (same >= 0) return same;
    }
    const agg: MergeAggregate = { fn: kind, args: [], visible };
    if (kind === "avg") {
      agg.args.push(this.#addHidden(`sum(${call.args})${call.filter}`));
      agg.args.push(this.#addHidden(`count(${call.args})${call.filter}`));
    } else if (kind !== "array_agg") {
      agg.args.push(this.#addHidden(call.text));
    }
    if (kind === "string_agg") {
      const d = f.args?.[1];
      if (
        d === undefined || !("A_Const" in d) || (d.A_Const.sval === undefined && !d.A_Const.isnull)
      ) {
        throw refuse("string_agg() across shards needs a constant delimiter");
      }
      agg.delimiter = d.A_Const.isnull ? null : d.A_Const.sval?.sval ?? "";
    }
    this.#aggs.push(agg);
    this.#aggTexts.push(call.text);
    return this.#aggs.length - 1;
  }

  /** The text of an aggregate call, its arguments and its FILTER clause. */
  #callText(f: FuncCall): { text: string; args: string; filter: string } {
    const tokens = this.#layout.tokens;
    const first = tokenAt(tokens, indexOfByte(this.#sql, f.location ?? 0));
    let open = first;
    while (open < tokens.length && !isPunct(tokens[open], "(")) open++;
    const close = matching(tokens, open);
    if (first < 0 || close < 0) throw refuse("this aggregate call cannot be merged across shards");
    let end = close;
    let filter = "";
    if (isWord(tokens[close + 1], "filter") && isPunct(tokens[close + 2], "(")) {
      end = matching(tokens, close + 2);
      filter = " " + this.#sql.slice(tokens[close + 1].start, tokens[end].end);
    }
    return {
      text: this.#sql.slice(tokens[first].start, tokens[end].end),
      args: close > open + 1 ? this.#sql.slice(tokens[open + 1].start, tokens[close - 1].end) : "",
      filter,
    };
  }

  /** Whether `n` names the sharding column of a table of the statement's top level. */
  #isShardingColumn(n: Node | undefined): boolean {
    if (n === undefined || !("ColumnRef" in n)) return false;
    const names = (n.ColumnRef.fields ?? []).map(stringOf);
    if (names.some((s) => s === undefined)) return false;
    const col = names[names.length - 1];
    const rel = names.length >= 2 ? names[names.length - 2] : undefined;
    return this.#occ.some((o) =>
      o.info.column === col &&
      (rel === undefined ? this.#occ.length === 1 : (o.alias ?? o.table.name) === rel)
    );
  }

  // ---- GROUP BY and HAVING ----

  #groupKeys(): number[] {
    const nodes = this.#sel.groupClause ?? [];
    if (nodes.length === 0) return [];
    const items = this.#clause("group")?.items ?? [];
    if (items.length !== nodes.length) throw refuse("this GROUP BY cannot be merged across shards");
    return nodes.map((n, i) => {
      // A position names a target; a name is an input column first (Postgres's rule for GROUP
      // BY), so it is sent as written: an output alias that is no input column fails there.
      const t = "A_Const" in n ? this.#targetOf(n) : undefined;
      checkCollation(t?.node ?? n, "GROUP BY");
      return this.#addHidden(t !== undefined ? t.expr : this.#text(items[i]));
    });
  }

  #having(): { expr: HavingExpr | null; clause?: Span; text: string } {
    return planHaving(this.#sel.havingClause, this.#clause("having"), {
      sql: this.#sql,
      layout: this.#layout,
      aggregate: (f: FuncCall) => this.#aggregate(f, null),
      hidden: (text: string) => this.#addHidden(text),
    });
  }

  // ---- ORDER BY and DISTINCT ----

  #sortKeys(grouped: boolean): MergeSortKey[] {
    const nodes = this.#sel.sortClause ?? [];
    if (nodes.length === 0) return [];
    const items = this.#clause("order")?.items ?? [];
    if (items.length !== nodes.length) throw refuse("this ORDER BY cannot be merged across shards");
    return nodes.map((n, i) => {
      const s = (n as { SortBy: NonNullable<Extract<Node, { SortBy: unknown }>["SortBy"]> }).SortBy;
      if (s.sortby_dir === "SORTBY_USING") {
        throw refuse("ORDER BY … USING across shards is not supported");
      }
      const descending = s.sortby_dir === "SORTBY_DESC";
      const nullsFirst = s.sortby_nulls === "SORTBY_NULLS_FIRST"
        ? true
        : s.sortby_nulls === "SORTBY_NULLS_LAST"
        ? false
        : descending;
      const node = s.node!;
      const t = this.#targetOf(node);
      checkCollation(t?.node ?? node, "ORDER BY");
      const key: MergeSortKey = { descending, nullsFirst };
      if (grouped) {
        if (t?.cast === "text") {
          throw refuse("ORDER BY an aggregate cast to text across shards is not supported");
        }
        if (t?.agg !== undefined && t.agg !== null) key.aggregate = t.agg;
        else if (t === undefined && isAggregateCall(node)) {
          key.aggregate = this.#aggregate((node as { FuncCall: FuncCall }).FuncCall, null);
        } else if (t === undefined && aggregateIn(node) !== undefined) {
          throw refuse("ORDER BY an expression of aggregates across shards is not supported");
        }
      }
      if (key.aggregate === undefined) {
        key.column = this.#addHidden(t !== undefined ? t.expr : this.#sortText(items[i]));
      }
      return key;
    });
  }

  /** An ORDER BY item's expression: without ASC/DESC and NULLS FIRST/LAST. */
  #sortText(item: Span): string {
    const tokens = this.#layout.tokens.filter((t) => t.start >= item.start && t.end <= item.end);
    let n = tokens.length;
    if (n >= 2 && isWord(tokens[n - 2], "nulls")) n -= 2;
    if (n >= 1 && (isWord(tokens[n - 1], "asc") || isWord(tokens[n - 1], "desc"))) n -= 1;
    return this.#sql.slice(tokens[0].start, tokens[n - 1].end);
  }

  #distinct(): number[] | null {
    const nodes = this.#sel.distinctClause ?? [];
    if (nodes.length === 0) return null;
    if (nodes.length === 1 && Object.keys(nodes[0]).length === 0) {
      // Plain DISTINCT: every visible column, compared as Postgres compares it.
      return this.#targets.map((t) => {
        if (t.star) {
          throw refuse("SELECT DISTINCT * across shards is not supported (name the columns)");
        }
        checkCollation(t.node, "DISTINCT");
        return this.#addHidden(t.expr);
      });
    }
    const items = this.#layout.distinctOn;
    if (items.length !== nodes.length) {
      throw refuse("this DISTINCT ON cannot be merged across shards");
    }
    return nodes.map((n, i) => {
      const t = this.#targetOf(n);
      checkCollation(t?.node ?? n, "DISTINCT ON");
      return this.#addHidden(t !== undefined ? t.expr : this.#text(items[i]));
    });
  }
}

/** The merge plan of a scattered top-level SELECT; throws a 0A000 PgError when it cannot. */
export function planMerge(sel: SelectStmt, sql: string, occ: Occurrence[]): MergeSpec {
  const layout = selectLayout(sql);
  if (layout === undefined) throw refuse("this SELECT cannot be merged across shards");
  return new MergePlanner(sel, sql, layout, occ).plan();
}

/** Types an aggregate's merged value may be cast to at the gateway (no type modifier). */
const AGGREGATE_CASTS = new Set(["int2", "int4", "int8", "numeric", "float4", "float8", "text"]);

/** `aggregate(…)::type` with a type the gateway converts to, or undefined. */
function castAggregate(n: Node): { call: FuncCall; type: string } | undefined {
  if (!("TypeCast" in n) || n.TypeCast.arg === undefined) return undefined;
  const tn = n.TypeCast.typeName;
  const names = stringsOf(tn?.names);
  const type = names[names.length - 1];
  if (
    tn === undefined || (tn.typmods?.length ?? 0) > 0 || (tn.arrayBounds?.length ?? 0) > 0 ||
    (names.length === 2 && names[0] !== "pg_catalog") || !AGGREGATE_CASTS.has(type)
  ) return undefined;
  const arg = n.TypeCast.arg;
  return isAggregateCall(arg)
    ? { call: (arg as { FuncCall: FuncCall }).FuncCall, type }
    : undefined;
}

/** The column name Postgres gives an unnamed target, where ORDER BY may use it. */
function outputName(n: Node): string | undefined {
  if ("ColumnRef" in n) {
    const f = n.ColumnRef.fields ?? [];
    return stringOf(f[f.length - 1]);
  }
  if ("FuncCall" in n) {
    const names = stringsOf(n.FuncCall.funcname);
    return names[names.length - 1];
  }
  if ("TypeCast" in n && n.TypeCast.arg !== undefined) {
    return outputName(n.TypeCast.arg) ??
      stringsOf(n.TypeCast.typeName?.names).at(-1);
  }
  return undefined;
}

/** Refuses a COLLATE other than the byte-order ones anywhere in a key expression. */
function checkCollation(n: Node, what: string): void {
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(walk);
      return;
    }
    if (typeof v !== "object" || v === null) return;
    for (const [k, x] of Object.entries(v)) {
      if (k === "CollateClause") {
        // deno-lint-ignore no-explicit-any
        const name = stringsOf((x as any).collname).at(-1) ?? "";
        if (!BYTE_ORDER_COLLATIONS.has(name.toLowerCase())) {
          throw refuse(
            `${what} with COLLATE "${name}" across shards is not supported (only the database's default order, "C" and "POSIX")`,
          );
        }
      }
      walk(x);
    }
  };
  walk(n);
}
