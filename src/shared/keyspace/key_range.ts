/**
 * Key ranges: the half-open slices `[start, end)` of the 64-bit keyspace that shards own, named
 * by hex prefixes (`0-8`, `8-inf`, `40-80`, `0-inf`).
 *
 * @module
 */

/** A shard's key range [start, end): end null means the end of the keyspace (2^64). */
export interface KeyRange {
  start: bigint;
  end: bigint | null;
}

const RANGE_NAME = /^([0-9a-f]{1,16})-([0-9a-f]{1,16}|inf)$/i;
const MAX_SHARDS = 4096;

function prefixValue(hex: string): bigint {
  return BigInt(`0x${hex.padEnd(16, "0")}`);
}

/** A keyspace position as its shortest hex prefix ("0" for zero). */
function prefixName(v: bigint): string {
  if (v === 0n) return "0";
  return v.toString(16).padStart(16, "0").replace(/0+$/, "");
}

/** A keyspace position as the 16 hex digits keyspaceIdSql yields. */
function hex16(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/**
 * Parses a range name made of hex prefixes: "0-8" (0 to 0x8000000000000000), "8-inf", "0-inf"
 * (everything), "40-80", "55-aa", lower or upper case; at most 16 hex digits a side; start < end.
 * Throws Error with a clear message ("invalid key range "x": …").
 */
export function parseKeyRange(name: string): KeyRange {
  const m = RANGE_NAME.exec(name);
  if (m === null) {
    throw new Error(
      `invalid key range "${name}": expected <start>-<end>, each a hex prefix of 1 to 16 digits ` +
        `(the end may be "inf"), e.g. "0-8" or "8-inf"`,
    );
  }
  const start = prefixValue(m[1]);
  const end = m[2].toLowerCase() === "inf" ? null : prefixValue(m[2]);
  if (end !== null && end <= start) {
    throw new Error(`invalid key range "${name}": the start must be below the end`);
  }
  return { start, end };
}

/** The canonical name of a range (lowercase, trailing zeros trimmed, "0" for zero, "inf" for the end). */
export function keyRangeName(r: KeyRange): string {
  return `${prefixName(r.start)}-${r.end === null ? "inf" : prefixName(r.end)}`;
}

/**
 * n ranges of (nearly) equal size that tile the keyspace, n from 1 to 4096: boundaries
 * floor(i·16^w/n) with w the smallest number of hex digits such that 16^w ≥ 16·n, trailing zeros
 * trimmed. n=1 → ["0-inf"], n=2 → ["0-8","8-inf"], n=3 → ["0-55","55-aa","aa-inf"],
 * n=4 → ["0-4","4-8","8-c","c-inf"]. Throws for n out of range.
 */
export function equalRanges(n: number): string[] {
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS) {
    throw new Error(`invalid shard count ${n}: must be an integer from 1 to ${MAX_SHARDS}`);
  }
  let w = 1;
  while (16 ** w < 16 * n) w++;
  const size = 16 ** w; // at most 16^4: exact in a double, as are i·size
  const bound = (i: number) => {
    if (i === 0) return "0";
    if (i === n) return "inf";
    return Math.floor((i * size) / n).toString(16).padStart(w, "0").replace(/0+$/, "");
  };
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(`${bound(i)}-${bound(i + 1)}`);
  return names;
}

/**
 * Throws Error with a clear message unless the ranges tile the keyspace exactly: sorted by
 * start, the first starts at 0, each ends where the next starts, the last ends at inf (messages
 * like `key ranges leave a gap between 4 and 8`, `key ranges 0-8 and 4-inf overlap`,
 * `key ranges do not start at 0`, `key ranges do not reach the end of the keyspace`,
 * `duplicate key range "0-8"`, `no key ranges`). Returns the ranges sorted, each with its name
 * as given.
 */
export function checkTiling(names: string[]): { name: string; range: KeyRange }[] {
  if (names.length === 0) throw new Error("no key ranges");
  const ranges = names.map((name) => ({ name, range: parseKeyRange(name) }));
  ranges.sort((x, y) => compareBig(x.range.start, y.range.start) || compareEnd(x.range, y.range));
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    if (prev.range.start === cur.range.start && prev.range.end === cur.range.end) {
      const same = prev.name === cur.name ? "" : ` (as "${prev.name}" and "${cur.name}")`;
      throw new Error(`duplicate key range "${keyRangeName(cur.range)}"${same}`);
    }
  }
  if (ranges[0].range.start !== 0n) throw new Error("key ranges do not start at 0");
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1];
    const cur = ranges[i];
    const prevEnd = prev.range.end;
    if (prevEnd === null || prevEnd > cur.range.start) {
      throw new Error(`key ranges ${prev.name} and ${cur.name} overlap`);
    }
    if (prevEnd < cur.range.start) {
      throw new Error(
        `key ranges leave a gap between ${prefixName(prevEnd)} and ${prefixName(cur.range.start)}`,
      );
    }
  }
  if (ranges[ranges.length - 1].range.end !== null) {
    throw new Error("key ranges do not reach the end of the keyspace");
  }
  return ranges;
}

function compareBig(x: bigint, y: bigint): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareEnd(x: KeyRange, y: KeyRange): number {
  if (x.end === y.end) return 0;
  if (x.end === null) return 1;
  if (y.end === null) return -1;
  return compareBig(x.end, y.end);
}

/** Whether `id` lies in `r`. */
export function inRange(r: KeyRange, id: bigint): boolean {
  return id >= r.start && (r.end === null || id < r.end);
}

/**
 * A SQL boolean expression: the keyspace-id expression `kidSql` (from keyspaceIdSql) lies in `r`
 * (compare 16-hex-digit strings COLLATE "C"). NULL when the key is NULL, like `kidSql`.
 */
export function inRangeSql(kidSql: string, r: KeyRange): string {
  const lower = `(${kidSql}) COLLATE "C" >= '${hex16(r.start)}'`;
  if (r.end === null) return `(${lower})`;
  return `(${lower} AND (${kidSql}) COLLATE "C" < '${hex16(r.end)}')`;
}
