/**
 * The differential test's data and queries: an unsharded table's schema and rows (NULLs, ties,
 * non-ASCII text, numeric edge values, an empty table, a table of two rows), the queries whose
 * merged answers must be Postgres's own, and the shapes that must be refused with 0A000.
 *
 * @module
 */

import type { SchemaView } from "../planner/mod.ts";

/** Rows of table `t`. */
const ROWS = 240;

export const VIEW: SchemaView = {
  hasTablegroupTables: true,
  table: (_schema, name) =>
    ["t", "few", "e", "items"].includes(name)
      ? { tablegroup: "tg", column: name === "items" ? "order_id" : "id", type: "int8" }
      : undefined,
  tablegroup: () => ({ shards: ["0-8", "8-inf"] }),
};

export const SCHEMA = `
create table t (id bigint primary key, grp int, customer text, total numeric, f float8,
  r real, flag bool, d date, name varchar(20), small int2, u uuid, ts timestamptz,
  code char(4), big bigint);
create table few (id bigint primary key, v text, n numeric);
create table e (id bigint primary key, v text, n numeric, f float8);
create table items (order_id bigint, qty int, price numeric);
`;

const CUSTOMERS = ["ann", "Bob", "bob", "ü", "é", "日本", "😀", "", "ann ", "zed", null, "Zoë"];
const TOTALS = [
  "0",
  "1.0",
  "1.00",
  "-5.50",
  "123456789.123456789",
  "99999999999999999999.99",
  "-0.000001",
  "42",
  "3.14159",
  "0.0000000001",
  null,
  "-1000000000000.5",
];

function lit(v: string | number | boolean | null): string {
  if (v === null) return "NULL";
  if (typeof v === "string") return `'${v.replaceAll("'", "''")}'`;
  return String(v);
}

/** Each table's rows, as SQL value lists keyed by sharding value. */
export function rows(): Record<string, { key: bigint; values: string }[]> {
  const t: { key: bigint; values: string }[] = [];
  for (let i = 1; i <= ROWS; i++) {
    const f = i === 5
      ? "'NaN'"
      : i === 6
      ? "'-0'"
      : i === 7
      ? "'Infinity'"
      : i % 13 === 0
      ? "NULL"
      : String((((i * 37) % 41) - 20) * 0.25);
    const values = [
      i,
      i % 11 === 0 ? "NULL" : i % 7,
      lit(CUSTOMERS[(i * 7) % CUSTOMERS.length]),
      TOTALS[i % TOTALS.length] === null ? "NULL" : `${TOTALS[i % TOTALS.length]}::numeric`,
      `${f}::float8`,
      `${(i % 9) * 0.5}::real`,
      i % 3 === 0 ? "true" : i % 3 === 1 ? "false" : "NULL",
      i % 17 === 0 ? "NULL" : `date '2020-01-01' + ${(i * 13) % 400}`,
      lit(`n${i % 5}`),
      (i % 5) - 2,
      `md5('${i}')::uuid`,
      `timestamptz '2021-01-01 00:00+00' + interval '${(i * 7) % 50} hours'`,
      lit(["ab", "ab  ", "b", "a"][i % 4]),
      i % 2 ? 9000000000000000000n - BigInt(i) : -BigInt(i) * 1000000000000n,
    ].join(", ");
    t.push({ key: BigInt(i), values: `${values}` });
  }
  const few = [
    { key: 1n, values: "1, 'one', 1.5" },
    { key: 2n, values: "2, 'two', 2.25" },
  ];
  const items: { key: bigint; values: string }[] = [];
  for (let i = 1; i <= 60; i++) {
    items.push({ key: BigInt(i % 30 + 1), values: `${i % 30 + 1}, ${i % 4}, ${(i % 7) * 1.5}` });
  }
  return { t, few, items };
}

// ---- queries ----

type Order = "set" | "exact" | { keys: number[] } | { keysOnly: number[] };

export interface Case {
  sql: string;
  /** Text parameters (extended protocol only; the simple form inlines them in `inline`). */
  params?: (string | null)[];
  /** How rows are compared; default "set" (no ORDER BY), "exact" for a total order. */
  order?: Order;
  /** Columns whose value is a list in unspecified order (string_agg with ', ', array_agg). */
  unordered?: number[];
  /** Ask binary results in the extended protocol. */
  binary?: boolean;
  /**
   * Text columns compared by value: a group or DISTINCT shows one of its equal values (1.0 or
   * 1.00, 0 or -0), whichever Postgres met first.
   */
  byValue?: number[];
}

export const MERGED: Case[] = [
  // ORDER BY and LIMIT/OFFSET
  { sql: "select id, customer from t order by id", order: "exact" },
  { sql: "select * from t order by id desc", order: "exact" },
  { sql: "select id, customer from t order by customer, id", order: "exact" },
  { sql: "select id, customer from t order by customer desc, id", order: "exact" },
  { sql: "select id, customer from t order by customer nulls first, id desc", order: "exact" },
  { sql: "select id, customer from t order by customer desc nulls last, id", order: "exact" },
  { sql: "select customer, id from t order by 1, 2 desc", order: "exact" },
  { sql: "select id, total from t order by total, id", order: "exact" },
  { sql: "select id, total from t order by total desc nulls last, id limit 17", order: "exact" },
  { sql: "select id, f from t order by f, id", order: "exact" },
  { sql: "select id, f from t order by f desc, id limit 9", order: "exact" },
  { sql: "select id, r, small from t order by small desc, r, id", order: "exact" },
  { sql: "select id, d from t order by d nulls first, id offset 200", order: "exact" },
  { sql: "select id, ts from t order by ts desc, id limit 30 offset 5", order: "exact" },
  { sql: "select id, u from t order by u limit 10", order: "exact" },
  { sql: "select id, flag from t order by flag, id", order: "exact" },
  { sql: "select id, name from t order by name, id desc limit 12", order: "exact" },
  { sql: "select id, code from t order by code, id", order: "exact" },
  { sql: "select id, big from t order by big limit 25", order: "exact" },
  { sql: "select id, customer as c from t order by c, id", order: "exact" },
  { sql: "select id from t order by customer, total, id", order: "exact" },
  { sql: "select id, total * 2 as double from t order by total * 2 desc, id", order: "exact" },
  { sql: "select id, lower(customer) from t order by lower(customer), id", order: "exact" },
  { sql: 'select id, customer from t order by customer collate "C", id', order: "exact" },
  { sql: "select id, grp from t order by grp", order: { keys: [1] } },
  { sql: "select id, grp from t order by grp desc nulls first", order: { keys: [1] } },
  { sql: "select id, grp from t order by grp limit 20", order: { keysOnly: [1] } },
  { sql: "select id from t limit 7", order: { keysOnly: [] } },
  { sql: "select id from t offset 235", order: { keysOnly: [] } },
  { sql: "select id from t order by id limit 0", order: "exact" },
  { sql: "select id from t order by id limit all offset 230", order: "exact" },
  { sql: "select id from t order by id limit null", order: "exact" },
  { sql: "select id from t order by id offset 1000", order: "exact" },
  { sql: "select id from t order by id fetch first 3 rows only", order: "exact" },
  { sql: "select id from t order by id offset 2 rows fetch next 4 rows only", order: "exact" },
  { sql: "select id from t order by id desc limit $1", params: ["6"], order: "exact" },
  { sql: "select id from t order by id limit $1 offset $2", params: ["5", "10"], order: "exact" },
  { sql: "select id from t order by id limit $1 offset $2", params: [null, "236"], order: "exact" },
  { sql: "select id from t order by id offset $1", params: ["238"], order: "exact" },
  {
    sql: "select id, customer from t where grp = $1 order by customer, id limit $2",
    params: ["3", "4"],
    order: "exact",
  },
  { sql: "select id from t where id < 0 order by id", order: "exact" },
  { sql: "select v from few order by v desc", order: "exact" },
  { sql: "select * from few order by n limit 1", order: "exact" },
  { sql: "select * from e order by id", order: "exact" },
  { sql: "select id, total from t order by total, id limit 5", order: "exact", binary: true },
  { sql: "select id, total from t order by total limit 5", order: { keysOnly: [1] }, binary: true },
  { sql: "select id, f, d from t order by id limit 5", order: "exact", binary: true },
  {
    sql: "select t.id, i.qty from t join items i on i.order_id = t.id order by t.id, i.qty",
    order: "exact",
  },
  { sql: "select count(*) from t; ", order: "exact" },
  { sql: "/* c */ select id from t order by id limit 2 -- tail", order: "exact" },
  {
    sql: 'select "id" as "Id", customer as "Kunde ü" from t order by "Id" desc limit 3',
    order: "exact",
  },
  { sql: "select id from t order by abs(id - $1), id limit 4", params: ["120"], order: "exact" },
  {
    sql: "select lower(customer), count(*) from t group by lower(customer) order by 1 nulls first",
    order: "exact",
  },
  {
    sql:
      "select id, customer from t where customer in ('😀', 'é', 'Zoë', '日本') order by customer desc, id",
    order: "exact",
  },
  {
    sql:
      "select case when grp > 3 then 'a' else 'b' end as k, count(*) from t group by 1 order by 1",
    order: "exact",
  },
  {
    sql: "select extract(year from d) as y, count(*) from t group by 1 order by y nulls first",
    order: "exact",
  },
  { sql: "select $$from order by$$ as a, id /* , x */ from t order by id limit 3", order: "exact" },
  { sql: "select E'it''s' as s, t.id from t order by t.id desc limit 2", order: "exact" },
  { sql: "select distinct on (customer) * from t order by customer, id", order: "exact" },
  { sql: "select t.* from t order by t.total desc nulls last, t.id limit 6", order: "exact" },
  {
    sql: "with g as (select 1 as one) select id, customer from t, g where grp = g.one order by id",
    order: "exact",
  },
  // several keys: the shards of those keys, merged alike
  {
    sql: "select id, customer from t where id in (1, 2, 3, 50, 77, 100) order by customer, id",
    order: "exact",
  },
  { sql: "select count(*), sum(total) from t where id = any('{4,5,6,200}'::bigint[])" },
  {
    sql: "select id from t where id in ($1, $2, $3) order by id desc",
    params: ["9", "3", "150"],
    order: "exact",
  },
  // aggregates without GROUP BY
  { sql: "select count(*) from t" },
  { sql: "select count(*) from e" },
  { sql: "select count(*), count(grp), count(customer) from t" },
  { sql: "select sum(grp), sum(small), sum(big) from t" },
  { sql: "select sum(total), min(total), max(total) from t" },
  { sql: "select avg(grp), avg(small), avg(big) from t" },
  { sql: "select avg(total) from t" },
  { sql: "select avg(total) from t where total > 0 and total < 1000" },
  { sql: "select sum(total), avg(total) from t where id % 12 in (3, 6)" },
  { sql: "select sum(f), avg(f), min(f), max(f) from t where id > 7" },
  { sql: "select sum(f), avg(f), min(f), max(f) from t" },
  { sql: "select sum(r), min(r), max(r) from t" },
  { sql: "select min(customer), max(customer) from t" },
  { sql: "select min(d), max(d), min(ts), max(ts) from t" },
  { sql: "select min(code), max(code), min(id), max(ts) from t" },
  { sql: "select min(name), max(name), min(small), max(big) from t" },
  { sql: "select bool_and(flag), bool_or(flag), every(flag) from t" },
  { sql: "select bool_and(flag), bool_or(flag) from t where flag" },
  { sql: "select count(*), sum(n), avg(n), min(id), max(v), sum(f), avg(f) from e" },
  { sql: "select count(*), avg(n) from few" },
  { sql: "select count(*) filter (where flag), sum(grp) filter (where id > 100) from t" },
  { sql: "select avg(total) filter (where grp = 2) as a from t" },
  { sql: "select count(distinct id) from t" },
  { sql: "select count(distinct t.id) from t where grp = 1" },
  { sql: "select 'x' as label, count(*) from t" },
  { sql: "select count(*), sum(total), avg(grp) from t", binary: true },
  { sql: "select avg(f), sum(f) from t where id > 7", binary: true },
  { sql: "select string_agg(customer, ', ') from t where id < 40", unordered: [0] },
  { sql: "select array_agg(id) from t where id < 40", unordered: [0] },
  { sql: "select string_agg(v, ', ') from few", unordered: [0] },
  { sql: "select count(*) from t where grp = $1", params: ["4"] },
  { sql: "select sum(total) from t where id > $1", params: ["100"] },
  { sql: "select count(*) from t limit 1" },
  { sql: "select count(*) from t limit $1", params: ["1"] },
  { sql: "select count(*) from t limit $1 offset $2", params: ["1", "0"] },
  { sql: "select count(*) from t offset 1" },
  { sql: "select count(*) from t having count(*) > 1000" },
  { sql: "select count(*) from t having count(*) > 10" },
  { sql: "select sum(qty), avg(price) from t join items on items.order_id = t.id" },
  // aggregates cast at the gateway, as Postgres casts them
  { sql: "select count(*)::int from t" },
  {
    sql:
      "select grp, count(*)::int as n, sum(total)::float8, avg(grp)::int, avg(total)::int8, max(total)::int from t where total < 1e9 group by grp order by 2 desc, 1",
    order: "exact",
  },
  { sql: "select avg(f)::numeric, sum(f)::numeric, sum(r)::numeric from t where id > 7" },
  {
    sql:
      "select sum(r)::text, avg(total)::text, count(*)::text, max(customer)::text, min(code)::text from t",
  },
  {
    sql: "select avg(grp)::numeric, sum(big)::float8, bool_or(flag)::text, min(small)::int8 from t",
  },
  { sql: "select count(*)::int, avg(total)::float8, sum(grp)::int2 from t", binary: true },
  // GROUP BY, HAVING
  { sql: "select grp, count(*) from t group by grp" },
  { sql: "select grp, count(*), sum(total), avg(total) from t group by grp" },
  { sql: "select customer, count(*) from t group by customer" },
  { sql: "select customer, count(*), min(id), max(id) from t group by 1" },
  { sql: "select total, count(*) from t group by total", byValue: [0] },
  { sql: "select f, count(*) from t group by f", byValue: [0] },
  { sql: "select code, count(*) from t group by code" },
  { sql: "select flag, avg(big), sum(big) from t group by flag" },
  { sql: "select d, count(*) from t group by d" },
  { sql: "select grp, name, count(*) from t group by grp, name" },
  { sql: "select grp, avg(f) from t where id > 7 group by grp" },
  { sql: "select grp, count(*) from t group by grp order by grp", order: "exact" },
  { sql: "select grp, count(*) from t group by grp order by count(*) desc, grp", order: "exact" },
  {
    sql: "select grp, count(*) as n from t group by grp order by n, grp nulls first",
    order: "exact",
  },
  {
    sql: "select grp, sum(total) from t group by grp order by 2 desc nulls last, 1",
    order: "exact",
  },
  {
    sql: "select customer, count(*) from t group by customer order by customer desc limit 4",
    order: "exact",
  },
  {
    sql: "select grp, count(*) from t group by grp order by grp limit 3 offset 2",
    order: "exact",
  },
  {
    sql: "select grp, count(*) from t group by grp order by grp limit $1 offset $2",
    params: ["2", "1"],
    order: "exact",
  },
  { sql: "select grp, count(*) from t group by grp having count(*) > 30" },
  { sql: "select grp, sum(total) from t group by grp having sum(total) < 0" },
  { sql: "select grp, avg(total) from t group by grp having avg(total) >= 100 or grp = 1" },
  { sql: "select grp, count(*) from t group by grp having not (count(*) < 30) and grp > 2" },
  { sql: "select grp, count(*) from t group by grp having max(customer) = 'zed'" },
  { sql: "select grp, count(*) from t group by grp having min(total) is null" },
  { sql: "select grp, count(*) from t group by grp having grp is not null" },
  {
    sql:
      "select customer, count(*) from t group by customer having customer like 'a%' and count(*) > 2",
  },
  { sql: "select grp, count(*) from t group by grp having count(*) between 30 and 40 and grp > 1" },
  { sql: "select grp from t group by grp having sum(f) > 0.5 and sum(small) <> 0" },
  { sql: "select grp, count(*) from t group by grp having count(*) > avg(grp)" },
  { sql: "select grp, count(*) from t group by grp having count(*) > $1", params: ["33"] },
  {
    sql: "select customer, max(total) from t group by 1 having max(total) > $1 order by 1",
    params: ["3.5"],
    order: "exact",
  },
  { sql: "select grp, bool_and(flag), bool_or(flag) from t group by grp" },
  { sql: "select grp, string_agg(name, ', ') from t group by grp", unordered: [1] },
  { sql: "select id % 3 as m, count(*) from t group by id % 3" },
  { sql: "select count(*) from t group by grp" },
  { sql: "select v, count(*) from few group by v" },
  { sql: "select v, count(*) from e group by v" },
  { sql: "select grp, count(distinct id) from t group by grp" },
  { sql: "select grp, sum(total), avg(total) from t group by grp", binary: true },
  {
    sql: "select t.grp, sum(i.qty) from t join items i on i.order_id = t.id group by t.grp",
  },
  { sql: "select customer, sum(total), avg(big) from t where customer > 'z' group by customer" },
  {
    sql: "select code, count(*), min(customer), max(customer) from t group by code order by code",
    order: "exact",
  },
  {
    sql: "select small, avg(small), sum(r) from t group by small order by small desc",
    order: "exact",
  },
  { sql: "select flag, count(*) from t group by flag order by flag nulls first", order: "exact" },
  {
    sql:
      "select d, count(*) from t where d is not null group by d order by count(*) desc, d limit 5",
    order: "exact",
  },
  {
    sql:
      "select grp, min(total), max(total), sum(total) from t group by grp having sum(total) is not null",
  },
  {
    sql: "select id, count(*) from t group by id having count(*) = 1 order by id limit 3",
    order: "exact",
  },
  {
    sql:
      "select customer, avg(total) from t group by customer order by avg(total) desc nulls last, customer",
    order: "exact",
  },
  {
    sql:
      "select t.customer, count(i.qty), sum(i.price) from t left join items i on i.order_id = t.id where t.id <= 40 group by t.customer",
  },
  { sql: "select ts, count(*) from t group by ts order by ts desc limit 4", order: "exact" },
  // DISTINCT and DISTINCT ON
  { sql: "select distinct grp from t" },
  { sql: "select distinct customer from t order by customer", order: "exact" },
  { sql: "select distinct total from t", byValue: [0] },
  { sql: "select distinct f from t", byValue: [0] },
  { sql: "select distinct code from t" },
  { sql: "select distinct grp, flag from t order by grp, flag", order: "exact" },
  { sql: "select distinct grp from t order by grp desc limit 3", order: "exact" },
  { sql: "select distinct name from t order by name limit 2 offset 1", order: "exact" },
  { sql: "select distinct on (grp) grp, id from t order by grp, id", order: "exact" },
  { sql: "select distinct on (grp) grp, id from t order by grp, id desc", order: "exact" },
  {
    sql: "select distinct on (customer) customer, id from t order by customer, id limit 5",
    order: "exact",
  },
  {
    sql: "select distinct on (1) grp, total from t order by 1, total desc, id",
    order: { keys: [0, 1] },
  },
  { sql: "select distinct v from few" },
  { sql: "select distinct v from e" },
  { sql: "select distinct lower(customer) as c from t order by c nulls first", order: "exact" },
  { sql: "select distinct on (code) code, customer, id from t order by code, id", order: "exact" },
  {
    sql: "select distinct d from t where d > '2020-06-01' order by d desc limit 3",
    order: "exact",
  },
];

export const REFUSED: string[] = [
  "select count(distinct customer) from t",
  "select sum(distinct grp) from t",
  "select sum(total) + 1 from t",
  "select count(*)::numeric(10, 2) from t",
  "select grp from t group by grp order by count(*)::text",
  "select grp, count(*)::text from t group by grp order by 2",
  "select stddev(total) from t",
  "select json_agg(id) from t",
  "select string_agg(customer, ', ' order by customer) from t",
  "select array_agg(id order by id) from t",
  "select percentile_cont(0.5) within group (order by total) from t",
  "select id, row_number() over () from t",
  'select id, customer from t order by customer collate "en-x-icu"',
  "select grp, count(*) from t group by rollup (grp)",
  "select grp, count(*) from t group by grp having sum(total) + 1 > 5",
  "select customer, count(*) from t group by customer having count(*) > 1 or customer like 'a%'",
  "select grp from t group by grp order by sum(total) + 1",
  "select distinct grp, count(*) from t group by grp",
  "select * from t order by id fetch first 3 rows with ties",
  "select id from t order by id limit 2 + 3",
  "select *, count(*) over () from t",
  "select grp, avg(total) from t group by grp having avg(total) > (select 1)",
  "select distinct * from t",
  "select string_agg(customer, name) from t",
  "select grp, array_agg(id) from t group by grp having array_agg(id) is not null",
];
