import assert from "node:assert/strict";
import { DEFAULT_HBA_NAME, HbaConfig } from "./mod.ts";

Deno.test("HbaConfig without a file requires scram-sha-256 from every host", () => {
  const c = new HbaConfig();
  assert.equal(c.source, DEFAULT_HBA_NAME);
  assert.equal(c.rules.length, 1);
  assert.equal(c.rules[0].type, "host");
  assert.equal(c.rules[0].address.kind, "all");
  assert.equal(c.rules[0].method, "scram-sha-256");
});

Deno.test("HbaConfig.reload() keeps the old rules when the file has an error", () => {
  const files: Record<string, string> = { "/h/pg_hba.conf": "host all all all trust\n" };
  const readFile = (p: string) => {
    if (p in files) return files[p];
    throw new Deno.errors.NotFound(p);
  };
  const c = new HbaConfig({ hbaFile: "/h/pg_hba.conf", readFile });
  assert.equal(c.rules[0].method, "trust");

  files["/h/pg_hba.conf"] = "host all all all md5\nhost all all all nonsense\n";
  const err = c.reload();
  assert.match(String(err), /\/h\/pg_hba.conf:2: invalid authentication method "nonsense"/);
  assert.equal(c.rules.length, 1);
  assert.equal(c.rules[0].method, "trust");

  files["/h/pg_hba.conf"] = "host all all all md5\n";
  assert.equal(c.reload(), null);
  assert.equal(c.rules[0].method, "md5");

  // pg_ident.conf beside it is read when it exists.
  files["/h/pg_ident.conf"] = "certs alice app\n";
  assert.equal(c.reload(), null);
  assert.equal(c.ident.length, 1);
});

Deno.test("HbaConfig refuses to start on an unreadable or wrong file", () => {
  const readFile = (_: string): string => {
    throw new Deno.errors.NotFound("nope");
  };
  assert.throws(() => new HbaConfig({ hbaFile: "/nope", readFile }), /Cannot read --hba-file/);
  assert.throws(
    () => new HbaConfig({ hbaFile: "/h", readFile: () => "hostx all all all trust" }),
    /\/h:1: invalid connection type "hostx"/,
  );
});
