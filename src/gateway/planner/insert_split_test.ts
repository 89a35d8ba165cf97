import assert from "node:assert/strict";
import { initPlanner, planQuery } from "./plan.ts";
import { VIEW } from "./_testing.ts";
import type { InsertSplit, KeyValue, Plan } from "./types.ts";

await initPlanner();

const lit = (literal: string | null): KeyValue => ({ literal });
const param = (n: number): KeyValue => ({ param: n });

/** The split of a keyed plan (asserts there is one). */
function splitOf(sql: string): InsertSplit {
  const p = planQuery(sql, VIEW);
  assert.equal(p.kind, "keyed", `${sql} → ${JSON.stringify(p)}`);
  const split = (p as Extract<Plan, { kind: "keyed" }>).split;
  assert.ok(split !== undefined, `${sql}: no split`);
  // Cut and joined again, the rows give back the statement (up to the separators).
  assert.equal(
    split.head + split.rows.map((r) => r.text).join(", ") + split.tail,
    sql.replace(/\)\s*,\s*\(/g, "), ("),
  );
  return split;
}

function refused(sql: string, message: RegExp) {
  const p = planQuery(sql, VIEW);
  assert.equal(p.kind, "refused", `${sql} → ${JSON.stringify(p)}`);
  if (p.kind === "refused") {
    assert.equal(p.sqlstate, "0A000");
    assert.match(p.message, message);
  }
}

Deno.test("planQuery() keeps a one-row INSERT's plan without a split", () => {
  assert.deepEqual(planQuery("insert into orders (id, x) values (5, 'a')", VIEW), {
    kind: "keyed",
    tablegroup: "tg",
    type: "int8",
    keys: [lit("5")],
    write: true,
  });
});

Deno.test("planQuery() keys an INSERT of several rows by every row and cuts it by row", () => {
  const sql = "insert into orders (id, x) values (1, 'a'), (2, 'b'), (1, 'c')";
  const p = planQuery(sql, VIEW);
  assert.deepEqual(p, {
    kind: "keyed",
    tablegroup: "tg",
    type: "int8",
    keys: [lit("1"), lit("2")],
    write: true,
    split: {
      head: "insert into orders (id, x) values ",
      rows: [
        { text: "(1, 'a')", key: lit("1") },
        { text: "(2, 'b')", key: lit("2") },
        { text: "(1, 'c')", key: lit("1") },
      ],
      tail: "",
      returning: false,
      maySkipRows: false,
    },
  });
});

Deno.test("planQuery() finds row boundaries past strings, quotes, dollar quotes and comments", () => {
  const s = splitOf(
    `insert into orders ("id", x) values (1, 'a), (b'), (2, E'it\\'s (, '), ` +
      `(3, $tag$ ), ( $tag$), (4 /* ), ( */, "x" || ')'), (5 -- ), (\n, f(g(1, (2)), 'c'))`,
  );
  assert.deepEqual(s.rows.map((r) => r.text), [
    "(1, 'a), (b')",
    "(2, E'it\\'s (, ')",
    "(3, $tag$ ), ( $tag$)",
    `(4 /* ), ( */, "x" || ')')`,
    "(5 -- ), (\n, f(g(1, (2)), 'c'))",
  ]);
  assert.deepEqual(s.rows.map((r) => r.key), ["1", "2", "3", "4", "5"].map(lit));
});

Deno.test("planQuery() keeps what follows the rows in the tail: ON CONFLICT, RETURNING, ;", () => {
  const upsert = splitOf(
    "insert into orders as o (id, x) values (1, 2), (3, 4) on conflict (id) do update set x = excluded.x + (1) returning id, (x);",
  );
  assert.equal(
    upsert.tail,
    " on conflict (id) do update set x = excluded.x + (1) returning id, (x);",
  );
  assert.equal(upsert.returning, true);
  assert.equal(upsert.maySkipRows, false);

  const nothing = splitOf("insert into orders (id) values (1),(2) on conflict do nothing");
  assert.deepEqual([nothing.returning, nothing.maySkipRows], [false, true]);
  const guarded = splitOf(
    "insert into orders (id) values (1), (2) on conflict (id) do update set x = 1 where o.x > 0 returning *",
  );
  assert.deepEqual([guarded.returning, guarded.maySkipRows], [true, true]);

  const commented = splitOf("/* (0), */ insert into orders (id) values\n(1) , (2) -- (3)");
  assert.equal(commented.head, "/* (0), */ insert into orders (id) values\n");
  assert.equal(commented.tail, " -- (3)");
});

Deno.test("planQuery() keys rows by parameters, casts and text values", () => {
  const s = splitOf("insert into orders (x, id) values ($1, $2), ($3, '7'::bigint), (0, null)");
  assert.deepEqual(s.rows.map((r) => r.key), [param(2), lit("7"), lit(null)]);
  const users = splitOf("insert into users (uid, n) values ('a,b', 1), ('(c)', 2)");
  assert.deepEqual(users.rows.map((r) => r.key), [lit("a,b"), lit("(c)")]);
  const p = planQuery("insert into orders (id) values ($1), ($2), ($1)", VIEW);
  assert.deepEqual(p.kind === "keyed" ? p.keys : p, [param(1), param(2)]);
});

Deno.test("planQuery() refuses an INSERT of several rows it cannot cut by row", () => {
  refused("insert into orders (id) values (1), (now())", /must be a constant or a parameter/);
  refused("insert into orders (id) values (1), (default)", /may not use DEFAULT/);
  refused("insert into orders (id) values (1), (2) limit 1", /ORDER BY, LIMIT, OFFSET or WITH/);
  refused("insert into orders (id) (values (1), (2))", /only supported as INSERT INTO t/);
  refused("explain insert into orders (id) values (1), (2)", /^EXPLAIN of an INSERT of several/);
});
