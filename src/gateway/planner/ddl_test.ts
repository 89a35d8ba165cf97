import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import { equalRanges } from "../../shared/keyspace/mod.ts";
import { planNewSyntax } from "./ddl.ts";
import { initPlanner } from "./plan.ts";
import { EMPTY_VIEW, VIEW } from "./_testing.ts";
import type { Plan } from "./types.ts";

await initPlanner();

function plan(sql: string): Plan | undefined {
  return planNewSyntax(sql, VIEW);
}

/** Asserts that `sql` throws a PgError with this SQLSTATE, message and position. */
function throws(sql: string, sqlstate: string, message: string | RegExp, position?: number) {
  assert.throws(() => plan(sql), (e: unknown) => {
    assert.ok(e instanceof PgError, `not a PgError: ${e}`);
    assert.equal(e.sqlstate, sqlstate);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.equal(e.position, position);
    return true;
  });
}

Deno.test("planNewSyntax() leaves statements it does not own to the Postgres grammar", () => {
  for (
    const sql of [
      "select 1",
      "create table t (a int)",
      "create table t (a int) with (fillfactor = 50)",
      "create table t (a) as select 1 where 1 in (1)",
      "create table t (a int) partition by list (a)",
      "create table p1 partition of p for values in (1)",
      "create index on t (a)",
      "drop table t",
      "create table t (a int); select 1 where 1 in (1)",
      "",
    ]
  ) {
    assert.equal(plan(sql), undefined, sql);
  }
});

Deno.test("planNewSyntax() reads CREATE TABLEGROUP without SHARDS as one shard 0-inf", () => {
  assert.deepEqual(plan("create tablegroup tg1"), {
    kind: "create_tablegroup",
    name: "tg1",
    database: null,
    shards: ["0-inf"],
  });
});

Deno.test("planNewSyntax() folds unquoted names and keeps quoted ones", () => {
  assert.deepEqual(plan('CREATE TableGroup Orders_TG FOR "Shop" SHARDS 2;'), {
    kind: "create_tablegroup",
    name: "orders_tg",
    database: "Shop",
    shards: ["0-8", "8-inf"],
  });
  assert.deepEqual(plan('create tablegroup "My ""TG"""'), {
    kind: "create_tablegroup",
    name: 'My "TG"',
    database: null,
    shards: ["0-inf"],
  });
});

Deno.test("planNewSyntax() turns SHARDS n into n equal ranges", () => {
  for (const n of [1, 2, 3, 4, 16, 256]) {
    const p = plan(`create tablegroup t shards ${n}`);
    assert.deepEqual(p, {
      kind: "create_tablegroup",
      name: "t",
      database: null,
      shards: equalRanges(n),
    });
  }
  assert.deepEqual(plan("create tablegroup t shards 2")?.kind, "create_tablegroup");
});

Deno.test("planNewSyntax() accepts SHARDS and FOR in either order, with comments between", () => {
  assert.deepEqual(plan("create /* c */ tablegroup t shards 2 -- two\n for db1"), {
    kind: "create_tablegroup",
    name: "t",
    database: "db1",
    shards: ["0-8", "8-inf"],
  });
});

Deno.test("planNewSyntax() takes a list of ranges that tile the keyspace, canonically named", () => {
  assert.deepEqual(plan("create tablegroup t shards ('0-4', '4-8', '8-INF')"), {
    kind: "create_tablegroup",
    name: "t",
    database: null,
    shards: ["0-4", "4-8", "8-inf"],
  });
  assert.deepEqual(plan("create tablegroup t shards ('0-80','80-inf')")?.kind, "create_tablegroup");
});

Deno.test("planNewSyntax() refuses SHARDS n out of 1..256 with 22023 at the number", () => {
  const msg = "number of shards must be an integer between 1 and 256";
  throws("create tablegroup t shards 0", "22023", msg, 28);
  throws("create tablegroup t shards 257", "22023", msg, 28);
  throws("create tablegroup t shards 2.5", "22023", msg, 28);
});

Deno.test("planNewSyntax() refuses ranges that do not tile, with the keyspace's message", () => {
  throws(
    "create tablegroup t shards ('0-8', '9-inf')",
    "22023",
    "key ranges leave a gap between 8 and 9",
    28,
  );
  throws("create tablegroup t shards ('0-8', '4-inf')", "22023", /overlap/, 28);
  throws("create tablegroup t shards ('0-8', 'zz')", "22023", /invalid key range "zz"/, 36);
});

Deno.test("planNewSyntax() reports syntax errors at 1-based character positions", () => {
  throws("create tablegroup", "42601", "syntax error at end of input", 18);
  throws("create tablegroup;", "42601", 'syntax error at or near ";"', 18);
  throws("create tablegroup t shards", "42601", "syntax error at end of input", 27);
  throws("create tablegroup t shards ()", "42601", 'syntax error at or near ")"', 29);
  throws(
    "create tablegroup t shards ('0-8' '8-inf')",
    "42601",
    `syntax error at or near "'8-inf'"`,
    35,
  );
  throws("create tablegroup t sharts 2", "42601", 'syntax error at or near "sharts"', 21);
  throws("create tablegroup for", "42601", 'syntax error at or near "for"', 19);
  // Characters, not bytes or UTF-16 units: é is one, 😀 is one.
  throws("create tablegroup é😀 x", "42601", 'syntax error at or near "x"', 22);
  throws('create tablegroup ""', "42601", 'zero-length delimited identifier at or near """"', 19);
  throws("create tablegroup 'x", "42601", `unterminated quoted string at or near "'x"`, 19);
  throws("create tablegroup t /* x", "42601", 'unterminated /* comment at or near "/* x"', 21);
});

Deno.test("planNewSyntax() reads DROP TABLEGROUP [IF EXISTS] name [CASCADE | RESTRICT]", () => {
  assert.deepEqual(plan("drop tablegroup t"), {
    kind: "drop_tablegroup",
    name: "t",
    ifExists: false,
    cascade: false,
  });
  assert.deepEqual(plan("DROP TABLEGROUP IF EXISTS T CASCADE;"), {
    kind: "drop_tablegroup",
    name: "t",
    ifExists: true,
    cascade: true,
  });
  assert.deepEqual(plan("drop tablegroup t restrict")?.kind, "drop_tablegroup");
  throws("drop tablegroup t u", "42601", 'syntax error at or near "u"', 19);
  throws("drop tablegroup if exists", "42601", "syntax error at end of input", 26);
});

Deno.test("planNewSyntax() refuses the new DDL among other statements", () => {
  throws(
    "create tablegroup t; select 1",
    "25001",
    "CREATE TABLEGROUP cannot run inside a transaction block",
  );
  throws(
    "begin; drop tablegroup t",
    "25001",
    "DROP TABLEGROUP cannot run inside a transaction block",
  );
  throws(
    "create table t (id bigint primary key) in tg; commit",
    "0A000",
    "a query string with several statements may not touch tables of tablegroups yet",
  );
});

Deno.test("planNewSyntax() strips IN tg from CREATE TABLE and takes a single-column primary key", () => {
  assert.deepEqual(plan("create table t (id bigint primary key, v text) in tg;"), {
    kind: "create_table",
    tablegroup: "tg",
    table: { schema: "public", name: "t" },
    column: "id",
    type: "int8",
    sql: "create table t (id bigint primary key, v text)",
    ifNotExists: false,
  });
});

Deno.test("planNewSyntax() reads SHARD BY, schemas, IF NOT EXISTS and UNLOGGED", () => {
  assert.deepEqual(
    plan(
      "CREATE UNLOGGED TABLE IF NOT EXISTS S.T (ID int, Name varchar) IN tg SHARD BY (NAME)",
    ),
    {
      kind: "create_table",
      tablegroup: "tg",
      table: { schema: "s", name: "t" },
      column: "name",
      type: "text",
      sql: "CREATE UNLOGGED TABLE IF NOT EXISTS S.T (ID int, Name varchar)",
      ifNotExists: true,
    },
  );
});

Deno.test("planNewSyntax() finds the column list's end past quotes, comments and dollar quotes", () => {
  const sql = `create table "Odd(" (
  id bigint default $$a)b$$::text::bigint, -- ) in x
  "x)" text /* ) in y */, note text default 'it''s )'
) in tg shard by ("id") with (fillfactor = 70)`;
  assert.deepEqual(plan(sql), {
    kind: "create_table",
    tablegroup: "tg",
    table: { schema: "public", name: "Odd(" },
    column: "id",
    type: "int8",
    sql: sql.replace(` in tg shard by ("id")`, " "),
    ifNotExists: false,
  });
});

Deno.test("planNewSyntax() accepts IN after other table options", () => {
  const p = plan("create table t (id uuid primary key) with (fillfactor = 50) in tg");
  assert.equal(p?.kind, "create_table");
  assert.equal(
    (p as { sql: string }).sql,
    "create table t (id uuid primary key) with (fillfactor = 50)",
  );
  assert.equal((p as { type: string }).type, "uuid");
});

Deno.test("planNewSyntax() needs no sharding column in a one-shard tablegroup", () => {
  assert.deepEqual(plan("create table t (a int, b text unique) in flat"), {
    kind: "create_table",
    tablegroup: "flat",
    table: { schema: "public", name: "t" },
    column: null,
    type: null,
    sql: "create table t (a int, b text unique)",
    ifNotExists: false,
  });
  assert.equal(
    (plan("create table t (a int) in flat shard by (a)") as { column: null }).column,
    null,
  );
});

Deno.test("planNewSyntax() maps every supported column type", () => {
  const cases: [string, string][] = [
    ["smallint", "int2"],
    ["int2", "int2"],
    ["integer", "int4"],
    ["serial", "int4"],
    ["bigint", "int8"],
    ["bigserial", "int8"],
    ["numeric", "numeric"],
    ["decimal", "numeric"],
    ["text", "text"],
    ["character varying", "text"],
    ["uuid", "uuid"],
  ];
  for (const [sqlType, type] of cases) {
    const p = plan(`create table t (k ${sqlType} primary key) in tg`);
    assert.equal((p as { type: string }).type, type, sqlType);
  }
});

Deno.test("planNewSyntax() refuses a sharded table without a sharding column (42P16)", () => {
  const msg =
    'a table in sharded tablegroup "tg" needs a sharding column: add SHARD BY (column) or a single-column primary key';
  throws("create table t (a int, b int) in tg", "42P16", msg);
  throws("create table t (a int, b int, primary key (a, b)) in tg", "42P16", msg);
});

Deno.test("planNewSyntax() refuses a SHARD BY column that does not exist (42703)", () => {
  throws(
    "create table t (a int) in tg shard by (b)",
    "42703",
    'column "b" named in SHARD BY does not exist',
    40,
  );
});

Deno.test("planNewSyntax() refuses an unsupported sharding column type (0A000)", () => {
  throws(
    "create table t (a jsonb primary key) in tg",
    "0A000",
    /sharding column "a" has type jsonb/,
  );
  throws("create table t (a int[] primary key) in tg", "0A000", /has type integer\[\]/);
  throws("create table t (a char(3) primary key) in tg", "0A000", /has type character/);
  throws(
    "create table t (a float8, b int) in tg shard by (a)",
    "0A000",
    /has type double precision/,
  );
});

Deno.test("planNewSyntax() refuses unique constraints without the sharding column, at the constraint", () => {
  throws(
    "create table t (id bigint primary key, e text unique) in tg",
    "0A000",
    'unique constraint on table "t" of sharded tablegroup "tg" must include its sharding column "id"',
    47,
  );
  throws(
    "create table t (id int, b int, constraint t_pk primary key (b)) in tg shard by (id)",
    "0A000",
    'primary key "t_pk" on table "t" of sharded tablegroup "tg" must include its sharding column "id"',
    32,
  );
  throws(
    "create table t (id int, b int, constraint u unique (b)) in tg shard by (id)",
    "0A000",
    /^unique constraint "u" on table "t"/,
    32,
  );
  throws(
    "create table t (id int, b int, exclude using gist (b with =)) in tg shard by (id)",
    "0A000",
    /exclusion constraint on table "t" .* with operator =/,
    32,
  );
  // Including the sharding column is fine.
  assert.equal(
    plan("create table t (id int, b int, unique (b, id), primary key (id, b)) in tg shard by (id)")
      ?.kind,
    "create_table",
  );
});

Deno.test("planNewSyntax() keeps foreign keys within the tablegroup and on the sharding column", () => {
  assert.equal(
    plan("create table t (id bigint primary key references orders) in tg")?.kind,
    "create_table",
  );
  assert.equal(
    plan("create table t (id bigint primary key, foreign key (id) references orders (id)) in tg")
      ?.kind,
    "create_table",
  );
  throws(
    "create table t (id bigint primary key, o bigint references orders) in tg",
    "0A000",
    /^foreign key on table "t" of sharded tablegroup "tg" must include its sharding column "id"/,
    49,
  );
  throws(
    "create table t (id bigint primary key, foreign key (id) references items (x)) in tg",
    "0A000",
    /must reference the sharding column of table "items"/,
    40,
  );
  throws(
    "create table t (id bigint primary key references customers) in tg",
    "0A000",
    'table "t" of tablegroup "tg" may not refer to table "customers", which is not in tablegroup "tg"',
  );
  throws("create table t (like orders) in flat", "0A000", /may not refer to table "orders"/);
});

Deno.test("planNewSyntax() refuses temporary and partitioned tables in a tablegroup", () => {
  throws(
    "create temp table t (id int primary key) in tg",
    "0A000",
    'a temporary table cannot belong to tablegroup "tg"',
  );
  throws("create table pg_temp.t (id int primary key) in flat", "0A000", /temporary table/);
  throws(
    "create table t (id int primary key) partition by hash (id) in tg",
    "0A000",
    'a partitioned table cannot belong to tablegroup "tg" yet',
  );
});

Deno.test("planNewSyntax() refuses a tablegroup the layout does not know (42704)", () => {
  throws(
    "create table t (id int primary key) in nope",
    "42704",
    'tablegroup "nope" does not exist',
    40,
  );
  throws(
    'create table t (id int primary key) in "TG"',
    "42704",
    'tablegroup "TG" does not exist',
    40,
  );
});

Deno.test("planNewSyntax() reports errors of IN … SHARD BY and of the column list in the original text", () => {
  throws("create table t (a int) in", "42601", "syntax error at end of input", 26);
  throws("create table t (a int) in tg shard by a", "42601", 'syntax error at or near "a"', 39);
  throws("create table t (a int) in tg shard (a)", "42601", 'syntax error at or near "("', 36);
  throws(
    "create table t (a int) in tg shard by (a) junk",
    "42601",
    'syntax error at or near "junk"',
    43,
  );
  // From the Postgres grammar, on the text without the IN clause, mapped back.
  throws("create table t (é int, b int,) in tg", "42601", 'syntax error at or near ")"', 30);
  throws(
    "create table t (a int) in tg shard by (a) with (x = ) ",
    "42601",
    'syntax error at or near ")"',
    53,
  );
});

Deno.test("planNewSyntax() works where the layout has no tablegroup tables yet", () => {
  assert.equal(
    planNewSyntax("create table t (id int primary key) in empty_tg", EMPTY_VIEW)?.kind,
    "create_table",
  );
});

Deno.test("planNewSyntax() refuses a sharding column whose type has a modifier", () => {
  for (const t of ["numeric(10,2)", "varchar(20)", "character varying(3)"]) {
    assert.throws(
      () => plan(`create table t (k ${t} primary key) in tg`),
      (e: PgError) => e.sqlstate === "0A000" && /may not have a modifier/.test(e.message),
      t,
    );
  }
  // A modifier on another column is fine.
  assert.equal(
    plan("create table t (k bigint primary key, v numeric(4,1)) in tg")?.kind,
    "create_table",
  );
});
