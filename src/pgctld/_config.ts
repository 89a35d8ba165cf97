/**
 * The files pgctld writes into a data directory, and where Postgres is installed.
 *
 * @module
 */

/** Oldest Postgres major version Multigres supports. */
export const MIN_PG_MAJOR = 15;

/** Name of the settings file pgctld owns, included from `postgresql.conf`. */
export const MULTIGRES_CONF = "multigres.conf";

const PG_ROOT = "/usr/lib/postgresql";

/**
 * Finds the directory holding the Postgres server binaries: `PG_BIN_DIR` when set, otherwise the
 * newest `/usr/lib/postgresql/<N>/bin` with N ≥ 15 that contains `postgres`.
 *
 * @throws when `PG_BIN_DIR` has no `postgres` binary or no supported version is installed.
 */
export function findPgBinDir(): string {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("PG_BIN_DIR");
  } catch {
    fromEnv = undefined; // no env permission: fall back to the usual place
  }
  if (fromEnv) {
    if (!isFile(`${fromEnv}/postgres`)) {
      throw new Error(`PG_BIN_DIR has no postgres binary: ${fromEnv}`);
    }
    return fromEnv;
  }
  let best = -1;
  try {
    for (const entry of Deno.readDirSync(PG_ROOT)) {
      if (!/^\d+$/.test(entry.name)) continue;
      const major = Number(entry.name);
      if (major >= MIN_PG_MAJOR && major > best && isFile(`${PG_ROOT}/${major}/bin/postgres`)) {
        best = major;
      }
    }
  } catch {
    best = -1;
  }
  if (best < 0) {
    throw new Error("PostgreSQL 15+ is not installed: run apt-get install -y postgresql-15");
  }
  return `${PG_ROOT}/${best}/bin`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Quotes a string for postgresql.conf. */
export function confString(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** The line appended to `postgresql.conf` so that `multigres.conf` overrides its defaults. */
export function includeLine(): string {
  return [
    "",
    "# Written by pgctld: Multigres settings live in multigres.conf, which pgctld owns.",
    `include_if_exists = ${confString(MULTIGRES_CONF)}`,
    "",
  ].join("\n");
}

/** The contents of `multigres.conf`. */
export function renderMultigresConf(s: {
  listenAddress: string;
  port: number;
  socketDir: string;
}): string {
  return [
    "# Written by pgctld: Multigres settings for this instance. pgctld may rewrite this file;",
    "# put local changes in postgresql.auto.conf (ALTER SYSTEM) instead.",
    "",
    "# Connections: TCP on one address, plus a private unix socket for the pooler.",
    `listen_addresses = ${confString(s.listenAddress)}`,
    `port = ${s.port}`,
    `unix_socket_directories = ${confString(s.socketDir)}`,
    "unix_socket_permissions = 0700",
    "max_connections = 200",
    "# Two-phase commit (PREPARE TRANSACTION): one prepared transaction per connection, as",
    "# Postgres's documentation advises; the gateway's cross-shard commits use them too.",
    "max_prepared_transactions = 200",
    "",
    "# Replication: streaming replicas, hot standby reads, and pg_rewind of a former primary.",
    "wal_level = replica",
    "max_wal_senders = 10",
    "hot_standby = on",
    "wal_log_hints = on",
    "# WAL kept for replicas that fall behind or are down for a while (no replication slots yet).",
    "wal_keep_size = 512MB",
    "# A standby replays in-place tablespaces (LOCATION '', which Postgres's own regression",
    "# suite creates) only with this on; without it, recovery PANICs on them.",
    "allow_in_place_tablespaces = on",
    "# A standby pointed at a new primary (failover) connects again within half a second.",
    "wal_retrieve_retry_interval = 500ms",
    "",
    "# Logging: stderr, which pgctld appends to postgres.log beside the data directory.",
    "logging_collector = off",
    "log_destination = 'stderr'",
    "",
    "# Memory.",
    "shared_buffers = 128MB",
    "",
  ].join("\n");
}

/** The contents of `pg_hba.conf`. */
export function renderPgHba(): string {
  return [
    "# Written by pgctld: client authentication for a Multigres instance.",
    "#",
    "# The unix socket directory is mode 0700 and reachable only by Postgres and the pooler that",
    "# runs beside it, so local connections are trusted. TCP needs SCRAM-SHA-256.",
    "# TYPE  DATABASE     USER  ADDRESS       METHOD",
    "local   all          all                 trust",
    "local   replication  all                 trust",
    "host    all          all   127.0.0.1/32  scram-sha-256",
    "host    all          all   ::1/128       scram-sha-256",
    "host    replication  all   127.0.0.1/32  scram-sha-256",
    "",
  ].join("\n");
}
