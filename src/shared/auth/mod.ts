/**
 * SCRAM-SHA-256 authentication as PostgreSQL speaks it (RFC 5802, RFC 7677 and
 * https://www.postgresql.org/docs/15/sasl-authentication.html), for both ends of a connection.
 *
 * - {@linkcode parseScramVerifier} and {@linkcode makeScramVerifier} read and write the secret
 *   Postgres keeps in `pg_authid.rolpassword`:
 *   `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 * - {@linkcode ScramServer} runs the server side of one exchange (the gateway facing clients).
 *   We advertise only the `SCRAM-SHA-256` mechanism, so there is no channel binding: a gs2
 *   header of `n,,` or `y,,` is accepted and `p=...` is rejected. Without a verifier it runs a
 *   mock exchange that fails at the last step, as Postgres does for unknown roles.
 * - {@linkcode ScramClient} runs the client side (our components logging in to Postgres), from a
 *   password or, with {@linkcode ScramClient.fromClientKey}, from a ClientKey that a
 *   {@linkcode ScramServer} obtained: authentication pass-through.
 * - {@linkcode verifyMd5Response} and {@linkcode verifyPlainPassword} check the answers of the
 *   `md5` and `password` methods against either stored form (an md5 secret or a SCRAM verifier),
 *   as Postgres does; {@linkcode makeMd5Secret} makes the md5 form.
 * - {@linkcode ScramError} carries `kind` (`"malformed"` or `"invalid-proof"`), a message and
 *   `detail` in Postgres's words, and the SQLSTATE to report them with.
 *
 * Messages are the SASL data only (the bytes inside SASLInitialResponse, SASLResponse and
 * AuthenticationSASLContinue/Final), never whole protocol frames. Returned arrays are fresh and
 * belong to the caller; input arrays are copied where they must outlive the call.
 *
 * Passwords are used as UTF-8 without SASLprep normalisation. Postgres does the same for ASCII
 * passwords and for passwords SASLprep rejects, but normalises other non-ASCII ones, so such a
 * password that SASLprep would change (e.g. "ﬁ" becomes "fi") does not match a secret Postgres
 * made.
 *
 * @example
 * ```ts
 * import { makeScramVerifier, parseScramVerifier, ScramClient, ScramServer } from "./mod.ts";
 *
 * const server = new ScramServer(parseScramVerifier(makeScramVerifier("secret")), { user: "app" });
 * const client = new ScramClient("app", "secret");
 * const serverFirst = server.handleClientFirst(client.clientFirst());
 * const serverFinal = server.handleClientFinal(client.handleServerFirst(serverFirst));
 * client.verifyServerFinal(serverFinal); // throws ScramError if the server is an impostor
 * ```
 *
 * @module
 */

export { ScramError } from "./error.ts";
export type { ScramErrorKind, ScramErrorOptions } from "./error.ts";
export { makeScramVerifier, parseScramVerifier } from "./verifier.ts";
export type { MakeScramVerifierOptions, ScramVerifier } from "./verifier.ts";
export { ScramServer } from "./scram_server.ts";
export type { ScramServerOptions } from "./scram_server.ts";
export { ScramClient } from "./scram_client.ts";
export type { ScramClientKeyOptions, ScramClientOptions } from "./scram_client.ts";
export {
  isMd5Secret,
  makeMd5Secret,
  md5Response,
  md5Salt,
  verifyMd5Response,
  verifyPlainPassword,
} from "./password.ts";
