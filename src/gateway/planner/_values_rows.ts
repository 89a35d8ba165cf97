/**
 * Where the rows of an `INSERT … VALUES (…), (…)` lie in its text, so that the gateway can send
 * each shard the statement with only its rows: the text before the first row, each row's
 * `( … )`, and the text after the last row (ON CONFLICT, RETURNING, a final `;`).
 *
 * The parse tree gives the table's location (the scan starts there, after any WITH clause) and
 * each row's key value's location (checked to fall inside the row found); the tokenizer
 * (`_lexer.ts`) steps over strings, quoted identifiers, dollar quotes and comments, so only real
 * parentheses and commas count.
 *
 * @module
 */

import type { Node } from "libpg-query";
import { indexOfByte, isPunct, isWord, type Token, tokenize } from "./_lexer.ts";

/** A VALUES list's statement cut around its rows (head + rows joined by ", " + tail: the same). */
export interface ValuesRows {
  /** The text before the first row. */
  head: string;
  /** Each row's text, `(` to `)`. */
  rows: string[];
  /** The text after the last row. */
  tail: string;
}

/**
 * The rows of the VALUES list of the INSERT whose table is named at UTF-8 byte `tableAt` of
 * `sql`; `keys[i]`: the key value of row i (its location must fall inside the row). Undefined
 * when the text is not laid out as `… VALUES (…), …, (…) …` with `keys.length` rows (e.g. a
 * parenthesized VALUES): the caller refuses the split.
 */
export function valuesRows(
  sql: string,
  tableAt: number,
  keys: (Node | undefined)[],
): ValuesRows | undefined {
  const tokens = tokenize(sql);
  const from = indexOfByte(sql, tableAt);
  let i = tokens.findIndex((t) => t.start >= from);
  if (i < 0) return undefined;
  // VALUES at the statement's level, after the table, its alias, columns and OVERRIDING.
  let depth = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    if (isPunct(t, "(")) depth++;
    else if (isPunct(t, ")")) depth--;
    else if (depth === 0 && isWord(t, "values")) break;
  }
  i++;
  const spans: { start: number; end: number }[] = [];
  while (isPunct(tokens[i], "(")) {
    const close = closingParen(tokens, i);
    if (close < 0) return undefined;
    spans.push({ start: tokens[i].start, end: tokens[close].end });
    i = close + 1;
    if (!isPunct(tokens[i], ",")) break;
    i++;
  }
  if (spans.length !== keys.length || spans.length === 0) return undefined;
  for (let r = 0; r < spans.length; r++) {
    const at = locationOf(keys[r]);
    if (at === undefined) continue;
    const index = indexOfByte(sql, at);
    if (index < spans[r].start || index >= spans[r].end) return undefined;
  }
  return {
    head: sql.slice(0, spans[0].start),
    rows: spans.map((s) => sql.slice(s.start, s.end)),
    tail: sql.slice(spans[spans.length - 1].end),
  };
}

/**
 * Where the SELECT of the INSERT whose table is named at UTF-8 byte `tableAt` lies in `sql`
 * (JS indexes, `end` after its last token): after the table, its `AS alias`, its column list
 * (`hasCols`) and OVERRIDING; up to `endAt` (the byte where ON CONFLICT or the RETURNING list
 * begins, when there is one), or else a `;` at the statement's level or the text's end.
 * Undefined when the text is not laid out so.
 */
export function selectSpan(
  sql: string,
  tableAt: number,
  hasCols: boolean,
  endAt: { conflict?: number; returning?: number },
): { start: number; end: number } | undefined {
  const tokens = tokenize(sql);
  if (tokens.some((t) => t.unterminated !== undefined)) return undefined;
  const from = indexOfByte(sql, tableAt);
  let i = tokens.findIndex((t) => t.start >= from);
  if (i < 0) return undefined;
  // The table's name: words or quoted identifiers joined by dots.
  i++;
  while (isPunct(tokens[i], ".") && tokens[i + 1] !== undefined) i += 2;
  if (isWord(tokens[i], "as")) i += 2;
  if (hasCols) {
    if (!isPunct(tokens[i], "(")) return undefined;
    const close = closingParen(tokens, i);
    if (close < 0) return undefined;
    i = close + 1;
  }
  if (isWord(tokens[i], "overriding")) i += 3;
  if (tokens[i] === undefined) return undefined;
  const start = tokens[i].start;
  let stop = tokens.length;
  if (endAt.conflict !== undefined) {
    const at = indexOfByte(sql, endAt.conflict);
    stop = tokens.findIndex((t) => t.start >= at);
  } else if (endAt.returning !== undefined) {
    // RETURNING is the last word before its list.
    const at = indexOfByte(sql, endAt.returning);
    let r = tokens.findIndex((t) => t.start >= at) - 1;
    while (r > i && !isWord(tokens[r], "returning")) r--;
    stop = r;
  } else {
    let depth = 0;
    for (let k = i; k < tokens.length; k++) {
      if (isPunct(tokens[k], "(")) depth++;
      else if (isPunct(tokens[k], ")")) depth--;
      else if (depth === 0 && isPunct(tokens[k], ";")) {
        stop = k;
        break;
      }
    }
  }
  if (stop <= i) return undefined;
  return { start, end: tokens[stop - 1].end };
}

/** The index of the `)` matching the `(` at token `open`, or -1. */
export function closingParen(tokens: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (tokens[i].unterminated !== undefined) return -1;
    if (isPunct(tokens[i], "(")) depth++;
    else if (isPunct(tokens[i], ")") && --depth === 0) return i;
  }
  return -1;
}

/** The `location` (UTF-8 byte offset) of an expression node, when it has one. */
function locationOf(n: Node | undefined): number | undefined {
  if (n === undefined) return undefined;
  const inner = Object.values(n)[0] as { location?: number } | undefined;
  return typeof inner?.location === "number" && inner.location >= 0 ? inner.location : undefined;
}
