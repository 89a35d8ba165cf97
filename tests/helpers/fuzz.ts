/**
 * A seeded protocol fuzzer of our own: it builds valid client message streams (simple and
 * extended queries, transactions, COPY, pipelines, startup packets), mutates them (cut, flip,
 * lying lengths, stray type bytes, dropped, doubled and swapped frames), ends the connection one
 * of several ways, and runs each case against the gateway and against Postgres directly
 * (`differential`). Every difference is reported: in what was committed, in hangs, and in the
 * answers. The same seed always makes the same cases.
 */
import {
  type Action,
  type Admin,
  differential,
  Frames,
  type Target,
  type TargetResult,
} from "./differential.ts";
import { CANCEL_REQUEST_CODE, concatBytes } from "../../src/shared/wire/mod.ts";

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** One generated case. */
export interface FuzzCase {
  seed: number;
  index: number;
  /** Human-readable: template, mutations, ending. */
  label: string;
  login: boolean;
  /** Frames (each a whole valid frame before mutation) and how the connection ends. */
  bytes: Uint8Array;
  ending: "probe" | "eof" | "close" | "reset";
}

/** Valid message streams after login, each a list of frames. */
const READY_TEMPLATES: Record<string, (r: Rand) => Uint8Array[]> = {
  "insert": (r) => [q(`insert into t values ('s', ${int(r, 100)})`)],
  "transaction": (r) => [
    q("begin"),
    q(`insert into t values ('x', ${int(r, 100)})`),
    q(pick(r, ["commit", "rollback", "select 1"])),
  ],
  "multi-statement": (r) => [q(`begin; insert into t values ('m', ${int(r, 100)}); commit`)],
  "extended": (r) => [
    ...frames((f) => f.parse(`insert into t values ('e', $1::int)`).bind([`${int(r, 100)}`])),
    ...frames((f) => f.execute().sync()),
  ],
  "extended unsynced": (r) =>
    frames((f) => f.parse(`insert into t values ('u', ${int(r, 100)})`).bind().execute()),
  "extended pipeline": (r) =>
    frames((f) =>
      f.parse(`insert into t values ('p', ${int(r, 100)})`).bind().execute().sync()
        .parse("select 1/0").bind().execute().sync()
        .parse(`insert into t values ('p', ${int(r, 100)})`).bind().execute().sync()
    ),
  "error in transaction": (r) => [
    q("begin"),
    q(`insert into t values ('r', ${int(r, 100)})`),
    q("select 1/0"),
    q("commit"),
  ],
  "copy": (r) => [
    q("copy t from stdin"),
    ...frames((f) => f.copyData(`c\t${int(r, 100)}\n`).copyData(`c\t${int(r, 100)}\n`)),
    ...frames((f) => f.copyDone()),
  ],
  "copy in transaction": (r) => [
    q("begin"),
    q("copy t from stdin"),
    ...frames((f) => f.copyData(`k\t${int(r, 100)}\n`).copyDone()),
    q("commit"),
  ],
  "select": () => [q("select 1"), ...frames((f) => f.parse("select $1::int").bind(["7"]))],
};

/** Valid startup-phase streams (no login before them). */
const STARTUP_TEMPLATES: Record<string, (r: Rand) => Uint8Array[]> = {
  "startup": () => frames((f) => f.startup()),
  "startup with options": () =>
    frames((f) => f.startup({ user: "postgres", database: "postgres", application_name: "fuzz" })),
  "cancel request": () =>
    frames((f) => f.startupPacket(CANCEL_REQUEST_CODE, new Uint8Array([0, 0, 0, 1, 0, 0, 0, 2]))),
};

function q(sql: string): Uint8Array {
  return new Frames().query(sql).bytes();
}

/** Splits a run of whole frames built by `build` into one Uint8Array per frame. */
function frames(build: (f: Frames) => Frames): Uint8Array[] {
  const all = build(new Frames()).bytes();
  const out: Uint8Array[] = [];
  let off = 0;
  const typed = all[0] !== 0; // startup-phase packets have no type byte (they start with 0)
  while (off < all.length) {
    const len = new DataView(all.buffer, all.byteOffset + off + (typed ? 1 : 0), 4).getInt32(0);
    const end = off + len + (typed ? 1 : 0);
    out.push(all.slice(off, end));
    off = end;
  }
  return out;
}

const MUTATIONS = [
  "cut",
  "flip",
  "length",
  "stray type",
  "drop frame",
  "double frame",
  "swap frames",
  "add Terminate",
  "add Sync",
  "none",
] as const;

function mutate(r: Rand, fs: Uint8Array[], typed: boolean): { fs: Uint8Array[]; what: string } {
  const out: Uint8Array[] = fs.map((f) => f.slice());
  if (!out.length) return { fs: out, what: "none" }; // an earlier mutation dropped them all
  const m = pick(r, MUTATIONS);
  const i = int(r, out.length);
  switch (m) {
    case "cut": {
      const all = concatBytes(out);
      return { fs: [all.subarray(0, int(r, all.length))], what: m };
    }
    case "flip": {
      const f = out[i];
      f[int(r, f.length)] ^= 1 << int(r, 8);
      return { fs: out, what: `${m} in frame ${i}` };
    }
    case "length": {
      const f = out[i];
      const at = typed ? 1 : 0;
      if (f.length < at + 4) return { fs: out, what: "none" };
      const v = new DataView(f.buffer, f.byteOffset + at, 4);
      const delta = pick(r, [-5, -1, 1, 3, 7, 10_000, 1 << 20, -(v.getInt32(0) - 3)]);
      v.setInt32(0, v.getInt32(0) + delta);
      return { fs: out, what: `length ${delta > 0 ? "+" : ""}${delta} in frame ${i}` };
    }
    case "stray type": {
      const code = pick(r, [0x00, 0x41, 0x70, 0x79, 0x7a, 0xff, 0x64, 0x63]);
      out.splice(i, 0, new Uint8Array([code, 0, 0, 0, 4]));
      return { fs: out, what: `stray 0x${code.toString(16)} before frame ${i}` };
    }
    case "drop frame":
      out.splice(i, 1);
      return { fs: out, what: `${m} ${i}` };
    case "double frame":
      out.splice(i, 0, out[i].slice());
      return { fs: out, what: `${m} ${i}` };
    case "swap frames": {
      const j = int(r, out.length);
      [out[i], out[j]] = [out[j], out[i]];
      return { fs: out, what: `swap ${i} and ${j}` };
    }
    case "add Terminate":
      out.splice(i + 1, 0, new Frames().terminate().bytes());
      return { fs: out, what: `Terminate after frame ${i}` };
    case "add Sync":
      out.splice(i + 1, 0, new Frames().sync().bytes());
      return { fs: out, what: `Sync after frame ${i}` };
    default:
      return { fs: out, what: "none" };
  }
}

/** The `index`-th case of `seed`. */
export function makeCase(seed: number, index: number): FuzzCase {
  const r = prng((seed * 1_000_003 + index) >>> 0);
  const startup = r() < 0.15;
  const templates = startup ? STARTUP_TEMPLATES : READY_TEMPLATES;
  const name = pick(r, Object.keys(templates));
  let fs = templates[name](r);
  const whats: string[] = [];
  const n = 1 + int(r, 2);
  for (let k = 0; k < n; k++) {
    const m = mutate(r, fs, !startup);
    fs = m.fs;
    if (m.what !== "none") whats.push(m.what);
  }
  const ending = pick(r, ["probe", "probe", "eof", "close", "reset"] as const);
  return {
    seed,
    index,
    label: `${name}${whats.length ? ` [${whats.join("; ")}]` : ""} then ${ending}`,
    login: !startup,
    bytes: concatBytes(fs),
    ending,
  };
}

function actions(c: FuzzCase): Action[] {
  const out: Action[] = [];
  if (c.bytes.length) out.push({ write: c.bytes });
  if (c.ending === "eof") out.push({ halfClose: true });
  else if (c.ending === "close") out.push({ close: true });
  else if (c.ending === "reset") out.push({ reset: true });
  return out;
}

/** A difference between the gateway and Postgres for one case. */
export interface Difference {
  case: FuzzCase;
  kind: "committed" | "hang" | "answers";
  postgres: TargetResult;
  gateway: TargetResult;
}

/** Runs cases `from` … `from + count - 1` of `seed`; calls `onCase` after each. */
export async function fuzz(
  targets: { gateway: Target; postgres: Target },
  admin: Admin,
  opts: {
    seed: number;
    count: number;
    from?: number;
    hangMs?: number;
    deadline?: number;
    onCase?: (c: FuzzCase, diffs: Difference[]) => void;
  },
): Promise<{ ran: number; differences: Difference[] }> {
  const differences: Difference[] = [];
  let ran = 0;
  const from = opts.from ?? 0;
  for (let i = from; i < from + opts.count; i++) {
    if (opts.deadline && Date.now() > opts.deadline) break;
    const c = makeCase(opts.seed, i);
    const run = { login: c.login, hangMs: opts.hangMs ?? 3000 }; // above the drain's 2 s idle bound
    const r = await differential(targets, admin, () => actions(c), run);
    ran++;
    const diffs: Difference[] = [];
    const diff = (kind: Difference["kind"]) => diffs.push({ case: c, kind, ...r });
    if (c.ending === "close" || c.ending === "reset") {
      // Bytes written just before a close or reset may or may not be read by a server (a reset,
      // or a close with unread answers, which is sent as one, makes the kernel drop them): any
      // prefix of the stream may run. Nothing may be committed beyond what the whole stream
      // commits on Postgres, ended by EOF; the client sees no answers either way.
      const whole = await differential(
        targets,
        admin,
        () => actions({ ...c, ending: "eof" }),
        run,
      );
      const allowed = new Set(whole.postgres.rows);
      if (r.gateway.rows.some((row) => !allowed.has(row))) diff("committed");
      if (r.gateway.lingering) diff("hang");
    } else {
      if (r.gateway.rows.join() !== r.postgres.rows.join()) diff("committed");
      if ((r.gateway.hung && !r.postgres.hung) || r.gateway.lingering) diff("hang");
      else if (
        r.gateway.closed !== r.postgres.closed ||
        r.gateway.messages.join("\n") !== r.postgres.messages.join("\n")
      ) diff("answers");
    }
    differences.push(...diffs);
    opts.onCase?.(c, diffs);
  }
  return { ran, differences };
}
