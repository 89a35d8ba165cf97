import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import {
  BackendCode,
  READY_IDLE,
  WireWriter,
  writeCommandComplete,
  writeDataRow,
  writeErrorResponse,
  writeRowDescription,
} from "../../shared/wire/mod.ts";
import { copyFormat } from "../planner/mod.ts";
import { copyOutAnswer } from "./merged_copy.ts";
import { body, commandTag, splitMessages } from "./messages.ts";

const dec = new TextDecoder();

/** A merged SELECT's answer: columns `names`, then `rows`. */
function answer(names: string[], rows: (string | null)[][]): Uint8Array {
  const w = new WireWriter(64);
  writeRowDescription(w, names.map((name) => ({ name, typeOid: 25 })));
  for (const r of rows) writeDataRow(w, r);
  writeCommandComplete(w, `SELECT ${rows.length}`);
  w.raw(READY_IDLE);
  return w.view().slice();
}

/** The lines a client's COPY gets, and its tag. */
function copied(bytes: Uint8Array): { lines: string; tag: string } {
  const msgs = splitMessages(bytes);
  assert.equal(msgs[0].code, BackendCode.CopyOutResponse);
  assert.equal(msgs.at(-1)?.code, BackendCode.ReadyForQuery);
  const done = msgs.findIndex((m) => m.code === BackendCode.CopyDone);
  assert.ok(done > 0);
  const lines = msgs.slice(1, done).map((m) => dec.decode(body(m))).join("");
  return { lines, tag: commandTag(msgs[done + 1]) };
}

const ROWS = [
  ["1", "tab\there", null],
  ["2", "back\\slash\nline\r", ""],
  ["3", 'say "hi", ok', "\\."],
];

Deno.test("copyOutAnswer() writes text lines with COPY's escapes", () => {
  const got = copied(copyOutAnswer(answer(["id", "a", "b"], ROWS), copyFormat([])));
  assert.equal(
    got.lines,
    "1\ttab\\there\t\\N\n" + "2\tback\\\\slash\\nline\\r\t\n" + '3\tsay "hi", ok\t\\\\.\n',
  );
  assert.equal(got.tag, "COPY 3");
});

Deno.test("copyOutAnswer() writes CSV, quoting what needs it, with HEADER", () => {
  const csv = { ...copyFormat([]), format: "csv" as const, delimiter: ",", null: "", header: true };
  const got = copied(copyOutAnswer(answer(["id", "a", "b"], ROWS), csv));
  assert.equal(
    got.lines,
    "id,a,b\n" + '1,tab\there,\n2,"back\\slash\nline\r",""\n3,"say ""hi"", ok",\\.\n',
  );
  // One column: `\.` alone on its line is quoted.
  const one = copied(copyOutAnswer(answer(["b"], [["\\."]]), csv));
  assert.equal(one.lines, 'b\n"\\."\n');
});

Deno.test("copyOutAnswer() passes an error on, without a copy-out", () => {
  const w = new WireWriter(64);
  writeErrorResponse(w, new PgError("22012", "division by zero"));
  w.raw(READY_IDLE);
  const msgs = splitMessages(copyOutAnswer(w.view().slice(), copyFormat([])));
  assert.deepEqual(msgs.map((m) => m.code), [
    BackendCode.ErrorResponse,
    BackendCode.ReadyForQuery,
  ]);
});
