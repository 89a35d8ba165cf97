import type { DatabaseLayout } from "../../shared/grpc/types.ts";
import {
  type KeyRange,
  parseKeyRange,
  type ShardingType,
  shardingTypeOf,
} from "../../shared/keyspace/mod.ts";
import type { SchemaView, TableInfo } from "../planner/types.ts";

const DEFAULT_TABLEGROUP = "default";

/**
 * One database's layout as the router sees it: its tablegroups with their shards' key ranges,
 * and the tables that live outside the default tablegroup. Immutable; a new one is built from
 * each metadata fetch, with a version number that changes with it (plans are cached per version).
 */
export class ShardMap implements SchemaView {
  readonly database: string;
  readonly version: number;
  readonly #tables = new Map<string, TableInfo>();
  readonly #groups = new Map<string, { shards: string[]; ranges: KeyRange[] }>();

  constructor(layout: DatabaseLayout, version: number) {
    this.database = layout.name;
    this.version = version;
    for (const tg of layout.tablegroups) {
      const shards = tg.shards.map((s) => s.name);
      this.#groups.set(tg.name, { shards, ranges: shards.map((s) => parseKeyRange(s)) });
    }
    for (const t of layout.tables ?? []) {
      const type = t.shardingType ? shardingTypeOf(t.shardingType) ?? null : null;
      this.#tables.set(t.name, {
        tablegroup: t.tablegroup,
        column: t.shardingColumn || null,
        type: type as ShardingType | null,
        ...(t.shardingPosition ? { position: t.shardingPosition } : {}),
      });
    }
  }

  get hasTablegroupTables(): boolean {
    return this.#tables.size > 0;
  }

  table(schema: string | null, name: string): TableInfo | undefined {
    return this.#tables.get(`${schema ?? "public"}.${name}`);
  }

  tablegroup(name: string): { shards: string[] } | undefined {
    const g = this.#groups.get(name);
    return g ? { shards: g.shards } : undefined;
  }

  /** The tables of a tablegroup, qualified, with their sharding column and its place. */
  tablesOf(tablegroup: string): { name: string; column: string | null; position?: number }[] {
    const out = [];
    for (const [name, t] of this.#tables) {
      if (t.tablegroup === tablegroup) out.push({ name, column: t.column, position: t.position });
    }
    return out;
  }

  /** Tablegroups other than `default`. */
  get tablegroups(): string[] {
    return [...this.#groups.keys()].filter((n) => n !== DEFAULT_TABLEGROUP);
  }

  /** The shard of `tablegroup` whose range holds keyspace id `id`. */
  shardFor(tablegroup: string, id: bigint): string | undefined {
    const g = this.#groups.get(tablegroup);
    if (!g) return undefined;
    for (let i = 0; i < g.ranges.length; i++) {
      const r = g.ranges[i];
      if (id >= r.start && (r.end === null || id < r.end)) return g.shards[i];
    }
    return undefined;
  }
}
