import type { DatabaseLayout, ShardRule } from "../../shared/grpc/types.ts";
import type { QueryResult } from "../backend/backend_conn.ts";
import { literal } from "../../shared/sql/mod.ts";

/** Anything that runs a simple query (a backend or the admin connection). */
export interface Queryable {
  query(sql: string): Promise<QueryResult>;
}

/** Name of the tablegroup every database has. */
export const DEFAULT_TABLEGROUP = "default";
/** The only shard of an unsharded tablegroup: the whole keyspace. */
export const UNSHARDED = "0-inf";

/**
 * The hidden `multigres` schema: the source of truth for databases, tablegroups and shards, plus
 * each shard's consensus rule and its history. Idempotent; runs in one transaction.
 */
export function schemaSql(defaultDatabase: string, opts: { seed?: boolean } = {}): string {
  const db = literal(defaultDatabase);
  // Only the default database's server holds the cluster's databases; a shard of another
  // tablegroup keeps its consensus rule here, nothing else.
  const seed = opts.seed === false ? "" : `
INSERT INTO multigres.database (name, is_default) VALUES (${db}, true) ON CONFLICT DO NOTHING;
INSERT INTO multigres.tablegroup (database, name) VALUES (${db}, '${DEFAULT_TABLEGROUP}')
  ON CONFLICT DO NOTHING;
INSERT INTO multigres.shard (database, tablegroup, name, key_range_start, key_range_end)
  VALUES (${db}, '${DEFAULT_TABLEGROUP}', '${UNSHARDED}', '0', '') ON CONFLICT DO NOTHING;`;
  return `
BEGIN;
CREATE SCHEMA IF NOT EXISTS multigres;
REVOKE ALL ON SCHEMA multigres FROM PUBLIC;
CREATE TABLE IF NOT EXISTS multigres.database (
  name text PRIMARY KEY,
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS multigres.tablegroup (
  database text NOT NULL REFERENCES multigres.database (name) ON DELETE CASCADE,
  name text NOT NULL,
  PRIMARY KEY (database, name)
);
CREATE TABLE IF NOT EXISTS multigres.shard (
  database text NOT NULL,
  tablegroup text NOT NULL,
  name text NOT NULL,
  key_range_start text NOT NULL,
  key_range_end text NOT NULL,
  PRIMARY KEY (database, tablegroup, name),
  FOREIGN KEY (database, tablegroup) REFERENCES multigres.tablegroup ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS multigres.tablegroup_table (
  database text NOT NULL,
  tablegroup text NOT NULL,
  table_name text NOT NULL,
  sharding_column text,
  sharding_function text,
  PRIMARY KEY (database, table_name),
  FOREIGN KEY (database, tablegroup) REFERENCES multigres.tablegroup ON DELETE CASCADE
);
-- Later additions, each made only where missing: a server that has them takes no lock here
-- (this transaction may wait at commit for a replica, and must not block readers meanwhile).
DO $m$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                  WHERE attrelid = 'multigres.tablegroup_table'::regclass
                    AND attname = 'sharding_type') THEN
    ALTER TABLE multigres.tablegroup_table ADD COLUMN sharding_type text;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                  WHERE attrelid = 'multigres.tablegroup_table'::regclass
                    AND attname = 'sharding_position') THEN
    ALTER TABLE multigres.tablegroup_table ADD COLUMN sharding_position int;
  END IF;
  -- A renamed database keeps its tablegroups, shards and tables.
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
              WHERE conname = 'tablegroup_database_fkey' AND confupdtype <> 'c'
                AND conrelid = 'multigres.tablegroup'::regclass) THEN
    ALTER TABLE multigres.tablegroup DROP CONSTRAINT tablegroup_database_fkey,
      ADD CONSTRAINT tablegroup_database_fkey FOREIGN KEY (database)
        REFERENCES multigres.database (name) ON DELETE CASCADE ON UPDATE CASCADE;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
              WHERE conname = 'shard_database_tablegroup_fkey' AND confupdtype <> 'c'
                AND conrelid = 'multigres.shard'::regclass) THEN
    ALTER TABLE multigres.shard DROP CONSTRAINT shard_database_tablegroup_fkey,
      ADD CONSTRAINT shard_database_tablegroup_fkey FOREIGN KEY (database, tablegroup)
        REFERENCES multigres.tablegroup ON DELETE CASCADE ON UPDATE CASCADE;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
              WHERE conname = 'tablegroup_table_database_tablegroup_fkey' AND confupdtype <> 'c'
                AND conrelid = 'multigres.tablegroup_table'::regclass) THEN
    ALTER TABLE multigres.tablegroup_table
      DROP CONSTRAINT tablegroup_table_database_tablegroup_fkey,
      ADD CONSTRAINT tablegroup_table_database_tablegroup_fkey FOREIGN KEY (database, tablegroup)
        REFERENCES multigres.tablegroup ON DELETE CASCADE ON UPDATE CASCADE;
  END IF;
  -- The shards of a tablegroup tile the keyspace: checked at commit, whoever writes the rows.
  -- Range ends are hex prefixes ('' is the end of the keyspace); padded, they compare as text.
  -- (A changed check gets a new name, so that an old server never keeps a stale one.)
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc
                  WHERE proname = 'check_tiling_v1'
                    AND pronamespace = 'multigres'::regnamespace) THEN
    CREATE FUNCTION multigres.check_tiling_v1() RETURNS trigger LANGUAGE plpgsql AS $f$
    DECLARE
      db text;
      tg text;
      expect text := '0000000000000000';
      r record;
      n int := 0;
    BEGIN
      IF TG_OP = 'DELETE' THEN db := OLD.database; tg := OLD.tablegroup;
      ELSE db := NEW.database; tg := NEW.tablegroup; END IF;
      FOR r IN SELECT s.name, rpad(s.key_range_start, 16, '0') AS lo,
                      CASE WHEN s.key_range_end = '' THEN 'inf'
                           ELSE rpad(s.key_range_end, 16, '0') END AS hi
                 FROM multigres.shard s WHERE s.database = db AND s.tablegroup = tg
                ORDER BY rpad(s.key_range_start, 16, '0') COLLATE "C" LOOP
        IF r.lo <> expect OR r.hi <> 'inf' AND r.hi COLLATE "C" <= r.lo COLLATE "C" THEN
          RAISE EXCEPTION 'the shards of tablegroup "%" do not tile the keyspace (at shard "%")',
            tg, r.name USING ERRCODE = 'check_violation';
        END IF;
        expect := r.hi;
        n := n + 1;
      END LOOP;
      IF n > 0 AND expect <> 'inf' THEN
        RAISE EXCEPTION 'the shards of tablegroup "%" do not reach the end of the keyspace', tg
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END
    $f$;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                  WHERE tgname = 'shard_tiling_v1'
                    AND tgrelid = 'multigres.shard'::regclass) THEN
    CREATE CONSTRAINT TRIGGER shard_tiling_v1 AFTER INSERT OR UPDATE OR DELETE ON multigres.shard
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION multigres.check_tiling_v1();
  END IF;
END
$m$;
CREATE TABLE IF NOT EXISTS multigres.rule (
  database text NOT NULL,
  tablegroup text NOT NULL,
  shard text NOT NULL,
  term bigint NOT NULL,
  leader_id text NOT NULL,
  cohort text[] NOT NULL,
  durability_policy jsonb NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (database, tablegroup, shard)
);
CREATE TABLE IF NOT EXISTS multigres.rule_history (
  database text NOT NULL,
  tablegroup text NOT NULL,
  shard text NOT NULL,
  term bigint NOT NULL,
  leader_id text NOT NULL,
  cohort text[] NOT NULL,
  durability_policy jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (database, tablegroup, shard, term)
);
-- Two-phase commit across shards: the decision for each transaction prepared on several shards
-- (on the default tablegroup's server; see two_phase.ts).
CREATE TABLE IF NOT EXISTS multigres.two_phase (
  gid text PRIMARY KEY,
  decision text NOT NULL CHECK (decision IN ('commit', 'abort')),
  participants text[] NOT NULL DEFAULT '{}',
  decided_at timestamptz NOT NULL DEFAULT now()
);${seed}
COMMIT;`;
}

/** Whether the hidden schema exists yet. */
export async function schemaExists(conn: Queryable): Promise<boolean> {
  const r = await conn.query(
    "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'multigres'",
  );
  return r.rows.length > 0;
}

/** Databases → tablegroups → shards, as the hidden schema records them. */
export async function readLayout(
  conn: Queryable,
): Promise<{ databases: DatabaseLayout[]; defaultDatabase: string }> {
  const dbs = await conn.query(
    `SELECT d.name, d.is_default, coalesce(pg_catalog.pg_get_userbyid(p.datdba), '')
       FROM multigres.database d LEFT JOIN pg_catalog.pg_database p ON p.datname = d.name
      ORDER BY d.name`,
  );
  const shards = await conn.query(
    `SELECT t.database, t.name, s.name, s.key_range_start, s.key_range_end
       FROM multigres.tablegroup t
       LEFT JOIN multigres.shard s ON s.database = t.database AND s.tablegroup = t.name
      ORDER BY 1, 2, 3`,
  );
  const tables = await conn.query(
    `SELECT database, table_name, tablegroup, coalesce(sharding_column, ''),
            coalesce(sharding_type, ''), coalesce(sharding_position, 0)
       FROM multigres.tablegroup_table ORDER BY 1, 2`,
  );
  let defaultDatabase = "";
  const byName = new Map<string, DatabaseLayout>();
  for (const [name, isDefault, owner] of dbs.rows) {
    byName.set(name!, { name: name!, tablegroups: [], tables: [], owner: owner ?? "" });
    if (isDefault === "t") defaultDatabase = name!;
  }
  for (const [db, name, tablegroup, column, type, position] of tables.rows) {
    byName.get(db!)?.tables?.push({
      name: name!,
      tablegroup: tablegroup!,
      shardingColumn: column ?? "",
      shardingType: type ?? "",
      shardingPosition: Number(position ?? 0),
    });
  }
  for (const [db, tg, shard, start, end] of shards.rows) {
    const layout = byName.get(db!);
    if (!layout) continue;
    let group = layout.tablegroups.find((g) => g.name === tg);
    if (!group) {
      group = { name: tg!, shards: [] };
      layout.tablegroups.push(group);
    }
    if (shard !== null) {
      group.shards.push({ name: shard, keyRange: { start: start ?? "", end: end ?? "" } });
    }
  }
  // Databases made with CREATE DATABASE and not (yet) recorded live on this server, in the
  // default tablegroup's only shard, like the default database.
  const pg = await conn.query(
    `SELECT datname, pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database
      WHERE datallowconn AND NOT datistemplate`,
  );
  for (const [name, owner] of pg.rows) {
    if (!name || byName.has(name)) continue;
    byName.set(name, {
      name,
      owner: owner ?? "",
      tables: [],
      tablegroups: [{
        name: DEFAULT_TABLEGROUP,
        shards: [{ name: UNSHARDED, keyRange: { start: "0", end: "" } }],
      }],
    });
  }
  return { databases: [...byName.values()], defaultDatabase };
}

/** The shard's current rule, or null when none was ever written. */
export async function readRule(
  conn: Queryable,
  shard: { database: string; tablegroup: string; shard: string },
): Promise<ShardRule | null> {
  if (!(await schemaExists(conn))) return null;
  const r = await conn.query(
    `SELECT term, leader_id, array_to_json(cohort), durability_policy::text
       FROM multigres.rule
      WHERE database = ${literal(shard.database)} AND tablegroup = ${literal(shard.tablegroup)}
        AND shard = ${literal(shard.shard)}`,
  );
  if (!r.rows.length) return null;
  const [term, leader, cohort, policy] = r.rows[0];
  const parsedPolicy = JSON.parse(policy ?? "{}");
  return {
    term: Number(term),
    leaderId: leader ?? "",
    cohort: JSON.parse(cohort ?? "[]"),
    durabilityPolicy: parsedPolicy.kind ? parsedPolicy : null,
  };
}

/** Writes a new rule and its history row in one transaction; refuses a term not above the current one. */
export function writeRuleSql(
  shard: { database: string; tablegroup: string; shard: string },
  rule: ShardRule,
): string {
  const key = `${literal(shard.database)}, ${literal(shard.tablegroup)}, ${literal(shard.shard)}`;
  const cohort = `ARRAY[${rule.cohort.map(literal).join(", ")}]::text[]`;
  const policy = literal(JSON.stringify(rule.durabilityPolicy ?? {}));
  const term = Math.trunc(rule.term);
  return `
BEGIN;
INSERT INTO multigres.rule AS r (database, tablegroup, shard, term, leader_id, cohort,
    durability_policy)
  VALUES (${key}, ${term}, ${literal(rule.leaderId)}, ${cohort}, ${policy}::jsonb)
  ON CONFLICT (database, tablegroup, shard) DO UPDATE
    SET term = EXCLUDED.term, leader_id = EXCLUDED.leader_id, cohort = EXCLUDED.cohort,
        durability_policy = EXCLUDED.durability_policy, updated_at = now()
    WHERE r.term < EXCLUDED.term;
INSERT INTO multigres.rule_history (database, tablegroup, shard, term, leader_id, cohort,
    durability_policy)
  VALUES (${key}, ${term}, ${literal(rule.leaderId)}, ${cohort}, ${policy}::jsonb);
COMMIT;`;
}

/** Rewrites the cohort and policy of the rule at `rule.term` (the term and leader stay). */
export function updateCohortSql(
  shard: { database: string; tablegroup: string; shard: string },
  rule: ShardRule,
): string {
  const cohort = `ARRAY[${rule.cohort.map(literal).join(", ")}]::text[]`;
  const policy = literal(JSON.stringify(rule.durabilityPolicy ?? {}));
  return `UPDATE multigres.rule SET cohort = ${cohort}, durability_policy = ${policy}::jsonb,
    updated_at = now()
  WHERE database = ${literal(shard.database)} AND tablegroup = ${literal(shard.tablegroup)}
    AND shard = ${literal(shard.shard)} AND term = ${Math.trunc(rule.term)}`;
}
