/**
 * A small SQL tokenizer for what the Postgres grammar cannot see: the new DDL (`CREATE
 * TABLEGROUP`, `CREATE TABLE … IN tg`) and the first keyword of a query string. It knows
 * Postgres's lexical rules for whitespace, `--` and nested `/* … *\/` comments, '…' / E'…'
 * strings, "…" identifiers, `$tag$ … $tag$` dollar quotes and `$n` parameters, and never throws:
 * an unterminated token is flagged and the caller decides whether it matters.
 *
 * Offsets are JavaScript string indices (UTF-16 code units); {@linkcode charPosition} turns one
 * into the 1-based character position Postgres reports.
 *
 * @module
 */

/** What a token is. `word` is an unquoted identifier or keyword. */
export type TokenKind = "word" | "quoted" | "string" | "number" | "param" | "op" | "punct";

/** One token of a statement. */
export interface Token {
  kind: TokenKind;
  /** The text as written. */
  text: string;
  /** `word`: folded to lower case; `quoted`: unescaped; `string`: its contents; else `text`. */
  value: string;
  /** Index of the first code unit. */
  start: number;
  /** Index after the last code unit. */
  end: number;
  /** Set on a string, quoted identifier or dollar quote that runs to the end of the text. */
  unterminated?: "quoted string" | "quoted identifier" | "dollar-quoted string" | "/* comment";
}

/** Postgres's NAMEDATALEN - 1: identifiers are truncated to this many bytes. */
const MAX_IDENT_BYTES = 63;

const encoder = new TextEncoder();

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c || c === 0x0b;
}

function isIdentStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
}

function isIdentCont(c: number): boolean {
  return isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

const OP_CHARS = "+-*/<>=~!@#%^&|`?";

/**
 * Folds an unquoted identifier as Postgres does: ASCII letters to lower case, then truncated
 * to 63 bytes on a character boundary.
 */
export function foldIdentifier(word: string): string {
  let out = "";
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    out += c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 32) : word[i];
  }
  return truncateIdentifier(out);
}

/** Truncates an identifier to 63 UTF-8 bytes without splitting a character. */
export function truncateIdentifier(name: string): string {
  if (name.length <= MAX_IDENT_BYTES / 4) return name;
  if (encoder.encode(name).length <= MAX_IDENT_BYTES) return name;
  let bytes = 0;
  let i = 0;
  for (const ch of name) {
    const n = encoder.encode(ch).length;
    if (bytes + n > MAX_IDENT_BYTES) break;
    bytes += n;
    i += ch.length;
  }
  return name.slice(0, i);
}

/**
 * Index after the whitespace and comments starting at `i`. An unterminated block comment runs
 * to the end, unless `stopAtOpenComment`: then its start is returned.
 */
export function skipSpace(sql: string, i: number, stopAtOpenComment = false): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
    } else if (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d) {
      const nl = sql.indexOf("\n", i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      const end = commentEnd(sql, i);
      if (end < 0) return stopAtOpenComment ? i : n;
      i = end;
    } else {
      break;
    }
  }
  return i;
}

/** Index after the (nested) block comment starting at `i`, or -1 when it is unterminated. */
function commentEnd(sql: string, i: number): number {
  let depth = 0;
  const n = sql.length;
  while (i < n) {
    if (sql.charCodeAt(i) === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      depth++;
      i += 2;
    } else if (sql.charCodeAt(i) === 0x2a && sql.charCodeAt(i + 1) === 0x2f) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return -1;
}

/**
 * The first keyword of `sql`, lower-cased, after whitespace and comments ("" when the text
 * starts with anything else, e.g. `(` or nothing at all). Reads only as far as it needs.
 */
export function firstKeyword(sql: string): string {
  const i = skipSpace(sql, 0);
  let j = i;
  while (j < sql.length) {
    const c = sql.charCodeAt(j);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a))) break;
    j++;
  }
  return sql.slice(i, j).toLowerCase();
}

/** A dollar-quote opening tag (`$$`, `$tag$`) at `i`, or undefined. */
function dollarTag(sql: string, i: number): string | undefined {
  let j = i + 1;
  const c = sql.charCodeAt(j);
  if (c === 0x24) return "$$";
  if (!isIdentStart(c)) return undefined;
  while (j < sql.length && isIdentCont(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 0x24) j++;
  if (sql.charCodeAt(j) !== 0x24) return undefined;
  return sql.slice(i, j + 1);
}

/** Reads a '…' string starting at the quote `q`; `escapes`: backslash escapes (E'…'). */
function readString(
  sql: string,
  q: number,
  escapes: boolean,
): { end: number; value: string; ok: boolean } {
  let value = "";
  let i = q + 1;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x27) {
      if (sql.charCodeAt(i + 1) === 0x27) {
        value += "'";
        i += 2;
        continue;
      }
      return { end: i + 1, value, ok: true };
    }
    if (escapes && c === 0x5c && i + 1 < n) {
      value += sql[i + 1];
      i += 2;
      continue;
    }
    value += sql[i];
    i++;
  }
  return { end: n, value, ok: false };
}

/** Tokenizes all of `sql` (comments and whitespace dropped). Never throws. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = skipSpace(sql, 0, true);
  while (i < n) {
    const start = i;
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (c === 0x2f && next === 0x2a) {
      // skipSpace stops at a comment only when it is unterminated: it runs to the end.
      i = n;
      push(out, sql, "punct", start, i, undefined, "/* comment");
    } else if (c === 0x27) {
      const s = readString(sql, i, false);
      i = s.end;
      push(out, sql, "string", start, i, s.value, s.ok ? undefined : "quoted string");
    } else if (
      (c === 0x45 || c === 0x65) && next === 0x27
    ) {
      const s = readString(sql, i + 1, true);
      i = s.end;
      push(out, sql, "string", start, i, s.value, s.ok ? undefined : "quoted string");
    } else if (
      (c === 0x42 || c === 0x62 || c === 0x58 || c === 0x78 || c === 0x4e || c === 0x6e) &&
      next === 0x27
    ) {
      const s = readString(sql, i + 1, false);
      i = s.end;
      push(out, sql, "string", start, i, s.value, s.ok ? undefined : "quoted string");
    } else if ((c === 0x55 || c === 0x75) && next === 0x26 && sql.charCodeAt(i + 2) === 0x27) {
      const s = readString(sql, i + 2, false);
      i = s.end;
      push(out, sql, "string", start, i, s.value, s.ok ? undefined : "quoted string");
    } else if (
      c === 0x22 || ((c === 0x55 || c === 0x75) && next === 0x26 && sql.charCodeAt(i + 2) === 0x22)
    ) {
      const q = c === 0x22 ? i : i + 2;
      let value = "";
      let j = q + 1;
      let ok = false;
      while (j < n) {
        if (sql.charCodeAt(j) === 0x22) {
          if (sql.charCodeAt(j + 1) === 0x22) {
            value += '"';
            j += 2;
            continue;
          }
          ok = true;
          j++;
          break;
        }
        value += sql[j];
        j++;
      }
      i = j;
      push(
        out,
        sql,
        "quoted",
        start,
        i,
        truncateIdentifier(value),
        ok ? undefined : "quoted identifier",
      );
    } else if (c === 0x24) {
      const tag = dollarTag(sql, i);
      if (tag !== undefined) {
        const close = sql.indexOf(tag, i + tag.length);
        i = close < 0 ? n : close + tag.length;
        const value = sql.slice(start + tag.length, close < 0 ? n : close);
        push(out, sql, "string", start, i, value, close < 0 ? "dollar-quoted string" : undefined);
      } else {
        let j = i + 1;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        i = j;
        push(out, sql, j > start + 1 ? "param" : "op", start, i);
      }
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentCont(sql.charCodeAt(j))) j++;
      i = j;
      push(out, sql, "word", start, i, foldIdentifier(sql.slice(start, i)));
    } else if (isDigit(c) || (c === 0x2e && isDigit(next))) {
      let j = i + 1;
      while (j < n) {
        const d = sql.charCodeAt(j);
        if (isDigit(d) || d === 0x2e || d === 0x5f || isIdentStart(d)) {
          // an exponent sign: 1e-5
          if ((d === 0x65 || d === 0x45) && (sql[j + 1] === "+" || sql[j + 1] === "-")) j++;
          j++;
        } else {
          break;
        }
      }
      i = j;
      push(out, sql, "number", start, i);
    } else if (OP_CHARS.includes(sql[i])) {
      let j = i + 1;
      while (j < n && OP_CHARS.includes(sql[j])) {
        // "--" and "/*" start comments even inside an operator.
        if ((sql[j] === "-" && sql[j + 1] === "-") || (sql[j] === "/" && sql[j + 1] === "*")) {
          break;
        }
        j++;
      }
      i = j;
      push(out, sql, "op", start, i);
    } else {
      i++;
      push(out, sql, "punct", start, i);
    }
    i = skipSpace(sql, i, true);
  }
  return out;
}

function push(
  out: Token[],
  sql: string,
  kind: TokenKind,
  start: number,
  end: number,
  value?: string,
  unterminated?: Token["unterminated"],
): void {
  const text = sql.slice(start, end);
  const tok: Token = { kind, text, value: value ?? text, start, end };
  if (unterminated !== undefined) tok.unterminated = unterminated;
  out.push(tok);
}

/** A statement of a query string: its tokens and the `;` that ends it, if any. */
export interface StatementTokens {
  tokens: Token[];
  semicolon: Token | undefined;
}

/**
 * Splits tokens into statements at the semicolons outside parentheses and brackets; empty
 * statements (`;;`) are dropped.
 */
export function splitStatements(tokens: Token[]): StatementTokens[] {
  const out: StatementTokens[] = [];
  let depth = 0;
  let cur: Token[] = [];
  for (const t of tokens) {
    if (t.kind === "punct") {
      if (t.text === "(" || t.text === "[") depth++;
      else if ((t.text === ")" || t.text === "]") && depth > 0) depth--;
      else if (t.text === ";" && depth === 0) {
        if (cur.length > 0) out.push({ tokens: cur, semicolon: t });
        cur = [];
        continue;
      }
    }
    cur.push(t);
  }
  if (cur.length > 0) out.push({ tokens: cur, semicolon: undefined });
  return out;
}

/** Whether `t` is the unquoted keyword `word` (lower case). */
export function isWord(t: Token | undefined, word: string): boolean {
  return t !== undefined && t.kind === "word" && t.value === word;
}

/** Whether `t` is the punctuation `p`. */
export function isPunct(t: Token | undefined, p: string): boolean {
  return t !== undefined && t.kind === "punct" && t.text === p;
}

/** The 1-based character (code point) position of JS index `index` in `sql`, as Postgres counts. */
export function charPosition(sql: string, index: number): number {
  let pos = 1;
  for (let i = 0; i < index && i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < index) {
      const d = sql.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    pos++;
  }
  return pos;
}

/** The JS index of the 0-based code point offset `cp` in `sql` (the length when past the end). */
export function indexOfCodePoint(sql: string, cp: number): number {
  let i = 0;
  for (let k = 0; k < cp && i < sql.length; k++) {
    const c = sql.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < sql.length ? 2 : 1;
  }
  return i;
}

/** The JS index of UTF-8 byte offset `byte` in `sql` (libpg-query's `location` fields). */
export function indexOfByte(sql: string, byte: number): number {
  let b = 0;
  let i = 0;
  while (i < sql.length && b < byte) {
    const c = sql.codePointAt(i)!;
    b += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    i += c >= 0x10000 ? 2 : 1;
  }
  return i;
}
