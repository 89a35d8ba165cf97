import assert from "node:assert/strict";
import { FrontendCode, readCString, SYNC, WireWriter } from "../../shared/wire/mod.ts";
import type { MergeSpec } from "../planner/mod.ts";
import {
  bindMessage,
  type MergeLookup,
  parseMessage,
  readParse,
  rewriteExtended,
  rewriteQuery,
  shardFormats,
} from "./merged_unit.ts";
import { parseBind } from "./units.ts";
import type { Message } from "./messages.ts";

const SPEC: MergeSpec = {
  sql: "select id, x, x from t order by x limit $1::int8",
  visible: 2,
  hidden: 1,
  outputs: [null, null],
  aggregates: [],
  grouped: false,
  groupKeys: [],
  distinct: null,
  sort: [{ column: 0, descending: false, nullsFirst: false }],
  having: null,
  limit: { param: 1 },
  offset: null,
};

const LOOKUP: MergeLookup = {
  statement: (name) => name === "top" ? SPEC : undefined,
  text: (sql) => sql.startsWith("select id, x from t") ? SPEC : undefined,
  columns: () => Promise.resolve(3),
};

function msg(write: (w: WireWriter) => void): Message {
  const w = new WireWriter(64);
  write(w);
  const frame = w.view().slice();
  return { code: frame[0], frame };
}

const enc = new TextEncoder();

Deno.test("shardFormats() asks the client's formats for visible columns and binary for hidden", () => {
  assert.deepEqual(shardFormats([], 2, 2), [0, 0, 1, 1]);
  assert.deepEqual(shardFormats([0], 2, 1), [0, 0, 1]);
  assert.deepEqual(shardFormats([1, 0], 2, 1), [1, 0, 1]);
  assert.deepEqual(shardFormats([1], null, 3), [1]);
  assert.throws(
    () => shardFormats([0, 0, 0], 2, 1),
    (e: Error & { sqlstate?: string }) =>
      e.sqlstate === "08P01" &&
      e.message === "bind message has 3 result formats but query has 2 columns",
  );
});

Deno.test("rewriteQuery() sends a simple Query as Parse/Bind/Describe/Execute/Sync", async () => {
  const r = await rewriteQuery({ ...SPEC, limit: { literal: "3" } }, LOOKUP);
  assert.deepEqual(
    r.messages.map((m) => String.fromCharCode(m.code)).join(""),
    "PBDES",
  );
  assert.equal(readParse(r.messages[0]).sql, SPEC.sql);
  assert.deepEqual(parseBind(r.messages[1].frame.subarray(5)).resultFormats, [0, 0, 1]);
  assert.equal(r.script.fromQuery, true);
  assert.equal(r.script.executes[0].merge?.bounds.limit, 3n);
});

Deno.test("rewriteExtended() rewrites Parse and Bind of a merged statement and describes its portal", async () => {
  const unit: Message[] = [
    parseMessage("top", "select id, x from t order by x limit $1", [20]),
    bindMessage({
      portal: "",
      statement: "top",
      formats: [],
      values: [enc.encode("4")],
      resultFormats: [1],
    }),
    msg((w) => w.begin(FrontendCode.Execute).cstring("").int32(0).end()),
    { code: FrontendCode.Sync, frame: SYNC },
  ];
  const r = await rewriteExtended(unit, LOOKUP);
  assert.deepEqual(r.messages.map((m) => String.fromCharCode(m.code)).join(""), "PBDES");
  const p = readParse(r.messages[0]);
  assert.deepEqual([p.name, p.sql, p.types], ["top", SPEC.sql, [20]]);
  assert.deepEqual(parseBind(r.messages[1].frame.subarray(5)).resultFormats, [1]);
  assert.equal(readCString(r.messages[2].frame.subarray(6), 0)[0], "");
  assert.deepEqual(r.script.describes, [{ hidden: 1, added: true }]);
  assert.equal(r.script.executes[0].merge?.bounds.limit, 4n);
});

Deno.test("rewriteExtended() refuses an Execute that fetches some rows at a time", async () => {
  const unit: Message[] = [
    bindMessage({
      portal: "p",
      statement: "top",
      formats: [],
      values: [enc.encode("4")],
      resultFormats: [],
    }),
    msg((w) => w.begin(FrontendCode.Execute).cstring("p").int32(10).end()),
    { code: FrontendCode.Sync, frame: SYNC },
  ];
  await assert.rejects(
    () => rewriteExtended(unit, LOOKUP),
    (e: Error & { sqlstate?: string }) => e.sqlstate === "0A000",
  );
});
