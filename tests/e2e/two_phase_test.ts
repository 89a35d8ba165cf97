// Two-phase commit across shards, end to end (ports 22800+): a transaction block that writes on
// two shards (and on the default tablegroup) commits on all of them or on none; a write outside a
// block that touches several shards is atomic; and a gateway killed at each step of the commit, or
// a participant's pooler or Postgres killed while the gateway is held at each step, leaves every
// transaction on all shards or on none once the orch's recovery has run, with no prepared
// transaction left over and no acknowledged commit missing.

import assert from "node:assert/strict";
import type pg from "pg";
import { alive, type LocalCluster, ShardProvisioner } from "../../src/provisioner/mod.ts";
import { shardPorts } from "../../src/provisioner/local_cluster.ts";
import {
  inRangeSql,
  keyspaceId,
  keyspaceIdSql,
  parseKeyRange,
} from "../../src/shared/keyspace/mod.ts";
import { E2E, errorOf, eventually, startCluster, type TestCluster } from "../helpers/cluster.ts";
import { crashPostgres } from "../helpers/failover.ts";

const OFFSET = 2800;
const ACCOUNTS = 40;
const START_BALANCE = 1000;
const HALF = 0x8000000000000000n;

Deno.test({
  name: "two-phase commit: a transaction on several shards commits on all of them or on none",
  ...E2E,
  async fn(t) {
    const c: TestCluster = await startCluster(OFFSET, { cells: 1, twoPhaseMinAgeSeconds: 2 });
    const opened: pg.Client[] = [];
    const postgresJs = (opts: Parameters<TestCluster["sql"]>[0]) => c.sql(opts);
    const client = async (opts: Parameters<TestCluster["client"]>[0] = {}) => {
      const cl = await c.client(opts);
      cl.on("error", () => {}); // a killed gateway ends connections; queries fail on their own
      opened.push(cl);
      return cl;
    };
    try {
      const admin = await client();
      await admin.query("create database bank");
      const bank = await client({ database: "bank" });
      await bank.query("create tablegroup accts shards 2");
      await bank.query(
        "create table accounts (id bigint primary key, balance int not null) in accts shard by (id)",
      );
      await bank.query("create table ledger (id serial primary key, note text not null)");
      const ids = Array.from({ length: ACCOUNTS }, (_, i) => i + 1);
      for (const id of ids) {
        await bank.query("insert into accounts values ($1, $2)", [id, START_BALANCE]);
      }
      // One account on each shard (0-8 holds keyspace ids below 2^63).
      const onLow = ids.filter((id) => keyspaceId("int8", String(id)) < HALF);
      const onHigh = ids.filter((id) => keyspaceId("int8", String(id)) >= HALF);
      assert.ok(onLow.length && onHigh.length, "accounts on both shards");
      const shardDb = (slot: number) =>
        client({ port: shardPorts(OFFSET, slot, 0).postgres, database: "bank", direct: true });
      const low = await shardDb(1);
      const high = await shardDb(2);
      const direct = await client({ direct: true, database: "bank" });

      const balance = async (id: number) =>
        (await bank.query("select balance from accounts where id = $1", [id])).rows[0].balance;
      // A new connection to a Postgres for every look: it may have been killed and started again
      // since the last.
      const fresh = async <T>(
        port: number,
        database: string,
        fn: (cl: pg.Client) => Promise<T>,
      ): Promise<T> => {
        const cl = await c.client({ port, database, direct: true });
        cl.on("error", () => {});
        try {
          return await fn(cl);
        } finally {
          await cl.end().catch(() => {});
        }
      };
      const onShards = async <T>(fn: (sh: pg.Client) => Promise<T>): Promise<T[]> => [
        await fresh(shardPorts(OFFSET, 1, 0).postgres, "bank", fn),
        await fresh(shardPorts(OFFSET, 2, 0).postgres, "bank", fn),
      ];
      const total = async () =>
        (await onShards(async (sh) =>
          Number((await sh.query("select sum(balance) as s from accounts")).rows[0].s)
        )).reduce((x, y) => x + y, 0);
      const countPrepared = async (sh: pg.Client) =>
        (await sh.query("select count(*)::int as n from pg_prepared_xacts")).rows[0].n as number;
      const preparedLeft = async () =>
        (await fresh(c.directPort, "bank", countPrepared)) +
        (await onShards(countPrepared)).reduce((x, y) => x + y, 0);
      const decisionsLeft = () =>
        fresh(c.directPort, "postgres", async (cl) =>
          (await cl.query(
            "select count(*)::int as n from multigres.two_phase where decision = 'commit'",
          )).rows[0].n as number);

      await t.step("a block that writes on two shards commits on both", async () => {
        const [a, b] = [onLow[0], onHigh[0]];
        await bank.query("begin");
        await bank.query("update accounts set balance = balance - 10 where id = $1", [a]);
        await bank.query("update accounts set balance = balance + 10 where id = $1", [b]);
        const r = await bank.query("commit");
        assert.equal(r.command, "COMMIT");
        assert.equal(await balance(a), START_BALANCE - 10);
        assert.equal(await balance(b), START_BALANCE + 10);
        assert.equal(await total(), ACCOUNTS * START_BALANCE);
        assert.equal(await preparedLeft(), 0);
        assert.ok(
          await eventually(async () => (await decisionsLeft()) === 0),
          "decision forgotten",
        );
      });

      await t.step("… and with a table of the default tablegroup in the same block", async () => {
        const [a, b] = [onLow[1], onHigh[1]];
        await bank.query("begin");
        await bank.query("insert into ledger (note) values ('move 5')");
        await bank.query("update accounts set balance = balance - 5 where id = $1", [a]);
        await bank.query("update accounts set balance = balance + 5 where id = $1", [b]);
        await bank.query("commit");
        assert.equal(await balance(a), START_BALANCE - 5);
        assert.equal(await balance(b), START_BALANCE + 5);
        const notes = await direct.query("select note from ledger");
        assert.deepEqual(notes.rows, [{ note: "move 5" }]);
        assert.equal(await preparedLeft(), 0);
      });

      await t.step("ROLLBACK of a block on two shards leaves nothing on either", async () => {
        const [a, b] = [onLow[2], onHigh[2]];
        await bank.query("begin");
        await bank.query("update accounts set balance = 0 where id = $1", [a]);
        await bank.query("update accounts set balance = 0 where id = $1", [b]);
        await bank.query("rollback");
        assert.equal(await balance(a), START_BALANCE);
        assert.equal(await balance(b), START_BALANCE);
      });

      await t.step(
        "savepoints hold across shards, also for a shard that joined later",
        async () => {
          const [a, b] = [onLow[3], onHigh[3]];
          await bank.query("begin");
          await bank.query("update accounts set balance = 1 where id = $1", [a]);
          await bank.query("savepoint s");
          await bank.query("update accounts set balance = 2 where id = $1", [b]); // joins after s
          await bank.query("update accounts set balance = 3 where id = $1", [a]);
          await bank.query("rollback to savepoint s");
          await bank.query("commit");
          assert.equal(await balance(a), 1);
          assert.equal(await balance(b), START_BALANCE);
          await bank.query("update accounts set balance = $2 where id = $1", [a, START_BALANCE]);
        },
      );

      await t.step("a COMMIT that fails on one shard rolls back on every shard", async () => {
        // A deferred constraint is checked at PREPARE TRANSACTION on the shard that breaks it:
        // the client's COMMIT fails as it does in Postgres, and the other shard keeps nothing.
        await bank.query(
          `create table uniq (id bigint, v int,
             constraint uniq_id unique (id) deferrable initially deferred) in accts shard by (id)`,
        );
        await direct.query(
          `create table uniq_plain (id bigint, v int,
             constraint uniq_plain_id unique (id) deferrable initially deferred)`,
        );
        const [a, b] = [onLow[4], onHigh[4]];
        await bank.query("begin");
        await bank.query("insert into uniq values ($1, 1)", [a]);
        await bank.query("insert into uniq values ($1, 2)", [a]); // the same key, deferred
        await bank.query("insert into uniq values ($1, 3)", [b]);
        const viaGateway = await errorOf(bank.query("commit"));
        await direct.query("begin");
        await direct.query("insert into uniq_plain values (1, 1), (1, 2), (2, 3)");
        const viaPostgres = await errorOf(direct.query("commit"));
        assert.equal(viaGateway?.code, "23505");
        assert.equal(viaGateway?.code, viaPostgres?.code);
        for (const sh of [low, high]) {
          assert.equal((await sh.query("select count(*)::int as n from uniq")).rows[0].n, 0);
        }
        assert.equal(await preparedLeft(), 0);
        assert.equal((await bank.query("select 'usable' as v")).rows[0].v, "usable");
      });

      await t.step(
        "a block on several shards keeps Postgres's rules for what ends it",
        async () => {
          const [a, b] = [onLow[6], onHigh[6]];
          // Transaction-scoped settings follow the block to a shard that joins it later.
          await bank.query("begin");
          await bank.query("set transaction isolation level serializable");
          await bank.query("update accounts set balance = balance where id = $1", [a]);
          const iso = await bank.query(
            "select current_setting('transaction_isolation') as v from accounts where id = $1",
            [b],
          );
          assert.deepEqual(iso.rows, [{ v: "serializable" }]);
          // A query string that would end the block on the default shard alone is refused.
          const hidden = await errorOf(bank.query("select 1; rollback"));
          assert.equal(hidden?.code, "0A000", String(hidden?.message));
          // In a failed block only ROLLBACK [TO] runs, as in Postgres.
          const sp = await errorOf(bank.query("savepoint later"));
          assert.equal(sp?.code, "25P02");
          const end = await bank.query("commit");
          assert.equal(end.command, "ROLLBACK");
          // A client's own PREPARE TRANSACTION of a block on a shard cannot be routed back.
          await bank.query("begin");
          await bank.query("update accounts set balance = balance where id = $1", [a]);
          const prep = await errorOf(bank.query("prepare transaction 'mine'"));
          assert.equal(prep?.code, "0A000", String(prep?.message));
          await bank.query("rollback");
          assert.equal(await preparedLeft(), 0);
          assert.equal((await bank.query("select 'usable' as v")).rows[0].v, "usable");
        },
      );

      await t.step("a write outside a block on several shards is atomic", async () => {
        const r = await bank.query("update accounts set balance = balance + 0");
        assert.equal(r.rowCount, ACCOUNTS, "row counts of both shards summed");
        // Division by zero on one shard only: the other shard's rows stay as they were.
        const before = await total();
        const bad = await errorOf(
          bank.query("update accounts set balance = balance + 1 / (id - $1)", [onHigh[5]]),
        );
        assert.equal(bad?.code, "22012");
        assert.equal(await total(), before);
        assert.equal(await preparedLeft(), 0);
      });

      await t.step(
        "serial and identity ids are unique across shards, increasing on each",
        async () => {
          await bank.query(
            `create table events (k bigint, seq bigserial, n int generated always as identity,
             note text, primary key (k, seq)) in accts shard by (k)`,
          );
          const got: { k: number; seq: number; n: number }[] = [];
          for (let i = 0; i < 40; i++) {
            const k = ids[i % ids.length];
            const r = await bank.query(
              "insert into events (k, note) values ($1, 'x') returning seq, n",
              [k],
            );
            got.push({ k, seq: Number(r.rows[0].seq), n: r.rows[0].n });
          }
          for (const col of ["seq", "n"] as const) {
            const values = got.map((g) => g[col]);
            assert.equal(new Set(values).size, values.length, `${col}: unique across shards`);
            for (const side of [onLow, onHigh]) {
              const mine = got.filter((g) => side.includes(g.k)).map((g) => g[col]);
              assert.ok(mine.length > 1);
              assert.deepEqual(
                mine,
                [...mine].sort((a, b) => a - b),
                `${col}: increasing per shard`,
              );
            }
          }
        },
      );

      await t.step(
        "an INSERT of several rows across shards inserts each row on its shard, atomically",
        async () => {
          await bank.query(
            "create table items (id bigint primary key, note text) in accts shard by (id)",
          );
          await bank.query("create table items_plain (id bigint primary key, note text)");
          const [a, b, c, d, e] = [onLow[0], onHigh[0], onLow[1], onHigh[1], onHigh[2]];
          const values = `(${a}, 'a), (x'), (${b}, $$b), ($$), (${c}, 'c' || '(,)'), ` +
            `(${d}, null), (${e}, /* ), ( */ upper('e'))`;
          const both = async (sql: (table: string) => string) => {
            const sharded = await bank.query(sql("items"));
            const plain = await bank.query(sql("items_plain"));
            return { sharded, plain };
          };
          const contents = async (table: string) =>
            (await bank.query(`select id, note from ${table} order by id`)).rows;

          const ins = await both((t) =>
            `insert into ${t} (id, note) values ${values} returning note, id::int`
          );
          assert.equal(ins.sharded.command, "INSERT");
          assert.equal(ins.sharded.rowCount, 5);
          assert.equal(ins.sharded.rowCount, ins.plain.rowCount);
          assert.deepEqual(ins.sharded.rows, ins.plain.rows, "RETURNING rows in VALUES order");
          assert.deepEqual(ins.sharded.rows.map((r: { id: number }) => r.id), [a, b, c, d, e]);
          assert.deepEqual(await contents("items"), await contents("items_plain"));
          const onShard = async (sh: pg.Client) =>
            (await sh.query("select id::int from items order by id")).rows.map((
              r: { id: number },
            ) => r.id);
          assert.deepEqual(await onShard(low), [a, c].sort((x, y) => x - y));
          assert.deepEqual(await onShard(high), [b, d, e].sort((x, y) => x - y));

          // ON CONFLICT DO NOTHING: the tag counts the rows inserted, on both shards.
          const skip = await both((t) =>
            `insert into ${t} (id, note) values (${onLow[2]}, 'n'), (${b}, 'dup'), ` +
            `(${onHigh[3]}, 'n') on conflict do nothing`
          );
          assert.equal(skip.sharded.rowCount, 2);
          assert.equal(skip.sharded.rowCount, skip.plain.rowCount);
          assert.deepEqual(await contents("items"), await contents("items_plain"));

          // In a block, the rows wait for its end; ROLLBACK leaves none on either shard.
          const [f, g] = [onLow[3], onHigh[4]];
          await bank.query("begin");
          const inBlock = await bank.query(
            `insert into items (id, note) values (${f}, 'f'), (${g}, 'g')`,
          );
          assert.equal(inBlock.rowCount, 2);
          const seen = await bank.query(
            `select count(*)::int as n from items where id in (${f}, ${g})`,
          );
          assert.equal(seen.rows[0].n, 2);
          await bank.query("rollback");
          const after = await bank.query(
            `select count(*)::int as n from items where id in (${f}, ${g})`,
          );
          assert.equal(after.rows[0].n, 0);

          // A duplicate key on one shard: no row on any shard, Postgres's SQLSTATE.
          const dup = (t: string) =>
            `insert into ${t} (id, note) values (${f}, 'f'), (${b}, 'again'), (${g}, 'g')`;
          const viaGateway = await errorOf(bank.query(dup("items")));
          const viaPostgres = await errorOf(bank.query(dup("items_plain")));
          assert.equal(viaGateway?.code, "23505");
          assert.equal(viaGateway?.code, viaPostgres?.code);
          assert.deepEqual(await contents("items"), await contents("items_plain"));
          assert.equal(await preparedLeft(), 0);

          // RETURNING with rows that may be skipped cannot be put back in order: refused first.
          const unordered = await errorOf(bank.query(
            `insert into items (id, note) values (${f}, 'f'), (${g}, 'g') ` +
              "on conflict do nothing returning id",
          ));
          assert.equal(unordered?.code, "0A000");
          assert.deepEqual(await contents("items"), await contents("items_plain"));

          // The extended protocol (npm:pg with parameters): rows of several shards are split
          // too, the values written in as literals; RETURNING in VALUES order.
          const extended = (t: string) =>
            `insert into ${t} (id, note) values ($1, 'p'), ($2, $3::text || 'q'), ($4, $5) ` +
            "returning id::int, note";
          const params = [f, g, "ü ", onLow[4], null];
          const across = {
            sharded: await bank.query(extended("items"), params),
            plain: await bank.query(extended("items_plain"), params),
          };
          assert.equal(across.sharded.rowCount, 3);
          assert.deepEqual(across.sharded.rows, across.plain.rows);
          assert.deepEqual(across.sharded.rows.map((r: { id: number }) => r.id), [f, g, onLow[4]]);
          assert.deepEqual(await contents("items"), await contents("items_plain"));
          const mine = await low.query(
            "select note from items where id = any($1) order by note",
            [[f, onLow[4]]],
          );
          assert.deepEqual(mine.rows.map((r: { note: string | null }) => r.note), ["p", null]);
          // A duplicate key: Postgres's error, nothing inserted anywhere.
          const dupExtended = (t: string) =>
            `insert into ${t} (id, note) values ($1, 'x'), ($2, 'y')`;
          const viaGatewayExt = await errorOf(bank.query(dupExtended("items"), [onHigh[5], f]));
          const viaPostgresExt = await errorOf(
            bank.query(dupExtended("items_plain"), [onHigh[5], f]),
          );
          assert.equal(viaGatewayExt?.code, "23505");
          assert.equal(viaGatewayExt?.code, viaPostgresExt?.code);
          assert.deepEqual(await contents("items"), await contents("items_plain"));
          // postgres.js's bulk insert helper (named statements, Describe first).
          const pjs = postgresJs({ database: "bank", max: 1 });
          try {
            const rows = [onLow[5], onHigh[6], onLow[6]].map((id, i) => ({ id, note: `pjs ${i}` }));
            for (const t of ["items", "items_plain"]) {
              const got = await pjs<{ id: number }[]>`insert into ${pjs(t)} ${
                pjs(rows)
              } returning id::int`;
              assert.deepEqual(got.map((r) => r.id), rows.map((r) => r.id));
            }
          } finally {
            await pjs.end();
          }
          assert.deepEqual(await contents("items"), await contents("items_plain"));
          assert.equal(await preparedLeft(), 0);
          assert.equal((await bank.query("select 'usable' as v")).rows[0].v, "usable");
        },
      );

      const pauseFile = `${c.dir}/two_phase_pause`;
      /** A new gateway, with the fault hook `fault` (MULTIGRES_TWO_PHASE_FAULT) if given. */
      const restartGateway = async (fault?: string) => {
        if (fault) Deno.env.set("MULTIGRES_TWO_PHASE_FAULT", fault);
        Deno.env.set("MULTIGRES_TWO_PHASE_FAULT_FILE", pauseFile);
        try {
          c.cluster.signal("multigateway", "SIGTERM");
          assert.ok(await eventually(() => !c.cluster.running().multigateway), "gateway gone");
          await c.cluster.start();
        } finally {
          Deno.env.delete("MULTIGRES_TWO_PHASE_FAULT");
          Deno.env.delete("MULTIGRES_TWO_PHASE_FAULT_FILE");
        }
      };

      // Kills of the gateway at each step of a commit: afterwards the transfer is on both
      // shards or on neither, as the step decides, once the recovery has run.
      const steps: [string, "committed" | "rolled back"][] = [
        ["before_prepare", "rolled back"],
        ["between_prepares", "rolled back"],
        ["after_prepares", "rolled back"],
        ["after_decision", "committed"],
        ["between_commits", "committed"],
      ];
      for (const [i, [step, outcome]] of steps.entries()) {
        await t.step(`a gateway killed ${step.replace("_", " ")}: ${outcome}`, async () => {
          const [a, b] = [onLow[6 + i], onHigh[6 + i]];
          await restartGateway(`crash@${step}`);
          const victim = await client({ database: "bank" });
          await victim.query("begin");
          await victim.query("update accounts set balance = balance - 100 where id = $1", [a]);
          await victim.query("update accounts set balance = balance + 100 where id = $1", [b]);
          const err = await errorOf(victim.query("commit"));
          assert.ok(err, "the gateway died before it answered the COMMIT");
          assert.ok(await eventually(() => !c.cluster.running().multigateway), "gateway gone");
          await c.cluster.start();
          // The recovery finishes what was prepared (after 2 s without a decision).
          assert.ok(
            await eventually(async () => (await preparedLeft()) === 0, 30_000),
            "nothing left prepared",
          );
          const moved = outcome === "committed" ? 100 : 0;
          const fresh = await client({ database: "bank" });
          const r = await fresh.query(
            "select id, balance from accounts where id = any($1) order by id",
            [[a, b]],
          );
          const got = new Map(r.rows.map((x: { id: string; balance: number }) => [
            Number(x.id),
            x.balance,
          ]));
          assert.equal(got.get(a), START_BALANCE - moved);
          assert.equal(got.get(b), START_BALANCE + moved);
          assert.equal(await total(), ACCOUNTS * START_BALANCE);
          assert.ok(
            await eventually(async () => (await decisionsLeft()) === 0, 30_000),
            "commit decisions forgotten",
          );
        });
      }

      // Kills of a participant while the gateway is held at each step of a commit (`pause@STEP`):
      // its pooler or its whole Postgres (kill -9 of every process of it; its pooler has pgctld
      // start it again, which restores what was prepared). A shard's pooler is started again by
      // the shard provisioner, as under `cluster start`; the default tablegroup's, which nothing
      // watches, by the test, as `cluster start` would. The participants are the block's shards
      // in the order it touched them (0-8, then 8-inf), after the default tablegroup's when the
      // block wrote there too (the ledger). A participant that dies before its PREPARE loses its
      // part of the block: rolled back everywhere, and the client's COMMIT fails. One that had
      // prepared keeps it (it is durable): committed by the gateway or by the recovery, and the
      // client's COMMIT succeeds (or, when the client's own pooler session was the one killed,
      // may fail without saying which way it went).
      type Victim = { kill: "pooler" | "postgres"; shard: "0-8" | "8-inf" | "default" };
      type Case = Victim & { outcome: "committed" | "rolled back"; mayFail?: true };
      const participantKills: [string, Case[]][] = [
        ["before_prepare", [
          { kill: "pooler", shard: "8-inf", outcome: "rolled back" },
          { kill: "postgres", shard: "0-8", outcome: "rolled back" },
        ]],
        ["between_prepares", [
          { kill: "pooler", shard: "0-8", outcome: "committed" }, // it had prepared
          { kill: "postgres", shard: "0-8", outcome: "committed" },
          { kill: "postgres", shard: "8-inf", outcome: "rolled back" }, // it had not
        ]],
        ["after_prepares", [
          { kill: "pooler", shard: "8-inf", outcome: "committed" },
          { kill: "postgres", shard: "0-8", outcome: "committed" },
          // The decision's own server: it is written once Postgres is back.
          { kill: "postgres", shard: "default", outcome: "committed" },
        ]],
        ["after_decision", [
          { kill: "pooler", shard: "0-8", outcome: "committed" },
          { kill: "postgres", shard: "8-inf", outcome: "committed" },
          // The client's own session there moves to the restarted pooler; the COMMIT PREPARED
          // sent meanwhile waits for the move to end (it once hung, sent mid-move).
          { kill: "pooler", shard: "default", outcome: "committed", mayFail: true },
        ]],
        ["between_commits", [ // the first participant committed, the others not yet
          { kill: "pooler", shard: "8-inf", outcome: "committed" },
          { kill: "postgres", shard: "8-inf", outcome: "committed" },
        ]],
      ];
      const cellOf = (shard: Victim["shard"]): LocalCluster => {
        if (shard === "default") return c.cluster;
        const cell = new ShardProvisioner(c.cluster, () => {}).allCells().find((m) =>
          m.cfg.shard?.tablegroup === "accts" && m.cfg.shard.name === shard
        );
        assert.ok(cell, `the cell of shard ${shard}`);
        return cell;
      };
      /** Kills the victim; resolves once every process it killed is gone. */
      const kill = async ({ kill, shard }: Victim) => {
        const cell = cellOf(shard);
        let pids: number[];
        if (kill === "pooler") {
          const pid = cell.running().multipooler;
          assert.ok(pid, `${shard}'s pooler runs`);
          Deno.kill(pid, "SIGKILL");
          pids = [pid];
        } else {
          pids = await crashPostgres(cell);
        }
        assert.ok(await eventually(() => !pids.some(alive), 10_000), `${shard}'s ${kill} gone`);
      };
      /** The balances of `ids`, read on the shards themselves. */
      const balances = async (ids: number[]) => {
        const got = new Map<number, number>();
        for (
          const rows of await onShards(async (sh) =>
            (await sh.query("select id, balance from accounts where id = any($1)", [ids])).rows
          )
        ) {
          for (const r of rows) got.set(Number(r.id), r.balance);
        }
        return ids.map((id) => got.get(id));
      };
      const ledgerNotes = (note: string) =>
        fresh(
          c.directPort,
          "bank",
          async (cl) =>
            (await cl.query("select count(*)::int as n from ledger where note = $1", [note]))
              .rows[0].n as number,
        );
      /** Both shards and the default tablegroup answer through the gateway again. */
      const serves = () =>
        eventually(
          async () => {
            const cl = await client({ database: "bank" });
            try {
              await cl.query("select count(*) from accounts");
              await cl.query("select count(*) from ledger");
              return true;
            } finally {
              await cl.end().catch(() => {});
            }
          },
          60_000,
          250,
        );
      let pair = 11;
      const seen: string[] = [];
      try {
        for (const [step, cases] of participantKills) {
          await restartGateway(`pause@${step}`);
          for (const v of cases) {
            const name = `${step.replace("_", " ")}, ${v.shard}'s ${v.kill} killed: ${v.outcome}`;
            await t.step(`held ${name}`, async () => {
              const [a, b] = [onLow[pair % onLow.length], onHigh[pair % onHigh.length]];
              const note = `held ${pair++}`;
              const before = await balances([a, b]);
              const victim = await client({ database: "bank" });
              await victim.query("begin");
              if (v.shard === "default") {
                await victim.query("insert into ledger (note) values ($1)", [note]);
              }
              await victim.query("update accounts set balance = balance - 100 where id = $1", [a]);
              await victim.query("update accounts set balance = balance + 100 where id = $1", [b]);
              const committing = errorOf(victim.query("commit"));
              assert.ok(
                await eventually(() => Deno.stat(pauseFile).then(() => true), 30_000, 50),
                `the gateway held the commit ${step}`,
              );
              await kill(v);
              await Deno.remove(pauseFile);
              const released = Date.now();
              // Nothing watches the default tablegroup's pooler: started again as
              // `cluster start` does, while the commit goes on.
              const restarting = v.shard === "default" && v.kill === "pooler"
                ? c.cluster.start()
                : undefined;
              const err = await committing;
              const answeredMs = Date.now() - released;
              await restarting;
              await victim.end().catch(() => {});
              seen.push(
                `${step} / ${v.shard}'s ${v.kill}: ` +
                  (err ? `ERROR ${err.code} ${err.message}` : "COMMIT") + ` (${answeredMs} ms)`,
              );
              const moved = v.outcome === "committed" ? 100 : 0;
              if (v.outcome === "rolled back") assert.ok(err, "the COMMIT fails");
              else if (!v.mayFail) {
                assert.equal(err, null, `the COMMIT is acknowledged (${err?.message})`);
                // The gateway committed it everywhere before it said so (the victim was back
                // in time), as Postgres's COMMIT: visible at once, not only after the recovery.
                assert.deepEqual(await balances([a, b]), [before[0]! - 100, before[1]! + 100]);
              }
              // The victim comes back and the recovery (after 2 s) finishes what is prepared.
              assert.ok(await serves(), "every shard serves again");
              assert.ok(
                await eventually(async () => (await preparedLeft()) === 0, 60_000, 250),
                "nothing left prepared",
              );
              assert.deepEqual(await balances([a, b]), [before[0]! - moved, before[1]! + moved]);
              if (v.shard === "default") {
                assert.equal(await ledgerNotes(note), moved ? 1 : 0, "the ledger's row");
              }
              assert.equal(await total(), ACCOUNTS * START_BALANCE);
              assert.ok(
                await eventually(async () => (await decisionsLeft()) === 0, 30_000),
                "commit decisions forgotten",
              );
            });
          }
        }
      } finally {
        await Deno.remove(pauseFile).catch(() => {});
        await restartGateway();
        console.log(`what a client's COMMIT got, participant killed:\n  ${seen.join("\n  ")}`);
      }

      await t.step(
        "pgbench's own tpcb-like workload on four sharded tables keeps its invariants",
        async () => {
          // A new connection: the gateway restarted in the steps above.
          await (await client()).query("create database pgb");
          const pgb = await client({ database: "pgb" });
          await pgb.query("create tablegroup bench shards 2");
          for (
            const ddl of [
              "create table pgbench_branches (bid int primary key, bbalance int, filler char(88)) in bench",
              "create table pgbench_tellers (tid int primary key, bid int, tbalance int, filler char(84)) in bench",
              "create table pgbench_accounts (aid int primary key, bid int, abalance int, filler char(84)) in bench",
              "create table pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22)) in bench shard by (aid)",
            ]
          ) await pgb.query(ddl);
          // Scale 1, loaded on each shard directly (slots 3 and 4: the second tablegroup of the
          // cluster): its share of every table, by Postgres's own hash.
          const rows: [string, string, number][] = [
            ["pgbench_branches", "k, 0, ''", 1],
            ["pgbench_tellers", "k, (k - 1) / 10 + 1, 0, ''", 10],
            ["pgbench_accounts", "k, (k - 1) / 100000 + 1, 0, ''", 100_000],
          ];
          for (const [slot, shard] of [[3, "0-8"], [4, "8-inf"]] as const) {
            const sh = await client({
              port: shardPorts(OFFSET, slot, 0).postgres,
              database: "pgb",
              direct: true,
            });
            for (const [table, values, n] of rows) {
              await sh.query(
                `insert into ${table} select ${values} from generate_series(1, ${n}) k
                where ${inRangeSql(keyspaceIdSql("int4", "k"), parseKeyRange(shard))}`,
              );
            }
          }
          const run = await new Deno.Command("pgbench", {
            args: [
              "-h",
              "127.0.0.1",
              "-p",
              String(c.port),
              "-U",
              "postgres",
              "-n",
              "-b",
              "tpcb-like",
              "-c",
              "4",
              "-j",
              "2",
              "-t",
              "150",
              "pgb",
            ],
            env: { PGPASSWORD: c.password, PGSSLMODE: "disable" },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const out = new TextDecoder().decode(run.stdout);
          const err = new TextDecoder().decode(run.stderr);
          assert.equal(
            run.code,
            0,
            `pgbench failed: ${err.trim().split("\n").slice(-3).join(" | ")}`,
          );
          const done = Number(/actually processed: (\d+)/.exec(out)?.[1]);
          assert.equal(done, 600, out);
          console.log(`pgbench tpcb-like through the gateway: ${/tps = [\d.]+/.exec(out)?.[0]}`);
          // pgbench's invariants, over both shards.
          const sums = await pgb.query(
            `select (select sum(abalance) from pgbench_accounts)::int8 as a,
                  (select sum(tbalance) from pgbench_tellers)::int8 as t,
                  (select sum(bbalance) from pgbench_branches)::int8 as b,
                  (select sum(delta) from pgbench_history)::int8 as h,
                  (select count(*) from pgbench_history)::int8 as n`,
          ).catch(async () => {
            // Scalar subqueries over shards may not merge: sum them shard by shard instead.
            let a = 0, tt = 0, b = 0, h = 0, n = 0;
            for (const slot of [3, 4]) {
              const sh = await client({
                port: shardPorts(OFFSET, slot, 0).postgres,
                database: "pgb",
                direct: true,
              });
              const r = await sh.query(
                `select coalesce((select sum(abalance) from pgbench_accounts), 0)::int8 as a,
                      coalesce((select sum(tbalance) from pgbench_tellers), 0)::int8 as t,
                      coalesce((select sum(bbalance) from pgbench_branches), 0)::int8 as b,
                      coalesce((select sum(delta) from pgbench_history), 0)::int8 as h,
                      (select count(*) from pgbench_history)::int8 as n`,
              );
              a += Number(r.rows[0].a);
              tt += Number(r.rows[0].t);
              b += Number(r.rows[0].b);
              h += Number(r.rows[0].h);
              n += Number(r.rows[0].n);
            }
            return { rows: [{ a, t: tt, b, h, n }] };
          });
          const s = sums.rows[0];
          assert.equal(Number(s.n), 600, "one history row per transaction");
          assert.equal(Number(s.a), Number(s.h));
          assert.equal(Number(s.t), Number(s.h));
          assert.equal(Number(s.b), Number(s.h));
          assert.equal(await preparedLeft(), 0);
        },
      );
    } finally {
      for (const cl of opened) await cl.end().catch(() => {});
      await c.stop();
    }
  },
});
