import { Etcd3, isRecoverableError, type Lease } from "etcd3";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  type IBackoff,
  retry,
} from "cockatiel";
import type { Logger } from "../log/mod.ts";

/** Deadline of one etcd request. Streams (watches, keepalives) have none. */
const CALL_DEADLINE_MS = 3000;

/** Turns `host:port[,host:port]` into etcd3's host list. */
export function etcdHosts(address: string): string[] {
  return address.split(",").map((a) => a.trim()).filter(Boolean).map((a) =>
    a.includes("://") ? a : `http://${a}`
  );
}

/**
 * A connection to one toposerver (an etcd cluster): plain get/put/delete, leased registrations
 * that survive etcd restarts, and prefix watches that resync after reconnects.
 */
export class TopoServer {
  readonly address: string;
  readonly client: Etcd3;
  readonly #logger?: Logger;
  #closed = false;

  constructor(address: string, logger?: Logger) {
    this.address = address;
    this.#logger = logger;
    this.client = new Etcd3({
      hosts: etcdHosts(address),
      dialTimeout: CALL_DEADLINE_MS,
      defaultCallOptions: (ctx) =>
        ctx.isStream ? {} : { deadline: new Date(Date.now() + CALL_DEADLINE_MS) },
      faultHandling: {
        // Open for one second after three failures, so a restarted etcd is used again quickly.
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 1000,
            breaker: new ConsecutiveBreaker(3),
          }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
        // etcd3 calls next() on this itself, so the factory is what it wants despite its typing.
        watchBackoff: new ExponentialBackoff({
          initialDelay: 100,
          maxDelay: 1000,
        }) as unknown as IBackoff<unknown>,
      },
    });
  }

  async get(key: string): Promise<string | null> {
    return await this.client.get(key).string();
  }

  async put(key: string, value: string): Promise<void> {
    await this.client.put(key).value(value);
  }

  /** Writes `value` only if `key` does not exist yet; returns whether it wrote. */
  async create(key: string, value: string): Promise<boolean> {
    const res = await this.client.if(key, "Create", "==", 0).then(
      this.client.put(key).value(value),
    ).commit();
    return res.succeeded;
  }

  async delete(key: string): Promise<void> {
    await this.client.delete().key(key);
  }

  /**
   * Takes the lock `key` (an etcd lease of `ttlSeconds`, kept alive while held), waiting for
   * another holder to release it; resolves to the release function.
   */
  async lock(key: string, ttlSeconds: number): Promise<() => Promise<void>> {
    const lock = this.client.lock(key).ttl(ttlSeconds);
    await lock.acquire();
    return async () => {
      await lock.release().catch(() => {}); // unreachable etcd: the lease expires by itself
    };
  }

  /** Every key under a prefix, with its value. */
  async list(prefix: string): Promise<Map<string, string>> {
    const all = await this.client.getAll().prefix(prefix).strings();
    return new Map(Object.entries(all));
  }

  /**
   * Keeps `key` = `value` alive under a lease of `ttlSeconds`: if the process dies, the key
   * disappears by itself once the lease expires. A lease lost while etcd was unreachable is
   * granted anew and the key rewritten.
   */
  register(key: string, value: string, ttlSeconds: number): Registration {
    return new Registration(this, key, value, ttlSeconds, this.#logger);
  }

  /**
   * Calls `onChange` with the full contents of `prefix` now and after every change. After a
   * disconnect the watch reconnects and resyncs; a resync also runs every `resyncMs`.
   */
  watchPrefix(
    prefix: string,
    onChange: (snapshot: Map<string, string>) => void,
    opts: { resyncMs?: number } = {},
  ): PrefixWatch {
    return new PrefixWatch(this, prefix, onChange, opts.resyncMs ?? 5000, this.#logger);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.client.close();
  }
}

/** Retry delays while etcd cannot grant a lease: from the first to the largest. */
const REGRANT_MIN_MS = 250;
const REGRANT_MAX_MS = 5000;

/**
 * A leased key, kept alive until `revoke()`. While etcd is unreachable it retries with a growing
 * delay (logging once per outage), and rewrites the key under a new lease when it comes back.
 */
export class Registration {
  readonly #topo: TopoServer;
  readonly #key: string;
  #value: string;
  readonly #ttl: number;
  readonly #logger?: Logger;
  #lease?: Lease;
  #stopped = false;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  #retryTimer?: ReturnType<typeof setTimeout>;
  #delay = REGRANT_MIN_MS;
  #failing = false;

  constructor(topo: TopoServer, key: string, value: string, ttl: number, logger?: Logger) {
    this.#topo = topo;
    this.#key = key;
    this.#value = value;
    this.#ttl = ttl;
    this.#logger = logger;
    this.#ready = new Promise((r) => (this.#resolveReady = r));
    this.#grant();
  }

  /** Resolves once the key was first written (it never rejects: failures are retried). */
  ready(): Promise<void> {
    return this.#ready;
  }

  async #grant(): Promise<void> {
    if (this.#stopped) return;
    const lease = this.#topo.client.lease(this.#ttl, { autoKeepAlive: true });
    this.#lease = lease;
    lease.on("lost", (err) => {
      if (this.#stopped || lease !== this.#lease) return;
      this.#failed(err);
    });
    try {
      await lease.put(this.#key).value(this.#value);
    } catch (e) {
      if (lease === this.#lease) this.#failed(e);
      return;
    }
    if (this.#failing) this.#logger?.info("topo registration restored", { key: this.#key });
    this.#failing = false;
    this.#delay = REGRANT_MIN_MS;
    this.#resolveReady();
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    if (!this.#failing) {
      this.#logger?.warn("topo registration lost; retrying", { key: this.#key, error: err });
      this.#failing = true;
    }
    const lease = this.#lease;
    this.#lease = undefined;
    lease?.release();
    if (this.#retryTimer !== undefined) return;
    const delay = this.#delay;
    this.#delay = Math.min(this.#delay * 2, REGRANT_MAX_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#grant();
    }, delay);
  }

  /** Rewrites the value under the current lease (or with the next grant). */
  async update(value: string): Promise<void> {
    this.#value = value;
    const lease = this.#lease;
    if (!lease || this.#stopped) return;
    try {
      await lease.put(this.#key).value(value);
    } catch (e) {
      this.#logger?.debug("topo registration update failed; the next grant writes it", {
        key: this.#key,
        error: e,
      });
    }
  }

  /** Deletes the key and stops keeping the lease alive. */
  async revoke(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    try {
      await this.#lease?.revoke();
    } catch {
      // etcd unreachable: the lease expires by itself.
      this.#lease?.release();
    }
  }
}

/** A watch over a prefix that always hands out the complete current contents. */
export class PrefixWatch {
  readonly #topo: TopoServer;
  readonly #prefix: string;
  readonly #onChange: (snapshot: Map<string, string>) => void;
  readonly #logger?: Logger;
  #stopped = false;
  #timer?: ReturnType<typeof setInterval>;
  #watcher?: { cancel(): Promise<void> };
  #syncing = false;
  #again = false;
  #last = "";

  constructor(
    topo: TopoServer,
    prefix: string,
    onChange: (snapshot: Map<string, string>) => void,
    resyncMs: number,
    logger?: Logger,
  ) {
    this.#topo = topo;
    this.#prefix = prefix;
    this.#onChange = onChange;
    this.#logger = logger;
    this.#start();
    this.#timer = setInterval(() => this.#sync(), resyncMs);
  }

  async #start(): Promise<void> {
    try {
      const w = await this.#topo.client.watch().prefix(this.#prefix).create();
      if (this.#stopped) {
        await w.cancel();
        return;
      }
      this.#watcher = w;
      w.on("put", () => this.#sync());
      w.on("delete", () => this.#sync());
      w.on("connected", () => this.#sync());
      w.on("error", (e) => this.#logger?.debug("topo watch error", { error: e }));
    } catch (e) {
      this.#logger?.debug("topo watch failed; resync timer keeps the view fresh", { error: e });
    }
    this.#sync();
  }

  async #sync(): Promise<void> {
    if (this.#stopped) return;
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    this.#syncing = true;
    try {
      do {
        this.#again = false;
        const snapshot = await this.#topo.list(this.#prefix);
        if (this.#stopped) return;
        const key = JSON.stringify([...snapshot].sort());
        if (key !== this.#last) {
          this.#last = key;
          this.#onChange(snapshot);
        }
      } while (this.#again);
    } catch (e) {
      this.#logger?.debug("topo resync failed; keeping the last view", { error: e });
    } finally {
      this.#syncing = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#watcher?.cancel().catch(() => {});
  }
}
