import assert from "node:assert/strict";
import { keyspaceId } from "../../shared/keyspace/mod.ts";
import { ShardMap } from "./shard_map.ts";

const map = new ShardMap({
  name: "shop",
  tablegroups: [
    { name: "default", shards: [{ name: "0-inf" }] },
    { name: "tg", shards: [{ name: "0-4" }, { name: "4-8" }, { name: "8-inf" }] },
  ],
  tables: [
    {
      name: "public.orders",
      tablegroup: "tg",
      shardingColumn: "id",
      shardingType: "int8",
      shardingPosition: 1,
    },
    { name: "app.flat", tablegroup: "tg", shardingColumn: "", shardingType: "" },
  ],
}, 7);

Deno.test("ShardMap.table() finds tablegroup tables by schema, public when unqualified", () => {
  assert.deepEqual(map.table(null, "orders"), {
    tablegroup: "tg",
    column: "id",
    type: "int8",
    position: 1,
  });
  assert.equal(map.table("app", "orders"), undefined);
  assert.deepEqual(map.table("app", "flat"), { tablegroup: "tg", column: null, type: null });
  assert.equal(map.hasTablegroupTables, true);
  assert.equal(map.version, 7);
});

Deno.test("ShardMap.shardFor() picks the shard whose range holds the keyspace id", () => {
  assert.equal(map.shardFor("tg", 0n), "0-4");
  assert.equal(map.shardFor("tg", 0x3fffffffffffffffn), "0-4");
  assert.equal(map.shardFor("tg", 0x4000000000000000n), "4-8");
  assert.equal(map.shardFor("tg", 0xffffffffffffffffn), "8-inf");
  assert.equal(map.shardFor("nope", 1n), undefined);
  // A value's shard is the one its Postgres hash falls in.
  const id = keyspaceId("int8", "42");
  const shard = map.shardFor("tg", id)!;
  const [lo, hi] = shard.split("-");
  assert.ok(id >= BigInt(`0x${lo.padEnd(16, "0")}`));
  if (hi !== "inf") assert.ok(id < BigInt(`0x${hi.padEnd(16, "0")}`));
});

Deno.test("ShardMap lists a tablegroup's tables and the non-default tablegroups", () => {
  assert.deepEqual(map.tablegroups, ["tg"]);
  assert.deepEqual(map.tablesOf("tg").map((t) => t.name), ["public.orders", "app.flat"]);
  assert.deepEqual(map.tablegroup("tg"), { shards: ["0-4", "4-8", "8-inf"] });
});
