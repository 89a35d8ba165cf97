/**
 * Differential protocol testing: the same client bytes (and the same way of ending the
 * connection) sent to the gateway and straight to the cluster's Postgres, with what each answered,
 * whether it closed, and which rows were committed afterwards. Postgres is the oracle.
 *
 * Used by the edge-case tests and by the protocol fuzzer (`deno task fuzz`).
 */
import net from "node:net";
import { Buffer } from "node:buffer";
import { ScramClient } from "../../src/shared/auth/mod.ts";
import {
  FrameReader,
  parseAuthentication,
  parseErrorFields,
  WireWriter,
  writeQuery,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
} from "../../src/shared/wire/mod.ts";

/** One thing the client does. */
export type Action =
  | { write: Uint8Array }
  /** Shuts down the client's write side (EOF for the server), still reading. */
  | { halfClose: true }
  /** Closes the socket. */
  | { close: true }
  /** Resets the connection (RST). */
  | { reset: true }
  /** Waits until the server has sent `count` messages of type `code` in all (or closed). */
  | { awaitMessage: string; count: number };

/** What a client observed. */
export interface Outcome {
  /** Every message, normalised: `Z:I`, `E:ERROR:42601:message`, `C:INSERT 0 1`, `D:a|b`… */
  messages: string[];
  /** The server closed the connection. */
  closed: boolean;
  /** The server neither closed nor answered the final probe in time. */
  hung: boolean;
}

export interface Target {
  name: "gateway" | "postgres";
  port: number;
  password: string;
}

/** Options of {@linkcode runCase}. */
export interface RunOptions {
  /** Log in (SCRAM as postgres) before the actions: the case starts in the ready phase. */
  login: boolean;
  /** How long a server may stay silent before the case counts as hung. */
  hangMs?: number;
}

const decoder = new TextDecoder();
/** The probe sent after the actions when the connection is still open both ways. */
const PROBE = writeQuery(new WireWriter(), "SELECT 'probe'").view().slice();

/** Normalises one backend message for comparison. */
function describe(code: number, body: Uint8Array): string | null {
  const c = String.fromCharCode(code);
  switch (c) {
    case "E":
    case "N": {
      const e = parseErrorFields(body);
      if (c === "N") return `N:${e.sqlstate}`;
      return `E:${e.severity}:${e.sqlstate}:${e.message}${
        e.position !== undefined ? `@${e.position}` : ""
      }`;
    }
    case "Z":
      return `Z:${String.fromCharCode(body[0])}`;
    case "C":
      return `C:${decoder.decode(body.subarray(0, body.length - 1))}`;
    case "D": {
      const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
      const n = v.getInt16(0);
      const vals: string[] = [];
      let off = 2;
      for (let i = 0; i < n; i++) {
        const len = v.getInt32(off);
        off += 4;
        if (len < 0) vals.push("NULL");
        else {
          vals.push(decoder.decode(body.subarray(off, off + len)));
          off += len;
        }
      }
      return `D:${vals.join("|")}`;
    }
    case "K": // virtual and real keys differ by design
    case "S": // ParameterStatus: the gateway's startup set differs from a backend's
      return null;
    default:
      return c;
  }
}

/**
 * Runs one case against one target: connects (and logs in when asked), performs the actions
 * while reading everything the server sends, then, if the connection is still open both ways,
 * sends a probe query. Ends when the server closes, answers the probe, or stays silent for
 * `hangMs` (hung).
 */
export async function runCase(
  target: Target,
  actions: Action[],
  opts: RunOptions,
): Promise<Outcome> {
  const hangMs = opts.hangMs ?? 10_000;
  const sock = await connect(target, opts.login);
  const messages: string[] = [];
  let closed = false;
  const seen = new Map<number, number>();
  let probed = false;
  // Before authentication the server may answer SSLRequest/GSSENCRequest with a single byte.
  let negotiating = !opts.login;
  let buf = new Uint8Array(0);
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  let lastActivity = Date.now();
  sock.on("data", (chunk: Buffer) => {
    lastActivity = Date.now();
    const joined = new Uint8Array(buf.length + chunk.length);
    joined.set(buf);
    joined.set(chunk, buf.length);
    buf = joined;
    let off = 0;
    while (negotiating && off < buf.length && "NSG".includes(String.fromCharCode(buf[off]))) {
      messages.push(`byte:${String.fromCharCode(buf[off])}`);
      seen.set(buf[off], (seen.get(buf[off]) ?? 0) + 1);
      off++;
    }
    while (buf.length - off >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset + off + 1, 4).getInt32(0);
      if (buf.length - off < len + 1) break;
      const code = buf[off];
      negotiating = false;
      seen.set(code, (seen.get(code) ?? 0) + 1);
      const m = describe(code, buf.subarray(off + 5, off + 1 + len));
      if (code === 0x5a && messages[messages.length - 2] === "D:probe") probed = true;
      if (m !== null) messages.push(m);
      off += len + 1;
    }
    buf = buf.slice(off);
    notify();
  });
  const onClose = () => {
    closed = true;
    notify();
  };
  sock.on("close", onClose);
  sock.on("end", () => {
    // The server half-closed: it will not send more. Close our side too.
    sock.end();
  });
  sock.on("error", () => {});

  /** Waits until `cond` holds, the socket closes, or the server is silent for `hangMs`. */
  const until = async (cond: () => boolean): Promise<boolean> => {
    while (!cond() && !closed) {
      const silentFor = Date.now() - lastActivity;
      if (silentFor >= hangMs) return false;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, hangMs - silentFor);
      });
    }
    return true;
  };

  let open = true;
  for (const a of actions) {
    if (closed) break;
    if ("write" in a) {
      lastActivity = Date.now();
      await new Promise<void>((resolve) => sock.write(a.write, () => resolve()));
    } else if ("halfClose" in a) {
      sock.end();
      open = false;
    } else if ("close" in a) {
      sock.destroy();
      open = false;
      closed = true;
      break;
    } else if ("reset" in a) {
      sock.resetAndDestroy();
      open = false;
      closed = true;
      break;
    } else if ("awaitMessage" in a) {
      const code = a.awaitMessage.charCodeAt(0);
      if (!(await until(() => (seen.get(code) ?? 0) >= a.count))) {
        sock.destroy();
        return { messages, closed: false, hung: true };
      }
    }
  }
  let hung = false;
  if (open && !closed) {
    lastActivity = Date.now();
    sock.write(PROBE);
    hung = !(await until(() => probed));
    sock.destroy();
  } else if (!closed && !sock.destroyed) {
    hung = !(await until(() => false));
    sock.destroy();
  }
  return { messages, closed, hung };
}

/** A node socket to the target, logged in (SCRAM) when asked, with no data listener yet. */
async function connect(target: Target, login: boolean): Promise<net.Socket> {
  const sock = net.connect({ host: "127.0.0.1", port: target.port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve());
    sock.once("error", reject);
  });
  if (login) await nodeLogin(sock, target.password);
  return sock;
}

/** Logs in on a node socket with SCRAM, reading up to the first ReadyForQuery. */
async function nodeLogin(sock: net.Socket, password: string): Promise<void> {
  const w = new WireWriter();
  writeStartupMessage(w, { user: "postgres", database: "postgres" });
  sock.write(w.view().slice());
  const r = new FrameReader();
  const scram = new ScramClient("postgres", password);
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      try {
        r.push(chunk);
        while (r.next()) {
          if (r.code === 0x45) throw parseErrorFields(r.body);
          if (r.code === 0x5a) {
            sock.off("data", onData);
            if (r.buffered()) reject(new Error("bytes after ReadyForQuery during login"));
            else resolve();
            return;
          }
          if (r.code !== 0x52) continue;
          const auth = parseAuthentication(r.body);
          w.reset();
          if (auth.code === 10) {
            writeSaslInitialResponse(w, "SCRAM-SHA-256", scram.clientFirst());
          } else if (auth.code === 11) {
            writeSaslResponse(w, scram.handleServerFirst(auth.data.slice()));
          } else if (auth.code === 12) scram.verifyServerFinal(auth.data.slice());
          if (w.length) sock.write(w.view().slice());
        }
      } catch (e) {
        sock.off("data", onData);
        reject(e);
      }
    };
    sock.on("data", onData);
    sock.once("close", () => reject(new Error("closed during login")));
  });
}

/** A direct connection to Postgres for setting up cases and reading what was committed. */
export interface Admin {
  query(sql: string): Promise<{ rows: Record<string, unknown>[] }>;
}

/** What one case did on one target: the answers, and the rows of `t` afterwards. */
export interface TargetResult extends Outcome {
  rows: string[];
  /** The session's backend was still busy (open transaction, running statement) at the end. */
  lingering: boolean;
}

/** The table every case works on: `t (kind text, n int)`. */
export const CASE_TABLE_SQL = "drop table if exists t; create table t (kind text, n int)";

/**
 * Waits until no client backend but the admin's own is inside a transaction or running a
 * statement: every session of the case has ended or is idle, so what it committed is final.
 * Returns false (after terminating the stragglers) when that does not happen in `timeoutMs`.
 */
export async function settle(admin: Admin, timeoutMs = 10_000): Promise<boolean> {
  const busy = `select pid from pg_stat_activity where backend_type = 'client backend'
    and pid <> pg_backend_pid() and state is distinct from 'idle'`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await admin.query(busy);
    if (!rows.length) return true;
    if (Date.now() > deadline) {
      await admin.query(`select pg_terminate_backend(pid) from (${busy}) b`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The rows of `t`, sorted, as text. */
export async function committedRows(admin: Admin): Promise<string[]> {
  const { rows } = await admin.query("select kind, n from t order by kind, n");
  return rows.map((r) => `${r.kind}:${r.n}`);
}

/**
 * Runs the same case against the gateway and against Postgres directly, each on a fresh `t`.
 * `build` makes the case's actions (called once per target: the bytes are the same).
 */
export async function differential(
  targets: { gateway: Target; postgres: Target },
  admin: Admin,
  build: () => Action[],
  opts: RunOptions,
): Promise<{ gateway: TargetResult; postgres: TargetResult }> {
  const out = {} as { gateway: TargetResult; postgres: TargetResult };
  for (const name of ["postgres", "gateway"] as const) {
    await admin.query(CASE_TABLE_SQL);
    const outcome = await runCase(targets[name], build(), opts);
    const lingering = !(await settle(admin));
    out[name] = { ...outcome, rows: await committedRows(admin), lingering };
  }
  return out;
}

/** Builds client frames for cases, byte for byte (malformed ones too). */
export class Frames {
  readonly #w = new WireWriter(256);

  /** A typed frame with a correct length. */
  frame(code: string, body: (w: WireWriter) => void = () => {}): this {
    this.#w.begin(code.charCodeAt(0));
    body(this.#w);
    this.#w.end();
    return this;
  }
  query(sql: string): this {
    return this.frame("Q", (w) => w.cstring(sql));
  }
  parse(sql: string, name = ""): this {
    return this.frame("P", (w) => w.cstring(name).cstring(sql).int16(0));
  }
  /** Bind of the unnamed portal with text parameters. */
  bind(params: (string | Uint8Array | null)[] = [], stmt = ""): this {
    return this.frame("B", (w) => {
      w.cstring("").cstring(stmt).int16(0).int16(params.length);
      for (const p of params) {
        if (p === null) w.int32(-1);
        else {
          const b = typeof p === "string" ? new TextEncoder().encode(p) : p;
          w.int32(b.length).bytes(b);
        }
      }
      w.int16(0);
    });
  }
  describePortal(): this {
    return this.frame("D", (w) => w.raw(new Uint8Array([0x50, 0])));
  }
  execute(): this {
    return this.frame("E", (w) => w.cstring("").int32(0));
  }
  sync(): this {
    return this.frame("S");
  }
  flush(): this {
    return this.frame("H");
  }
  terminate(): this {
    return this.frame("X");
  }
  copyData(text: string): this {
    return this.frame("d", (w) => w.bytes(new TextEncoder().encode(text)));
  }
  copyDone(): this {
    return this.frame("c");
  }
  /** Raw bytes, as they are. */
  raw(bytes: Uint8Array | number[]): this {
    this.#w.raw(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
    return this;
  }
  /** A type byte and a declared length, with `body` bytes after it (lengths may lie). */
  header(code: string, length: number, body: Uint8Array = new Uint8Array(0)): this {
    const h = new Uint8Array(5);
    h[0] = code.charCodeAt(0);
    new DataView(h.buffer).setInt32(1, length);
    return this.raw(h).raw(body);
  }
  /** An untyped startup-phase packet: int32 length, int32 code, then `rest`. */
  startupPacket(code: number, rest: Uint8Array = new Uint8Array(0)): this {
    const h = new Uint8Array(8);
    const v = new DataView(h.buffer);
    v.setInt32(0, 8 + rest.length);
    v.setInt32(4, code);
    return this.raw(h).raw(rest);
  }
  /** A StartupMessage (protocol 3.0) for the postgres user. */
  startup(params: Record<string, string> = { user: "postgres", database: "postgres" }): this {
    const enc = new TextEncoder();
    const parts: number[] = [];
    for (const [k, v] of Object.entries(params)) {
      parts.push(...enc.encode(k), 0, ...enc.encode(v), 0);
    }
    parts.push(0);
    return this.startupPacket(196608, new Uint8Array(parts));
  }
  bytes(): Uint8Array {
    return this.#w.view().slice();
  }
}

export { GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from "../../src/shared/wire/mod.ts";
