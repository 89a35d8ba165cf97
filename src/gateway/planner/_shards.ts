/**
 * Where a DML statement on a sharded tablegroup may run: each query block's tables must be
 * co-located (every pair joined on their sharding columns) and the block's WHERE may pin the
 * sharding key to values; the statement is keyed when every block is pinned to the same single
 * value, keyed or scattered when only the top block names sharded tables, and refused otherwise
 * (a subquery or CTE would read rows of other shards).
 *
 * Why a pin on one table of a co-located block pins the whole block: the join conditions make
 * the sharding columns of the non-null tables of each result row equal, so the row is formed on
 * the one shard that owns that value; a top-level WHERE conjunct `t.col = v` keeps only rows
 * where t is non-null with value v. Pins come from the WHERE clause and from the ON clauses of
 * inner joins not under the nullable side of an outer join; co-location edges from any join
 * condition or WHERE conjunct.
 *
 * @module
 */

import type { InsertStmt, Node, SelectStmt } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { ShardingType } from "../../shared/keyspace/mod.ts";
import { conjunctsOf, hashFamily, operatorOf, stringOf, stringsOf } from "./_ast.ts";
import { aggregateIn } from "./_aggregates.ts";
import { keyId, keyOf, keysOfAny, keysOfList } from "./_keys.ts";
import type { Block, Occurrence, Tables } from "./_tables.ts";
import { planMerge } from "./_merge.ts";
import type { InsertSource, InsertSplit, KeyValue, MergeSpec, Plan } from "./types.ts";
import { selectSpan, valuesRows } from "./_values_rows.ts";
import { charPosition, firstKeyword } from "./_lexer.ts";

/** What one block of a sharded statement allows: its keys (null: any shard). */
interface BlockRoute {
  block: Block;
  keys: KeyValue[] | null;
  type: ShardingType;
  /** An INSERT of several rows: its text cut by row. */
  split?: InsertSplit;
  /** An INSERT … SELECT from a constant source. */
  source?: InsertSource;
}

function refuse(message: string, hint?: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message, hint ? { hint } : undefined);
}

/**
 * The plan of a SELECT/INSERT/UPDATE/DELETE/MERGE whose tables are all of sharded tablegroup
 * `tg`; throws a 0A000 {@linkcode PgError} for what cannot run correctly yet.
 *
 * Keyed with one key: one shard answers the whole statement, so nothing is refused for its
 * shape. Keyed with several keys or scattered: rows are concatenated, or, for a top-level
 * SELECT with ORDER BY, LIMIT, OFFSET, aggregates, GROUP BY, HAVING or DISTINCT, merged as the
 * plan's `merge` says (`_merge.ts`, from `sql`, the statement's text); what cannot be merged
 * exactly is refused.
 */
export function planSharded(tables: Tables, tg: string, sql: string): Plan {
  const routes: BlockRoute[] = [];
  for (const b of tables.blocks) {
    if (b.occurrences.length > 0) routes.push(routeBlock(b, tg, sql));
  }
  const write = tables.write;
  const first = routes[0];
  if (first.source !== undefined) {
    if (routes.length > 1) {
      throw refuse(
        `INSERT … SELECT from tables of sharded tablegroup "${tg}" into one of its tables is not supported yet`,
        "Use INSERT … VALUES, COPY, or a SELECT that reads no table of the tablegroup.",
      );
    }
    return {
      kind: "keyed",
      tablegroup: tg,
      type: first.type,
      keys: [],
      write,
      source: first.source,
    };
  }
  const one = first.keys?.length === 1 ? keyId(first.keys[0]) : undefined;
  if (one !== undefined && routes.every((r) => r.keys?.length === 1 && keyId(r.keys[0]) === one)) {
    const plan: Plan = {
      kind: "keyed",
      tablegroup: tg,
      type: first.type,
      keys: first.keys!,
      write,
    };
    if (first.split !== undefined && routes.length === 1) plan.split = first.split;
    return plan;
  }
  const root = tables.root;
  if (routes.length === 1 && first.block === root) {
    let merge: MergeSpec | undefined;
    if (root.kind === "SelectStmt" && mergeShape(root.body as SelectStmt) !== undefined) {
      merge = planMerge(root.body as SelectStmt, sql, first.block.occurrences);
    }
    if (first.keys !== null) {
      const plan: Plan = {
        kind: "keyed",
        tablegroup: tg,
        type: first.type,
        keys: first.keys,
        write,
      };
      if (merge !== undefined) plan.merge = merge;
      if (first.split !== undefined) plan.split = first.split;
      return plan;
    }
    return merge !== undefined
      ? { kind: "scatter", tablegroup: tg, write, merge }
      : { kind: "scatter", tablegroup: tg, write };
  }
  if (root.kind === "SelectStmt" && root.body.op !== undefined && root.body.op !== "SETOP_NONE") {
    const union = unionAll(tables, routes, tg);
    if (union !== undefined) return union;
    const op = String(root.body.op).replace("SETOP_", "") + (root.body.all ? " ALL" : "");
    throw refuse(
      `${op} on a table of sharded tablegroup "${tg}" needs merging across shards, which is not supported yet (unless every part is restricted to the same single sharding key value)`,
    );
  }
  throw refuse(
    `a subquery or WITH query on a table of sharded tablegroup "${tg}" is only supported when every part of the statement is restricted to the same single sharding key value`,
  );
}

/** Whether a block is a node of a tree of UNION ALLs at the top of the statement. */
function isUnionAll(b: Block | null): boolean {
  return b !== null && b.kind === "SelectStmt" && b.body.op === "SETOP_UNION" && !!b.body.all &&
    (b.parent === null || isUnionAll(b.parent));
}

/**
 * UNION ALL of SELECTs that each read tables of the tablegroup: every shard runs the whole
 * statement and the rows are concatenated (a union of bags is the bags of each shard, joined).
 * Undefined when the shape is not that; refused when it needs merging (ORDER BY or LIMIT over
 * the union, or a part that would itself need merging).
 */
function unionAll(tables: Tables, routes: BlockRoute[], tg: string): Plan | undefined {
  const root = tables.root;
  if (!isUnionAll(root)) return undefined;
  const arms = tables.blocks.filter((b) =>
    b.kind === "SelectStmt" && (b.body.op ?? "SETOP_NONE") === "SETOP_NONE" && isUnionAll(b.parent)
  );
  // Every part reads the tablegroup's tables (a part of constants would come from each shard),
  // and nothing but the parts does (a subquery would read one shard's rows).
  if (arms.some((a) => a.occurrences.length === 0)) return undefined;
  if (routes.some((r) => !arms.includes(r.block))) return undefined;
  const body = root.body as SelectStmt;
  if (
    (body.sortClause?.length ?? 0) > 0 || body.limitCount !== undefined ||
    body.limitOffset !== undefined || arms.some((a) => mergeShape(a.body) !== undefined)
  ) {
    throw refuse(
      `UNION ALL on tables of sharded tablegroup "${tg}" with ORDER BY, LIMIT, aggregates, GROUP BY or DISTINCT needs merging across shards, which is not supported yet`,
    );
  }
  const keyed = routes.every((r) => r.keys !== null && r.type === routes[0].type);
  if (keyed) {
    const keys = dedupe(routes.flatMap((r) => r.keys!));
    return { kind: "keyed", tablegroup: tg, type: routes[0].type, keys, write: tables.write };
  }
  return { kind: "scatter", tablegroup: tg, write: tables.write };
}

function routeBlock(b: Block, tg: string, sql: string): BlockRoute {
  switch (b.kind) {
    case "InsertStmt":
      return routeInsert(b, tg, sql);
    case "MergeStmt":
      throw refuse(`MERGE on a table of sharded tablegroup "${tg}" is not supported yet`);
    case "UpdateStmt": {
      const target = b.occurrences.find((o) => o.target);
      for (const t of b.body.targetList ?? []) {
        const name = t.ResTarget?.name;
        if (target !== undefined && name === target.info.column) {
          throw refuse(
            `UPDATE may not change sharding column "${name}" of table "${target.table.name}" (its rows would move to another shard)`,
          );
        }
      }
      return routeQuery(b, tg, b.body.fromClause ?? []);
    }
    case "DeleteStmt":
      return routeQuery(b, tg, b.body.usingClause ?? []);
    default:
      return routeQuery(b, tg, b.body.fromClause ?? []);
  }
}

function routeInsert(b: Block, tg: string, sql: string): BlockRoute {
  const ins = b.body as InsertStmt;
  const target = b.occurrences[0];
  const column = target.info.column!;
  const type = target.info.type!;
  const name = target.table.name;
  const sel = ins.selectStmt !== undefined && "SelectStmt" in ins.selectStmt
    ? ins.selectStmt.SelectStmt
    : undefined;
  if (sel === undefined) {
    throw refuse(
      `INSERT into table "${name}" of sharded tablegroup "${tg}" must give a value for its sharding column "${column}"`,
    );
  }
  // A SELECT without FROM (constants, `SELECT 1, 'a'`): one row as VALUES would give, or rows
  // that all share its key (a set-returning function in another column); all on the key's shard.
  const rows = sel.valuesLists ??
    (sel.fromClause === undefined && (sel.op ?? "SETOP_NONE") === "SETOP_NONE"
      ? [{
        List: { items: (sel.targetList ?? []).map((t) => "ResTarget" in t ? t.ResTarget.val : t) },
      }]
      : undefined);
  const several = rows !== undefined && rows.length > 1;
  if (
    several && (sel.sortClause !== undefined || sel.limitCount !== undefined ||
      sel.limitOffset !== undefined || sel.withClause !== undefined ||
      sel.lockingClause !== undefined)
  ) {
    throw refuse(
      `INSERT of several rows with ORDER BY, LIMIT, OFFSET or WITH on its VALUES into a table of sharded tablegroup "${tg}" is not supported yet`,
    );
  }
  const position = target.info.position;
  if (ins.cols === undefined && !position) {
    throw refuse(`INSERT into a table of sharded tablegroup "${tg}" must name its columns`);
  }
  // Without a column list, the values are the table's columns in order.
  const at = ins.cols === undefined
    ? position! - 1
    : ins.cols.findIndex((c) =>
      "ResTarget" in c && c.ResTarget.name === column && c.ResTarget.indirection === undefined
    );
  if (at < 0) {
    throw refuse(
      `INSERT into table "${name}" of sharded tablegroup "${tg}" must give a value for its sharding column "${column}"`,
    );
  }
  for (const t of ins.onConflictClause?.targetList ?? []) {
    if ("ResTarget" in t && t.ResTarget.name === column) {
      throw refuse(
        `ON CONFLICT DO UPDATE may not change sharding column "${column}" of table "${name}"`,
      );
    }
  }
  if (rows === undefined) return { block: b, keys: [], type, source: insertSource(b, at, sql) };
  const values: (Node | undefined)[] = [];
  const keys: KeyValue[] = [];
  for (const row of rows) {
    const value = "List" in row ? row.List.items?.[at] : undefined;
    if (value !== undefined && "SetToDefault" in value) {
      throw refuse(
        `INSERT into table "${name}" of sharded tablegroup "${tg}" may not use DEFAULT for its sharding column "${column}"`,
      );
    }
    const key = keyOf(value, type);
    if (key === undefined && sel.valuesLists === undefined) {
      // `SELECT f(…), …` without FROM: its one row is computed first, as from any SELECT.
      return { block: b, keys: [], type, source: insertSource(b, at, sql) };
    }
    if (key === undefined) {
      throw refuse(
        `the value of sharding column "${column}" in an INSERT into table "${name}" must be a constant or a parameter`,
      );
    }
    values.push(value);
    keys.push(key);
  }
  if (!several) return { block: b, keys, type };
  const distinct = dedupe(keys);
  if (distinct.length > 1 && firstKeyword(sql) === "explain") {
    throw refuse(
      `EXPLAIN of an INSERT of several rows into a table of sharded tablegroup "${tg}" is not supported yet`,
    );
  }
  const cut = valuesRows(sql, ins.relation?.location ?? 0, values);
  if (cut === undefined) {
    throw refuse(
      `INSERT of several rows into a table of sharded tablegroup "${tg}" is only supported as INSERT INTO t (…) VALUES (…), (…)`,
    );
  }
  const conflict = ins.onConflictClause;
  const split: InsertSplit = {
    head: cut.head,
    rows: cut.rows.map((text, i) => ({ text, key: keys[i] })),
    tail: cut.tail,
    returning: (ins.returningList?.length ?? 0) > 0,
    maySkipRows: conflict !== undefined &&
      (conflict.action === "ONCONFLICT_NOTHING" || conflict.whereClause !== undefined),
  };
  return { block: b, keys: distinct, type, split };
}

/**
 * An INSERT … SELECT whose SELECT reads no table of a tablegroup (the caller refuses one that
 * does): its text cut around the SELECT, which the gateway runs first (`InsertSource`).
 */
function insertSource(b: Block, column: number, sql: string): InsertSource {
  const ins = b.body as InsertStmt;
  const tg = b.occurrences[0].info.tablegroup;
  if (firstKeyword(sql) === "explain") {
    throw refuse(
      `EXPLAIN of INSERT … SELECT into a table of sharded tablegroup "${tg}" is not supported yet`,
    );
  }
  if (ins.withClause !== undefined) {
    throw refuse(
      `INSERT … SELECT with a WITH clause before INSERT into a table of sharded tablegroup "${tg}" is not supported`,
      "Put the WITH clause in the SELECT: INSERT INTO t (…) WITH … SELECT ….",
    );
  }
  const conflict = ins.onConflictClause;
  const returning = ins.returningList ?? [];
  const at = (n: Node | undefined) => (n && "ResTarget" in n ? n.ResTarget.location : undefined);
  const span = selectSpan(sql, ins.relation?.location ?? 0, ins.cols !== undefined, {
    conflict: conflict?.location,
    returning: returning.length ? at(returning[0]) : undefined,
  });
  if (span === undefined) {
    throw refuse(
      `INSERT … SELECT into a table of sharded tablegroup "${tg}" is only supported as INSERT INTO t (…) SELECT …`,
    );
  }
  // A bare string literal or NULL in the SELECT's own target list takes the column's type (in
  // a set operation or a subquery, Postgres makes it text first).
  const sel = "SelectStmt" in ins.selectStmt! ? ins.selectStmt.SelectStmt : undefined;
  const untyped: boolean[] = [];
  const params: (number | null)[] = [];
  // DISTINCT, or a GROUP BY or ORDER BY by its place or its name, makes Postgres resolve a
  // literal to text.
  const keys = [
    ...(sel?.groupClause ?? []),
    ...(sel?.sortClause ?? []).map((s) => "SortBy" in s ? s.SortBy.node : undefined),
  ];
  const ordinals = new Set(
    keys.map((n) => n !== undefined && "A_Const" in n ? n.A_Const.ival?.ival : undefined),
  );
  const named = new Set(
    keys.map((n) =>
      n !== undefined && "ColumnRef" in n && n.ColumnRef.fields?.length === 1
        ? stringOf(n.ColumnRef.fields[0])
        : undefined
    ),
  );
  if (
    sel && (sel.op ?? "SETOP_NONE") === "SETOP_NONE" && sel.valuesLists === undefined &&
    sel.distinctClause === undefined
  ) {
    for (const t of sel.targetList ?? []) {
      const v = "ResTarget" in t ? t.ResTarget.val : undefined;
      if (v !== undefined && "ColumnRef" in v && v.ColumnRef.fields?.some((f) => "A_Star" in f)) {
        break; // what follows a * is at places not known here
      }
      const c = v !== undefined && "A_Const" in v ? v.A_Const : undefined;
      const alias = "ResTarget" in t ? t.ResTarget.name : undefined;
      untyped.push(
        c !== undefined && (c.isnull === true || c.sval !== undefined) &&
          !ordinals.has(untyped.length + 1) && !(alias !== undefined && named.has(alias)),
      );
      params.push(v !== undefined && "ParamRef" in v ? v.ParamRef.number ?? null : null);
    }
  }
  return {
    head: sql.slice(0, span.start),
    select: sql.slice(span.start, span.end),
    tail: sql.slice(span.end),
    offset: charPosition(sql, span.start) - 1,
    column,
    columnName: b.occurrences[0].info.column!,
    untyped,
    params,
    returning: returning.length > 0,
    maySkipRows: conflict !== undefined &&
      (conflict.action === "ONCONFLICT_NOTHING" || conflict.whereClause !== undefined),
  };
}

/** A small union-find over a block's occurrences (co-location classes). */
class Classes {
  readonly #parent: number[];
  constructor(n: number) {
    this.#parent = Array.from({ length: n }, (_, i) => i);
  }
  find(i: number): number {
    while (this.#parent[i] !== i) i = this.#parent[i] = this.#parent[this.#parent[i]];
    return i;
  }
  union(a: number, b: number): void {
    this.#parent[this.find(a)] = this.find(b);
  }
}

interface Qual {
  expr: Node;
  /** Whether a pin in it restricts the block's rows (WHERE, or an inner join not under an outer one). */
  strong: boolean;
}

function routeQuery(b: Block, tg: string, from: Node[]): BlockRoute {
  const occ = b.occurrences;
  const quals: Qual[] = conjunctsOf(b.body.whereClause).map((expr) => ({ expr, strong: true }));
  const usings: [Node, Node, string[]][] = [];
  for (const item of from) gatherJoins(item, true, quals, usings);
  const items = from.length + (occ.some((o) => o.target) ? 1 : 0);
  const single = occ.length === 1 && items === 1 && isPlainTable(from[0]) ? 0 : -1;

  const classes = new Classes(occ.length);
  const resolve = (e: Node | undefined): number => resolveColumn(e, occ, single);
  for (const [l, r, cols] of usings) {
    const a = occurrenceOf(l, occ);
    const c = occurrenceOf(r, occ);
    if (a < 0 || c < 0) continue;
    if (cols.includes(occ[a].info.column!) && occ[a].info.column === occ[c].info.column) {
      if (sameFamily(occ[a], occ[c])) classes.union(a, c);
    }
  }
  const pins: { at: number; keys: KeyValue[] }[] = [];
  for (const { expr, strong } of quals) {
    if (!("A_Expr" in expr)) continue;
    const e = expr.A_Expr;
    if (operatorOf(e.name) !== "=") continue;
    const l = resolve(e.lexpr);
    if (e.kind === "AEXPR_OP") {
      const r = resolve(e.rexpr);
      if (l >= 0 && r >= 0) {
        if (sameFamily(occ[l], occ[r])) classes.union(l, r);
        continue;
      }
      if (!strong) continue;
      const at = l >= 0 ? l : r;
      if (at < 0) continue;
      const key = keyOf(l >= 0 ? e.rexpr : e.lexpr, occ[at].info.type!);
      if (key !== undefined) pins.push({ at, keys: [key] });
    } else if (strong && l >= 0 && e.kind === "AEXPR_IN") {
      const list = e.rexpr !== undefined && "List" in e.rexpr ? e.rexpr.List.items : undefined;
      const keys = keysOfList(list, occ[l].info.type!);
      if (keys !== undefined) pins.push({ at: l, keys: dedupe(keys) });
    } else if (strong && l >= 0 && e.kind === "AEXPR_OP_ANY") {
      const keys = keysOfAny(e.rexpr, occ[l].info.type!);
      if (keys !== undefined) pins.push({ at: l, keys: dedupe(keys) });
    }
  }

  // The smallest pin of each co-location class.
  const best = new Map<number, { at: number; keys: KeyValue[] }>();
  for (const p of pins) {
    const c = classes.find(p.at);
    const cur = best.get(c);
    if (cur === undefined || p.keys.length < cur.keys.length) best.set(c, p);
  }
  const roots = new Set(occ.map((_, i) => classes.find(i)));
  if (roots.size === 1) {
    const pin = best.get([...roots][0]);
    if (pin === undefined) return { block: b, keys: null, type: occ[0].info.type! };
    return { block: b, keys: pin.keys, type: occ[pin.at].info.type! };
  }
  // Tables that are not joined on their sharding columns meet only if all sit on one key.
  const classPins = [...roots].map((r) => best.get(r));
  const ids = new Set(classPins.map((p) => p?.keys.length === 1 ? keyId(p.keys[0]) : undefined));
  if (ids.size === 1 && !ids.has(undefined)) {
    const pin = classPins[0]!;
    return { block: b, keys: pin.keys, type: occ[pin.at].info.type! };
  }
  const names = occ.map((o) => o.alias ?? o.table.name);
  throw refuse(
    `a join of tables of sharded tablegroup "${tg}" (${
      names.join(", ")
    }) must equate their sharding columns (e.g. a.id = b.id), or restrict each to the same single key value`,
  );
}

function dedupe(keys: KeyValue[]): KeyValue[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const id = keyId(k);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function sameFamily(a: Occurrence, b: Occurrence): boolean {
  return hashFamily(a.info.type!) === hashFamily(b.info.type!);
}

function isPlainTable(item: Node | undefined): boolean {
  if (item === undefined) return true; // UPDATE/DELETE without FROM/USING: the target alone
  if ("RangeVar" in item) return true;
  return "RangeTableSample" in item && item.RangeTableSample.relation !== undefined &&
    "RangeVar" in item.RangeTableSample.relation;
}

/** Collects join conditions below a FROM item; `strong`: not under an outer join's nullable side. */
function gatherJoins(item: Node, strong: boolean, quals: Qual[], usings: [Node, Node, string[]][]) {
  if (!("JoinExpr" in item)) return;
  const j = item.JoinExpr;
  const t = j.jointype;
  const inner = t === "JOIN_INNER";
  if (j.larg !== undefined) {
    gatherJoins(j.larg, strong && (inner || t === "JOIN_LEFT"), quals, usings);
  }
  if (j.rarg !== undefined) {
    gatherJoins(j.rarg, strong && (inner || t === "JOIN_RIGHT"), quals, usings);
  }
  for (const expr of conjunctsOf(j.quals)) quals.push({ expr, strong: strong && inner });
  if (j.usingClause !== undefined && j.larg !== undefined && j.rarg !== undefined) {
    usings.push([j.larg, j.rarg, stringsOf(j.usingClause)]);
  }
}

/** The occurrence a FROM item that is a plain table reference stands for, or -1. */
function occurrenceOf(item: Node, occ: Occurrence[]): number {
  const rv = "RangeVar" in item ? item.RangeVar : undefined;
  if (rv === undefined) return -1;
  const visible = rv.alias?.aliasname ?? rv.relname;
  return occ.findIndex((o) => (o.alias ?? o.table.name) === visible);
}

/**
 * The occurrence whose sharding column `e` names (`col` when the block reads that one table
 * only, `t.col`, `alias.col`, `schema.t.col`), or -1.
 */
function resolveColumn(e: Node | undefined, occ: Occurrence[], single: number): number {
  if (e === undefined || !("ColumnRef" in e)) return -1;
  const fields = e.ColumnRef.fields ?? [];
  const names: string[] = [];
  for (const f of fields) {
    const s = stringOf(f);
    if (s === undefined) return -1; // A_Star
    names.push(s);
  }
  const col = names[names.length - 1];
  if (names.length === 1) return single >= 0 && occ[single].info.column === col ? single : -1;
  const rel = names[names.length - 2];
  const schema = names.length >= 3 ? names[names.length - 3] : null;
  let found = -1;
  for (let i = 0; i < occ.length; i++) {
    const o = occ[i];
    if (
      schema !== null
        ? o.alias === null && o.table.name === rel && o.table.schema === schema
        : (o.alias ?? o.table.name) === rel
    ) {
      if (found >= 0) return -1;
      found = i;
    }
  }
  return found >= 0 && occ[found].info.column === col ? found : -1;
}

/** What in a top-level SELECT needs rows of several shards merged, or undefined. */
export function mergeShape(sel: SelectStmt): string | undefined {
  if ((sel.distinctClause?.length ?? 0) > 0) {
    const first = sel.distinctClause![0];
    return Object.keys(first).length === 0 ? "DISTINCT" : "DISTINCT ON";
  }
  const fn = aggregateIn(sel.targetList);
  if (fn !== undefined) return fn;
  if ((sel.groupClause?.length ?? 0) > 0) return "GROUP BY";
  if (sel.havingClause !== undefined) return "HAVING";
  if ((sel.windowClause?.length ?? 0) > 0) return "WINDOW";
  if ((sel.sortClause?.length ?? 0) > 0) return "ORDER BY";
  if (sel.limitCount !== undefined && !isNullConst(sel.limitCount)) {
    return sel.limitOption === "LIMIT_OPTION_WITH_TIES" ? "FETCH FIRST … WITH TIES" : "LIMIT";
  }
  if (sel.limitOffset !== undefined) return "OFFSET";
  return undefined;
}

function isNullConst(n: Node): boolean {
  return "A_Const" in n && n.A_Const.isnull === true;
}
