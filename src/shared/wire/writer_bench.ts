/**
 * Benchmarks of the write side: one reused {@linkcode WireWriter} against npm `pg-protocol`'s
 * `serialize` (frontend messages: Query, StartupMessage, Parse/Bind/Execute/Sync) and, for the
 * backend messages pg-protocol cannot write (RowDescription, DataRow), against a naive
 * `Buffer.concat` builder written here, clearly not pg-protocol.
 *
 * Every pair is checked byte for byte once at load. Each benchmark times its batch with
 * `b.start()`/`b.end()` and checks a byte count after `b.end()`, outside the timed region.
 *
 * ```sh
 * deno bench -A src/shared/wire/writer_bench.ts
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { serialize } from "pg-protocol";
import {
  BackendCode,
  type FieldDescription,
  FrontendCode,
  WireWriter,
  writeDataRow,
  writeQuery,
  writeRowDescription,
  writeStartupMessage,
  writeSync,
} from "./mod.ts";

function check(name: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${name}: checksum ${got}, want ${want}`);
}

function sameBytes(name: string, a: Uint8Array, b: Uint8Array): void {
  if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
    throw new Error(`${name}: ours and the alternative differ`);
  }
}

/** Messages per timed iteration for the small frontend messages (timer resolution). */
const BATCH = 100;

// ---- RowDescription + 100 DataRows: ours vs a naive Buffer.concat builder ----

const FIELDS: FieldDescription[] = [
  { name: "id", tableOid: 16384, columnAttr: 1, typeOid: 20, typeSize: 8 },
  { name: "name", tableOid: 16384, columnAttr: 2, typeOid: 25 },
  { name: "city", tableOid: 16384, columnAttr: 3, typeOid: 25 },
  { name: "note", tableOid: 16384, columnAttr: 4, typeOid: 25 },
  { name: "créé_le", tableOid: 16384, columnAttr: 5, typeOid: 1184, typeSize: 8 },
];

const NAMES = ["alice", "Zoë Ångström", "bob", "Łukasz Żółć", "carol", "山田太郎"];
const CITIES = ["Paris", "München", "Tokyo 東京", "São Paulo", "Oslo", "Kraków"];
const LONG_ASCII = "The quick brown fox jumps over the lazy dog, then naps for a while ".repeat(2);
const LONG_MIXED = "Ünïcödé note with accents — and a dash, longer than the ASCII fast path. ";

/** 100 rows of 5 text columns: short and long, ASCII and not, every 7th `note` NULL. */
const ROWS: (string | null)[][] = [];
for (let i = 0; i < 100; i++) {
  ROWS.push([
    String(1_000_000 + i),
    NAMES[i % NAMES.length],
    CITIES[i % CITIES.length],
    i % 7 === 0 ? null : i % 2 === 0 ? LONG_ASCII : LONG_MIXED,
    `2024-0${1 + (i % 9)}-1${i % 10} 12:34:56.789+02`,
  ]);
}

const rowWriter = new WireWriter();

function oursResult(w: WireWriter): Uint8Array {
  w.reset();
  writeRowDescription(w, FIELDS);
  for (let i = 0; i < ROWS.length; i++) writeDataRow(w, ROWS[i]);
  return w.view();
}

/** The naive alternative: a Buffer per field, `Buffer.concat` per frame and per batch. */
function naiveFrame(code: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = code;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function naiveInt16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function naiveInt32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function naiveRowDescription(fields: FieldDescription[]): Buffer {
  const parts: Buffer[] = [naiveInt16(fields.length)];
  for (const f of fields) {
    const meta = Buffer.alloc(18);
    meta.writeUInt32BE(f.tableOid ?? 0, 0);
    meta.writeInt16BE(f.columnAttr ?? 0, 4);
    meta.writeUInt32BE(f.typeOid, 6);
    meta.writeInt16BE(f.typeSize ?? -1, 10);
    meta.writeInt32BE(f.typeModifier ?? -1, 12);
    meta.writeInt16BE(f.format ?? 0, 16);
    parts.push(Buffer.from(f.name + "\0", "utf8"), meta);
  }
  return naiveFrame(BackendCode.RowDescription, Buffer.concat(parts));
}

function naiveDataRow(values: (string | null)[]): Buffer {
  const parts: Buffer[] = [naiveInt16(values.length)];
  for (const v of values) {
    if (v === null) {
      parts.push(naiveInt32(-1));
    } else {
      const data = Buffer.from(v, "utf8");
      parts.push(naiveInt32(data.length), data);
    }
  }
  return naiveFrame(BackendCode.DataRow, Buffer.concat(parts));
}

function naiveResult(): Buffer {
  const frames: Buffer[] = [naiveRowDescription(FIELDS)];
  for (let i = 0; i < ROWS.length; i++) frames.push(naiveDataRow(ROWS[i]));
  return Buffer.concat(frames);
}

const RESULT_BYTES = oursResult(rowWriter).length;
sameBytes("RowDescription + DataRows", oursResult(rowWriter), naiveResult());

Deno.bench({
  name: "ours: writeRowDescription + writeDataRow, reused WireWriter",
  group: "RowDescription (5 fields) + 100 DataRows (5 text columns)",
  baseline: true,
  fn(b) {
    b.start();
    const out = oursResult(rowWriter);
    b.end();
    check("ours rows", out.length, RESULT_BYTES);
  },
});

Deno.bench({
  name: "naive alternative (not pg-protocol): Buffer.from + Buffer.concat",
  group: "RowDescription (5 fields) + 100 DataRows (5 text columns)",
  fn(b) {
    b.start();
    const out = naiveResult();
    b.end();
    check("naive rows", out.length, RESULT_BYTES);
  },
});

// ---- Query ----

const SQL = "SELECT id, name, email FROM users WHERE id = 42 AND status = 'active'";
const queryWriter = new WireWriter();
const QUERY_BYTES = writeQuery(queryWriter.reset(), SQL).length;
sameBytes("Query", writeQuery(queryWriter.reset(), SQL).view(), serialize.query(SQL));

Deno.bench({
  name: `ours: writeQuery ×${BATCH}, reused WireWriter`,
  group: "Query",
  baseline: true,
  fn(b) {
    const w = queryWriter;
    let sum = 0;
    b.start();
    for (let i = 0; i < BATCH; i++) {
      w.reset();
      sum += writeQuery(w, SQL).view().length;
    }
    b.end();
    check("ours query", sum, BATCH * QUERY_BYTES);
  },
});

Deno.bench({
  name: `pg-protocol: serialize.query ×${BATCH}`,
  group: "Query",
  fn(b) {
    let sum = 0;
    b.start();
    for (let i = 0; i < BATCH; i++) sum += serialize.query(SQL).length;
    b.end();
    check("pg-protocol query", sum, BATCH * QUERY_BYTES);
  },
});

// ---- StartupMessage ----

const STARTUP_PARAMS = { user: "alice", database: "app", application_name: "bench-ünï" };
// pg-protocol always appends client_encoding=UTF8; we pass it explicitly.
const OUR_STARTUP_PARAMS = { ...STARTUP_PARAMS, client_encoding: "UTF8" };
const startupWriter = new WireWriter();
const STARTUP_BYTES = writeStartupMessage(startupWriter.reset(), OUR_STARTUP_PARAMS).length;
sameBytes(
  "StartupMessage",
  writeStartupMessage(startupWriter.reset(), OUR_STARTUP_PARAMS).view(),
  serialize.startup(STARTUP_PARAMS),
);

Deno.bench({
  name: `ours: writeStartupMessage ×${BATCH}, reused WireWriter`,
  group: "StartupMessage",
  baseline: true,
  fn(b) {
    const w = startupWriter;
    let sum = 0;
    b.start();
    for (let i = 0; i < BATCH; i++) {
      w.reset();
      sum += writeStartupMessage(w, OUR_STARTUP_PARAMS).view().length;
    }
    b.end();
    check("ours startup", sum, BATCH * STARTUP_BYTES);
  },
});

Deno.bench({
  name: `pg-protocol: serialize.startup ×${BATCH}`,
  group: "StartupMessage",
  fn(b) {
    let sum = 0;
    b.start();
    for (let i = 0; i < BATCH; i++) sum += serialize.startup(STARTUP_PARAMS).length;
    b.end();
    check("pg-protocol startup", sum, BATCH * STARTUP_BYTES);
  },
});

// ---- Parse + Bind + Execute + Sync (unnamed statement and portal, 3 text parameters) ----

const EXT_SQL = "SELECT id, name FROM users WHERE id = $1 AND city = $2 AND note = $3";
const EXT_VALUES: (string | null)[] = ["42", "München", null];

/**
 * Our extended-query batch, written with WireWriter primitives (the codec has no Parse/Bind
 * writers: the pooler forwards the client's frames). Same layout as pg-protocol: one format
 * code per parameter, one result format code.
 */
function writeExtended(w: WireWriter, sql: string, values: (string | null)[]): WireWriter {
  w.begin(FrontendCode.Parse).cstring("").cstring(sql).int16(0).end();
  w.begin(FrontendCode.Bind).cstring("").cstring("").int16(values.length);
  for (let i = 0; i < values.length; i++) w.int16(0);
  w.int16(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null) {
      w.int32(-1);
    } else {
      const at = w.length;
      w.int32(0).string(v);
      w.int32At(at, w.length - at - 4);
    }
  }
  w.int16(1).int16(0).end();
  w.begin(FrontendCode.Execute).cstring("").int32(0).end();
  return writeSync(w);
}

function pgExtended(): Buffer[] {
  return [
    serialize.parse({ text: EXT_SQL }),
    serialize.bind({ values: EXT_VALUES }),
    serialize.execute(),
    serialize.sync(),
  ];
}

function totalLength(bufs: Buffer[]): number {
  let n = 0;
  for (let i = 0; i < bufs.length; i++) n += bufs[i].length;
  return n;
}

const extWriter = new WireWriter();
const EXT_BYTES = writeExtended(extWriter.reset(), EXT_SQL, EXT_VALUES).length;
sameBytes(
  "Parse/Bind/Execute/Sync",
  writeExtended(extWriter.reset(), EXT_SQL, EXT_VALUES).view(),
  Buffer.concat(pgExtended()),
);

Deno.bench({
  name: `ours: Parse+Bind+Execute+Sync ×${BATCH}, one view each, reused WireWriter`,
  group: "Parse/Bind/Execute/Sync",
  baseline: true,
  fn(b) {
    const w = extWriter;
    let sum = 0;
    b.start();
    for (let i = 0; i < BATCH; i++) {
      w.reset();
      sum += writeExtended(w, EXT_SQL, EXT_VALUES).view().length;
    }
    b.end();
    check("ours extended", sum, BATCH * EXT_BYTES);
  },
});

Deno.bench({
  name: `pg-protocol: serialize.parse/bind/execute/sync ×${BATCH}, 4 Buffers each`,
  group: "Parse/Bind/Execute/Sync",
  fn(b) {
    let sum = 0;
    b.start();
    for (let i = 0; i < BATCH; i++) sum += totalLength(pgExtended());
    b.end();
    check("pg-protocol extended", sum, BATCH * EXT_BYTES);
  },
});
