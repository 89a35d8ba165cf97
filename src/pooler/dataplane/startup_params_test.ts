import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import { parseOptions, settingsSql, startupSettings } from "./startup_params.ts";

/** Asserts that `fn` throws a FATAL PgError with this SQLSTATE and message. */
function assertFatal(fn: () => unknown, sqlstate: string, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PgError, `not a PgError: ${e}`);
    assert.equal(e.sqlstate, sqlstate);
    assert.equal(e.severity, "FATAL");
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("parseOptions() reads -c name=value", () => {
  assert.deepEqual(parseOptions("-c search_path=app"), [["search_path", "app"]]);
});

Deno.test("parseOptions() reads -cname=value with no space after -c", () => {
  assert.deepEqual(parseOptions("-cwork_mem=64MB"), [["work_mem", "64MB"]]);
});

Deno.test("parseOptions() reads --name=value and turns dashes in the name into underscores", () => {
  assert.deepEqual(parseOptions("--statement-timeout=5s"), [["statement_timeout", "5s"]]);
  assert.deepEqual(parseOptions("-c lock-timeout=1-2"), [["lock_timeout", "1-2"]]);
  assert.deepEqual(parseOptions("--idle-in-transaction-session-timeout=0"), [
    ["idle_in_transaction_session_timeout", "0"],
  ]);
});

Deno.test("parseOptions() reads several settings separated by any whitespace", () => {
  assert.deepEqual(parseOptions("  -c a=1 \t-cb=2\n--c-d=3  "), [["a", "1"], ["b", "2"], [
    "c_d",
    "3",
  ]]);
  assert.deepEqual(parseOptions(""), []);
  assert.deepEqual(parseOptions("   "), []);
});

Deno.test("parseOptions() keeps backslash-escaped spaces inside a value", () => {
  assert.deepEqual(parseOptions("-c search_path=a\\ b,c -c x=1"), [
    ["search_path", "a b,c"],
    ["x", "1"],
  ]);
  assert.deepEqual(parseOptions("-c application_name=back\\\\slash"), [
    ["application_name", "back\\slash"],
  ]);
});

Deno.test("parseOptions() keeps an empty value and an = inside the value", () => {
  assert.deepEqual(parseOptions("-c a= -c b=x=y"), [["a", ""], ["b", "x=y"]]);
});

Deno.test("parseOptions() refuses a word that is not a switch with FATAL 08P01", () => {
  assertFatal(
    () => parseOptions("-c a=b verbose"),
    "08P01",
    "invalid command-line argument for server process: verbose",
  );
  assert.throws(() => parseOptions("foo"), { hint: 'Try "postgres --help" for more information.' });
});

Deno.test("parseOptions() refuses -c name without a value", () => {
  assertFatal(() => parseOptions("-c work_mem"), "42601", "-c work_mem requires a value");
  assertFatal(() => parseOptions("-cwork_mem"), "42601", "-c work_mem requires a value");
  assert.throws(() => parseOptions("-c"), PgError);
  assert.throws(() => parseOptions("--work-mem"), PgError);
  assert.throws(() => parseOptions("-c =64MB"), PgError, "a setting needs a name");
});

Deno.test("startupSettings() keeps every startup key but user, database, options and replication", () => {
  assert.deepEqual(
    startupSettings({
      user: "alice",
      database: "db1",
      application_name: "psql",
      replication: "true",
      client_encoding: "UTF8",
    }),
    [["application_name", "psql"], ["client_encoding", "UTF8"]],
  );
});

Deno.test("startupSettings() appends the settings inside options", () => {
  assert.deepEqual(
    startupSettings({
      user: "alice",
      options: "-c search_path=s1\\ s2 --statement-timeout=0",
      DateStyle: "ISO",
    }),
    [["DateStyle", "ISO"], ["search_path", "s1 s2"], ["statement_timeout", "0"]],
  );
});

Deno.test("startupSettings() passes on a bad options word as FATAL 08P01", () => {
  assertFatal(
    () => startupSettings({ user: "alice", options: "-x" }),
    "08P01",
    "invalid command-line argument for server process: -x",
  );
});

Deno.test("settingsSql() writes one set_config call per setting", () => {
  assert.equal(
    settingsSql([["application_name", "psql"], ["work_mem", "64MB"]]),
    "SELECT pg_catalog.set_config('application_name', 'psql', false);\n" +
      "SELECT pg_catalog.set_config('work_mem', '64MB', false);",
  );
  assert.equal(settingsSql([]), "");
});

Deno.test("settingsSql() doubles single quotes in names and values", () => {
  assert.equal(
    settingsSql([["application_name", "it's"]]),
    "SELECT pg_catalog.set_config('application_name', 'it''s', false);",
  );
  assert.equal(
    settingsSql([["x'y", "'); DROP TABLE t; --"]]),
    "SELECT pg_catalog.set_config('x''y', '''); DROP TABLE t; --', false);",
  );
});

Deno.test("parseOptions() drops a trailing backslash and names the word Postgres would", () => {
  assert.deepEqual(parseOptions("-ca=b\\"), [["a", "b"]]);
  assertFatal(() => parseOptions("--work-mem"), "42601", "--work-mem requires a value");
  assertFatal(() => parseOptions("-c"), "42601", "-c requires a value");
});
