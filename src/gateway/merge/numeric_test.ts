import assert from "node:assert/strict";
import {
  addNumeric,
  averageNumeric,
  compareNumeric,
  decodeNumeric,
  encodeNumericBinary,
  type Numeric,
  numericKey,
  numericText,
  parseNumeric,
} from "./numeric.ts";

const n = (text: string): Numeric => parseNumeric(text)!;

Deno.test("numericText() writes the display scale as Postgres does", () => {
  for (const t of ["0", "1.0", "1.00", "-5.50", "123456789.123456789", "-0.000001", "42"]) {
    assert.equal(numericText(n(t)), t);
  }
  assert.equal(numericText(n("1e3")), "1000");
  assert.equal(numericText(n("1.5e-3")), "0.0015");
  assert.equal(numericText(n("NaN")), "NaN");
  assert.equal(numericText(n("-Infinity")), "-Infinity");
});

Deno.test("encodeNumericBinary() writes numeric_send's bytes, and decodeNumeric() reads them", () => {
  // 12345.678 (dscale 3): digits 1, 2345, 6780; weight 1.
  assert.deepEqual(
    [...encodeNumericBinary(n("12345.678"))],
    [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c],
  );
  // Zero keeps its scale and has no digits; a negative value has sign 0x4000.
  assert.deepEqual([...encodeNumericBinary(n("0.00"))], [0, 0, 0, 0, 0, 0, 0, 2]);
  assert.deepEqual([...encodeNumericBinary(n("-0.0001"))], [0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 1]);
  // Trailing zero digits are stripped: 10000 is one digit of weight 1.
  assert.deepEqual([...encodeNumericBinary(n("10000"))], [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
  for (
    const t of ["99999999999999999999.99", "-1000000000000.5", "0.0000000001", "NaN", "Infinity"]
  ) {
    assert.equal(numericText(decodeNumeric(encodeNumericBinary(n(t)))), t);
  }
});

Deno.test("addNumeric() is exact and keeps the larger scale", () => {
  assert.equal(numericText(addNumeric(n("0.1"), n("0.20"))), "0.30");
  assert.equal(
    numericText(addNumeric(n("99999999999999999999.99"), n("0.01"))),
    "100000000000000000000.00",
  );
  assert.equal(numericText(addNumeric(n("Infinity"), n("-Infinity"))), "NaN");
  assert.equal(numericText(addNumeric(n("Infinity"), n("5"))), "Infinity");
});

Deno.test("averageNumeric() divides with Postgres's result scale for numeric division", () => {
  // avg over (1, 2, 2) and (1.5, 2.25), as Postgres 15 answers them.
  assert.equal(numericText(averageNumeric(n("5"), 3n)), "1.6666666666666667");
  assert.equal(numericText(averageNumeric(n("3.75"), 2n)), "1.8750000000000000");
  // At least 16 significant digits, never below the sum's scale, rounded half away from 0.
  assert.equal(numericText(averageNumeric(n("-1"), 3n)), "-0.33333333333333333333");
  assert.equal(numericText(averageNumeric(n("123456789012"), 7n)), "17636684144.57142857");
  assert.equal(
    numericText(averageNumeric(n("0.123456789012345678901"), 1n)),
    "0.123456789012345678901",
  );
  assert.equal(numericText(averageNumeric(n("0"), 4n)), "0.00000000000000000000");
});

Deno.test("compareNumeric() and numericKey() follow Postgres's equality", () => {
  assert.equal(compareNumeric(n("1.0"), n("1.00")), 0);
  assert.equal(numericKey(n("1.0")), numericKey(n("1.00")));
  assert.notEqual(numericKey(n("1.0")), numericKey(n("10")));
  assert.ok(compareNumeric(n("-Infinity"), n("-1e30")) < 0);
  assert.ok(compareNumeric(n("Infinity"), n("NaN")) < 0);
  assert.equal(compareNumeric(n("NaN"), n("NaN")), 0);
  assert.ok(compareNumeric(n("-0.5"), n("0.25")) < 0);
});
