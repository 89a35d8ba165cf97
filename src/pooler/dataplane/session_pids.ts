/**
 * Which backend serves which client session now, for the whole pooler (every data-plane
 * stream): what the rewrite of the pid functions reads (pid_functions.ts), and how a session
 * without a backend is given one so that pg_terminate_backend or pg_cancel_backend can reach it.
 *
 * @module
 */
import type { PidMap } from "./pid_functions.ts";

/** How many backends' last sessions are remembered for notifications. */
const REMEMBERED_BACKENDS = 4096;

export class SessionPids {
  readonly #backends = new Map<number, number>();
  /** Backend pid → the session it served last (for notifications sent after it moved on). */
  readonly #lastSession = new Map<number, number>();
  readonly #attachers = new Map<number, { user: string; attach: () => Promise<void> }>();

  /** Session pid → pid of the backend serving the session now. */
  get map(): PidMap {
    return this.#backends;
  }

  /** The session `pid` has the backend `backendPid` now. */
  attached(pid: number, backendPid: number): void {
    this.#backends.set(pid, backendPid);
    this.#lastSession.delete(backendPid);
    this.#lastSession.set(backendPid, pid);
    if (this.#lastSession.size > REMEMBERED_BACKENDS) {
      this.#lastSession.delete(this.#lastSession.keys().next().value!);
    }
  }

  /**
   * The session a backend serves, or served last (a NOTIFY is delivered after its transaction
   * committed, when the backend may have gone back to the pool); undefined for one that served
   * none.
   */
  sessionOf(backendPid: number): number | undefined {
    return this.#lastSession.get(backendPid);
  }

  /** The session `pid` no longer has the backend `backendPid`. */
  detached(pid: number, backendPid: number): void {
    if (this.#backends.get(pid) === backendPid) this.#backends.delete(pid);
  }

  /**
   * The session `pid` is open here; `attach` gives it a backend when it has none (transaction
   * pooling). Returns what ends the registration.
   */
  opened(pid: number, user: string, attach: () => Promise<void>): () => void {
    const entry = { user, attach };
    this.#attachers.set(pid, entry);
    return () => {
      if (this.#attachers.get(pid) === entry) this.#attachers.delete(pid);
    };
  }

  /**
   * Gives each of the sessions `pids` that is open here a backend, if it has none, so that a
   * signal sent to its pid reaches it (Postgres signals an idle session too). Only for a signal
   * Postgres would allow in the simplest cases, checked here before anything is taken: from a
   * superuser, or to a session of the same role (otherwise anyone could make every idle session
   * hold a backend); other sessions without a backend stay unmapped, and Postgres answers that
   * no such backend exists. Errors are the target's own: it stays unmapped.
   */
  async reach(pids: Iterable<number>, from: { user: string; superuser: boolean }): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const pid of pids) {
      const target = this.#attachers.get(pid);
      if (!target || this.#backends.has(pid)) continue;
      if (!from.superuser && target.user !== from.user) continue;
      waits.push(target.attach());
    }
    await Promise.all(waits);
  }
}
