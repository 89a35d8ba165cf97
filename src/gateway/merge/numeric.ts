/**
 * Exact `numeric` values for the merge: decoded from Postgres's binary format, added, divided
 * with Postgres's result scale for division, compared, and written back in Postgres's text and
 * binary formats (byte for byte what the server sends for the same value).
 *
 * A finite value is `coef / 10^scale` with `scale` its display scale (dscale); NaN and the
 * infinities are kinds of their own, ordered as Postgres orders them (-Infinity < finite <
 * Infinity < NaN, and NaN equals NaN).
 *
 * @module
 */

/** A numeric value. */
export type Numeric =
  | { kind: "finite"; coef: bigint; scale: number }
  | { kind: "nan" }
  | { kind: "inf"; negative: boolean };

const NBASE = 10000n;
const SIGN_NEG = 0x4000;
const SIGN_NAN = 0xc000;
const SIGN_PINF = 0xd000;
const SIGN_NINF = 0xf000;
/** Postgres's lower bound on significant digits of a quotient (NUMERIC_MIN_SIG_DIGITS). */
const MIN_SIG_DIGITS = 16;
const MAX_DISPLAY_SCALE = 1000;

const NAN: Numeric = Object.freeze({ kind: "nan" });

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** A finite numeric of an integer. */
export function numericOfBigInt(n: bigint): Numeric {
  return { kind: "finite", coef: n, scale: 0 };
}

/** Reads numeric's binary format (ndigits, weight, sign, dscale, base-10000 digits). */
export function decodeNumeric(b: Uint8Array): Numeric {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ndigits = dv.getInt16(0);
  const weight = dv.getInt16(2);
  const sign = dv.getUint16(4);
  const dscale = dv.getInt16(6);
  if (sign === SIGN_NAN) return NAN;
  if (sign === SIGN_PINF) return { kind: "inf", negative: false };
  if (sign === SIGN_NINF) return { kind: "inf", negative: true };
  let n = 0n;
  for (let i = 0; i < ndigits; i++) n = n * NBASE + BigInt(dv.getInt16(8 + 2 * i));
  // n holds the value times 10000^(ndigits - 1 - weight).
  const exp = 4 * (ndigits - 1 - weight);
  let coef = dscale >= exp ? n * pow10(dscale - exp) : n / pow10(exp - dscale);
  if (sign === SIGN_NEG) coef = -coef;
  return { kind: "finite", coef, scale: dscale };
}

/** Base-10000 digits of |coef| / 10^scale, most significant first, and the first one's weight. */
function baseDigits(coef: bigint, scale: number): { digits: number[]; weight: number } {
  const fracGroups = Math.ceil(scale / 4);
  let n = (coef < 0n ? -coef : coef) * pow10(fracGroups * 4 - scale);
  const digits: number[] = [];
  while (n > 0n) {
    digits.push(Number(n % NBASE));
    n /= NBASE;
  }
  digits.reverse();
  let weight = digits.length - 1 - fracGroups;
  // Leading zeros cannot occur (n's top digit is non-zero); trailing zero digits are dropped.
  while (digits.length > 0 && digits[digits.length - 1] === 0) digits.pop();
  if (digits.length === 0) weight = 0;
  return { digits, weight };
}

/** Writes numeric's binary format, as Postgres's numeric_send does (digits stripped). */
export function encodeNumericBinary(v: Numeric): Uint8Array {
  let sign = 0;
  let dscale = 0;
  let digits: number[] = [];
  let weight = 0;
  if (v.kind === "nan") sign = SIGN_NAN;
  else if (v.kind === "inf") sign = v.negative ? SIGN_NINF : SIGN_PINF;
  else {
    ({ digits, weight } = baseDigits(v.coef, v.scale));
    sign = v.coef < 0n ? SIGN_NEG : 0;
    dscale = v.scale;
  }
  const out = new Uint8Array(8 + 2 * digits.length);
  const dv = new DataView(out.buffer);
  dv.setInt16(0, digits.length);
  dv.setInt16(2, weight);
  dv.setUint16(4, sign);
  dv.setInt16(6, dscale);
  for (let i = 0; i < digits.length; i++) dv.setInt16(8 + 2 * i, digits[i]);
  return out;
}

/** Numeric's text format, as Postgres's numeric_out writes it. */
export function numericText(v: Numeric): string {
  if (v.kind === "nan") return "NaN";
  if (v.kind === "inf") return v.negative ? "-Infinity" : "Infinity";
  const neg = v.coef < 0n;
  let digits = (neg ? -v.coef : v.coef).toString();
  if (v.scale > 0) {
    digits = digits.padStart(v.scale + 1, "0");
    const at = digits.length - v.scale;
    digits = `${digits.slice(0, at)}.${digits.slice(at)}`;
  }
  return neg ? `-${digits}` : digits;
}

/** Parses a numeric literal's text (`12`, `-3.50`, `1e3`, `NaN`), or undefined. */
export function parseNumeric(text: string): Numeric | undefined {
  const t = text.trim().toLowerCase();
  if (t === "nan") return NAN;
  if (t === "infinity" || t === "+infinity" || t === "inf") return { kind: "inf", negative: false };
  if (t === "-infinity" || t === "-inf") return { kind: "inf", negative: true };
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/.exec(t);
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) return undefined;
  const frac = m[3] ?? "";
  let coef = BigInt((m[2] || "0") + frac);
  let scale = frac.length;
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  if (exp > 0) {
    const shift = Math.min(exp, scale);
    scale -= shift;
    coef *= pow10(exp - shift);
  } else if (exp < 0) {
    scale -= exp;
  }
  if (m[1] === "-") coef = -coef;
  return { kind: "finite", coef, scale };
}

/** a + b, with the larger display scale (Postgres's add_var). */
export function addNumeric(a: Numeric, b: Numeric): Numeric {
  if (a.kind === "nan" || b.kind === "nan") return NAN;
  if (a.kind === "inf") {
    return b.kind === "inf" && b.negative !== a.negative ? NAN : a;
  }
  if (b.kind === "inf") return b;
  const scale = Math.max(a.scale, b.scale);
  return {
    kind: "finite",
    coef: a.coef * pow10(scale - a.scale) + b.coef * pow10(scale - b.scale),
    scale,
  };
}

/**
 * sum / count as Postgres's numeric division computes it for `avg`: the result scale gives at
 * least 16 significant digits and no less than the sum's display scale (at most 1000), the last
 * digit rounded half away from zero. `count` > 0.
 */
export function averageNumeric(sum: Numeric, count: bigint): Numeric {
  if (sum.kind !== "finite") return sum;
  const a = baseDigits(sum.coef, sum.scale);
  const b = baseDigits(count, 0);
  const w1 = a.digits.length > 0 ? a.weight : 0;
  const d1 = a.digits[0] ?? 0;
  const w2 = b.digits.length > 0 ? b.weight : 0;
  const d2 = b.digits[0] ?? 0;
  // The quotient's weight, assuming sum < count when their first digits are equal.
  let qweight = w1 - w2;
  if (d1 <= d2) qweight--;
  let rscale = MIN_SIG_DIGITS - qweight * 4;
  rscale = Math.max(rscale, sum.scale, 0);
  rscale = Math.min(rscale, MAX_DISPLAY_SCALE);
  const num = sum.coef * pow10(rscale - sum.scale);
  return { kind: "finite", coef: divRound(num, count), scale: rscale };
}

/** n / d rounded half away from zero (d > 0). */
function divRound(n: bigint, d: bigint): bigint {
  const neg = n < 0n;
  const a = neg ? -n : n;
  let q = a / d;
  if ((a % d) * 2n >= d) q++;
  return neg ? -q : q;
}

/** Orders two numerics as Postgres does (NaN above everything, equal to itself). */
export function compareNumeric(a: Numeric, b: Numeric): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb || a.kind !== "finite" || b.kind !== "finite") return ra - rb;
  const scale = Math.max(a.scale, b.scale);
  const x = a.coef * pow10(scale - a.scale);
  const y = b.coef * pow10(scale - b.scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

function rank(v: Numeric): number {
  if (v.kind === "nan") return 3;
  if (v.kind === "inf") return v.negative ? 0 : 2;
  return 1;
}

/** A key equal for equal values whatever their scale (1.0 and 1.00 give the same key). */
export function numericKey(v: Numeric): string {
  if (v.kind !== "finite") return numericText(v);
  let { coef, scale } = v;
  while (scale > 0 && coef % 10n === 0n) {
    coef /= 10n;
    scale--;
  }
  return `${coef}e-${scale}`;
}
