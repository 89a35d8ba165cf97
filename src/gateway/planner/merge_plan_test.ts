import assert from "node:assert/strict";
import { initPlanner, type MergeSpec, planQuery } from "./mod.ts";
import { VIEW } from "./_testing.ts";

await initPlanner();

function spec(sql: string): MergeSpec {
  const p = planQuery(sql, VIEW);
  assert.ok(
    (p.kind === "scatter" || p.kind === "keyed") && p.merge,
    `${sql} → ${JSON.stringify(p)}`,
  );
  return p.merge;
}

function refusedWith(sql: string, message: RegExp): void {
  const p = planQuery(sql, VIEW);
  assert.equal(p.kind, "refused", `${sql} → ${JSON.stringify(p)}`);
  if (p.kind === "refused") {
    assert.equal(p.sqlstate, "0A000");
    assert.match(p.message, message);
  }
}

Deno.test("planQuery() keeps the target list first and appends sort keys as hidden columns", () => {
  const s = spec("select id, x as y from orders order by y desc nulls last, 1 limit 5 offset 2");
  assert.equal(
    s.sql,
    "select id, x as y, x, id from orders order by y desc nulls last, 1   LIMIT 7",
  );
  assert.equal(s.visible, 2);
  assert.equal(s.hidden, 2);
  assert.deepEqual(s.sort, [
    { column: 0, descending: true, nullsFirst: false },
    { column: 1, descending: false, nullsFirst: false },
  ]);
  assert.deepEqual([s.limit, s.offset], [{ literal: "5" }, { literal: "2" }]);
});

Deno.test("planQuery() pushes LIMIT offset+limit with parameters, keeping both referenced", () => {
  const s = spec("select * from orders order by id limit $1 offset $2");
  assert.equal(s.visible, null, "SELECT *: known from the RowDescription");
  assert.match(s.sql, /LIMIT CASE WHEN \$1::int8 > 9223372036854775807 - greatest\(\$2::int8, 0\)/);
  assert.match(spec("select x from orders offset $1").sql, /OFFSET least\(\$1::int8, 0\)$/);
  // Grouped: nothing is pushed, the parameter stays referenced.
  assert.match(
    spec("select count(*) from orders limit $1").sql,
    /LIMIT CASE WHEN \$1::int8 IS NULL THEN NULL::int8 END$/,
  );
});

Deno.test("planQuery() asks shards for sum and count of avg(), and keeps HAVING there as a check", () => {
  const s = spec(
    "select x, avg(n) filter (where id > 3), count(*) from orders group by x having count(*) > 2 and x <> 'a' order by 3 desc",
  );
  assert.equal(
    s.sql,
    "select x, avg(n) filter (where id > 3), count(*), sum(n) filter (where id > 3), count(n) filter (where id > 3), count(*), x from orders group by x HAVING (x <> 'a') AND ((count(*) > 2) IS NULL OR TRUE) ",
  );
  assert.deepEqual(s.aggregates, [
    { fn: "avg", args: [0, 1], visible: 1 },
    { fn: "count", args: [2], visible: 2 },
  ]);
  assert.deepEqual(s.outputs, [null, 0, 1]);
  assert.deepEqual(s.groupKeys, [3]);
  assert.deepEqual(s.sort, [{ aggregate: 1, descending: true, nullsFirst: true }]);
  assert.deepEqual(s.having, {
    op: "cmp",
    cmp: ">",
    left: { aggregate: 1 },
    right: { constant: "2", kind: "number" },
  });
});

Deno.test("planQuery() merges DISTINCT and DISTINCT ON by hidden copies of their keys", () => {
  assert.deepEqual(spec("select distinct x, id from orders").distinct, [0, 1]);
  const on = spec("select distinct on (x) x, id from orders order by x, id desc");
  assert.equal(on.sql, "select distinct on (x) x, id, x, id from orders order by x, id desc");
  assert.deepEqual(on.distinct, [0]);
});

Deno.test("planQuery() allows count(DISTINCT) of the sharding column only", () => {
  assert.deepEqual(spec("select count(distinct id) from orders").aggregates[0].fn, "count");
  assert.deepEqual(spec("select count(distinct o.id) from orders o").aggregates[0].fn, "count");
  refusedWith("select count(distinct x) from orders", /count\(DISTINCT sharding column\)/);
});

Deno.test("planQuery() refuses merges it cannot make exactly", () => {
  refusedWith("select sum(x) + 1 from orders", /inside an expression/);
  refusedWith('select x from orders order by x collate "de_DE"', /COLLATE "de_DE"/);
  refusedWith("select string_agg(x, ',' order by x) from orders", /ORDER BY inside the call/);
  refusedWith("select x from orders order by x fetch first 2 rows with ties", /WITH TIES/);
  refusedWith("select x from orders limit 1 + 1", /LIMIT other than a constant or a parameter/);
  refusedWith("select x, count(*) from orders group by cube (x)", /GROUPING SETS/);
  refusedWith("select distinct * from orders", /DISTINCT \*/);
  refusedWith("explain select count(*) from orders", /EXPLAIN/);
  refusedWith("select x, count(*) from orders group by x having count(*) in (1, 2)", /HAVING/);
});
