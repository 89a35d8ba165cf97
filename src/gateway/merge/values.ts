/**
 * Values of hidden columns (always in binary format): decoded by type OID into something the
 * gateway can order and compare as Postgres does, with a key that is equal exactly when
 * Postgres's equality holds (numeric 1.0 = 1.00, float -0 = 0, NaN = NaN, bpchar ignores
 * trailing spaces). Text orders by code point (UTF-8 bytes), as the cluster's C.UTF-8 databases
 * collate it.
 *
 * @module
 */

import { featureNotSupported } from "../../shared/errors/mod.ts";
import { compareNumeric, decodeNumeric, type Numeric, numericKey } from "./numeric.ts";

/** Type OIDs the merge knows. */
export const Oid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
  uuid: 2950,
} as const;

/** A decoded value: what its type compares as. */
export type Value =
  | null
  | { t: "int"; v: bigint }
  | { t: "float"; v: number }
  | { t: "numeric"; v: Numeric }
  | { t: "bytes"; v: Uint8Array }
  | { t: "bool"; v: boolean };

const USECS_PER_DAY = 86_400_000_000n;

/** Whether the merge can decode values of this type. */
export function isKnownType(oid: number): boolean {
  return (Object.values(Oid) as number[]).includes(oid);
}

/** Refusal for a type the merge cannot compare. */
export function unknownType(oid: number, what: string): Error {
  return featureNotSupported(
    `${what} of a value of type with OID ${oid} across shards is not supported`,
  );
}

/** Decodes a binary value of type `oid` (null for SQL NULL). */
export function decodeValue(oid: number, b: Uint8Array | null): Value {
  if (b === null) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (oid) {
    case Oid.bool:
      return { t: "bool", v: b[0] !== 0 };
    case Oid.int2:
      return { t: "int", v: BigInt(dv.getInt16(0)) };
    case Oid.int4:
    case Oid.date:
      return { t: "int", v: BigInt(dv.getInt32(0)) };
    case Oid.oid:
      return { t: "int", v: BigInt(dv.getUint32(0)) };
    case Oid.int8:
    case Oid.time:
    case Oid.timestamp:
    case Oid.timestamptz:
      return { t: "int", v: dv.getBigInt64(0) };
    case Oid.interval: {
      // Postgres compares intervals by their span: a month is 30 days, a day 24 hours.
      const usecs = dv.getBigInt64(0);
      const days = BigInt(dv.getInt32(8));
      const months = BigInt(dv.getInt32(12));
      return { t: "int", v: usecs + (days + months * 30n) * USECS_PER_DAY };
    }
    case Oid.float4:
      return { t: "float", v: dv.getFloat32(0) };
    case Oid.float8:
      return { t: "float", v: dv.getFloat64(0) };
    case Oid.numeric:
      return { t: "numeric", v: decodeNumeric(b) };
    case Oid.bpchar: {
      let n = b.length;
      while (n > 0 && b[n - 1] === 0x20) n--;
      return { t: "bytes", v: b.subarray(0, n) };
    }
    case Oid.text:
    case Oid.varchar:
    case Oid.name:
    case Oid.char:
    case Oid.bytea:
    case Oid.uuid:
      return { t: "bytes", v: b };
    default:
      throw unknownType(oid, "merging");
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

function compareFloat(a: number, b: number): number {
  // Postgres: NaN sorts above every other value and equals itself.
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders two non-null values of one type (negative, zero, positive). */
export function compareValues(a: Exclude<Value, null>, b: Exclude<Value, null>): number {
  switch (a.t) {
    case "int": {
      const y = (b as { v: bigint }).v;
      return a.v < y ? -1 : a.v > y ? 1 : 0;
    }
    case "float":
      return compareFloat(a.v, (b as { v: number }).v);
    case "numeric":
      return compareNumeric(a.v, (b as { v: Numeric }).v);
    case "bytes":
      return compareBytes(a.v, (b as { v: Uint8Array }).v);
    case "bool":
      return Number(a.v) - Number((b as { v: boolean }).v);
  }
}

const latin1 = new TextDecoder("latin1");

/** A string equal for values Postgres holds equal (NULL has its own key). */
export function valueKey(v: Value): string {
  if (v === null) return "N";
  switch (v.t) {
    case "int":
      return `i${v.v}`;
    case "float":
      return Number.isNaN(v.v) ? "fNaN" : `f${v.v === 0 ? 0 : v.v}`;
    case "numeric":
      return `n${numericKey(v.v)}`;
    case "bytes":
      return `b${latin1.decode(v.v)}`;
    case "bool":
      return v.v ? "t" : "f";
  }
}
