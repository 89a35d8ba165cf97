import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { GetAuthCredentialsResponse } from "../../shared/grpc/types.ts";
import type { ConnectionCounts } from "./connection_counts.ts";

/**
 * The checks Postgres makes once a client has authenticated, in its order, each with its
 * SQLSTATE and message: the role exists (28000), may log in (28000), is under its connection
 * limit (53300); then, for a database that exists and accepts connections, the CONNECT
 * privilege (42501) and the database's connection limit (53300). Superusers skip the privilege
 * and both limits, as in Postgres. A database that does not exist or refuses connections
 * (template0) is left to Postgres, which answers when the session opens.
 *
 * On success the session is counted against both limits until the returned function runs.
 *
 * @throws {PgError} FATAL, the first check that fails (the session is then not counted).
 */
export function admitRole(
  creds: GetAuthCredentialsResponse,
  who: { user: string; database: string },
  counts: ConnectionCounts,
): () => void {
  const { user, database } = who;
  if (!creds.exists) {
    throw fatal(SqlState.INVALID_AUTHORIZATION_SPECIFICATION, `role "${user}" does not exist`);
  }
  if (!creds.canLogin) {
    throw fatal(
      SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
      `role "${user}" is not permitted to log in`,
    );
  }
  const superuser = creds.superuser ?? false;
  const roleLimit = creds.roleConnLimit ?? -1;
  const n = counts.addRole(user);
  let countedDb = false;
  try {
    if (!superuser && roleLimit >= 0 && n > roleLimit) {
      throw fatal(SqlState.TOO_MANY_CONNECTIONS, `too many connections for role "${user}"`);
    }
    const dbChecked = creds.databaseExists && creds.databaseAllowsConnections;
    if (dbChecked && !superuser && creds.canConnect === false) {
      throw new PgError(
        SqlState.INSUFFICIENT_PRIVILEGE,
        `permission denied for database "${database}"`,
        { severity: "FATAL", detail: "User does not have CONNECT privilege." },
      );
    }
    const d = counts.addDatabase(database);
    countedDb = true;
    const dbLimit = creds.databaseConnLimit ?? -1;
    if (dbChecked && !superuser && dbLimit >= 0 && d > dbLimit) {
      throw fatal(SqlState.TOO_MANY_CONNECTIONS, `too many connections for database "${database}"`);
    }
  } catch (e) {
    counts.removeRole(user);
    if (countedDb) counts.removeDatabase(database);
    throw e;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    counts.removeRole(user);
    counts.removeDatabase(database);
  };
}

function fatal(sqlstate: string, message: string): PgError {
  return new PgError(sqlstate, message, { severity: "FATAL" });
}
