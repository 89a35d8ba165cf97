import assert from "node:assert/strict";
import { AuthFileError, parseHba, parseIdent } from "./mod.ts";
import { identAllows } from "./ident.ts";

const files: Record<string, string> = {
  "/etc/hba/admins": 'alice, bob\n# a comment\n"carol x"\n',
  "/etc/hba/nested": "@admins dave\n",
  "/etc/loop": "@loop\n",
};
const readFile = (p: string): string => {
  if (p in files) return files[p];
  throw new Error("No such file or directory (os error 2)");
};
const parse = (text: string) => parseHba("/etc/hba/pg_hba.conf", text, readFile);

function parseError(text: string): AuthFileError {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof AuthFileError, String(e));
    return e;
  }
  throw new Error("no error");
}

Deno.test("parseHba() reads types, lists, addresses and methods", () => {
  const rules = parse(`
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all       all            peer
host    db1,db2   u1    127.0.0.1/32  md5   # trailing comment
hostssl all       +admins  ::1/128  scram-sha-256
hostnossl sameuser all 10.0.0.0 255.0.0.0 password
host    "all"     "+x"  samenet  trust
host    replication all samehost reject
`);
  assert.equal(rules.length, 6);
  assert.equal(rules[0].type, "local");
  assert.equal(rules[0].method, "peer");
  assert.deepEqual(rules[1].databases.map((t) => t.text), ["db1", "db2"]);
  assert.equal(rules[1].lineNo, 4);
  assert.equal(rules[1].address.kind, "ip");
  assert.equal(rules[2].users[0].text, "+admins");
  assert.equal(rules[3].address.kind, "ip");
  assert.deepEqual(rules[4].databases[0], { text: "all", quoted: true });
  assert.deepEqual(rules[4].users[0], { text: "+x", quoted: true });
  assert.equal(rules[4].address.kind, "samenet");
  assert.equal(rules[5].address.kind, "samehost");
});

Deno.test("parseHba() joins continued lines and keeps the first line's number", () => {
  const rules = parse("host all \\\n  all 127.0.0.1/32 \\\n trust\nhost all all all reject\n");
  assert.equal(rules.length, 2);
  assert.equal(rules[0].lineNo, 1);
  assert.equal(rules[0].method, "trust");
  assert.equal(rules[1].lineNo, 4);
});

Deno.test("parseHba() keeps blanks, commas and # inside quotes", () => {
  const [r] = parse('host "my db","a,b#c" "we""ird" all trust');
  assert.deepEqual(r.databases.map((t) => t.text), ["my db", "a,b#c"]);
  assert.equal(r.users[0].text, 'we"ird');
});

Deno.test("parseHba() expands @files relative to the including file, nested", () => {
  const [r] = parse("host all @nested,eve all trust");
  assert.deepEqual(r.users.map((t) => t.text), ["alice", "bob", "carol x", "dave", "eve"]);
  assert.equal(r.users[2].quoted, true);
  // A quoted @ is a name.
  const [q] = parse('host all "@nested" all trust');
  assert.deepEqual(q.users.map((t) => t.text), ["@nested"]);
});

Deno.test("parseHba() reports errors with the file name and line number", () => {
  const cases: [string, RegExp][] = [
    ["\n\nhots all all all trust", /:3: invalid connection type "hots"/],
    ["host all all 127.0.0.1/32 trusty", /:1: invalid authentication method "trusty"/],
    ["host all all 127.0.0.1/33 trust", /invalid CIDR mask in address "127.0.0.1\/33"/],
    ["host all all 127.0.0.1 trust", /invalid IP mask "trust"/],
    ["host all all 127.0.0.1", /end-of-line before netmask specification/],
    ["host all all", /end-of-line before IP address specification/],
    ["host all", /end-of-line before role specification/],
    ["host all all all", /end-of-line before authentication method/],
    ["host all all 1.2.3.4 ffff:: trust", /IP address and mask do not match/],
    ["host all all 300.1.1.1/32 trust", /invalid IP address "300.1.1.1"/],
    ["host all all db.example.com trust", /host names are not supported by the gateway/],
    ["host all all all ldap", /authentication method "ldap" is not supported by the gateway/],
    ["host all all all cert", /cert authentication is only supported on hostssl connections/],
    ["host all all all md5 clientcert=verify-ca", /clientcert can only be configured/],
    ["hostssl all all all cert clientcert=verify-ca", /only accepts "verify-full"/],
    ["hostssl all all all md5 clientcert=maybe", /invalid value for clientcert: "maybe"/],
    ["host all all all md5 map=x", /"map" is only valid for authentication methods/],
    ["host all all all md5 foo=1", /unrecognized authentication option name: "foo"/],
    ["host all all all md5 foo", /authentication option not in name=value format: foo/],
    ["host,local all all all md5", /multiple values specified for connection type/],
    ["host all @missing all md5", /could not open secondary authentication file "@missing"/],
  ];
  for (const [text, re] of cases) {
    const e = parseError(text);
    assert.match(e.message, re, text);
    assert.ok(e.message.startsWith("/etc/hba/pg_hba.conf:"), e.message);
  }
  assert.equal(parseError("\n\nhots all all all trust").line, 3);
  // An error in an included file names that file.
  assert.match(parseError("host all @/etc/loop all md5").message, /^\/etc\/loop:1: .*nesting/);
});

Deno.test("parseHba() takes cert lines with their options", () => {
  const [r] = parse("hostssl all all all cert map=certs clientname=DN");
  assert.equal(r.clientCert, "verify-full");
  assert.equal(r.map, "certs");
  assert.equal(r.clientName, "DN");
  const [s] = parse("hostssl all all all scram-sha-256 clientcert=verify-ca");
  assert.equal(s.clientCert, "verify-ca");
});

Deno.test("parseIdent() reads maps with names and regular expressions", () => {
  const entries = parseIdent(
    "/etc/pg_ident.conf",
    "# MAP  SYSTEM  PG\ncerts alice app\ncerts /^(.*)@example\\.com$ \\1\n",
    readFile,
  );
  assert.equal(entries.length, 2);
  assert.ok(identAllows(entries, "certs", "alice", "app"));
  assert.ok(!identAllows(entries, "certs", "alice", "alice"));
  assert.ok(identAllows(entries, "certs", "bob@example.com", "bob"));
  assert.ok(!identAllows(entries, "other", "alice", "app"));
  assert.throws(
    () => parseIdent("/etc/pg_ident.conf", "\ncerts alice", readFile),
    /pg_ident.conf:2: missing entry at end of line/,
  );
});
