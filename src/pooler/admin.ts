import type { Logger } from "../shared/log/mod.ts";
import { BackendConn, type PgAddress, type QueryResult } from "./backend/backend_conn.ts";

/**
 * The pooler's own superuser connection for control work (metadata, credentials, health). Queries
 * run one at a time; a broken connection is replaced on the next call.
 */
export class AdminConn {
  readonly #address: () => PgAddress;
  readonly #user: string;
  readonly #database: string;
  readonly #logger?: Logger;
  #conn?: BackendConn;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(opts: { address: () => PgAddress; user: string; database: string; logger?: Logger }) {
    this.#address = opts.address;
    this.#user = opts.user;
    this.#database = opts.database;
    this.#logger = opts.logger;
  }

  /** Runs `sql` (one or more statements) and returns the last result. */
  query(sql: string): Promise<QueryResult> {
    const run = this.#tail.then(() => this.#query(sql));
    this.#tail = run.catch(() => {});
    return run;
  }

  async #query(sql: string): Promise<QueryResult> {
    const reused = !!this.#conn && !this.#conn.broken;
    try {
      return await this.#run(sql);
    } catch (e) {
      // A connection that went stale while idle (Postgres restarted, rewound, promoted) fails
      // its next query: that one is tried once more on a new connection.
      if (!reused || !this.#conn?.broken) throw e;
      this.#logger?.debug("admin connection was stale; reconnecting", { error: e });
      return await this.#run(sql);
    }
  }

  async #run(sql: string): Promise<QueryResult> {
    if (!this.#conn || this.#conn.broken) {
      this.#conn = await BackendConn.connect({
        address: this.#address(),
        user: this.#user,
        database: this.#database,
        // Our SQL quotes literals the standard way: make sure the server reads them so.
        params: { application_name: "multipooler", standard_conforming_strings: "on" },
      });
      this.#logger?.debug("admin connection opened");
    }
    return await this.#conn.query(sql);
  }

  close(): void {
    this.#conn?.close();
    this.#conn = undefined;
  }
}
