import assert from "node:assert/strict";
import { initPlanner, planQuery } from "./plan.ts";
import { EMPTY_VIEW, THROWING_VIEW, VIEW } from "./_testing.ts";
import type { KeyValue, Plan } from "./types.ts";

await initPlanner();

const plan = (sql: string): Plan => planQuery(sql, VIEW);

function keyed(keys: KeyValue[], write = false, type = "int8", tablegroup = "tg"): Plan {
  return { kind: "keyed", tablegroup, type, keys, write } as Plan;
}

const lit = (literal: string | null): KeyValue => ({ literal });
const param = (n: number): KeyValue => ({ param: n });
const scatter = (write = false, tablegroup = "tg"): Plan => ({
  kind: "scatter",
  tablegroup,
  write,
});
const DEFAULT: Plan = { kind: "default" };

/** Asserts a refusal with this SQLSTATE (0A000 unless given) and message. */
function refused(sql: string, message: string | RegExp, sqlstate = "0A000", position?: number) {
  const p = plan(sql);
  assert.equal(p.kind, "refused", `${sql} → ${JSON.stringify(p)}`);
  if (p.kind !== "refused") return;
  assert.equal(p.sqlstate, sqlstate, sql);
  if (typeof message === "string") assert.equal(p.message, message, sql);
  else assert.match(p.message, message, sql);
  assert.equal(p.position, position, sql);
}

// --- fast path, default, catalogs ---

Deno.test("planQuery() takes the fast path without parsing when no table is in a tablegroup", () => {
  for (
    const sql of [
      "select * from orders where id = 1",
      "  /* c */ -- c\n insert into t values (1)",
      "begin",
      "set search_path = x",
      "(select 1)",
      "",
      "selec oops",
    ]
  ) {
    assert.deepEqual(anyDefault(planQuery(sql, THROWING_VIEW)), DEFAULT, sql);
  }
});

Deno.test("planQuery() parses CREATE/DROP/ALTER even without tablegroup tables", () => {
  assert.equal(planQuery("create tablegroup t shards 2", EMPTY_VIEW).kind, "create_tablegroup");
  assert.equal(planQuery(" Drop TableGroup t", EMPTY_VIEW).kind, "drop_tablegroup");
  assert.deepEqual(planQuery("create database shop", EMPTY_VIEW), {
    kind: "database_ddl",
    op: "create",
    name: "shop",
  });
  assert.deepEqual(anyDefault(planQuery("alter table t add column x int", EMPTY_VIEW)), DEFAULT);
  assert.deepEqual(anyDefault(planQuery("create table t (a int)", EMPTY_VIEW)), DEFAULT);
});

Deno.test("planQuery() sends statements on default-tablegroup tables whole to the default shard", () => {
  for (
    const sql of [
      "select * from customers where id = 1",
      "insert into customers (id) values (1), (2)",
      "update customers set x = 1",
      "select count(*) from customers order by 1 limit 3",
      "select 1",
      "select now()",
      "create table t (a int)",
      "create table t (like customers)",
      "copy customers from stdin",
      "prepare p as select * from customers",
      "execute p",
      "deallocate p",
      "show search_path",
      "listen x",
      "do $$ begin perform 1; end $$",
    ]
  ) {
    assert.deepEqual(anyDefault(plan(sql)), DEFAULT, sql);
  }
});

Deno.test("planQuery() leaves DROP INDEX to the executor where tablegroup tables exist", () => {
  assert.deepEqual(plan("drop index if exists app.orders_pkey, idx2 cascade"), {
    kind: "drop_index",
    indexes: [{ schema: "app", name: "orders_pkey" }, { schema: "public", name: "idx2" }],
  });
  assert.deepEqual(planQuery("drop index idx", EMPTY_VIEW), DEFAULT);
});

/** A default plan without its touchesTables mark (tested on its own below). */
function anyDefault(p: Plan): Plan {
  return p.kind === "default" ? { kind: "default" } : p;
}

Deno.test("planQuery() marks default plans that name no table but catalogs", () => {
  for (const sql of ["select 1", "select now()", "show search_path", "select * from pg_class"]) {
    assert.deepEqual(plan(sql), { kind: "default", touchesTables: false }, sql);
  }
  for (const sql of ["select * from customers", "update customers set x = 1"]) {
    assert.deepEqual(plan(sql), DEFAULT, sql);
  }
});

Deno.test("planQuery() treats system catalogs as present on every shard", () => {
  assert.deepEqual(anyDefault(plan("select * from pg_class")), DEFAULT);
  assert.deepEqual(
    anyDefault(
      plan("select * from pg_catalog.pg_class c join information_schema.tables t on true"),
    ),
    DEFAULT,
  );
  assert.deepEqual(
    plan("select o.* from orders o join pg_class c on c.relname = 'orders' where o.id = 3"),
    keyed([lit("3")]),
  );
  assert.deepEqual(plan("select * from flat, pg_namespace"), scatter(false, "flat"));
});

Deno.test("planQuery() leaves what Postgres cannot parse to Postgres", () => {
  assert.deepEqual(anyDefault(plan("selec * from orders")), DEFAULT);
  assert.deepEqual(anyDefault(plan("select * from orders where")), DEFAULT);
  assert.deepEqual(anyDefault(plan("   ")), DEFAULT);
  assert.deepEqual(anyDefault(plan("-- nothing")), DEFAULT);
});

// --- keyed reads and writes ---

Deno.test("planQuery() routes SELECT … WHERE id = 5 to its key", () => {
  assert.deepEqual(plan("select * from orders where id = 5"), keyed([lit("5")]));
  assert.deepEqual(plan("SELECT * FROM Orders WHERE ID = 5"), keyed([lit("5")]));
  assert.deepEqual(plan("select * from orders where 5 = id"), keyed([lit("5")]));
  assert.deepEqual(plan("select * from orders where id = -5 and x > 3"), keyed([lit("-5")]));
  assert.deepEqual(plan("select * from orders where (x > 3 and (id = 5))"), keyed([lit("5")]));
  assert.deepEqual(
    plan("select * from orders where id operator(pg_catalog.=) 5"),
    keyed([lit("5")]),
  );
});

Deno.test("planQuery() routes a bound parameter $n to its key", () => {
  assert.deepEqual(plan("select * from orders where id = $1"), keyed([param(1)]));
  assert.deepEqual(
    plan("select * from orders where x = $1 and id = $2::bigint"),
    keyed([param(2)]),
  );
  assert.deepEqual(plan("delete from orders where id = $3"), keyed([param(3)], true));
});

Deno.test("planQuery() takes literal text as written: big ints, numerics, strings, casts, NULL", () => {
  assert.deepEqual(
    plan("select * from orders where id = 9223372036854775807"),
    keyed([lit("9223372036854775807")]),
  );
  assert.deepEqual(
    plan("select * from orders where id = -9223372036854775808"),
    keyed([lit("-9223372036854775808")]),
  );
  assert.deepEqual(plan("select * from orders where id = '5'"), keyed([lit("5")]));
  assert.deepEqual(plan("select * from orders where id = '5'::bigint"), keyed([lit("5")]));
  assert.deepEqual(plan("select * from orders where id = cast('5' as int8)"), keyed([lit("5")]));
  assert.deepEqual(plan("select * from orders where id = 5::int4"), keyed([lit("5")]));
  assert.deepEqual(plan("select * from orders where id = null"), keyed([lit(null)]));
  assert.deepEqual(
    plan("select * from amounts where n = 1.50"),
    keyed([lit("1.50")], false, "numeric"),
  );
  assert.deepEqual(plan("select * from amounts where n = 7"), keyed([lit("7")], false, "numeric"));
  assert.deepEqual(
    plan("select * from users where uid = 'ann'"),
    keyed([lit("ann")], false, "text"),
  );
  assert.deepEqual(
    plan("select * from users where uid = E'a\\'b'"),
    keyed([lit("a'b")], false, "text"),
  );
  assert.deepEqual(
    plan("select * from users where uid = 'x'::varchar"),
    keyed([lit("x")], false, "text"),
  );
  assert.deepEqual(
    plan("select * from accounts where aid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid"),
    keyed([lit("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")], false, "uuid"),
  );
  assert.deepEqual(plan("select * from small where k = 3"), keyed([lit("3")], false, "int2"));
});

Deno.test("planQuery() scatters when a constant's value is not its text in the column's type", () => {
  // 5.5::int rounds; 5.0 is numeric compared with an integer column; '5'::numeric is another hash.
  assert.deepEqual(plan("select * from orders where id = 5.5::int"), scatter());
  assert.deepEqual(plan("select * from orders where id = 5.0"), scatter());
  assert.deepEqual(plan("select * from orders where id = '5'::numeric"), scatter());
  assert.deepEqual(plan("select * from orders where id = 2 + 3"), scatter());
  assert.deepEqual(plan("select * from amounts where n = 1.05::numeric(3,1)"), scatter());
  assert.deepEqual(plan("select * from users where uid = 'abc'::varchar(2)"), scatter());
  assert.deepEqual(plan("select * from users where uid = 'abc' collate \"C\""), scatter());
  assert.deepEqual(plan("select * from orders where id::text = '5'"), scatter());
  assert.deepEqual(plan("select * from orders where id = 5 or x = 1"), scatter());
  assert.deepEqual(plan("select * from orders where id > 5"), scatter());
  assert.deepEqual(plan("select * from orders where id <> 5"), scatter());
  assert.deepEqual(plan("select * from orders where not id = 5"), scatter());
  assert.deepEqual(plan("select * from orders where id is null"), scatter());
});

Deno.test("planQuery() routes IN lists and = ANY arrays to several keys", () => {
  assert.deepEqual(
    plan("select * from orders where id in (1, 2, -3)"),
    keyed([lit("1"), lit("2"), lit("-3")]),
  );
  assert.deepEqual(
    plan("select * from orders where id in (1, 1, $1, $1)"),
    keyed([lit("1"), param(1)]),
  );
  assert.deepEqual(plan("select * from orders where id in (7)"), keyed([lit("7")]));
  assert.deepEqual(
    plan("select * from orders where id = any(array[1, 2])"),
    keyed([lit("1"), lit("2")]),
  );
  assert.deepEqual(
    plan("select * from orders where id = any('{1,2}')"),
    keyed([lit("1"), lit("2")]),
  );
  assert.deepEqual(
    plan("select * from orders where id = any('{3, NULL}'::bigint[])"),
    keyed([lit("3"), lit(null)]),
  );
  assert.deepEqual(
    plan(`select * from users where uid = any('{"a b","c\\\\d",e}')`),
    keyed([lit("a b"), lit("c\\d"), lit("e")], false, "text"),
  );
  assert.deepEqual(plan("select * from orders where id = any($1)"), scatter());
  assert.deepEqual(plan("select * from orders where id not in (1, 2)"), scatter());
  assert.deepEqual(plan("select * from orders where id in (1, x)"), scatter());
  assert.deepEqual(plan("select * from orders where id in (select 1)"), scatter());
});

Deno.test("planQuery() takes the smallest set of keys when several conjuncts pin the column", () => {
  assert.deepEqual(
    plan("select * from orders where id in (1, 2, 3) and id = 2"),
    keyed([lit("2")]),
  );
});

Deno.test("planQuery() resolves the sharding column by table name, alias or schema", () => {
  assert.deepEqual(plan("select * from orders where orders.id = 1"), keyed([lit("1")]));
  assert.deepEqual(plan("select * from orders o where o.id = 1"), keyed([lit("1")]));
  assert.deepEqual(
    plan("select * from public.orders where public.orders.id = 1"),
    keyed([lit("1")]),
  );
  assert.deepEqual(
    plan("select * from s.events e where e.id = 4"),
    keyed([lit("4")], false, "int4"),
  );
  assert.deepEqual(plan("select * from s.events where id = 4"), keyed([lit("4")], false, "int4"));
  // A column of another name, or an alias that does not match, is no key.
  assert.deepEqual(plan("select * from orders o where x.id = 1"), scatter());
  assert.deepEqual(plan("select * from orders where order_id = 1"), scatter());
  assert.deepEqual(anyDefault(plan("select * from events where id = 4")), DEFAULT);
});

Deno.test("planQuery() honours quoted identifiers", () => {
  assert.deepEqual(plan('select * from "Mixed" where "Key" = 1'), keyed([lit("1")]));
  assert.deepEqual(plan('select * from "Mixed" where key = 1'), scatter());
  assert.deepEqual(anyDefault(plan("select * from Mixed")), DEFAULT); // folds to mixed: not that table
  assert.deepEqual(anyDefault(plan('select * from "ORDERS"')), DEFAULT);
});

Deno.test("planQuery() routes one-row INSERT by its column list", () => {
  assert.deepEqual(plan("insert into orders (id, x) values (5, 'a')"), keyed([lit("5")], true));
  assert.deepEqual(plan("insert into orders (x, id) values ($1, $2)"), keyed([param(2)], true));
  assert.deepEqual(
    plan(
      "insert into orders (id, x) values (1, 2) on conflict (id) do update set x = excluded.x returning *",
    ),
    keyed([lit("1")], true),
  );
  assert.deepEqual(
    plan("insert into orders as o (id) values ('7'::bigint) on conflict do nothing"),
    keyed([lit("7")], true),
  );
  assert.deepEqual(plan("insert into users (uid) values ('u1')"), keyed([lit("u1")], true, "text"));
});

Deno.test("planQuery() routes INSERT … SELECT of constants (no FROM) to its key's shard", () => {
  assert.deepEqual(plan("insert into orders (id, x) select 5, 'a'"), keyed([lit("5")], true));
  assert.deepEqual(
    plan("insert into orders (x, id) select generate_series(1, 3), '7'::bigint"),
    keyed([lit("7")], true),
  );
  assert.deepEqual(
    plan("insert into users (uid, n) select 'u1', 2 where false"),
    keyed([lit("u1")], true, "text"),
  );
  assert.deepEqual(plan("insert into orders (id) select $1"), keyed([param(1)], true));
});

Deno.test("planQuery() refuses INSERTs into a sharded table it cannot route to one key", () => {
  refused(
    "insert into orders values (1, 2)",
    'INSERT into a table of sharded tablegroup "tg" must name its columns',
  );
  refused(
    "insert into orders (id) values (1), (2 + 1)",
    /must be a constant or a parameter/,
  );
  refused("insert into orders (id) select id from orders", /^INSERT … SELECT from tables/);
  refused(
    "insert into orders (id) select o.id from (select 1) x join orders o on true",
    /^INSERT … SELECT from tables/,
  );
  refused(
    "with w as (select 1) insert into orders (id) select * from w",
    /WITH clause before INSERT/,
  );
  refused("explain insert into orders (id) select 1 union all select 2", /^EXPLAIN of INSERT/);
  refused(
    "insert into orders (x) values (1)",
    'INSERT into table "orders" of sharded tablegroup "tg" must give a value for its sharding column "id"',
  );
  refused("insert into orders default values", /must give a value for its sharding column "id"/);
  refused(
    "insert into orders (id) values (default)",
    /may not use DEFAULT for its sharding column "id"/,
  );
  refused("insert into orders (id) values (nextval('s'))", /must be a constant or a parameter/);
  refused(
    "insert into orders (id) values (1) on conflict (id) do update set id = 2",
    /ON CONFLICT DO UPDATE may not change sharding column "id"/,
  );
});

Deno.test("planQuery() routes UPDATE and DELETE by their WHERE clause", () => {
  assert.deepEqual(
    plan("update orders set x = x + 1 where id = 9 returning *"),
    keyed([lit("9")], true),
  );
  assert.deepEqual(
    plan("delete from orders o where o.id in (1, 2)"),
    keyed([lit("1"), lit("2")], true),
  );
  assert.deepEqual(plan("update orders set x = 1"), scatter(true));
  assert.deepEqual(plan("delete from orders where x = 1"), scatter(true));
  refused(
    "update orders set id = 2 where id = 1",
    'UPDATE may not change sharding column "id" of table "orders" (its rows would move to another shard)',
  );
});

Deno.test("planQuery() routes UPDATE … FROM and DELETE … USING on co-located tables", () => {
  assert.deepEqual(
    plan("update orders o set x = i.x from items i where i.order_id = o.id and o.id = 3"),
    keyed([lit("3")], true),
  );
  assert.deepEqual(
    plan("delete from items using orders where items.order_id = orders.id"),
    scatter(true),
  );
  refused(
    "delete from items using orders where items.x = orders.x",
    /^a join of tables of sharded tablegroup "tg"/,
  );
});

Deno.test("planQuery() marks SELECT … FOR UPDATE/SHARE as a write", () => {
  assert.deepEqual(plan("select * from orders where id = 1 for update"), keyed([lit("1")], true));
  assert.deepEqual(plan("select * from orders o for share of o"), scatter(true));
});

// --- joins ---

Deno.test("planQuery() routes a join equating sharding columns to the key of either side", () => {
  const join = "select * from orders o join items i on i.order_id = o.id";
  assert.deepEqual(plan(`${join} where o.id = 4`), keyed([lit("4")]));
  assert.deepEqual(plan(`${join} where i.order_id = $1`), keyed([param(1)]));
  assert.deepEqual(plan(`${join} where o.id in (1, 2)`), keyed([lit("1"), lit("2")]));
  assert.deepEqual(plan(join), scatter());
  assert.deepEqual(
    plan("select * from orders o, items i where o.id = i.order_id and i.order_id = 2"),
    keyed([lit("2")]),
  );
  assert.deepEqual(
    plan("select * from orders o cross join items i where o.id = i.order_id"),
    scatter(),
  );
});

Deno.test("planQuery() routes tables pinned to the same single key without a join condition", () => {
  assert.deepEqual(
    plan("select * from orders o, items i where o.id = 7 and i.order_id = 7"),
    keyed([lit("7")]),
  );
  refused(
    "select * from orders o, items i where o.id = 7 and i.order_id = 8",
    'a join of tables of sharded tablegroup "tg" (o, i) must equate their sharding columns (e.g. a.id = b.id), or restrict each to the same single key value',
  );
  refused("select * from orders o, items i where o.id = 7", /^a join of tables/);
  refused("select * from orders o join items i on o.x = i.x", /^a join of tables/);
  refused("select * from orders a join orders b on a.x = b.id", /^a join of tables/);
  // int8 and text values of equal text hash differently: no co-location.
  refused("select * from orders o join users u on o.id = u.uid::bigint", /^a join of tables/);
});

Deno.test("planQuery() does not take a pin under an outer join's nullable side for the whole row", () => {
  const left = "select * from orders o left join items i on i.order_id = o.id";
  assert.deepEqual(plan(`${left} and i.order_id = 3`), scatter());
  assert.deepEqual(plan(`${left} where i.order_id = 3`), keyed([lit("3")]));
  assert.deepEqual(plan(`${left} where o.id = 3`), keyed([lit("3")]));
  assert.deepEqual(
    plan("select * from orders o full join items i on i.order_id = o.id where o.id = 3"),
    keyed([lit("3")]),
  );
  assert.deepEqual(
    plan("select * from orders o join items i on i.order_id = o.id and o.id = 3"),
    keyed([lit("3")]),
  );
});

Deno.test("planQuery() routes a self-join on the sharding column", () => {
  assert.deepEqual(
    plan("select * from orders a join orders b on a.id = b.id where b.id = 1"),
    keyed([lit("1")]),
  );
  assert.deepEqual(plan("select * from orders a join orders b on a.id = b.id"), scatter());
});

Deno.test("planQuery() equates the sharding columns of USING (col) joins", () => {
  assert.deepEqual(
    plan("select * from orders a join orders b using (id) where a.id = 2"),
    keyed([lit("2")]),
  );
  refused("select * from orders a join orders b using (x)", /^a join of tables/);
});

// --- subqueries, CTEs, set operations ---

Deno.test("planQuery() allows subqueries and CTEs pinned to the statement's one key", () => {
  assert.deepEqual(
    plan("select * from orders where id = 1 and x in (select x from items where order_id = 1)"),
    keyed([lit("1")]),
  );
  assert.deepEqual(
    plan("with o as (select * from orders where id = $1) select * from o"),
    keyed([param(1)]),
  );
  assert.deepEqual(plan("select * from (select * from orders where id = 2) s"), keyed([lit("2")]));
  assert.deepEqual(
    plan("select (select count(*) from items where order_id = 5) from orders where id = 5"),
    keyed([lit("5")]),
  );
  assert.deepEqual(
    plan("select * from orders where id = 1 union select * from orders where id = 1"),
    keyed([lit("1")]),
  );
});

Deno.test("planQuery() refuses subqueries and CTEs that would read other shards", () => {
  const msg =
    'a subquery or WITH query on a table of sharded tablegroup "tg" is only supported when every part of the statement is restricted to the same single sharding key value';
  refused("select * from orders where id = 1 and x in (select x from items)", msg);
  refused("select * from orders where x in (select x from orders)", msg);
  refused("with o as (select * from orders) select * from o", msg);
  refused("select * from (select * from orders) s", msg);
  refused(
    "select * from orders where id = 1 and x in (select x from items where order_id = 2)",
    msg,
  );
  refused("select (select max(id) from orders)", msg);
  refused(
    "select * from orders where id = 1 union select * from orders where id = 2",
    /^UNION on a table of sharded tablegroup "tg" needs merging across shards/,
  );
  refused("select * from orders intersect select * from orders", /^INTERSECT on a table/);
  refused("select * from orders except select * from orders where id = 1", /^EXCEPT on a table/);
});

Deno.test("planQuery() concatenates UNION ALL of parts that each read the tablegroup", () => {
  assert.deepEqual(
    plan("select * from orders where id = 1 union all select * from orders where id = 2"),
    keyed([lit("1"), lit("2")]),
  );
  assert.deepEqual(
    plan(
      "select id from orders union all select order_id from items union all select id from orders",
    ),
    scatter(),
  );
  // A part of constants would come from every shard; ORDER BY or LIMIT over it needs merging.
  refused("select id from orders union all select 1", /^UNION ALL on a table/);
  refused(
    "select id from orders union all select id from orders order by 1",
    /^UNION ALL on tables of sharded tablegroup "tg" with ORDER BY/,
  );
  refused(
    "select count(*) from orders union all select count(*) from items",
    /^UNION ALL on tables of sharded tablegroup "tg" with ORDER BY/,
  );
  refused(
    "select id from orders union all select id from orders where x in (select x from items)",
    /^UNION ALL on a table/,
  );
});

Deno.test("planQuery() tells CTE names from tables, honouring WITH scope", () => {
  assert.deepEqual(
    anyDefault(plan("with orders as (select 1 as id) select * from orders")),
    DEFAULT,
  );
  // A non-recursive CTE's own body names the real table.
  assert.deepEqual(
    plan("with orders as (select * from orders where id = 3) select * from orders"),
    keyed([lit("3")]),
  );
  // A CTE named in one statement level does not hide the table elsewhere.
  assert.deepEqual(
    plan("select * from orders, (with orders as (select 1) select * from orders) s"),
    scatter(),
  );
  // The target of a DML statement is always a table.
  assert.deepEqual(
    plan("with orders as (select 1) delete from orders where id = 4"),
    keyed([lit("4")], true),
  );
  assert.deepEqual(
    anyDefault(plan(
      "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select * from r",
    )),
    DEFAULT,
  );
});

Deno.test("planQuery() routes a data-modifying CTE and marks it a write", () => {
  assert.deepEqual(
    plan("with d as (delete from orders where id = 4 returning *) select * from d"),
    keyed([lit("4")], true),
  );
  assert.deepEqual(
    plan(
      "with i as (insert into items (order_id) values (4) returning *) select * from orders where id = 4",
    ),
    keyed([lit("4")], true),
  );
});

// --- merging shapes ---

Deno.test("planQuery() plans a merge for scattered statements whose answer needs one", () => {
  for (
    const sql of [
      "select * from orders order by x",
      "select * from orders limit 10",
      "select * from orders fetch first 3 rows only",
      "select * from orders offset 5",
      "select count(*) from orders",
      "select sum(x) from orders where x > 1",
      "select x from orders group by x",
      "select 1 from orders having true",
      "select distinct x from orders",
      "select distinct on (x) x, id from orders",
    ]
  ) {
    const p = plan(sql);
    assert.equal(p.kind, "scatter", sql);
    assert.ok(p.kind === "scatter" && p.merge !== undefined, sql);
    // Several keys: rows of several shards, merged the same way.
    if (!sql.includes("where")) {
      const multi = plan(sql.replace("from orders", "from orders where id in (1, 2) and true"));
      assert.ok(multi.kind === "keyed" && multi.merge !== undefined, `${sql} on two keys`);
    }
  }
});

Deno.test("planQuery() refuses what cannot be merged across shards exactly", () => {
  const cases: [string, string][] = [
    ["select my_agg(distinct x) from orders", "aggregate function my_agg()"],
    [
      "select percentile_cont(0.5) within group (order by x) from orders",
      "aggregate function percentile_cont()",
    ],
    ["select x, rank() over (order by x) from orders", "window function rank()"],
    ["select json_arrayagg(x) from orders", "aggregate function json_arrayagg()"],
  ];
  for (const [sql, shape] of cases) {
    refused(sql, `${shape} across shards is not supported`);
  }
});

Deno.test("planQuery() lets one shard answer ORDER BY, LIMIT and aggregates for one key", () => {
  for (
    const sql of [
      "select * from orders where id = 1 order by x limit 3 offset 1",
      "select count(*), max(x) from orders where id = 1 group by x having count(*) > 1",
      "select distinct x, row_number() over () from orders where id = 1",
      "select * from orders where id in (1, 1) order by x",
    ]
  ) {
    assert.deepEqual(plan(sql), keyed([lit("1")]), sql);
  }
  // Aggregates inside a subquery over catalogs do not need merging.
  assert.deepEqual(plan("select id, (select count(*) from pg_class) from orders"), scatter());
  assert.deepEqual(plan("select * from orders limit all"), scatter());
  assert.deepEqual(plan("select lower(x) from orders"), scatter());
});

Deno.test("planQuery() sends everything on an unsharded tablegroup to its one shard", () => {
  for (
    const sql of [
      "select * from flat",
      "select count(*) from flat f join notes n on true order by 1 limit 2",
      "select * from flat union select * from notes",
      "with x as (select * from flat) select * from x",
    ]
  ) {
    assert.deepEqual(plan(sql), scatter(false, "flat"), sql);
  }
  assert.deepEqual(plan("insert into flat values (1), (2)"), scatter(true, "flat"));
  assert.deepEqual(plan("update notes set a = 1"), scatter(true, "flat"));
  assert.deepEqual(plan("lock table flat"), scatter(true, "flat"));
  assert.deepEqual(
    plan("merge into flat f using notes n on f.a = n.a when matched then delete"),
    scatter(true, "flat"),
  );
});

// --- mixing ---

Deno.test("planQuery() refuses a statement mixing tablegroups, or a tablegroup and the default one", () => {
  refused(
    "select * from orders, customers",
    'a statement may not mix tables of tablegroup "tg" (orders) and of the default tablegroup (customers)',
  );
  refused(
    "select * from orders o join others x on o.id = x.id",
    'a statement may not mix tables of tablegroup "tg" (orders) and of tablegroup "other_tg" (others)',
  );
  refused(
    "select * from flat where a in (select id from orders)",
    /mix tables of tablegroup "flat" \(flat\) and of tablegroup "tg"/,
  );
  refused("insert into customers select * from orders", /of the default tablegroup \(customers\)/);
  refused("create view v as select * from orders", /of the default tablegroup \(v\)/);
  refused("create table c (like orders)", /of the default tablegroup \(c\)/);
  refused("select * into newt from orders", /of the default tablegroup \(newt\)/);
});

// --- DDL ---

Deno.test("planQuery() fans DDL on tablegroup tables out to every shard", () => {
  const fanout = (tablegroup = "tg"): Plan => ({ kind: "fanout_ddl", tablegroup, dropped: [] });
  for (
    const sql of [
      "alter table orders add column note text",
      "alter table orders alter column x set not null",
      "create index on orders (x)",
      "create index orders_x on public.orders using btree (x)",
      "truncate orders, items",
      "comment on table orders is 'o'",
      "comment on column orders.x is 'x'",
      "comment on column public.orders.x is 'x'",
      "analyze items",
      "analyze (verbose false) items",
      "grant select on orders to bob",
      "create trigger t before insert on orders for each row execute function f()",
      "drop trigger t on orders",
      "reindex table orders",
      "create table if not exists orders (id bigint primary key)",
    ]
  ) {
    assert.deepEqual(plan(sql), fanout(), sql);
  }
  assert.deepEqual(plan("alter table flat add column b int"), fanout("flat"));
  assert.deepEqual(plan("create unique index on flat (a)"), fanout("flat"));
  // Postgres refuses these in a transaction block: each shard runs them on its own.
  for (
    const sql of [
      "vacuum orders",
      "vacuum (analyze) items",
      "reindex (concurrently) table orders",
      "reindex table concurrently orders",
    ]
  ) {
    assert.deepEqual(plan(sql), { ...fanout(), outsideBlock: true }, sql);
  }
});

Deno.test("planQuery() lists the tables DROP TABLE removes", () => {
  assert.deepEqual(plan("drop table if exists orders, public.items, s.events cascade"), {
    kind: "fanout_ddl",
    tablegroup: "tg",
    dropped: [
      { schema: "public", name: "orders" },
      { schema: "public", name: "items" },
      { schema: "s", name: "events" },
    ],
  });
  assert.deepEqual(anyDefault(plan("drop table customers")), DEFAULT);
  refused("drop table orders, customers", /^a statement may not mix tables of tablegroup "tg"/);
  refused("drop table orders, flat", /and of tablegroup "flat"/);
});

Deno.test("planQuery() reports a table's new name for ALTER TABLE … RENAME TO / SET SCHEMA", () => {
  assert.deepEqual(plan("alter table orders rename to orders2"), {
    kind: "fanout_ddl",
    tablegroup: "tg",
    dropped: [],
    renamed: {
      from: { schema: "public", name: "orders" },
      to: { schema: "public", name: "orders2" },
    },
  });
  assert.deepEqual(plan("alter table s.events set schema t"), {
    kind: "fanout_ddl",
    tablegroup: "tg",
    dropped: [],
    renamed: { from: { schema: "s", name: "events" }, to: { schema: "t", name: "events" } },
  });
  assert.deepEqual(plan("alter table orders rename column x to y"), {
    kind: "fanout_ddl",
    tablegroup: "tg",
    dropped: [],
  });
});

Deno.test("planQuery() refuses DDL that would break sharding", () => {
  const col = 'ALTER TABLE may not drop, retype or rename sharding column "id" of table "orders"';
  refused("alter table orders drop column id", col);
  refused("alter table orders alter column id type numeric", col);
  refused("alter table orders rename column id to oid", col);
  refused(
    "alter table orders add constraint u unique (x)",
    /^unique constraint "u" on table "orders" of sharded tablegroup "tg" must include/,
  );
  refused("alter table orders add column e text unique", /^unique constraint on table "orders"/);
  refused("alter table orders add primary key (x)", /^primary key on table "orders"/);
  refused(
    "alter table items add foreign key (x) references orders (id)",
    /^foreign key on table "items"/,
  );
  assert.equal(
    plan("alter table items add foreign key (order_id) references orders (id)").kind,
    "fanout_ddl",
  );
  assert.equal(plan("alter table orders add unique (id, x)").kind, "fanout_ddl");
  refused(
    "create unique index u on orders (x)",
    'unique index "u" on table "orders" of sharded tablegroup "tg" must include its sharding column "id"',
  );
  assert.equal(plan("create unique index u on orders (x, id)").kind, "fanout_ddl");
  refused(
    "create index concurrently on orders (x)",
    'CREATE INDEX CONCURRENTLY on tables of tablegroup "tg" is not supported yet',
  );
  refused(
    "alter table orders attach partition customers for values in (1)",
    /of the default tablegroup \(customers\)/,
  );
});

Deno.test("planQuery() leaves ALTER INDEX to the default shard (its table is unknown from the text)", () => {
  assert.deepEqual(anyDefault(plan("alter index orders_x rename to y")), DEFAULT);
});

Deno.test("planQuery() plans CREATE TABLE … IN and CREATE/DROP TABLEGROUP", () => {
  assert.deepEqual(plan("create table t (id bigint primary key) in tg"), {
    kind: "create_table",
    tablegroup: "tg",
    table: { schema: "public", name: "t" },
    column: "id",
    type: "int8",
    sql: "create table t (id bigint primary key)",
    ifNotExists: false,
  });
  assert.equal(plan("create tablegroup x shards 2").kind, "create_tablegroup");
  assert.equal(plan("drop tablegroup x").kind, "drop_tablegroup");
  refused("create table t (a int) in tg", /needs a sharding column/, "42P16");
  refused("create tablegroup x shards 1000", /between 1 and 256/, "22023", 28);
  refused(
    "create table t (a int) in tg shard by (a) x",
    'syntax error at or near "x"',
    "42601",
    43,
  );
});

// --- statements that are refused or routed by kind ---

Deno.test("planQuery() refuses PREPARE, cursors and LOCK on tablegroup tables", () => {
  refused(
    "prepare p as select * from orders where id = $1",
    /^PREPARE of a statement on tables of tablegroup "tg" is not supported: use the extended query protocol/,
  );
  refused(
    "declare c cursor for select * from orders",
    'cursors on tables of tablegroup "tg" are not supported yet',
  );
  refused("lock table orders", 'LOCK on tables of sharded tablegroup "tg" is not supported yet');
  refused(
    "merge into orders o using items i on o.id = i.order_id when matched then delete",
    'MERGE on a table of sharded tablegroup "tg" is not supported yet',
  );
});

Deno.test("planQuery() plans EXPLAIN as its statement, a write only with ANALYZE", () => {
  assert.deepEqual(plan("explain select * from orders where id = 1"), keyed([lit("1")]));
  assert.deepEqual(plan("explain update orders set x = 1 where id = 1"), keyed([lit("1")], false));
  assert.deepEqual(plan("explain (analyze) update orders set x = 1"), scatter(true));
  assert.deepEqual(plan("explain (analyze false) update orders set x = 1"), scatter(false));
  assert.deepEqual(anyDefault(plan("explain select 1")), DEFAULT);
});

Deno.test("planQuery() plans transaction control with its op", () => {
  const cases: [string, string][] = [
    ["begin", "begin"],
    ["BEGIN ISOLATION LEVEL SERIALIZABLE", "begin"],
    ["start transaction read only", "begin"],
    ["commit", "commit"],
    ["end", "commit"],
    ["rollback", "rollback"],
    ["abort", "rollback"],
    ["savepoint s1", "savepoint"],
    ["release savepoint s1", "release"],
    ["rollback to savepoint s1", "rollback_to"],
    ["prepare transaction 'g1'", "prepare"],
    ["commit prepared 'g1'", "commit_prepared"],
    ["rollback prepared 'g1'", "rollback_prepared"],
  ];
  for (const [sql, op] of cases) assert.deepEqual(plan(sql), { kind: "transaction", op }, sql);
});

Deno.test("planQuery() plans SET, SET LOCAL, RESET and DISCARD as session settings", () => {
  for (
    const sql of [
      "set search_path = a, b",
      "set local statement_timeout = 5",
      "reset all",
      "reset work_mem",
      "discard all",
      "set session characteristics as transaction isolation level serializable",
      "set transaction read only",
      "set role bob",
    ]
  ) {
    assert.deepEqual(plan(sql), { kind: "session_setting" }, sql);
  }
});

Deno.test("planQuery() plans CREATE/DROP/ALTER DATABASE … RENAME when alone", () => {
  assert.deepEqual(plan("create database shop"), {
    kind: "database_ddl",
    op: "create",
    name: "shop",
  });
  assert.deepEqual(plan('DROP DATABASE "Shop"'), {
    kind: "database_ddl",
    op: "drop",
    name: "Shop",
  });
  assert.deepEqual(plan("drop database if exists shop with (force)"), {
    kind: "database_ddl",
    op: "drop",
    name: "shop",
    ifExists: true,
  });
  assert.deepEqual(plan("alter database shop rename to store"), {
    kind: "database_ddl",
    op: "rename",
    name: "shop",
    newName: "store",
  });
  assert.deepEqual(anyDefault(plan("alter database shop set work_mem = '1MB'")), DEFAULT);
  assert.deepEqual(anyDefault(plan("alter database shop owner to bob")), DEFAULT);
  assert.deepEqual(anyDefault(plan("select 1; create database shop")), DEFAULT);
});

// --- several statements ---

Deno.test("planQuery() plans a query string of several statements", () => {
  assert.deepEqual(anyDefault(plan("select 1; select * from customers")), DEFAULT);
  assert.deepEqual(anyDefault(plan("begin; set x = 1; select 2; commit")), DEFAULT);
  assert.deepEqual(anyDefault(plan("select 1;")), DEFAULT);
  assert.deepEqual(plan("select * from orders where id = 1;"), keyed([lit("1")]));
  const msg = "a query string with several statements may not touch tables of tablegroups yet";
  refused("begin; select * from orders where id = 1; commit", msg);
  refused("select * from flat; select 1", msg);
  refused("select 1; select * from orders order by x", msg);
  refused(
    "select 1; create tablegroup x",
    "CREATE TABLEGROUP cannot run inside a transaction block",
    "25001",
  );
  refused("select 1; create table t (id int primary key) in tg", msg);
});

Deno.test("planQuery() plans a Parse message's statement like a query", () => {
  assert.deepEqual(
    plan("insert into orders (id, x) values ($1, $2) returning id"),
    keyed([param(1)], true),
  );
  assert.deepEqual(plan("update orders set x = $2 where id = $1"), keyed([param(1)], true));
  assert.deepEqual(
    plan("select * from users where uid = $1::text"),
    keyed([param(1)], false, "text"),
  );
});

Deno.test("planQuery() throws only when called before initPlanner() resolved", () => {
  // It did resolve here; what the client sends never throws.
  for (const sql of ["select", "create tablegroup", "\0", "select $$", "select 'x", "select /*"]) {
    assert.doesNotThrow(() => plan(sql), sql);
  }
});

Deno.test("planQuery() reads INSERT … SELECT from a constant source first, cut around its SELECT", () => {
  const source = (sql: string) => {
    const p = plan(sql);
    assert.equal(p.kind, "keyed", JSON.stringify(p));
    const s = (p as Extract<Plan, { kind: "keyed" }>).source;
    assert.ok(s !== undefined, `${sql}: no source`);
    assert.equal(s.head + s.select + s.tail, sql);
    assert.deepEqual((p as Extract<Plan, { kind: "keyed" }>).keys, []);
    return s;
  };
  const gs = source("insert into orders (id, x) select g, 'a' from generate_series(1, 10) g");
  assert.equal(gs.select, "select g, 'a' from generate_series(1, 10) g");
  assert.deepEqual([gs.column, gs.columnName, gs.untyped, gs.offset], [0, "id", [false, true], 27]);
  const values = source(
    "insert into public.orders AS o (x, id) overriding system value select n, null from " +
      "(values (1)) v(n) on conflict (id) do nothing;",
  );
  assert.equal(values.select, "select n, null from (values (1)) v(n)");
  assert.equal(values.tail, " on conflict (id) do nothing;");
  assert.deepEqual([values.column, values.untyped, values.maySkipRows], [1, [false, true], true]);
  const union = source(
    "insert into orders (id) select 1 union all select 2 returning id as returning",
  );
  assert.equal(union.select, "select 1 union all select 2");
  assert.deepEqual([union.untyped, union.returning], [[], true]);
  // A key that is not a constant, without FROM: computed first too.
  assert.equal(
    source("insert into orders (id, x) select now()::int, 1").select,
    "select now()::int, 1",
  );
  // Offsets count characters, as Postgres's error positions do.
  assert.equal(
    source("insert into orders (id) /* é */ select g from generate_series(1, 2) g").offset,
    32,
  );
  // DISTINCT, or ordering or grouping by its place, makes Postgres read a literal as text.
  assert.deepEqual(
    source("insert into orders (id, x) select distinct g, 'a' from generate_series(1, 3) g")
      .untyped,
    [],
  );
  assert.deepEqual(
    source("insert into orders (id, x) select g, 'a' from generate_series(1, 3) g order by 2")
      .untyped,
    [false, false],
  );
  assert.deepEqual(
    source("insert into orders (id, x) select g, 'a' from generate_series(1, 3) g order by 1")
      .untyped,
    [false, true],
  );
  assert.deepEqual(
    source("insert into orders (id, x) select g, '{}' as j from generate_series(1, 2) g order by j")
      .untyped,
    [false, false],
  );
  // What follows a * is at unknown places: typed.
  assert.deepEqual(
    source("insert into orders (id, x) select *, 'z' from generate_series(1, 3)").untyped,
    [],
  );
});
