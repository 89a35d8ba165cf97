/**
 * {@linkcode PlanCache}: the plans of recent statement texts, so a repeated statement is not
 * parsed again.
 *
 * @module
 */

import type { Plan } from "./types.ts";

/** Options of a {@linkcode PlanCache}. */
export interface PlanCacheOptions {
  /** The most entries kept; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /** Texts longer than this many UTF-16 code units are not cached. Default 65536. */
  maxTextLength?: number;
}

/**
 * A bounded LRU cache of plans keyed by statement text and the layout version the plan was made
 * for (the caller bumps the version whenever the database's tables or tablegroups change). One
 * entry per text: a plan of another version is a miss and is dropped. Plans are shared between
 * callers: treat them as read-only.
 *
 * ```ts
 * const cache = new PlanCache();
 * let plan = cache.get(sql, version);
 * if (plan === undefined) cache.set(sql, version, plan = planQuery(sql, view));
 * ```
 */
export class PlanCache {
  readonly #entries = new Map<string, { version: number; plan: Plan }>();
  readonly #maxEntries: number;
  readonly #maxTextLength: number;

  constructor(options?: PlanCacheOptions) {
    this.#maxEntries = Math.max(1, options?.maxEntries ?? 1000);
    this.#maxTextLength = options?.maxTextLength ?? 65536;
  }

  /** The plan cached for `sql` at layout `version`, or undefined; a hit becomes most recent. */
  get(sql: string, version: number): Plan | undefined {
    const e = this.#entries.get(sql);
    if (e === undefined) return undefined;
    this.#entries.delete(sql);
    if (e.version !== version) return undefined;
    this.#entries.set(sql, e);
    return e.plan;
  }

  /** Caches `plan` for `sql` at layout `version`, evicting the least recently used entry. */
  set(sql: string, version: number, plan: Plan): void {
    if (sql.length > this.#maxTextLength) return;
    this.#entries.delete(sql);
    this.#entries.set(sql, { version, plan });
    if (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** The number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }
}
