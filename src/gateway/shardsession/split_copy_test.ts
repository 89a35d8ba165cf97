import assert from "node:assert/strict";
import { PgError } from "../../shared/errors/mod.ts";
import { keyspaceId } from "../../shared/keyspace/mod.ts";
import {
  BackendCode,
  concatBytes,
  FrontendCode,
  parseErrorFields,
  WireWriter,
  writeCommandComplete,
  writeErrorResponse,
  writeReadyForQuery,
} from "../../shared/wire/mod.ts";
import type { SessionListener } from "../poolergateway/pooler_conn.ts";
import type { SessionBackend } from "../session/handler.ts";
import type { CopyFormat } from "../planner/mod.ts";
import { body, splitMessages } from "./messages.ts";
import { ShardSession } from "./shard_session.ts";
import { CopyIn, CopyOutJoin, LineMap, withClientLines } from "./split_copy.ts";

/** A binary COPY file's header: `PGCOPY\n\377\r\n\0`, flags 0, no header extension. */
const BINARY_FILE_HEADER = [
  ...[0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00],
  ...[0, 0, 0, 0, 0, 0, 0, 0],
];

const TEXT: CopyFormat = {
  format: "text",
  delimiter: "\t",
  null: "\\N",
  quote: '"',
  escape: '"',
  header: false,
  forceNotNull: false,
  forceNull: false,
};
const enc = new TextEncoder();
const dec = new TextDecoder();
const HALF = 1n << 63n;

function frames(write: (w: WireWriter) => void): Uint8Array {
  const w = new WireWriter(64);
  write(w);
  return w.takeCopy();
}

/**
 * A shard's pooler that answers a COPY FROM as Postgres does: CopyInResponse, then it keeps the
 * data; CopyDone → `COPY n` (n: its lines), or the error `failAt` says (a line holding that
 * text fails, with its line number); CopyFail → 57014.
 */
class FakeShard implements SessionBackend {
  data: Uint8Array[] = [];
  statements: string[] = [];
  #l?: SessionListener;
  failAt?: string;
  open(_id: number, _opts: unknown, l: SessionListener): void {
    this.#l = l;
  }
  execute(_id: number, payload: Uint8Array): number {
    for (const m of splitMessages(payload)) {
      if (m.code === FrontendCode.Query) {
        const sql = dec.decode(body(m).subarray(0, -1));
        this.statements.push(sql);
        if (/^copy/i.test(sql)) {
          this.#answer(frames((w) => w.begin(BackendCode.CopyInResponse).int8(0).int16(0).end()));
        } else {
          this.#answer(
            frames((w) => writeReadyForQuery(writeCommandComplete(w, sql.toUpperCase()), 0x49)),
            true,
          );
        }
      } else if (m.code === FrontendCode.CopyData) {
        this.data.push(body(m).slice());
      } else if (m.code === FrontendCode.CopyDone) {
        const lines = dec.decode(concatBytes(this.data)).split("\n").slice(0, -1);
        const bad = this.failAt === undefined
          ? -1
          : lines.findIndex((l) => l.includes(this.failAt!));
        const answer = bad >= 0
          ? frames((w) =>
            writeErrorResponse(
              w,
              new PgError("22P02", "bad", { where: `COPY t, line ${bad + 1}, column x: "y"` }),
            )
          )
          : frames((w) => writeCommandComplete(w, `COPY ${lines.length}`));
        this.#answer(concatBytes([answer, frames((w) => writeReadyForQuery(w, 0x54))]), true);
      } else if (m.code === FrontendCode.CopyFail) {
        const msg = dec.decode(body(m).subarray(0, -1));
        const err = new PgError("57014", `COPY from stdin failed: ${msg}`);
        this.#answer(
          frames((w) => writeReadyForQuery(writeErrorResponse(w, err), 0x45)),
          true,
        );
      }
    }
    return 1;
  }
  #answer(bytes: Uint8Array, done = false): void {
    queueMicrotask(() => {
      this.#l!.onFrames(bytes);
      if (done) this.#l!.onDone(0, false, 0, 0);
    });
  }
  close(): void {}
  ack(): void {}
  congested(): Promise<void> | null {
    return null;
  }
  cancel(): void {}
}

function setup(n = 2) {
  const shards = Array.from({ length: n }, () => new FakeShard());
  const sessions = shards.map((b, i) => {
    const s = new ShardSession(`tg/${i}`, b, i + 1);
    b.open(i + 1, {}, s);
    return s;
  });
  const notices: Uint8Array[] = [];
  return { shards, sessions, notices };
}

/** The shard (of two) that owns int8 key `k`. */
const shardOfKey = (k: string) => keyspaceId("int8", k) < HALF ? 0 : 1;

Deno.test("CopyIn sends each row to its key's shard and sums the shards' counts", async () => {
  const { shards, sessions } = setup();
  const copy = new CopyIn(sessions, {
    sql: "copy t from stdin",
    format: TEXT,
    key: { column: "id", type: "int8", index: 0 },
    shardOf: (id) => id < HALF ? 0 : 1,
    relation: "t",
    notice: () => {},
  });
  const response = await copy.start();
  assert.equal(response?.[0], BackendCode.CopyInResponse);
  let data = "";
  for (let i = 1; i <= 200; i++) data += `${i}\trow ${i}\n`;
  const bytes = enc.encode(data);
  for (let at = 0; at < bytes.length; at += 7) copy.data(bytes.subarray(at, at + 7));
  const result = await copy.finish();
  assert.deepEqual(result, { rows: 200, error: null });
  for (const [i, shard] of shards.entries()) {
    assert.deepEqual(shard.statements, ["copy t from stdin"]);
    const lines = dec.decode(concatBytes(shard.data)).split("\n").slice(0, -1);
    assert.ok(lines.length > 50, `shard ${i} got ${lines.length}`);
    for (const l of lines) assert.equal(shardOfKey(l.split("\t")[0]), i, l);
  }
});

Deno.test("CopyIn gives a shard's error the client's line number, and fails the others", async () => {
  const { shards, sessions } = setup();
  const copy = new CopyIn(sessions, {
    sql: "copy t from stdin",
    format: { ...TEXT, header: true },
    key: { column: "id", type: "int8", index: 0 },
    shardOf: (id) => id < HALF ? 0 : 1,
    relation: "t",
    notice: () => {},
  });
  await copy.start();
  // Line 1 is the header (every shard gets it); row i is on line i + 1.
  let data = "id\tx\n";
  for (let i = 1; i <= 50; i++) data += `${i}\t${i === 37 ? "BAD" : "ok"}\n`;
  copy.data(enc.encode(data));
  shards[shardOfKey("37")].failAt = "BAD";
  const result = await copy.finish();
  assert.equal(result.rows, 0);
  const err = parseErrorFields(body({ code: result.error![0], frame: result.error! }));
  assert.equal(err.where, 'COPY t, line 38, column x: "y"');
  for (const shard of shards) assert.equal(dec.decode(shard.data[0]).split("\n")[0], "id\tx");
});

Deno.test("CopyIn refuses a key Postgres would refuse, with Postgres's CONTEXT", async () => {
  const { shards, sessions } = setup();
  const copy = new CopyIn(sessions, {
    sql: "copy t from stdin",
    format: TEXT,
    key: { column: "id", type: "int8", index: 0 },
    shardOf: (id) => id < HALF ? 0 : 1,
    relation: "t",
    notice: () => {},
  });
  await copy.start();
  const e = (() => {
    try {
      copy.data(enc.encode("1\ta\nabc\tb\n"));
    } catch (e) {
      return e as PgError;
    }
  })();
  assert.equal(e?.sqlstate, "22P02");
  assert.equal(e?.message, 'invalid input syntax for type bigint: "abc"');
  assert.equal(e?.where, 'COPY t, line 2, column id: "abc"');
  const result = await copy.abort(e!);
  assert.equal(result.error !== null, true);
  // Each shard's COPY was failed, not finished: nothing of it commits.
  for (const shard of shards) assert.equal(shard.data.length, 0);
});

Deno.test("CopyIn: the client's CopyFail is Postgres's error, at the line being read", async () => {
  const { sessions } = setup();
  const copy = new CopyIn(sessions, {
    sql: "copy t from stdin",
    format: TEXT,
    key: { column: "id", type: "int8", index: 0 },
    shardOf: (id) => id < HALF ? 0 : 1,
    relation: "t",
    notice: () => {},
  });
  await copy.start();
  copy.data(enc.encode("1\ta\n2\tb\n3\t"));
  const result = await copy.fail("stop");
  const err = parseErrorFields(body({ code: result.error![0], frame: result.error! }));
  assert.equal(err.sqlstate, "57014");
  assert.equal(err.message, "COPY from stdin failed: stop");
  assert.equal(err.where, "COPY t, line 3");
});

Deno.test("CopyIn binary: the file header to every shard, a trailer to each at the end", async () => {
  const { shards, sessions } = setup();
  const copy = new CopyIn(sessions, {
    sql: "copy t from stdin binary",
    format: { ...TEXT, format: "binary" },
    key: { column: "id", type: "int8", index: 0 },
    shardOf: (id) => id < HALF ? 0 : 1,
    relation: "t",
    notice: () => {},
  });
  await copy.start();
  const header = BINARY_FILE_HEADER;
  const tuple = (k: bigint) => {
    const b = new Uint8Array(2 + 4 + 8);
    const dv = new DataView(b.buffer);
    dv.setInt16(0, 1);
    dv.setInt32(2, 8);
    dv.setBigInt64(6, k);
    return [...b];
  };
  const all = new Uint8Array([...header, ...tuple(1n), ...tuple(2n), ...tuple(3n), 0xff, 0xff]);
  for (let at = 0; at < all.length; at += 5) copy.data(all.subarray(at, at + 5));
  await copy.finish();
  for (const shard of shards) {
    const got = [...concatBytes(shard.data)];
    assert.deepEqual(got.slice(0, 19), header);
    assert.deepEqual(got.slice(-2), [0xff, 0xff]);
    assert.equal((got.length - 21) % 14, 0);
  }
  const tuples = shards.reduce((n, s) => n + (concatBytes(s.data).length - 21) / 14, 0);
  assert.equal(tuples, 3);
});

Deno.test("CopyIn on one shard (an unsharded tablegroup) passes the data through", async () => {
  const { shards, sessions } = setup(1);
  const copy = new CopyIn(sessions, {
    sql: "copy t from stdin",
    format: TEXT,
    key: null,
    shardOf: () => 0,
    relation: "t",
    notice: () => {},
  });
  await copy.start();
  copy.data(enc.encode("anything\tat all\n"));
  copy.data(enc.encode("x\n"));
  assert.deepEqual(await copy.finish(), { rows: 2, error: null });
  assert.equal(dec.decode(concatBytes(shards[0].data)), "anything\tat all\nx\n");
});

Deno.test("LineMap maps a shard's line numbers to the client's", () => {
  const m = new LineMap();
  m.header(1);
  m.add(3, 2); // this shard's first row spans lines 2 and 3
  m.add(10, 1);
  m.add(1000, 1);
  m.add(1003, 3);
  assert.equal(m.clientLine(1), 1);
  assert.equal(m.clientLine(2), 2);
  assert.equal(m.clientLine(3), 3);
  assert.equal(m.clientLine(4), 10);
  assert.equal(m.clientLine(5), 1000);
  assert.equal(m.clientLine(8), 1003);
  assert.equal(m.clientLine(9), undefined);
  const frame = frames((w) =>
    writeErrorResponse(w, new PgError("23505", "dup", { where: "COPY t, line 5", detail: "d" }))
  );
  const fixed = parseErrorFields(body({ code: frame[0], frame: withClientLines(frame, m) }));
  assert.equal(fixed.where, "COPY t, line 1000");
  assert.equal(fixed.detail, "d");
});

function data(bytes: number[] | string): Uint8Array {
  const b = typeof bytes === "string" ? enc.encode(bytes) : new Uint8Array(bytes);
  return frames((w) => w.begin(BackendCode.CopyData).bytes(b).end());
}

Deno.test("CopyOutJoin: one CopyOutResponse, one HEADER line, the counts summed", () => {
  const j = new CopyOutJoin(2, "csv", true);
  const out: Uint8Array[] = [];
  const emit = (b: Uint8Array) => out.push(b);
  const response = frames((w) => w.begin(BackendCode.CopyOutResponse).int8(0).int16(0).end());
  const done = frames((w) => w.begin(BackendCode.CopyDone).end());
  for (const i of [0, 1]) {
    for (
      const f of [
        response,
        data("id,x\n"),
        data(`${i},a\n`),
        done,
        frames((w) => writeCommandComplete(w, "COPY 1")),
      ]
    ) j.message(i, f[0], f, emit);
  }
  const msgs = splitMessages(concatBytes([...out, j.end()]));
  assert.deepEqual(msgs.map((m) => String.fromCharCode(m.code)), ["H", "d", "d", "d", "c"]);
  assert.deepEqual(
    msgs.filter((m) => m.code === BackendCode.CopyData).map((m) => dec.decode(body(m))),
    ["id,x\n", "0,a\n", "1,a\n"],
  );
  assert.equal(j.rows, 2);
});

Deno.test("CopyOutJoin binary: the first shard's header, no shard's trailer, one at the end", () => {
  const j = new CopyOutJoin(2, "binary", false);
  const out: Uint8Array[] = [];
  // A header extension of one byte.
  const header = [...BINARY_FILE_HEADER.slice(0, -1), 1, 0xee];
  const tuple = (v: number) => [0, 1, 0, 0, 0, 1, v];
  // Postgres sends the header with the first tuple, the trailer alone; here cut otherwise too.
  j.message(0, BackendCode.CopyData, data([...header, ...tuple(1)]), (b) => out.push(b));
  j.message(0, BackendCode.CopyData, data([...tuple(2), 0xff]), (b) => out.push(b));
  j.message(0, BackendCode.CopyData, data([0xff]), (b) => out.push(b));
  j.message(1, BackendCode.CopyData, data(header.slice(0, 7)), (b) => out.push(b));
  j.message(
    1,
    BackendCode.CopyData,
    data([...header.slice(7), ...tuple(3), 0xff, 0xff]),
    (b) => out.push(b),
  );
  const bytes = splitMessages(concatBytes([...out, j.end()]))
    .filter((m) => m.code === BackendCode.CopyData)
    .flatMap((m) => [...body(m)]);
  assert.deepEqual(bytes, [...header, ...tuple(1), ...tuple(2), ...tuple(3), 0xff, 0xff]);
});
