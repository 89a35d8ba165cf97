/**
 * LIMIT and OFFSET of a merged statement: what the gateway applies ({@linkcode MergeBound}),
 * and what replaces them in the shards' statement.
 *
 * @module
 */

import type { Node } from "libpg-query";
import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { MergeBound } from "./types.ts";

const INT8_MAX = 2n ** 63n - 1n;

function refuse(message: string): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message);
}

/** LIMIT/OFFSET as written: an integer literal, NULL/ALL, or `$n`; anything else is refused. */
export function bound(n: Node | undefined, what: string): MergeBound | null {
  if (n === undefined) return null;
  if ("A_Const" in n) {
    const c = n.A_Const;
    if (c.isnull) return { literal: null };
    if (c.ival !== undefined) return { literal: String(c.ival.ival ?? 0) };
    if (c.fval !== undefined && /^-?\d+$/.test(c.fval.fval ?? "")) return { literal: c.fval.fval! };
  }
  if ("ParamRef" in n && n.ParamRef.number !== undefined) return { param: n.ParamRef.number };
  throw refuse(`${what} other than a constant or a parameter across shards is not supported`);
}

/**
 * What replaces LIMIT/OFFSET on the shards: LIMIT offset + limit when rows are not grouped
 * (OFFSET and LIMIT are applied by the gateway), nothing when they are; a parameter stays
 * referenced either way (so the shards' statement takes the client's parameters, typed alike).
 */
export function shardLimit(
  limit: MergeBound | null,
  offset: MergeBound | null,
  grouped: boolean,
): string {
  const param = (b: MergeBound | null) => b !== null && "param" in b ? `$${b.param}::int8` : null;
  const lp = param(limit);
  const op = param(offset);
  let text = "";
  let offsetUsed = false;
  if (!grouped && limit !== null && !("literal" in limit && limit.literal === null)) {
    if (lp === null && op === null) {
      const l = BigInt((limit as { literal: string }).literal);
      const o = offset === null ? 0n : BigInt((offset as { literal: string | null }).literal ?? 0);
      const n = l < 0n ? l : l + (o > 0n ? o : 0n);
      if (n <= INT8_MAX) text = ` LIMIT ${n}`;
    } else {
      const l = lp ?? `${(limit as { literal: string }).literal}::int8`;
      const o = op !== null
        ? `greatest(${op}, 0)`
        : offset === null || (offset as { literal: string | null }).literal === null
        ? "0"
        : `greatest(${(offset as { literal: string }).literal}::int8, 0)`;
      text = ` LIMIT CASE WHEN ${l} > ${INT8_MAX} - ${o} THEN NULL ELSE ${l} + ${o} END`;
      offsetUsed = op !== null;
    }
  } else if (lp !== null) {
    text = ` LIMIT CASE WHEN ${lp} IS NULL THEN NULL::int8 END`;
  }
  if (op !== null && !offsetUsed) text += ` OFFSET least(${op}, 0)`;
  return text;
}
