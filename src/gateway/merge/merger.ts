/**
 * {@linkcode Merger}: the rows of several shards' answers to one rewritten statement, merged
 * into the rows one Postgres would send for the client's statement.
 *
 * Incremental: rows are pushed per shard as they come and merged rows pulled as soon as they
 * are known. Without grouping, rows stream: a k-way merge by the sort keys (each shard's rows
 * come sorted), then DISTINCT, OFFSET and LIMIT; a row is out once every shard still sending
 * has a row queued. With grouping, every group is known only when every shard has ended.
 *
 * @module
 */

import { featureNotSupported, PgError } from "../../shared/errors/mod.ts";
import type { MergeSortKey, MergeSpec } from "../planner/mod.ts";
import { AggregateState, type Merged } from "./aggregates.ts";
import { havingHolds } from "./having.ts";
import { type ColumnInfo, dataRow, firstColumns, rowValues } from "./rows.ts";
import { compareValues, decodeValue, type Value, valueKey } from "./values.ts";

/** LIMIT and OFFSET as bound for one execution (null limit: none), and its parameters. */
export interface Bounds {
  limit: bigint | null;
  offset: bigint;
  /** The Bind's parameters (HAVING may compare with them); null for a simple Query. */
  params?: BindParams | null;
}

/** A Bind's parameter values and formats. */
export interface BindParams {
  formats: number[];
  values: (Uint8Array | null)[];
}

const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Parameter `$n` in text, for HAVING; a binary one is refused (its type is not known here). */
function paramText(params: BindParams | null | undefined, n: number): string | null {
  const raw = params?.values[n - 1] ?? null;
  if (raw === null) return null;
  const f = params!.formats.length === 1 ? params!.formats[0] : params!.formats[n - 1] ?? 0;
  if (f !== 0) {
    throw featureNotSupported(
      "a parameter in binary format in a HAVING evaluated across shards is not supported",
    );
  }
  return textDecoder.decode(raw);
}

interface Row {
  frame: Uint8Array;
  values: (Uint8Array | null)[];
  keys: Value[];
}

interface Group {
  values: (Uint8Array | null)[];
  states: AggregateState[];
}

/** Merges the rows of `shards` answers to a {@linkcode MergeSpec}'s statement. */
export class Merger {
  readonly #spec: MergeSpec;
  readonly #cols: ColumnInfo[];
  /** The number of visible columns: hidden column h is column `#visible + h`. */
  readonly #visible: number;
  readonly #queues: Row[][];
  readonly #heads: number[];
  readonly #ended: boolean[];
  readonly #groups = new Map<string, Group>();
  readonly #seen = new Set<string>();
  #skip: bigint;
  readonly #params: BindParams | null;
  #left: bigint | null;
  #out: Uint8Array[] = [];
  #count = 0;

  /**
   * `columns`: every column of the shards' RowDescription (visible then hidden), for types and
   * formats.
   */
  constructor(spec: MergeSpec, columns: ColumnInfo[], shards: number, bounds: Bounds) {
    this.#spec = spec;
    this.#cols = columns;
    this.#visible = columns.length - spec.hidden;
    this.#queues = Array.from({ length: shards }, () => []);
    this.#heads = new Array(shards).fill(0);
    this.#ended = new Array(shards).fill(false);
    this.#skip = bounds.offset;
    this.#params = bounds.params ?? null;
    this.#left = bounds.limit;
  }

  /** Whether LIMIT is reached: no row pushed from now on can be sent. */
  get done(): boolean {
    return this.#left !== null && this.#left <= 0n;
  }

  /** The number of rows pulled so far and still to pull (the CommandComplete's row count). */
  get rowCount(): number {
    return this.#count;
  }

  /** One DataRow frame of shard `shard` (it must stay valid until pulled). */
  push(shard: number, frame: Uint8Array): void {
    if (this.done) return;
    const values = rowValues(frame);
    if (this.#spec.grouped) {
      this.#fold(values);
      return;
    }
    const keys = this.#spec.sort.map((k) => this.#decode(k.column!, values));
    this.#queues[shard].push({ frame, values, keys });
    this.#drain();
  }

  /** Shard `shard` has sent all its rows. */
  end(shard: number): void {
    this.#ended[shard] = true;
    if (this.#spec.grouped) {
      if (this.#ended.every((e) => e)) this.#emitGroups();
    } else {
      this.#drain();
    }
  }

  /** The merged DataRow frames known so far (each returned once). */
  pull(): Uint8Array[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** Hidden column `h` of a row, decoded. */
  #decode(h: number, values: (Uint8Array | null)[]): Value {
    const c = this.#visible + h;
    return decodeValue(this.#cols[c].typeOid, values[c]);
  }

  // ---- streaming rows ----

  #drain(): void {
    const n = this.#queues.length;
    for (;;) {
      if (this.done) return;
      let best = -1;
      for (let s = 0; s < n; s++) {
        const q = this.#queues[s];
        if (this.#heads[s] >= q.length) {
          // A shard still sending with nothing queued may hold the next row in order.
          if (!this.#ended[s] && this.#spec.sort.length > 0) return;
          continue;
        }
        if (best < 0 || this.#before(q[this.#heads[s]].keys, this.#head(best).keys)) best = s;
      }
      if (best < 0) return;
      const row = this.#head(best);
      this.#heads[best]++;
      if (this.#heads[best] > 64) {
        this.#queues[best].splice(0, this.#heads[best]);
        this.#heads[best] = 0;
      }
      this.#emit(row.frame, row.values);
    }
  }

  #head(s: number): Row {
    return this.#queues[s][this.#heads[s]];
  }

  #before(a: Value[], b: Value[]): boolean {
    return compareKeys(this.#spec.sort, a, b) < 0;
  }

  /** DISTINCT, OFFSET, LIMIT, then out (visible columns only). */
  #emit(frame: Uint8Array | null, values: (Uint8Array | null)[]): void {
    const d = this.#spec.distinct;
    if (d !== null) {
      const key = d.map((h) => valueKey(this.#decode(h, values))).join("\u0000");
      if (this.#seen.has(key)) return;
      this.#seen.add(key);
    }
    if (this.#skip > 0n) {
      this.#skip--;
      return;
    }
    if (this.done) return;
    if (this.#left !== null) this.#left--;
    const v = this.#visible;
    this.#out.push(frame !== null ? firstColumns(frame, v) : dataRow(values.slice(0, v)));
    this.#count++;
  }

  // ---- groups ----

  #fold(values: (Uint8Array | null)[]): void {
    const key = this.#spec.groupKeys.map((h) => valueKey(this.#decode(h, values))).join("\u0000");
    let g = this.#groups.get(key);
    if (g === undefined) {
      g = {
        values: values.map((v) => v === null ? null : v.slice()),
        states: this.#spec.aggregates.map((a) => new AggregateState(a, this.#cols, this.#visible)),
      };
      this.#groups.set(key, g);
    }
    for (const st of g.states) st.fold(values);
  }

  #emitGroups(): void {
    const spec = this.#spec;
    const rows: { values: (Uint8Array | null)[]; keys: Value[] }[] = [];
    for (const g of this.#groups.values()) {
      const merged: Merged[] = g.states.map((s) => s.finish());
      const column = (h: number) => this.#decode(h, g.values);
      if (
        spec.having !== null &&
        !havingHolds(spec.having, {
          aggregate: (i) => merged[i].value,
          column,
          param: (n) => paramText(this.#params, n),
        })
      ) continue;
      const values = g.values.slice(0, this.#visible);
      spec.outputs.forEach((a, i) => {
        if (a !== null) values[i] = merged[a].bytes;
      });
      const keys = spec.sort.map((k) =>
        k.aggregate !== undefined ? merged[k.aggregate].value : column(k.column!)
      );
      rows.push({ values, keys });
    }
    if (spec.sort.length > 0) rows.sort((a, b) => compareKeys(spec.sort, a.keys, b.keys));
    for (const r of rows) this.#emit(null, r.values);
    this.#groups.clear();
  }
}

/** Orders two rows' sort keys (NULLS FIRST/LAST apply whatever the direction). */
export function compareKeys(sort: MergeSortKey[], a: Value[], b: Value[]): number {
  for (let i = 0; i < sort.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === null || y === null) {
      if (x === y) continue;
      return (x === null) === sort[i].nullsFirst ? -1 : 1;
    }
    const c = compareValues(x, y);
    if (c !== 0) return sort[i].descending ? -c : c;
  }
  return 0;
}

/** LIMIT/OFFSET values of one execution, refused as Postgres refuses negative ones. */
export function boundsOf(spec: MergeSpec, params: BindParams | null): Bounds {
  const read = (b: MergeSpec["limit"]): bigint | null | undefined => {
    if (b === null) return undefined;
    if ("literal" in b) return b.literal === null ? null : BigInt(b.literal);
    const i = b.param - 1;
    const raw = params?.values[i] ?? null;
    if (raw === null) return null;
    const f = params!.formats.length === 1 ? params!.formats[0] : params!.formats[i] ?? 0;
    if (f === 0) {
      try {
        return BigInt(new TextDecoder().decode(raw).trim());
      } catch {
        return null; // the shards refuse it with Postgres's own error
      }
    }
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return raw.length === 8
      ? dv.getBigInt64(0)
      : raw.length === 4
      ? BigInt(dv.getInt32(0))
      : BigInt(dv.getInt16(0));
  };
  const offset = read(spec.offset) ?? 0n;
  const limit = read(spec.limit) ?? null;
  if (offset < 0n) throw new PgError("2201X", "OFFSET must not be negative");
  if (limit !== null && limit < 0n) throw new PgError("2201W", "LIMIT must not be negative");
  return { limit, offset, params };
}
