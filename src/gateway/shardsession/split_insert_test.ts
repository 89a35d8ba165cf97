import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import {
  FrontendCode,
  READY_IN_TX,
  WireWriter,
  writeCommandComplete,
  writeDataRow,
  writeErrorResponse,
  writeNoticeResponse,
  writeRowDescription,
} from "../../shared/wire/mod.ts";
import type { InsertSplit } from "../planner/mod.ts";
import { dataRows, splitMessages } from "./messages.ts";
import {
  answerAtBind,
  extendedAnswer,
  inlineSplit,
  shardQuery,
  splitAnswers,
} from "./split_insert.ts";
import { commandTagOf, concatAnswers, statementText } from "./units.ts";

/** One shard's answer to a simple Query: its RETURNING rows, then INSERT 0 n. */
function answer(ids: string[]): Uint8Array {
  const w = new WireWriter(64);
  for (const id of ids) writeDataRow(w, [id]);
  writeCommandComplete(w, `INSERT 0 ${ids.length}`);
  w.raw(READY_IN_TX);
  return w.view().slice();
}

const SPLIT: InsertSplit = {
  head: "insert into t (id) values ",
  rows: ["(1)", "(2)", "(3)", "(4)"].map((text, i) => ({ text, key: { literal: `${i + 1}` } })),
  tail: " returning id",
  returning: true,
  maySkipRows: false,
};

Deno.test("shardQuery() keeps the head, the shard's rows in order and the tail", () => {
  const unit = shardQuery(SPLIT, [1, 3]);
  assert.equal(unit.length, 1);
  assert.equal(statementText(unit), "insert into t (id) values (2), (4) returning id");
});

Deno.test("splitAnswers() sums the tags and puts RETURNING rows back in VALUES order", () => {
  const parts = [{ shard: "0-8", rows: [1, 2] }, { shard: "8-inf", rows: [0, 3] }];
  const joined = splitAnswers([answer(["2", "3"]), answer(["1", "4"])], parts);
  assert.deepEqual(dataRows(joined), [["1"], ["2"], ["3"], ["4"]]);
  assert.equal(commandTagOf(joined), "INSERT 0 4");
  assert.equal(splitMessages(joined).at(-1)?.frame.at(-1), READY_IN_TX.at(-1));
});

Deno.test("splitAnswers() keeps shard order when a shard returned another number of rows", () => {
  const parts = [{ shard: "0-8", rows: [1, 2] }, { shard: "8-inf", rows: [0] }];
  const joined = splitAnswers([answer(["2"]), answer(["1"])], parts);
  assert.deepEqual(dataRows(joined), [["2"], ["1"]]);
  assert.equal(commandTagOf(joined), "INSERT 0 2");
});

Deno.test("splitAnswers() answers a shard's error, without rows", () => {
  const w = new WireWriter(64);
  writeErrorResponse(w, new PgError("23505", "duplicate key value violates unique constraint"));
  w.raw(READY_IN_TX);
  const failed = w.view().slice();
  const joined = splitAnswers([answer(["1"]), failed], [
    { shard: "0-8", rows: [0] },
    { shard: "8-inf", rows: [1] },
  ]);
  assert.deepEqual(dataRows(joined), []);
  assert.equal(commandTagOf(joined), undefined);
});

Deno.test("inlineSplit() writes parameters in as literals, typed where the Parse typed them", () => {
  const split: InsertSplit = {
    head: "insert into t (id, note) values ",
    rows: [
      { text: "($1, $2)", key: { param: 1 } },
      { text: "($3, '$4 stays')", key: { param: 3 } },
    ],
    tail: " on conflict (id) do update set note = $4 returning id",
    returning: true,
    maySkipRows: false,
  };
  const got = inlineSplit(split, ["1", "it's", "2", null], [null, "text", null, "text"]);
  assert.equal(
    statementText(shardQuery(got, [0, 1])),
    "insert into t (id, note) values (('1'), ('it''s'::text)), (('2'), '$4 stays') " +
      "on conflict (id) do update set note = (NULL::text) returning id",
  );
  assert.deepEqual(got.rows.map((r) => r.key), [{ literal: "1" }, { literal: "2" }]);
});

Deno.test("extendedAnswer() answers Parse, Bind, Describe, Execute and Sync from a simple answer", () => {
  const unit = [
    { code: FrontendCode.Parse, frame: new Uint8Array([FrontendCode.Parse, 0, 0, 0, 4]) },
    { code: FrontendCode.Bind, frame: new Uint8Array([FrontendCode.Bind, 0, 0, 0, 4]) },
    { code: FrontendCode.Describe, frame: new Uint8Array([FrontendCode.Describe, 0, 0, 0, 4]) },
    { code: FrontendCode.Execute, frame: new Uint8Array([FrontendCode.Execute, 0, 0, 0, 4]) },
    { code: FrontendCode.Sync, frame: new Uint8Array([FrontendCode.Sync, 0, 0, 0, 4]) },
  ];
  const w = new WireWriter(64);
  writeRowDescription(w, [{ name: "id", typeOid: 20 }]);
  writeDataRow(w, ["1"]);
  writeDataRow(w, ["2"]);
  writeCommandComplete(w, "INSERT 0 2");
  w.raw(READY_IN_TX);
  const codes = splitMessages(extendedAnswer(unit, w.view().slice())).map((m) =>
    String.fromCharCode(m.code)
  );
  assert.deepEqual(codes, ["1", "2", "T", "D", "D", "C", "Z"]);
  // An error: what came before the Execute, the error, the ReadyForQuery.
  const e = new WireWriter(64);
  writeErrorResponse(e, new PgError("23505", "duplicate key value violates unique constraint"));
  e.raw(READY_IN_TX);
  const failed = splitMessages(extendedAnswer(unit, e.view().slice())).map((m) =>
    String.fromCharCode(m.code)
  );
  assert.deepEqual(failed, ["1", "2", "n", "E", "Z"]);
});

Deno.test("answerAtBind() answers the Parse, then the Bind's error, then ReadyForQuery", () => {
  const m = (code: number) => ({ code, frame: new Uint8Array([code, 0, 0, 0, 4]) });
  const unit = [FrontendCode.Parse, FrontendCode.Bind, FrontendCode.Execute, FrontendCode.Sync]
    .map(m);
  const e = new WireWriter(64);
  writeErrorResponse(e, new PgError("08P01", "bind message supplies 1 parameters"));
  const codes = splitMessages(answerAtBind(unit, e.view().slice(), 0x49)).map((x) =>
    String.fromCharCode(x.code)
  );
  assert.deepEqual(codes, ["1", "E", "Z"]);
});

Deno.test("concatAnswers() keeps every shard's notices, in shard order", () => {
  const shard = (id: string, notice: string) => {
    const w = new WireWriter(64);
    writeNoticeResponse(w, new PgError("00000", notice, { severity: "NOTICE" }));
    writeDataRow(w, [id]);
    writeCommandComplete(w, "INSERT 0 1");
    w.raw(READY_IN_TX);
    return w.view().slice();
  };
  const joined = splitMessages(concatAnswers([shard("1", "one"), shard("2", "two")]));
  assert.deepEqual(
    joined.map((m) => String.fromCharCode(m.code)),
    ["N", "D", "N", "D", "C", "Z"],
  );
  assert.equal(commandTagOf(concatAnswers([shard("1", "a"), shard("2", "b")])), "INSERT 0 2");
});
