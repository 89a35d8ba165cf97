import assert from "node:assert/strict";
import type { MergeSpec } from "../planner/mod.ts";
import { boundsOf, Merger } from "./merger.ts";
import { type ColumnInfo, dataRow, rowValues } from "./rows.ts";
import { Oid } from "./values.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function int8(n: number | null): Uint8Array | null {
  if (n === null) return null;
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n));
  return b;
}

function text(s: string | null): Uint8Array | null {
  return s === null ? null : enc.encode(s);
}

function spec(over: Partial<MergeSpec>): MergeSpec {
  return {
    sql: "",
    visible: 1,
    hidden: 1,
    outputs: [],
    aggregates: [],
    grouped: false,
    groupKeys: [],
    distinct: null,
    sort: [],
    having: null,
    limit: null,
    offset: null,
    ...over,
  };
}

/** Rows of one visible text column and one hidden int8 sort key. */
const KEYED: ColumnInfo[] = [
  { typeOid: Oid.text, format: 0 },
  { typeOid: Oid.int8, format: 1 },
];

function keyed(label: string, key: number | null): Uint8Array {
  return dataRow([text(label), int8(key)]);
}

function labels(frames: Uint8Array[]): (string | null)[] {
  return frames.map((f) => {
    const v = rowValues(f);
    assert.equal(v.length, 1, "hidden columns are stripped");
    return v[0] === null ? null : dec.decode(v[0]);
  });
}

Deno.test("Merger k-way merges sorted shard streams and keeps NULLS FIRST order", () => {
  const s = spec({ sort: [{ column: 0, descending: false, nullsFirst: true }] });
  const m = new Merger(s, KEYED, 3, { limit: null, offset: 0n });
  m.push(0, keyed("a-null", null));
  m.push(0, keyed("a1", 1));
  m.push(1, keyed("b-null", null));
  m.push(1, keyed("b2", 2));
  // Shard 2 has sent nothing yet: nothing can be out.
  assert.deepEqual(m.pull(), []);
  m.push(2, keyed("c0", 0));
  m.end(2);
  m.push(0, keyed("a5", 5));
  m.end(0);
  m.end(1);
  assert.deepEqual(labels(m.pull()), ["a-null", "b-null", "c0", "a1", "b2", "a5"]);
  assert.equal(m.rowCount, 6);
});

Deno.test("Merger orders DESC with NULLS LAST across shards", () => {
  const s = spec({ sort: [{ column: 0, descending: true, nullsFirst: false }] });
  const m = new Merger(s, KEYED, 2, { limit: null, offset: 0n });
  for (const [label, k] of [["x9", 9], ["x3", 3], ["x-null", null]] as const) {
    m.push(0, keyed(label, k));
  }
  for (const [label, k] of [["y7", 7], ["y-null", null]] as const) m.push(1, keyed(label, k));
  m.end(0);
  m.end(1);
  assert.deepEqual(labels(m.pull()), ["x9", "y7", "x3", "x-null", "y-null"]);
});

Deno.test("Merger applies OFFSET then LIMIT after the merge and stops taking rows", () => {
  const s = spec({ sort: [{ column: 0, descending: false, nullsFirst: false }] });
  const m = new Merger(s, KEYED, 2, { limit: 2n, offset: 1n });
  m.push(0, keyed("a1", 1));
  m.push(1, keyed("b2", 2));
  m.push(0, keyed("a3", 3));
  m.push(1, keyed("b4", 4));
  assert.equal(m.done, true);
  m.end(0);
  m.end(1);
  assert.deepEqual(labels(m.pull()), ["b2", "a3"]);
});

Deno.test("Merger DISTINCT compares values as Postgres does (1.0 = 1.00)", () => {
  const cols: ColumnInfo[] = [{ typeOid: Oid.numeric, format: 0 }, {
    typeOid: Oid.numeric,
    format: 1,
  }];
  const num = (t: string, scale: number, digits: number[]) => {
    const b = new Uint8Array(8 + 2 * digits.length);
    const dv = new DataView(b.buffer);
    dv.setInt16(0, digits.length);
    dv.setInt16(6, scale);
    digits.forEach((d, i) => dv.setInt16(8 + 2 * i, d));
    return dataRow([text(t), b]);
  };
  const m = new Merger(spec({ distinct: [0] }), cols, 2, { limit: null, offset: 0n });
  m.push(0, num("1.0", 1, [1]));
  m.push(1, num("1.00", 2, [1]));
  m.push(1, num("2", 0, [2]));
  m.end(0);
  m.end(1);
  assert.deepEqual(labels(m.pull()), ["1.0", "2"]);
});

Deno.test("Merger folds groups: count and sum add up, HAVING filters merged groups", () => {
  // Visible: grp (text), count(*) (text); hidden: grp key (int8), count partial (int8).
  const cols: ColumnInfo[] = [
    { typeOid: Oid.text, format: 0 },
    { typeOid: Oid.int8, format: 0 },
    { typeOid: Oid.int8, format: 1 },
    { typeOid: Oid.int8, format: 1 },
  ];
  const s = spec({
    visible: 2,
    hidden: 2,
    outputs: [null, 0],
    aggregates: [{ fn: "count", args: [1], visible: 1 }],
    grouped: true,
    groupKeys: [0],
    sort: [{ aggregate: 0, descending: true, nullsFirst: true }],
    having: {
      op: "cmp",
      cmp: ">",
      left: { aggregate: 0 },
      right: { constant: "2", kind: "number" },
    },
  });
  const row = (g: number, n: number) => dataRow([text(`g${g}`), text(String(n)), int8(g), int8(n)]);
  const m = new Merger(s, cols, 2, { limit: null, offset: 0n });
  m.push(0, row(1, 2));
  m.push(0, row(2, 1));
  m.push(1, row(1, 3));
  m.push(1, row(3, 5));
  m.end(0);
  assert.deepEqual(m.pull(), [], "groups are known once every shard has ended");
  m.end(1);
  const out = m.pull().map((f) => rowValues(f).map((v) => v === null ? null : dec.decode(v)));
  // Tied on count(*) DESC: either order is Postgres's.
  assert.deepEqual(out.sort((a, b) => a[0]! < b[0]! ? -1 : 1), [["g1", "5"], ["g3", "5"]]);
});

Deno.test("boundsOf() reads literals and parameters and refuses negative values", () => {
  const s = spec({ limit: { param: 1 }, offset: { literal: "3" } });
  assert.deepEqual(boundsOf(s, { formats: [], values: [enc.encode("7")] }).limit, 7n);
  assert.equal(boundsOf(s, { formats: [], values: [null] }).limit, null);
  assert.throws(
    () => boundsOf(s, { formats: [], values: [enc.encode("-1")] }),
    (e: Error & { sqlstate?: string }) => e.sqlstate === "2201W",
  );
  assert.throws(
    () => boundsOf(spec({ offset: { literal: "-2" } }), null),
    (e: Error & { sqlstate?: string }) => e.sqlstate === "2201X",
  );
});
