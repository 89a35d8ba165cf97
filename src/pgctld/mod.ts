/**
 * pgctld's domain code: it initialises, starts, stops, reloads and watches one PostgreSQL
 * instance, running it as a non-root OS user (`postgres`) when pgctld runs as root.
 *
 * ```ts
 * import { PostgresInstance } from "./mod.ts";
 *
 * const pg = new PostgresInstance({ dataDir: "/var/lib/multigres/pg1/data", port: 25432 });
 * await pg.initDataDir(); // false when the data directory already holds a cluster
 * const pid = await pg.start();
 * console.log(await pg.status()); // { state: "RUNNING", pid, version: "15.18", … }
 * await pg.stop("fast");
 * ```
 *
 * Layout beside the data directory: `../sock` (unix socket, mode 0700) and `../postgres.log`.
 * initdb writes `pg_hba.conf` (trust on the socket, SCRAM-SHA-256 on TCP) and `multigres.conf`
 * (included from `postgresql.conf`). The postmaster runs in its own session and outlives
 * pgctld; a new {@linkcode PostgresInstance} adopts it through `postmaster.pid`.
 *
 * @module
 */

export {
  type PgctldLogger,
  PostgresInstance,
  type PostgresInstanceOptions,
  type PostgresState,
  type PostgresStatus,
  type StartOptions,
  type StopMode,
} from "./instance.ts";
export { findPgBinDir } from "./_config.ts";
