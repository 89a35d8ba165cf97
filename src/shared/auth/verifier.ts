import {
  clientKeyOf,
  decodeBase64,
  DEFAULT_ITERATIONS,
  encodeBase64,
  KEY_LENGTH,
  MAX_ITERATIONS,
  randomSalt,
  SALT_LENGTH,
  saltedPassword,
  serverKeyOf,
  sha256,
} from "./_crypto.ts";

/** A parsed SCRAM-SHA-256 secret, as stored in `pg_authid.rolpassword`. */
export type ScramVerifier = {
  /** PBKDF2 iteration count, at least 1. */
  iterations: number;
  /** Salt bytes (16 in the secrets Postgres makes). */
  salt: Uint8Array;
  /** StoredKey := H(ClientKey), 32 bytes. */
  storedKey: Uint8Array;
  /** ServerKey := HMAC(SaltedPassword, "Server Key"), 32 bytes. */
  serverKey: Uint8Array;
};

/** Options for {@linkcode makeScramVerifier}. */
export type MakeScramVerifierOptions = {
  /** PBKDF2 iteration count; 4096 by default, as Postgres 15. */
  iterations?: number;
  /** Salt; 16 random bytes by default, as Postgres. */
  salt?: Uint8Array;
};

const SCHEME = "SCRAM-SHA-256";
const DIGITS = /^[0-9]+$/;

/**
 * Parses a Postgres SCRAM secret,
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` with standard padded base64.
 *
 * Returns null for anything else: md5 hashes, plain-text passwords, the empty string, a bad
 * iteration count (not a decimal number from 1 to 2147483647), bad base64, an empty salt or keys
 * that are not 32 bytes long.
 */
export function parseScramVerifier(s: string): ScramVerifier | null {
  const parts = s.split("$");
  if (parts.length !== 3 || parts[0] !== SCHEME) return null;
  const params = parts[1].split(":");
  const keys = parts[2].split(":");
  if (params.length !== 2 || keys.length !== 2) return null;

  if (!DIGITS.test(params[0])) return null;
  const iterations = Number(params[0]);
  if (iterations < 1 || iterations > MAX_ITERATIONS) return null;

  const salt = decodeBase64(params[1]);
  const storedKey = decodeBase64(keys[0]);
  const serverKey = decodeBase64(keys[1]);
  if (salt === null || salt.length === 0) return null;
  if (storedKey === null || storedKey.length !== KEY_LENGTH) return null;
  if (serverKey === null || serverKey.length !== KEY_LENGTH) return null;
  return { iterations, salt, storedKey, serverKey };
}

/**
 * Builds a Postgres SCRAM secret for `password`, in the form {@linkcode parseScramVerifier}
 * reads; Postgres accepts it in `CREATE ROLE ... PASSWORD '<secret>'`.
 *
 * The password is used as UTF-8 bytes without SASLprep normalisation. For ASCII passwords this
 * is what Postgres computes (SASLprep leaves printable ASCII alone, and Postgres uses the raw
 * bytes when SASLprep rejects a password, e.g. one with control characters). For non-ASCII
 * passwords Postgres applies SASLprep (NFKC and the RFC 4013 mappings) when it succeeds, so a
 * password that SASLprep changes, such as one holding the ligature "ﬁ" or a non-ASCII space,
 * gives a different secret here; a password already in NFKC form gives the same one.
 *
 * @throws {RangeError} when `iterations` is not an integer from 1 to 2147483647 or `salt` is
 * empty.
 */
export function makeScramVerifier(password: string, opts: MakeScramVerifierOptions = {}): string {
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError(`Invalid SCRAM iteration count: ${iterations}`);
  }
  const salt = opts.salt ?? randomSalt(SALT_LENGTH);
  if (salt.length === 0) throw new RangeError("Invalid SCRAM salt: empty");

  const salted = saltedPassword(password, salt, iterations);
  const storedKey = sha256(clientKeyOf(salted));
  const serverKey = serverKeyOf(salted);
  return `${SCHEME}$${iterations}:${encodeBase64(salt)}$${encodeBase64(storedKey)}:${
    encodeBase64(serverKey)
  }`;
}
