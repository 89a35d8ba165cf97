import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import {
  BackendCode,
  concatBytes,
  READY_IDLE,
  WireWriter,
  writeCommandComplete,
  writeErrorResponse,
  writeRowDescription,
} from "../../shared/wire/mod.ts";
import type { MergeSpec } from "../planner/mod.ts";
import { mergeAnswers, type MergeScript } from "./answers.ts";
import { dataRow, describeColumns, rowValues } from "./rows.ts";
import { Oid } from "./values.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function build(write: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter(64);
  write(w);
  return w.view().slice();
}

const PARSE_COMPLETE = new Uint8Array([BackendCode.ParseComplete, 0, 0, 0, 4]);
const BIND_COMPLETE = new Uint8Array([BackendCode.BindComplete, 0, 0, 0, 4]);
const FIELDS = build((w) =>
  writeRowDescription(w, [
    { name: "customer", typeOid: Oid.text, format: 0 },
    { name: "id", typeOid: Oid.int8, format: 1 },
  ])
);

function int8(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n));
  return b;
}

function answer(rows: [string, number][]): Uint8Array {
  const parts = [PARSE_COMPLETE, BIND_COMPLETE, FIELDS];
  for (const [c, id] of rows) parts.push(dataRow([enc.encode(c), int8(id)]));
  parts.push(build((w) => writeCommandComplete(w, `SELECT ${rows.length}`)), READY_IDLE);
  return concatBytes(parts);
}

const SPEC: MergeSpec = {
  sql: "select customer, id from t order by id",
  visible: 1,
  hidden: 1,
  outputs: [null],
  aggregates: [],
  grouped: false,
  groupKeys: [],
  distinct: null,
  sort: [{ column: 0, descending: false, nullsFirst: false }],
  having: null,
  limit: null,
  offset: null,
};

const SCRIPT: MergeScript = {
  describes: [{ hidden: 1, added: false }],
  executes: [{ merge: { spec: SPEC, bounds: { limit: 3n, offset: 0n } } }],
  fromQuery: true,
};

function messages(bytes: Uint8Array): { code: number; frame: Uint8Array }[] {
  const out = [];
  for (let off = 0; off < bytes.length;) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + off + 1).getInt32(0);
    out.push({ code: bytes[off], frame: bytes.subarray(off, off + 1 + len) });
    off += 1 + len;
  }
  return out;
}

Deno.test("mergeAnswers() answers a simple Query with the visible columns of merged rows", () => {
  const out = messages(
    mergeAnswers([answer([["a", 1], ["c", 4]]), answer([["b", 2], ["d", 5]])], SCRIPT),
  );
  assert.deepEqual(out.map((m) => String.fromCharCode(m.code)).join(""), "TDDDCZ");
  assert.deepEqual(describeColumns(out[0].frame), [{
    typeOid: Oid.text,
    format: 0,
    typeModifier: -1,
  }]);
  assert.deepEqual(
    out.slice(1, 4).map((m) => dec.decode(rowValues(m.frame)[0]!)),
    ["a", "b", "c"],
  );
  assert.equal(dec.decode(out[4].frame.subarray(5, out[4].frame.length - 1)), "SELECT 3");
});

Deno.test("mergeAnswers() drops the answer of a Describe the gateway added", () => {
  const script: MergeScript = {
    ...SCRIPT,
    describes: [{ hidden: 1, added: true }],
    fromQuery: false,
  };
  const out = messages(mergeAnswers([answer([["a", 1]]), answer([])], script));
  assert.deepEqual(out.map((m) => String.fromCharCode(m.code)).join(""), "12DCZ");
});

Deno.test("mergeAnswers() gives the first shard's error instead of rows", () => {
  const err = build((w) => writeErrorResponse(w, new PgError("22012", "division by zero")));
  const failed = new Uint8Array([
    ...PARSE_COMPLETE,
    ...BIND_COMPLETE,
    ...FIELDS,
    ...err,
    ...READY_IDLE,
  ]);
  const out = messages(mergeAnswers([answer([["a", 1]]), failed], SCRIPT));
  assert.deepEqual(out.map((m) => String.fromCharCode(m.code)).join(""), "TEZ");
  assert.deepEqual(describeColumns(out[0].frame).length, 1);
});
