/**
 * Clients that keep writing through the gateway and remember every commit the server
 * acknowledged, for failover tests and the failover benchmark: afterwards, every acknowledged
 * row must be there. Bounded in time and in rows.
 */
import pg from "pg";

export interface WriterOptions {
  port: number;
  password: string;
  /** Concurrent clients, each on its own connection. */
  clients: number;
  /** Client numbers start here (so that several runs can share a table). */
  firstClient?: number;
  /** Table with columns (client int, seq int); created by the caller. */
  table: string;
  /** Hard bounds: the writers stop after this long or this many rows, whichever comes first. */
  maxMs?: number;
  maxRows?: number;
}

export interface WriterError {
  at: number;
  client: number;
  code: string;
  message: string;
}

export interface WriteReport {
  /** "client:seq" of every acknowledged insert. */
  acked: Set<string>;
  /** When each acknowledged insert was sent and when it was acknowledged. */
  ackTimes: { sent: number; acked: number }[];
  errors: WriterError[];
}

export class Writers {
  readonly #opts: Required<WriterOptions>;
  readonly #report: WriteReport = { acked: new Set(), ackTimes: [], errors: [] };
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(opts: WriterOptions) {
    this.#opts = { maxMs: 120_000, maxRows: 1_000_000, firstClient: 0, ...opts };
  }

  start(): this {
    const until = Date.now() + this.#opts.maxMs;
    for (let i = 0; i < this.#opts.clients; i++) {
      this.#loops.push(this.#loop(this.#opts.firstClient + i, until));
    }
    return this;
  }

  get report(): WriteReport {
    return this.#report;
  }

  /** When the first insert sent after `t` (ms since the epoch) was acknowledged, or null. */
  firstAckAfter(t: number): number | null {
    let best: number | null = null;
    for (const a of this.#report.ackTimes) {
      if (a.sent > t && (best === null || a.acked < best)) best = a.acked;
    }
    return best;
  }

  /**
   * When writes worked again after a disruption at `t`: the acknowledgement of the first write
   * sent after both `t` and the first error after `t` (writes already under way at `t` may still
   * be acknowledged by the old primary, which says nothing about the new one). Null if none yet.
   */
  healedAfter(t: number): number | null {
    const firstError = this.#report.errors.find((e) => e.at >= t)?.at ?? t;
    return this.firstAckAfter(Math.max(t, firstError));
  }

  async stop(): Promise<WriteReport> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    return this.#report;
  }

  async #loop(client: number, until: number): Promise<void> {
    let seq = 0;
    let conn: pg.Client | null = null;
    while (!this.#stopped && Date.now() < until && this.#report.acked.size < this.#opts.maxRows) {
      try {
        if (!conn) {
          conn = new pg.Client({
            host: "127.0.0.1",
            port: this.#opts.port,
            user: "postgres",
            password: this.#opts.password,
            database: "postgres",
          });
          conn.on("error", () => {}); // reported by the query that fails
          await conn.connect();
        }
        const n = ++seq;
        const sent = Date.now();
        await conn.query(`INSERT INTO ${this.#opts.table} (client, seq) VALUES ($1, $2)`, [
          client,
          n,
        ]);
        this.#report.acked.add(`${client}:${n}`);
        this.#report.ackTimes.push({ sent, acked: Date.now() });
      } catch (e) {
        const err = e as Error & { code?: string };
        this.#report.errors.push({
          at: Date.now(),
          client,
          code: err.code ?? "",
          message: err.message,
        });
        await conn?.end().catch(() => {});
        conn = null;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await conn?.end().catch(() => {});
  }
}

/** The acknowledged rows missing from `present` ("client:seq" strings). */
export function missing(acked: Set<string>, present: Iterable<string>): string[] {
  const have = new Set(present);
  return [...acked].filter((k) => !have.has(k));
}
