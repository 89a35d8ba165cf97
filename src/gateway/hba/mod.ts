/**
 * Who gets in: Postgres's client authentication at the gateway. A `pg_hba.conf`-format file
 * ({@linkcode HbaConfig}, reloaded on SIGHUP by the gateway's main) picks the method for each
 * connection by type, database, role and address; {@linkcode authenticateClient} runs the
 * method against the role's stored secret (trust, reject, scram-sha-256, md5, password; cert
 * refuses, see README.md) and then the role checks Postgres makes at connection time
 * ({@linkcode admitRole}: login, CONNECT privilege, connection limits counted by
 * {@linkcode ConnectionCounts}). Errors are Postgres's own, SQLSTATE and message.
 *
 * @example
 * ```ts
 * import { findRule, parseHba } from "./mod.ts";
 *
 * const rules = parseHba("pg_hba.conf", "host all all 127.0.0.1/32 md5\n", Deno.readTextFileSync);
 * const rule = findRule(rules, {
 *   address: new Uint8Array([127, 0, 0, 1]),
 *   tls: false,
 *   user: "app",
 *   database: "app",
 *   memberOf: new Set(["app"]),
 *   localAddresses: [],
 * });
 * console.log(rule?.method); // md5
 * ```
 *
 * @module
 */

export { AuthFileError } from "./_tokenize.ts";
export type { Token } from "./_tokenize.ts";
export type { AuthMethod, ConnectionType, HbaAddress, HbaRule } from "./rules.ts";
export { parseHba } from "./parse.ts";
export { identAllows, parseIdent } from "./ident.ts";
export type { IdentEntry } from "./ident.ts";
export { cidrMask, inRange, localAddresses, parseIp } from "./address.ts";
export type { IpBytes, LocalAddress } from "./address.ts";
export { findRule } from "./match.ts";
export type { ConnectionFacts } from "./match.ts";
export { DEFAULT_HBA, DEFAULT_HBA_NAME, HbaConfig } from "./hba_config.ts";
export type { HbaConfigOptions } from "./hba_config.ts";
export { ConnectionCounts } from "./connection_counts.ts";
export { admitRole } from "./role_checks.ts";
export { authenticateClient, defaultAccess, gatewayAccess } from "./authenticate.ts";
export type { AuthIo, ClientFacts, GatewayAccess } from "./authenticate.ts";
