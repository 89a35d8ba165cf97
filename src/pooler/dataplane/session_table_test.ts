import assert from "node:assert/strict";
import {
  FrontendCode,
  WireWriter,
  writeFlush,
  writeQuery,
  writeSync,
} from "../../shared/wire/mod.ts";
import { countSyncPoints } from "./session_table.ts";
import { SyncCounter } from "./sync_counter.ts";

/** Parse(name, sql, no parameter types). */
function parse(w: WireWriter, sql: string): WireWriter {
  return w.begin(FrontendCode.Parse).cstring("").cstring(sql).int16(0).end();
}

/** Bind(unnamed portal, unnamed statement, no parameters, text results). */
function bind(w: WireWriter): WireWriter {
  return w.begin(FrontendCode.Bind).cstring("").cstring("").int16(0).int16(0).int16(0).end();
}

/** Execute(unnamed portal, all rows). */
function execute(w: WireWriter): WireWriter {
  return w.begin(FrontendCode.Execute).cstring("").int32(0).end();
}

/** Describe(portal). */
function describe(w: WireWriter): WireWriter {
  return w.begin(FrontendCode.Describe).int8(0x50).cstring("").end();
}

Deno.test("countSyncPoints() counts one per simple Query", () => {
  const w = new WireWriter();
  writeQuery(w, "SELECT 1");
  assert.equal(countSyncPoints(w.view()), 1);
  writeQuery(w, "SELECT 2; SELECT 3");
  writeQuery(w, "");
  assert.equal(countSyncPoints(w.view()), 3);
});

Deno.test("countSyncPoints() counts one per Sync of the extended protocol", () => {
  const w = new WireWriter();
  parse(w, "SELECT $1");
  bind(w);
  describe(w);
  execute(w);
  writeSync(w);
  assert.equal(countSyncPoints(w.view()), 1);
  bind(w);
  execute(w);
  writeSync(w);
  assert.equal(countSyncPoints(w.view()), 2);
});

Deno.test("countSyncPoints() counts one per FunctionCall", () => {
  const w = new WireWriter();
  // FunctionCall(oid 1598 = random(), no arguments, text result).
  w.begin(FrontendCode.FunctionCall).int32(1598).int16(0).int16(0).int16(0).end();
  writeQuery(w, "SELECT 1");
  assert.equal(countSyncPoints(w.view()), 2);
});

Deno.test("countSyncPoints() counts none for frames that get no ReadyForQuery", () => {
  const w = new WireWriter();
  parse(w, "SELECT 1");
  bind(w);
  execute(w);
  writeFlush(w);
  assert.equal(countSyncPoints(w.view()), 0);
  assert.equal(countSyncPoints(new Uint8Array(0)), 0);
});

Deno.test("countSyncPoints() mixes Query and Sync frames", () => {
  const w = new WireWriter();
  writeQuery(w, "BEGIN");
  parse(w, "INSERT INTO t VALUES (1)");
  bind(w);
  execute(w);
  writeSync(w);
  writeQuery(w, "COMMIT");
  assert.equal(countSyncPoints(w.view()), 3);
});

Deno.test("countSyncPoints() does not count Q or S bytes inside frame bodies", () => {
  const w = new WireWriter();
  // Bodies full of 'Q' (0x51) and 'S' (0x53) bytes.
  parse(w, "SELECT 'QQQQ SSSS'");
  w.begin(FrontendCode.Execute).cstring("QS").int32(0x51000053).end();
  writeQuery(w, "SELECT 'SQ'");
  assert.equal(countSyncPoints(w.view()), 1);
});

Deno.test("countSyncPoints() reads a payload that is a view with a non-zero byteOffset", () => {
  const w = new WireWriter();
  writeQuery(w, "SELECT 1");
  parse(w, "SELECT 2");
  bind(w);
  execute(w);
  writeSync(w);
  const frames = w.view();
  // Place the frames in the middle of a larger buffer whose other bytes would, if read,
  // look like more Query frames with lengths that point elsewhere.
  const big = new Uint8Array(frames.length + 64).fill(0x51);
  big.set(frames, 37);
  const view = big.subarray(37, 37 + frames.length);
  assert.equal(view.byteOffset, 37);
  assert.equal(countSyncPoints(view), 2);
});

Deno.test("countSyncPoints() reads the copy a WireWriter hands out after other frames", () => {
  const w = new WireWriter();
  writeQuery(w, "SELECT 'ignored'");
  const start = w.length;
  writeSync(w);
  writeQuery(w, "SELECT 1");
  assert.equal(countSyncPoints(w.view().subarray(start)), 2);
});

Deno.test("countSyncPoints() refuses a frame length below 4 instead of looping", () => {
  assert.throws(
    () => countSyncPoints(Uint8Array.from([0x51, 0xff, 0xff, 0xff, 0xff, 0, 0, 0])),
    RangeError,
  );
});

Deno.test("SyncCounter.feed() counts sync points in frames split at any byte", () => {
  const w = new WireWriter();
  writeQuery(w, "select 1");
  w.begin(FrontendCode.Parse).cstring("").cstring("select $1").int16(0).end();
  writeSync(w);
  writeQuery(w, "select 2");
  const all = w.view().slice();
  for (let cut = 0; cut <= all.length; cut++) {
    const c = new SyncCounter();
    const n = c.feed(all.subarray(0, cut)) + c.feed(all.subarray(cut));
    assert.equal(n, 3, `split at ${cut}`);
  }
  const bytes = new SyncCounter();
  let n = 0;
  for (const b of all) n += bytes.feed(Uint8Array.of(b));
  assert.equal(n, 3);
});
