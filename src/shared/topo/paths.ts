/** Where every topo record lives; the layout follows DESIGN.md exactly. */

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Throws on a name that cannot be a path segment (or that would collide with `databases`). */
export function validateName(kind: string, name: string): void {
  if (!NAME_RE.test(name)) {
    throw new Error(
      `Invalid ${kind} name ${JSON.stringify(name)}: use letters, digits, _ . and -`,
    );
  }
  if (kind === "cell" && (name === "databases" || name === "locks" || name === "secrets")) {
    throw new Error(`Invalid cell name "${name}": it is reserved`);
  }
}

/** Paths of one cluster's records. */
export class TopoPaths {
  readonly cluster: string;

  constructor(cluster: string) {
    validateName("cluster", cluster);
    this.cluster = cluster;
  }

  /** `/multigres/<cluster>/global/` — every global record starts with this. */
  get globalRoot(): string {
    return `/multigres/${this.cluster}/global/`;
  }
  cell(cell: string): string {
    validateName("cell", cell);
    return `${this.globalRoot}${cell}`;
  }
  cellLocalTopo(cell: string): string {
    return `${this.cell(cell)}/local-toposerver`;
  }
  /** The prefix that lists databases. */
  get databasesPrefix(): string {
    return `${this.globalRoot}databases/`;
  }
  database(db: string): string {
    validateName("database", db);
    return `${this.databasesPrefix}${db}`;
  }
  /** A secret the cluster's components share (e.g. for mock authentication salts). */
  clusterSecret(name: string): string {
    validateName("secret", name);
    return `${this.globalRoot}secrets/${name}`;
  }
  /** The lock an orch holds while it changes a shard's primary. */
  shardLock(database: string, tablegroup: string, shard: string): string {
    validateName("database", database);
    return `${this.globalRoot}locks/shards/${database}/${tablegroup}/${shard}`;
  }
  /** `/multigres/<cluster>/<cell>` — the root of a cell inside its local topo. */
  cellRoot(cell: string): string {
    validateName("cell", cell);
    return `/multigres/${this.cluster}/${cell}`;
  }
  poolersPrefix(cell: string): string {
    return `${this.cellRoot(cell)}/poolers/`;
  }
  pooler(cell: string, id: string): string {
    validateName("pooler id", id);
    return `${this.poolersPrefix(cell)}${id}`;
  }
  gatewaysPrefix(cell: string): string {
    return `${this.cellRoot(cell)}/gateways/`;
  }
  gateway(cell: string, id: string): string {
    validateName("gateway id", id);
    return `${this.gatewaysPrefix(cell)}${id}`;
  }
  orchsPrefix(cell: string): string {
    return `${this.cellRoot(cell)}/orchs/`;
  }
  orch(cell: string, id: string): string {
    validateName("orch id", id);
    return `${this.orchsPrefix(cell)}${id}`;
  }
  /** Cell names from the keys under the global root (skips `databases/…` and sub-keys). */
  cellsFromKeys(keys: Iterable<string>): string[] {
    const out = new Set<string>();
    for (const key of keys) {
      if (!key.startsWith(this.globalRoot)) continue;
      const rest = key.slice(this.globalRoot.length);
      if (rest.includes("/") || rest === "databases") continue;
      out.add(rest);
    }
    return [...out].sort();
  }
}
