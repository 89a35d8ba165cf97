import { invalidPassword, PgError, protocolViolation, SqlState } from "../../shared/errors/mod.ts";
import {
  isMd5Secret,
  md5Salt,
  parseScramVerifier,
  ScramError,
  ScramServer,
  verifyMd5Response,
  verifyPlainPassword,
} from "../../shared/auth/mod.ts";
import type { GetAuthCredentialsResponse } from "../../shared/grpc/types.ts";
import {
  parseSaslInitialResponse,
  WireWriter,
  writeAuthCleartext,
  writeAuthMd5Password,
  writeAuthOk,
  writeAuthSasl,
  writeAuthSaslContinue,
  writeAuthSaslFinal,
} from "../../shared/wire/mod.ts";
import { type LocalAddress, localAddresses, parseIp } from "./address.ts";
import { ConnectionCounts } from "./connection_counts.ts";
import { HbaConfig } from "./hba_config.ts";
import { findRule } from "./match.ts";
import { admitRole } from "./role_checks.ts";

/** What the gateway decides admission with: its rules and its sessions per role and database. */
export interface GatewayAccess {
  readonly hba: HbaConfig;
  readonly counts: ConnectionCounts;
  /** This machine's addresses (`samehost`, `samenet`). */
  readonly localAddresses: readonly LocalAddress[];
  /**
   * The cluster's secret for mock SCRAM salts (an unknown role's salt): the same in every
   * gateway of a cluster, so that two gateways do not reveal which roles exist by differing.
   * Absent: one chosen per process.
   */
  readonly mockSecret?: Uint8Array;
}

/** Access with the given rules (default: {@linkcode DEFAULT_HBA}) and this machine's addresses. */
export function gatewayAccess(
  hba: HbaConfig = new HbaConfig(),
  mockSecret?: Uint8Array,
): GatewayAccess {
  return { hba, counts: new ConnectionCounts(), localAddresses: localAddresses(), mockSecret };
}

/** How the authentication exchange talks to the client. */
export interface AuthIo {
  /** Writes bytes to the client (they may be reused once this resolves). */
  send(bytes: Uint8Array): Promise<void>;
  /**
   * The body of the client's next password-type message (PasswordMessage, SASLInitialResponse,
   * SASLResponse); null when the client went away. `what` names it in a protocol error.
   */
  readPassword(what: string): Promise<Uint8Array | null>;
}

/** The connection attempt. */
export interface ClientFacts {
  user: string;
  /** The database asked for (the user's name when the client named none). */
  database: string;
  tls: boolean;
  /** The client's IP address as the socket gives it (null: unknown). */
  address: string | null;
}

/**
 * Decides whether a client gets in, as Postgres does: the first pg_hba rule that matches the
 * connection picks the method (none: FATAL 28000 `no pg_hba.conf entry…`), the method's
 * exchange checks the password against the role's stored secret (read afresh, so a changed
 * password applies to the next login), AuthenticationOk is sent, then the role checks of
 * {@linkcode admitRole}. Unknown roles and roles without a usable secret (none, expired, or one
 * the method cannot use) go through the exchange and fail as a wrong password does.
 *
 * @returns the function that stops counting the session against the connection limits (call
 * it when the session ends), or null when the client went away during the exchange.
 * @throws {PgError} FATAL, why the client is refused.
 */
export async function authenticateClient(
  io: AuthIo,
  client: ClientFacts,
  opts: {
    credentials: (user: string, database: string) => Promise<GetAuthCredentialsResponse>;
    access: GatewayAccess;
  },
): Promise<(() => void) | null> {
  const { user, database } = client;
  const access = opts.access;
  const creds = await opts.credentials(user, database);
  const ip = client.address === null ? null : parseIp(client.address);
  const rule = findRule(access.hba.rules, {
    address: ip,
    tls: client.tls,
    user,
    database,
    memberOf: new Set(creds.memberOf ?? (creds.exists ? [user] : [])),
    localAddresses: access.localAddresses,
  });
  const where = () =>
    `host "${hostText(client.address, ip)}", user "${user}", database "${database}", ${
      client.tls ? "SSL encryption" : "no encryption"
    }`;
  if (!rule) {
    throw fatal(
      SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
      `no pg_hba.conf entry for ${where()}`,
    );
  }
  if (rule.clientCert) {
    // Deno's TLS server asks for a client certificate but does not check it against a CA (any
    // certificate is taken), so none can be trusted here.
    throw new PgError(
      SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
      "connection requires a valid client certificate",
      { severity: "FATAL", detail: "The gateway cannot verify client certificates." },
    );
  }
  // A secret the password methods may use: none for an unknown role or a passed VALID UNTIL.
  const secret = creds.exists && !creds.expired ? creds.verifier : "";
  let ok: boolean | null;
  switch (rule.method) {
    case "trust":
      ok = true;
      break;
    case "reject":
      throw fatal(
        SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        `pg_hba.conf rejects connection for ${where()}`,
      );
    case "password":
      ok = await cleartext(io, user, secret);
      break;
    case "md5":
      // With an md5 secret, an md5 challenge; otherwise SCRAM, as Postgres does (also for an
      // unknown role: its default password_encryption, scram-sha-256, picks the mock exchange).
      ok = isMd5Secret(secret)
        ? await md5(io, secret)
        : await scram(io, user, secret, access.mockSecret);
      break;
    default:
      ok = await scram(io, user, secret, access.mockSecret);
  }
  if (ok === null) return null;
  if (!ok) throw invalidPassword(user);
  const w = new WireWriter(16);
  writeAuthOk(w);
  await io.send(w.view());
  return admitRole(creds, { user, database }, access.counts);
}

function hostText(address: string | null, ip: Uint8Array | null): string {
  if (ip?.length === 4) return ip.join(".");
  return address ?? "[unknown]";
}

function fatal(sqlstate: string, message: string): PgError {
  return new PgError(sqlstate, message, { severity: "FATAL" });
}

/** The `password` method: AuthenticationCleartextPassword, then a check against either form. */
async function cleartext(io: AuthIo, user: string, secret: string): Promise<boolean | null> {
  const w = new WireWriter(16);
  writeAuthCleartext(w);
  await io.send(w.view());
  const password = await readPasswordText(io);
  if (password === null) return null;
  return verifyPlainPassword(secret, user, password);
}

/** The `md5` method with an md5 secret: AuthenticationMD5Password with a fresh random salt. */
async function md5(io: AuthIo, secret: string): Promise<boolean | null> {
  const salt = md5Salt();
  const w = new WireWriter(16);
  writeAuthMd5Password(w, salt);
  await io.send(w.view());
  const answer = await readPasswordText(io);
  if (answer === null) return null;
  return verifyMd5Response(secret, salt, answer);
}

/** A PasswordMessage's text, as Postgres reads it (one string filling the message, not empty). */
async function readPasswordText(io: AuthIo): Promise<string | null> {
  const body = await io.readPassword("password");
  if (body === null) return null;
  const nul = body.indexOf(0);
  if (nul !== body.length - 1) throw protocolViolation("invalid password packet size");
  if (nul === 0) {
    throw new PgError(SqlState.INVALID_PASSWORD, "empty password returned by client", {
      severity: "FATAL",
    });
  }
  return new TextDecoder().decode(body.subarray(0, nul));
}

/**
 * SCRAM-SHA-256 (a mock exchange, failing at its end, when `secret` is not a SCRAM verifier).
 * False for a wrong proof; other failures throw Postgres's error.
 */
async function scram(
  io: AuthIo,
  user: string,
  secret: string,
  mockSecret: Uint8Array | undefined,
): Promise<boolean | null> {
  const server = new ScramServer(parseScramVerifier(secret), { user, mockSecret });
  const w = new WireWriter(128);
  writeAuthSasl(w, ["SCRAM-SHA-256"]);
  await io.send(w.view());
  const first = await io.readPassword("SASL");
  if (first === null) return null;
  const initial = parseSaslInitialResponse(first);
  if (initial.mechanism !== "SCRAM-SHA-256") {
    throw protocolViolation("client selected an invalid SASL authentication mechanism");
  }
  try {
    w.reset();
    writeAuthSaslContinue(w, server.handleClientFirst(initial.data.slice()));
    await io.send(w.view());
    const final = await io.readPassword("SASL");
    if (final === null) return null;
    const answer = server.handleClientFinal(final.slice());
    w.reset();
    writeAuthSaslFinal(w, answer);
    await io.send(w.view());
    return true;
  } catch (e) {
    if (e instanceof ScramError) {
      if (e.kind === "invalid-proof") return false;
      throw new PgError(e.sqlstate, e.message, { severity: "FATAL", detail: e.detail });
    }
    throw e;
  }
}

let fallback: GatewayAccess | undefined;

/** One process-wide access with the default rules, for handlers that bring none (tests). */
export function defaultAccess(): GatewayAccess {
  return fallback ??= gatewayAccess();
}
