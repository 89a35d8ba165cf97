// Passwords checked the two other ways Postgres does: md5 challenges and cleartext.
import { createHash, randomBytes } from "node:crypto";
import { equalBytes, saltedPassword, serverKeyOf } from "./_crypto.ts";
import { parseScramVerifier } from "./verifier.ts";

const encoder = new TextEncoder();
/** `md5` followed by 32 lowercase hex digits: a secret Postgres stored with md5. */
const MD5_SECRET = /^md5[0-9a-f]{32}$/;

/** True for a secret in Postgres's md5 form, `md5<hex of md5(password || user)>`. */
export function isMd5Secret(secret: string): boolean {
  return MD5_SECRET.test(secret);
}

/** The secret Postgres stores for `password` of role `user` with `password_encryption = md5`. */
export function makeMd5Secret(password: string, user: string): string {
  return "md5" + createHash("md5").update(password + user).digest("hex");
}

/** Four random bytes: the salt of an AuthenticationMD5Password request. */
export function md5Salt(): Uint8Array {
  return Uint8Array.from(randomBytes(4));
}

/**
 * The answer a client gives to an md5 challenge when it knows the password:
 * `md5` + hex(md5(hex(md5(password || user)) || salt)). From a stored md5 secret the server
 * computes the same without the password.
 */
export function md5Response(secret: string, salt: Uint8Array): string {
  return "md5" + createHash("md5").update(secret.slice(3)).update(salt).digest("hex");
}

/**
 * Checks a client's answer to an md5 challenge against the role's stored md5 secret, in constant
 * time. False for a secret that is not an md5 one.
 */
export function verifyMd5Response(secret: string, salt: Uint8Array, answer: string): boolean {
  if (!isMd5Secret(secret)) return false;
  const want = encoder.encode(md5Response(secret, salt));
  const got = encoder.encode(answer);
  return equalBytes(want, got);
}

/**
 * Checks a password sent in clear (the `password` method) against the stored secret, whichever
 * form it has: a SCRAM-SHA-256 verifier (its ServerKey recomputed from the password) or an md5
 * secret. False for anything else (no secret, or one Postgres no longer accepts).
 */
export function verifyPlainPassword(secret: string, user: string, password: string): boolean {
  if (isMd5Secret(secret)) {
    const want = encoder.encode(secret);
    const got = encoder.encode(makeMd5Secret(password, user));
    return equalBytes(want, got);
  }
  const v = parseScramVerifier(secret);
  if (!v) return false;
  const salted = saltedPassword(password, v.salt, v.iterations);
  return equalBytes(serverKeyOf(salted), v.serverKey);
}
