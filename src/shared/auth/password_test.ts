import assert from "node:assert/strict";
import {
  isMd5Secret,
  makeMd5Secret,
  makeScramVerifier,
  md5Response,
  verifyMd5Response,
  verifyPlainPassword,
} from "./mod.ts";

Deno.test("makeMd5Secret() matches what Postgres stores", () => {
  // md5("secret" || "alice"): the secret Postgres stores under password_encryption = md5.
  assert.equal(makeMd5Secret("secret", "alice"), "md5" + "4a0a68b43b6cd5cf266fa02f196e2371");
  assert.ok(isMd5Secret(makeMd5Secret("x", "y")));
  assert.ok(!isMd5Secret("SCRAM-SHA-256$4096:abc$def:ghi"));
});

Deno.test("verifyMd5Response() accepts the client's answer and nothing else", () => {
  const secret = makeMd5Secret("pw", "bob");
  const salt = new Uint8Array([1, 2, 3, 4]);
  assert.ok(verifyMd5Response(secret, salt, md5Response(secret, salt)));
  assert.ok(!verifyMd5Response(secret, salt, md5Response(makeMd5Secret("no", "bob"), salt)));
  assert.ok(!verifyMd5Response(secret, new Uint8Array(4), md5Response(secret, salt)));
  assert.ok(!verifyMd5Response("", salt, md5Response(secret, salt)));
});

Deno.test("verifyPlainPassword() checks a cleartext password against either stored form", () => {
  assert.ok(verifyPlainPassword(makeMd5Secret("pw", "bob"), "bob", "pw"));
  assert.ok(!verifyPlainPassword(makeMd5Secret("pw", "bob"), "bob", "pW"));
  const scram = makeScramVerifier("pw", { iterations: 16 });
  assert.ok(verifyPlainPassword(scram, "bob", "pw"));
  assert.ok(!verifyPlainPassword(scram, "bob", "px"));
  assert.ok(!verifyPlainPassword("", "bob", ""));
  assert.ok(!verifyPlainPassword("pw", "bob", "pw"));
});
