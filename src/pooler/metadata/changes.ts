import { PgError, SqlState } from "../../shared/errors/mod.ts";
import type { ChangeMetadataRequest } from "../../shared/grpc/types.ts";
import {
  checkTiling,
  keyRangeName,
  shardingFunction,
  shardingTypeOf,
} from "../../shared/keyspace/mod.ts";
import { literal } from "../../shared/sql/mod.ts";
import { DEFAULT_TABLEGROUP, type Queryable, UNSHARDED } from "./schema.ts";

/**
 * Applies one change of databases, tablegroups, shards or tables to the hidden schema, checked
 * the way Postgres checks the DDL it stands for (the role's privileges, what exists, names) and
 * with Postgres's SQLSTATEs. Runs on the default database's primary, as its superuser; `req.user`
 * is the client's role, whose privileges are what count.
 */
export async function changeMetadata(conn: Queryable, req: ChangeMetadataRequest): Promise<void> {
  const db = req.database;
  switch (req.change) {
    case "METADATA_CHANGE_CREATE_DATABASE": {
      // Recorded before Postgres creates it; a database Postgres has already is its error.
      if (await pgHasDatabase(conn, db)) {
        throw new PgError(SqlState.DUPLICATE_DATABASE, `database "${db}" already exists`);
      }
      await conn.query(`BEGIN;
DELETE FROM multigres.database WHERE name = ${literal(db)};
INSERT INTO multigres.database (name) VALUES (${literal(db)});
INSERT INTO multigres.tablegroup (database, name) VALUES (${literal(db)}, '${DEFAULT_TABLEGROUP}');
INSERT INTO multigres.shard (database, tablegroup, name, key_range_start, key_range_end)
  VALUES (${literal(db)}, '${DEFAULT_TABLEGROUP}', '${UNSHARDED}', '0', '');
COMMIT;`);
      return;
    }
    case "METADATA_CHANGE_DROP_DATABASE":
      // After Postgres dropped it (or failed to create it): never forget one that exists.
      if (await pgHasDatabase(conn, db)) return;
      await conn.query(
        `DELETE FROM multigres.database WHERE name = ${literal(db)} AND NOT is_default`,
      );
      return;
    case "METADATA_CHANGE_RENAME_DATABASE":
      await conn.query(
        `UPDATE multigres.database SET name = ${literal(req.newName ?? "")}
          WHERE name = ${literal(db)}`,
      );
      return;
    case "METADATA_CHANGE_CREATE_TABLEGROUP":
      return await createTablegroup(conn, req);
    case "METADATA_CHANGE_DROP_TABLEGROUP":
      return await dropTablegroup(conn, req);
    case "METADATA_CHANGE_ADD_TABLE": {
      await needCreate(conn, req);
      if (!(await tablegroupExists(conn, db, req.tablegroup ?? ""))) {
        throw new PgError(
          SqlState.UNDEFINED_OBJECT,
          `tablegroup "${req.tablegroup}" does not exist`,
        );
      }
      const r = await conn.query(
        `INSERT INTO multigres.tablegroup_table (database, tablegroup, table_name,
           sharding_column, sharding_function, sharding_type, sharding_position)
         VALUES (${literal(db)}, ${literal(req.tablegroup ?? "")}, ${literal(req.name)},
           ${nullable(req.shardingColumn)}, ${nullable(functionOf(req.shardingType))},
           ${nullable(req.shardingType)}, ${Math.trunc(req.shardingPosition ?? 0) || "NULL"})
         ON CONFLICT DO NOTHING RETURNING 1`,
      );
      if (!r.rows.length) {
        throw new PgError(SqlState.DUPLICATE_TABLE, `relation "${req.name}" already exists`);
      }
      return;
    }
    case "METADATA_CHANGE_UPDATE_TABLE": {
      const sets = [];
      if (req.newName) sets.push(`table_name = ${literal(req.newName)}`);
      if (req.shardingPosition) {
        sets.push(`sharding_position = ${Math.trunc(req.shardingPosition)}`);
      }
      if (!sets.length) return;
      await conn.query(
        `UPDATE multigres.tablegroup_table SET ${sets.join(", ")}
          WHERE database = ${literal(db)} AND table_name = ${literal(req.name)}`,
      );
      return;
    }
    case "METADATA_CHANGE_DROP_TABLE":
      await conn.query(
        `DELETE FROM multigres.tablegroup_table
          WHERE database = ${literal(db)} AND table_name = ${literal(req.name)}`,
      );
      return;
    default:
      throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `unknown metadata change ${req.change}`);
  }
}

async function createTablegroup(conn: Queryable, req: ChangeMetadataRequest): Promise<void> {
  const db = req.database;
  const name = req.name;
  await needCreate(conn, req);
  if (name === DEFAULT_TABLEGROUP || await tablegroupExists(conn, db, name)) {
    throw new PgError(SqlState.DUPLICATE_OBJECT, `tablegroup "${name}" already exists`);
  }
  let ranges;
  try {
    ranges = checkTiling(req.shards?.length ? req.shards : [UNSHARDED]);
  } catch (e) {
    throw new PgError(SqlState.INVALID_PARAMETER_VALUE, (e as Error).message);
  }
  const rows = ranges.map(({ range }) => {
    const [start, end] = keyRangeName(range).split("-");
    return `(${literal(db)}, ${literal(name)}, ${literal(`${start}-${end}`)}, ${literal(start)}, ${
      literal(end === "inf" ? "" : end)
    })`;
  });
  await conn.query(`BEGIN;
INSERT INTO multigres.tablegroup (database, name) VALUES (${literal(db)}, ${literal(name)});
INSERT INTO multigres.shard (database, tablegroup, name, key_range_start, key_range_end)
  VALUES ${rows.join(",\n    ")};
COMMIT;`);
}

async function dropTablegroup(conn: Queryable, req: ChangeMetadataRequest): Promise<void> {
  const db = req.database;
  const name = req.name;
  if (name === DEFAULT_TABLEGROUP) {
    throw new PgError(
      SqlState.DEPENDENT_OBJECTS_STILL_EXIST,
      `cannot drop tablegroup "${name}" because every database needs it`,
    );
  }
  if (!(await tablegroupExists(conn, db, name))) {
    if (req.ifExists) return;
    throw new PgError(SqlState.UNDEFINED_OBJECT, `tablegroup "${name}" does not exist`);
  }
  await needCreate(conn, req);
  const tables = await conn.query(
    `SELECT table_name FROM multigres.tablegroup_table
      WHERE database = ${literal(db)} AND tablegroup = ${literal(name)} ORDER BY 1`,
  );
  if (tables.rows.length && !req.cascade) {
    throw new PgError(
      SqlState.DEPENDENT_OBJECTS_STILL_EXIST,
      `cannot drop tablegroup "${name}" because other objects depend on it`,
      {
        detail: tables.rows.map(([t]) => `table ${t} depends on tablegroup ${name}`).join("\n"),
        hint: "Use DROP ... CASCADE to drop the dependent objects too.",
      },
    );
  }
  await conn.query(
    `DELETE FROM multigres.tablegroup WHERE database = ${literal(db)} AND name = ${literal(name)}`,
  );
}

/** As Postgres asks for CREATE on a database before objects are made in it. */
async function needCreate(conn: Queryable, req: ChangeMetadataRequest): Promise<void> {
  if (!(await pgHasDatabase(conn, req.database))) {
    throw new PgError(SqlState.INVALID_CATALOG_NAME, `database "${req.database}" does not exist`);
  }
  const r = await conn.query(
    `SELECT coalesce((SELECT has_database_privilege(oid, ${literal(req.database)}, 'CREATE')
                        FROM pg_catalog.pg_roles WHERE rolname = ${literal(req.user)}), false)`,
  );
  if (r.rows[0]?.[0] !== "t") {
    throw new PgError(
      SqlState.INSUFFICIENT_PRIVILEGE,
      `permission denied for database ${req.database}`,
    );
  }
}

async function pgHasDatabase(conn: Queryable, name: string): Promise<boolean> {
  const r = await conn.query(
    `SELECT 1 FROM pg_catalog.pg_database WHERE datname = ${literal(name)}`,
  );
  return r.rows.length > 0;
}

async function tablegroupExists(conn: Queryable, db: string, name: string): Promise<boolean> {
  const r = await conn.query(
    `SELECT 1 FROM multigres.tablegroup WHERE database = ${literal(db)} AND name = ${
      literal(name)
    }`,
  );
  return r.rows.length > 0;
}

/** Postgres's hash function for a sharding type (recorded for SQL checks on the shards). */
function functionOf(type: string | undefined): string | undefined {
  const t = type ? shardingTypeOf(type) : undefined;
  return t ? shardingFunction(t) : undefined;
}

function nullable(s: string | undefined): string {
  return s ? literal(s) : "NULL";
}
