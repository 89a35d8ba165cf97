import { BackendCode, FrontendCode, readCString, slab, WireWriter } from "../../shared/wire/mod.ts";
import { ReservationReason } from "../../shared/grpc/types.ts";
import { literal } from "../../shared/sql/mod.ts";
import { isExtendedCode, SyncEnd } from "./sync_counter.ts";
import {
  mentionsPidFunctions,
  type PidMap,
  rewritePidFunctions,
  signalledPids,
} from "./pid_functions.ts";

/** A named protocol-level prepared statement of a session, under the name the pooler gave it. */
interface Statement {
  serverName: string;
  /** The Parse body after the statement name: query, parameter count and types. */
  rest: Uint8Array;
  /** It calls functions of pids: each Bind runs it prepared anew (see #withStatement). */
  pids: boolean;
}

/** The session's pid (its BackendKeyData's) and the backends sessions have now. */
export interface SessionPids {
  session: number;
  map: PidMap;
}

/** A ParseComplete the backend owes: the client's own, or one the pooler injected. */
interface PendingParse {
  injected: boolean;
  clientName: string;
  serverName: string;
  segment: number;
}

/** What the backend needs to be told before a request, and what the request changes. */
export interface Translation {
  /** Frames to send to the backend, in order. */
  out: Uint8Array;
  /** How many ReadyForQuery frames they will produce. */
  syncPoints: number;
  /** How they leave the extended protocol (SyncEnd). */
  end: number;
}

const encoder = new TextEncoder();
const NONE: number[] = [];

/** Whether the text of a Query or Parse in whole frames `frames` says "backend" (any case). */
function queriesMentionBackend(frames: Uint8Array): boolean {
  let off = 0;
  while (off + 5 <= frames.length) {
    const code = frames[off];
    const len = ((frames[off + 1] << 24) | (frames[off + 2] << 16) | (frames[off + 3] << 8) |
      frames[off + 4]) >>> 0;
    if (len < 4) return false;
    const end = Math.min(off + 1 + len, frames.length);
    if (
      (code === FrontendCode.Query || code === FrontendCode.Parse) &&
      mentionsBackend(frames.subarray(off + 5, end))
    ) return true;
    off = end;
  }
  return false;
}

/** Whether "backend" (any case) occurs in `bytes`. */
function mentionsBackend(bytes: Uint8Array): boolean {
  for (let i = 0; i + 7 <= bytes.length; i++) {
    if (
      (bytes[i] | 0x20) === 0x62 && (bytes[i + 1] | 0x20) === 0x61 &&
      (bytes[i + 2] | 0x20) === 0x63 && (bytes[i + 3] | 0x20) === 0x6b &&
      (bytes[i + 4] | 0x20) === 0x65 && (bytes[i + 5] | 0x20) === 0x6e &&
      (bytes[i + 6] | 0x20) === 0x64
    ) return true;
  }
  return false;
}

/** The client name of an injected unnamed Parse of a statement calling pid functions. */
const PID_STATEMENT = "\0pids";
const decoder = new TextDecoder();

/**
 * One writer for every translation (they run synchronously, one at a time), so that rewriting a
 * request costs a slab copy rather than a new buffer.
 */
let sharedWriter: WireWriter | null = null;
const SHARED_WRITER_MAX = 1024 * 1024;

function translationWriter(): WireWriter {
  return sharedWriter ??= new WireWriter(4096);
}

// Statements that leave state on the backend that a replay cannot rebuild: the session keeps its
// backend (conservative: a false positive only costs pooling, a miss would leak state).
const TEMP_RE = /\bcreate\b[\s\S]*\b(temp|temporary)\b/i;
const ADVISORY_RE = /\bpg_(try_)?advisory_lock(_shared)?\s*\(/i;
const HOLD_RE = /\bwith\s+hold\b/i;
const SET_CONFIG_RE = /\bset_config\s*\(/i;
// What ends a pin: the session gave the state up itself.
const UNLISTEN_ALL_RE = /^\s*unlisten\s+\*\s*;?\s*$/i;
const UNLOCK_ALL_RE = /^\s*select\s+pg_advisory_unlock_all\s*\(\s*\)\s*;?\s*$/i;
// One plain session-level SET or RESET: tracked and replayed on the next backend. (SET LOCAL,
// SET ROLE and SET SESSION AUTHORIZATION do not match: LOCAL ends with the transaction, the
// others pin the session when their tag arrives untracked.)
const SET_RE =
  /^\s*set\s+(?:session\s+)?(?!local\b|role\b|session\b)([a-z_][a-z0-9_.]*)\s*(?:=|\s\bto\b)\s*[^;]*?\s*;?\s*$/i;
const SET_TIME_ZONE_RE = /^\s*set\s+(?:session\s+)?time\s+zone\s+[^;]+?\s*;?\s*$/i;
const RESET_RE = /^\s*reset\s+(all|time\s+zone|[a-z_][a-z0-9_.]*)\s*;?\s*$/i;

/** The setting a SET or RESET names, as one key (`TIME ZONE` is `timezone`). */
function settingKey(name: string): string {
  const k = name.toLowerCase();
  return /^time\s+zone$/.test(k) ? "timezone" : k;
}

/**
 * A session's state under transaction pooling, kept by the pooler so any backend can serve the
 * session's next transaction: its settings (startup and tracked SETs, replayed on a backend that
 * carries other settings), its named prepared statements (renamed per session and re-prepared
 * where missing, their injected ParseComplete dropped), and the reasons it must keep its backend.
 *
 * `translate()` rewrites a request for the backend at hand; `inspect()` and `ready()` follow the
 * backend's answers. It does no I/O.
 */
export class SessionState {
  readonly #id: number;
  /** Tracked SET statements by setting name, in the order they were made. */
  #sets = new Map<string, string>();
  /** settingsSql(), kept until the SETs change (it is compared at every checkout). */
  #settingsSql: string | null = null;
  readonly #statements = new Map<string, Statement>();
  #nextStatement = 0;
  /** Why the session must keep its backend (ReservationReason bits). */
  pins = 0;

  /**
   * Whether the session may have given its backend a temporary schema (a temp table, or a
   * search_path naming pg_temp). Such a backend is not handed to another session: Postgres
   * refuses PREPARE TRANSACTION in a transaction that made its temporary schema, but a session
   * that finds one already made there would prepare, unlike on a fresh connection.
   */
  get touchesTempSchema(): boolean {
    if (this.pins & ReservationReason.TEMP_TABLE) return true;
    for (const sql of this.#sets.values()) if (/pg_temp/i.test(sql)) return true;
    return false;
  }

  /** Whether the session holds anything a fresh session would not have (SETs, statements, pins). */
  get stateful(): boolean {
    return this.pins !== 0 || this.#sets.size > 0 || this.#statements.size > 0;
  }
  /** Bumped each time the session takes a (possibly other) backend. */
  attachGeneration = 0;
  #unnamed: { rest: Uint8Array; generation: number } | null = null;
  /** ParameterStatus values reported in the current segment (the effective value of a SET). */
  #reported = new Map<string, string>();
  /** Pins the current statement gives up if it succeeds. */
  #unpinOnSuccess = 0;
  #pendingParses: PendingParse[] = [];
  /** Segments end at each sync point; a ReadyForQuery closes the oldest open one. */
  #sentSegment = 0;
  #doneSegment = 0;
  /** SET statements sent and awaiting their ReadyForQuery, by segment. */
  #pendingSets: { segment: number; key: string; sql: string | null; failed: boolean }[] = [];
  #expectSetTags = 0;
  #errorInSegment = false;

  readonly #pids?: SessionPids;
  /** A statement the session prepared signals a pid (see signalTargets). */
  #signalling = false;

  constructor(id: number, pids?: SessionPids) {
    this.#id = id;
    this.#pids = pids;
  }

  /**
   * A Parse body after the statement name with the pid functions' calls rewritten for now
   * (see pid_functions.ts), or null when the statement calls none.
   */
  #pidRest(rest: Uint8Array): Uint8Array | null {
    if (!this.#pids) return null;
    const [sql, after] = readCString(rest, 0);
    if (!mentionsPidFunctions(sql)) return null;
    const out = rewritePidFunctions(sql, this.#pids.session, this.#pids.map);
    if (out === sql) return null;
    const w = new WireWriter(out.length + rest.length);
    return w.cstring(out).raw(rest.subarray(after)).view();
  }

  /**
   * The settings as SQL that puts a backend in this session's state: RESET ALL (back to the
   * startup parameters the backend was opened with), then the session's SETs.
   */
  settingsSql(): string {
    if (this.#settingsSql !== null) return this.#settingsSql;
    const parts = ["RESET ALL;"];
    for (const sql of this.#sets.values()) parts.push(sql + ";");
    return (this.#settingsSql = parts.join("\n"));
  }

  /**
   * The session pids that pg_terminate_backend and pg_cancel_backend are given in `frames` (whole
   * frontend frames not yet translated), where the statement text or a Bind says them. Reads
   * only: the session's state is unchanged.
   */
  signalTargets(frames: Uint8Array): number[] {
    // The common case, cheaply: no "backend" in the frames, and no statement of the session
    // that signals a pid given by a Bind.
    if (!this.#signalling && !queriesMentionBackend(frames)) return NONE;
    const out: number[] = [];
    try {
      this.#findSignalTargets(frames, out);
    } catch {
      // Malformed frames: Postgres judges them itself (translate passes them on as they are).
    }
    return out;
  }

  #findSignalTargets(frames: Uint8Array, out: number[]): void {
    const dv = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
    let unnamed: string | null = this.#unnamed ? this.#textOf(this.#unnamed.rest) : null;
    let parsed: Map<string, string> | null = null;
    let off = 0;
    while (off + 5 <= frames.length) {
      const code = frames[off];
      const len = dv.getInt32(off + 1);
      if (len < 4) break;
      const body = frames.subarray(off + 5, off + 1 + len);
      off += 1 + len;
      if (code === FrontendCode.Query) {
        const sql = decoder.decode(body.subarray(0, body.length - 1));
        for (const p of signalledPids(sql)) if (typeof p === "number") out.push(p);
      } else if (code === FrontendCode.Parse) {
        const [name, at] = readCString(body, 0);
        const sql = readCString(body, at)[0];
        if (signalledPids(sql).length) this.#signalling = true;
        if (name === "") unnamed = sql;
        else (parsed ??= new Map()).set(name, sql);
      } else if (code === FrontendCode.Bind) {
        const [, at] = readCString(body, 0);
        const [name, params] = readCString(body, at);
        const st = name === "" ? null : this.#statements.get(name);
        const sql = name === ""
          ? unnamed
          : parsed?.get(name) ?? (st?.pids ? this.#textOf(st.rest) : null);
        if (!sql) continue;
        for (const p of signalledPids(sql)) {
          const pid = typeof p === "number" ? p : bindInteger(body, params, Number(p.slice(1)));
          if (pid !== null) out.push(pid);
        }
      }
    }
  }

  #textOf(rest: Uint8Array): string {
    return readCString(rest, 0)[0];
  }

  /**
   * Rewrites whole frontend frames for `backendStatements` (the backend's statement names).
   * Frames that need no rewriting are not copied: a request without named statements (simple
   * queries, unnamed extended-protocol statements) comes back as `frames` itself.
   */
  translate(frames: Uint8Array, backendStatements: Set<string>): Translation {
    let w: WireWriter | null = null;
    let raw = 0; // start of the frames not yet copied into `w`
    const dv = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
    let syncPoints = 0;
    let end: number = SyncEnd.SAME;
    let off = 0;
    while (off + 5 <= frames.length) {
      const start = off;
      const code = frames[off];
      const len = dv.getInt32(off + 1);
      if (len < 4) throw new RangeError(`invalid frame length ${len} in data-plane payload`);
      const body = frames.subarray(off + 5, off + 1 + len);
      off += 1 + len;
      if (isExtendedCode(code)) end = SyncEnd.UNSYNCED;
      switch (code) {
        case FrontendCode.Query: {
          const sql = decoder.decode(body.subarray(0, body.length - 1));
          this.#query(sql);
          syncPoints++;
          end = SyncEnd.SYNCED;
          this.#sentSegment++;
          const pidSql = this.#pids && mentionsPidFunctions(sql)
            ? rewritePidFunctions(sql, this.#pids.session, this.#pids.map)
            : sql;
          if (pidSql === sql) continue;
          w ??= translationWriter().reset();
          w.raw(frames.subarray(raw, start));
          raw = off;
          w.begin(FrontendCode.Query).cstring(pidSql).end();
          continue;
        }
        case FrontendCode.Sync:
        case FrontendCode.FunctionCall:
          syncPoints++;
          end = SyncEnd.SYNCED;
          this.#sentSegment++;
          continue;
        case FrontendCode.Parse:
        case FrontendCode.Bind:
        case FrontendCode.Describe:
        case FrontendCode.Close:
          if (code !== FrontendCode.Parse && code !== FrontendCode.Bind && body[0] !== 0x53) {
            continue; // a portal: nothing to rename
          }
          break;
        default:
          continue;
      }
      // This frame is rewritten: first copy the untouched frames before it.
      w ??= translationWriter().reset();
      w.raw(frames.subarray(raw, start));
      raw = off;
      if (code === FrontendCode.Parse) this.#parse(body, w, backendStatements);
      else {this.#withStatement(
          code,
          body,
          code === FrontendCode.Bind ? 0 : 1,
          w,
          backendStatements,
        );}
    }
    if (!w) return { out: frames, syncPoints, end };
    w.raw(frames.subarray(raw));
    const out = slab.copy(w.view());
    if (w.length > SHARED_WRITER_MAX) sharedWriter = null; // do not keep a big one around
    return { out, syncPoints, end };
  }

  #query(sql: string): void {
    this.#pinFor(sql);
    if (UNLISTEN_ALL_RE.test(sql)) this.#unpinOnSuccess |= ReservationReason.LISTEN;
    if (UNLOCK_ALL_RE.test(sql)) this.#unpinOnSuccess |= ReservationReason.ADVISORY_LOCK;
    const set = SET_RE.exec(sql);
    const key = set ? settingKey(set[1]) : SET_TIME_ZONE_RE.test(sql) ? "timezone" : null;
    if (key !== null) {
      this.#pendingSets.push({
        segment: this.#sentSegment,
        key,
        sql: sql.trim().replace(/;\s*$/, ""),
        failed: false,
      });
      this.#expectSetTags++;
      return;
    }
    const reset = RESET_RE.exec(sql);
    if (reset) {
      this.#pendingSets.push({
        segment: this.#sentSegment,
        key: settingKey(reset[1]),
        sql: null,
        failed: false,
      });
      this.#expectSetTags++;
    }
  }

  #pinFor(sql: string): void {
    if (TEMP_RE.test(sql)) this.pins |= ReservationReason.TEMP_TABLE;
    if (ADVISORY_RE.test(sql)) this.pins |= ReservationReason.ADVISORY_LOCK;
    if (HOLD_RE.test(sql)) this.pins |= ReservationReason.PORTAL;
    if (SET_CONFIG_RE.test(sql)) this.pins |= ReservationReason.SESSION;
  }

  #parse(body: Uint8Array, w: WireWriter, backendStatements: Set<string>): void {
    const [name, after] = readCString(body, 0);
    const rest = body.subarray(after);
    this.#pinFor(readCString(rest, 0)[0]);
    if (name === "") {
      // The unnamed statement lives on the backend until the next unnamed Parse; kept here so
      // that a Bind or Describe of it after the session moved backends still finds it.
      this.#unnamed = { rest: rest.slice(), generation: this.attachGeneration };
      w.begin(FrontendCode.Parse).cstring("").bytes(this.#pidRest(rest) ?? rest).end();
      this.#pendingParses.push({
        injected: false,
        clientName: "",
        serverName: "",
        segment: this.#sentSegment,
      });
      return;
    }
    const known = this.#statements.get(name);
    const serverName = known?.serverName ?? `mgs_${this.#id}_${++this.#nextStatement}`;
    const pidRest = this.#pidRest(rest);
    if (!known) this.#statements.set(name, { serverName, rest: rest.slice(), pids: !!pidRest });
    else {
      // A name the session already uses makes Postgres answer with its own error where the
      // backend still has it; elsewhere the new definition simply takes its place.
      known.rest = rest.slice();
      known.pids = !!pidRest;
    }
    w.begin(FrontendCode.Parse).cstring(serverName).bytes(pidRest ?? rest).end();
    backendStatements.add(serverName);
    this.#pendingParses.push({
      injected: false,
      clientName: name,
      serverName,
      segment: this.#sentSegment,
    });
  }

  /** Bind, Describe 'S' or Close 'S': the statement name at `nameAt` is rewritten. */
  #withStatement(
    code: number,
    body: Uint8Array,
    nameAt: number,
    w: WireWriter,
    backendStatements: Set<string>,
  ): void {
    // Bind starts with the portal name; Describe and Close with the 'S' byte.
    let start = nameAt;
    if (code === FrontendCode.Bind) start = readCString(body, 0)[1];
    const [name, after] = readCString(body, start);
    if (name === "") {
      const u = this.#unnamed;
      if (code === FrontendCode.Close) {
        this.#unnamed = null;
      } else if (u && u.generation !== this.attachGeneration) {
        w.begin(FrontendCode.Parse).cstring("").bytes(this.#pidRest(u.rest) ?? u.rest).end();
        u.generation = this.attachGeneration;
        this.#pendingParses.push({
          injected: true,
          clientName: "",
          serverName: "",
          segment: this.#sentSegment,
        });
      }
      w.begin(code).bytes(body).end();
      return;
    }
    const st = this.#statements.get(name);
    if (!st) {
      // Unnamed, or unknown: Postgres answers as it would.
      w.begin(code).bytes(body).end();
      return;
    }
    if (code === FrontendCode.Bind && st.pids) {
      // Which backend serves which session changes between executions: the statement runs as
      // the unnamed one, prepared anew with the pids of now (the client's own unnamed statement
      // is prepared again before its next use).
      w.begin(FrontendCode.Parse).cstring("").bytes(this.#pidRest(st.rest) ?? st.rest).end();
      if (this.#unnamed) this.#unnamed.generation = -1;
      this.#pendingParses.push({
        injected: true,
        clientName: PID_STATEMENT,
        serverName: "",
        segment: this.#sentSegment,
      });
      w.begin(code).bytes(body.subarray(0, start)).cstring("").bytes(body.subarray(after)).end();
      return;
    }
    if (code === FrontendCode.Close) {
      this.#statements.delete(name);
      backendStatements.delete(st.serverName);
    } else if (!backendStatements.has(st.serverName)) {
      // Prepared on another backend: prepare it here first, and drop its ParseComplete.
      w.begin(FrontendCode.Parse).cstring(st.serverName).bytes(this.#pidRest(st.rest) ?? st.rest)
        .end();
      backendStatements.add(st.serverName);
      this.#pendingParses.push({
        injected: true,
        clientName: name,
        serverName: st.serverName,
        segment: this.#sentSegment,
      });
    }
    w.begin(code).bytes(body.subarray(0, start)).cstring(st.serverName).bytes(body.subarray(after))
      .end();
  }

  /**
   * Follows one backend frame (not DataRow or CopyData); returns false when the frame must not
   * reach the client. `backendStatements` is updated for statements that failed to prepare.
   */
  inspect(code: number, body: Uint8Array, backendStatements: Set<string>): boolean {
    switch (code) {
      case BackendCode.ParseComplete: {
        const p = this.#pendingParses.shift();
        return !p?.injected;
      }
      case BackendCode.ErrorResponse:
        this.#errorInSegment = true;
        return true;
      case BackendCode.CommandComplete:
        this.#commandTag(decoder.decode(body.subarray(0, body.length - 1)), backendStatements);
        return true;
      case BackendCode.ReadyForQuery:
        this.#segmentDone(backendStatements, body[0]);
        return true;
      case BackendCode.ParameterStatus: {
        const [name, next] = readCString(body, 0);
        this.#reported.set(name.toLowerCase(), readCString(body, next)[0]);
        return true;
      }
      default:
        return true;
    }
  }

  #commandTag(tag: string, backendStatements: Set<string>): void {
    switch (tag) {
      case "SET":
      case "RESET":
        if (this.#expectSetTags > 0) this.#expectSetTags--;
        else this.pins |= ReservationReason.SESSION; // a SET we could not follow
        return;
      case "LISTEN":
        this.pins |= ReservationReason.LISTEN;
        return;
      case "PREPARE":
        this.pins |= ReservationReason.PREPARED_STATE;
        return;
      case "DEALLOCATE ALL":
        this.#statements.clear();
        backendStatements.clear();
        this.pins &= ~ReservationReason.PREPARED_STATE;
        return;
      case "DISCARD TEMP":
        this.pins &= ~ReservationReason.TEMP_TABLE;
        return;
      case "CLOSE CURSOR ALL":
        this.pins &= ~ReservationReason.PORTAL;
        return;
      case "UNLISTEN":
      case "SELECT 1":
        // UNLISTEN * and SELECT pg_advisory_unlock_all(), recognised by their text.
        this.pins &= ~this.#unpinOnSuccess;
        this.#unpinOnSuccess = 0;
        return;
      case "DISCARD ALL":
        // The backend is as new: so is the session (back to its startup settings).
        this.#statements.clear();
        backendStatements.clear();
        this.#sets.clear();
        this.#settingsSql = null;
        this.pins = 0;
        return;
    }
  }

  #segmentDone(backendStatements: Set<string>, txStatus: number): void {
    const seg = this.#doneSegment++;
    // Parses of this segment that never completed failed: they do not exist on the backend.
    while (this.#pendingParses.length && this.#pendingParses[0].segment <= seg) {
      const p = this.#pendingParses.shift()!;
      if (p.clientName === "") {
        this.#unnamed = null;
        continue;
      }
      backendStatements.delete(p.serverName);
      if (!p.injected && this.#statements.get(p.clientName)?.serverName === p.serverName) {
        this.#statements.delete(p.clientName);
      }
    }
    const reported = this.#reported;
    if (reported.size) this.#reported = new Map();
    const failed = this.#errorInSegment;
    this.#errorInSegment = false;
    this.#unpinOnSuccess = 0;
    while (this.#pendingSets.length && this.#pendingSets[0].segment <= seg) {
      const s = this.#pendingSets.shift()!;
      if (failed) continue;
      if (txStatus !== 0x49 /* I */) {
        // Inside a transaction block a SET may still roll back: keep the backend instead.
        this.pins |= ReservationReason.SESSION;
      } else if (s.sql === null) {
        if (s.key === "all") this.#sets.clear();
        else this.#sets.delete(s.key);
        this.#settingsSql = null;
      } else {
        // A reported setting (DateStyle, TimeZone…) is kept as the value Postgres reports: a SET
        // may change only part of it (SET datestyle TO dmy keeps the output style).
        const value = reported.get(s.key);
        this.#sets.delete(s.key);
        this.#sets.set(s.key, value === undefined ? s.sql : `SET ${s.key} TO ${literal(value)}`);
        this.#settingsSql = null;
      }
    }
    if (failed) this.#expectSetTags = 0;
  }

  /** Statements of this session, by client name (for tests and status). */
  get statementNames(): string[] {
    return [...this.#statements.keys()];
  }
}

/** UTF-8 bytes of a string (for tests building frames). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/**
 * The integer value of parameter `n` (1-based) of a Bind whose format codes start at `at`
 * (text or binary int4/int8), or null.
 */
function bindInteger(body: Uint8Array, at: number, n: number): number | null {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  try {
    const nFormats = dv.getInt16(at);
    const format = (i: number) =>
      nFormats === 0 ? 0 : dv.getInt16(at + 2 + 2 * (nFormats === 1 ? 0 : i));
    let p = at + 2 + 2 * nFormats;
    const nParams = dv.getInt16(p);
    p += 2;
    if (n < 1 || n > nParams) return null;
    for (let i = 0; i < nParams; i++) {
      const len = dv.getInt32(p);
      p += 4;
      if (i === n - 1) {
        if (len < 0) return null;
        if (format(i) === 0) {
          const text = decoder.decode(body.subarray(p, p + len)).trim();
          return /^\d{1,10}$/.test(text) ? Number(text) : null;
        }
        if (len === 4) return dv.getInt32(p);
        if (len === 8) return Number(dv.getBigInt64(p));
        return null;
      }
      if (len > 0) p += len;
    }
  } catch {
    // a malformed Bind: Postgres answers it
  }
  return null;
}
