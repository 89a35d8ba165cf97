/**
 * COPY on tables of a tablegroup: `COPY t [(cols)] FROM STDIN` → `copy_in` (each row to the shard
 * of its sharding-column value), `COPY t TO STDOUT` and `COPY (SELECT …) TO STDOUT` → `copy_out`
 * (every shard, or the shards of the query's keys, concatenated). What cannot be done exactly is
 * refused with 0A000: a file or program, a column list without the sharding column, a query that
 * needs merging across shards (ORDER BY, LIMIT, aggregates…) or that writes, an ENCODING other
 * than UTF8.
 *
 * @module
 */

import type { CopyStmt, Node } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { stringOf } from "./_ast.ts";
import { mergeShape } from "./_shards.ts";
import { charPosition, isPunct, isWord, tokenize } from "./_lexer.ts";
import { closingParen } from "./_values_rows.ts";
import type { CopyCheck, CopyFormat, Plan, SchemaView } from "./types.ts";

function refuse(message: string, hint?: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message, hint ? { hint } : undefined);
}

/**
 * The plan of a COPY naming tables of tablegroup `tg`; `planInner` plans the query of
 * `COPY (query) TO`. Throws refusals.
 */
export function planCopy(
  stmt: CopyStmt,
  tg: string,
  view: SchemaView,
  planInner: (query: Node) => Plan,
  planText: (sql: string) => Plan,
  sql: string,
): Plan {
  if (stmt.filename !== undefined || stmt.is_program) {
    throw refuse(
      `COPY to or from a file or program is not supported on tables of tablegroup "${tg}"`,
      "Use COPY … FROM STDIN or COPY … TO STDOUT (psql's \\copy).",
    );
  }
  const format = copyFormat(stmt.options ?? []);
  if (!stmt.is_from) {
    const plan: Extract<Plan, { kind: "copy_out" }> = {
      kind: "copy_out",
      tablegroup: tg,
      format: format.format,
      header: format.header,
    };
    if (stmt.query === undefined) return plan;
    const q = stmt.query;
    const merged = "SelectStmt" in q && mergeShape(q.SelectStmt) !== undefined;
    // The merge plan reads the text of a statement of its own: the query's, cut out.
    const cut = merged ? queryText(sql) : undefined;
    const text = cut?.text;
    const inner = text === undefined ? planInner(q) : planText(text);
    if (inner.kind === "refused") throw new PgError(inner.sqlstate ?? "0A000", inner.message);
    if (inner.kind !== "keyed" && inner.kind !== "scatter") {
      throw refuse(`this COPY (query) TO STDOUT on tables of tablegroup "${tg}" is not supported`);
    }
    if (inner.write) {
      throw refuse(
        `COPY (INSERT/UPDATE/DELETE … RETURNING) TO STDOUT on tables of tablegroup "${tg}" is not supported`,
      );
    }
    if (inner.merge !== undefined) {
      if (format.format === "binary" || option(stmt.options ?? [], "force_quote") !== undefined) {
        throw refuse(
          `COPY (query) TO STDOUT on tables of sharded tablegroup "${tg}" whose query needs merging across shards is only supported in text or CSV format without FORCE_QUOTE`,
        );
      }
      if (option(stmt.options ?? [], "encoding") !== undefined) {
        throw refuse(
          `COPY (query) TO STDOUT with ENCODING on tables of sharded tablegroup "${tg}" whose query needs merging across shards is not supported`,
        );
      }
      plan.merged = { plan: inner, sql: text!, layout: format, check: cut!.check };
      return plan;
    }
    if (inner.kind === "keyed") plan.keyed = { type: inner.type, keys: inner.keys };
    return plan;
  }
  const rel = stmt.relation!;
  const schema = rel.schemaname ?? null;
  const info = view.table(schema, rel.relname!)!;
  const table = { schema, name: rel.relname! };
  if (info.column === null || info.type === null) {
    return {
      kind: "copy_in",
      tablegroup: tg,
      table,
      column: null,
      type: null,
      keyIndex: null,
      format,
    };
  }
  const column = info.column;
  const encoding = option(stmt.options ?? [], "encoding");
  if (encoding !== undefined) {
    const name = (valueOf(encoding) ?? "").toLowerCase().replace(/[^a-z0-9]/g, "");
    if (!["utf8", "unicode", "sqlascii"].includes(name)) {
      throw refuse(
        `COPY FROM with ENCODING ${
          valueOf(encoding)
        } into table "${rel.relname}" of sharded tablegroup "${tg}" is not supported`,
        "Send the data in UTF8.",
      );
    }
  }
  let keyIndex: number | null = null;
  if (stmt.attlist !== undefined) {
    keyIndex = stmt.attlist.findIndex((c) => stringOf(c) === column);
    if (keyIndex < 0) {
      throw refuse(
        `COPY into table "${rel.relname}" of sharded tablegroup "${tg}" must give a value for its sharding column "${column}"`,
      );
    }
  }
  const forced = (name: string) => {
    const list = option(stmt.options ?? [], name)?.arg;
    if (list === undefined) return false;
    if ("A_Star" in list) return true;
    return "List" in list && (list.List.items ?? []).some((c) => stringOf(c) === column);
  };
  format.forceNotNull = format.format === "csv" && forced("force_not_null");
  format.forceNull = format.format === "csv" && forced("force_null");
  return {
    kind: "copy_in",
    tablegroup: tg,
    table,
    column,
    type: info.type,
    keyIndex,
    format,
  };
}

/**
 * The query of `COPY (query) TO …` (the text inside its parentheses) and the statement that
 * checks the COPY's options where Postgres checks them: the same COPY of no rows of the query.
 */
function queryText(
  sql: string,
): { text: string; check: CopyCheck } | undefined {
  const tokens = tokenize(sql);
  const copy = tokens.findIndex((t) => isWord(t, "copy"));
  const open = copy + 1;
  if (copy < 0 || !isPunct(tokens[open], "(")) return undefined;
  const close = closingParen(tokens, open);
  if (close < 0) return undefined;
  const text = sql.slice(tokens[open].end, tokens[close].start);
  const tail = sql.slice(tokens[close].end);
  const head = "COPY (SELECT * FROM (";
  const checkSql = `${head}${text}) AS multigres_q LIMIT 0)${tail}`;
  return {
    text,
    check: {
      sql: checkSql,
      query: [head.length + 1, charPosition(sql, tokens[open].end)],
      tail: [
        charPosition(checkSql, checkSql.length - tail.length),
        charPosition(sql, tokens[close].end),
      ],
    },
  };
}

type DefElem = { defname?: string; arg?: Node };

/** The last option of that name (Postgres refuses repeated ones itself). */
function option(options: Node[], name: string): DefElem | undefined {
  let found: DefElem | undefined;
  for (const o of options) {
    if ("DefElem" in o && o.DefElem.defname === name) found = o.DefElem;
  }
  return found;
}

/** An option's value as Postgres's defGetString reads it (undefined: no value). */
function valueOf(d: DefElem): string | undefined {
  const a = d.arg;
  if (a === undefined) return undefined;
  if ("String" in a) return a.String.sval ?? "";
  if ("Integer" in a) return String(a.Integer.ival ?? 0);
  if ("Boolean" in a) return a.Boolean.boolval ? "true" : "false";
  if ("Float" in a) return a.Float.fval ?? "";
  return undefined;
}

/** What Postgres's parse_bool reads as false (HEADER false, off, no, 0…). */
const FALSE = /^(f|fa|fal|fals|false|n|no|of|off|0)$/i;

/** The data layout of a COPY's options, with Postgres's defaults. */
export function copyFormat(options: Node[]): CopyFormat {
  const get = (name: string) => {
    const d = option(options, name);
    return d === undefined ? undefined : valueOf(d);
  };
  const f = (get("format") ?? "text").toLowerCase();
  const format = f === "csv" ? "csv" : f === "binary" ? "binary" : "text";
  const csv = format === "csv";
  const header = option(options, "header");
  const quote = get("quote") ?? '"';
  return {
    format,
    delimiter: get("delimiter") ?? (csv ? "," : "\t"),
    null: get("null") ?? (csv ? "" : "\\N"),
    quote,
    escape: get("escape") ?? quote,
    header: header !== undefined && !FALSE.test(valueOf(header) ?? "true"),
    forceNotNull: false,
    forceNull: false,
  };
}
