import assert from "node:assert/strict";
import { selectLayout } from "./_clauses.ts";

function texts(sql: string) {
  const l = selectLayout(sql)!;
  const text = (s: { start: number; end: number }) => sql.slice(s.start, s.end);
  return {
    targets: l.targetItems.map(text),
    clauses: l.clauses.map((c) => [c.kind, text(c.body)]),
    end: sql.slice(0, l.end),
  };
}

Deno.test("selectLayout() finds the target list and clauses at the top level only", () => {
  const sql =
    "with w as (select 1 from x order by 1) select extract(year from d), (select max(a) from b) as m, " +
    "percentile_cont(0.5) within group (order by x) from t where a = ',' group by 1 " +
    "having count(*) > 1 order by 2 desc limit 3 offset 1; -- done";
  const t = texts(sql);
  assert.deepEqual(t.targets, [
    "extract(year from d)",
    "(select max(a) from b) as m",
    "percentile_cont(0.5) within group (order by x)",
  ]);
  assert.deepEqual(t.clauses, [
    ["from", "t"],
    ["where", "a = ','"],
    ["group", "1"],
    ["having", "count(*) > 1"],
    ["order", "2 desc"],
    ["limit", "3"],
    ["offset", "1"],
  ]);
  assert.ok(t.end.endsWith("offset 1"), "the statement ends before its semicolon and comment");
});

Deno.test("selectLayout() reads DISTINCT ON items and skips strings, comments, dollar quotes", () => {
  const sql = "select distinct on (a, lower(b)) a, $$from$$ /* from */, 'order by' from t";
  const l = selectLayout(sql)!;
  assert.deepEqual(l.distinctOn.map((s) => sql.slice(s.start, s.end)), ["a", "lower(b)"]);
  assert.deepEqual(l.targetItems.map((s) => sql.slice(s.start, s.end)), [
    "a",
    "$$from$$",
    "'order by'",
  ]);
  assert.deepEqual(l.clauses.map((c) => c.kind), ["from"]);
});
