/**
 * Benchmarks of the read side: {@linkcode FrameReader} against npm `pg-protocol`'s `Parser`, the
 * obvious alternative (what node-postgres reads with).
 *
 * The input is a little over 1 MiB of typical backend traffic, built once with our writers:
 * result sets of RowDescription (3 fields) + 1,000 DataRows (3 text columns) + CommandComplete +
 * ReadyForQuery, repeated until 1 MiB is reached, fed in 16 KiB chunks (so frames straddle
 * chunks, as they do on a socket).
 *
 * Each benchmark times one pass over the whole input with `b.start()`/`b.end()` and checks its
 * checksum after `b.end()`, outside the timed region, so the work is used and verified.
 *
 * ```sh
 * deno bench -A src/shared/wire/reader_bench.ts
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { BackendMessage } from "pg-protocol/dist/messages";
import { Parser } from "pg-protocol/dist/parser";
import {
  BackendCode,
  FrameReader,
  parseReadyForQuery,
  TxStatus,
  WireWriter,
  writeCommandComplete,
  writeDataRow,
  writeReadyForQuery,
  writeRowDescription,
} from "./mod.ts";

const TARGET_SIZE = 1024 * 1024;
const CHUNK_SIZE = 16 * 1024;
const ROWS_PER_RESULT = 1000;

// ---- input, built once ----

function buildTraffic(): { bytes: Uint8Array; frames: number; results: number } {
  const w = new WireWriter(TARGET_SIZE + 64 * 1024);
  let frames = 0;
  let results = 0;
  while (w.length < TARGET_SIZE) {
    writeRowDescription(w, [
      { name: "id", tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4 },
      { name: "name", tableOid: 16384, columnAttr: 2, typeOid: 25 },
      { name: "email", tableOid: 16384, columnAttr: 3, typeOid: 25 },
    ]);
    for (let i = 0; i < ROWS_PER_RESULT; i++) {
      const id = results * ROWS_PER_RESULT + i;
      writeDataRow(w, [String(id), `user_${id}`, i % 10 === 0 ? null : `user${id}@example.com`]);
    }
    writeCommandComplete(w, `SELECT ${ROWS_PER_RESULT}`);
    writeReadyForQuery(w, TxStatus.Idle);
    frames += ROWS_PER_RESULT + 3;
    results++;
  }
  return { bytes: w.takeCopy(), frames, results };
}

const traffic = buildTraffic();
const TOTAL_BYTES = traffic.bytes.length;
const TOTAL_FRAMES = traffic.frames;
const TOTAL_RESULTS = traffic.results;

/** The input as 16 KiB views (our side). */
const chunks: Uint8Array[] = [];
/** The same views as `Buffer`s (pg-protocol's side; no copy). */
const bufferChunks: Buffer[] = [];
for (let off = 0; off < TOTAL_BYTES; off += CHUNK_SIZE) {
  const end = Math.min(off + CHUNK_SIZE, TOTAL_BYTES);
  chunks.push(traffic.bytes.subarray(off, end));
  bufferChunks.push(Buffer.from(traffic.bytes.buffer, traffic.bytes.byteOffset + off, end - off));
}

function check(name: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${name}: checksum ${got}, want ${want}`);
}

// One reader and one parser per "connection", reused across iterations as on a real
// connection; every pass ends on a frame boundary, so each starts empty.
const reader = new FrameReader();
const pumpReader = new FrameReader();
const frameReader = new FrameReader();
const forwardWriter = new WireWriter(64 * 1024);
const parser = new Parser();

// ---- 1. frame reading ----

/** Frames seen plus the sum of their lengths: equals TOTAL_FRAMES + TOTAL_BYTES. */
const FRAME_SUM = TOTAL_FRAMES + TOTAL_BYTES;

Deno.bench({
  name: "ours: FrameReader push + next() (code, frame.length)",
  group: "frame reading (1 MiB, 16 KiB chunks)",
  baseline: true,
  fn(b) {
    let sum = 0;
    let dataRows = 0;
    b.start();
    for (let i = 0; i < chunks.length; i++) {
      reader.push(chunks[i]);
      while (reader.next()) {
        if (reader.code === BackendCode.DataRow) dataRows++;
        sum += 1 + reader.frame.length;
      }
    }
    b.end();
    check("FrameReader", sum, FRAME_SUM);
    check("FrameReader DataRows", dataRows, TOTAL_RESULTS * ROWS_PER_RESULT);
  },
});

Deno.bench({
  name: "pg-protocol: Parser.parse() decoding every message",
  group: "frame reading (1 MiB, 16 KiB chunks)",
  fn(b) {
    let sum = 0;
    let dataRows = 0;
    const onMessage = (m: BackendMessage) => {
      if (m.name === "dataRow") dataRows++;
      sum += 1 + 1 + m.length; // m.length excludes the type byte
    };
    b.start();
    for (let i = 0; i < bufferChunks.length; i++) parser.parse(bufferChunks[i], onMessage);
    b.end();
    check("pg-protocol", sum, FRAME_SUM);
    check("pg-protocol DataRows", dataRows, TOTAL_RESULTS * ROWS_PER_RESULT);
  },
});

// ---- 2. DataRow pass-through ----

/** Bytes forwarded plus one per ReadyForQuery 'I' seen. */
const PASS_SUM = TOTAL_BYTES + TOTAL_RESULTS;

Deno.bench({
  name: "ours: pooler pump(), one view per chunk, DataRows not decoded",
  group: "DataRow pass-through (1 MiB, 16 KiB chunks)",
  baseline: true,
  fn(b) {
    // The pattern of BackendConn.pump(): read into writable(), cut every frame, decode only
    // ReadyForQuery, hand the handler one contiguous view per run of frames.
    const r = pumpReader;
    let forwarded = 0;
    let idle = 0;
    b.start();
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i];
      r.writable(chunk.length).set(chunk); // stands in for conn.read(r.writable())
      r.commit(chunk.length);
      let start = -1;
      let end = 0;
      let base: Uint8Array | undefined;
      while (r.next()) {
        const f = r.frame;
        if (start < 0) {
          start = f.byteOffset;
          base = f;
        }
        end = f.byteOffset + f.length;
        const code = r.code;
        if (code === BackendCode.DataRow) continue;
        if (code === BackendCode.ReadyForQuery) {
          if (parseReadyForQuery(r.body) === TxStatus.Idle) idle++;
          forwarded += new Uint8Array(base!.buffer, start, end - start).length;
          start = -1;
        }
      }
      if (start >= 0 && base) forwarded += new Uint8Array(base.buffer, start, end - start).length;
    }
    b.end();
    check("pump", forwarded + idle, PASS_SUM);
  },
});

Deno.bench({
  name: "ours: writer.raw(frame) per frame (copy-forwarding, gateway style)",
  group: "DataRow pass-through (1 MiB, 16 KiB chunks)",
  fn(b) {
    // The other way to forward: copy every frame into the outgoing WireWriter
    // (`writer.raw(reader.frame)`) and write that once per chunk.
    const r = frameReader;
    const out = forwardWriter;
    let forwarded = 0;
    let idle = 0;
    b.start();
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i];
      r.writable(chunk.length).set(chunk);
      r.commit(chunk.length);
      out.reset();
      while (r.next()) {
        out.raw(r.frame);
        if (r.code === BackendCode.ReadyForQuery && parseReadyForQuery(r.body) === TxStatus.Idle) {
          idle++;
        }
      }
      forwarded += out.view().length;
    }
    b.end();
    check("copy-forwarding", forwarded + idle, PASS_SUM);
  },
});

Deno.bench({
  name: "pg-protocol: Parser decodes each DataRow, chunk forwarded raw",
  group: "DataRow pass-through (1 MiB, 16 KiB chunks)",
  fn(b) {
    // A pg-protocol-based pooler cannot find frame boundaries or ReadyForQuery without the
    // parser, which decodes every DataRow into strings; it can then forward the raw chunk.
    let forwarded = 0;
    let idle = 0;
    const onMessage = (m: BackendMessage) => {
      if (m.name === "readyForQuery" && (m as { status?: string }).status === "I") idle++;
    };
    b.start();
    for (let i = 0; i < bufferChunks.length; i++) {
      const chunk = bufferChunks[i];
      parser.parse(chunk, onMessage);
      forwarded += chunk.length;
    }
    b.end();
    check("pg-protocol pass-through", forwarded + idle, PASS_SUM);
  },
});
