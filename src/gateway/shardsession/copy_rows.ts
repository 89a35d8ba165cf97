/**
 * {@linkcode CopyRowCutter}: a COPY FROM STDIN's data, as the client sends it in CopyData
 * messages split anywhere, cut into rows the way Postgres reads them (text and CSV lines as
 * `CopyReadLineText` finds them, binary tuples), each with its sharding column's value, so that
 * each row can go to its own shard as the client wrote it.
 *
 * Streaming: what is buffered is the current, unfinished row (and the rest of the last CopyData
 * message); a row is scanned once, whatever the pieces it comes in.
 *
 * @module
 */

import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { CopyFormat } from "../planner/mod.ts";

/** What the cutter finds. Views passed here are valid during the call only. */
export interface CopyRowSink {
  /** Bytes every shard gets before its rows: the header line (HEADER), the binary file header. */
  header(bytes: Uint8Array): void;
  /**
   * One row as the client sent it (a line with its line end, without one when it is the last;
   * a binary tuple), its sharding column's value (bytes after de-escaping; null: NULL;
   * undefined: the row has no such field) and the number of its last line, as Postgres counts
   * lines (CONTEXT "COPY t, line N"; binary: tuples).
   */
  row(bytes: Uint8Array, key: Uint8Array | null | undefined, line: number): void;
  /**
   * Binary data the cutter cannot follow (a malformed header or tuple, data after the
   * trailer), for one shard whose Postgres fails the COPY with its own error.
   */
  rest(bytes: Uint8Array): void;
}

const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

const EOL_UNKNOWN = 0;
const EOL_NL = 1;
const EOL_CR = 2;
const EOL_CRNL = 3;

/** readLine() results. */
const NEED_DATA = 0;
const LINE = 1;
/** A last line: the end-of-copy marker, or the end of the data. */
const LAST = 2;

const encoder = new TextEncoder();

/** The binary COPY signature: `PGCOPY\n\377\r\n\0`. */
const SIGNATURE = new Uint8Array([
  0x50,
  0x47,
  0x43,
  0x4f,
  0x50,
  0x59,
  0x0a,
  0xff,
  0x0d,
  0x0a,
  0x00,
]);
const TRAILER = new Uint8Array([0xff, 0xff]);
/** The most bytes of one unfinished row (or binary header) the cutter keeps. */
const MAX_UNFINISHED_ROW = 64 * 1024 * 1024;
/** Signature, flags, header extension length. */
const BINARY_HEADER = 19;

/** Cuts a COPY FROM's data into rows; see the module doc. One per COPY. */
export class CopyRowCutter {
  readonly #binary: boolean;
  readonly #csv: boolean;
  readonly #delim: number;
  readonly #quote: number;
  /** CopyReadLineText's escape: none (-1) when it is the quote character. */
  readonly #lineEscape: number;
  readonly #escape: number;
  readonly #null: Uint8Array;
  readonly #keyIndex: number;
  readonly #forceNotNull: boolean;
  readonly #forceNull: boolean;
  readonly #relation: string;
  /** Unread input: [#start, #len) of #buf; the current line starts at #start. */
  #buf = new Uint8Array(64 * 1024);
  #len = 0;
  #start = 0;
  /** Where the scan of the current line goes on (it resumes there when more data comes). */
  #pos = 0;
  #inQuote = false;
  #lastWasEsc = false;
  #firstChar = true;
  #eol = EOL_UNKNOWN;
  /** Postgres's cur_lineno: lines read (text, CSV) or tuples (binary). */
  #line = 0;
  /** Whether the current line's number was counted already (a line read in pieces). */
  #counted = false;
  #headerPending: boolean;
  #ended = false;
  /** Binary: the file header was read; after a malformed part, everything goes to `rest`. */
  #binaryHeaderDone = false;
  #passThrough = false;
  /** Binary: the trailer came; what follows it goes to `rest` after a trailer. */
  #afterTrailer = false;
  /** The de-escaped value of the key field (reused). */
  #field = new Uint8Array(256);
  /** Where a row's line content ends (before its line end) and the line ends, after readLine(). */
  #contentEnd = 0;
  #lineEnd = 0;

  constructor(format: CopyFormat, keyIndex: number, relation: string) {
    this.#binary = format.format === "binary";
    this.#csv = format.format === "csv";
    this.#delim = format.delimiter.charCodeAt(0);
    this.#quote = format.quote.charCodeAt(0);
    this.#escape = format.escape.charCodeAt(0);
    this.#lineEscape = this.#escape === this.#quote ? -1 : this.#escape;
    this.#null = encoder.encode(format.null);
    this.#keyIndex = keyIndex;
    this.#forceNotNull = format.forceNotNull;
    this.#forceNull = format.forceNull;
    this.#headerPending = format.header && !this.#binary;
    this.#relation = relation;
  }

  /** The end of the data was seen (text/CSV `\.`, the binary trailer): the rest is ignored. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The current line (text, CSV) or tuple (binary) number, as Postgres counts them. */
  get line(): number {
    return this.#line;
  }

  /** The number of the line (or tuple) Postgres would be reading now. */
  get reading(): number {
    return this.#counted ? this.#line : this.#line + 1;
  }

  /**
   * Takes one CopyData message's body; hands every row it completes to `sink`. Throws the
   * PgError Postgres raises for data it cannot cut into lines (22P04: a line end of another
   * style than the first line's, a corrupt end-of-copy marker), with its CONTEXT.
   */
  push(data: Uint8Array, sink: CopyRowSink): void {
    if (data.length === 0) return;
    if (this.#passThrough) {
      this.#rest(sink, data);
      return;
    }
    if (this.#ended) return;
    this.#append(data);
    if (this.#binary) this.#binaryRows(sink, false);
    else this.#textRows(sink, false);
  }

  /** The data ended (CopyDone): the last line without a line end is a row too. */
  finish(sink: CopyRowSink): void {
    if (this.#ended) return;
    if (this.#binary) this.#binaryRows(sink, true);
    else this.#textRows(sink, true);
    this.#ended = true;
  }

  #append(data: Uint8Array): void {
    if (this.#start > 0) {
      // Keep only the unfinished row.
      this.#buf.copyWithin(0, this.#start, this.#len);
      this.#len -= this.#start;
      this.#pos -= this.#start;
      this.#start = 0;
    }
    if (this.#len + data.length > MAX_UNFINISHED_ROW) {
      // The gateway is shared: one client's row (or binary header extension) may not take
      // its memory. Postgres's own limit is 1 GB a line, with the same error.
      throw new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, "out of memory", {
        detail: `Cannot enlarge string buffer containing ${this.#len} bytes by ${data.length} ` +
          `more bytes (a row of COPY into a sharded table holds at most ${MAX_UNFINISHED_ROW} ` +
          "bytes at the gateway).",
      });
    }
    if (this.#len + data.length > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + data.length));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(data, this.#len);
    this.#len += data.length;
  }

  // ---- text and CSV ----

  #textRows(sink: CopyRowSink, eof: boolean): void {
    while (!this.#ended) {
      if (!this.#counted) {
        if (eof && this.#start >= this.#len) return; // no line left
        this.#line++;
        this.#counted = true;
      }
      const r = this.#readLine(eof);
      if (r === NEED_DATA) return;
      const start = this.#start;
      const last = r === LAST;
      const bytes = this.#buf.subarray(start, last ? this.#contentEnd : this.#lineEnd);
      this.#start = this.#pos = this.#lineEnd;
      this.#counted = false;
      this.#inQuote = this.#lastWasEsc = false;
      this.#firstChar = true;
      if (last) this.#ended = true;
      if (this.#headerPending) {
        this.#headerPending = false;
        if (bytes.length || !last) sink.header(bytes);
        continue;
      }
      // A last line that is empty is no row (Postgres stops there).
      if (last && bytes.length === 0) return;
      sink.row(bytes, this.#keyOf(start, this.#contentEnd), this.#line);
    }
  }

  #error(message: string, hint?: string): PgError {
    return new PgError(SqlState.BAD_COPY_FILE_FORMAT, message, {
      hint,
      where: `COPY ${this.#relation}, line ${this.#line}`,
    });
  }

  #carriageReturn(): PgError {
    return this.#csv
      ? this.#error(
        "unquoted carriage return found in data",
        "Use quoted CSV field to represent carriage return.",
      )
      : this.#error(
        "literal carriage return found in data",
        'Use "\\r" to represent carriage return.',
      );
  }

  /**
   * Postgres's CopyReadLineText from #pos on: LINE (a line and its end: #contentEnd, #lineEnd),
   * LAST (the end-of-copy marker or the end of the data: the line's content ends at
   * #contentEnd, everything after it is ignored) or NEED_DATA (the scan resumes at #pos).
   */
  #readLine(eof: boolean): number {
    const buf = this.#buf;
    const len = this.#len;
    const csv = this.#csv;
    const quote = this.#quote;
    const escape = this.#lineEscape;
    let p = this.#pos;
    let inQuote = this.#inQuote;
    let lastWasEsc = this.#lastWasEsc;
    let first = this.#firstChar;
    const at = (i: number) => i < len ? buf[i] : 0; // past the end of the data: '\0'
    for (;;) {
      if (p >= len) {
        if (!eof) break;
        this.#contentEnd = this.#lineEnd = len;
        this.#pos = len;
        return LAST;
      }
      const prev = p;
      const q0 = inQuote;
      const e0 = lastWasEsc;
      const line0 = this.#line;
      let c = buf[p++];
      if (csv) {
        if ((c === BACKSLASH || c === CR) && p >= len && !eof) {
          p = prev;
          break;
        }
        if (inQuote && c === escape) lastWasEsc = !lastWasEsc;
        if (c === quote && !lastWasEsc) inQuote = !inQuote;
        if (c !== escape) lastWasEsc = false;
        if (inQuote && c === (this.#eol === EOL_NL ? LF : CR)) this.#line++;
      }
      if (c === CR && (!csv || !inQuote)) {
        if (this.#eol === EOL_UNKNOWN || this.#eol === EOL_CRNL) {
          if (p >= len && !eof) {
            p = prev;
            break;
          }
          c = at(p);
          if (c === LF) {
            p++;
            this.#eol = EOL_CRNL;
          } else {
            if (this.#eol === EOL_CRNL) throw this.#carriageReturn();
            this.#eol = EOL_CR;
          }
        } else if (this.#eol === EOL_NL) {
          throw this.#carriageReturn();
        }
        this.#contentEnd = this.#eol === EOL_CRNL ? p - 2 : p - 1;
        this.#lineEnd = this.#pos = p;
        return LINE;
      }
      if (c === LF && (!csv || !inQuote)) {
        if (this.#eol === EOL_CR || this.#eol === EOL_CRNL) {
          throw csv
            ? this.#error(
              "unquoted newline found in data",
              "Use quoted CSV field to represent newline.",
            )
            : this.#error("literal newline found in data", 'Use "\\n" to represent newline.');
        }
        this.#eol = EOL_NL;
        this.#contentEnd = p - 1;
        this.#lineEnd = this.#pos = p;
        return LINE;
      }
      if (c === BACKSLASH && (!csv || first)) {
        if (p >= len && !eof) {
          p = prev;
          inQuote = q0;
          lastWasEsc = e0;
          this.#line = line0;
          break;
        }
        if (p >= len) {
          // A backslash just before the end of the data is data.
          this.#contentEnd = this.#lineEnd = this.#pos = len;
          return LAST;
        }
        let c2 = buf[p];
        if (c2 === DOT) {
          // The end-of-copy marker `\.`, if a line end follows in the line's style.
          let q = p + 1;
          const need = this.#eol === EOL_CRNL ? 2 : 1;
          if (q + need > len && !eof) {
            p = prev;
            inQuote = q0;
            lastWasEsc = e0;
            this.#line = line0;
            break;
          }
          let marker = true;
          if (this.#eol === EOL_CRNL) {
            c2 = at(q++);
            if (c2 === LF) {
              if (!csv) {
                throw this.#error("end-of-copy marker does not match previous newline style");
              }
              marker = false;
            } else if (c2 !== CR) {
              if (!csv) throw this.#error("end-of-copy marker corrupt");
              marker = false;
            }
          }
          if (marker) {
            c2 = at(q++);
            if (c2 !== CR && c2 !== LF) {
              if (!csv) throw this.#error("end-of-copy marker corrupt");
              marker = false;
            } else if (
              (this.#eol === EOL_NL && c2 !== LF) || (this.#eol === EOL_CRNL && c2 !== LF) ||
              (this.#eol === EOL_CR && c2 !== CR)
            ) {
              throw this.#error("end-of-copy marker does not match previous newline style");
            }
          }
          if (marker) {
            this.#contentEnd = prev;
            this.#lineEnd = this.#pos = len;
            return LAST;
          }
          // CSV: `\.` followed by more data is data; the scan goes on at the dot.
        } else if (!csv) {
          p++; // in text, a backslash escapes whatever follows, a line end too
        }
      }
      first = false;
    }
    this.#pos = p;
    this.#inQuote = inQuote;
    this.#lastWasEsc = lastWasEsc;
    this.#firstChar = first;
    return NEED_DATA;
  }

  /** The key field of the line content [from, to): bytes, null (NULL) or undefined (missing). */
  #keyOf(from: number, to: number): Uint8Array | null | undefined {
    return this.#csv ? this.#csvKey(from, to) : this.#textKey(from, to);
  }

  #fieldRoom(n: number): Uint8Array {
    if (this.#field.length < n) this.#field = new Uint8Array(Math.max(n, this.#field.length * 2));
    return this.#field;
  }

  /** Postgres's CopyReadAttributesText, for the key field only. */
  #textKey(from: number, to: number): Uint8Array | null | undefined {
    const buf = this.#buf;
    const delim = this.#delim;
    let p = from;
    for (let field = 0;; field++) {
      const mine = field === this.#keyIndex;
      const out = mine ? this.#fieldRoom(to - p) : this.#field;
      let n = 0;
      const start = p;
      let end = p;
      let foundDelim = false;
      for (;;) {
        end = p;
        if (p >= to) break;
        let c = buf[p++];
        if (c === delim) {
          foundDelim = true;
          break;
        }
        if (c === BACKSLASH) {
          if (p >= to) break;
          c = unescape(buf, buf[p++], p, to);
          p += escapeExtra;
        }
        if (mine) out[n++] = c;
      }
      if (mine) {
        if (sameBytes(buf, start, end, this.#null)) return null;
        return out.subarray(0, n);
      }
      if (!foundDelim) return undefined;
    }
  }

  /** Postgres's CopyReadAttributesCSV (and FORCE_NOT_NULL / FORCE_NULL), for the key field. */
  #csvKey(from: number, to: number): Uint8Array | null | undefined {
    const buf = this.#buf;
    const delim = this.#delim;
    const quote = this.#quote;
    const escape = this.#escape;
    let p = from;
    for (let field = 0;; field++) {
      const mine = field === this.#keyIndex;
      const out = mine ? this.#fieldRoom(to - p) : this.#field;
      let n = 0;
      const start = p;
      let end = p;
      let foundDelim = false;
      let sawQuote = false;
      let inQuote = false;
      for (;;) {
        end = p;
        if (p >= to) {
          // An unterminated quoted field: Postgres refuses the row itself.
          if (inQuote) return undefined;
          break;
        }
        const c = buf[p++];
        if (!inQuote) {
          if (c === delim) {
            foundDelim = true;
            break;
          }
          if (c === quote) {
            sawQuote = inQuote = true;
            continue;
          }
        } else if (c === escape && p < to && (buf[p] === escape || buf[p] === quote)) {
          if (mine) out[n++] = buf[p];
          p++;
          continue;
        } else if (c === quote) {
          inQuote = false;
          continue;
        }
        if (mine) out[n++] = c;
      }
      if (mine) {
        let isNull = !sawQuote && sameBytes(buf, start, end, this.#null);
        const value = out.subarray(0, n);
        if (isNull && this.#forceNotNull) return this.#null;
        if (!isNull && this.#forceNull && sameBytes(value, 0, n, this.#null)) isNull = true;
        return isNull ? null : value;
      }
      if (!foundDelim) return undefined;
    }
  }

  // ---- binary ----

  #binaryRows(sink: CopyRowSink, eof: boolean): void {
    const buf = this.#buf;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (!this.#binaryHeaderDone) {
      const have = this.#len - this.#start;
      if (have < BINARY_HEADER) {
        if (eof && have > 0) this.#giveUp(sink);
        return;
      }
      const s = this.#start;
      const flags = dv.getInt32(s + 11);
      const ext = dv.getInt32(s + 15);
      if (!sameBytes(buf, s, s + 11, SIGNATURE) || (flags >>> 16) !== 0 || ext < 0) {
        this.#giveUp(sink);
        return;
      }
      if (have < BINARY_HEADER + ext) {
        if (eof) this.#giveUp(sink);
        return;
      }
      sink.header(buf.subarray(s, s + BINARY_HEADER + ext));
      this.#start += BINARY_HEADER + ext;
      this.#binaryHeaderDone = true;
    }
    for (;;) {
      const s = this.#start;
      const len = this.#len;
      if (s + 2 > len) {
        if (eof && s < len) this.#giveUp(sink);
        return;
      }
      const count = dv.getInt16(s);
      if (count === -1) {
        // The trailer: nothing may follow it (whatever does goes, after it, to one shard, whose
        // Postgres says so).
        this.#ended = true;
        this.#passThrough = true;
        this.#afterTrailer = true;
        this.#start += 2;
        if (this.#start < len) this.#rest(sink, buf.subarray(this.#start, len));
        this.#start = len;
        return;
      }
      if (count < 0) {
        this.#giveUp(sink);
        return;
      }
      let p = s + 2;
      let key: Uint8Array | null | undefined = undefined;
      let whole = true;
      for (let f = 0; f < count; f++) {
        if (p + 4 > len) {
          whole = false;
          break;
        }
        const size = dv.getInt32(p);
        p += 4;
        if (size < -1) {
          this.#giveUp(sink);
          return;
        }
        if (size === -1) {
          if (f === this.#keyIndex) key = null;
          continue;
        }
        if (p + size > len) {
          whole = false;
          break;
        }
        if (f === this.#keyIndex) key = buf.subarray(p, p + size);
        p += size;
      }
      if (!whole) {
        if (eof) this.#giveUp(sink);
        return;
      }
      this.#line++;
      this.#start = p;
      sink.row(buf.subarray(s, p), key, this.#line);
    }
  }

  /** From here on, the data goes unread to one shard, whose Postgres refuses it. */
  #giveUp(sink: CopyRowSink): void {
    this.#passThrough = true;
    this.#ended = true;
    const rest = this.#buf.subarray(this.#start, this.#len);
    this.#start = this.#len;
    if (rest.length) this.#rest(sink, rest);
  }

  #rest(sink: CopyRowSink, bytes: Uint8Array): void {
    if (this.#afterTrailer) {
      // That shard sees the trailer first, as the client sent it, then what followed it.
      this.#afterTrailer = false;
      sink.rest(TRAILER);
    }
    sink.rest(bytes);
  }
}

/** How many bytes after `p` the last `unescape` call consumed. */
let escapeExtra = 0;

/**
 * The byte a text-format escape `\c` stands for (`c` read, the rest of the escape from
 * `buf[p..to)`): octal `\ooo`, hex `\xhh`, `\b \f \n \r \t \v`, else `c` itself.
 */
function unescape(buf: Uint8Array, c: number, p: number, to: number): number {
  escapeExtra = 0;
  if (c >= 0x30 && c <= 0x37) {
    let val = c - 0x30;
    for (let i = 0; i < 2 && p + i < to && buf[p + i] >= 0x30 && buf[p + i] <= 0x37; i++) {
      val = (val << 3) + buf[p + i] - 0x30;
      escapeExtra++;
    }
    return val & 0xff;
  }
  switch (c) {
    case 0x78: { // x
      let val = -1;
      for (let i = 0; i < 2 && p + i < to; i++) {
        const h = hexValue(buf[p + i]);
        if (h < 0) break;
        val = val < 0 ? h : (val << 4) + h;
        escapeExtra++;
      }
      return val < 0 ? c : val & 0xff;
    }
    case 0x62:
      return 0x08;
    case 0x66:
      return 0x0c;
    case 0x6e:
      return 0x0a;
    case 0x72:
      return 0x0d;
    case 0x74:
      return 0x09;
    case 0x76:
      return 0x0b;
  }
  return c;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function sameBytes(buf: Uint8Array, from: number, to: number, want: Uint8Array): boolean {
  if (to - from !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (buf[from + i] !== want[i]) return false;
  return true;
}
