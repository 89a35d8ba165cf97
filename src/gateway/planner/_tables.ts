/**
 * Every table a statement names, found by a generic walk of its parse tree, grouped by query
 * block (a SELECT, INSERT, UPDATE, DELETE or MERGE level, each subquery, CTE and set-operation
 * arm its own block) so the planner can tell a table of the top level from one in a subquery.
 *
 * A name that a WITH clause in scope defines is a CTE, not a table (a non-recursive CTE sees
 * only the CTEs before it; the target of INSERT/UPDATE/DELETE/MERGE is always a table).
 * System catalogs are neutral: they exist on every shard and are not collected.
 *
 * @module
 */

import type { RangeVar } from "libpg-query";
import { isCatalog, isRangeVar } from "./_ast.ts";
import type { SchemaView, TableInfo, TableName } from "./types.ts";

/** The kinds of query block; `statement` is the root of any other statement (DDL…). */
export type BlockKind =
  | "SelectStmt"
  | "InsertStmt"
  | "UpdateStmt"
  | "DeleteStmt"
  | "MergeStmt"
  | "statement";

/** One query level. */
export interface Block {
  kind: BlockKind;
  /** The statement body (e.g. a `SelectStmt`), unwrapped. */
  // deno-lint-ignore no-explicit-any
  body: any;
  parent: Block | null;
  /** The tablegroup tables named at this level (FROM items, the DML target). */
  occurrences: Occurrence[];
}

/** One mention of a table of a tablegroup. */
export interface Occurrence {
  table: TableName;
  /** The alias, or null (then the table's name is its visible name). */
  alias: string | null;
  /** Whether the name was schema-qualified. */
  qualified: boolean;
  info: TableInfo;
  /** The target of INSERT/UPDATE/DELETE/MERGE. */
  target: boolean;
}

/** What a statement names. */
export interface Tables {
  root: Block;
  /** Every block, parents before children. */
  blocks: Block[];
  /** Tablegroup → its tables named in the statement (each once). */
  tablegroups: Map<string, TableName[]>;
  /** Tables of the default tablegroup (each once). */
  defaults: TableName[];
  /** A data-modifying statement: INSERT/UPDATE/DELETE/MERGE anywhere, FOR UPDATE/SHARE, INTO. */
  write: boolean;
}

const QUERY_KINDS = new Set(["SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);

const NO_CTES: ReadonlySet<string> = new Set();

/** Collects the tables of one parsed statement (`node`: a wrapped node such as `{SelectStmt: …}`). */
export function collectTables(node: unknown, view: SchemaView): Tables {
  return new Collector(view).run(node);
}

class Collector {
  readonly #view: SchemaView;
  readonly #infos = new Map<string, TableInfo | undefined>();
  readonly #seen = new Set<string>();
  readonly blocks: Block[] = [];
  readonly tablegroups = new Map<string, TableName[]>();
  readonly defaults: TableName[] = [];
  write = false;

  constructor(view: SchemaView) {
    this.#view = view;
  }

  run(node: unknown): Tables {
    let root: Block;
    const entries = typeof node === "object" && node !== null ? Object.entries(node) : [];
    if (entries.length === 1 && QUERY_KINDS.has(entries[0][0])) {
      root = this.query(entries[0][0] as BlockKind, entries[0][1], null, NO_CTES);
    } else {
      root = { kind: "statement", body: entries[0]?.[1], parent: null, occurrences: [] };
      this.blocks.push(root);
      this.node(node, root, NO_CTES);
    }
    return {
      root,
      blocks: this.blocks,
      tablegroups: this.tablegroups,
      defaults: this.defaults,
      write: this.write,
    };
  }

  /** Looks a table up once per statement. */
  lookup(schema: string | null, name: string): TableInfo | undefined {
    const key = `${schema ?? ""}\0${name}`;
    if (this.#infos.has(key)) return this.#infos.get(key);
    const info = this.#view.table(schema, name);
    this.#infos.set(key, info);
    return info;
  }

  node(v: unknown, block: Block, ctes: ReadonlySet<string>): void {
    if (Array.isArray(v)) {
      for (const x of v) this.node(x, block, ctes);
      return;
    }
    if (typeof v !== "object" || v === null) return;
    if (isRangeVar(v)) {
      this.record(v, block, ctes, false);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== "object" || x === null) continue;
      if (QUERY_KINDS.has(k)) this.query(k as BlockKind, x, block, ctes);
      else this.node(x, block, ctes);
    }
  }

  // deno-lint-ignore no-explicit-any
  query(kind: BlockKind, body: any, parent: Block | null, outer: ReadonlySet<string>): Block {
    const b: Block = { kind, body, parent, occurrences: [] };
    this.blocks.push(b);
    if (kind !== "SelectStmt") this.write = true;
    if ((body.lockingClause?.length ?? 0) > 0 || body.intoClause !== undefined) this.write = true;
    let ctes = outer;
    const w = body.withClause;
    if (w?.ctes !== undefined) {
      // deno-lint-ignore no-explicit-any
      const names: string[] = w.ctes.map((c: any) => c.CommonTableExpr?.ctename ?? "");
      w.ctes.forEach((
        // deno-lint-ignore no-explicit-any
        c: any,
        i: number,
      ) => {
        const visible = new Set([...outer, ...(w.recursive ? names : names.slice(0, i))]);
        this.node(c.CommonTableExpr?.ctequery, b, visible);
      });
      ctes = new Set([...outer, ...names]);
    }
    if (kind !== "SelectStmt" && isRangeVar(body.relation)) {
      this.record(body.relation, b, ctes, true);
    }
    for (const [k, x] of Object.entries(body)) {
      if (k === "withClause" || k === "lockingClause" || typeof x !== "object" || x === null) {
        continue;
      }
      if (k === "relation" && kind !== "SelectStmt") continue;
      // A set operation's arms are SelectStmt bodies, not wrapped nodes.
      if (kind === "SelectStmt" && (k === "larg" || k === "rarg")) {
        this.query("SelectStmt", x, b, ctes);
      } else this.node(x, b, ctes);
    }
    return b;
  }

  record(rv: RangeVar, block: Block, ctes: ReadonlySet<string>, target: boolean): void {
    const schema = rv.schemaname ?? null;
    const name = rv.relname!;
    if (!target && schema === null && ctes.has(name)) return;
    if (isCatalog(schema, name)) return;
    const info = this.lookup(schema, name);
    const table: TableName = { schema: schema ?? "public", name };
    const key = `${info?.tablegroup ?? ""}\0${table.schema}\0${name}`;
    const first = !this.#seen.has(key);
    this.#seen.add(key);
    if (info === undefined) {
      if (first) this.defaults.push(table);
      return;
    }
    if (first) {
      const list = this.tablegroups.get(info.tablegroup);
      if (list === undefined) this.tablegroups.set(info.tablegroup, [table]);
      else list.push(table);
    }
    block.occurrences.push({
      table,
      alias: rv.alias?.aliasname ?? null,
      qualified: schema !== null,
      info,
      target,
    });
  }
}
