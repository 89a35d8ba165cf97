/**
 * `float4` and `float8` in Postgres's text format with the default `extra_float_digits` (1 or
 * more): the shortest digits that read back as the same value, in fixed notation when the
 * decimal exponent is from -4 to 14 (float8) or 5 (float4), else as `d.ddde+XX`.
 *
 * @module
 */

/** A float8's text, as Postgres's float8out writes it. */
export function float8Text(v: number): string {
  return floatText(v, v.toExponential(), 15);
}

/** A float4's text (`v` already a float32 value), as Postgres's float4out writes it. */
export function float4Text(v: number): string {
  if (!Number.isFinite(v)) return floatText(v, "", 6);
  let digits = "";
  for (let p = 1; p <= 9; p++) {
    digits = v.toExponential(p - 1);
    if (Math.fround(Number(digits)) === v) break;
  }
  return floatText(v, digits, 6);
}

/** `exponential`: the shortest digits as JavaScript's toExponential() writes them. */
function floatText(v: number, exponential: string, fixedBelow: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exponential)!;
  const sign = m[1];
  const digits = m[2] + (m[3] ?? "");
  const exp = Number(m[4]);
  if (exp >= -4 && exp < fixedBelow) {
    if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
    if (digits.length <= exp + 1) return sign + digits + "0".repeat(exp + 1 - digits.length);
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp).toString().padStart(2, "0");
  return `${sign}${mantissa}e${exp < 0 ? "-" : "+"}${e}`;
}
