/**
 * Keyspace ids and key ranges for sharding (DESIGN.md "Sharding").
 *
 * A sharded table's sharding column maps each value to a 64-bit keyspace id with Postgres's own
 * extended hash function for the column's type, seed 0, read as unsigned
 * ({@linkcode keyspaceId}, {@linkcode keyspaceIdBinary}); shards compute the same id in SQL
 * ({@linkcode keyspaceIdSql}). A shard owns a key range `[start, end)` of ids, named by hex
 * prefixes (`0-8`, `8-inf`); the ranges of a tablegroup tile the keyspace exactly
 * ({@linkcode checkTiling}, {@linkcode equalRanges}). See README.md.
 *
 * ```ts
 * import { inRange, keyspaceId, parseKeyRange, shardingTypeOf } from "./mod.ts";
 *
 * const type = shardingTypeOf("bigint")!; // "int8"
 * const id = keyspaceId(type, "42"); // = hashint8extended(42, 0) as unsigned
 * const shard = ["0-8", "8-inf"].find((name) => inRange(parseKeyRange(name), id));
 * ```
 *
 * @module
 */

export {
  keyspaceIdSql,
  shardingFunction,
  type ShardingType,
  shardingTypeOf,
} from "./sharding_type.ts";
export { keyspaceId, keyspaceIdBinary } from "./keyspace_id.ts";
export {
  checkTiling,
  equalRanges,
  inRange,
  inRangeSql,
  type KeyRange,
  keyRangeName,
  parseKeyRange,
} from "./key_range.ts";
