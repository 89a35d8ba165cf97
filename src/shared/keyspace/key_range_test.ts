import assert from "node:assert/strict";
import {
  checkTiling,
  equalRanges,
  inRange,
  inRangeSql,
  type KeyRange,
  keyRangeName,
  parseKeyRange,
} from "./mod.ts";

const HALF = 0x8000000000000000n;
const MAX_ID = 0xffffffffffffffffn;

function throwsMessage(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

Deno.test("parseKeyRange() reads hex prefixes on both sides", () => {
  assert.deepEqual(parseKeyRange("0-8"), { start: 0n, end: HALF });
  assert.deepEqual(parseKeyRange("8-inf"), { start: HALF, end: null });
  assert.deepEqual(parseKeyRange("0-inf"), { start: 0n, end: null });
  assert.deepEqual(parseKeyRange("40-80"), { start: 0x4000000000000000n, end: HALF });
  assert.deepEqual(parseKeyRange("55-aa"), {
    start: 0x5500000000000000n,
    end: 0xaa00000000000000n,
  });
  assert.deepEqual(parseKeyRange("55-AA"), parseKeyRange("55-aa"));
  assert.deepEqual(parseKeyRange("C-INF"), { start: 0xc000000000000000n, end: null });
  assert.deepEqual(parseKeyRange("00-0800"), parseKeyRange("0-08"));
  assert.deepEqual(parseKeyRange("0-ffffffffffffffff"), { start: 0n, end: MAX_ID });
  assert.deepEqual(parseKeyRange("fffffffffffffffe-ffffffffffffffff"), {
    start: MAX_ID - 1n,
    end: MAX_ID,
  });
});

Deno.test("parseKeyRange() rejects malformed names and empty ranges", () => {
  for (
    const bad of [
      "",
      "0",
      "-8",
      "8-",
      "0-8-c",
      "x-8",
      "0-g",
      "inf-0",
      "0 - 8",
      " 0-8",
      "0x0-8",
      "0-1ffffffffffffffff",
    ]
  ) {
    throwsMessage(() => parseKeyRange(bad), new RegExp(`^invalid key range "${bad}": expected`));
  }
  throwsMessage(
    () => parseKeyRange("8-4"),
    'invalid key range "8-4": the start must be below the end',
  );
  throwsMessage(
    () => parseKeyRange("8-8"),
    'invalid key range "8-8": the start must be below the end',
  );
  throwsMessage(
    () => parseKeyRange("8-80"),
    'invalid key range "8-80": the start must be below the end',
  );
});

Deno.test("keyRangeName() writes the canonical name", () => {
  const names: [string, string][] = [
    ["0-8", "0-8"],
    ["00-80", "0-8"],
    ["8-INF", "8-inf"],
    ["0-inf", "0-inf"],
    ["55-AA", "55-aa"],
    ["0400-0800", "04-08"],
    ["0-ffffffffffffffff", "0-ffffffffffffffff"],
    ["0000000000000001-inf", "0000000000000001-inf"],
  ];
  for (const [given, canonical] of names) {
    assert.equal(keyRangeName(parseKeyRange(given)), canonical);
  }
  const r: KeyRange = { start: 0x1230000000000000n, end: null };
  assert.equal(keyRangeName(r), "123-inf");
});

Deno.test("equalRanges() matches the documented examples", () => {
  assert.deepEqual(equalRanges(1), ["0-inf"]);
  assert.deepEqual(equalRanges(2), ["0-8", "8-inf"]);
  assert.deepEqual(equalRanges(3), ["0-55", "55-aa", "aa-inf"]);
  assert.deepEqual(equalRanges(4), ["0-4", "4-8", "8-c", "c-inf"]);
  assert.deepEqual(equalRanges(16).slice(0, 3), ["0-1", "1-2", "2-3"]);
  assert.deepEqual(equalRanges(17).slice(0, 2), ["0-0f", "0f-1e1"]);
  assert.equal(equalRanges(4096).length, 4096);
  assert.equal(equalRanges(4096)[1], "001-002");
});

Deno.test("equalRanges() tiles the keyspace in nearly equal parts for n = 1..300", () => {
  for (let n = 1; n <= 300; n++) {
    const names = equalRanges(n);
    assert.equal(names.length, n);
    const tiled = checkTiling(names);
    assert.deepEqual(tiled.map((t) => t.name), names, `n=${n}: already sorted`);
    const sizes = tiled.map(({ range }) => (range.end ?? 1n << 64n) - range.start);
    const min = sizes.reduce((a, b) => (a < b ? a : b));
    const max = sizes.reduce((a, b) => (a > b ? a : b));
    let w = 1n;
    while (16n ** w < 16n * BigInt(n)) w++;
    const unit = 1n << (64n - 4n * w); // one step of the w-digit grid
    assert.ok(max - min <= unit, `n=${n}: sizes differ by more than one grid step`);
    for (const name of names) {
      assert.equal(keyRangeName(parseKeyRange(name)), name, `n=${n}: ${name}`);
    }
  }
});

Deno.test("equalRanges() rejects counts out of range", () => {
  for (const n of [0, -1, 4097, 1.5, NaN, Infinity]) {
    throwsMessage(
      () => equalRanges(n),
      `invalid shard count ${n}: must be an integer from 1 to 4096`,
    );
  }
});

Deno.test("checkTiling() sorts ranges and keeps their names", () => {
  const tiled = checkTiling(["8-inf", "00-80"]);
  assert.deepEqual(tiled, [
    { name: "00-80", range: { start: 0n, end: HALF } },
    { name: "8-inf", range: { start: HALF, end: null } },
  ]);
  assert.deepEqual(checkTiling(["0-inf"]).map((t) => t.name), ["0-inf"]);
  assert.deepEqual(checkTiling(["c-inf", "0-4", "8-c", "4-8"]).map((t) => t.name), [
    "0-4",
    "4-8",
    "8-c",
    "c-inf",
  ]);
});

Deno.test("checkTiling() names what is wrong", () => {
  throwsMessage(() => checkTiling(["0-4", "8-inf"]), "key ranges leave a gap between 4 and 8");
  throwsMessage(() => checkTiling(["0-8", "4-inf"]), "key ranges 0-8 and 4-inf overlap");
  throwsMessage(() => checkTiling(["0-inf", "8-inf"]), "key ranges 0-inf and 8-inf overlap");
  throwsMessage(() => checkTiling(["0-inf", "0-8"]), "key ranges 0-8 and 0-inf overlap");
  throwsMessage(() => checkTiling(["4-8", "8-inf"]), "key ranges do not start at 0");
  throwsMessage(
    () => checkTiling(["0-4", "4-8"]),
    "key ranges do not reach the end of the keyspace",
  );
  throwsMessage(() => checkTiling(["0-8", "8-inf", "0-8"]), 'duplicate key range "0-8"');
  throwsMessage(
    () => checkTiling(["0-8", "8-inf", "00-80"]),
    'duplicate key range "0-8" (as "0-8" and "00-80")',
  );
  throwsMessage(() => checkTiling([]), "no key ranges");
  throwsMessage(() => checkTiling(["0-8", "8-x"]), /^invalid key range "8-x"/);
});

Deno.test("inRange() is half-open", () => {
  const low = parseKeyRange("0-8");
  const high = parseKeyRange("8-inf");
  assert.equal(inRange(low, 0n), true);
  assert.equal(inRange(low, HALF - 1n), true);
  assert.equal(inRange(low, HALF), false);
  assert.equal(inRange(high, HALF), true);
  assert.equal(inRange(high, MAX_ID), true);
  assert.equal(inRange(high, HALF - 1n), false);
  const mid = parseKeyRange("40-80");
  assert.equal(inRange(mid, 0x3fffffffffffffffn), false);
  assert.equal(inRange(mid, 0x4000000000000000n), true);
  // every id lies in exactly one range of a tiling
  const tiles = equalRanges(7).map(parseKeyRange);
  for (const id of [0n, 1n, HALF, MAX_ID, 0x2492492492492492n, 0x2500000000000000n]) {
    assert.equal(tiles.filter((r) => inRange(r, id)).length, 1, `${id}`);
  }
});

Deno.test("inRangeSql() compares 16 hex digits under the C collation", () => {
  assert.equal(
    inRangeSql("kid", parseKeyRange("40-80")),
    `((kid) COLLATE "C" >= '4000000000000000' AND (kid) COLLATE "C" < '8000000000000000')`,
  );
  assert.equal(
    inRangeSql("kid", parseKeyRange("8-inf")),
    `((kid) COLLATE "C" >= '8000000000000000')`,
  );
  assert.equal(
    inRangeSql("kid", parseKeyRange("0-inf")),
    `((kid) COLLATE "C" >= '0000000000000000')`,
  );
});
