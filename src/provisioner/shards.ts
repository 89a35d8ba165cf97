import type { GetMetadataResponse, PoolerRecord } from "../shared/grpc/types.ts";
import { callUnary, type GrpcSecurity, makeClient } from "../shared/grpc/mod.ts";
import { newestPrimary, Topo } from "../shared/topo/mod.ts";
import { LocalCluster, MAX_SHARD_SLOTS, type ShardCellSpec } from "./local_cluster.ts";

export { shardPorts } from "./local_cluster.ts";

/** A shard of a tablegroup other than `default`, as the hidden schema records it. */
export interface ShardKey {
  database: string;
  tablegroup: string;
  name: string;
}

/** `database/tablegroup/shard`. */
export function shardKeyString(k: ShardKey): string {
  return `${k.database}/${k.tablegroup}/${k.name}`;
}

/**
 * The hidden schema's databases, tablegroups, shards and tables, read from the default
 * tablegroup's primary pooler (the newest term's: a stale one, not yet fenced, may lack the
 * latest tablegroups). Null when no such pooler answers: nothing may be concluded then.
 * `security`: the caller's gRPC certificate (see LocalCluster.grpcSecurity).
 */
export async function readMetadata(
  poolers: readonly PoolerRecord[],
  security: GrpcSecurity,
): Promise<GetMetadataResponse | null> {
  const primary = newestPrimary(poolers, (p) => p.serving && p.tablegroup === "default");
  if (!primary) return null;
  const client = makeClient("MultiPooler", primary.addr, security);
  try {
    return await callUnary<GetMetadataResponse>(client, "GetMetadata", {}, { deadlineMs: 5000 });
  } catch {
    return null;
  } finally {
    client.close();
  }
}

/**
 * Every shard the hidden schema records outside the default tablegroups (those live on the
 * default database's server), and every database; null as readMetadata.
 */
export async function readShards(
  poolers: readonly PoolerRecord[],
  security: GrpcSecurity,
): Promise<{ shards: ShardKey[]; databases: string[]; defaultDatabase: string } | null> {
  const md = await readMetadata(poolers, security);
  if (!md) return null;
  const out: ShardKey[] = [];
  for (const db of md.databases) {
    for (const tg of db.tablegroups) {
      if (tg.name === "default") continue;
      for (const s of tg.shards) out.push({ database: db.name, tablegroup: tg.name, name: s.name });
    }
  }
  return {
    shards: out,
    databases: md.databases.map((d) => d.name),
    defaultDatabase: md.defaultDatabase,
  };
}

/**
 * Brings up and takes down the processes of every shard the hidden schema records: in every
 * cell of the cluster a pgctld + Postgres and a pooler (the first cell's bootstraps the shard's
 * primary, the cell's orch appoints it; further cells' join as replicas). Shards get slots,
 * kept in `<data-dir>/shards/slots.json`, which pick their ports (see shardPorts) and folders.
 */
export class ShardProvisioner {
  readonly #root: LocalCluster;
  readonly #log: (msg: string) => void;
  readonly #slotsPath: string;
  #slots: Record<string, number>;
  /** Shards being started or stopped now (one action per shard at a time). */
  readonly #busy = new Set<string>();
  /** Reads in a row that did not list a shard this provisioner runs (see tick). */
  readonly #missing = new Map<string, number>();

  constructor(root: LocalCluster, log: (msg: string) => void = console.error) {
    this.#root = root;
    this.#log = log;
    this.#slotsPath = `${root.cfg.dataDir}/shards/slots.json`;
    this.#slots = readSlots(this.#slotsPath);
  }

  /** The cells of one shard: the first bootstraps it, the others join as replicas. */
  cellsOf(key: ShardKey, slot: number): LocalCluster[] {
    const cfg = this.#root.cfg;
    const cells = [this.#root, ...this.#root.members];
    return cells.map((c, cellIndex) => {
      const shard: ShardCellSpec = { ...key, slot, cellIndex };
      return new LocalCluster({
        ...cfg,
        cell: c.cfg.cell,
        cells: 1,
        dataDir: `${cfg.dataDir}/shards/s${slot}/${c.cfg.cell}`,
        memberOf: this.#root.topoAddress,
        shard,
      }, this.#log);
    });
  }

  /** Every shard with a slot, and its cells. */
  allCells(): LocalCluster[] {
    return Object.entries(this.#slots).flatMap(([k, slot]) => {
      const [database, tablegroup, name] = k.split("/");
      return this.cellsOf({ database, tablegroup, name }, slot);
    });
  }

  /** One look at the metadata: starts what is new (or not running), stops what is gone. */
  async tick(): Promise<void> {
    const topo = await Topo.connect({
      globalAddress: this.#root.topoAddress,
      cluster: this.#root.cfg.cluster,
      cell: this.#root.cfg.cell,
      waitMs: 3000,
    });
    let read: Awaited<ReturnType<typeof readShards>>;
    try {
      read = await readShards(await topo.listAllPoolers(), this.#root.grpcSecurity);
      if (read) await this.#ensureDatabases(topo, read.databases, read.defaultDatabase);
    } finally {
      topo.close();
    }
    if (!read) return;
    const wanted = new Map(read.shards.map((s) => [shardKeyString(s), s]));
    for (const [k, s] of wanted) {
      if (this.#busy.has(k)) continue;
      const slot = this.#slots[k] ?? this.#takeSlot(k);
      if (slot === undefined) {
        this.#log(`error: no free shard slot for ${k} (at most ${MAX_SHARD_SLOTS} shards)`);
        continue;
      }
      const cells = this.cellsOf(s, slot);
      if (cells.every((c) => c.running().multipooler && c.running().pgctld)) continue;
      this.#act(k, () => this.#startShard(k, cells));
    }
    for (const [k, slot] of Object.entries(this.#slots)) {
      if (wanted.has(k)) this.#missing.delete(k);
      if (wanted.has(k) || this.#busy.has(k)) continue;
      // A shard's data is removed only once three reads in a row (seconds apart) agree it is
      // gone from the metadata: never on one read that may come from a lagging server.
      const misses = (this.#missing.get(k) ?? 0) + 1;
      this.#missing.set(k, misses);
      if (misses < REMOVE_AFTER_READS) continue;
      this.#missing.delete(k);
      const [database, tablegroup, name] = k.split("/");
      const cells = this.cellsOf({ database, tablegroup, name }, slot);
      this.#act(k, () => this.#removeShard(k, slot, cells));
    }
  }

  /**
   * Every database of the hidden schema gets its record in the global topo (durability policy,
   * backups, cells), like the default database's, which its shards' poolers and orchs read.
   */
  async #ensureDatabases(topo: Topo, names: string[], defaultDb: string): Promise<void> {
    const known = new Set((await topo.listDatabases()).map((d) => d.name));
    if (names.every((n) => known.has(n))) return;
    const model = await topo.getDatabase(defaultDb);
    if (!model) return;
    for (const name of names) {
      if (!known.has(name)) await topo.putDatabase({ ...model, name });
    }
  }

  #act(k: string, fn: () => Promise<void>): void {
    this.#busy.add(k);
    fn().catch((e) => this.#log(`error: shard ${k}: ${(e as Error).message}`))
      .finally(() => this.#busy.delete(k));
  }

  async #startShard(k: string, cells: LocalCluster[]): Promise<void> {
    this.#log(`starting shard ${k} in ${cells.length} cell(s)`);
    const [first, ...rest] = cells;
    await first.start();
    await first.waitForReplica(300_000);
    for (const c of rest) {
      await c.start();
      await c.waitForReplica(300_000);
    }
    this.#log(`shard ${k} serves`);
  }

  async #removeShard(k: string, slot: number, cells: LocalCluster[]): Promise<void> {
    this.#log(`stopping shard ${k}: it is gone from the metadata`);
    for (const c of [...cells].reverse()) await c.stop();
    await Deno.remove(`${this.#root.cfg.dataDir}/shards/s${slot}`, { recursive: true })
      .catch((e) => this.#log(`warning: cannot remove shard ${k}'s data: ${(e as Error).message}`));
    delete this.#slots[k];
    this.#saveSlots();
  }

  #takeSlot(k: string): number | undefined {
    const used = new Set(Object.values(this.#slots));
    for (let s = 1; s <= MAX_SHARD_SLOTS; s++) {
      if (used.has(s)) continue;
      this.#slots[k] = s;
      this.#saveSlots();
      return s;
    }
    return undefined;
  }

  #saveSlots(): void {
    Deno.mkdirSync(`${this.#root.cfg.dataDir}/shards`, { recursive: true });
    Deno.writeTextFileSync(this.#slotsPath, JSON.stringify(this.#slots, null, 2) + "\n");
  }
}

/** How many reads in a row must miss a shard before its processes and data are removed. */
const REMOVE_AFTER_READS = 3;

function readSlots(path: string): Record<string, number> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return {}; // no shard ever ran
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot read the shard slots in ${path}: ${(e as Error).message}`);
  }
}
