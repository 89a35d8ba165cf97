import assert from "node:assert/strict";
import { shardingFunction, type ShardingType, shardingTypeOf } from "./mod.ts";

Deno.test("shardingTypeOf() maps Postgres type names as column definitions and format_type() write them", () => {
  const names: [string, ShardingType][] = [
    ["bigint", "int8"],
    ["int8", "int8"],
    ["BIGINT", "int8"],
    ["pg_catalog.int8", "int8"],
    ['"pg_catalog"."int8"', "int8"],
    ["bigserial", "int8"],
    ["integer", "int4"],
    ["int", "int4"],
    ["int4", "int4"],
    ["serial", "int4"],
    ["smallint", "int2"],
    ["int2", "int2"],
    ["numeric", "numeric"],
    ["decimal", "numeric"],
    ["numeric(10,2)", "numeric"],
    ["numeric(10, 2)", "numeric"],
    ["NUMERIC (5)", "numeric"],
    ["numeric(3,-2)", "numeric"],
    ["pg_catalog.numeric", "numeric"],
    ["text", "text"],
    ["varchar", "text"],
    ["character varying", "text"],
    ["character   varying(20)", "text"],
    ["varchar(20)", "text"],
    ["pg_catalog.varchar", "text"],
    ["uuid", "uuid"],
    ["  uuid  ", "uuid"],
  ];
  for (const [name, type] of names) assert.equal(shardingTypeOf(name), type, name);
});

Deno.test("shardingTypeOf() is undefined for types we do not shard by", () => {
  for (
    const name of [
      "",
      "char(3)",
      "character(3)",
      "bpchar",
      "name",
      "float8",
      "double precision",
      "bytea",
      "int8[]",
      "integer[]",
      "int8(3)",
      "text(5)",
      "timestamptz",
      "jsonb",
      '"INT8"',
      "public.int8",
      "numeric(",
      "constructor",
      "toString",
    ]
  ) {
    assert.equal(shardingTypeOf(name), undefined, name);
  }
});

Deno.test("shardingFunction() names Postgres's extended hash function", () => {
  assert.equal(shardingFunction("int2"), "hashint8extended");
  assert.equal(shardingFunction("int4"), "hashint8extended");
  assert.equal(shardingFunction("int8"), "hashint8extended");
  assert.equal(shardingFunction("numeric"), "hash_numeric_extended");
  assert.equal(shardingFunction("text"), "hashtextextended");
  assert.equal(shardingFunction("uuid"), "uuid_hash_extended");
});
