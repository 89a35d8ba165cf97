/**
 * The sharding column types we support, how Postgres's type names map onto them, which Postgres
 * hash function each uses, and the SQL that computes a keyspace id on a shard.
 *
 * @module
 */

/** Sharding column types we support. int2 and int4 hash as int8 does. */
export type ShardingType = "int2" | "int4" | "int8" | "numeric" | "text" | "uuid";

const TYPE_NAMES: Readonly<Record<string, ShardingType>> = {
  int8: "int8",
  bigint: "int8",
  bigserial: "int8",
  serial8: "int8",
  int4: "int4",
  int: "int4",
  integer: "int4",
  serial: "int4",
  serial4: "int4",
  int2: "int2",
  smallint: "int2",
  smallserial: "int2",
  serial2: "int2",
  numeric: "numeric",
  decimal: "numeric",
  text: "text",
  varchar: "text",
  "character varying": "text",
  uuid: "uuid",
};

/** Types whose name may carry a type modifier: `numeric(10,2)`, `varchar(20)`. */
const TAKES_TYPMOD: ReadonlySet<string> = new Set([
  "numeric",
  "decimal",
  "varchar",
  "character varying",
]);

const TYPMOD = /^(.*?)\s*\(\s*\d+\s*(?:,\s*-?\d+\s*)?\)$/;

/**
 * The ShardingType of a Postgres type name as a column definition or format_type() writes it
 * ("bigint", "int8", "integer", "int", "int4", "smallint", "int2", "numeric", "decimal",
 * "numeric(10,2)", "text", "varchar", "character varying", "varchar(20)", "uuid", also
 * "pg_catalog.int8" etc.); undefined when unsupported. varchar maps to "text".
 *
 * Also accepted: the serial pseudo-types of a column definition (`bigserial`, `serial`,
 * `smallserial`, `serial8/4/2`), any case, extra spaces, and quoted lower-case names
 * (`"pg_catalog"."int8"`). Arrays, `char(n)`/`bpchar` (whose hash ignores trailing spaces) and
 * other types are unsupported.
 */
export function shardingTypeOf(typeName: string): ShardingType | undefined {
  // A quoted identifier is case-sensitive: only lower-case quoted names can be ours.
  let name = typeName.trim().replace(/"([a-z0-9_ ]+)"/g, "$1");
  if (name.includes('"')) return undefined;
  name = name.toLowerCase().replace(/\s+/g, " ").replace(/^pg_catalog\s*\.\s*/, "");
  const typmod = TYPMOD.exec(name);
  if (typmod !== null) {
    if (!TAKES_TYPMOD.has(typmod[1])) return undefined;
    name = typmod[1];
  }
  return Object.hasOwn(TYPE_NAMES, name) ? TYPE_NAMES[name] : undefined;
}

/**
 * Postgres's extended hash function (seed 0) for the type: "hashint8extended",
 * "hash_numeric_extended", "hashtextextended", "uuid_hash_extended".
 */
export function shardingFunction(type: ShardingType): string {
  switch (type) {
    case "int2":
    case "int4":
    case "int8":
      return "hashint8extended";
    case "numeric":
      return "hash_numeric_extended";
    case "text":
      return "hashtextextended";
    case "uuid":
      return "uuid_hash_extended";
  }
  throw new Error(`unsupported sharding type "${type}"`);
}

/** What the value is cast to before hashing (text: bytewise, whatever the column's collation). */
function castTo(type: ShardingType): string {
  switch (type) {
    case "int2":
    case "int4":
    case "int8":
      return "int8";
    case "numeric":
      return "numeric";
    case "text":
      return 'text COLLATE "C"';
    case "uuid":
      return "uuid";
  }
  throw new Error(`unsupported sharding type "${type}"`);
}

/**
 * A SQL expression (text, 16 lowercase hex digits) for the keyspace id of `expr` (a column name
 * or expression), e.g. `lpad(to_hex(hashint8extended((id)::int8, 0)), 16, '0')`, so shards can
 * check placement in SQL. `expr` is inserted as given: it must be trusted SQL (a quoted
 * identifier, not user input). NULL in, NULL out.
 *
 * Text is hashed under `COLLATE "C"`: the bytes, as `keyspaceId` hashes them, even for
 * a column with a non-deterministic collation (whose own hash would differ).
 */
export function keyspaceIdSql(type: ShardingType, expr: string): string {
  return `lpad(to_hex(${shardingFunction(type)}((${expr})::${castTo(type)}, 0)), 16, '0')`;
}
