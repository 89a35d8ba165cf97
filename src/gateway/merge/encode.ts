/**
 * {@linkcode encodeValue}: a value the gateway computed (a merged aggregate) written as the
 * client's column wants it: in its type (the aggregate's own, or the type of a cast around it,
 * converted as Postgres converts: numeric to integer rounds half away from zero, float to
 * integer rounds half to even, out of range is 22003) and in its format (text or binary).
 *
 * @module
 */

import { featureNotSupported, PgError } from "../../shared/errors/mod.ts";
import { float4Text, float8Text } from "./float_text.ts";
import {
  encodeNumericBinary,
  type Numeric,
  numericOfBigInt,
  numericText,
  parseNumeric,
} from "./numeric.ts";
import type { ColumnInfo } from "./rows.ts";
import { Oid, type Value } from "./values.ts";

const encoder = new TextEncoder();

const INT_RANGE: Record<number, [bigint, bigint, string]> = {
  [Oid.int2]: [-(2n ** 15n), 2n ** 15n - 1n, "smallint out of range"],
  [Oid.int4]: [-(2n ** 31n), 2n ** 31n - 1n, "integer out of range"],
  [Oid.int8]: [-(2n ** 63n), 2n ** 63n - 1n, "bigint out of range"],
};

/** How a computed value was typed before any cast: float4 values print with fewer digits. */
export interface EncodeOptions {
  float4?: boolean;
  /** What computed it, for messages. */
  what: string;
}

/** `v` in the type and format of column `out` (null stays NULL). */
export function encodeValue(v: Value, out: ColumnInfo, opts: EncodeOptions): Uint8Array | null {
  if (v === null) return null;
  const oid = out.typeOid;
  const binary = out.format === 1;
  const range = INT_RANGE[oid];
  if (range !== undefined) {
    const n = toInteger(v, range[2]);
    if (n < range[0] || n > range[1]) throw new PgError("22003", range[2]);
    if (!binary) return encoder.encode(n.toString());
    const size = oid === Oid.int2 ? 2 : oid === Oid.int4 ? 4 : 8;
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    if (size === 2) dv.setInt16(0, Number(n));
    else if (size === 4) dv.setInt32(0, Number(n));
    else dv.setBigInt64(0, n);
    return b;
  }
  switch (oid) {
    case Oid.numeric: {
      if (out.typeModifier !== undefined && out.typeModifier !== -1) break;
      const n = toNumeric(v, opts);
      if (n === undefined) break;
      return binary ? encodeNumericBinary(n) : encoder.encode(numericText(n));
    }
    case Oid.float8:
    case Oid.float4: {
      const f = toFloat(v);
      if (f === undefined) break;
      const x = oid === Oid.float4 ? Math.fround(f) : f;
      if (!binary) return encoder.encode(oid === Oid.float4 ? float4Text(x) : float8Text(x));
      const b = new Uint8Array(oid === Oid.float4 ? 4 : 8);
      if (oid === Oid.float4) new DataView(b.buffer).setFloat32(0, x);
      else new DataView(b.buffer).setFloat64(0, x);
      return b;
    }
    case Oid.bool:
      if (v.t !== "bool") break;
      return binary ? new Uint8Array([v.v ? 1 : 0]) : encoder.encode(v.v ? "t" : "f");
    case Oid.text:
    case Oid.varchar: {
      if (out.typeModifier !== undefined && out.typeModifier !== -1) break;
      const text = textOf(v, opts);
      if (text === undefined) break;
      return encoder.encode(text);
    }
  }
  throw featureNotSupported(
    `${opts.what} shown as a value of type with OID ${oid} across shards is not supported`,
  );
}

/** Postgres's rint(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function toInteger(v: Exclude<Value, null>, outOfRange: string): bigint {
  switch (v.t) {
    case "int":
      return v.v;
    case "bool":
      return v.v ? 1n : 0n;
    case "float": {
      if (!Number.isFinite(v.v)) throw new PgError("22003", outOfRange);
      return BigInt(roundHalfEven(v.v));
    }
    case "numeric": {
      const n = v.v;
      if (n.kind === "nan") throw featureNotSupported("cannot convert NaN to integer");
      if (n.kind === "inf") throw featureNotSupported("cannot convert infinity to integer");
      const d = 10n ** BigInt(n.scale);
      const neg = n.coef < 0n;
      const a = neg ? -n.coef : n.coef;
      let q = a / d;
      if ((a % d) * 2n >= d) q++;
      return neg ? -q : q;
    }
    default:
      throw featureNotSupported("this value cannot be converted to an integer across shards");
  }
}

function toNumeric(v: Exclude<Value, null>, opts: EncodeOptions): Numeric | undefined {
  if (v.t === "numeric") return v.v;
  if (v.t === "int") return numericOfBigInt(v.v);
  if (v.t !== "float") return undefined;
  if (Number.isNaN(v.v)) return { kind: "nan" };
  if (!Number.isFinite(v.v)) return { kind: "inf", negative: v.v < 0 };
  // float8_numeric / float4_numeric: the value printed with %.15g / %.6g, read back.
  return parseNumeric(gFormat(v.v, opts.float4 ? 6 : 15));
}

function toFloat(v: Exclude<Value, null>): number | undefined {
  if (v.t === "float") return v.v;
  if (v.t === "int") return Number(v.v);
  if (v.t === "numeric") return Number(numericText(v.v));
  return undefined;
}

function textOf(v: Exclude<Value, null>, opts: EncodeOptions): string | undefined {
  switch (v.t) {
    case "int":
      return v.v.toString();
    case "numeric":
      return numericText(v.v);
    case "float":
      return opts.float4 ? float4Text(v.v) : float8Text(v.v);
    case "bool":
      return v.v ? "true" : "false";
    case "bytes":
      return new TextDecoder("utf-8", { ignoreBOM: true }).decode(v.v);
  }
}

/** C's `%.{p}g`. */
function gFormat(x: number, p: number): string {
  if (x === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(x)));
  const e = Number(x.toExponential(p - 1).split("e")[1]);
  const useExp = (Number.isFinite(exp) ? e : 0) < -4 || e >= p;
  if (useExp) {
    const [m, ex] = x.toExponential(p - 1).split("e");
    const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
    const n = Number(ex);
    return `${mant}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  const fixed = x.toFixed(Math.max(0, p - 1 - e));
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}
