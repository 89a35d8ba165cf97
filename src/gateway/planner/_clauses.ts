/**
 * Where the clauses of a statement's top-level SELECT lie in its text, found with the
 * tokenizer (the parse tree's `location`s mark where an expression's operator is, not where
 * the expression starts or ends): the target list and each item of it, and the spans of FROM …
 * FOR, so the merge planner can splice the text each shard runs.
 *
 * @module
 */

import { isPunct, isWord, type Token, tokenize } from "./_lexer.ts";

/** A span of the text: [start, end) in JS string indices. */
export interface Span {
  start: number;
  end: number;
}

/** One clause after the target list: its keyword's start, its body, and its end. */
export interface Clause extends Span {
  kind: ClauseKind;
  body: Span;
  /** The body's comma-separated items at its top level (GROUP BY, ORDER BY). */
  items: Span[];
}

export type ClauseKind =
  | "from"
  | "into"
  | "where"
  | "group"
  | "having"
  | "window"
  | "order"
  | "limit"
  | "offset"
  | "fetch"
  | "for";

/** The layout of a top-level SELECT. */
export interface SelectLayout {
  tokens: Token[];
  /** DISTINCT ON ( … ): its comma-separated items. */
  distinctOn: Span[];
  /** The target list and its items. */
  targets: Span;
  targetItems: Span[];
  clauses: Clause[];
  /** Where the statement's last token ends (before a final `;` or comment). */
  end: number;
}

const CLAUSES = new Set<string>([
  "from",
  "into",
  "where",
  "group",
  "having",
  "window",
  "order",
  "limit",
  "offset",
  "fetch",
  "for",
]);

/** Whether token i opens a clause of the SELECT (depth 0). */
function clauseAt(tokens: Token[], i: number): ClauseKind | undefined {
  const t = tokens[i];
  if (t.kind !== "word" || !CLAUSES.has(t.value)) return undefined;
  if ((t.value === "group" || t.value === "order") && !isWord(tokens[i + 1], "by")) {
    return undefined; // WITHIN GROUP (…) is inside a target
  }
  return t.value as ClauseKind;
}

/** Splits tokens [from, to) at commas of depth 0 into spans of the text. */
function items(tokens: Token[], from: number, to: number): Span[] {
  const out: Span[] = [];
  let depth = 0;
  let first = from;
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (isPunct(t, "(") || isPunct(t, "[")) depth++;
    else if (isPunct(t, ")") || isPunct(t, "]")) depth--;
    else if (depth === 0 && isPunct(t, ",")) {
      if (i > first) out.push({ start: tokens[first].start, end: tokens[i - 1].end });
      first = i + 1;
    }
  }
  if (to > first) out.push({ start: tokens[first].start, end: tokens[to - 1].end });
  return out;
}

/** The layout of the first top-level SELECT of `sql`, or undefined when it cannot be found. */
export function selectLayout(sql: string): SelectLayout | undefined {
  const tokens = tokenize(sql);
  let depth = 0;
  let select = -1;
  let stop = tokens.length;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (isPunct(t, "(") || isPunct(t, "[")) depth++;
    else if (isPunct(t, ")") || isPunct(t, "]")) depth--;
    else if (depth === 0 && isPunct(t, ";")) {
      stop = i;
      break;
    } else if (depth === 0 && select < 0 && isWord(t, "select")) select = i;
  }
  if (select < 0) return undefined;
  let i = select + 1;
  let distinctOn: Span[] = [];
  if (isWord(tokens[i], "all")) i++;
  else if (isWord(tokens[i], "distinct")) {
    i++;
    if (isWord(tokens[i], "on") && isPunct(tokens[i + 1], "(")) {
      const open = i + 1;
      const close = matching(tokens, open);
      if (close < 0) return undefined;
      distinctOn = items(tokens, open + 1, close);
      i = close + 1;
    }
  }
  const first = i;
  // Clause keywords at depth 0 from here on.
  const marks: { at: number; kind: ClauseKind }[] = [];
  depth = 0;
  for (let j = first; j < stop; j++) {
    const t = tokens[j];
    if (isPunct(t, "(") || isPunct(t, "[")) depth++;
    else if (isPunct(t, ")") || isPunct(t, "]")) depth--;
    else if (depth === 0) {
      if (t.kind === "word" && ["union", "intersect", "except"].includes(t.value)) return undefined;
      const kind = clauseAt(tokens, j);
      if (kind !== undefined) marks.push({ at: j, kind });
    }
  }
  const targetEnd = marks.length > 0 ? marks[0].at : stop;
  if (targetEnd <= first) return undefined;
  const clauses: Clause[] = [];
  for (let k = 0; k < marks.length; k++) {
    const at = marks[k].at;
    const next = k + 1 < marks.length ? marks[k + 1].at : stop;
    const kind = marks[k].kind;
    const bodyFrom = kind === "group" || kind === "order" ? at + 2 : at + 1;
    clauses.push({
      kind,
      start: tokens[at].start,
      end: tokens[next - 1].end,
      body: {
        start: bodyFrom < next ? tokens[bodyFrom].start : tokens[next - 1].end,
        end: tokens[next - 1].end,
      },
      items: bodyFrom < next ? items(tokens, bodyFrom, next) : [],
    });
  }
  return {
    tokens,
    distinctOn,
    targets: { start: tokens[first].start, end: tokens[targetEnd - 1].end },
    targetItems: items(tokens, first, targetEnd),
    clauses,
    end: tokens[stop - 1].end,
  };
}

/** The index of the token closing the bracket opened at `open`, or -1. */
export function matching(tokens: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i];
    if (isPunct(t, "(") || isPunct(t, "[")) depth++;
    else if (isPunct(t, ")") || isPunct(t, "]")) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** The index of the first token starting at or after `index`, or -1. */
export function tokenAt(tokens: Token[], index: number): number {
  return tokens.findIndex((t) => t.start >= index);
}
