/**
 * Quoting for the SQL this project writes itself (metadata, catalog lookups, role and database
 * names): one literal and one identifier rule, shared by the pooler and the gateway.
 *
 * ```ts
 * import { literal, quoteIdent } from "./mod.ts";
 *
 * console.log(`SELECT 1 FROM ${quoteIdent("my table")} WHERE name = ${literal("it's")}`);
 * // SELECT 1 FROM "my table" WHERE name = 'it''s'
 * ```
 *
 * @module
 */

/**
 * A SQL string literal that reads the same whatever `standard_conforming_strings` says: a string
 * with a backslash is written in the escape form (E'…') with the backslash doubled.
 */
export function literal(s: string): string {
  const quoted = s.replaceAll("'", "''");
  return s.includes("\\") ? `E'${quoted.replaceAll("\\", "\\\\")}'` : `'${quoted}'`;
}

/** A double-quoted SQL identifier (kept as written: case and any character). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
