import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import type { CopyFormat } from "../planner/mod.ts";
import { CopyRowCutter } from "./copy_rows.ts";

const TEXT: CopyFormat = {
  format: "text",
  delimiter: "\t",
  null: "\\N",
  quote: '"',
  escape: '"',
  header: false,
  forceNotNull: false,
  forceNull: false,
};
const CSV: CopyFormat = { ...TEXT, format: "csv", delimiter: ",", null: "" };
const BINARY: CopyFormat = { ...TEXT, format: "binary" };

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Cut {
  headers: string[];
  /** [row as sent, key (null: NULL, undefined: missing), line] */
  rows: [string, string | null | undefined, number][];
  rest: number[];
  ended: boolean;
}

/** Feeds `chunks` to a cutter; every row, header and rest it hands on. */
function cut(format: CopyFormat, keyIndex: number, chunks: (string | Uint8Array)[]): Cut {
  const out: Cut = { headers: [], rows: [], rest: [], ended: false };
  const c = new CopyRowCutter(format, keyIndex, "t");
  const sink = {
    header: (b: Uint8Array) => out.headers.push(dec.decode(b)),
    row: (b: Uint8Array, key: Uint8Array | null | undefined, line: number) =>
      out.rows.push([dec.decode(b), key == null ? key : dec.decode(key), line]),
    rest: (b: Uint8Array) => out.rest.push(...b),
  };
  for (const ch of chunks) c.push(typeof ch === "string" ? enc.encode(ch) : ch, sink);
  c.finish(sink);
  out.ended = c.ended;
  return out;
}

/** The same data split at every byte must cut the same. */
function everySplit(format: CopyFormat, keyIndex: number, data: Uint8Array | string): Cut {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  const whole = cut(format, keyIndex, [bytes]);
  const bytewise = cut(format, keyIndex, [...bytes].map((b) => new Uint8Array([b])));
  assert.deepEqual(bytewise, whole, "one byte at a time");
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(
      cut(format, keyIndex, [bytes.subarray(0, i), bytes.subarray(i)]),
      whole,
      `split at ${i}`,
    );
  }
  return whole;
}

function errorOf(fn: () => unknown): PgError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PgError) return e;
    throw e;
  }
  throw new Error("no error");
}

Deno.test("CopyRowCutter cuts text lines and reads the key field as Postgres de-escapes it", () => {
  const data = "1\tann\n2\t\\N\n\\N\tx\n\\x41\\102\\n\\\\\tq\n5\\\t6\tr\n\n";
  assert.deepEqual(everySplit(TEXT, 0, data).rows, [
    ["1\tann\n", "1", 1],
    ["2\t\\N\n", "2", 2],
    ["\\N\tx\n", null, 3],
    ["\\x41\\102\\n\\\\\tq\n", "AB\n\\", 4],
    ["5\\\t6\tr\n", "5\t6", 5],
    ["\n", "", 6],
  ]);
  assert.deepEqual(everySplit(TEXT, 1, data).rows.map((r) => r[1]), [
    "ann",
    null,
    "x",
    "q",
    "r",
    undefined,
  ]);
  // A backslash escapes a line end too; the last line needs none.
  assert.deepEqual(everySplit(TEXT, 1, "1\ta\\\nb\n2\tc").rows, [
    ["1\ta\\\nb\n", "a\nb", 1],
    ["2\tc", "c", 2],
  ]);
  // Another delimiter and NULL string: the NULL string is compared before de-escaping.
  const pipes = { ...TEXT, delimiter: "|", null: "" };
  assert.deepEqual(everySplit(pipes, 0, "|a\n\\N|b\n").rows.map((r) => r[1]), [null, "N"]);
});

Deno.test("CopyRowCutter follows the first line's line end and stops at \\.", () => {
  const crlf = everySplit(TEXT, 0, "1\ta\r\n2\tb\r\n\\.\r\nignored\n");
  assert.deepEqual(crlf.rows, [["1\ta\r\n", "1", 1], ["2\tb\r\n", "2", 2]]);
  assert.equal(crlf.ended, true);
  const cr = everySplit(TEXT, 0, "1\ta\r2\tb\r");
  assert.deepEqual(cr.rows.map((r) => r[0]), ["1\ta\r", "2\tb\r"]);
  // Data before the marker on its line is the last row (without its line end).
  assert.deepEqual(everySplit(TEXT, 0, "1\ta\n3\tc\\.\nx\n").rows, [
    ["1\ta\n", "1", 1],
    ["3\tc", "3", 2],
  ]);
  // An escaped backslash before a dot is data.
  assert.deepEqual(everySplit(TEXT, 0, "\\\\.\n").rows, [["\\\\.\n", "\\.", 1]]);
  const mixed = errorOf(() => cut(TEXT, 0, ["1\ta\n2\tb\r\n"]));
  assert.equal(mixed.sqlstate, "22P04");
  assert.equal(mixed.message, "literal carriage return found in data");
  assert.equal(mixed.hint, 'Use "\\r" to represent carriage return.');
  assert.equal(mixed.where, "COPY t, line 2");
  const nl = errorOf(() => cut(TEXT, 0, ["1\r\n2\n"]));
  assert.equal(nl.message, "literal newline found in data");
  assert.equal(errorOf(() => cut(TEXT, 0, ["1\n\\.x\n"])).message, "end-of-copy marker corrupt");
  assert.equal(
    errorOf(() => cut(TEXT, 0, ["1\r\n\\.\n"])).message,
    "end-of-copy marker does not match previous newline style",
  );
});

Deno.test("CopyRowCutter reads CSV quotes, escapes, embedded line ends and NULLs", () => {
  const data = '1,"a,b"\n"2","x\n""y"""\n,empty\n"",quoted\n3,"\\.\n"\n';
  const c = everySplit(CSV, 0, data);
  assert.deepEqual(c.rows, [
    ['1,"a,b"\n', "1", 1],
    ['"2","x\n""y"""\n', "2", 3],
    [",empty\n", null, 4],
    ['"",quoted\n', "", 5],
    ['3,"\\.\n"\n', "3", 7],
  ]);
  assert.deepEqual(everySplit(CSV, 1, data).rows.map((r) => r[1]), [
    "a,b",
    'x\n"y"',
    "empty",
    "quoted",
    "\\.\n",
  ]);
  // \. alone on a line ends the data; elsewhere it is data.
  const end = everySplit(CSV, 0, "\\.x,1\n\\.\nafter\n");
  assert.deepEqual(end.rows, [["\\.x,1\n", "\\.x", 1]]);
  // Another quote and escape; HEADER goes to every shard.
  const q = { ...CSV, quote: "'", escape: "\\", header: true, delimiter: ";" };
  const h = everySplit(q, 1, "id;name\n1;'it\\'s;\\\\'\n2;'\\x'\n");
  assert.deepEqual(h.headers, ["id;name\n"]);
  assert.deepEqual(h.rows.map((r) => [r[1], r[2]]), [["it's;\\", 2], ["\\x", 3]]);
  // FORCE_NOT_NULL: the NULL string is a value; FORCE_NULL: a quoted one is NULL too.
  const nulls = 'NA,1\n"NA",2\n';
  const na = { ...CSV, null: "NA" };
  assert.deepEqual(cut(na, 0, [nulls]).rows.map((r) => r[1]), [null, "NA"]);
  assert.deepEqual(
    cut({ ...na, forceNotNull: true }, 0, [nulls]).rows.map((r) => r[1]),
    ["NA", "NA"],
  );
  assert.deepEqual(cut({ ...na, forceNull: true }, 0, [nulls]).rows.map((r) => r[1]), [null, null]);
  // An unterminated quote: the row goes on to Postgres, which refuses it.
  assert.deepEqual(cut(CSV, 1, ['1,"abc\n']).rows, [['1,"abc\n', undefined, 1]]);
  assert.equal(
    errorOf(() => cut(CSV, 0, ["1\n2\r\n"])).message,
    "unquoted carriage return found in data",
  );
});

/** A binary COPY stream: header, tuples of (text | null) fields, trailer. */
function binary(rows: (string | null)[][], trailer = true): Uint8Array {
  const parts: number[] = [
    ...[0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00],
    ...[0, 0, 0, 0],
    ...[0, 0, 0, 2, 0xab, 0xcd], // a header extension of 2 bytes
  ];
  for (const row of rows) {
    parts.push(0, row.length);
    for (const f of row) {
      if (f === null) parts.push(0xff, 0xff, 0xff, 0xff);
      else {
        const b = enc.encode(f);
        parts.push(0, 0, 0, b.length, ...b);
      }
    }
  }
  if (trailer) parts.push(0xff, 0xff);
  return new Uint8Array(parts);
}

Deno.test("CopyRowCutter cuts binary tuples; the header goes to every shard", () => {
  const data = binary([["1", "é"], [null, "x"], ["3", null], []]);
  const c = everySplit(BINARY, 0, data);
  assert.equal(c.headers.length, 1);
  assert.equal(c.headers[0].length > 0, true);
  assert.deepEqual(c.rows.map((r) => [r[1], r[2]]), [["1", 1], [null, 2], ["3", 3], [
    undefined,
    4,
  ]]);
  assert.deepEqual(c.rest, []);
  assert.equal(c.ended, true);
  // Without a trailer, the end of the data ends it too.
  assert.equal(everySplit(BINARY, 1, binary([["1", "a"]], false)).rows[0][1], "a");
  // What follows the trailer goes, after a trailer, to one shard (Postgres refuses it there).
  const after = cut(BINARY, 0, [binary([["1"]]), new Uint8Array([0, 1])]);
  assert.deepEqual(after.rest, [0xff, 0xff, 0, 1]);
  // A bad signature or a cut-off tuple: everything unread goes there.
  const bad = cut(BINARY, 0, [enc.encode("not a binary copy file!")]);
  assert.deepEqual(bad.rows, []);
  assert.equal(dec.decode(new Uint8Array(bad.rest)), "not a binary copy file!");
  const short = binary([["1"], ["22"]], false);
  const cutOff = cut(BINARY, 0, [short.subarray(0, short.length - 1)]);
  assert.deepEqual(cutOff.rows.map((r) => r[1]), ["1"]);
  assert.deepEqual(cutOff.rest, [0, 1, 0, 0, 0, 2, 0x32]);
});

Deno.test("CopyRowCutter refuses a row larger than it may keep (54000), without keeping it", () => {
  const chunk = new Uint8Array(8 * 1024 * 1024).fill(0x61); // no line end
  assert.throws(
    () => cut(TEXT, 0, Array.from({ length: 9 }, () => chunk)),
    (e: unknown) => e instanceof PgError && e.sqlstate === "54000" && e.message === "out of memory",
  );
});
