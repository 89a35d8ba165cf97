/**
 * {@linkcode planQuery}: where a query string (a simple-protocol Query, or a Parse message's
 * statement with `$n` parameters) goes, decided from its text and the database's layout.
 *
 * Pure: no I/O, no clock; the same text and layout give the same plan, so plans may be cached
 * (see `plan_cache.ts`). Parsing uses the real Postgres grammar (libpg-query, WASM): await
 * {@linkcode initPlanner} once before planning.
 *
 * @module
 */

import { loadModule, parseSync } from "libpg-query";
import type { Constraint, Node, ParseResult, TransactionStmtKind } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { firstKeyword, skipSpace } from "./_lexer.ts";
import { isCatalog, stringsOf } from "./_ast.ts";
import { checkConstraint, planNewSyntax, severalStatements } from "./ddl.ts";
import { planSharded } from "./_shards.ts";
import { planCopy } from "./_copy.ts";
import { collectTables, type Tables } from "./_tables.ts";
import type { Plan, SchemaView, TableInfo, TableName } from "./types.ts";

let ready = false;

/** Loads the Postgres grammar (WASM). Await it once before {@linkcode planQuery}. */
export async function initPlanner(): Promise<void> {
  await loadModule();
  ready = true;
}

const DEFAULT: Plan = Object.freeze({ kind: "default" });
/** A statement on no table (catalogs only): it may join a transaction block on any shard. */
const NO_TABLES: Plan = Object.freeze({ kind: "default", touchesTables: false });
const SESSION: Plan = Object.freeze({ kind: "session_setting" });
/** Several statements, one of them transaction control, all for the default shard. */
const CONTROLS_TRANSACTION: Plan = Object.freeze({ kind: "default", controlsTransaction: true });

type TransactionOp = Extract<Plan, { kind: "transaction" }>["op"];

const TRANSACTION_OPS: Partial<Record<TransactionStmtKind, TransactionOp>> = {
  TRANS_STMT_BEGIN: "begin",
  TRANS_STMT_START: "begin",
  TRANS_STMT_COMMIT: "commit",
  TRANS_STMT_ROLLBACK: "rollback",
  TRANS_STMT_SAVEPOINT: "savepoint",
  TRANS_STMT_RELEASE: "release",
  TRANS_STMT_ROLLBACK_TO: "rollback_to",
  TRANS_STMT_PREPARE: "prepare",
  TRANS_STMT_COMMIT_PREPARED: "commit_prepared",
  TRANS_STMT_ROLLBACK_PREPARED: "rollback_prepared",
};

/**
 * The plan of `sql` on a database whose layout `view` describes. Never throws for what the
 * client sent: what may not run is a `refused` plan (0A000 unless it says otherwise, with a
 * 1-based character position for a syntax error in the new DDL).
 *
 * - Fast path: without tablegroup tables, a text that does not start with CREATE, DROP or ALTER
 *   is `default` without being parsed (so BEGIN, SET… are `default` there too).
 * - The new DDL (`ddl.ts`) first, then the Postgres grammar; text it cannot parse is `default`
 *   (Postgres reports the error itself).
 * - Several statements: `default` when each is `default`, transaction control or a session
 *   setting; refused when one touches a tablegroup (CREATE/DROP DATABASE there are `default`:
 *   Postgres refuses them in the implicit transaction block).
 */
export function planQuery(sql: string, view: SchemaView): Plan {
  const keyword = firstKeyword(sql);
  const ddl = keyword === "create" || keyword === "drop";
  if (!view.hasTablegroupTables && !ddl && keyword !== "alter") return DEFAULT;
  if (!ready) throw new Error("planQuery() called before initPlanner() resolved");
  try {
    if (ddl) {
      const plan = planNewSyntax(sql, view);
      if (plan !== undefined) return plan;
    }
    // libpg-query reads a C string: an empty text or one with NUL is Postgres's to refuse.
    if (skipSpace(sql, 0) === sql.length || sql.includes("\0")) return DEFAULT;
    let parsed: ParseResult;
    try {
      parsed = parseSync(sql) as ParseResult;
    } catch (e) {
      if (!(e instanceof Error && "sqlDetails" in e)) throw e;
      // A new-syntax statement after another one is ours to refuse; the rest is Postgres's.
      return (ddl ? undefined : planNewSyntax(sql, view)) ?? DEFAULT;
    }
    const stmts = parsed.stmts ?? [];
    if (stmts.length === 0) return DEFAULT;
    if (stmts.length === 1) return planStatement(stmts[0].stmt!, view, true, sql);
    let control = false;
    for (const s of stmts) {
      let plan: Plan;
      try {
        plan = planStatement(s.stmt!, view, false, sql);
      } catch (e) {
        if (e instanceof PgError) throw severalStatements();
        throw e;
      }
      const k = plan.kind;
      if (k !== "default" && k !== "transaction" && k !== "session_setting") {
        throw severalStatements();
      }
      if (k === "transaction") control = true;
    }
    return control ? CONTROLS_TRANSACTION : DEFAULT;
  } catch (e) {
    if (!(e instanceof PgError)) throw e;
    const plan: Plan = { kind: "refused", message: e.message, sqlstate: e.sqlstate };
    if (e.position !== undefined) plan.position = e.position;
    return plan;
  }
}

function refuse(message: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message);
}

/**
 * One parsed statement; `only`: the only statement of its query string `sql`. Throws
 * refusals.
 */
function planStatement(node: Node, view: SchemaView, only: boolean, sql: string): Plan {
  if ("TransactionStmt" in node) {
    const op = TRANSACTION_OPS[node.TransactionStmt.kind!];
    return op === undefined ? DEFAULT : { kind: "transaction", op };
  }
  // SET LOCAL and SET TRANSACTION are here too: they follow the session to its shards like
  // any setting (Postgres scopes them to the transaction itself).
  if ("VariableSetStmt" in node || "DiscardStmt" in node) return SESSION;
  if ("CreatedbStmt" in node) {
    if (!only) return DEFAULT;
    return { kind: "database_ddl", op: "create", name: node.CreatedbStmt.dbname! };
  }
  if ("DropdbStmt" in node) {
    if (!only) return DEFAULT;
    const plan: Plan = { kind: "database_ddl", op: "drop", name: node.DropdbStmt.dbname! };
    if (node.DropdbStmt.missing_ok) plan.ifExists = true;
    return plan;
  }
  if ("RenameStmt" in node && node.RenameStmt.renameType === "OBJECT_DATABASE") {
    if (!only) return DEFAULT;
    const r = node.RenameStmt;
    return { kind: "database_ddl", op: "rename", name: r.subname!, newName: r.newname! };
  }
  if ("ExplainStmt" in node) {
    const inner = planStatement(node.ExplainStmt.query!, view, only, sql);
    if ((inner.kind === "keyed" || inner.kind === "scatter") && inner.merge !== undefined) {
      throw refuse("EXPLAIN of a statement merged across shards is not supported yet");
    }
    const analyze = (node.ExplainStmt.options ?? []).some((o) =>
      "DefElem" in o && o.DefElem.defname === "analyze" && !isFalse(o.DefElem.arg)
    );
    if (!analyze && (inner.kind === "keyed" || inner.kind === "scatter")) {
      return { ...inner, write: false };
    }
    return inner;
  }
  if ("DropStmt" in node || "CommentStmt" in node) return planNamedDdl(node, view);

  const tables = collectTables(node, view);
  const tg = onlyTablegroup(tables);
  if (tg === undefined) return tables.defaults.length ? DEFAULT : NO_TABLES;
  const sharded = tables.blocks.some((b) => b.occurrences.some((o) => o.info.column !== null));

  if ("CopyStmt" in node) {
    return planCopy(
      node.CopyStmt,
      tg,
      view,
      (q) => planStatement(q, view, only, sql),
      (text) => planQuery(text, view),
      sql,
    );
  }
  if ("PrepareStmt" in node) {
    throw refuse(
      `PREPARE of a statement on tables of tablegroup "${tg}" is not supported: use the extended query protocol (Parse, Bind, Execute)`,
    );
  }
  if ("DeclareCursorStmt" in node) {
    throw refuse(`cursors on tables of tablegroup "${tg}" are not supported yet`);
  }
  if ("LockStmt" in node) {
    if (sharded) throw refuse(`LOCK on tables of sharded tablegroup "${tg}" is not supported yet`);
    return { kind: "scatter", tablegroup: tg, write: true };
  }
  if (tables.root.kind !== "statement") {
    if (!sharded) return { kind: "scatter", tablegroup: tg, write: tables.write };
    return planSharded(tables, tg, sql);
  }
  return planDdl(node, tables, tg, view);
}

function isFalse(arg: Node | undefined): boolean {
  if (arg === undefined) return false;
  if ("Boolean" in arg) return arg.Boolean.boolval !== true;
  if ("String" in arg) return ["false", "off", "no", "0"].includes(arg.String.sval ?? "");
  if ("Integer" in arg) return (arg.Integer.ival ?? 0) === 0;
  return false;
}

/** The one tablegroup a statement's tables belong to (undefined: none); throws when mixed. */
function onlyTablegroup(tables: Tables): string | undefined {
  const groups = [...tables.tablegroups.keys()];
  if (groups.length === 0) return undefined;
  const tg = groups[0];
  const first = `tablegroup "${tg}" (${names(tables.tablegroups.get(tg)!)})`;
  if (groups.length > 1) {
    const other = groups[1];
    throw refuse(
      `a statement may not mix tables of ${first} and of tablegroup "${other}" (${
        names(tables.tablegroups.get(other)!)
      })`,
    );
  }
  if (tables.defaults.length > 0) {
    throw refuse(
      `a statement may not mix tables of ${first} and of the default tablegroup (${
        names(tables.defaults)
      })`,
    );
  }
  return tg;
}

function names(list: TableName[]): string {
  return list.map((t) => t.schema === "public" ? t.name : `${t.schema}.${t.name}`).join(", ");
}

/** A table named by a list of String nodes (`t`, `s.t`, `db.s.t`). */
function tableOf(parts: string[]): { schema: string | null; name: string } {
  return {
    schema: parts.length >= 2 ? parts[parts.length - 2] : null,
    name: parts[parts.length - 1],
  };
}

const DROPPED_ON_TABLE = new Set(["OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE"]);

/**
 * DROP and COMMENT name their objects by lists of names, not RangeVars: DROP TABLE (all of one
 * tablegroup, or refused), DROP TRIGGER/POLICY/RULE … ON t, COMMENT ON TABLE/COLUMN/… of such
 * a table fan out; any other DROP (DROP INDEX: its table is unknown from the text) is default.
 */
function planNamedDdl(node: Node, view: SchemaView): Plan {
  let objects: string[][] = [];
  let drop = false;
  if ("DropStmt" in node) {
    const d = node.DropStmt;
    const lists = (d.objects ?? []).map((o) => "List" in o ? stringsOf(o.List.items) : []);
    if (d.removeType === "OBJECT_TABLE") {
      objects = lists;
      drop = true;
    } else if (d.removeType === "OBJECT_INDEX") {
      if (!view.hasTablegroupTables) return DEFAULT;
      return {
        kind: "drop_index",
        indexes: lists.map((l) => {
          const { schema, name } = tableOf(l);
          return { schema: schema ?? "public", name };
        }),
      };
    } else if (DROPPED_ON_TABLE.has(d.removeType ?? "")) {
      objects = lists.map((l) => l.slice(0, -1));
    } else {
      return DEFAULT;
    }
  } else if ("CommentStmt" in node) {
    const c = node.CommentStmt;
    const o = c.object;
    const parts = o !== undefined && "List" in o ? stringsOf(o.List.items) : [];
    if (c.objtype === "OBJECT_TABLE") objects = [parts];
    else if (
      c.objtype === "OBJECT_COLUMN" || c.objtype === "OBJECT_TABCONSTRAINT" ||
      DROPPED_ON_TABLE.has(c.objtype ?? "")
    ) objects = [parts.slice(0, -1)];
    else return DEFAULT;
  }
  const tablegroups = new Map<string, TableName[]>();
  const defaults: TableName[] = [];
  const dropped: TableName[] = [];
  let info: TableInfo | undefined;
  for (const parts of objects) {
    if (parts.length === 0) continue;
    const { schema, name } = tableOf(parts);
    if (isCatalog(schema, name)) continue;
    const table = { schema: schema ?? "public", name };
    info = view.table(schema, name);
    if (info === undefined) {
      defaults.push(table);
      continue;
    }
    const list = tablegroups.get(info.tablegroup) ?? [];
    list.push(table);
    tablegroups.set(info.tablegroup, list);
    if (drop) dropped.push(table);
  }
  const tg = onlyTablegroup({
    tablegroups,
    defaults,
    root: { kind: "statement", body: undefined, parent: null, occurrences: [] },
    blocks: [],
    write: true,
  });
  if (tg === undefined) return DEFAULT;
  return { kind: "fanout_ddl", tablegroup: tg, dropped };
}

const SHARDING_COLUMN_CHANGES = new Set(["AT_AlterColumnType", "AT_DropColumn"]);

/** DDL naming tables of tablegroup `tg` (by RangeVars): fan out, after the checks it needs. */
function planDdl(node: Node, tables: Tables, tg: string, view: SchemaView): Plan {
  const target = tables.root.occurrences[0];
  const column = target?.info.column ?? null;
  const plan: Plan = { kind: "fanout_ddl", tablegroup: tg, dropped: [] };
  if ("IndexStmt" in node) {
    const ix = node.IndexStmt;
    if (ix.concurrent) {
      throw refuse(
        `CREATE INDEX CONCURRENTLY on tables of tablegroup "${tg}" is not supported yet`,
      );
    }
    if (ix.unique && column !== null) {
      const cols = (ix.indexParams ?? []).map((p) =>
        "IndexElem" in p ? p.IndexElem.name : undefined
      );
      if (!cols.includes(column)) {
        throw refuse(
          `unique index${
            ix.idxname ? ` "${ix.idxname}"` : ""
          } on table "${target.table.name}" of sharded tablegroup "${tg}" must include its sharding column "${column}"`,
        );
      }
    }
  } else if ("AlterTableStmt" in node && column !== null) {
    for (const c of node.AlterTableStmt.cmds ?? []) {
      if (!("AlterTableCmd" in c)) continue;
      const cmd = c.AlterTableCmd;
      if (SHARDING_COLUMN_CHANGES.has(cmd.subtype ?? "") && cmd.name === column) {
        throw shardingColumnChange(column, target.table.name);
      }
      const def = cmd.def;
      const found: { c: Constraint; cols: string[] }[] = [];
      if (def !== undefined && "Constraint" in def) {
        found.push({ c: def.Constraint, cols: stringsOf(def.Constraint.keys) });
      } else if (def !== undefined && "ColumnDef" in def && cmd.subtype === "AT_AddColumn") {
        for (const k of def.ColumnDef.constraints ?? []) {
          if ("Constraint" in k) found.push({ c: k.Constraint, cols: [def.ColumnDef.colname!] });
        }
      }
      for (const { c: con, cols } of found) {
        const err = checkConstraint(con, cols, target.table, tg, column, view);
        if (err !== undefined) throw refuse(err);
      }
    }
  } else if ("RenameStmt" in node && target !== undefined) {
    const r = node.RenameStmt;
    if (r.renameType === "OBJECT_COLUMN" && r.subname === column && column !== null) {
      throw shardingColumnChange(column, target.table.name);
    }
    if (r.renameType === "OBJECT_TABLE") {
      plan.renamed = { from: target.table, to: { schema: target.table.schema, name: r.newname! } };
    }
  } else if ("AlterObjectSchemaStmt" in node && target !== undefined) {
    const a = node.AlterObjectSchemaStmt;
    if (a.objectType === "OBJECT_TABLE") {
      plan.renamed = { from: target.table, to: { schema: a.newschema!, name: target.table.name } };
    }
  } else if ("VacuumStmt" in node && node.VacuumStmt.is_vacuumcmd) {
    plan.outsideBlock = true; // VACUUM refuses a transaction block
  } else if (
    "ReindexStmt" in node &&
    (node.ReindexStmt.params ?? []).some((p) =>
      "DefElem" in p && p.DefElem.defname === "concurrently" && !isFalse(p.DefElem.arg)
    )
  ) {
    plan.outsideBlock = true; // so does REINDEX … CONCURRENTLY
  }
  return plan;
}

function shardingColumnChange(column: string, table: string): PgError {
  return refuse(
    `ALTER TABLE may not drop, retype or rename sharding column "${column}" of table "${table}"`,
  );
}
