import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { TxStatus } from "../../shared/wire/mod.ts";
import type { Logger } from "../../shared/log/mod.ts";
import { BackendConn, type PgAddress } from "../backend/backend_conn.ts";

interface Waiter {
  key: string;
  user: string;
  database: string;
  params: Record<string, string>;
  resolve: (c: BackendConn) => void;
  reject: (e: unknown) => void;
  /** When the waiter gives up (Date.now() scale). */
  deadline: number;
}

export interface PoolOptions {
  address: PgAddress;
  /** Most backend connections open at once, over every user and database. */
  capacity: number;
  /** Idle backends older than this are closed. */
  idleTimeoutMs?: number;
  /** How long a session waits for a backend before it gets an error. */
  acquireTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Per-(user, database) pools of backend connections under one global capacity. Connections
 * authenticate to Postgres as the real user. When the capacity is used up, an idle connection of
 * another pool is closed to make room, so a busy user cannot starve the others; otherwise callers
 * queue in arrival order.
 */
export class Pool {
  #opts: Required<Omit<PoolOptions, "logger">> & { logger?: Logger };
  readonly #idle = new Map<string, BackendConn[]>();
  readonly #waiters: Waiter[] = [];
  #open = 0;
  #inUse = 0;
  #closed = false;
  readonly #reaper: ReturnType<typeof setInterval>;
  /** Expires waiters: one timer for all of them, not one per wait (waits are frequent). */
  readonly #expiry: ReturnType<typeof setInterval>;

  constructor(opts: PoolOptions) {
    this.#opts = {
      idleTimeoutMs: 60_000,
      acquireTimeoutMs: 30_000,
      ...opts,
    };
    this.#reaper = setInterval(() => this.#reapIdle(), 5_000);
    this.#expiry = setInterval(() => this.#expireWaiters(), WAITER_SWEEP_MS);
  }

  /** Points new connections at another address (Postgres restarted elsewhere). */
  setAddress(address: PgAddress): void {
    this.#opts = { ...this.#opts, address };
  }

  get stats(): { open: number; inUse: number; idle: number; waiting: number } {
    return {
      open: this.#open,
      inUse: this.#inUse,
      idle: this.#open - this.#inUse,
      waiting: this.#waiters.length,
    };
  }

  /**
   * An idle connection of pool `key` (see {@linkcode poolKey}) that is fit to hand out as it is,
   * or null: the synchronous fast path of {@linkcode acquire}, taken between transactions.
   */
  takeIdle(key: string): BackendConn | null {
    if (this.#closed) return null;
    const idle = this.#idle.get(key);
    if (!idle) return null;
    const now = Date.now();
    while (idle.length) {
      const c = idle[idle.length - 1];
      if (!c.broken && now - c.idleSince > PROBE_IDLE_MS) return null; // acquire() probes it
      idle.pop();
      this.#inUse++;
      if (c.broken) {
        this.discard(c);
        continue;
      }
      return c;
    }
    return null;
  }

  /**
   * A connection for `user` on `database`, opened with the client's startup `params` (so they are
   * the connection's own defaults, as in Postgres: RESET returns to them): an idle one of the
   * same kind, a new one, or the next one released.
   */
  async acquire(
    user: string,
    database: string,
    params: Record<string, string> = {},
    key: string = poolKey(user, database, params),
  ): Promise<BackendConn> {
    if (this.#closed) throw new PgError(SqlState.ADMIN_SHUTDOWN, "pooler is shutting down");
    const idle = this.#idle.get(key);
    while (idle && idle.length) {
      const c = idle.pop()!;
      this.#inUse++;
      // Nothing reads an idle backend: one that sat a while may have been terminated
      // (pg_terminate_backend, idle_session_timeout, a restart). Check before handing it out.
      if (!c.broken && Date.now() - c.idleSince > PROBE_IDLE_MS) {
        await c.query("").catch(() => c.close());
      }
      if (c.broken) {
        this.discard(c);
        continue;
      }
      return c;
    }
    if (this.#open >= this.#opts.capacity) this.#evictOneIdle();
    if (this.#open < this.#opts.capacity) return await this.#openNew(user, database, params);
    return await new Promise<BackendConn>((resolve, reject) => {
      const deadline = Date.now() + this.#opts.acquireTimeoutMs;
      this.#waiters.push({ key, user, database, params, resolve, reject, deadline });
    });
  }

  #expireWaiters(): void {
    if (!this.#waiters.length) return;
    const now = Date.now();
    for (let i = 0; i < this.#waiters.length;) {
      const w = this.#waiters[i];
      if (w.deadline > now) {
        i++;
        continue;
      }
      this.#waiters.splice(i, 1);
      w.reject(
        new PgError(
          SqlState.TOO_MANY_CONNECTIONS,
          "no backend connection became available in time",
          {
            hint: "Raise the pooler's --pool-capacity or Postgres's max_connections.",
          },
        ),
      );
    }
  }

  async #openNew(
    user: string,
    database: string,
    params: Record<string, string>,
  ): Promise<BackendConn> {
    this.#open++;
    this.#inUse++;
    try {
      const conn = await BackendConn.connect({
        address: this.#opts.address,
        user,
        database,
        params,
      });
      conn.poolKey = poolKey(user, database, params);
      return conn;
    } catch (e) {
      this.#open--;
      this.#inUse--;
      this.#serveWaiters();
      throw e;
    }
  }

  /**
   * Gives a connection back. It is cleaned first (ROLLBACK if a transaction is open, then
   * DISCARD ALL) so the next user sees a fresh session, unless `clean` says it is already fit to
   * share (transaction pooling between transactions: the next session replays its own settings).
   * A connection that cannot be cleaned is closed.
   */
  async release(
    conn: BackendConn,
    opts: { clean?: boolean; retire?: boolean } = {},
  ): Promise<void> {
    this.#inUse--;
    if (opts.retire && !conn.broken) conn.close(); // closed, not shared (see below)
    // Something arrived after the last ReadyForQuery (a notice, say): it is the previous
    // session's, so the connection gets the full reset, which also checks nothing is left.
    const clean = opts.clean && conn.unread === 0;
    if (!conn.broken && !this.#closed && !clean) {
      try {
        if (conn.txStatus !== TxStatus.Idle) await conn.query("ROLLBACK");
        conn.settingsKey = "";
        await conn.query("DISCARD ALL");
        conn.statements.clear();
        // Anything still unread belongs to the previous user: never hand it to the next one.
        if (conn.unread > 0) throw new Error(`${conn.unread} unread bytes after reset`);
        conn.shrink();
      } catch (e) {
        this.#opts.logger?.debug("backend reset failed; closing it", { error: e });
        conn.close();
      }
    }
    if (conn.broken || this.#closed) {
      conn.close();
      this.#open--;
      this.#serveWaiters();
      return;
    }
    // Hand it straight to a waiter for the same pool, if any.
    const key = conn.poolKey;
    const i = this.#waiters.findIndex((w) => w.key === key);
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      this.#inUse++;
      w.resolve(conn);
      return;
    }
    conn.idleSince = Date.now();
    const list = this.#idle.get(key) ?? [];
    list.push(conn);
    this.#idle.set(key, list);
    if (this.#waiters.length) {
      // Someone waits for another pool: trade this idle connection for a new one of theirs.
      this.#serveWaiters();
    }
  }

  /** Closes a connection that must not be reused (e.g. lost mid-query). */
  discard(conn: BackendConn): void {
    this.#inUse--;
    this.#open--;
    conn.close();
    this.#serveWaiters();
  }

  #serveWaiters(): void {
    while (this.#waiters.length) {
      if (this.#open >= this.#opts.capacity && !this.#evictOneIdle()) return;
      const w = this.#waiters.shift()!;
      this.#openNew(w.user, w.database, w.params).then(w.resolve, w.reject);
    }
  }

  /** Closes the longest-idle connection of any pool; false when none is idle. */
  #evictOneIdle(): boolean {
    let oldest: { key: string; conn: BackendConn } | undefined;
    for (const [key, list] of this.#idle) {
      const c = list[0];
      if (c && (!oldest || c.idleSince < oldest.conn.idleSince)) oldest = { key, conn: c };
    }
    if (!oldest) return false;
    this.#idle.get(oldest.key)!.shift();
    oldest.conn.close();
    this.#open--;
    return true;
  }

  #reapIdle(): void {
    const cutoff = Date.now() - this.#opts.idleTimeoutMs;
    for (const [key, list] of this.#idle) {
      const keep = list.filter((c) => {
        if (c.broken || c.idleSince < cutoff) {
          c.close();
          this.#open--;
          return false;
        }
        return true;
      });
      if (keep.length) this.#idle.set(key, keep);
      else this.#idle.delete(key);
    }
  }

  /** Closes every idle connection (used when Postgres restarted under us). */
  closeIdle(): void {
    for (const list of this.#idle.values()) {
      for (const c of list) {
        c.close();
        this.#open--;
      }
    }
    this.#idle.clear();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#reaper);
    clearInterval(this.#expiry);
    this.closeIdle();
    for (const w of this.#waiters.splice(0)) {
      w.reject(new PgError(SqlState.ADMIN_SHUTDOWN, "pooler is shutting down"));
    }
  }
}

/** An idle backend older than this is probed before reuse. */
const PROBE_IDLE_MS = 5_000;
/** How often waiters past their deadline are failed. */
const WAITER_SWEEP_MS = 250;

/** Which pool a connection belongs to: user, database and the startup parameters it was opened with. */
export function poolKey(user: string, database: string, params: Record<string, string>): string {
  const sorted = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join("\u0000");
  return `${user}\u0000${database}\u0000${sorted}`;
}
