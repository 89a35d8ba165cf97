import type { Logger } from "../log/mod.ts";
import type {
  CellRecord,
  DatabaseRecord,
  GatewayRecord,
  OrchRecord,
  PoolerRecord,
} from "../grpc/types.ts";
import { TopoPaths } from "./paths.ts";
import { decodeRecord, encodeRecord, type RecordType } from "./records.ts";
import { type PrefixWatch, type Registration, TopoServer } from "./topo_server.ts";

/** TTL of component registrations: a dead process disappears within this many seconds. */
export const REGISTRATION_TTL_SECONDS = 5;

/**
 * A component's view of the topology: the global toposerver (cells, databases) and its own cell's
 * local toposerver (registrations). The local one is found through the cell's global record once,
 * at connect time, so a cell cut off from the global topo keeps serving.
 */
export class Topo {
  readonly paths: TopoPaths;
  readonly cell: string;
  readonly global: TopoServer;
  readonly local: TopoServer;
  readonly #logger?: Logger;
  /** Other cells' local toposervers, by address. */
  readonly #others = new Map<string, TopoServer>();

  private constructor(
    paths: TopoPaths,
    cell: string,
    global: TopoServer,
    local: TopoServer,
    logger?: Logger,
  ) {
    this.paths = paths;
    this.cell = cell;
    this.global = global;
    this.local = local;
    this.#logger = logger;
  }

  /**
   * Connects to the global topo and, through the cell's record, to the cell's local topo.
   * Waits up to `waitMs` for the cell record to appear (the provisioner writes it).
   */
  static async connect(opts: {
    globalAddress: string;
    cluster: string;
    cell: string;
    logger?: Logger;
    waitMs?: number;
  }): Promise<Topo> {
    const paths = new TopoPaths(opts.cluster);
    const global = new TopoServer(opts.globalAddress, opts.logger);
    const deadline = Date.now() + (opts.waitMs ?? 30_000);
    let cell: CellRecord | null = null;
    let lastError = "";
    for (;;) {
      try {
        cell = await readRecord<CellRecord>(global, "Cell", paths.cell(opts.cell));
        if (cell) break;
        lastError = `cell ${opts.cell} is not registered in the global topo`;
      } catch (e) {
        lastError = (e as Error).message;
      }
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    if (!cell) {
      global.close();
      throw new Error(
        `Cannot find cell ${opts.cell} of cluster ${opts.cluster} in the global topo at ${opts.globalAddress}: ${lastError}`,
      );
    }
    const local = cell.localTopoAddress && cell.localTopoAddress !== opts.globalAddress
      ? new TopoServer(cell.localTopoAddress, opts.logger)
      : global;
    return new Topo(paths, opts.cell, global, local, opts.logger);
  }

  // ---- global records ----

  async putCell(cell: CellRecord): Promise<void> {
    await this.global.put(this.paths.cell(cell.name), encodeRecord("Cell", cell));
    await this.global.put(this.paths.cellLocalTopo(cell.name), cell.localTopoAddress);
  }

  async getDatabase(name: string): Promise<DatabaseRecord | null> {
    return await readRecord(this.global, "Database", this.paths.database(name));
  }

  async putDatabase(db: DatabaseRecord): Promise<void> {
    await this.global.put(this.paths.database(db.name), encodeRecord("Database", db));
  }

  /**
   * The cluster's secret `name` (32 random bytes), made by whichever component asks first:
   * every component of the cluster gets the same bytes.
   */
  async clusterSecret(name: string): Promise<Uint8Array> {
    const key = this.paths.clusterSecret(name);
    let value = await this.global.get(key);
    if (value === null) {
      const fresh = crypto.getRandomValues(new Uint8Array(32));
      await this.global.create(key, btoa(String.fromCharCode(...fresh)));
      value = await this.global.get(key);
    }
    if (value === null) throw new Error(`The cluster secret ${name} could not be stored`);
    return Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0));
  }

  async listDatabases(): Promise<DatabaseRecord[]> {
    const all = await this.global.list(this.paths.databasesPrefix);
    return [...all.values()].map((v) => decodeRecord<DatabaseRecord>("Database", v));
  }

  // ---- local registrations ----

  registerPooler(rec: PoolerRecord): Registration {
    return this.local.register(
      this.paths.pooler(rec.cell, rec.id),
      encodeRecord("Pooler", rec),
      REGISTRATION_TTL_SECONDS,
    );
  }

  registerGateway(rec: GatewayRecord): Registration {
    return this.local.register(
      this.paths.gateway(rec.cell, rec.id),
      encodeRecord("Gateway", rec),
      REGISTRATION_TTL_SECONDS,
    );
  }

  registerOrch(rec: OrchRecord): Registration {
    return this.local.register(
      this.paths.orch(rec.cell, rec.id),
      encodeRecord("Orch", rec),
      REGISTRATION_TTL_SECONDS,
    );
  }

  async listPoolers(): Promise<PoolerRecord[]> {
    return decodeAll(await this.local.list(this.paths.poolersPrefix(this.cell)), "Pooler");
  }

  /**
   * Every pooler of every cell: each cell's registrations, read from that cell's local topo (the
   * same server when it is the global one). For finding a shard's members across cells.
   */
  async listAllPoolers(): Promise<PoolerRecord[]> {
    const keys = await this.global.list(this.paths.globalRoot);
    const out: PoolerRecord[] = [];
    for (const cell of this.paths.cellsFromKeys(keys.keys())) {
      const json = keys.get(this.paths.cell(cell));
      if (!json) continue;
      const rec = decodeRecord<CellRecord>("Cell", json);
      const addr = rec.localTopoAddress;
      const server = cell === this.cell
        ? this.local
        : !addr || addr === this.global.address
        ? this.global
        : this.#otherCell(addr);
      out.push(
        ...decodeAll<PoolerRecord>(await server.list(this.paths.poolersPrefix(cell)), "Pooler"),
      );
    }
    return out;
  }

  /** A client for another cell's local topo, kept for the next call. */
  #otherCell(address: string): TopoServer {
    let server = this.#others.get(address);
    if (!server) this.#others.set(address, server = new TopoServer(address, this.#logger));
    return server;
  }

  async listGateways(): Promise<GatewayRecord[]> {
    return decodeAll(await this.local.list(this.paths.gatewaysPrefix(this.cell)), "Gateway");
  }

  /** The orchs registered in `cell` (this one by default), read from this cell's local topo. */
  async listOrchs(cell = this.cell): Promise<OrchRecord[]> {
    return decodeAll(await this.local.list(this.paths.orchsPrefix(cell)), "Orch");
  }

  /**
   * Calls `onChange` with every pooler of every cell (listAllPoolers), now and after each change
   * seen by polling every `pollMs`. While the topo is unreachable the last view stands.
   */
  pollAllPoolers(
    onChange: (poolers: PoolerRecord[]) => void,
    pollMs = 500,
  ): { stop: () => void } {
    let last = "";
    let stopped = false;
    let failing = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const all = await this.listAllPoolers();
        all.sort((a, b) => a.cell.localeCompare(b.cell) || a.id.localeCompare(b.id));
        failing = false;
        const json = JSON.stringify(all);
        if (json !== last && !stopped) {
          last = json;
          onChange(all);
        }
      } catch (e) {
        if (!failing) this.#logger?.warn("cannot list the poolers of every cell", { error: e });
        failing = true;
      }
      if (!stopped) timer = setTimeout(tick, pollMs);
    };
    tick();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  /** Takes the lock on a shard (see TopoServer.lock); resolves to its release function. */
  lockShard(
    shard: { database: string; tablegroup: string; shard: string },
    ttlSeconds = 15,
  ): Promise<() => Promise<void>> {
    return this.global.lock(
      this.paths.shardLock(shard.database, shard.tablegroup, shard.shard),
      ttlSeconds,
    );
  }

  /** Calls `onChange` with every pooler of this cell, now and after each change. */
  watchPoolers(onChange: (poolers: PoolerRecord[]) => void): PrefixWatch {
    return this.local.watchPrefix(
      this.paths.poolersPrefix(this.cell),
      (snap) => onChange(decodeAll(snap, "Pooler")),
    );
  }

  close(): void {
    for (const server of this.#others.values()) server.close();
    this.#others.clear();
    if (this.local !== this.global) this.local.close();
    this.global.close();
  }

  get logger(): Logger | undefined {
    return this.#logger;
  }
}

async function readRecord<T>(
  topo: TopoServer,
  type: RecordType,
  key: string,
): Promise<T | null> {
  const v = await topo.get(key);
  return v === null ? null : decodeRecord<T>(type, v);
}

function decodeAll<T>(snapshot: Map<string, string>, type: RecordType): T[] {
  const out: T[] = [];
  for (const v of snapshot.values()) {
    try {
      out.push(decodeRecord<T>(type, v));
    } catch {
      // A record we cannot read is skipped rather than breaking discovery.
    }
  }
  return out;
}
