/**
 * COPY across the shards of a tablegroup.
 *
 * {@linkcode CopyIn}: a `COPY … FROM STDIN` that every shard runs at once, the client's data cut
 * into rows ({@linkcode CopyRowCutter}) and each row sent to the shard its sharding-column value
 * belongs to, in CopyData messages of up to {@linkcode CHUNK} bytes (the file header, a HEADER
 * line, to every shard; the binary trailer to each at the end). It streams: what it holds is
 * each shard's unsent chunk, and the caller waits on {@linkcode CopyIn.writable} before reading
 * more of the client (the shard sessions' flow-control windows).
 *
 * {@linkcode CopyOutJoin}: the answers of a `COPY … TO STDOUT` run on one shard after another,
 * made one: one CopyOutResponse, the rows (a binary header once, the trailer at the end), one
 * `COPY n` with the shards' rows summed.
 *
 * Line numbers: each shard numbers the lines it was sent; an error a shard reports with
 * `COPY t, line N` in its CONTEXT gets the number of that line in the client's data
 * ({@linkcode LineMap}, about one byte per row).
 *
 * @module
 */

import { PgError, SqlState, toPgError, withSeverity } from "../../shared/errors/mod.ts";
import { keyspaceId, keyspaceIdBinary, type ShardingType } from "../../shared/keyspace/mod.ts";
import {
  BackendCode,
  concatBytes,
  ErrorField,
  FrontendCode,
  readCString,
  WireWriter,
} from "../../shared/wire/mod.ts";
import type { CopyFormat } from "../planner/mod.ts";
import { CopyRowCutter, type CopyRowSink } from "./copy_rows.ts";
import { body, commandTag, errorFrame, query } from "./messages.ts";
import type { ShardSession, StreamListener } from "./shard_session.ts";

/** A shard's CopyData messages carry up to this many bytes of rows. */
export const CHUNK = 64 * 1024;
/** A shard's line map stops growing here (line numbers past it stay the shard's own). */
const LINE_MAP_LIMIT = 16 * 1024 * 1024;
const TRAILER = new Uint8Array([0xff, 0xff]);
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** What a {@linkcode CopyIn} needs to know. */
export interface CopyInOptions {
  /** The client's COPY statement: every shard runs it as it is. */
  sql: string;
  format: CopyFormat;
  /**
   * The sharding column: its name, type and place among the COPY's columns; null: every row to
   * the first session (an unsharded tablegroup).
   */
  key: { column: string; type: ShardingType; index: number } | null;
  /** The index of the session that owns a keyspace id. */
  shardOf(id: bigint): number;
  /** The table's name, as Postgres writes it in CONTEXT lines (`COPY orders, line 3`). */
  relation: string;
  /** A message the client gets at once (a shard's NoticeResponse). */
  notice(frame: Uint8Array): void;
}

/** One shard of a CopyIn. */
interface Part {
  s: ShardSession;
  /** copying: Postgres waits for data; done: its COPY statement was answered. */
  state: "starting" | "copying" | "done";
  response: Uint8Array | null;
  error: Uint8Array | null;
  rows: number;
  /** The CopyData frame being filled: its 5-byte header, then `n` bytes of rows. */
  out: Uint8Array | null;
  n: number;
  lines: LineMap;
  started: () => void;
  ended: () => void;
  startedP: Promise<void>;
  endedP: Promise<void>;
}

/** How a CopyIn ended: the rows every shard took, or the error the client gets. */
export type CopyInResult = { rows: number; error: null } | { rows: 0; error: Uint8Array };

/** A COPY FROM STDIN across shards: see the module doc. */
export class CopyIn {
  readonly #opts: CopyInOptions;
  readonly #parts: Part[];
  readonly #cutter: CopyRowCutter | null;
  readonly #sink: CopyRowSink;
  /** The first error any shard reported, as the client gets it. */
  #error: Uint8Array | null = null;
  #failed!: () => void;
  readonly #failedP: Promise<void>;
  /** The line of the last row (or header) cut so far. */
  #lastLine = 0;
  /** Unread binary data went to the first shard (it gets no trailer of ours). */
  #rest = false;

  constructor(sessions: ShardSession[], opts: CopyInOptions) {
    this.#opts = opts;
    this.#failedP = new Promise((r) => (this.#failed = r));
    this.#parts = sessions.map((s) => {
      let started!: () => void;
      let ended!: () => void;
      const startedP = new Promise<void>((r) => (started = r));
      const endedP = new Promise<void>((r) => (ended = r));
      return {
        s,
        state: "starting",
        response: null,
        error: null,
        rows: 0,
        out: null,
        n: 0,
        lines: new LineMap(),
        started,
        ended,
        startedP,
        endedP,
      };
    });
    this.#cutter = opts.key === null ? null : new CopyRowCutter(
      opts.format,
      opts.key.index,
      opts.relation,
    );
    this.#sink = {
      header: (bytes) => {
        this.#lastLine = this.#cutter!.line;
        for (const p of this.#parts) {
          p.lines.header(this.#lastLine);
          this.#queue(p, bytes);
        }
      },
      row: (bytes, key, line) => {
        const p = this.#parts[this.#shardOf(key, line)];
        p.lines.add(line, line - this.#lastLine);
        this.#lastLine = line;
        this.#queue(p, bytes);
      },
      rest: (bytes) => {
        this.#rest = true;
        this.#queue(this.#parts[0], bytes);
      },
    };
  }

  /**
   * Sends the COPY statement to every shard. Resolves with the first shard's CopyInResponse once
   * every shard waits for data, or with null when one refused it (then the others' COPY was
   * ended too, and `finish()` says why).
   */
  async start(): Promise<Uint8Array | null> {
    for (const p of this.#parts) {
      p.s.prepared.delete(""); // a simple Query destroys the unnamed statement
      const l = this.#listener(p);
      p.s.stream(l);
      try {
        p.s.send(query(this.#opts.sql));
      } catch (e) {
        l.lost(withSeverity(toPgError(e), "ERROR"));
      }
    }
    await Promise.all(this.#parts.map((p) => p.startedP));
    if (this.#parts.every((p) => p.state === "copying")) return this.#parts[0].response;
    await this.#endAll(copyFail("COPY failed on another shard"));
    return null;
  }

  /** Whether a shard failed the COPY already (then `finish()` or `abort()` ends it). */
  get failed(): boolean {
    return this.#error !== null;
  }

  /**
   * One CopyData message's body: its rows go to their shards. Throws the PgError Postgres would
   * raise for data it cannot read (22P04) or a sharding key it would refuse (22P02…), with its
   * CONTEXT.
   */
  data(data: Uint8Array): void {
    if (this.#error !== null) return;
    if (this.#cutter === null) {
      this.#queue(this.#parts[0], data);
      return;
    }
    this.#cutter.push(data, this.#sink);
  }

  /**
   * Null while every shard takes data; else a promise that resolves once they do again, or once
   * a shard failed (see `failed`).
   */
  writable(): Promise<void> | null {
    if (this.#error !== null) return null;
    const waits = this.#parts.map((p) => p.s.writable()).filter((w) => w !== null);
    if (!waits.length) return null;
    return Promise.race([Promise.all(waits).then(() => {}), this.#failedP]);
  }

  /**
   * The data ended (CopyDone): the last row and each shard's unsent rows go out, then CopyDone;
   * resolves when every shard has answered.
   */
  async finish(): Promise<CopyInResult> {
    if (this.#error === null) {
      try {
        this.#cutter?.finish(this.#sink);
      } catch (e) {
        if (!(e instanceof PgError)) throw e;
        return await this.abort(e);
      }
      if (this.#opts.format.format === "binary" && this.#cutter !== null) {
        this.#parts.forEach((p, i) => {
          if (i > 0 || !this.#rest) this.#queue(p, TRAILER);
        });
      }
      for (const p of this.#parts) this.#flush(p);
    }
    // A shard failed already: the others' COPY fails too rather than succeed alone.
    await this.#endAll(this.#error === null ? COPY_DONE : copyFail("COPY failed on another shard"));
    if (this.#error !== null) return { rows: 0, error: this.#error };
    return { rows: this.#parts.reduce((n, p) => n + p.rows, 0), error: null };
  }

  /**
   * Ends the COPY on every shard with CopyFail; resolves with `err` as the client's error (a
   * shard's error that came first wins).
   */
  async abort(err: PgError): Promise<CopyInResult> {
    this.#error ??= errorFrame(err);
    await this.#endAll(copyFail(err.message));
    return { rows: 0, error: this.#error };
  }

  /**
   * The client's CopyFail: as Postgres, `COPY from stdin failed: <message>` (57014). Across
   * shards the error is the gateway's, with the line the client's data was at; on one shard
   * (an unsharded tablegroup) it is that shard's own.
   */
  async fail(message: string): Promise<CopyInResult> {
    if (this.#cutter !== null) {
      const err = copyFailed(message, this.#opts.relation, this.#cutter.reading);
      this.#error ??= errorFrame(err);
      await this.#endAll(copyFail(message));
      return { rows: 0, error: this.#error };
    }
    await this.#endAll(copyFail(message));
    return { rows: 0, error: this.#error ?? errorFrame(copyFailed(message, "", 0)) };
  }

  /** A message the client may not send during COPY FROM STDIN: the COPY fails (08P01). */
  async unexpected(code: number): Promise<CopyInResult> {
    const hex = code.toString(16).toUpperCase().padStart(2, "0");
    return await this.abort(
      new PgError(
        SqlState.PROTOCOL_VIOLATION,
        `unexpected message type 0x${hex} during COPY from stdin`,
        this.#cutter === null
          ? undefined
          : { where: `COPY ${this.#opts.relation}, line ${this.#cutter.reading}` },
      ),
    );
  }

  /** Sends `end` (CopyDone or CopyFail) to every shard still copying and waits for answers. */
  async #endAll(end: Uint8Array): Promise<void> {
    for (const p of this.#parts) {
      p.out = null;
      if (p.state === "copying" && !p.s.closed) p.s.send(end);
    }
    await Promise.all(this.#parts.map((p) => p.endedP));
  }

  #shardOf(key: Uint8Array | null | undefined, line: number): number {
    // A NULL (or missing) key goes where an INSERT of it goes, the first shard: Postgres
    // refuses it there unless the column takes NULLs.
    if (key === null || key === undefined) return 0;
    const k = this.#opts.key!;
    try {
      const id = this.#opts.format.format === "binary" || k.type === "text"
        ? keyspaceIdBinary(k.type, key)
        : keyspaceId(k.type, decoder.decode(key));
      return this.#opts.shardOf(id);
    } catch (e) {
      if (!(e instanceof PgError)) throw e;
      const where = this.#opts.format.format === "binary"
        ? `COPY ${this.#opts.relation}, line ${line}, column ${k.column}`
        : `COPY ${this.#opts.relation}, line ${line}, column ${k.column}: "${
          printable(decoder.decode(key))
        }"`;
      throw new PgError(e.sqlstate, e.message, { detail: e.detail, hint: e.hint, where });
    }
  }

  #queue(p: Part, bytes: Uint8Array): void {
    if (p.state === "done") return; // its COPY failed: the rest is dropped
    if (p.out !== null && p.n + bytes.length > p.out.length - 5) this.#flush(p);
    if (p.out === null) {
      p.out = new Uint8Array(5 + Math.max(CHUNK, bytes.length));
      p.n = 0;
    }
    p.out.set(bytes, 5 + p.n);
    p.n += bytes.length;
    if (p.n >= CHUNK) this.#flush(p);
  }

  #flush(p: Part): void {
    const out = p.out;
    p.out = null;
    if (out === null || p.n === 0 || p.state !== "copying" || p.s.closed) return;
    out[0] = FrontendCode.CopyData;
    new DataView(out.buffer, out.byteOffset).setInt32(1, p.n + 4);
    p.s.send(out.subarray(0, p.n + 5));
  }

  #listener(p: Part): StreamListener {
    const ended = () => {
      if (p.state === "done") return;
      p.state = "done";
      p.s.stream(null);
      p.started();
      p.ended();
      if (p.error !== null && this.#error === null) {
        this.#error = withClientLines(p.error, p.lines);
        this.#failed();
      }
    };
    return {
      message: (code, frame) => {
        switch (code) {
          case BackendCode.CopyInResponse:
            p.response ??= frame.slice();
            p.state = "copying";
            p.started();
            break;
          case BackendCode.ErrorResponse:
            p.error ??= frame.slice();
            break;
          case BackendCode.CommandComplete: {
            const n = /\s(\d+)$/.exec(commandTag({ code, frame }))?.[1];
            p.rows = n === undefined ? 0 : Number(n);
            break;
          }
          case BackendCode.NoticeResponse:
            this.#opts.notice(frame.slice());
            break;
        }
      },
      done: ended,
      lost: (err) => {
        p.error ??= errorFrame(err);
        ended();
      },
    };
  }
}

/** A CopyFail message. */
function copyFail(message: string): Uint8Array {
  const w = new WireWriter(64);
  return w.begin(FrontendCode.CopyFail).cstring(message).end().takeCopy();
}

/** Postgres's limit_printout_length: at most 100 bytes of a value in a CONTEXT line. */
function printable(s: string): string {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length <= 100) return s;
  let cut = 100;
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return decoder.decode(bytes.subarray(0, cut)) + "...";
}

/**
 * For one shard: the number of each line it was sent in the client's data (rows in order; a
 * CSV row may span lines). Varints of (line delta × 2 + spans-several-lines), then the number of
 * lines when it does: about a byte per row.
 */
export class LineMap {
  #bytes = new Uint8Array(64);
  #n = 0;
  /** Lines every shard got first (a HEADER line: line 1 everywhere). */
  #base = 0;
  #last = 0;
  #full = false;

  header(line: number): void {
    this.#base = line;
    this.#last = line;
  }

  /** A row sent here ends at line `line` of the client's data and spans `lines` lines. */
  add(line: number, lines: number): void {
    if (this.#full) return;
    if (this.#n + 20 > this.#bytes.length) {
      if (this.#bytes.length >= LINE_MAP_LIMIT) {
        this.#full = true;
        return;
      }
      const grown = new Uint8Array(this.#bytes.length * 2);
      grown.set(this.#bytes.subarray(0, this.#n));
      this.#bytes = grown;
    }
    const several = lines > 1;
    this.#varint((line - this.#last) * 2 + (several ? 1 : 0));
    if (several) this.#varint(lines);
    this.#last = line;
  }

  /** The client's number of this shard's line `n`; undefined when unknown. */
  clientLine(n: number): number | undefined {
    if (n <= this.#base) return n;
    let shard = this.#base;
    let client = this.#base;
    let at = 0;
    const b = this.#bytes;
    const read = () => {
      let v = 0;
      let scale = 1;
      for (;;) {
        const x = b[at++];
        v += (x & 0x7f) * scale;
        if (x < 0x80) return v;
        scale *= 128;
      }
    };
    while (at < this.#n) {
      const v = read();
      const lines = v % 2 === 1 ? read() : 1;
      client += Math.floor(v / 2);
      shard += lines;
      if (shard >= n) return client - (shard - n);
    }
    return undefined;
  }

  #varint(v: number): void {
    while (v >= 0x80) {
      this.#bytes[this.#n++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#bytes[this.#n++] = v;
  }
}

/**
 * An ErrorResponse frame whose CONTEXT names a line of this shard's data (`COPY t, line N`),
 * with the client's number of that line; every other field as it was.
 */
export function withClientLines(frame: Uint8Array, lines: LineMap): Uint8Array {
  const b = body({ code: frame[0], frame });
  const fields: [number, string][] = [];
  let changed = false;
  for (let off = 0; off < b.length && b[off] !== 0;) {
    const type = b[off];
    const [value, next] = readCString(b, off + 1);
    off = next;
    if (type === ErrorField.Where) {
      const fixed = value.replace(
        /(^|\n)(COPY [^\n]*?, line )(\d+)/,
        (all, nl: string, head: string, n: string) => {
          const line = lines.clientLine(Number(n));
          return line === undefined ? all : `${nl}${head}${line}`;
        },
      );
      changed ||= fixed !== value;
      fields.push([type, fixed]);
    } else {
      fields.push([type, value]);
    }
  }
  if (!changed) return frame;
  const w = new WireWriter(frame.length + 16);
  w.begin(frame[0]);
  for (const [type, value] of fields) w.int8(type).cstring(value);
  w.int8(0);
  return w.end().takeCopy();
}

/**
 * The answers of a COPY TO STDOUT run on `n` shards one after another, made one answer:
 * `message()` takes shard `i`'s messages in order and hands on what the client gets; `end()`
 * closes the data once every shard is done.
 */
export class CopyOutJoin {
  readonly #n: number;
  readonly #format: "text" | "csv" | "binary";
  readonly #header: boolean;
  /** Shard `i` of the messages now (each one's data in turn). */
  #shard = -1;
  #dataSeen = false;
  /** Binary: the last two bytes of the shard's data so far (its trailer, at its end). */
  #held: Uint8Array = new Uint8Array(0);
  /** Binary, after the first shard: header bytes still to drop (-1: its length is unknown). */
  #skip = 0;
  #headStart: Uint8Array = new Uint8Array(0);
  rows = 0;
  /** The first error a shard answered (the client gets it instead of the rest). */
  error: Uint8Array | null = null;
  /** Whether the client got the CopyOutResponse (it is in copy-out mode). */
  started = false;

  constructor(n: number, format: "text" | "csv" | "binary", header: boolean) {
    this.#n = n;
    this.#format = format;
    this.#header = header;
  }

  /** Shard `i`'s message; `emit` gets what goes to the client now (a copy it may keep). */
  message(i: number, code: number, frame: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    if (i !== this.#shard) {
      this.#shard = i;
      this.#dataSeen = false;
      this.#held = new Uint8Array(0);
      this.#skip = i === 0 ? 0 : -1;
      this.#headStart = new Uint8Array(0);
    }
    switch (code) {
      case BackendCode.CopyOutResponse:
        if (!this.started) {
          this.started = true;
          emit(frame.slice());
        }
        return;
      case BackendCode.CopyData: {
        const first = !this.#dataSeen;
        this.#dataSeen = true;
        if (this.#format !== "binary") {
          // A HEADER line is each shard's first CopyData (Postgres sends it on its own).
          if (!(first && this.#header && i > 0)) emit(frame.slice());
          return;
        }
        this.#binaryData(body({ code, frame }), emit);
        return;
      }
      case BackendCode.CommandComplete: {
        const n = /\s(\d+)$/.exec(commandTag({ code, frame }))?.[1];
        this.rows += n === undefined ? 0 : Number(n);
        return;
      }
      case BackendCode.ErrorResponse:
        this.error ??= frame.slice();
        return;
      case BackendCode.NoticeResponse:
        emit(frame.slice());
        return;
    }
    // CopyDone, ReadyForQuery: the gateway sends its own at the end.
  }

  /** What ends the client's data: the binary trailer, then CopyDone. */
  end(): Uint8Array {
    if (this.#format !== "binary") return COPY_DONE;
    return concatBytes([dataFrame(TRAILER), COPY_DONE]);
  }

  get shards(): number {
    return this.#n;
  }

  #binaryData(data: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    if (this.#skip !== 0) {
      if (this.#skip < 0) {
        // The header's length is known once its first 19 bytes are in.
        const need = 19 - this.#headStart.length;
        const take = data.subarray(0, need);
        this.#headStart = concatBytes([this.#headStart, take]);
        data = data.subarray(take.length);
        if (this.#headStart.length < 19) return;
        const h = this.#headStart;
        this.#skip = Math.max(0, new DataView(h.buffer, h.byteOffset).getInt32(15));
      }
      const drop = Math.min(this.#skip, data.length);
      this.#skip -= drop;
      data = data.subarray(drop);
    }
    if (data.length === 0) return;
    // Everything but the last two bytes: those may be the trailer.
    const all = this.#held.length ? concatBytes([this.#held, data]) : data;
    const keep = Math.max(0, all.length - 2);
    this.#held = all.slice(keep);
    if (keep > 0) emit(dataFrame(all.subarray(0, keep)));
  }
}

/** CopyDone: the same byte in both directions ('c'). */
export const COPY_DONE = new Uint8Array([BackendCode.CopyDone, 0, 0, 0, 4]);

/** A CopyData message of `bytes`. */
export function dataFrame(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + bytes.length);
  out[0] = BackendCode.CopyData;
  new DataView(out.buffer).setInt32(1, bytes.length + 4);
  out.set(bytes, 5);
  return out;
}

/** The error of a client's CopyFail (Postgres's). */
function copyFailed(message: string, relation: string, line: number): PgError {
  return new PgError(
    SqlState.QUERY_CANCELED,
    `COPY from stdin failed: ${message}`,
    relation ? { where: `COPY ${relation}, line ${line}` } : undefined,
  );
}
