import assert from "node:assert/strict";
import { serialize } from "pg-protocol";
import { PgError } from "../errors/mod.ts";
import { offsetView, plain, TestBytes } from "./_testing.ts";
import {
  FLUSH,
  parseErrorFields,
  READY_FAILED,
  READY_IDLE,
  READY_IN_TX,
  SYNC,
  TERMINATE,
  writeAuthCleartext,
  writeAuthMd5Password,
  writeAuthOk,
  writeAuthSasl,
  writeAuthSaslContinue,
  writeAuthSaslFinal,
  writeBackendKeyData,
  writeCancelRequest,
  writeCommandComplete,
  writeDataRow,
  writeEmptyQueryResponse,
  writeErrorResponse,
  writeFlush,
  writeNegotiateProtocolVersion,
  writeNoticeResponse,
  writeParameterStatus,
  writePassword,
  writeQuery,
  writeReadyForQuery,
  writeRowDescription,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeSslRequest,
  writeStartupMessage,
  writeSync,
  writeTerminate,
} from "./messages.ts";
import { FrameReader } from "./reader.ts";
import { WireWriter } from "./writer.ts";

const enc = new TextEncoder();
const bytesOf = (write: (w: WireWriter) => WireWriter) => write(new WireWriter(16)).takeCopy();

Deno.test("writeAuth*() write Authentication frames", () => {
  assert.deepEqual(bytesOf(writeAuthOk), new TestBytes().int32(0).typed("R"));
  assert.deepEqual(bytesOf(writeAuthCleartext), new TestBytes().int32(3).typed("R"));
  assert.deepEqual(
    bytesOf((w) => writeAuthMd5Password(w, Uint8Array.of(1, 2, 3, 4))),
    new TestBytes().int32(5).bytes([1, 2, 3, 4]).typed("R"),
  );
  assert.deepEqual(
    bytesOf((w) => writeAuthSasl(w, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])),
    new TestBytes().int32(10).cstring("SCRAM-SHA-256-PLUS").cstring("SCRAM-SHA-256").int8(0)
      .typed("R"),
  );
  const data = enc.encode("r=abc,s=c2FsdA==,i=4096");
  assert.deepEqual(
    bytesOf((w) => writeAuthSaslContinue(w, data)),
    new TestBytes().int32(11).bytes(data).typed("R"),
  );
  assert.deepEqual(
    bytesOf((w) => writeAuthSaslFinal(w, offsetView(data))),
    new TestBytes().int32(12).bytes(data).typed("R"),
  );
});

Deno.test("writeParameterStatus() and writeBackendKeyData() write their frames", () => {
  assert.deepEqual(
    bytesOf((w) => writeParameterStatus(w, "application_name", "psql ✓")),
    new TestBytes().cstring("application_name").cstring("psql ✓").typed("S"),
  );
  assert.deepEqual(
    bytesOf((w) => writeBackendKeyData(w, 4242, -559038737)),
    new TestBytes().int32(4242).int32(-559038737).typed("K"),
  );
});

Deno.test("constant frames equal what the writers produce", () => {
  assert.deepEqual(READY_IDLE, Uint8Array.of(0x5a, 0, 0, 0, 5, 0x49));
  assert.deepEqual(READY_IN_TX, Uint8Array.of(0x5a, 0, 0, 0, 5, 0x54));
  assert.deepEqual(READY_FAILED, Uint8Array.of(0x5a, 0, 0, 0, 5, 0x45));
  assert.deepEqual(bytesOf((w) => writeReadyForQuery(w, 0x49)), READY_IDLE);
  assert.deepEqual(SYNC, new TestBytes().typed("S"));
  assert.deepEqual(FLUSH, new TestBytes().typed("H"));
  assert.deepEqual(TERMINATE, new TestBytes().typed("X"));
  assert.deepEqual(bytesOf(writeSync), SYNC);
  assert.deepEqual(bytesOf(writeFlush), FLUSH);
  assert.deepEqual(bytesOf(writeTerminate), TERMINATE);
});

Deno.test("writeErrorResponse() writes S, V, C, M and only the fields present", () => {
  const err = new PgError("42P01", 'relation "nope" does not exist', { position: 15 });
  assert.deepEqual(
    bytesOf((w) => writeErrorResponse(w, err)),
    new TestBytes()
      .int8(0x53).cstring("ERROR")
      .int8(0x56).cstring("ERROR")
      .int8(0x43).cstring("42P01")
      .int8(0x4d).cstring('relation "nope" does not exist')
      .int8(0x50).cstring("15")
      .int8(0)
      .typed("E"),
  );
});

Deno.test("writeErrorResponse() then parseErrorFields() keeps every field", () => {
  const err = new PgError("23505", "doppelter Schlüsselwert verletzt Unique-Constraint", {
    severity: "ERROR",
    severityLocalized: "FEHLER",
    detail: "Schlüssel (id)=(1) existiert bereits.",
    hint: "a hint",
    position: 8,
    internalPosition: 2,
    internalQuery: "SELECT 1",
    where: "SQL statement",
    schema: "public",
    table: "t",
    column: "id",
    dataType: "int4",
    constraint: "t_pkey",
    file: "nbtinsert.c",
    line: 666,
    routine: "_bt_check_unique",
  });
  const r = new FrameReader();
  r.push(bytesOf((w) => writeErrorResponse(w, err)));
  assert.equal(r.next(), true);
  assert.equal(r.code, 0x45);
  const back = parseErrorFields(offsetView(r.body));
  assert.deepEqual({ ...back, message: back.message }, { ...err, message: err.message });
  assert.equal(back.severityLocalized, "FEHLER");
});

Deno.test("writeNoticeResponse() writes an 'N' frame with the same fields", () => {
  const notice = new PgError("00000", "relation exists, skipping", { severity: "NOTICE" });
  const frame = bytesOf((w) => writeNoticeResponse(w, notice));
  assert.equal(frame[0], 0x4e);
  const back = parseErrorFields(frame.subarray(5));
  assert.equal(back.severity, "NOTICE");
  assert.equal(back.sqlstate, "00000");
  assert.equal(back.message, "relation exists, skipping");
  assert.equal(back.severityLocalized, undefined);
});

Deno.test("writeRowDescription() writes every column attribute with defaults", () => {
  const frame = bytesOf((w) =>
    writeRowDescription(w, [
      { name: "id", tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, format: 1 },
      { name: "naïve", typeOid: 0xfffffff0, typeModifier: 68 },
    ])
  );
  assert.deepEqual(
    frame,
    new TestBytes().int16(2)
      .cstring("id").int32(16384).int16(1).int32(23).int16(4).int32(-1).int16(1)
      .cstring("naïve").int32(0).int16(0).int32(0xfffffff0).int16(-1).int32(68).int16(0)
      .typed("T"),
  );
});

Deno.test("writeDataRow() writes UTF-8 byte lengths, bytes and NULLs", () => {
  const frame = bytesOf((w) =>
    writeDataRow(w, ["1", null, "Grüße 😀", offsetView(Uint8Array.of(0xde, 0xad)), ""])
  );
  assert.deepEqual(
    frame,
    new TestBytes().int16(5)
      .int32(1).string("1")
      .int32(-1)
      .int32(enc.encode("Grüße 😀").length).string("Grüße 😀")
      .int32(2).bytes([0xde, 0xad])
      .int32(0)
      .typed("D"),
  );
});

Deno.test("writeCommandComplete(), writeEmptyQueryResponse() write their frames", () => {
  assert.deepEqual(
    bytesOf((w) => writeCommandComplete(w, "INSERT 0 1")),
    new TestBytes().cstring("INSERT 0 1").typed("C"),
  );
  assert.deepEqual(bytesOf(writeEmptyQueryResponse), new TestBytes().typed("I"));
});

Deno.test("writeNegotiateProtocolVersion() lists unrecognized options", () => {
  assert.deepEqual(
    bytesOf((w) => writeNegotiateProtocolVersion(w, 0, ["_pq_.foo", "_pq_.bar"])),
    new TestBytes().int32(0).int32(2).cstring("_pq_.foo").cstring("_pq_.bar").typed("v"),
  );
});

Deno.test("frontend writers match pg-protocol's serialize byte for byte", () => {
  const params = { user: "alice", database: "db", application_name: "ünïcode" };
  const cases: [Uint8Array, Uint8Array][] = [
    [bytesOf((w) => writeQuery(w, "SELECT 'π', $1")), serialize.query("SELECT 'π', $1")],
    [
      // pg-protocol always appends client_encoding=UTF8
      bytesOf((w) => writeStartupMessage(w, { ...params, client_encoding: "UTF8" })),
      serialize.startup(params),
    ],
    [bytesOf(writeSslRequest), serialize.requestSsl()],
    [bytesOf((w) => writeCancelRequest(w, 1234, 987654321)), serialize.cancel(1234, 987654321)],
    [bytesOf((w) => writePassword(w, "sécret")), serialize.password("sécret")],
    [
      bytesOf((w) => writeSaslInitialResponse(w, "SCRAM-SHA-256", enc.encode("n,,n=,r=abc"))),
      serialize.sendSASLInitialResponseMessage("SCRAM-SHA-256", "n,,n=,r=abc"),
    ],
    [
      bytesOf((w) => writeSaslResponse(w, enc.encode("c=biws,r=abc,p=xyz"))),
      serialize.sendSCRAMClientFinalMessage("c=biws,r=abc,p=xyz"),
    ],
    [bytesOf(writeSync), serialize.sync()],
    [bytesOf(writeFlush), serialize.flush()],
    [bytesOf(writeTerminate), serialize.end()],
  ];
  for (const [ours, theirs] of cases) assert.deepEqual(ours, plain(theirs));
});

Deno.test("writeStartupMessage() writes protocol 3.0 and a final terminator", () => {
  assert.deepEqual(
    bytesOf((w) => writeStartupMessage(w, { user: "u" })),
    new TestBytes().int32(196608).cstring("user").cstring("u").int8(0).untyped(),
  );
});

Deno.test("writers append to what the writer already holds", () => {
  const w = new WireWriter();
  writeQuery(w, "BEGIN");
  writeSync(w);
  w.raw(READY_IDLE);
  assert.deepEqual(
    w.view(),
    Uint8Array.of(
      ...new TestBytes().cstring("BEGIN").typed("Q"),
      ...new TestBytes().typed("S"),
      ...READY_IDLE,
    ),
  );
});
