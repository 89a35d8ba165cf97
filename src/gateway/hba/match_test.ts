import assert from "node:assert/strict";
import { type ConnectionFacts, findRule, parseHba, parseIp } from "./mod.ts";

const RULES = parseHba(
  "pg_hba.conf",
  `
local     all          all                   trust
host      replication  all   all             trust
hostgssenc all         all   all             trust
host      sales        +managers 127.0.0.1/32 password
host      samerole     all   127.0.0.1/32    md5
host      sameuser     all   127.0.0.1/32    trust
hostssl   all          ann   all             scram-sha-256
hostnossl all          ann   all             reject
host      all          bob   10.1.0.0/16     trust
host      all          bob   ::1/128         md5
host      all          carl  samehost        password
host      all          dora  samenet         password
host      "Mixed Db"   all   all             trust
`,
  Deno.readTextFileSync,
);

function facts(over: Partial<ConnectionFacts>): ConnectionFacts {
  return {
    address: parseIp("127.0.0.1"),
    tls: false,
    user: "u",
    database: "d",
    memberOf: new Set([over.user ?? "u"]),
    localAddresses: [{ addr: parseIp("192.168.5.10")!, mask: parseIp("255.255.255.0")! }],
    ...over,
  };
}

function lineOf(over: Partial<ConnectionFacts>): number | null {
  return findRule(RULES, facts(over))?.lineNo ?? null;
}

Deno.test("findRule() never picks local, replication or hostgssenc lines", () => {
  assert.equal(lineOf({}), null);
});

Deno.test("findRule() picks +group members, directly or indirectly, by membership", () => {
  assert.equal(lineOf({ database: "sales", memberOf: new Set(["u", "managers"]) }), 5);
  assert.equal(lineOf({ database: "sales" }), null);
});

Deno.test("findRule() matches samerole and sameuser against the database name", () => {
  assert.equal(lineOf({ database: "staff", memberOf: new Set(["u", "staff"]) }), 6);
  // A role is a member of itself, so samerole covers a database named after the user too.
  assert.equal(lineOf({ database: "u" }), 6);
  // sameuser compares names only: it holds even for a role that does not exist.
  assert.equal(lineOf({ database: "u", memberOf: new Set() }), 7);
});

Deno.test("findRule() tells hostssl from hostnossl", () => {
  assert.equal(lineOf({ user: "ann", tls: true }), 8);
  assert.equal(lineOf({ user: "ann", tls: false }), 9);
});

Deno.test("findRule() matches addresses by CIDR range and family", () => {
  assert.equal(lineOf({ user: "bob", address: parseIp("10.1.200.3") }), 10);
  assert.equal(lineOf({ user: "bob", address: parseIp("10.2.0.1") }), null);
  assert.equal(lineOf({ user: "bob", address: parseIp("::1") }), 11);
  // An IPv4 client seen through a dual-stack socket is still IPv4.
  assert.equal(lineOf({ user: "bob", address: parseIp("::ffff:10.1.0.9") }), 10);
  assert.equal(lineOf({ user: "bob", address: null }), null);
});

Deno.test("findRule() matches samehost and samenet against this machine's addresses", () => {
  assert.equal(lineOf({ user: "carl", address: parseIp("192.168.5.10") }), 12);
  assert.equal(lineOf({ user: "carl", address: parseIp("192.168.5.11") }), null);
  assert.equal(lineOf({ user: "dora", address: parseIp("192.168.5.77") }), 13);
  assert.equal(lineOf({ user: "dora", address: parseIp("192.168.6.77") }), null);
});

Deno.test("findRule() compares quoted names exactly", () => {
  assert.equal(lineOf({ database: "Mixed Db" }), 14);
  assert.equal(lineOf({ database: "mixed db" }), null);
});

Deno.test("parseIp() reads IPv4 and IPv6 and refuses the rest", () => {
  assert.deepEqual(parseIp("10.0.0.1"), new Uint8Array([10, 0, 0, 1]));
  assert.equal(parseIp("::1")?.length, 16);
  assert.equal(parseIp("fe80::1:2")?.[15], 2);
  assert.equal(parseIp("1:2:3:4:5:6:7:8")?.[15], 8);
  assert.equal(parseIp("::ffff:1.2.3.4")?.length, 4);
  for (const bad of ["1.2.3", "1.2.3.256", "1::2::3", "1:2:3:4:5:6:7:8:9", "localhost", ""]) {
    assert.equal(parseIp(bad), null, bad);
  }
});
