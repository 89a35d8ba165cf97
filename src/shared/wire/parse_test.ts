import assert from "node:assert/strict";
import { PgError } from "../errors/mod.ts";
import { offsetView, TestBytes } from "./_testing.ts";
import {
  parseAuthentication,
  parseBackendKeyData,
  parseCommandComplete,
  parseErrorFields,
  parseParameterStatus,
  parseQuery,
  parseReadyForQuery,
  parseSaslInitialResponse,
  parseSaslMechanisms,
  parseStartupPacket,
  readCString,
} from "./parse.ts";

function assertPgError(fn: () => unknown, sqlstate: string, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PgError);
    assert.deepEqual([e.sqlstate, e.severity, e.message], [sqlstate, "FATAL", message]);
    return true;
  });
}

const startupBody = (version: number, ...kv: string[]) => {
  const b = new TestBytes().int32(version);
  for (const s of kv) b.cstring(s);
  return b.int8(0).body();
};

Deno.test("readCString() returns the string and the offset after the NUL", () => {
  const buf = offsetView(new TestBytes().cstring("ab").cstring("čšž 😀").body());
  assert.deepEqual(readCString(buf, 0), ["ab", 3]);
  assert.deepEqual(readCString(buf, 3), ["čšž 😀", buf.length]);
  assert.deepEqual(readCString(Uint8Array.of(0), 0), ["", 1]);
});

Deno.test("readCString() throws 08P01 when there is no NUL inside the view", () => {
  const buf = offsetView(new TestBytes().string("abc").body()); // NULs follow outside the view
  assertPgError(() => readCString(buf, 0), "08P01", "invalid string in message");
  assertPgError(() => readCString(buf, 3), "08P01", "invalid string in message");
  assertPgError(() => readCString(buf, 99), "08P01", "invalid string in message");
});

Deno.test("parseStartupPacket() reads version and parameters", () => {
  const body = offsetView(
    startupBody(196608, "user", "alice", "database", "dß", "options", "-c x=1"),
  );
  const p = parseStartupPacket(body);
  assert.deepEqual(p, {
    kind: "startup",
    version: 196608,
    params: new Map([["user", "alice"], ["database", "dß"], ["options", "-c x=1"]]),
  });
});

Deno.test("parseStartupPacket() accepts a newer minor version and reports it", () => {
  const p = parseStartupPacket(startupBody((3 << 16) | 2, "user", "u", "_pq_.x", "1"));
  assert.equal(p.kind, "startup");
  if (p.kind === "startup") {
    assert.equal(p.version & 0xffff, 2);
    assert.equal(p.params.get("_pq_.x"), "1");
  }
});

Deno.test("parseStartupPacket() recognizes SSLRequest, GSSENCRequest and CancelRequest", () => {
  assert.deepEqual(parseStartupPacket(new TestBytes().int32(80877103).body()), { kind: "ssl" });
  assert.deepEqual(parseStartupPacket(new TestBytes().int32(80877104).body()), {
    kind: "gssenc",
  });
  const cancel = offsetView(new TestBytes().int32(80877102).int32(4242).int32(-7).body());
  assert.deepEqual(parseStartupPacket(cancel), { kind: "cancel", pid: 4242, secret: -7 });
});

Deno.test("parseStartupPacket() rejects a CancelRequest of the wrong length", () => {
  const short = new TestBytes().int32(80877102).int32(4242).body();
  assertPgError(() => parseStartupPacket(short), "08P01", "invalid length of startup packet");
});

Deno.test("parseStartupPacket() rejects a protocol major other than 3 with 0A000", () => {
  assertPgError(
    () => parseStartupPacket(startupBody((2 << 16) | 0, "user", "u")),
    "0A000",
    "unsupported frontend protocol 2.0: server supports 3.0 to 3.0",
  );
  assertPgError(
    () => parseStartupPacket(startupBody((4 << 16) | 1, "user", "u")),
    "0A000",
    "unsupported frontend protocol 4.1: server supports 3.0 to 3.0",
  );
  assertPgError(
    () => parseStartupPacket(new TestBytes().int32((1234 << 16) | 5681).body()),
    "0A000",
    "unsupported frontend protocol 1234.5681: server supports 3.0 to 3.0",
  );
});

Deno.test("parseStartupPacket() requires a non-empty user with 28000", () => {
  const message = "no PostgreSQL user name specified in startup packet";
  assertPgError(() => parseStartupPacket(startupBody(196608, "database", "d")), "28000", message);
  assertPgError(() => parseStartupPacket(startupBody(196608, "user", "")), "28000", message);
});

Deno.test("parseStartupPacket() rejects malformed layouts with 08P01", () => {
  const message = "invalid startup packet layout: expected terminator as last byte";
  const bad = [
    new TestBytes().int32(196608).cstring("user").string("alice").body(), // value without NUL
    new TestBytes().int32(196608).cstring("user").body(), // name without value
    new TestBytes().int32(196608).string("user").body(), // name without NUL
    new TestBytes().int32(196608).cstring("user").cstring("u").body(), // no terminator
    new TestBytes().int32(196608).cstring("user").cstring("u").int8(0).int8(0).body(), // extra
  ];
  for (const body of bad) {
    assertPgError(() => parseStartupPacket(offsetView(body)), "08P01", message);
  }
  assertPgError(
    () => parseStartupPacket(Uint8Array.of(0, 3)),
    "08P01",
    "insufficient data left in message",
  );
});

Deno.test("parseErrorFields() uses V over a localized S and skips unknown fields", () => {
  const body = offsetView(
    new TestBytes()
      .int8(0x53).cstring("FEHLER")
      .int8(0x56).cstring("ERROR")
      .int8(0x43).cstring("42601")
      .int8(0x4d).cstring("Syntaxfehler bei »SELEC«")
      .int8(0x7a).cstring("unknown field")
      .int8(0x50).cstring("1")
      .int8(0x4c).cstring("1180")
      .int8(0)
      .body(),
  );
  const e = parseErrorFields(body);
  assert.deepEqual(
    [e.severity, e.severityLocalized, e.sqlstate, e.message, e.position, e.line],
    ["ERROR", "FEHLER", "42601", "Syntaxfehler bei »SELEC«", 1, 1180],
  );
});

Deno.test("parseErrorFields() falls back to S, then ERROR, without V", () => {
  const fatal = parseErrorFields(
    new TestBytes().int8(0x53).cstring("FATAL").int8(0x43).cstring("57P01").int8(0).body(),
  );
  assert.deepEqual([fatal.severity, fatal.severityLocalized], ["FATAL", undefined]);
  const odd = parseErrorFields(new TestBytes().int8(0x53).cstring("FEHLER").int8(0).body());
  assert.deepEqual([odd.severity, odd.severityLocalized, odd.sqlstate], [
    "ERROR",
    "FEHLER",
    "XX000",
  ]);
});

Deno.test("parseErrorFields() throws 08P01 for a field without NUL", () => {
  const body = offsetView(new TestBytes().int8(0x53).string("ERROR").body());
  assertPgError(() => parseErrorFields(body), "08P01", "invalid string in message");
});

Deno.test("small parsers read their bodies through offset views", () => {
  assert.equal(parseReadyForQuery(offsetView(Uint8Array.of(0x54))), 0x54);
  assert.equal(
    parseCommandComplete(offsetView(new TestBytes().cstring("SELECT 3").body())),
    "SELECT 3",
  );
  assert.equal(parseQuery(offsetView(new TestBytes().cstring("SELECT 'ü'").body())), "SELECT 'ü'");
  assert.deepEqual(
    parseParameterStatus(offsetView(new TestBytes().cstring("TimeZone").cstring("UTC").body())),
    ["TimeZone", "UTC"],
  );
  assert.deepEqual(
    parseBackendKeyData(offsetView(new TestBytes().int32(77).int32(-123456789).body())),
    { pid: 77, secret: -123456789 },
  );
});

Deno.test("small parsers throw 08P01 on short bodies", () => {
  const short = "insufficient data left in message";
  assertPgError(() => parseReadyForQuery(new Uint8Array(0)), "08P01", short);
  assertPgError(() => parseBackendKeyData(offsetView(Uint8Array.of(0, 0, 0, 1))), "08P01", short);
  assertPgError(() => parseAuthentication(offsetView(Uint8Array.of(0, 0))), "08P01", short);
  assertPgError(
    () => parseParameterStatus(new TestBytes().cstring("a").body()),
    "08P01",
    "invalid string in message",
  );
});

Deno.test("parseAuthentication() and parseSaslMechanisms() read AuthenticationSASL", () => {
  const body = offsetView(
    new TestBytes().int32(10).cstring("SCRAM-SHA-256-PLUS").cstring("SCRAM-SHA-256").int8(0)
      .body(),
  );
  const { code, data } = parseAuthentication(body);
  assert.equal(code, 10);
  assert.deepEqual(parseSaslMechanisms(data), ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
  assert.deepEqual(parseAuthentication(Uint8Array.of(0, 0, 0, 0)), {
    code: 0,
    data: new Uint8Array(0),
  });
});

Deno.test("parseSaslInitialResponse() returns the mechanism and a data view", () => {
  const first = new TextEncoder().encode("n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  const body = offsetView(
    new TestBytes().cstring("SCRAM-SHA-256").int32(first.length)
      .bytes(first).body(),
  );
  const got = parseSaslInitialResponse(body);
  assert.equal(got.mechanism, "SCRAM-SHA-256");
  assert.deepEqual(got.data, first);
  assert.equal(got.data.buffer, body.buffer);
  const none = parseSaslInitialResponse(new TestBytes().cstring("X").int32(-1).body());
  assert.equal(none.data.length, 0);
  assertPgError(
    () => parseSaslInitialResponse(new TestBytes().cstring("X").int32(5).bytes([1, 2]).body()),
    "08P01",
    "insufficient data left in message",
  );
});
