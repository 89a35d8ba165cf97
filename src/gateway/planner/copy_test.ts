import assert from "node:assert/strict";
import { initPlanner, planQuery } from "./plan.ts";
import { VIEW } from "./_testing.ts";
import type { CopyFormat, Plan } from "./types.ts";

await initPlanner();

const plan = (sql: string): Plan => planQuery(sql, VIEW);

const TEXT: CopyFormat = {
  format: "text",
  delimiter: "\t",
  null: "\\N",
  quote: '"',
  escape: '"',
  header: false,
  forceNotNull: false,
  forceNull: false,
};

function refused(sql: string, message: RegExp) {
  const p = plan(sql);
  assert.equal(p.kind, "refused", `${sql} → ${JSON.stringify(p)}`);
  if (p.kind !== "refused") return;
  assert.equal(p.sqlstate, "0A000", sql);
  assert.match(p.message, message, sql);
}

Deno.test("planQuery() plans COPY FROM STDIN into a sharded table with its key's place", () => {
  assert.deepEqual(plan("copy orders from stdin"), {
    kind: "copy_in",
    tablegroup: "tg",
    table: { schema: null, name: "orders" },
    column: "id",
    type: "int8",
    keyIndex: null,
    format: TEXT,
  });
  const p = plan("COPY s.events (note, id) FROM STDIN");
  assert.equal(p.kind, "copy_in");
  if (p.kind !== "copy_in") return;
  assert.deepEqual(p.table, { schema: "s", name: "events" });
  assert.equal(p.keyIndex, 1);
  assert.equal(p.type, "int4");
  // A one-shard tablegroup: every row to its shard, nothing to read.
  assert.deepEqual(plan("copy flat from stdin"), {
    kind: "copy_in",
    tablegroup: "flat",
    table: { schema: null, name: "flat" },
    column: null,
    type: null,
    keyIndex: null,
    format: TEXT,
  });
});

Deno.test("planQuery() reads COPY's options as Postgres does, with its defaults", () => {
  const format = (sql: string) => {
    const p = plan(sql);
    assert.equal(p.kind, "copy_in", sql);
    return p.kind === "copy_in" ? p.format : undefined;
  };
  assert.deepEqual(format("copy orders from stdin csv"), {
    ...TEXT,
    format: "csv",
    delimiter: ",",
    null: "",
  });
  assert.deepEqual(
    format(
      "copy orders (id, x) from stdin with (format csv, header match, delimiter ';', null 'NULL', quote '''', escape '\\\\', force_not_null (x, id), force_null (x))",
    ),
    {
      format: "csv",
      delimiter: ";",
      null: "NULL",
      quote: "'",
      escape: "\\\\",
      header: true,
      forceNotNull: true,
      forceNull: false,
    },
  );
  assert.deepEqual(format("copy orders from stdin with csv header quote '|'"), {
    ...TEXT,
    format: "csv",
    delimiter: ",",
    null: "",
    quote: "|",
    escape: "|",
    header: true,
  });
  assert.equal(format("copy orders from stdin (header off)")?.header, false);
  assert.equal(format("copy orders from stdin (header 0)")?.header, false);
  assert.equal(format("copy orders from stdin (header)")?.header, true);
  assert.equal(format("copy binary orders from stdin")?.format, "binary");
  assert.equal(format("copy orders from stdin (format 'BINARY')")?.format, "binary");
  // FORCE_NOT_NULL has no effect outside CSV (Postgres refuses it there).
  assert.equal(format("copy orders from stdin (force_not_null (id))")?.forceNotNull, false);
  assert.equal(format("copy orders from stdin (encoding 'UTF-8')")?.format, "text");
});

Deno.test("planQuery() plans COPY TO STDOUT on every shard or on its query's keys", () => {
  assert.deepEqual(plan("copy orders to stdout"), {
    kind: "copy_out",
    tablegroup: "tg",
    format: "text",
    header: false,
  });
  assert.deepEqual(
    plan("copy (select id, x from orders where x > 1) to stdout (format csv, header)"),
    {
      kind: "copy_out",
      tablegroup: "tg",
      format: "csv",
      header: true,
    },
  );
  assert.deepEqual(plan("copy (select * from orders where id in (1, 2)) to stdout binary"), {
    kind: "copy_out",
    tablegroup: "tg",
    keyed: { type: "int8", keys: [{ literal: "1" }, { literal: "2" }] },
    format: "binary",
    header: false,
  });
  assert.deepEqual(plan("copy (select 1) to stdout"), { kind: "default", touchesTables: false });
  assert.deepEqual(plan("copy customers to stdout"), { kind: "default" });
});

Deno.test("planQuery() merges COPY (query) TO whose query needs it, as a SELECT", () => {
  const p = planQuery(
    "copy ( select x, count(*) from orders group by x order by x ) to stdout (format csv, header)",
    VIEW,
  );
  assert.equal(p.kind, "copy_out", JSON.stringify(p));
  const merged = (p as Extract<Plan, { kind: "copy_out" }>).merged;
  assert.ok(merged);
  assert.equal(merged.sql, " select x, count(*) from orders group by x order by x ");
  assert.equal(merged.plan.kind, "scatter");
  assert.ok(merged.plan.merge);
  assert.deepEqual([merged.layout.format, merged.layout.header], ["csv", true]);
});

Deno.test("planQuery() refuses the COPY shapes it cannot answer exactly", () => {
  refused("copy orders from '/tmp/x'", /file or program/);
  refused("copy orders to program 'cat'", /file or program/);
  refused("copy orders (x) from stdin", /must give a value for its sharding column "id"/);
  refused("copy orders from stdin (encoding 'LATIN1')", /ENCODING LATIN1/);
  refused(
    "copy (select * from orders order by id) to stdout (format binary)",
    /only supported in text or CSV format/,
  );
  refused("copy (select count(*) from orders) to stdout (force_quote *)", /FORCE_QUOTE/);
  refused("copy (select x, rank() over () from orders) to stdout", /window/);
  refused("copy (delete from orders returning *) to stdout", /RETURNING\) TO STDOUT/);
  refused("copy (select * from orders, others) to stdout", /may not mix tables/);
  refused("copy orders from stdin; select 1", /several statements|statement/i);
});
