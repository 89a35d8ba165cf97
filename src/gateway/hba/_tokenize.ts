import { dirname, isAbsolute, join } from "node:path";

/** One word of an authentication file; `quoted` when it began with a double quote. */
export interface Token {
  text: string;
  quoted: boolean;
}

/** One logical line: its fields, each a comma-separated list of tokens. */
export interface TokenizedLine {
  /** Where the line starts (a continued line counts from its first physical line). */
  lineNo: number;
  fields: Token[][];
}

/** How an authentication file and the `@file`s it names are read (injectable for tests). */
export type ReadFile = (path: string) => string;

/** An error in an authentication file, located by file name and line number. */
export class AuthFileError extends Error {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "AuthFileError";
    this.file = file;
    this.line = line;
  }
}

/** Postgres's limit on nested `@file` inclusion. */
const MAX_INCLUDE_DEPTH = 10;

/** True for a keyword token: written without quotes and equal to `word`. */
export function isKeyword(t: Token, word: string): boolean {
  return !t.quoted && t.text === word;
}

/**
 * Splits an authentication file (pg_hba.conf, pg_ident.conf) into lines of fields, as Postgres
 * reads them: `#` starts a comment outside quotes, a line ending in a backslash goes on on the
 * next, fields are separated by blanks, a comma joins tokens into one field's list, double
 * quotes keep blanks, commas and `#` in a token (`""` is a quote inside quotes), and an unquoted
 * `@name` stands for the tokens of file `name` (relative to the including file's folder).
 *
 * @throws {AuthFileError} for an unreadable `@file` or inclusion nested too deep.
 */
export function tokenizeFile(file: string, text: string, readFile: ReadFile): TokenizedLine[] {
  return tokenize(file, text, readFile, 0);
}

function tokenize(file: string, text: string, readFile: ReadFile, depth: number): TokenizedLine[] {
  const out: TokenizedLine[] = [];
  const physical = text.split("\n");
  for (let i = 0; i < physical.length; i++) {
    const lineNo = i + 1;
    let line = stripCr(physical[i]);
    while (line.endsWith("\\") && i + 1 < physical.length) {
      line = line.slice(0, -1) + stripCr(physical[++i]);
    }
    if (line.endsWith("\\")) line = line.slice(0, -1);
    const fields = splitFields(line).map((field) =>
      field.flatMap((t) => {
        if (t.quoted || !t.text.startsWith("@") || t.text.length === 1) return [t];
        return includeTokens(file, lineNo, t.text.slice(1), readFile, depth + 1);
      })
    );
    if (fields.length) out.push({ lineNo, fields });
  }
  return out;
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}

/** The tokens of an `@file`: every token of every line, in order. */
function includeTokens(
  file: string,
  lineNo: number,
  name: string,
  readFile: ReadFile,
  depth: number,
): Token[] {
  if (depth > MAX_INCLUDE_DEPTH) {
    throw new AuthFileError(
      file,
      lineNo,
      `could not open file "${name}": maximum nesting depth exceeded`,
    );
  }
  const path = isAbsolute(name) ? name : join(dirname(file), name);
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    throw new AuthFileError(
      file,
      lineNo,
      `could not open secondary authentication file "@${name}" as "${path}": ${
        (e as Error).message
      }`,
    );
  }
  return tokenize(path, text, readFile, depth).flatMap((l) => l.fields.flat());
}

const BLANK = /[ \t\r\f\v]/;

/** One line's fields (comments removed). A token that is empty and unquoted is dropped. */
function splitFields(line: string): Token[][] {
  const fields: Token[][] = [];
  let field: Token[] = [];
  let pos = 0;
  for (;;) {
    // Blanks before a token.
    while (pos < line.length && BLANK.test(line[pos])) pos++;
    if (pos >= line.length || line[pos] === "#") break;
    let text = "";
    let inQuote = false;
    let sawQuote = false;
    let quoted = false;
    let comma = false;
    while (pos < line.length) {
      const c = line[pos];
      if (!inQuote && (BLANK.test(c) || c === "#")) break;
      pos++;
      if (!inQuote && c === ",") {
        comma = true;
        break;
      }
      if (c === '"') {
        if (inQuote && line[pos] === '"') {
          // "" inside quotes: a literal quote.
          text += '"';
          pos++;
          continue;
        }
        if (!sawQuote && text === "") quoted = true;
        inQuote = !inQuote;
        sawQuote = true;
        continue;
      }
      text += c;
    }
    if (text !== "" || sawQuote) field.push({ text, quoted });
    if (!comma && field.length) {
      fields.push(field);
      field = [];
    }
  }
  if (field.length) fields.push(field);
  return fields;
}
