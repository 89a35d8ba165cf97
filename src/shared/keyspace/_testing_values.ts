/**
 * Inputs for the keyspace tests: a seeded generator (failures reproduce) and, per sharding type,
 * thousands of value texts, valid and invalid, edge cases first.
 *
 * @module
 */

/** A seeded pseudo-random generator (Marsaglia's xorshift32). */
export class Rng {
  #x: number;

  constructor(seed: number) {
    this.#x = seed | 0 || 1;
  }

  /** A uniform uint32. */
  u32(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x;
    return x >>> 0;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A uniform signed 64-bit integer. */
  int64(): bigint {
    return BigInt.asIntN(64, (BigInt(this.u32()) << 32n) | BigInt(this.u32()));
  }

  /** A signed integer of a random bit length from 0 to `maxBits`. */
  intOfBits(maxBits: number): bigint {
    const bits = this.int(maxBits + 1);
    const v = ((BigInt(this.u32()) << 32n) | BigInt(this.u32())) & ((1n << BigInt(bits)) - 1n);
    return this.chance(0.5) ? -v : v;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  digits(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(48 + this.int(10));
    return s;
  }
}

const SPACES = [" ", "  ", "\t", "\n", "\r", "\v", "\f", " \t "];

function spaced(rng: Rng, s: string): string {
  const before = rng.chance(0.15) ? rng.pick(SPACES) : "";
  const after = rng.chance(0.15) ? rng.pick(SPACES) : "";
  return before + s + after;
}

/** Ways to write an integer that Postgres accepts: sign, leading zeros, spaces. */
function intText(rng: Rng, v: bigint): string {
  let s = (v < 0n ? -v : v).toString();
  if (rng.chance(0.1)) s = "0".repeat(1 + rng.int(25)) + s;
  const sign = v < 0n ? "-" : rng.chance(0.1) ? "+" : "";
  return spaced(rng, sign + s);
}

const INT_JUNK = [
  "",
  " ",
  "abc",
  "1.5",
  "1.0",
  "1e3",
  "0x10",
  "0X1f",
  "0o17",
  "0b101",
  "1_000",
  "++1",
  "+-1",
  "--1",
  "- 1",
  "+ 1",
  "1 2",
  "1-",
  "+",
  "-",
  "1x",
  "x1",
  "١٢",
  "１２",
  "1\u00a0",
  "\u00a01",
  "\u22121",
  "NaN",
  "inf",
  "'1'",
  "1,000",
  "12345678901234567890123",
  "99999999999999999999x",
  "-99999999999999999999 x",
  "00000000000000000000000000000000000000001",
  "-00000000000000000000000000000000000000000",
];

/** Int texts for a type of `bits` bits: edges, around ±2^31, random, out of range, junk. */
export function intInputs(rng: Rng, bits: 16 | 32 | 64, count: number): string[] {
  const max = (1n << BigInt(bits - 1)) - 1n;
  const min = -max - 1n;
  const out: string[] = [...INT_JUNK];
  const edges = [0n, 1n, -1n, max, min, max + 1n, min - 1n, max - 1n, min + 1n];
  for (const p of [7n, 8n, 15n, 16n, 31n, 32n, 33n, 53n, 62n, 63n, 64n]) {
    for (let d = -3n; d <= 3n; d++) edges.push((1n << p) + d, -(1n << p) + d);
  }
  for (const v of edges) out.push(v.toString(), intText(rng, v));
  out.push("-0", "+0", "0000", " 42 ", "\t-7\n", "\v1\f", "+2147483647", "-2147483648");
  out.push("9223372036854775807", "-9223372036854775808", "18446744073709551615");
  while (out.length < count) {
    const kind = rng.int(10);
    let v: bigint;
    if (kind < 4) v = BigInt.asIntN(bits, rng.int64());
    else if (kind < 7) v = rng.intOfBits(bits - 1);
    else if (kind < 8) v = BigInt(rng.int(2001) - 1000);
    else if (kind < 9) v = rng.intOfBits(64); // out of range for int2/int4
    else v = rng.int64();
    out.push(intText(rng, v));
  }
  return out;
}

const NUMERIC_EDGES = [
  "0",
  "0.0",
  "-0",
  "+0",
  "-0.000",
  "00.00e5",
  ".0",
  "0.",
  "1",
  "-1",
  "1.5",
  "1.50",
  "-1.5",
  "15e-1",
  "0.15e1",
  "0.0001",
  "0.00010",
  "10000",
  "9999",
  "99999999",
  "100000000",
  "123456789.123456789",
  "1000000000000000000001",
  "100000000.000000001",
  "5.",
  "+.5",
  "-.5e-3",
  ".5E+3",
  "1e 5",
  "1e\t-5",
  "1E5",
  "1e+5",
  "1e-5",
  "1e0",
  "1e-0",
  "1e131071",
  "9.999e131071",
  "1e131072",
  "1e-16383",
  "1e-16384",
  "0.1e-16382",
  "0.1e-16383",
  "1e-1073741822",
  "1e1073741822",
  "1e1073741823",
  "1e-1073741823",
  "0e1073741822",
  "0e-16383",
  "0e-16384",
  "1e99999999999999999999",
  "1e-99999999999999999999",
  "1.5e99999999999999999999x",
  "NaN",
  "nan",
  "NAN",
  " NaN ",
  "\tnaN\n",
  "Infinity",
  "-Infinity",
  "+Infinity",
  "infinity",
  "INFINITY",
  "inf",
  "-inf",
  "+INF",
  " -Inf ",
  "",
  " ",
  ".",
  "-",
  "+",
  "-.",
  "e5",
  ".e5",
  "1e",
  "1e+",
  "1e-",
  "1e ",
  "1ee5",
  "1e5.5",
  "1e5e5",
  "1.2.3",
  "- 5",
  "1 000",
  "1,5",
  "0x1F",
  "1_000",
  "NaNx",
  "NaN 1",
  "-NaN",
  "+NaN",
  "infinit",
  "Infinityx",
  "infx",
  "١",
  "1\u00a0",
  "abc",
  "'1'",
  "1.5.",
  "1..5",
  "--1",
];

function numericText(rng: Rng): string {
  const sign = rng.pick(["", "", "", "-", "+"]);
  let int = rng.digits(rng.int(rng.chance(0.05) ? 400 : 25));
  let frac = rng.digits(rng.int(rng.chance(0.05) ? 400 : 25));
  if (rng.chance(0.2)) int = "0".repeat(1 + rng.int(12)) + int;
  if (rng.chance(0.2)) frac += "0".repeat(1 + rng.int(12));
  if (rng.chance(0.1)) int = "1" + "0".repeat(rng.int(30));
  if (rng.chance(0.1)) frac = "0".repeat(rng.int(30)) + "1";
  if (int === "" && frac === "") int = rng.digits(1 + rng.int(5));
  let s = int === ""
    ? `.${frac}`
    : frac === ""
    ? (rng.chance(0.1) ? `${int}.` : int)
    : `${int}.${frac}`;
  if (rng.chance(0.3)) {
    const e = rng.chance(0.8) ? rng.int(801) - 400 : rng.int(260001) - 130000;
    const es = e < 0 ? "-" : rng.chance(0.3) ? "+" : "";
    s += `${rng.pick(["e", "E"])}${es}${Math.abs(e)}`;
  }
  return spaced(rng, sign + s);
}

/** Numeric texts: edges and specials, then random signs, scales, zeros and exponents. */
export function numericInputs(rng: Rng, count: number): string[] {
  const out = [...NUMERIC_EDGES];
  out.push(
    "1" + "0".repeat(2000),
    "0." + "0".repeat(2000) + "1",
    rng.digits(1000) + "." + rng.digits(1000),
  );
  while (out.length < count) out.push(numericText(rng));
  return out;
}

const CODE_POINT_RANGES: [number, number][] = [
  [0x20, 0x7e],
  [0xa0, 0xff],
  [0x100, 0x24f],
  [0x370, 0x3ff],
  [0x400, 0x4ff],
  [0x300, 0x36f], // combining marks
  [0x4e00, 0x9fff],
  [0xac00, 0xd7a3],
  [0xe000, 0xf8ff],
  [0xfff0, 0xfffd],
  [0x1f300, 0x1faff], // emoji
  [0x10000, 0x10ffff],
];

function randomString(rng: Rng, len: number, asciiOnly: boolean): string {
  let s = "";
  for (let i = 0; i < len; i++) {
    const [lo, hi] = asciiOnly ? CODE_POINT_RANGES[0] : rng.pick(CODE_POINT_RANGES);
    let cp = lo + rng.int(hi - lo + 1);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}

/** Text values: empty, every length up to 40 in ASCII, non-ASCII, emoji, long strings. */
export function textInputs(rng: Rng, count: number): string[] {
  const out = [
    "",
    " ",
    "a",
    "abc",
    "hello world!x",
    '"quoted"',
    "back\\slash",
    "{braces,commas}",
    "NULL",
    "é",
    "e\u0301",
    "\u00a0",
    "\ufffd",
    "\u{10ffff}",
    "😀",
    "👩‍👩‍👧‍👦",
    "日本語のテキスト",
    "x".repeat(10000),
    "😀".repeat(3000),
  ];
  for (let len = 0; len <= 40; len++) {
    out.push(randomString(rng, len, true), randomString(rng, len, false));
  }
  while (out.length < count) {
    const len = rng.chance(0.05) ? rng.int(5000) : rng.int(60);
    out.push(randomString(rng, len, rng.chance(0.5)));
  }
  return out;
}

function hex(bytes: Uint8Array, upper: boolean): string {
  const s = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return upper ? s.toUpperCase() : s;
}

const UUID_JUNK = [
  "x",
  "",
  " ",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ",
  " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
  "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}",
  "{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
  "(a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11)",
  "a0eebc9-99c0b-4ef8-bb6d-6bb9bd380a11",
  "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
  "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1-1",
  "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "a0eebc99_9c0b_4ef8_bb6d_6bb9bd380a11",
  "a0eebc99 9c0b 4ef8 bb6d 6bb9bd380a11",
  "0xa0eebc999c0b4ef8bb6d6bb9bd380a11",
  "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\u0000",
];

/** Uuid texts: every form uuid_in accepts (case, hyphens, braces) and near misses. */
export function uuidInputs(rng: Rng, count: number): string[] {
  const out = UUID_JUNK.filter((s) => !s.includes("\u0000"));
  out.push(
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
    "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
    "a0eebc999c0b4ef8bb6d6bb9bd380a11",
    "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
    "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
  );
  while (out.length < count) {
    const b = rng.bytes(16);
    const h = hex(b, rng.chance(0.2));
    const form = rng.int(6);
    let s: string;
    if (form === 0) s = h;
    else if (form === 1) {
      s = h.replace(
        /^(.{4})(.{4})(.{4})(.{4})(.{4})(.{4})(.{4})(.{4})$/,
        "$1-$2-$3-$4-$5-$6-$7-$8",
      );
    } else if (form === 2) {
      // a random subset of the allowed hyphen places (after each group of four but the last)
      s = "";
      for (let g = 0; g < 8; g++) {
        s += h.slice(4 * g, 4 * g + 4) + (g < 7 && rng.chance(0.5) ? "-" : "");
      }
    } else {
      s = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    if (rng.chance(0.15)) s = `{${s}}`;
    if (rng.chance(0.03)) s = s.slice(0, -1); // a near miss
    out.push(s);
  }
  return out;
}
