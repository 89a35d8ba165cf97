import assert from "node:assert/strict";
import {
  BackendCode,
  FrameReader,
  FrontendCode,
  WireWriter,
  writeQuery,
  writeSync,
} from "../../shared/wire/mod.ts";
import { ReservationReason } from "../../shared/grpc/types.ts";
import { SessionState } from "./session_state.ts";

/** The frames of a translation, as [letter, statement-or-query name] pairs. */
function frames(out: Uint8Array): [string, string][] {
  const r = new FrameReader();
  r.push(out);
  const list: [string, string][] = [];
  const dec = new TextDecoder();
  while (r.next()) {
    const b = r.body;
    let name = "";
    if (r.code === FrontendCode.Parse) name = dec.decode(b.subarray(0, b.indexOf(0)));
    if (r.code === FrontendCode.Bind) {
      const p = b.indexOf(0);
      name = dec.decode(b.subarray(p + 1, b.indexOf(0, p + 1)));
    }
    list.push([String.fromCharCode(r.code), name]);
  }
  return list;
}

function parseBindSync(name: string, sql: string): Uint8Array {
  const w = new WireWriter();
  w.begin(FrontendCode.Parse).cstring(name).cstring(sql).int16(0).end();
  w.begin(FrontendCode.Bind).cstring("").cstring(name).int16(0).int16(0).int16(0).end();
  writeSync(w);
  return w.view().slice();
}

function bindSync(name: string): Uint8Array {
  const w = new WireWriter();
  w.begin(FrontendCode.Bind).cstring("").cstring(name).int16(0).int16(0).int16(0).end();
  writeSync(w);
  return w.view().slice();
}

function query(sql: string): Uint8Array {
  const w = new WireWriter();
  writeQuery(w, sql);
  return w.view().slice();
}

const EMPTY = new Uint8Array(0);
const IDLE = Uint8Array.of(0x49);
const IN_TX = Uint8Array.of(0x54);
const tag = (t: string) => new TextEncoder().encode(t + "\0");

Deno.test("SessionState.translate() renames a named statement for the session", () => {
  const st = new SessionState(7);
  const backend = new Set<string>();
  const t = st.translate(parseBindSync("q1", "select 1"), backend);
  assert.deepEqual(frames(t.out), [["P", "mgs_7_1"], ["B", "mgs_7_1"], ["S", ""]]);
  assert.equal(t.syncPoints, 1);
  assert.ok(backend.has("mgs_7_1"));
  assert.ok(st.inspect(BackendCode.ParseComplete, EMPTY, backend)); // the client's own: kept
});

Deno.test("SessionState.translate() re-prepares on a backend that lacks the statement", () => {
  const st = new SessionState(7);
  const first = new Set<string>();
  st.translate(parseBindSync("q1", "select 1"), first);
  st.inspect(BackendCode.ParseComplete, EMPTY, first);
  st.inspect(BackendCode.ReadyForQuery, IDLE, first);
  const second = new Set<string>();
  const t = st.translate(bindSync("q1"), second);
  assert.deepEqual(frames(t.out), [["P", "mgs_7_1"], ["B", "mgs_7_1"], ["S", ""]]);
  // The injected Parse's ParseComplete is dropped; the client never asked for it.
  assert.equal(st.inspect(BackendCode.ParseComplete, EMPTY, second), false);
  // On the first backend it exists: the Bind goes alone.
  assert.deepEqual(frames(st.translate(bindSync("q1"), first).out), [["B", "mgs_7_1"], ["S", ""]]);
});

Deno.test("SessionState: a Parse that fails leaves no statement behind", () => {
  const st = new SessionState(3);
  const backend = new Set<string>();
  st.translate(parseBindSync("bad", "selec 1"), backend);
  st.inspect(BackendCode.ErrorResponse, EMPTY, backend);
  st.inspect(BackendCode.ReadyForQuery, IDLE, backend);
  assert.deepEqual(st.statementNames, []);
  assert.equal(backend.size, 0);
});

Deno.test("SessionState tracks a plain SET and replays it; SET LOCAL and failed SETs are not kept", () => {
  const st = new SessionState(1);
  const b = new Set<string>();
  st.translate(query("SET work_mem TO '8MB'"), b);
  st.inspect(BackendCode.CommandComplete, tag("SET"), b);
  st.inspect(BackendCode.ReadyForQuery, IDLE, b);
  st.translate(query("set local statement_timeout = 5"), b);
  st.inspect(BackendCode.CommandComplete, tag("SET"), b);
  st.inspect(BackendCode.ReadyForQuery, IN_TX, b);
  st.translate(query("set search_path = nope_bad"), b);
  st.inspect(BackendCode.ErrorResponse, EMPTY, b);
  st.inspect(BackendCode.ReadyForQuery, IDLE, b);
  const sql = st.settingsSql();
  assert.match(sql, /^RESET ALL;/);
  assert.match(sql, /SET work_mem TO '8MB';/);
  assert.doesNotMatch(sql, /statement_timeout|search_path/);
  // SET LOCAL is not tracked, and its untracked tag pins the session (conservative).
  assert.equal(st.pins & ReservationReason.SESSION, ReservationReason.SESSION);
});

Deno.test("SessionState pins for temp tables, LISTEN, SQL PREPARE and advisory locks; DISCARD ALL unpins", () => {
  const cases: [string, string, number][] = [
    ["create temporary table t (x int)", "CREATE TABLE", ReservationReason.TEMP_TABLE],
    ["listen ch", "LISTEN", ReservationReason.LISTEN],
    ["prepare p as select 1", "PREPARE", ReservationReason.PREPARED_STATE],
    ["select pg_advisory_lock(1)", "SELECT 1", ReservationReason.ADVISORY_LOCK],
    ["declare c cursor with hold for select 1", "DECLARE CURSOR", ReservationReason.PORTAL],
  ];
  for (const [sql, t, reason] of cases) {
    const st = new SessionState(1);
    const b = new Set<string>();
    st.translate(query(sql), b);
    st.inspect(BackendCode.CommandComplete, tag(t), b);
    st.inspect(BackendCode.ReadyForQuery, IDLE, b);
    assert.equal(st.pins, reason, sql);
    st.translate(query("discard all"), b);
    st.inspect(BackendCode.CommandComplete, tag("DISCARD ALL"), b);
    st.inspect(BackendCode.ReadyForQuery, IDLE, b);
    assert.equal(st.pins, 0, `${sql}, then DISCARD ALL`);
  }
  const plain = new SessionState(1);
  plain.translate(query("select pg_advisory_xact_lock(1); update t set x = 1"), new Set());
  assert.equal(plain.pins, 0);
});

Deno.test("SessionState keeps a reported setting as Postgres reports it (SET datestyle in parts)", () => {
  const st = new SessionState(1);
  const b = new Set<string>();
  const ps = (name: string, value: string) => new TextEncoder().encode(`${name}\0${value}\0`);
  for (
    const [sql, value] of [["SET datestyle TO sql", "SQL, MDY"], [
      "SET datestyle TO dmy",
      "SQL, DMY",
    ]]
  ) {
    st.translate(query(sql), b);
    st.inspect(BackendCode.ParameterStatus, ps("DateStyle", value), b);
    st.inspect(BackendCode.CommandComplete, tag("SET"), b);
    st.inspect(BackendCode.ReadyForQuery, IDLE, b);
  }
  assert.match(st.settingsSql(), /SET datestyle TO 'SQL, DMY';/);
  assert.doesNotMatch(st.settingsSql(), /TO dmy/);
});

Deno.test("SessionState re-prepares the unnamed statement after the session moved backends", () => {
  const st = new SessionState(1);
  const b = new Set<string>();
  st.attachGeneration = 1;
  const w = new WireWriter();
  w.begin(FrontendCode.Parse).cstring("").cstring("select 1").int16(0).end();
  writeSync(w);
  st.translate(w.view().slice(), b);
  assert.ok(st.inspect(BackendCode.ParseComplete, EMPTY, b));
  st.inspect(BackendCode.ReadyForQuery, IDLE, b);
  const describe = new WireWriter();
  describe.begin(FrontendCode.Describe).int8(0x53).cstring("").end();
  writeSync(describe);
  // Same backend: the Describe goes alone.
  assert.deepEqual(frames(st.translate(describe.view().slice(), b).out), [["D", ""], ["S", ""]]);
  st.inspect(BackendCode.ReadyForQuery, IDLE, b);
  // Another backend: the statement is parsed there first and its ParseComplete dropped.
  st.attachGeneration = 2;
  assert.deepEqual(frames(st.translate(describe.view().slice(), b).out), [["P", ""], ["D", ""], [
    "S",
    "",
  ]]);
  assert.equal(st.inspect(BackendCode.ParseComplete, EMPTY, b), false);
});

Deno.test("SessionState drops only the injected ParseComplete when the client parses too", () => {
  const st = new SessionState(5);
  const first = new Set<string>();
  st.translate(parseBindSync("q", "select 1"), first);
  st.inspect(BackendCode.ParseComplete, EMPTY, first);
  st.inspect(BackendCode.ReadyForQuery, IDLE, first);
  // On a new backend: the client's own unnamed Parse, then a Bind of "q" (injected Parse).
  const w = new WireWriter();
  w.begin(FrontendCode.Parse).cstring("").cstring("select 2").int16(0).end();
  w.begin(FrontendCode.Bind).cstring("").cstring("q").int16(0).int16(0).int16(0).end();
  writeSync(w);
  const t = st.translate(w.view().slice(), new Set());
  assert.deepEqual(frames(t.out), [["P", ""], ["P", "mgs_5_1"], ["B", "mgs_5_1"], ["S", ""]]);
  assert.equal(st.inspect(BackendCode.ParseComplete, EMPTY, first), true); // the client's
  assert.equal(st.inspect(BackendCode.ParseComplete, EMPTY, first), false); // injected
});

Deno.test("SessionState releases a pin when its reason ends", () => {
  const cases: [string, string, string, string, number][] = [
    ["listen ch", "LISTEN", "unlisten *", "UNLISTEN", ReservationReason.LISTEN],
    [
      "select pg_advisory_lock(1)",
      "SELECT 1",
      "select pg_advisory_unlock_all()",
      "SELECT 1",
      ReservationReason.ADVISORY_LOCK,
    ],
    [
      "create temp table t (x int)",
      "CREATE TABLE",
      "discard temp",
      "DISCARD TEMP",
      ReservationReason.TEMP_TABLE,
    ],
    [
      "declare c cursor with hold for select 1",
      "DECLARE CURSOR",
      "close all",
      "CLOSE CURSOR ALL",
      ReservationReason.PORTAL,
    ],
    [
      "prepare p as select 1",
      "PREPARE",
      "deallocate all",
      "DEALLOCATE ALL",
      ReservationReason.PREPARED_STATE,
    ],
  ];
  for (const [pin, pinTag, unpin, unpinTag, reason] of cases) {
    const st = new SessionState(1);
    const b = new Set<string>();
    for (const [sql, t] of [[pin, pinTag], [unpin, unpinTag]]) {
      st.translate(query(sql), b);
      st.inspect(BackendCode.CommandComplete, tag(t), b);
      st.inspect(BackendCode.ReadyForQuery, IDLE, b);
      if (sql === pin) assert.equal(st.pins, reason, pin);
    }
    assert.equal(st.pins, 0, `${pin}, then ${unpin}`);
  }
  // UNLISTEN of one channel keeps the session listening to the others: still pinned.
  const st = new SessionState(1);
  const b = new Set<string>();
  for (const [sql, t] of [["listen a", "LISTEN"], ["unlisten a", "UNLISTEN"]]) {
    st.translate(query(sql), b);
    st.inspect(BackendCode.CommandComplete, tag(t), b);
    st.inspect(BackendCode.ReadyForQuery, IDLE, b);
  }
  assert.equal(st.pins, ReservationReason.LISTEN);
});

Deno.test("SessionState prepares a statement calling pid functions anew at each Bind", () => {
  const map = new Map<number, number>();
  const st = new SessionState(1, { session: 4194305, map });
  const backend = new Set<string>();
  const sql = "select pg_cancel_backend($1)";
  const w = new WireWriter();
  w.begin(FrontendCode.Parse).cstring("s1").cstring(sql).int16(0).end();
  writeSync(w);
  const parse = w.view().slice();
  assert.deepEqual(st.signalTargets(parse), []);
  st.translate(parse, backend);
  st.inspect(BackendCode.ParseComplete, EMPTY, backend);
  st.inspect(BackendCode.ReadyForQuery, IDLE, backend);

  // The pid comes with the Bind, in text; the statement text is the map of now.
  const b = new WireWriter();
  b.begin(FrontendCode.Bind).cstring("").cstring("s1").int16(0).int16(1).int32(7)
    .raw(new TextEncoder().encode("4194306")).int16(0).end();
  writeSync(b);
  const bind = b.view().slice();
  assert.deepEqual(st.signalTargets(bind), [4194306]);
  map.set(4194306, 777);
  const out = st.translate(bind, backend).out;
  assert.deepEqual(frames(out), [["P", ""], ["B", ""], ["S", ""]]);
  assert.ok(new TextDecoder().decode(out).includes("(4194306, 777)"));
  // Its ParseComplete is the pooler's, not the client's.
  assert.equal(st.inspect(BackendCode.ParseComplete, EMPTY, backend), false);
  assert.equal(st.inspect(BackendCode.BindComplete, EMPTY, backend), true);
});
