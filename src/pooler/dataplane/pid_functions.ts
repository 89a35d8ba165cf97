/**
 * Session pids in SQL. A client knows its session by the pid of its BackendKeyData: the gateway's
 * virtual pid, which stays the same while transaction pooling hands the session a different
 * backend for each transaction, and which is never a real process id (see the gateway's pid
 * layout). Postgres's functions that take or return pids speak of backends, so the pooler
 * rewrites their calls in the statements it passes on:
 *
 * - `pg_backend_pid()` answers the session's pid;
 * - `pg_terminate_backend(pid)` and `pg_cancel_backend(pid)` act on the backend that serves
 *   the session `pid` now;
 * - `pg_blocking_pids(pid)` and `pg_safe_snapshot_blocking_pids(pid)` take and answer session
 *   pids, and `pg_isolation_test_session_is_blocked(pid, pids)` and
 *   `pg_log_backend_memory_contexts(pid)` take them;
 * - `pg_stat_activity` and `pg_locks` show a backend that serves a session under the session's
 *   pid, and `multigres.session_backends` lists which backend serves which session.
 *
 * Statements that define something (CREATE, ALTER, COMMENT, DROP, GRANT, REVOKE, SECURITY LABEL)
 * are left as written: a view or a trigger outlives the session. So is a quoted name:
 * `"pg_backend_pid"()` answers the backend's own pid (what tests of the pool itself ask).
 *
 * A pid that is no session's (a backend seen in `pg_stat_activity`, a session without a backend
 * at the moment) is passed on as it is, so Postgres answers for it as it would. The mapping is
 * the one at the time of the rewrite: written into the statement as a VALUES list, so a
 * statement prepared once must be rewritten again for each execution (SessionState does so).
 * Column names stay Postgres's: a replaced call becomes a scalar subquery whose one column has
 * the function's name.
 *
 * @module
 */
import { FrontendCode, readCString, WireWriter } from "../../shared/wire/mod.ts";

/** The functions rewritten, by lower-case name. */
const FUNCTIONS = new Set([
  "pg_backend_pid",
  "pg_terminate_backend",
  "pg_cancel_backend",
  "pg_log_backend_memory_contexts",
  "pg_blocking_pids",
  "pg_safe_snapshot_blocking_pids",
  "pg_isolation_test_session_is_blocked",
]);

/**
 * The relation `multigres.session_backends`: (session_pid, backend_pid) of every session that has
 * a backend at the moment, to join with pg_stat_activity on backend_pid. Any database has it.
 */
const VIEW = "session_backends";
const VIEW_SCHEMA = "multigres";

/**
 * Postgres 15's views that show backend pids, with their columns in order: rewritten so that a
 * backend serving a session shows the session's pid (`pid = pg_backend_pid()` finds the session).
 */
const CATALOG_VIEWS = new Map([
  ["pg_stat_activity", {
    columns: "datid datname pid leader_pid usesysid usename application_name client_addr " +
      "client_hostname client_port backend_start xact_start query_start state_change " +
      "wait_event_type wait_event state backend_xid backend_xmin query_id query backend_type",
    pids: ["pid", "leader_pid"],
  }],
  ["pg_locks", {
    columns: "locktype database relation page tuple virtualxid transactionid classid objid " +
      "objsubid virtualtransaction pid mode granted fastpath waitstart",
    pids: ["pid"],
  }],
]);

/**
 * First words of statements whose calls are kept as written (see findCalls): definitions, which
 * outlive the session; PREPARE, whose statement runs later under other backends; and CALL,
 * EXECUTE and COPY, whose arguments and WHERE take no subqueries.
 */
const DEFINING = new Set([
  "create",
  "alter",
  "comment",
  "drop",
  "grant",
  "revoke",
  "security",
  "prepare",
  "call",
  "execute",
  "copy",
]);

/** Whether `bytes` hold "pg_" or "on_" (any case): what every rewritten name has. */
function mayMention(bytes: Uint8Array): boolean {
  for (let i = 0; i + 3 <= bytes.length; i++) {
    const b = bytes[i + 2];
    if (b !== 0x5f) continue; // "_"
    const p = bytes[i] | 0x20;
    const g = bytes[i + 1] | 0x20;
    if ((p === 0x70 && g === 0x67) || (p === 0x6f && g === 0x6e)) return true; // pg_, (sessi)on_
  }
  return false;
}

/** The functions that signal a backend. */
const SIGNALS = new Set([
  "pg_terminate_backend",
  "pg_cancel_backend",
  "pg_log_backend_memory_contexts",
]);
const SIGNAL_RE = new RegExp([...SIGNALS].join("|"), "i");

/** A quick test for statements that may call one of the functions (false positives are fine). */
const MENTION_RE = new RegExp(
  [...[...FUNCTIONS].map((f) => `${f}\\s*\\(`), VIEW, ...CATALOG_VIEWS.keys()].join("|"),
  "i",
);

/** Words after a relation that are not its alias. */
const NOT_ALIAS = new Set(
  ("where join inner left right full cross natural on using group order limit offset union " +
    "intersect except window having for fetch returning tablesample into values select from set")
    .split(" "),
);

/** Whether `sql` may call a function whose pids are rewritten. */
export function mentionsPidFunctions(sql: string): boolean {
  return MENTION_RE.test(sql);
}

/** Session pid → pid of the backend serving it now. */
export type PidMap = ReadonlyMap<number, number>;

/**
 * `sql` with the calls of the pid functions rewritten for the session `sessionPid` and the
 * sessions' backends `map` (or its VALUES list, when rewriting arguments); `sql` itself when there is nothing to rewrite (or it cannot be read:
 * then Postgres judges it as written).
 */
export function rewritePidFunctions(
  sql: string,
  sessionPid: number,
  map: PidMap | string,
): string {
  if (!mentionsPidFunctions(sql)) return sql;
  const calls = findCalls(sql);
  if (!calls.length) return sql;
  const values = typeof map === "string" ? map : valuesList(map);
  let out = "";
  let at = 0;
  for (const c of calls) {
    const replaced = rewriteCall(sql, c, sessionPid, values);
    if (replaced === null) continue;
    out += sql.slice(at, c.start) + replaced;
    at = c.end;
  }
  return at === 0 ? sql : out + sql.slice(at);
}

/**
 * The pids `pg_terminate_backend` and `pg_cancel_backend` are called with in `sql`, where the
 * text says them: an integer literal (a number), or a parameter (its number as `$n`, to be read
 * from the Bind). Other arguments are only known when Postgres evaluates them.
 */
export function signalledPids(sql: string): (number | `$${number}`)[] {
  if (!mentionsPidFunctions(sql)) return [];
  const out: (number | `$${number}`)[] = [];
  for (const c of findCalls(sql)) {
    if (c.name !== "pg_terminate_backend" && c.name !== "pg_cancel_backend") continue;
    if (!c.args.length) continue;
    const a = sql.slice(c.args[0].start, c.args[0].end).trim();
    if (/^\d{1,10}$/.test(a)) out.push(Number(a));
    else if (/^\$\d{1,5}$/.test(a)) out.push(a as `$${number}`);
  }
  return out;
}

/** The map as a VALUES list of (session pid, backend pid), never empty. */
function valuesList(map: PidMap): string {
  let s = "(VALUES (0, 0)";
  for (const [session, backend] of map) s += `, (${session | 0}, ${backend | 0})`;
  return s + ")";
}

/** One call found in the text: `start`..`end` spans the (qualified) name to the closing paren. */
interface Call {
  name: string;
  start: number;
  end: number;
  /** The arguments' text spans, split at top-level commas. */
  args: { start: number; end: number }[];
  /** The view: an alias follows it. */
  alias?: boolean;
}

/** Maps a session pid expression to the pid of its backend (itself when it has none). */
function toBackend(expr: string, values: string): string {
  return `(SELECT COALESCE(mg_m.b, mg_v.p) FROM (SELECT (${expr})::pg_catalog.int4 AS p) mg_v ` +
    `LEFT JOIN ${values} mg_m(s, b) ON mg_m.s = mg_v.p)`;
}

function rewriteCall(sql: string, c: Call, sessionPid: number, values: string): string | null {
  // Arguments may call the functions too (pg_terminate_backend(pg_backend_pid())).
  const arg = (k: number) =>
    rewritePidFunctions(sql.slice(c.args[k].start, c.args[k].end).trim(), sessionPid, values);
  const head = sql.slice(c.start, c.args[0]?.start ?? c.end);
  switch (c.name) {
    case VIEW:
      return `(SELECT mg_v.s AS session_pid, mg_v.b AS backend_pid FROM ${values} mg_v(s, b) ` +
        `WHERE mg_v.s <> 0)${c.alias ? "" : ` AS ${VIEW}`}`;
    case "pg_backend_pid":
      if (c.args.length || !sessionPid) return null;
      return `(SELECT ${sessionPid}::pg_catalog.int4 AS pg_backend_pid)`;
    case "pg_stat_activity":
    case "pg_locks": {
      const view = CATALOG_VIEWS.get(c.name)!;
      let joins = "";
      const cols = view.columns.split(" ").map((col) => {
        const k = view.pids.indexOf(col);
        if (k < 0) return `mg_a.${col}`;
        joins += ` LEFT JOIN ${values} mg_m${k}(s, b) ON mg_m${k}.b = mg_a.${col}`;
        return `COALESCE(mg_m${k}.s, mg_a.${col}) AS ${col}`;
      });
      return `(SELECT ${cols.join(", ")} FROM pg_catalog.${c.name} mg_a${joins})` +
        (c.alias ? "" : ` AS ${c.name}`);
    }
    case "pg_terminate_backend":
    case "pg_cancel_backend":
    case "pg_log_backend_memory_contexts": {
      if (c.args.length < 1) return null;
      const rest = sql.slice(c.args[0].end, c.end);
      return head + toBackend(arg(0), values) + rest;
    }
    case "pg_blocking_pids":
    case "pg_safe_snapshot_blocking_pids": {
      if (c.args.length !== 1) return null;
      // The backends' pids in the answer become their sessions' pids, in the same order.
      return `(SELECT CASE WHEN mg_y.a IS NULL THEN NULL ELSE COALESCE((SELECT ` +
        `pg_catalog.array_agg(COALESCE(mg_m.s, mg_x.b) ORDER BY mg_x.o) FROM ` +
        `pg_catalog.unnest(mg_y.a) WITH ORDINALITY mg_x(b, o) LEFT JOIN ${values} mg_m(s, b) ` +
        `ON mg_m.b = mg_x.b), '{}'::pg_catalog.int4[]) END AS ${c.name} FROM (SELECT ` +
        `pg_catalog.${c.name}(${toBackend(arg(0), values)}) AS a) mg_y)`;
    }
    case "pg_isolation_test_session_is_blocked": {
      if (c.args.length !== 2) return null;
      const pids = `COALESCE((SELECT pg_catalog.array_agg(COALESCE(mg_m.b, mg_x.p)) FROM ` +
        `pg_catalog.unnest((${arg(1)})::pg_catalog.int4[]) mg_x(p) LEFT JOIN ${values} ` +
        `mg_m(s, b) ON mg_m.s = mg_x.p), '{}'::pg_catalog.int4[])`;
      return `${head}${toBackend(arg(0), values)}, ${pids})`;
    }
  }
  return null;
}

const enum Ch {
  Quote = 0x27, // '
  DoubleQuote = 0x22, // "
  Dollar = 0x24, // $
  Dash = 0x2d, // -
  Slash = 0x2f, // /
  Star = 0x2a, // *
  Backslash = 0x5c, // \
  Open = 0x28, // (
  Close = 0x29, // )
  Semicolon = 0x3b, // ;
  Comma = 0x2c, // ,
  Dot = 0x2e, // .
  NewLine = 0x0a,
}

function isIdentStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
}

function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === Ch.Dollar;
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/**
 * Skips a token that is not code (a string, quoted identifier, comment) starting at `i`;
 * returns where it ends, or `i` when there is none there. -1: unterminated.
 */
function skipNonCode(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === Ch.Quote) {
    // E'…' allows backslash escapes; standard strings do not.
    const p = s.charCodeAt(i - 1);
    const escapes = (p === 0x45 || p === 0x65) && !isIdentChar(s.charCodeAt(i - 2));
    for (let j = i + 1; j < s.length; j++) {
      const d = s.charCodeAt(j);
      if (escapes && d === Ch.Backslash) j++;
      else if (d === Ch.Quote) {
        if (s.charCodeAt(j + 1) === Ch.Quote) j++;
        else return j + 1;
      }
    }
    return -1;
  }
  if (c === Ch.DoubleQuote) {
    for (let j = i + 1; j < s.length; j++) {
      if (s.charCodeAt(j) === Ch.DoubleQuote) {
        if (s.charCodeAt(j + 1) === Ch.DoubleQuote) j++;
        else return j + 1;
      }
    }
    return -1;
  }
  if (c === Ch.Dash && s.charCodeAt(i + 1) === Ch.Dash) {
    const nl = s.indexOf("\n", i);
    return nl < 0 ? s.length : nl + 1;
  }
  if (c === Ch.Slash && s.charCodeAt(i + 1) === Ch.Star) {
    let depth = 1;
    for (let j = i + 2; j < s.length - 1; j++) {
      if (s.charCodeAt(j) === Ch.Slash && s.charCodeAt(j + 1) === Ch.Star) depth++, j++;
      else if (s.charCodeAt(j) === Ch.Star && s.charCodeAt(j + 1) === Ch.Slash) {
        j++;
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  if (c === Ch.Dollar && !isIdentChar(s.charCodeAt(i - 1))) {
    // $tag$ … $tag$ (not $1, a parameter)
    let j = i + 1;
    if (j < s.length && !(s.charCodeAt(j) >= 0x30 && s.charCodeAt(j) <= 0x39)) {
      while (j < s.length && isIdentChar(s.charCodeAt(j)) && s.charCodeAt(j) !== Ch.Dollar) j++;
      if (s.charCodeAt(j) === Ch.Dollar) {
        const tag = s.slice(i, j + 1);
        const close = s.indexOf(tag, j + 1);
        return close < 0 ? -1 : close + tag.length;
      }
    }
  }
  return i;
}

/** The calls of the rewritten functions in `s`, in order, outermost only. */
function findCalls(s: string): Call[] {
  const calls: Call[] = [];
  // Statements that define something (CREATE VIEW, CREATE TRIGGER … EXECUTE FUNCTION, ALTER
  // TABLE … DEFAULT) keep the calls as written: they outlive the session.
  let statementStart = true;
  let defining = false;
  /** Which statement of the text this is (0: the first). */
  let statement = -1;
  let i = 0;
  while (i < s.length) {
    const skipped = skipNonCode(s, i);
    if (skipped < 0) return calls;
    if (skipped > i) {
      i = skipped;
      continue;
    }
    const c = s.charCodeAt(i);
    // A definition runs to the end of the text (a BEGIN ATOMIC body or a rule's actions hold
    // semicolons of their own).
    if (c === Ch.Semicolon && !defining) statementStart = true;
    if (!isIdentStart(c) || (i > 0 && isIdentChar(s.charCodeAt(i - 1)))) {
      i++;
      continue;
    }
    let j = i;
    while (j < s.length && isIdentChar(s.charCodeAt(j))) j++;
    const word = s.slice(i, j).toLowerCase();
    if (statementStart) {
      statementStart = false;
      statement++;
      defining = DEFINING.has(word);
    }
    if (defining) {
      i = j;
      continue;
    }
    if (word === VIEW || CATALOG_VIEWS.has(word)) {
      const schema = word === VIEW ? VIEW_SCHEMA : "pg_catalog";
      const start = qualifierStart(s, i, schema);
      const qualified = start < i;
      // A relation, not a column's qualifier (pg_locks.pid) or another schema's table.
      if ((qualified || (word !== VIEW && !qualifiedByOther(s, i))) && !followedBy(s, j, Ch.Dot)) {
        calls.push({ name: word, start, end: j, args: [], alias: hasAlias(s, j) });
      }
      i = j;
      continue;
    }
    if (!FUNCTIONS.has(word) || qualifiedByOther(s, i)) {
      i = j;
      continue;
    }
    let k = j;
    while (k < s.length && isSpace(s.charCodeAt(k))) k++;
    if (s.charCodeAt(k) !== Ch.Open) {
      i = j;
      continue;
    }
    const call = readArgs(s, k);
    if (!call) return calls;
    // A signal is rewritten only where it runs at once: in the text's first statement (a later
    // one could run after the session it names gave its backend to another). Named arguments
    // (pid => …) are left to Postgres.
    const late = SIGNALS.has(word) && statement > 0;
    const named = call.args.some((a) => s.slice(a.start, a.end).includes("=>"));
    if (!late && !named) calls.push({ name: word, start: qualifierStart(s, i), ...call });
    i = call.end;
  }
  return calls;
}

/** Whether the next character after `j` that is not a space is `ch`. */
function followedBy(s: string, j: number, ch: number): boolean {
  let k = j;
  while (k < s.length && isSpace(s.charCodeAt(k))) k++;
  return s.charCodeAt(k) === ch;
}

/** Index just before `i` skipping spaces backwards. */
function backOverSpace(s: string, i: number): number {
  let k = i - 1;
  while (k >= 0 && isSpace(s.charCodeAt(k))) k--;
  return k;
}

/** Whether the name at `i` is qualified by a schema other than pg_catalog. */
function qualifiedByOther(s: string, i: number): boolean {
  const k = backOverSpace(s, i);
  if (k < 0 || s.charCodeAt(k) !== Ch.Dot) return false;
  return qualifierStart(s, i) === i;
}

/** Whether an alias follows the relation name ending at `j`. */
function hasAlias(s: string, j: number): boolean {
  let k = j;
  while (k < s.length && isSpace(s.charCodeAt(k))) k++;
  if (!isIdentStart(s.charCodeAt(k)) && s.charCodeAt(k) !== Ch.DoubleQuote) return false;
  let e = k;
  while (e < s.length && isIdentChar(s.charCodeAt(e))) e++;
  return !NOT_ALIAS.has(s.slice(k, e).toLowerCase());
}

/** Where `schema.` (pg_catalog by default) before the name at `i` starts (i when there is none). */
function qualifierStart(s: string, i: number, schema = "pg_catalog"): number {
  const dot = backOverSpace(s, i);
  if (dot < 0 || s.charCodeAt(dot) !== Ch.Dot) return i;
  const end = backOverSpace(s, dot) + 1;
  const start = end - schema.length;
  if (start < 0 || s.slice(start, end).toLowerCase() !== schema) return i;
  if (start > 0 && (isIdentChar(s.charCodeAt(start - 1)) || s.charCodeAt(start - 1) === Ch.Dot)) {
    return i;
  }
  return start;
}

/** The arguments of the call whose `(` is at `open`, or null when it does not close. */
function readArgs(
  s: string,
  open: number,
): { end: number; args: { start: number; end: number }[] } | null {
  const args: { start: number; end: number }[] = [];
  let depth = 0;
  let argStart = open + 1;
  let i = open;
  while (i < s.length) {
    const skipped = skipNonCode(s, i);
    if (skipped < 0) return null;
    if (skipped > i) {
      i = skipped;
      continue;
    }
    const c = s.charCodeAt(i);
    if (c === Ch.Open) depth++;
    else if (c === Ch.Close) {
      if (--depth === 0) {
        if (s.slice(argStart, i).trim() !== "" || args.length) {
          args.push({ start: argStart, end: i });
        }
        return { end: i + 1, args };
      }
    } else if (c === Ch.Comma && depth === 1) {
      args.push({ start: argStart, end: i });
      argStart = i + 1;
    }
    i++;
  }
  return null;
}

/**
 * Whole frontend frames with the pid functions' calls rewritten in their Query and Parse
 * messages (session pooling, where statements keep their names and backend); `frames` itself
 * when none calls them. A statement prepared once keeps the pids of the time it was prepared.
 */
export function rewritePidFrames(frames: Uint8Array, sessionPid: number, map: PidMap): Uint8Array {
  let w: WireWriter | null = null;
  let raw = 0;
  let off = 0;
  const dv = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  while (off + 5 <= frames.length) {
    const start = off;
    const code = frames[off];
    const len = dv.getInt32(off + 1);
    if (len < 4) break;
    off += 1 + len;
    if (code !== FrontendCode.Query && code !== FrontendCode.Parse) continue;
    const body = frames.subarray(start + 5, Math.min(off, frames.length));
    if (!mayMention(body)) continue; // the common case, without decoding the text
    const [name, at] = code === FrontendCode.Parse ? readCString(body, 0) : ["", 0];
    const [sql, after] = readCString(body, at);
    if (!mentionsPidFunctions(sql)) continue;
    // A named statement may run much later, when the pids it was given belong to others: its
    // signals keep the pids as written (Postgres answers that no such backend exists).
    if (name !== "" && SIGNAL_RE.test(sql)) continue;
    const out = rewritePidFunctions(sql, sessionPid, map);
    if (out === sql) continue;
    w ??= new WireWriter(frames.length + out.length);
    w.raw(frames.subarray(raw, start));
    raw = off;
    w.begin(code);
    if (code === FrontendCode.Parse) w.cstring(name);
    w.cstring(out).raw(body.subarray(after)).end();
  }
  if (!w) return frames;
  return w.raw(frames.subarray(raw)).view().slice();
}
