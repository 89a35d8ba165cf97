import assert from "node:assert/strict";
import { FrontendCode, WireWriter, writeQuery } from "../../shared/wire/mod.ts";
import {
  mentionsPidFunctions,
  rewritePidFrames,
  rewritePidFunctions,
  signalledPids,
} from "./pid_functions.ts";

const MAP = new Map([[4194305, 1234], [4194306, 5678]]);
const VALUES = "(VALUES (0, 0), (4194305, 1234), (4194306, 5678))";
const PID = "(SELECT 4194305::pg_catalog.int4 AS pg_backend_pid)";

function toBackend(expr: string): string {
  return `(SELECT COALESCE(mg_m.b, mg_v.p) FROM (SELECT (${expr})::pg_catalog.int4 AS p) mg_v ` +
    `LEFT JOIN ${VALUES} mg_m(s, b) ON mg_m.s = mg_v.p)`;
}

Deno.test("rewritePidFunctions() leaves statements without the functions as they are", () => {
  const sql = "select backend_pid, pg_backend_pid_x() from t";
  assert.equal(rewritePidFunctions(sql, 4194305, MAP), sql);
  assert.equal(mentionsPidFunctions("SELECT 1"), false);
  assert.equal(mentionsPidFunctions("SELECT PG_BACKEND_PID ()"), true);
});

Deno.test("rewritePidFunctions() answers pg_backend_pid() with the session's pid", () => {
  assert.equal(rewritePidFunctions("select pg_backend_pid()", 4194305, MAP), `select ${PID}`);
  assert.equal(
    rewritePidFunctions("SELECT PG_CATALOG . Pg_Backend_Pid ( ) AS me;", 4194305, MAP),
    `SELECT ${PID} AS me;`,
  );
  // Another schema's function of that name is not Postgres's.
  const other = "select myschema.pg_backend_pid(), x.pg_catalog.pg_backend_pid()";
  assert.equal(rewritePidFunctions(other, 4194305, MAP), other);
});

Deno.test("rewritePidFunctions() leaves strings, quoted names and comments alone", () => {
  for (
    const sql of [
      "select 'pg_backend_pid()'",
      "select E'\\'pg_backend_pid()'",
      'select "pg_backend_pid"()',
      "select 1 -- pg_backend_pid()\n",
      "select /* pg_backend_pid() /* nested */ */ 1",
      "select $q$ pg_backend_pid() $q$",
      "select $$pg_backend_pid()$$",
    ]
  ) assert.equal(rewritePidFunctions(sql, 4194305, MAP), sql, sql);
  assert.equal(
    rewritePidFunctions("select $1::int, 'a''b', pg_backend_pid()", 4194305, MAP),
    `select $1::int, 'a''b', ${PID}`,
  );
});

Deno.test("rewritePidFunctions() maps the pid given to pg_terminate_backend and pg_cancel_backend", () => {
  assert.equal(
    rewritePidFunctions("select pg_terminate_backend($1, 100)", 4194305, MAP),
    `select pg_terminate_backend(${toBackend("$1")}, 100)`,
  );
  assert.equal(
    rewritePidFunctions("select pg_catalog.pg_cancel_backend(pid) from t", 4194305, MAP),
    `select pg_catalog.pg_cancel_backend(${toBackend("pid")}) from t`,
  );
  // Arguments are rewritten too.
  assert.equal(
    rewritePidFunctions("select pg_cancel_backend(pg_backend_pid())", 4194305, MAP),
    `select pg_cancel_backend(${toBackend(PID)})`,
  );
});

Deno.test("rewritePidFunctions() maps pg_isolation_test_session_is_blocked's pids", () => {
  const out = rewritePidFunctions(
    "SELECT pg_catalog.pg_isolation_test_session_is_blocked($1, '{4194305,4194306}')",
    4194305,
    MAP,
  );
  assert.equal(
    out,
    `SELECT pg_catalog.pg_isolation_test_session_is_blocked(${toBackend("$1")}, ` +
      `COALESCE((SELECT pg_catalog.array_agg(COALESCE(mg_m.b, mg_x.p)) FROM ` +
      `pg_catalog.unnest(('{4194305,4194306}')::pg_catalog.int4[]) mg_x(p) LEFT JOIN ${VALUES} ` +
      `mg_m(s, b) ON mg_m.s = mg_x.p), '{}'::pg_catalog.int4[]))`,
  );
});

Deno.test("rewritePidFunctions() answers pg_blocking_pids with session pids", () => {
  const out = rewritePidFunctions("select pg_blocking_pids(4194306)", 4194305, MAP);
  assert.match(out, /^select \(SELECT CASE WHEN mg_y\.a IS NULL/);
  assert.ok(out.includes(`END AS pg_blocking_pids FROM (SELECT pg_catalog.pg_blocking_pids(`));
  assert.ok(out.includes(toBackend("4194306")));
});

Deno.test("rewritePidFunctions() leaves calls it cannot read to Postgres", () => {
  for (
    const sql of [
      "select pg_backend_pid(",
      "select pg_backend_pid(1)",
      "select pg_blocking_pids()",
      "select pg_backend_pid() 'unterminated",
    ]
  ) {
    const out = rewritePidFunctions(sql, 4194305, MAP);
    if (sql.endsWith("unterminated")) assert.equal(out, `select ${PID} 'unterminated`);
    else assert.equal(out, sql, sql);
  }
});

Deno.test("signalledPids() finds the pids terminate and cancel are given as literals or parameters", () => {
  assert.deepEqual(
    signalledPids(
      "select pg_terminate_backend(4194305), pg_catalog.pg_cancel_backend( $2 ), " +
        "pg_cancel_backend(pid), pg_backend_pid(), 'pg_cancel_backend(7)'",
    ),
    [4194305, "$2"],
  );
  assert.deepEqual(signalledPids("select 1"), []);
});

Deno.test("rewritePidFunctions() makes multigres.session_backends a relation of the map", () => {
  const rel = `(SELECT mg_v.s AS session_pid, mg_v.b AS backend_pid FROM ${VALUES} mg_v(s, b) ` +
    `WHERE mg_v.s <> 0)`;
  assert.equal(
    rewritePidFunctions("select * from multigres.session_backends where true", 1, MAP),
    `select * from ${rel} AS session_backends where true`,
  );
  assert.equal(
    rewritePidFunctions("select * from MULTIGRES.Session_Backends s join x on true", 1, MAP),
    `select * from ${rel} s join x on true`,
  );
  const other = "select * from session_backends, public.session_backends";
  assert.equal(rewritePidFunctions(other, 1, MAP), other);
});

Deno.test("rewritePidFunctions() shows sessions' pids in pg_stat_activity and pg_locks", () => {
  const out = rewritePidFunctions(
    "select pg_locks.pid from pg_catalog.pg_locks where pid = 1; select * from pg_stat_activity a",
    4194305,
    MAP,
  );
  assert.match(
    out,
    /^select pg_locks\.pid from \(SELECT mg_a\.locktype, .*COALESCE\(mg_m0\.s, mg_a\.pid\) AS pid, .* FROM pg_catalog\.pg_locks mg_a LEFT JOIN \(VALUES .*\) mg_m0\(s, b\) ON mg_m0\.b = mg_a\.pid\) AS pg_locks where pid = 1; select \* from \(SELECT .*COALESCE\(mg_m1\.s, mg_a\.leader_pid\) AS leader_pid, .*\) a$/,
  );
  // Another schema's table, and a column qualifier alone, are not the view.
  const other = "select public.pg_locks.x, pg_locks.pid from public.pg_locks";
  assert.equal(rewritePidFunctions(other, 4194305, MAP), other);
});

Deno.test("rewritePidFunctions() keeps what a definition stores as written", () => {
  for (
    const sql of [
      "create view v as select pg_backend_pid(), * from pg_locks",
      "CREATE TRIGGER t AFTER INSERT ON x EXECUTE FUNCTION pg_backend_pid()",
      "alter table t alter column c set default pg_backend_pid()",
      "comment on function pg_backend_pid() is 'x'",
    ]
  ) assert.equal(rewritePidFunctions(sql, 4194305, MAP), sql, sql);
  // A definition runs to the end of the text (BEGIN ATOMIC bodies hold semicolons).
  for (
    const sql of [
      "create function f() returns int language sql begin atomic select 1; select pg_backend_pid(); end",
      "create view v as select 1; select pg_backend_pid()",
      "prepare p as select pg_terminate_backend($1)",
      "call p(pg_backend_pid())",
      "select pg_terminate_backend(pid => 5)",
      // A signal after the first statement could run once its target moved on.
      "select pg_sleep(1); select pg_terminate_backend(4194306)",
    ]
  ) assert.equal(rewritePidFunctions(sql, 4194305, MAP), sql, sql);
  assert.equal(
    rewritePidFunctions("select 1; select pg_backend_pid()", 4194305, MAP),
    `select 1; select ${PID}`,
  );
});

Deno.test("rewritePidFrames() rewrites Query and Parse frames; a named signal keeps its pids", () => {
  const w = new WireWriter();
  writeQuery(w, "select * from Multigres.Session_Backends");
  w.begin(FrontendCode.Parse).cstring("s").cstring("select pg_cancel_backend($1)").int16(0).end();
  w.begin(FrontendCode.Parse).cstring("").cstring("select pg_backend_pid()").int16(0).end();
  writeQuery(w, "select 1");
  const text = new TextDecoder().decode(rewritePidFrames(w.view(), 4194305, MAP));
  assert.ok(text.includes("AS session_backends"));
  assert.ok(text.includes("select pg_cancel_backend($1)"));
  assert.ok(text.includes(`select ${PID}`));
  assert.ok(text.includes("select 1"));
  const plain = new WireWriter();
  writeQuery(plain, "select 1");
  const frames = plain.view();
  assert.equal(rewritePidFrames(frames, 4194305, MAP), frames);
});
