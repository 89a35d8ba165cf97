import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import {
  concatBytes,
  WireWriter,
  writeCommandComplete,
  writeDataRow,
  writeQuery,
  writeReadyForQuery,
  writeRowDescription,
} from "../../shared/wire/mod.ts";
import { answerUnit, commandComplete, commandTag, errorFrame, splitMessages } from "./messages.ts";
import { concatAnswers } from "./units.ts";

function frames(write: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter(64);
  write(w);
  return w.view().slice();
}

function codes(b: Uint8Array): string {
  return splitMessages(b).map((m) => String.fromCharCode(m.code)).join("");
}

const field = {
  name: "id",
  tableOid: 0,
  columnAttr: 0,
  typeOid: 20,
  typeSize: 8,
  format: 0,
};

function shardAnswer(rows: string[]): Uint8Array {
  return frames((w) => {
    writeRowDescription(w, [field]);
    for (const r of rows) writeDataRow(w, [r]);
    writeCommandComplete(w, `SELECT ${rows.length}`);
    writeReadyForQuery(w, 0x49);
  });
}

Deno.test("answerUnit() answers a simple Query with the result and ReadyForQuery", () => {
  const unit = splitMessages(frames((w) => writeQuery(w, "create tablegroup x")));
  const out = answerUnit(unit, commandComplete("CREATE TABLEGROUP"), 0x49);
  assert.equal(codes(out), "CZ");
  assert.equal(commandTag(splitMessages(out)[0]), "CREATE TABLEGROUP");
});

Deno.test("answerUnit() answers every message of an extended unit, and stops at an error", () => {
  const p = new Uint8Array([0x50, 0, 0, 0, 8, 0, 0x78, 0]); // Parse "" "x" (types omitted)
  const unit = [
    { code: 0x50, frame: p },
    { code: 0x42, frame: new Uint8Array([0x42, 0, 0, 0, 4]) },
    { code: 0x44, frame: new Uint8Array([0x44, 0, 0, 0, 4]) },
    { code: 0x45, frame: new Uint8Array([0x45, 0, 0, 0, 4]) },
    { code: 0x53, frame: new Uint8Array([0x53, 0, 0, 0, 4]) },
  ];
  assert.equal(codes(answerUnit(unit, commandComplete("CREATE TABLE"), 0x49)), "12nCZ");
  const err = errorFrame(new PgError("0A000", "no"));
  const out = answerUnit(unit, err, 0x54);
  assert.equal(codes(out), "12nEZ");
  // An error inside a transaction block fails it.
  assert.equal(splitMessages(out).at(-1)!.frame[5], 0x45);
});

Deno.test("concatAnswers() joins rows of several shards under one header and sums the tag", () => {
  const out = concatAnswers([shardAnswer(["1", "2"]), shardAnswer([]), shardAnswer(["3"])]);
  assert.equal(codes(out), "TDDDCZ");
  const msgs = splitMessages(out);
  assert.equal(commandTag(msgs[4]), "SELECT 3");
});

Deno.test("concatAnswers() gives the first shard's error instead of partial rows", () => {
  const err = concatBytes([
    errorFrame(new PgError("22012", "division by zero")),
    frames((w) => writeReadyForQuery(w, 0x49)),
  ]);
  const out = concatAnswers([shardAnswer(["1"]), err]);
  assert.equal(codes(out), "EZ");
});
