/**
 * Folding one aggregate's per-shard partials into its value, as Postgres computes it on one
 * server: count and sum add up (integers and numerics exactly), avg divides the summed sum by
 * the summed count with numeric division's result scale, min/max keep the best row's value,
 * bool_and/bool_or combine, string_agg and array_agg concatenate the shards' results (in shard
 * order: without an ORDER BY inside the call, Postgres's order is unspecified too).
 *
 * @module
 */

import { concatBytes } from "../../shared/wire/mod.ts";
import type { MergeAggregate } from "../planner/mod.ts";
import { encodeValue } from "./encode.ts";
import { addNumeric, averageNumeric, type Numeric, numericOfBigInt } from "./numeric.ts";
import type { ColumnInfo } from "./rows.ts";
import { compareValues, decodeValue, Oid, unknownType, type Value } from "./values.ts";

const encoder = new TextEncoder();

/** A merged aggregate: its value (to compare) and the bytes the client sees, if visible. */
export interface Merged {
  value: Value;
  bytes: Uint8Array | null;
}

/** The running merge of one aggregate in one group. */
export class AggregateState {
  readonly #agg: MergeAggregate;
  readonly #cols: ColumnInfo[];
  /** The partials' columns in the shard rows. */
  readonly #args: number[];
  #count = 0n;
  #int: bigint | null = null;
  #num: Numeric | null = null;
  #float: number | null = null;
  #best: Value = null;
  #bestBytes: Uint8Array | null = null;
  #bool: boolean | null = null;
  #parts: Uint8Array[] = [];

  /** `cols`: every column of the shard rows; hidden column h is column `visible + h`. */
  constructor(agg: MergeAggregate, cols: ColumnInfo[], visible: number) {
    this.#agg = agg;
    this.#cols = cols;
    this.#args = agg.args.map((h) => visible + h);
  }

  /** Folds in one shard row's partials (`values`: the row's values, all columns). */
  fold(values: (Uint8Array | null)[]): void {
    const a = this.#agg;
    const arg = this.#args[0];
    const raw = arg === undefined ? null : values[arg];
    switch (a.fn) {
      case "count":
        this.#count += decodeInt(raw);
        return;
      case "sum":
        this.#add(arg, raw);
        return;
      case "avg":
        this.#add(arg, raw);
        this.#count += decodeInt(values[this.#args[1]]);
        return;
      case "min":
      case "max": {
        const v = decodeValue(this.#cols[arg].typeOid, raw);
        if (v === null) return;
        const c = this.#best === null ? -1 : compareValues(v, this.#best);
        if (this.#best === null || (a.fn === "min" ? c < 0 : c > 0)) {
          this.#best = v;
          this.#bestBytes = a.visible === null ? null : copy(values[a.visible]);
        }
        return;
      }
      case "bool_and":
      case "bool_or": {
        if (raw === null) return;
        const v = raw[0] !== 0;
        this.#bool = this.#bool === null
          ? v
          : a.fn === "bool_and"
          ? this.#bool && v
          : this.#bool || v;
        return;
      }
      case "string_agg":
        if (raw !== null) this.#parts.push(copy(raw)!);
        return;
      case "array_agg": {
        const v = a.visible === null ? null : values[a.visible];
        if (v !== null) this.#parts.push(copy(v)!);
        return;
      }
    }
  }

  #add(col: number, raw: Uint8Array | null): void {
    if (raw === null) return;
    const oid = this.#cols[col].typeOid;
    const v = decodeValue(oid, raw);
    if (v === null) return;
    if (v.t === "int") this.#int = (this.#int ?? 0n) + v.v;
    else if (v.t === "numeric") this.#num = this.#num === null ? v.v : addNumeric(this.#num, v.v);
    else if (v.t === "float") {
      const sum = (this.#float ?? 0) + v.v;
      this.#float = oid === Oid.float4 && this.#agg.fn === "sum" ? Math.fround(sum) : sum;
    } else throw unknownType(oid, `${this.#agg.fn}()`);
  }

  /** The merged value, and its bytes in the visible column's type and format. */
  finish(): Merged {
    const a = this.#agg;
    const out = a.visible === null ? null : this.#cols[a.visible];
    const m = this.#merged(out);
    if (out === null || m.bytes !== undefined) return { value: m.value, bytes: m.bytes ?? null };
    const float4 = this.#args.length > 0 && this.#cols[this.#args[0]].typeOid === Oid.float4;
    return { value: m.value, bytes: encodeValue(m.value, out, { float4, what: `${a.fn}()` }) };
  }

  /** The merged value; `bytes` when they are the client's already (or made here). */
  #merged(out: ColumnInfo | null): { value: Value; bytes?: Uint8Array | null } {
    const a = this.#agg;
    switch (a.fn) {
      case "count":
        return { value: { t: "int", v: this.#count } };
      case "sum":
        if (this.#int !== null) return { value: { t: "int", v: this.#int } };
        if (this.#num !== null) return { value: { t: "numeric", v: this.#num } };
        if (this.#float !== null) return { value: { t: "float", v: this.#float } };
        return { value: null };
      case "avg": {
        if (this.#count === 0n) return { value: null };
        if (this.#float !== null) {
          if (this.#cols[this.#args[0]].typeOid === Oid.float4) {
            throw unknownType(Oid.float4, "avg()");
          }
          return { value: { t: "float", v: this.#float / Number(this.#count) } };
        }
        const sum = this.#num ?? numericOfBigInt(this.#int ?? 0n);
        return { value: { t: "numeric", v: averageNumeric(sum, this.#count) } };
      }
      case "min":
      case "max": {
        const from = this.#cols[this.#args[0]].typeOid;
        if (out === null || this.#best === null) return { value: this.#best, bytes: null };
        // The winning row's own bytes, unless a cast around the call changed the type.
        if (out.typeOid === from) return { value: this.#best, bytes: this.#bestBytes };
        if (!CASTABLE.has(from)) throw unknownType(from, `${a.fn}() with a cast`);
        return { value: this.#best };
      }
      case "bool_and":
      case "bool_or":
        return { value: this.#bool === null ? null : { t: "bool", v: this.#bool } };
      case "string_agg": {
        if (this.#parts.length === 0) return { value: null, bytes: null };
        if (out !== null && out.typeOid !== Oid.text) {
          throw unknownType(out.typeOid, "string_agg()");
        }
        const delim = encoder.encode(a.delimiter ?? "");
        const pieces: Uint8Array[] = [];
        this.#parts.forEach((p, i) => {
          if (i > 0) pieces.push(delim);
          pieces.push(p);
        });
        const bytes = concatBytes(pieces);
        return { value: { t: "bytes", v: bytes }, bytes };
      }
      case "array_agg": {
        if (this.#parts.length === 0) return { value: null, bytes: null };
        const bytes = out?.format === 1
          ? concatArraysBinary(this.#parts)
          : concatArraysText(this.#parts);
        return { value: null, bytes };
      }
    }
  }
}

/** Types of min()/max() whose value may be shown through a cast (numbers and text). */
const CASTABLE: ReadonlySet<number> = new Set([
  Oid.int2,
  Oid.int4,
  Oid.int8,
  Oid.numeric,
  Oid.float4,
  Oid.float8,
  Oid.text,
  Oid.varchar,
  Oid.bpchar,
]);

function decodeInt(b: Uint8Array | null): bigint {
  if (b === null) return 0n;
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigInt64(0);
}

function copy(b: Uint8Array | null): Uint8Array | null {
  return b === null ? null : b.slice();
}

/** `{a,b}` and `{c}` → `{a,b,c}` (text arrays of one shape). */
function concatArraysText(parts: Uint8Array[]): Uint8Array {
  const pieces: Uint8Array[] = [encoder.encode("{")];
  parts.forEach((p, i) => {
    if (p[0] !== 0x7b /* { */) throw unknownType(0, "array_agg() with array bounds");
    if (i > 0) pieces.push(encoder.encode(","));
    pieces.push(p.subarray(1, p.length - 1));
  });
  pieces.push(encoder.encode("}"));
  return concatBytes(pieces);
}

/** Binary arrays of one element type and inner shape, concatenated along the first dimension. */
function concatArraysBinary(parts: Uint8Array[]): Uint8Array {
  const heads = parts.map((p) => new DataView(p.buffer, p.byteOffset, p.byteLength));
  const ndim = heads[0].getInt32(0);
  const header = 12 + 8 * ndim;
  let total = 0;
  let nulls = 0;
  for (const h of heads) {
    if (h.getInt32(0) !== ndim) throw unknownType(0, "array_agg() of arrays of several shapes");
    total += h.getInt32(12);
    nulls |= h.getInt32(4);
  }
  const body = parts.map((p) => p.subarray(header));
  const out = concatBytes([parts[0].subarray(0, header), ...body]);
  const dv = new DataView(out.buffer);
  dv.setInt32(4, nulls);
  dv.setInt32(12, total);
  return out;
}
