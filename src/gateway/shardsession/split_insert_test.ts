import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import {
  READY_IN_TX,
  WireWriter,
  writeCommandComplete,
  writeDataRow,
  writeErrorResponse,
} from "../../shared/wire/mod.ts";
import type { InsertSplit } from "../planner/mod.ts";
import { dataRows, splitMessages } from "./messages.ts";
import { shardQuery, splitAnswers } from "./split_insert.ts";
import { commandTagOf, statementText } from "./units.ts";

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
