import { dirname } from "node:path";

/**
 * The highest term this pooler has promised to an orch: once promised, requests under a lower
 * term are refused, across restarts too. The promise is on disk (written to a new file, synced,
 * then renamed over the old one) before the promise is answered. Without a path (tests) it is
 * kept in memory only.
 */
export class TermStore {
  readonly #path: string;
  #term = 0;

  private constructor(path: string) {
    this.#path = path;
  }

  static async open(path: string): Promise<TermStore> {
    const store = new TermStore(path);
    if (path) {
      try {
        const saved = JSON.parse(await Deno.readTextFile(path));
        store.#term = Number(saved.term) || 0;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          throw new Error(`Cannot read the promised term from ${path}: ${(e as Error).message}`);
        }
      }
    }
    return store;
  }

  get term(): number {
    return this.#term;
  }

  /** Records `term` as promised (a no-op unless it is higher than the current promise). */
  async promise(term: number): Promise<void> {
    if (term <= this.#term) return;
    if (this.#path) {
      await Deno.mkdir(dirname(this.#path), { recursive: true });
      const tmp = `${this.#path}.tmp`;
      const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        await f.write(new TextEncoder().encode(JSON.stringify({ term }) + "\n"));
        await f.sync();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, this.#path);
    }
    this.#term = term;
  }
}
