import assert from "node:assert/strict";
import { float4Text, float8Text } from "./float_text.ts";

// What Postgres 15 prints (extra_float_digits = 1) for each value, float8 then float4.
const CASES: [string, string, string][] = [
  ["1e15", "1e+15", "1e+15"],
  ["1e14", "100000000000000", "1e+14"],
  ["123456789012345.6", "123456789012345.6", "1.2345679e+14"],
  ["1e-4", "0.0001", "0.0001"],
  ["1e-5", "1e-05", "1e-05"],
  ["0.0001234", "0.0001234", "0.0001234"],
  ["-0", "-0", "-0"],
  ["3", "3", "3"],
  ["1e16", "1e+16", "1e+16"],
  ["2.5e-7", "2.5e-07", "2.5e-07"],
  ["123456.7", "123456.7", "123456.7"],
  ["1234567", "1234567", "1.234567e+06"],
];

Deno.test("float8Text() and float4Text() print the shortest digits as Postgres does", () => {
  for (const [v, f8, f4] of CASES) {
    assert.equal(float8Text(Number(v)), f8, `float8 ${v}`);
    assert.equal(float4Text(Math.fround(Number(v))), f4, `float4 ${v}`);
  }
  assert.equal(float8Text(NaN), "NaN");
  assert.equal(float8Text(-Infinity), "-Infinity");
  assert.equal(float8Text(0.1 + 0.2), "0.30000000000000004");
});
