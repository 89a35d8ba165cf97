// Keyspace ids against Postgres itself: a throwaway PostgreSQL 15 on 127.0.0.1:26101 hashes
// thousands of values per type (text and binary forms, errors included), and the same values go
// through keyspaceId/keyspaceIdBinary/keyspaceIdSql. Inputs come from a seeded generator.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type pg from "pg";
import { PgError } from "../errors/mod.ts";
import {
  equalRanges,
  inRange,
  inRangeSql,
  keyspaceId,
  keyspaceIdBinary,
  keyspaceIdSql,
  parseKeyRange,
  type ShardingType,
} from "./mod.ts";
import { withThrowawayClient } from "../../../tests/helpers/throwaway_postgres.ts";
import { intInputs, numericInputs, Rng, textInputs, uuidInputs } from "./_testing_values.ts";

const PORT = 26101;
const KEYSPACE_POSTGRES = { locale: "C", name: "keyspace_test", maxConnections: 10 };
const SEED = 20240601;
const PER_TYPE = 3000;

function hex16(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}

/** What Postgres's SQL reports, in our terms: the id's 16 hex digits or `ERR <code> <message>`. */
function ours(fn: () => bigint): string {
  try {
    return hex16(fn());
  } catch (e) {
    if (!(e instanceof PgError)) throw e;
    return `ERR ${e.sqlstate} ${e.message}`;
  }
}

function unsigned(int8Text: string): bigint {
  return BigInt.asUintN(64, BigInt(int8Text));
}

function preview(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…(${s.length})` : s);
}

function assertNoMismatch(what: string, mismatches: string[], total: number): void {
  assert.ok(total > 0, `${what}: nothing compared`);
  assert.equal(
    mismatches.length,
    0,
    `${what}: ${mismatches.length} of ${total} differ from Postgres, e.g.\n` +
      mismatches.slice(0, 10).join("\n"),
  );
}

// ---- without Postgres ----

Deno.test("keyspaceId() matches values taken from Postgres 15", () => {
  // select hashint8extended(42, 0), hashtextextended('', 0), … on PostgreSQL 15.18 (x86-64)
  assert.equal(keyspaceId("int8", "0"), unsigned("4154612158245552303"));
  assert.equal(keyspaceId("int8", "42"), unsigned("8010225493015854792"));
  assert.equal(keyspaceId("text", ""), unsigned("-6939563903564495251"));
  assert.equal(keyspaceId("text", "hello world!x"), unsigned("-6683131005855957752"));
  assert.equal(keyspaceId("numeric", "1.5"), unsigned("-8828336294488843818"));
  assert.equal(keyspaceId("numeric", "0.0001"), unsigned("7507508252608306359"));
  assert.equal(
    keyspaceId("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    unsigned("7543054272012930821"),
  );
});

Deno.test("keyspaceId() hashes int2, int4 and int8 alike, text and binary alike", () => {
  for (const v of [0, 1, -1, 42, -32768, 32767]) {
    const id = keyspaceId("int8", `${v}`);
    assert.equal(keyspaceId("int4", `${v}`), id);
    assert.equal(keyspaceId("int2", `${v}`), id);
    const b8 = new Uint8Array(8);
    new DataView(b8.buffer).setBigInt64(0, BigInt(v));
    assert.equal(keyspaceIdBinary("int8", b8), id);
    assert.equal(keyspaceIdBinary("int4", b8.subarray(4)), id);
    assert.equal(keyspaceIdBinary("int2", b8.subarray(6)), id);
  }
  assert.equal(
    keyspaceId("int8", " +0000000000000000000000000000042\n"),
    keyspaceId("int8", "42"),
  );
});

Deno.test("keyspaceId() hashes equal numerics alike, whatever the scale or sign", () => {
  const id = keyspaceId("numeric", "1.5");
  for (const s of ["1.50", "15e-1", "0.15e1", "-1.5", " +001.500000 ", "1.5E0"]) {
    assert.equal(keyspaceId("numeric", s), id, s);
  }
  for (const s of ["0", "0.000", "-0", "0e-16383", "0e1073741822"]) {
    assert.equal(keyspaceId("numeric", s), 0xffffffffffffffffn, s);
  }
  for (const s of ["NaN", "nan", "Infinity", "-inf"]) assert.equal(keyspaceId("numeric", s), 0n);
  // numeric(1.5) in binary: ndigits 2, weight 0, sign +, dscale 1, digits 1 and 5000
  const bin = new Uint8Array([0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88]);
  assert.equal(keyspaceIdBinary("numeric", bin), id);
});

Deno.test("keyspaceId() rejects what Postgres rejects, with its SQLSTATE and wording", () => {
  const cases: [ShardingType, string, string, string][] = [
    ["int8", "abc", "22P02", 'invalid input syntax for type bigint: "abc"'],
    ["int8", "0x10", "22P02", 'invalid input syntax for type bigint: "0x10"'],
    ["int8", "", "22P02", 'invalid input syntax for type bigint: ""'],
    [
      "int8",
      "9223372036854775808",
      "22003",
      'value "9223372036854775808" is out of range for type bigint',
    ],
    ["int4", "2147483648", "22003", 'value "2147483648" is out of range for type integer'],
    ["int2", "1_000", "22P02", 'invalid input syntax for type smallint: "1_000"'],
    ["uuid", "x", "22P02", 'invalid input syntax for type uuid: "x"'],
    ["numeric", "1.2.3", "22P02", 'invalid input syntax for type numeric: "1.2.3"'],
    ["numeric", "1e131072", "22003", "value overflows numeric format"],
    ["text", "a\0b", "22021", 'invalid byte sequence for encoding "UTF8": 0x00'],
  ];
  for (const [type, text, code, message] of cases) {
    assert.throws(
      () => keyspaceId(type, text),
      (e) => e instanceof PgError && e.sqlstate === code && e.message === message,
      `${type} ${JSON.stringify(text)}`,
    );
  }
  assert.throws(
    () => keyspaceId("text", "\ud800"),
    (e) => e instanceof PgError && e.sqlstate === "22021",
  );
  assert.throws(
    () => keyspaceIdBinary("int8", new Uint8Array(4)),
    (e) => e instanceof PgError && e.sqlstate === "08P01",
  );
  assert.throws(
    () => keyspaceIdBinary("uuid", new Uint8Array(17)),
    (e) => e instanceof PgError && e.sqlstate === "22P03",
  );
  assert.throws(
    () => keyspaceIdBinary("text", new Uint8Array([0x61, 0xe2, 0x82])),
    (e) =>
      e instanceof PgError && e.sqlstate === "22021" &&
      e.message === 'invalid byte sequence for encoding "UTF8": 0xe2 0x82',
  );
});

Deno.test("keyspaceId() reads uuid hex digits in either case and nothing else", () => {
  const hexDigits = "0123456789abcdefABCDEF";
  for (let ch = 0; ch < 0x3000; ch++) {
    const c = String.fromCharCode(ch);
    let accepted = true;
    try {
      keyspaceId("uuid", c.repeat(32));
    } catch {
      accepted = false;
    }
    assert.equal(accepted, hexDigits.includes(c), `U+${ch.toString(16)}`);
  }
});

Deno.test("keyspaceId() hashes text as UTF-8, surrogate pairs included", () => {
  const enc = new TextEncoder();
  for (const s of ["", "a", "é", "€", "日本", "😀", "a😀b", "\u{10ffff}", "x".repeat(300)]) {
    assert.equal(keyspaceId("text", s), keyspaceIdBinary("text", enc.encode(s)), s);
  }
  for (const s of ["\ud800", "a\udc00", "\ud83d", "\ude00\ud83d"]) {
    assert.throws(
      () => keyspaceId("text", s),
      (e) => e instanceof PgError && e.sqlstate === "22021",
      JSON.stringify(s),
    );
  }
});

Deno.test("keyspaceIdSql() writes the hash call in 16 hex digits", () => {
  assert.equal(
    keyspaceIdSql("int8", "id"),
    "lpad(to_hex(hashint8extended((id)::int8, 0)), 16, '0')",
  );
  assert.equal(
    keyspaceIdSql("int2", "a.b"),
    "lpad(to_hex(hashint8extended((a.b)::int8, 0)), 16, '0')",
  );
  assert.equal(
    keyspaceIdSql("numeric", "price"),
    "lpad(to_hex(hash_numeric_extended((price)::numeric, 0)), 16, '0')",
  );
  assert.equal(
    keyspaceIdSql("text", '"Name"'),
    `lpad(to_hex(hashtextextended(("Name")::text COLLATE "C", 0)), 16, '0')`,
  );
  assert.equal(
    keyspaceIdSql("uuid", "u"),
    "lpad(to_hex(uuid_hash_extended((u)::uuid, 0)), 16, '0')",
  );
});

// ---- against a real Postgres ----

const PG_TYPES: Record<ShardingType, { hash: string; send: string }> = {
  int2: { hash: "hashint2extended", send: "int2send" },
  int4: { hash: "hashint4extended", send: "int4send" },
  int8: { hash: "hashint8extended", send: "int8send" },
  numeric: { hash: "hash_numeric_extended", send: "numeric_send" },
  text: { hash: "hashtextextended", send: "textsend" },
  uuid: { hash: "uuid_hash_extended", send: "uuid_send" },
};

/** Runs each text through `keyspaceIdSql(type, '$1::type')` in Postgres, errors caught per row. */
async function postgresKids(client: pg.Client, type: ShardingType, texts: string[]) {
  const query = `select ${keyspaceIdSql(type, `$1::${type}`)}`;
  const res = await client.query(
    "select kid_try(t, $2) as r from unnest($1::text[]) with ordinality as u(t, n) order by n",
    [texts, query],
  );
  return res.rows.map((row: { r: string }) => row.r);
}

/**
 * Text form: every input through Postgres's input function and keyspaceIdSql (errors compared
 * too); then the accepted ones through the type's own hash function and its send function, to
 * check keyspaceId on the input, on Postgres's canonical output and keyspaceIdBinary on the
 * binary form.
 */
async function compareType(client: pg.Client, type: ShardingType, texts: string[]) {
  const fromPg = await postgresKids(client, type, texts);
  const mismatches: string[] = [];
  const accepted: string[] = [];
  texts.forEach((t, i) => {
    const mine = ours(() => keyspaceId(type, t));
    if (mine !== fromPg[i]) mismatches.push(`${preview(t)}: postgres ${fromPg[i]}, ours ${mine}`);
    if (!fromPg[i].startsWith("ERR")) accepted.push(t);
  });
  assertNoMismatch(`${type} text form`, mismatches, texts.length);
  assert.ok(accepted.length > texts.length / 2, `${type}: too few valid inputs`);

  const { hash, send } = PG_TYPES[type];
  const res = await client.query({
    text: `select (t::${type})::text as canon, ${hash}(t::${type}, 0)::text as h,
        hashint8extended(case when $2 then (t::${type})::text::int8 end, 0)::text as h8,
        ${send}(t::${type}) as bin
      from unnest($1::text[]) with ordinality as u(t, n) order by n`,
    values: [accepted, type === "int2" || type === "int4"],
  });
  const rows = res.rows as { canon: string; h: string; h8: string | null; bin: Uint8Array }[];
  const binMismatches: string[] = [];
  rows.forEach((row, i) => {
    const want = unsigned(row.h);
    const t = accepted[i];
    const got = [
      ["text", keyspaceId(type, t)],
      ["canonical text", keyspaceId(type, row.canon)],
      ["binary", keyspaceIdBinary(type, row.bin)],
    ] as const;
    for (const [form, id] of got) {
      if (id !== want) {
        binMismatches.push(`${preview(t)} (${form}): postgres ${hex16(want)}, ours ${hex16(id)}`);
      }
    }
    if (row.h8 !== null && unsigned(row.h8) !== want) {
      binMismatches.push(`${preview(t)}: hashint8extended differs from ${hash}`);
    }
  });
  assertNoMismatch(`${type} hash/canonical/binary forms`, binMismatches, rows.length);
  return { total: texts.length, accepted: accepted.length };
}

/** One binary parameter through Postgres (`$1::type`, sent in binary format). */
async function postgresBinary(client: pg.Client, type: ShardingType, bytes: Uint8Array) {
  try {
    const res = await client.query(`select ${keyspaceIdSql(type, `$1::${type}`)} as k`, [
      Buffer.from(bytes),
    ]);
    return res.rows[0].k as string;
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (err.code === undefined) throw e;
    return `ERR ${err.code} ${err.message}`;
  }
}

/** Postgres adds the parameter number to this one message; the rest must match exactly. */
function sameOutcome(pgOut: string, mine: string): boolean {
  if (pgOut === mine) return true;
  return mine === "ERR 22P03 incorrect binary data format" &&
    /^ERR 22P03 incorrect binary data format in bind parameter \d+$/.test(pgOut);
}

async function compareBinary(client: pg.Client, type: ShardingType, inputs: Uint8Array[]) {
  const mismatches: string[] = [];
  for (const bytes of inputs) {
    const pgOut = await postgresBinary(client, type, bytes);
    const mine = ours(() => keyspaceIdBinary(type, bytes));
    if (!sameOutcome(pgOut, mine)) {
      mismatches.push(`${Buffer.from(bytes).toString("hex")}: postgres ${pgOut}, ours ${mine}`);
    }
  }
  assertNoMismatch(`${type} binary parameters`, mismatches, inputs.length);
}

/** Binary numerics as clients may build them: zero digits at either end, digits beyond dscale… */
function oddNumerics(rng: Rng, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const ndigits = rng.int(9);
    const weight = rng.chance(0.05) ? rng.pick([-32768, -32767, 32767, 32766]) : rng.int(13) - 6;
    const sign = rng.chance(0.05)
      ? rng.pick([0xc000, 0xd000, 0xf000, 0x8000, 0x1234])
      : rng.pick([0x0000, 0x4000]);
    const dscale = rng.chance(0.03) ? 0x4000 : rng.int(rng.chance(0.2) ? 40 : 12);
    const digits: number[] = [];
    for (let d = 0; d < ndigits; d++) {
      const r = rng.int(10);
      digits.push(r < 3 ? 0 : r < 4 ? rng.pick([1, 10, 100, 1000, 9999]) : rng.int(10000));
    }
    if (rng.chance(0.02) && ndigits > 0) {
      digits[rng.int(ndigits)] = rng.pick([10000, 0xffff, 0x8000]);
    }
    const bytes = new Uint8Array(8 + 2 * ndigits);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, ndigits);
    view.setInt16(2, weight);
    view.setUint16(4, sign);
    view.setUint16(6, dscale);
    digits.forEach((d, k) => view.setUint16(8 + 2 * k, d));
    const cut = rng.int(50);
    if (cut === 0) out.push(bytes.subarray(0, rng.int(bytes.length)));
    else if (cut === 1) out.push(new Uint8Array([...bytes, 0, 1]));
    else out.push(bytes);
  }
  return out;
}

/** Byte strings for text: valid UTF-8, and near misses (truncated, overlong, surrogates, NUL). */
function oddTexts(rng: Rng, count: number): Uint8Array[] {
  const enc = new TextEncoder();
  const bad = [
    [0x00],
    [0x80],
    [0xbf],
    [0xc0, 0x80],
    [0xc1, 0xbf],
    [0xc2],
    [0xe0, 0x80, 0x80],
    [0xe0, 0x9f, 0xbf],
    [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf5, 0x80, 0x80, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xff],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
  ];
  const out: Uint8Array[] = [new Uint8Array(0)];
  for (let i = 0; i < count; i++) {
    const s = rng.digits(rng.int(20));
    const prefix = enc.encode(s + (rng.chance(0.5) ? "é😀" : ""));
    if (rng.chance(0.6)) {
      out.push(new Uint8Array([...prefix, ...rng.pick(bad), ...enc.encode("tail")]));
    } else {
      out.push(prefix);
    }
  }
  return out;
}

Deno.test("keyspace ids equal Postgres's own hash functions", async (t) => {
  const rng = new Rng(SEED);
  await withThrowawayClient(PORT, KEYSPACE_POSTGRES, async (client) => {
    await client.query(`
      create function kid_try(t text, q text) returns text language plpgsql as $$
      declare r text;
      begin
        execute q using t into r;
        return r;
      exception when others then
        return 'ERR ' || sqlstate || ' ' || sqlerrm;
      end $$`);

    const counts: Record<string, string> = {};
    for (const type of ["int8", "int4", "int2"] as const) {
      await t.step(`${type}: text and binary forms`, async () => {
        const bits = type === "int8" ? 64 : type === "int4" ? 32 : 16;
        const r = await compareType(client, type, intInputs(rng, bits, PER_TYPE));
        counts[type] = `${r.total} texts, ${r.accepted} valid`;
      });
    }
    await t.step("numeric: text and binary forms", async () => {
      const r = await compareType(client, "numeric", numericInputs(rng, PER_TYPE));
      counts.numeric = `${r.total} texts, ${r.accepted} valid`;
    });
    await t.step("text: text and binary forms", async () => {
      const r = await compareType(client, "text", textInputs(rng, PER_TYPE));
      counts.text = `${r.total} texts, ${r.accepted} valid`;
    });
    await t.step("uuid: text and binary forms", async () => {
      const r = await compareType(client, "uuid", uuidInputs(rng, PER_TYPE));
      counts.uuid = `${r.total} texts, ${r.accepted} valid`;
    });

    await t.step("numeric: odd binary parameters, as numeric_recv reads them", async () => {
      await compareBinary(client, "numeric", oddNumerics(rng, 600));
    });
    await t.step("text: binary parameters that are not valid UTF-8", async () => {
      await compareBinary(client, "text", oddTexts(rng, 200));
    });
    await t.step("int and uuid: binary parameters of every length", async () => {
      for (const [type, size] of [["int2", 2], ["int4", 4], ["int8", 8], ["uuid", 16]] as const) {
        const inputs: Uint8Array[] = [];
        for (let len = 0; len <= size + 2; len++) inputs.push(rng.bytes(len), rng.bytes(len));
        await compareBinary(client, type, inputs);
      }
    });

    await t.step("inRangeSql() agrees with inRange()", async () => {
      const ids = intInputs(rng, 64, 400).filter((s) => /^-?\d+$/.test(s));
      const values = ids.filter((s) => ours(() => keyspaceId("int8", s)).length === 16);
      const kidSql = keyspaceIdSql("int8", "v");
      const sample = keyspaceId("int8", values[0]);
      const ranges = [
        ...equalRanges(3),
        ...equalRanges(7),
        "0-inf",
        "40-80",
        `0-${hex16(sample)}`,
        `${hex16(sample)}-inf`,
        `${hex16(sample + 1n)}-inf`,
      ].map(parseKeyRange);
      const mismatches: string[] = [];
      for (const r of ranges) {
        const res = await client.query(
          `select ${
            inRangeSql(kidSql, r)
          } as inside from unnest($1::int8[]) with ordinality as u(v, n) order by n`,
          [values],
        );
        res.rows.forEach((row: { inside: boolean }, i: number) => {
          const mine = inRange(r, keyspaceId("int8", values[i]));
          if (row.inside !== mine) {
            mismatches.push(`${values[i]} in ${r.start}-${r.end}: postgres ${row.inside}`);
          }
        });
      }
      assertNoMismatch("inRangeSql", mismatches, values.length * ranges.length);
      const nullRow = await client.query(
        `select ${inRangeSql(keyspaceIdSql("int8", "NULL"), ranges[0])} as x`,
      );
      assert.equal(nullRow.rows[0].x, null);
    });

    console.log("compared with Postgres:", counts);
  });
});
