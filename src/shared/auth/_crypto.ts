// SCRAM-SHA-256 primitives (RFC 5802 section 3, RFC 7677), on top of node:crypto.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/** Length of every SCRAM-SHA-256 key, proof and signature, in bytes. */
export const KEY_LENGTH = 32;
/** Salt length Postgres uses for new secrets and mock exchanges. */
export const SALT_LENGTH = 16;
/** Iteration count Postgres 15 uses for new secrets and mock exchanges. */
export const DEFAULT_ITERATIONS = 4096;
/** Largest iteration count Postgres accepts (it stores it in an `int`). */
export const MAX_ITERATIONS = 0x7fffffff;
/** Random bytes behind a nonce; base64 makes 24 printable characters, as Postgres does. */
const RAW_NONCE_LENGTH = 18;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Copies a Node `Buffer` into a plain `Uint8Array` (so equality checks see one type). */
function plain(buf: Uint8Array): Uint8Array {
  return Uint8Array.from(buf);
}

/** HMAC-SHA-256 of `data` under `key`. */
export function hmac(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return plain(createHmac("sha256", key).update(data).digest());
}

/**
 * HMAC-SHA-256 of the AuthMessage, `client-first-bare "," server-first "," client-final-without-proof`,
 * fed piece by piece so the message is never built.
 */
export function hmacAuthMessage(
  key: Uint8Array,
  parts: readonly [Uint8Array | string, Uint8Array | string, Uint8Array | string],
): Uint8Array {
  return plain(
    createHmac("sha256", key).update(parts[0]).update(",").update(parts[1]).update(",")
      .update(parts[2]).digest(),
  );
}

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  return plain(createHash("sha256").update(data).digest());
}

/** SaltedPassword := Hi(password, salt, i), with the password as UTF-8 (no SASLprep). */
export function saltedPassword(password: string, salt: Uint8Array, iterations: number): Uint8Array {
  return plain(pbkdf2Sync(password, salt, iterations, KEY_LENGTH, "sha256"));
}

/** ClientKey := HMAC(SaltedPassword, "Client Key"). */
export function clientKeyOf(salted: Uint8Array): Uint8Array {
  return hmac(salted, "Client Key");
}

/** ServerKey := HMAC(SaltedPassword, "Server Key"). */
export function serverKeyOf(salted: Uint8Array): Uint8Array {
  return hmac(salted, "Server Key");
}

/** Byte-wise XOR of two arrays of the same length. */
export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** Constant-time equality (the length is not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Standard padded base64 of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

/** Decodes standard padded base64; null for anything else (whitespace included). */
export function decodeBase64(text: string): Uint8Array | null {
  if (!BASE64.test(text)) return null;
  try {
    return Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
  } catch {
    return null;
  }
}

/** A fresh random nonce of printable characters. */
export function randomNonce(): string {
  return plain(randomBytes(RAW_NONCE_LENGTH)).toBase64();
}

/** `count` cryptographically random bytes. */
export function randomSalt(count: number): Uint8Array {
  return plain(randomBytes(count));
}

/** True when every character is RFC 5802 `printable`: %x21-2B / %x2D-7E. */
export function isPrintable(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}
