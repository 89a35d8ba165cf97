// The merge against Postgres itself (ports 26201+): one throwaway PostgreSQL 15 holds an
// unsharded copy of the data (database `plain`) and the same rows split by the real keyspace
// hash over 2 and over 4 "shard" databases. Each query is planned by the gateway's planner; the
// rewritten statement runs on every shard database over a raw wire connection in the extended
// protocol, exactly as the gateway sends it, and the merged answer must be the one `plain`
// gives for the client's own statement: RowDescription (all but the table OIDs), rows (in order
// where ORDER BY fixes it), CommandComplete tag, or the same SQLSTATE. Refused shapes must be
// refused with 0A000 (and run fine on `plain`, so they are real queries).

import assert from "node:assert/strict";
import { BackendCode, concatBytes, FrontendCode, SYNC, WireWriter } from "../../shared/wire/mod.ts";
import { equalRanges, inRange, keyspaceId, parseKeyRange } from "../../shared/keyspace/mod.ts";
import { initPlanner, type MergeSpec, planQuery } from "../planner/mod.ts";
import {
  bindMessage,
  type MergeLookup,
  mergeOf,
  parseMessage,
  rewriteExtended,
  rewriteQuery,
} from "../shardsession/merged_unit.ts";
import { concatAnswers } from "../shardsession/mod.ts";
import { mergeAnswers } from "./mod.ts";
import { withThrowawayPostgres } from "../../../tests/helpers/throwaway_postgres.ts";
import { RawConn } from "./_testing_wire.ts";
import { type Case, MERGED, REFUSED, rows, SCHEMA, VIEW } from "./_differential_cases.ts";

const PORT = 26201;
/** A server like the cluster's: UTF8, C.UTF-8 (text sorts by code point). */
const MERGE_POSTGRES = { locale: "C.UTF-8", name: "merge_test", maxConnections: 20 };

// ---- running ----

function frame(write: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter(64);
  write(w);
  return w.view().slice();
}

interface Message {
  code: number;
  frame: Uint8Array;
}

function split(b: Uint8Array): Message[] {
  const out: Message[] = [];
  for (let off = 0; off < b.length;) {
    const len = new DataView(b.buffer, b.byteOffset + off + 1).getInt32(0);
    out.push({ code: b[off], frame: b.subarray(off, off + 1 + len) });
    off += 1 + len;
  }
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The client's unit: a simple Query, or Parse/Bind/Describe P/Execute/Sync. */
function clientUnit(c: Case, extended: boolean): Message[] {
  if (!extended) {
    const q = frame((w) => w.begin(FrontendCode.Query).cstring(inline(c)).end());
    return [{ code: FrontendCode.Query, frame: q }];
  }
  const params = c.params ?? [];
  return [
    parseMessage("", c.sql, []),
    bindMessage({
      portal: "",
      statement: "",
      formats: [],
      values: params.map((p) => p === null ? null : enc.encode(p)),
      resultFormats: c.binary ? [1] : [],
    }),
    {
      code: FrontendCode.Describe,
      frame: frame((w) => w.begin(FrontendCode.Describe).int8(0x50).cstring("").end()),
    },
    {
      code: FrontendCode.Execute,
      frame: frame((w) => w.begin(FrontendCode.Execute).cstring("").int32(0).end()),
    },
    { code: FrontendCode.Sync, frame: SYNC },
  ];
}

/** The simple-protocol text of a case: parameters written in as literals. */
function inline(c: Case): string {
  let sql = c.sql;
  (c.params ?? []).forEach((p, i) => {
    sql = sql.replaceAll(`$${i + 1}`, p === null ? "NULL" : p);
  });
  return sql;
}

interface Answer {
  error: string | null;
  fields: string[];
  rows: string[];
  tag: string | null;
}

function answerOf(bytes: Uint8Array): Answer {
  const a: Answer = { error: null, fields: [], rows: [], tag: null };
  for (const m of split(bytes)) {
    if (m.code === BackendCode.ErrorResponse) {
      const b = m.frame.subarray(5);
      for (let i = 0; i < b.length && b[i] !== 0;) {
        const code = b[i];
        let j = i + 1;
        while (b[j] !== 0) j++;
        if (code === 0x43 /* C */) a.error = dec.decode(b.subarray(i + 1, j));
        i = j + 1;
      }
    } else if (m.code === BackendCode.RowDescription) {
      const dv = new DataView(m.frame.buffer, m.frame.byteOffset);
      const n = dv.getInt16(5);
      let off = 7;
      for (let i = 0; i < n; i++) {
        let end = off;
        while (m.frame[end] !== 0) end++;
        const name = dec.decode(m.frame.subarray(off, end));
        off = end + 1;
        // All but the table OID (another database's table).
        a.fields.push(
          [
            name,
            dv.getInt16(off + 4),
            dv.getUint32(off + 6),
            dv.getInt16(off + 10),
            dv.getInt32(off + 12),
            dv.getInt16(off + 16),
          ].join("/"),
        );
        off += 18;
      }
    } else if (m.code === BackendCode.DataRow) {
      a.rows.push(Array.from(m.frame, (x) => x.toString(16).padStart(2, "0")).join(""));
    } else if (m.code === BackendCode.CommandComplete) {
      a.tag = dec.decode(m.frame.subarray(5, m.frame.length - 1));
    }
  }
  return a;
}

/** A DataRow (hex) as its values (text when printable). */
function values(hex: string): (string | null)[] {
  const b = new Uint8Array(hex.match(/../g)!.map((x) => parseInt(x, 16)));
  const dv = new DataView(b.buffer);
  const n = dv.getInt16(5);
  const out: (string | null)[] = [];
  for (let i = 0, off = 7; i < n; i++) {
    const len = dv.getInt32(off);
    off += 4;
    if (len < 0) out.push(null);
    else {
      out.push(
        Array.from(b.subarray(off, off + len), (x) => x.toString(16).padStart(2, "0")).join(""),
      );
      off += len;
    }
  }
  return out;
}

function listItems(hexValue: string | null): string {
  if (hexValue === null) return "NULL";
  const text = dec.decode(new Uint8Array(hexValue.match(/../g)?.map((x) => parseInt(x, 16)) ?? []));
  const inner = text.startsWith("{") ? text.slice(1, -1) : text;
  return inner.split(/, ?|,/).sort().join("|");
}

/** A numeric or float's text as a canonical value (no trailing zeros, no minus zero). */
function byValue(hexValue: string | null): string | null {
  if (hexValue === null) return null;
  let text = dec.decode(new Uint8Array(hexValue.match(/../g)?.map((x) => parseInt(x, 16)) ?? []));
  if (text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return text === "-0" ? "0" : text;
}

function compare(c: Case, got: Answer, want: Answer, label: string): void {
  assert.equal(got.error, want.error, `${label}: SQLSTATE`);
  assert.deepEqual(got.fields, want.fields, `${label}: RowDescription`);
  assert.equal(got.tag, want.tag, `${label}: tag`);
  const order = c.order ?? "set";
  const norm = (rows: string[]) =>
    c.unordered || c.byValue
      ? rows.map((r) =>
        values(r).map((v, i) =>
          c.unordered?.includes(i) ? listItems(v) : c.byValue?.includes(i) ? byValue(v) : v
        ).join(",")
      )
      : rows;
  const g = norm(got.rows);
  const w = norm(want.rows);
  if (order === "exact") assert.deepEqual(g, w, `${label}: rows in order`);
  else if (order === "set") assert.deepEqual([...g].sort(), [...w].sort(), `${label}: rows`);
  else {
    const keys = "keys" in order ? order.keys : order.keysOnly;
    const project = (rows: string[]) => rows.map((r) => keys.map((k) => values(r)[k]).join(","));
    assert.deepEqual(project(g), project(w), `${label}: sort keys in order`);
    if ("keys" in order) assert.deepEqual([...g].sort(), [...w].sort(), `${label}: rows`);
  }
}

Deno.test({
  name: "merged answers are Postgres's own, over 2 and 4 shards, in both protocols",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await initPlanner();
    await withThrowawayPostgres(PORT, MERGE_POSTGRES, async () => {
      const admin = await RawConn.open(PORT, "postgres");
      const layouts = { 2: equalRanges(2), 4: equalRanges(4) } as Record<number, string[]>;
      const dbs = [
        "plain",
        ...layouts[2].map((_, i) => `s2_${i}`),
        ...layouts[4].map((_, i) => `s4_${i}`),
      ];
      for (const db of dbs) {
        await admin.run(
          frame((w) => w.begin(FrontendCode.Query).cstring(`create database ${db}`).end()),
        );
      }
      await admin.close();
      const conns = new Map<string, RawConn>();
      try {
        for (const db of dbs) conns.set(db, await RawConn.open(PORT, db));
        const q = (sql: string) => frame((w) => w.begin(FrontendCode.Query).cstring(sql).end());
        const data = rows();
        for (const db of dbs) {
          const r = answerOf(await conns.get(db)!.run(q(SCHEMA)));
          assert.equal(r.error, null, `schema on ${db}`);
        }
        for (const [table, list] of Object.entries(data)) {
          for (const n of [2, 4]) {
            const ranges = layouts[n].map(parseKeyRange);
            const parts: string[][] = ranges.map(() => []);
            for (const row of list) {
              const at = ranges.findIndex((r) => inRange(r, keyspaceId("int8", String(row.key))));
              parts[at].push(`(${row.values})`);
            }
            for (let s = 0; s < n; s++) {
              if (parts[s].length === 0) continue;
              const r = answerOf(
                await conns.get(`s${n}_${s}`)!.run(
                  q(`insert into ${table} values ${parts[s].join(", ")}`),
                ),
              );
              assert.equal(r.error, null, `insert into ${table} on s${n}_${s}: ${r.error}`);
            }
          }
          const all = list.map((row) => `(${row.values})`).join(", ");
          const r = answerOf(
            await conns.get("plain")!.run(q(`insert into ${table} values ${all}`)),
          );
          assert.equal(r.error, null, `insert into ${table}: ${r.error}`);
        }

        const run = async (c: Case, extended: boolean, n: number): Promise<Answer> => {
          const unit = clientUnit(c, extended);
          const plan = planQuery(extended ? c.sql : inline(c), VIEW);
          const spec = mergeOf(plan);
          assert.ok(spec, `${c.sql}: planned as ${JSON.stringify(plan)}`);
          const shards = Array.from({ length: n }, (_, i) => conns.get(`s${n}_${i}`)!);
          const lookup: MergeLookup = {
            statement: () => undefined,
            text: (sql) => mergeOf(planQuery(sql, VIEW)),
            columns: async (sp: MergeSpec) => {
              const d = frame((w) => w.begin(FrontendCode.Describe).int8(0x53).cstring("").end());
              const a = await shards[0].run(
                concatBytes([parseMessage("", sp.sql, []).frame, d, SYNC]),
              );
              const rd = split(a).find((m) => m.code === BackendCode.RowDescription);
              return rd ? new DataView(rd.frame.buffer, rd.frame.byteOffset).getInt16(5) : null;
            },
          };
          let rewritten;
          try {
            rewritten = extended
              ? await rewriteExtended(unit, lookup)
              : await rewriteQuery(spec, lookup);
          } catch (e) {
            return {
              error: (e as { sqlstate?: string }).sqlstate ?? String(e),
              fields: [],
              rows: [],
              tag: null,
            };
          }
          const payload = concatBytes(rewritten.messages.map((m) => m.frame));
          const answers = await Promise.all(shards.map((s) => s.run(payload)));
          try {
            return answerOf(mergeAnswers(answers, rewritten.script));
          } catch (e) {
            return {
              error: (e as { sqlstate?: string }).sqlstate ?? String(e),
              fields: [],
              rows: [],
              tag: null,
            };
          }
        };

        let count = 0;
        await t.step(`${MERGED.length} merged queries`, async () => {
          const failures: string[] = [];
          for (const c of MERGED) {
            for (const extended of [false, true]) {
              if (c.binary && !extended) continue;
              const unit = clientUnit(c, extended);
              const want = answerOf(
                await conns.get("plain")!.run(concatBytes(unit.map((m) => m.frame))),
              );
              assert.equal(want.error, null, `${c.sql} fails on plain: ${want.error}`);
              for (const n of [2, 4]) {
                const label = `${c.sql} [${extended ? "extended" : "simple"}, ${n} shards]`;
                try {
                  compare(c, await run(c, extended, n), want, label);
                } catch (e) {
                  failures.push(String((e as Error).message).split("\n").slice(0, 12).join("\n"));
                }
                count++;
              }
            }
          }
          console.log(`${count} comparisons of ${MERGED.length} queries`);
          assert.deepEqual(failures, []);
        });

        await t.step(
          "a named statement: Describe gives the client's columns, Binds run it",
          async () => {
            const sql =
              "select grp, count(*) as n, avg(total) from t where id > $1 group by grp order by 2 desc, 1 limit $2";
            const describe = frame((w) =>
              w.begin(FrontendCode.Describe).int8(0x53).cstring("st").end()
            );
            const prepare = [parseMessage("st", sql, []), {
              code: FrontendCode.Describe,
              frame: describe,
            }, { code: FrontendCode.Sync, frame: SYNC }];
            const plainRaw = await conns.get("plain")!.run(
              concatBytes(prepare.map((m) => m.frame)),
            );
            const want = answerOf(plainRaw);
            const shards = [0, 1].map((i) => conns.get(`s2_${i}`)!);
            const spec = mergeOf(planQuery(sql, VIEW))!;
            const lookup: MergeLookup = {
              statement: (name) => name === "st" ? spec : undefined,
              text: (q) => mergeOf(planQuery(q, VIEW)),
              columns: () => Promise.resolve(null),
            };
            const r = await rewriteExtended(prepare, lookup);
            const payload = concatBytes(r.messages.map((m) => m.frame));
            const answers = await Promise.all(shards.map((c) => c.run(payload)));
            const merged = mergeAnswers(answers, r.script);
            assert.deepEqual(answerOf(merged), want);
            const params = (a: Uint8Array) =>
              split(a).filter((m) => m.code === BackendCode.ParameterDescription).map((
                m,
              ) => [...m.frame]);
            assert.deepEqual(params(merged), params(plainRaw));
            assert.equal(params(merged).length, 1);
            for (const values of [["10", "3"], ["200", "2"], ["0", null]]) {
              const run = [
                bindMessage({
                  portal: "",
                  statement: "st",
                  formats: [],
                  values: values.map((v) => v === null ? null : enc.encode(v)),
                  resultFormats: [],
                }),
                {
                  code: FrontendCode.Execute,
                  frame: frame((w) => w.begin(FrontendCode.Execute).cstring("").int32(0).end()),
                },
                { code: FrontendCode.Sync, frame: SYNC },
              ];
              const plain = answerOf(
                await conns.get("plain")!.run(concatBytes(run.map((m) => m.frame))),
              );
              const rr = await rewriteExtended(run, lookup);
              const got = answerOf(mergeAnswers(
                await Promise.all(
                  shards.map((c) => c.run(concatBytes(rr.messages.map((m) => m.frame)))),
                ),
                rr.script,
              ));
              compare({ sql, order: "exact" }, got, plain, `st with ${values}`);
            }
          },
        );

        await t.step(
          "UNION ALL of parts that each read the tablegroup: rows concatenated",
          async () => {
            for (
              const sql of [
                "select id, customer from t where grp = 1 union all select id, v from few",
                "select id from t where id in (1, 2) union all select id from t where id = 3 union all select order_id from items where qty = 2",
                "select total from t union all select n from e",
              ]
            ) {
              const plan = planQuery(sql, VIEW);
              assert.ok(
                plan.kind === "scatter" || plan.kind === "keyed",
                `${sql}: ${JSON.stringify(plan)}`,
              );
              for (const extended of [false, true]) {
                const unit = concatBytes(clientUnit({ sql }, extended).map((m) => m.frame));
                const want = answerOf(await conns.get("plain")!.run(unit));
                for (const n of [2, 4]) {
                  const shards = Array.from({ length: n }, (_, i) => conns.get(`s${n}_${i}`)!);
                  const got = answerOf(
                    concatAnswers(await Promise.all(shards.map((c) => c.run(unit)))),
                  );
                  compare({ sql }, got, want, `${sql} [${n} shards]`);
                  count++;
                }
              }
            }
          },
        );

        await t.step("negative LIMIT and OFFSET fail as in Postgres", async () => {
          for (
            const c of [
              { sql: "select id from t order by id limit $1", params: ["-1"] },
              { sql: "select id from t order by id offset $1", params: ["-2"] },
              { sql: "select id from t order by id limit $1 offset $2", params: ["-1", "-1"] },
              { sql: "select count(*) from t limit $1", params: ["-3"] },
              { sql: "select sum(big)::int from t where id < $1", params: ["10"] },
              { sql: "select avg(total)::int from t where id > $1", params: ["0"] },
            ] as Case[]
          ) {
            for (const extended of [false, true]) {
              const want = answerOf(
                await conns.get("plain")!.run(
                  concatBytes(clientUnit(c, extended).map((m) => m.frame)),
                ),
              );
              assert.ok(want.error);
              const got = await run(c, extended, 2);
              assert.equal(got.error, want.error, c.sql);
            }
          }
        });

        await t.step(
          "types the merge cannot compare or convert are refused with 0A000",
          async () => {
            for (
              const sql of [
                "select min(d)::text from t",
                "select id from t order by array[id] limit 3",
                "select distinct array[grp] from t",
                "select avg(r) from t",
              ]
            ) {
              for (const extended of [false, true]) {
                const c: Case = { sql };
                const want = answerOf(
                  await conns.get("plain")!.run(
                    concatBytes(clientUnit(c, extended).map((m) => m.frame)),
                  ),
                );
                assert.equal(want.error, null, sql);
                const got = await run(c, extended, 2);
                assert.equal(got.error, "0A000", sql);
                count++;
              }
            }
          },
        );

        await t.step(`${REFUSED.length} shapes are refused with 0A000`, async () => {
          for (const sql of REFUSED) {
            const want = answerOf(await conns.get("plain")!.run(q(sql)));
            assert.equal(want.error, null, `${sql} fails on plain: ${want.error}`);
            const plan = planQuery(sql, VIEW);
            assert.equal(plan.kind, "refused", `${sql}: ${JSON.stringify(plan)}`);
            assert.equal((plan as { sqlstate?: string }).sqlstate, "0A000", sql);
          }
        });
      } finally {
        for (const c of conns.values()) await c.close().catch(() => {});
      }
    });
  },
});
