import assert from "node:assert/strict";
import { encodeValue } from "./encode.ts";
import { parseNumeric } from "./numeric.ts";
import { Oid, type Value } from "./values.ts";

const dec = new TextDecoder();
const text = (v: Value, typeOid: number, float4 = false) =>
  dec.decode(encodeValue(v, { typeOid, format: 0 }, { what: "test", float4 })!);
const num = (t: string): Value => ({ t: "numeric", v: parseNumeric(t)! });

Deno.test("encodeValue() casts numerics to integers rounding half away from zero", () => {
  assert.equal(text(num("2.5"), Oid.int4), "3");
  assert.equal(text(num("-2.5"), Oid.int4), "-3");
  assert.equal(text(num("2.4999"), Oid.int8), "2");
});

Deno.test("encodeValue() casts floats to integers rounding half to even", () => {
  assert.equal(text({ t: "float", v: 2.5 }, Oid.int4), "2");
  assert.equal(text({ t: "float", v: 3.5 }, Oid.int4), "4");
  assert.equal(text({ t: "float", v: -2.5 }, Oid.int2), "-2");
});

Deno.test("encodeValue() refuses out-of-range integers with Postgres's words", () => {
  assert.throws(
    () => text({ t: "int", v: 2n ** 31n }, Oid.int4),
    (e: Error & { sqlstate?: string }) =>
      e.sqlstate === "22003" && e.message === "integer out of range",
  );
  assert.throws(
    () => text(num("NaN"), Oid.int8),
    (e: Error & { sqlstate?: string }) => e.message === "cannot convert NaN to integer",
  );
});

Deno.test("encodeValue() writes floats as numeric with 15 (float8) or 6 (float4) digits", () => {
  assert.equal(text({ t: "float", v: 0.1 }, Oid.numeric), "0.1");
  assert.equal(text({ t: "float", v: 1 / 3 }, Oid.numeric), "0.333333333333333");
  assert.equal(text({ t: "float", v: Math.fround(1 / 3) }, Oid.numeric, true), "0.333333");
  assert.equal(text({ t: "float", v: 1.5e-5 }, Oid.numeric), "0.000015");
  assert.equal(text({ t: "float", v: 1e20 }, Oid.numeric), "100000000000000000000");
});

Deno.test("encodeValue() writes bool as text the way bool::text does", () => {
  assert.equal(text({ t: "bool", v: true }, Oid.text), "true");
  assert.equal(text({ t: "bool", v: false }, Oid.bool), "f");
});
