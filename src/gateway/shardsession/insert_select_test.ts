import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import {
  parseErrorFields,
  READY_IDLE,
  WireWriter,
  writeCommandComplete,
  writeDataRow,
  writeErrorResponse,
  writeRowDescription,
} from "../../shared/wire/mod.ts";
import type { InsertSource } from "../planner/mod.ts";
import {
  checkExact,
  declareSource,
  emptyInsert,
  settingsQuery,
  type SourceAnswer,
  SourceRows,
  sourceSplit,
  typeNames,
  typeNamesQuery,
} from "./insert_select.ts";
import { body, splitMessages } from "./messages.ts";
import { shardQuery } from "./split_insert.ts";
import { statementText } from "./units.ts";

const SOURCE: InsertSource = {
  head: "insert into t (id, note, n) ",
  select: "select g, 'x', null from generate_series(1, 3) g",
  tail: " returning id",
  offset: 28,
  column: 0,
  columnName: "id",
  untyped: [false, true, true],
  params: [null, null, null],
  returning: true,
  maySkipRows: false,
};

/** The default shard's answer to the SELECT: its description, rows and tag. */
function answer(types: number[], rows: (string | null)[][]): Uint8Array {
  const w = new WireWriter(64);
  writeRowDescription(w, types.map((typeOid, i) => ({ name: `c${i}`, typeOid })));
  for (const r of rows) writeDataRow(w, r);
  writeCommandComplete(w, `SELECT ${rows.length}`);
  w.raw(READY_IDLE);
  return w.view().slice();
}

Deno.test("SourceRows takes the cursor's batches: types once, rows in order", () => {
  const read = new SourceRows(1000);
  assert.equal(read.take(answer([23, 25, 25], []), 0), null); // the DECLARE
  assert.equal(read.done, false);
  // One row first, then as many as fit in what is left at the largest row seen.
  assert.equal(read.fetch(), "FETCH FORWARD 1 FROM multigres_insert_source");
  assert.equal(read.take(answer([23, 25, 25], [["1", "x", null]]), 0), null);
  assert.equal(read.done, false);
  const next = read.fetch();
  const asked = Number(/FORWARD (\d+)/.exec(next)?.[1]);
  assert.ok(asked > 1 && asked < 1000 / 10, next);
  assert.equal(read.take(answer([23, 25, 25], [["2", "x", null], ["3", "\uFEFFy", "z"]]), 0), null);
  assert.equal(read.done, true, "fewer rows than asked: the source is read");
  assert.deepEqual(read.types, [
    { oid: 23, modifier: -1 },
    { oid: 25, modifier: -1 },
    { oid: 25, modifier: -1 },
  ]);
  // A leading U+FEFF is data, not a byte-order mark to drop.
  assert.deepEqual(read.rows, [["1", "x", null], ["2", "x", null], ["3", "\uFEFFy", "z"]]);
});

Deno.test("declareSource() and SourceRows move the SELECT's error to its place in the statement", () => {
  const { sql, shift } = declareSource(SOURCE);
  assert.equal(sql, `DECLARE multigres_insert_source NO SCROLL CURSOR FOR ${SOURCE.select}`);
  const w = new WireWriter(64);
  // "nosuch" at character 11 of the SELECT, so at 11 + the DECLARE's head in what ran.
  const head = sql.length - SOURCE.select.length;
  writeErrorResponse(
    w,
    new PgError("42703", 'column "nosuch" does not exist', { position: 11 + head }),
  );
  w.raw(READY_IDLE);
  const error = new SourceRows().take(w.view().slice(), shift);
  assert.ok(error);
  const err = parseErrorFields(body(splitMessages(error)[0]));
  assert.deepEqual([err.sqlstate, err.position], ["42703", 39]);
  // Run as other text (parameters written in): no position at all.
  const none = new SourceRows().take(
    w.view().slice(),
    declareSource({ ...SOURCE, offset: -1 }).shift,
  );
  assert.equal(parseErrorFields(body(splitMessages(none!)[0])).position, undefined);
});

Deno.test("SourceRows refuses a source past its size with 54000", () => {
  const read = new SourceRows(100);
  assert.equal(read.take(answer([25], [["a".repeat(40)]]), 0), null);
  const error = read.take(answer([25], [["b".repeat(40)], ["c".repeat(40)]]), 0);
  assert.ok(error);
  const err = parseErrorFields(body(splitMessages(error)[0]));
  assert.equal(err.sqlstate, "54000");
});

Deno.test("checkExact() refuses timestamptz under a non-ISO DateStyle and rounded floats", () => {
  const settings = (dateStyle: string, digits: string) => {
    const w = new WireWriter(64);
    writeDataRow(w, [dateStyle, digits]);
    return w.view().slice();
  };
  const tz = [{ oid: 1184, modifier: -1 }];
  const float = [{ oid: 701, modifier: -1 }];
  assert.equal(settingsQuery([{ oid: 23, modifier: -1 }]), null);
  assert.ok(settingsQuery(tz));
  checkExact(tz, settings("ISO, MDY", "1"));
  assert.throws(() => checkExact(tz, settings("SQL, DMY", "1")), /DateStyle SQL, DMY/);
  checkExact(float, settings("SQL, DMY", "1"));
  assert.throws(() => checkExact(float, settings("ISO, MDY", "0")), /extra_float_digits 0/);
});

Deno.test("sourceSplit() types each value as the SELECT did, untyped literals left so", () => {
  const read: SourceAnswer = {
    types: [{ oid: 23, modifier: -1 }, { oid: 25, modifier: -1 }, { oid: 25, modifier: -1 }],
    rows: [["1", "it's", null], ["2", "back\\slash", "5"]],
  };
  const split = sourceSplit(SOURCE, read, ["integer", "text", "text"], "int8");
  assert.deepEqual(split.rows.map((r) => r.key), [{ literal: "1" }, { literal: "2" }]);
  assert.equal(
    statementText(shardQuery(split, [0, 1])),
    "insert into t (id, note, n) VALUES ('1'::integer, 'it''s', NULL), " +
      "('2'::integer, E'back\\\\slash', '5') returning id",
  );
});

Deno.test("sourceSplit() refuses a key whose type the column could read otherwise", () => {
  const read: SourceAnswer = { types: [{ oid: 1700, modifier: -1 }], rows: [["1.5"]] };
  const only: InsertSource = { ...SOURCE, untyped: [] };
  assert.throws(
    () => sourceSplit(only, read, ["numeric"], "int8"),
    (e: PgError) => e.sqlstate === "0A000" && /type numeric/.test(e.message),
  );
  // A numeric column takes integers as they are; an untyped literal is read by the column.
  assert.equal(
    sourceSplit(only, { ...read, types: [{ oid: 20, modifier: -1 }] }, ["bigint"], "numeric").rows
      .length,
    1,
  );
  assert.equal(sourceSplit({ ...SOURCE, untyped: [true] }, read, ["text"], "int8").rows.length, 1);
});

Deno.test("sourceSplit() refuses an anonymous row, which cannot be read back", () => {
  const read: SourceAnswer = {
    types: [{ oid: 23, modifier: -1 }, { oid: 2249, modifier: -1 }],
    rows: [["1", "(1,2)"]],
  };
  assert.throws(
    () => sourceSplit({ ...SOURCE, untyped: [] }, read, ["integer", "record"], "int8"),
    (e: PgError) => e.sqlstate === "0A000" && /record/.test(e.message),
  );
});

Deno.test("emptyInsert() inserts nothing, typed as the SELECT was", () => {
  assert.equal(
    emptyInsert(SOURCE, ["integer", "text", "text"]),
    "insert into t (id, note, n) SELECT NULL::integer, NULL, NULL WHERE false returning id",
  );
});

Deno.test("typeNamesQuery() asks only for names it has not learnt; built-in ones are kept", () => {
  const types = [{ oid: 23, modifier: -1 }, { oid: 70000, modifier: 12 }];
  assert.equal(
    typeNamesQuery(types),
    "SELECT pg_catalog.format_type(23, -1), pg_catalog.format_type(70000, 12)",
  );
  const w = new WireWriter(64);
  writeDataRow(w, ["integer", "my_type(12)"]);
  assert.deepEqual(typeNames(types, w.view().slice()), ["integer", "my_type(12)"]);
  // The built-in one is known from now on; a user type (it may be dropped) is asked again.
  assert.equal(typeNamesQuery([types[0]]), null);
  assert.match(typeNamesQuery([types[1]]) ?? "", /format_type\(70000, 12\)$/);
});
