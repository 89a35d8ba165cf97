import assert from "node:assert/strict";
import {
  adminShutdown,
  connectionFailure,
  featureNotSupported,
  internalError,
  invalidPassword,
  isSeverity,
  PgError,
  protocolViolation,
  queryCanceled,
  SqlState,
  type SqlStateCode,
  tooManyConnections,
  toPgError,
  unknownDatabase,
} from "./mod.ts";

Deno.test("PgError defaults to severity ERROR and not retryable", () => {
  const e = new PgError(SqlState.SYNTAX_ERROR, 'syntax error at or near "SELEC"');
  assert.ok(e instanceof Error);
  assert.equal(e.name, "PgError");
  assert.equal(e.sqlstate, "42601");
  assert.equal(e.severity, "ERROR");
  assert.equal(e.message, 'syntax error at or near "SELEC"');
  assert.equal(e.retryable, false);
  assert.equal(e.fatal, false);
  assert.equal(e.detail, undefined);
  assert.equal(e.cause, undefined);
});

Deno.test("PgError keeps every option it is given", () => {
  const cause = new Error("socket closed");
  const e = new PgError("23505", "duplicate key value violates unique constraint", {
    severity: "FATAL",
    severityLocalized: "FATAL-LOCAL",
    detail: "Key (id)=(1) already exists.",
    hint: "h",
    position: 12,
    internalPosition: 3,
    internalQuery: "SELECT 1",
    where: "PL/pgSQL function f() line 3",
    schema: "public",
    table: "t",
    column: "id",
    dataType: "int4",
    constraint: "t_pkey",
    file: "nbtinsert.c",
    line: 666,
    routine: "_bt_check_unique",
    retryable: true,
    cause,
  });
  assert.equal(e.severity, "FATAL");
  assert.equal(e.fatal, true);
  assert.equal(e.severityLocalized, "FATAL-LOCAL");
  assert.equal(e.detail, "Key (id)=(1) already exists.");
  assert.equal(e.hint, "h");
  assert.equal(e.position, 12);
  assert.equal(e.internalPosition, 3);
  assert.equal(e.internalQuery, "SELECT 1");
  assert.equal(e.where, "PL/pgSQL function f() line 3");
  assert.equal(e.schema, "public");
  assert.equal(e.table, "t");
  assert.equal(e.column, "id");
  assert.equal(e.dataType, "int4");
  assert.equal(e.constraint, "t_pkey");
  assert.equal(e.file, "nbtinsert.c");
  assert.equal(e.line, 666);
  assert.equal(e.routine, "_bt_check_unique");
  assert.equal(e.retryable, true);
  assert.equal(e.cause, cause);
});

Deno.test("SqlState uses Postgres's condition names and codes", () => {
  const code: SqlStateCode = SqlState.PROTOCOL_VIOLATION;
  assert.equal(code, "08P01");
  assert.equal(SqlState.INVALID_PASSWORD, "28P01");
  assert.equal(SqlState.IN_FAILED_SQL_TRANSACTION, "25P02");
  assert.equal(SqlState.CANNOT_CONNECT_NOW, "57P03");
  for (const [name, value] of Object.entries(SqlState)) {
    assert.match(value, /^[0-9A-Z]{5}$/, name);
  }
  assert.equal(new Set(Object.values(SqlState)).size, Object.keys(SqlState).length);
});

Deno.test("isSeverity() accepts only the protocol severities", () => {
  assert.ok(isSeverity("NOTICE"));
  assert.ok(isSeverity("PANIC"));
  assert.ok(!isSeverity("FEHLER"));
  assert.ok(!isSeverity("error"));
});

Deno.test("constructors use Postgres's wording, codes and severities", () => {
  const cases: [PgError, string, string, string][] = [
    [protocolViolation("invalid message length"), "08P01", "FATAL", "invalid message length"],
    [
      invalidPassword("alice"),
      "28P01",
      "FATAL",
      'password authentication failed for user "alice"',
    ],
    [unknownDatabase("nope"), "3D000", "FATAL", 'database "nope" does not exist'],
    [tooManyConnections(), "53300", "FATAL", "sorry, too many clients already"],
    [adminShutdown(), "57P01", "FATAL", "terminating connection due to administrator command"],
    [queryCanceled(), "57014", "ERROR", "canceling statement due to user request"],
    [internalError("boom"), "XX000", "ERROR", "boom"],
    [connectionFailure("backend closed"), "08006", "ERROR", "backend closed"],
    [featureNotSupported("COPY is not supported"), "0A000", "ERROR", "COPY is not supported"],
  ];
  for (const [err, sqlstate, severity, message] of cases) {
    assert.ok(err instanceof PgError);
    assert.deepEqual(
      [err.sqlstate, err.severity, err.message, err.retryable],
      [sqlstate, severity, message, false],
    );
  }
});

Deno.test("constructors with a message accept options", () => {
  const e = connectionFailure("no primary", { retryable: true, detail: "shard 0" });
  assert.equal(e.retryable, true);
  assert.equal(e.detail, "shard 0");
  assert.equal(e.severity, "ERROR");
  assert.equal(protocolViolation("x", { hint: "y" }).severity, "FATAL");
  assert.equal(protocolViolation("x", { severity: "ERROR" }).severity, "ERROR");
});

Deno.test("toPgError() passes a PgError through", () => {
  const e = queryCanceled();
  assert.equal(toPgError(e), e);
});

Deno.test("toPgError() turns anything else into ERROR XX000", () => {
  const cause = new TypeError("x is undefined");
  const e = toPgError(cause);
  assert.equal(e.sqlstate, SqlState.INTERNAL_ERROR);
  assert.equal(e.severity, "ERROR");
  assert.equal(e.message, "x is undefined");
  assert.equal(e.cause, cause);
  const s = toPgError("plain string");
  assert.equal(s.sqlstate, "XX000");
  assert.equal(s.message, "plain string");
  assert.equal(toPgError(undefined).message, "undefined");
});
