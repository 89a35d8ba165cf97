/**
 * Client sessions of this gateway per role and per database, for the connection limits
 * (`CONNECTION LIMIT` of a role and of a database). Only this gateway's sessions count: with
 * several gateways each enforces the limit on its own.
 */
export class ConnectionCounts {
  readonly #roles = new Map<string, number>();
  readonly #databases = new Map<string, number>();

  /** Counts one more session of `role` (the new one included, as Postgres counts). */
  addRole(role: string): number {
    return add(this.#roles, role);
  }

  /** Counts one more session on `database`. */
  addDatabase(database: string): number {
    return add(this.#databases, database);
  }

  removeRole(role: string): void {
    remove(this.#roles, role);
  }

  removeDatabase(database: string): void {
    remove(this.#databases, database);
  }

  /** Sessions of `role` now. */
  role(role: string): number {
    return this.#roles.get(role) ?? 0;
  }

  /** Sessions on `database` now. */
  database(database: string): number {
    return this.#databases.get(database) ?? 0;
  }
}

function add(m: Map<string, number>, key: string): number {
  const n = (m.get(key) ?? 0) + 1;
  m.set(key, n);
  return n;
}

function remove(m: Map<string, number>, key: string): void {
  const n = (m.get(key) ?? 0) - 1;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}
