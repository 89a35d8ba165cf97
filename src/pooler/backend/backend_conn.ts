import { FrameReader, parseErrorFields, WireWriter } from "../../shared/wire/mod.ts";
import {
  AuthCode,
  BackendCode,
  parseAuthentication,
  parseBackendKeyData,
  parseParameterStatus,
  parseReadyForQuery,
  readCString,
  TxStatus,
  writeCancelRequest,
  writePassword,
  writeQuery,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
  writeTerminate,
} from "../../shared/wire/mod.ts";
import { connectionFailure, PgError, SqlState } from "../../shared/errors/mod.ts";
import { ScramClient } from "../../shared/auth/mod.ts";

/** Where a Postgres server listens: a unix socket path, or host and port. */
export type PgAddress = { path: string } | { hostname: string; port: number };

/** Result of an administrative query: all rows as text. */
export interface QueryResult {
  fields: string[];
  rows: (string | null)[][];
  tag: string;
}

/** Receives what a pumping backend reads. */
export interface PumpHandler {
  /** Raw backend frames; may return a promise to apply backpressure. */
  frames(frames: Uint8Array): void | Promise<void>;
  /** A ReadyForQuery was read (after `frames` got it); return false to stop pumping. */
  ready(txStatus: number): boolean;
  /**
   * Sees every frame but DataRow and CopyData before it is passed on; returning false drops it
   * (e.g. the ParseComplete of a statement the pooler re-prepared on its own).
   */
  inspect?(code: number, body: Uint8Array): boolean;
}

const decoder = new TextDecoder();
const CANCEL_TIMEOUT_MS = 5000;

/** Whether an ErrorResponse body says FATAL or PANIC (V field, else S). */
function isFatal(body: Uint8Array): boolean {
  let off = 0;
  let severity = "";
  while (off < body.length && body[off] !== 0) {
    const field = body[off];
    const [value, next] = readCString(body, off + 1);
    if (field === 0x56 /* V */) return value === "FATAL" || value === "PANIC";
    if (field === 0x53 /* S */) severity = value;
    off = next;
  }
  return severity === "FATAL" || severity === "PANIC";
}

/** The name of the first column of a RowDescription, or "" when it has none. */
function firstFieldName(body: Uint8Array): string {
  if (body.length < 3 || ((body[0] << 8) | body[1]) === 0) return "";
  return readCString(body, 2)[0];
}

/**
 * One connection from the pooler to Postgres, speaking the wire protocol with our codec. It passes
 * backend frames through raw (one contiguous view per socket read) and decodes only
 * ReadyForQuery, ParameterStatus and errors.
 */
export class BackendConn {
  readonly user: string;
  readonly database: string;
  readonly #conn: Deno.Conn;
  /** Postgres's own limit on a message is 1 GiB. */
  readonly #reader = new FrameReader({ maxFrameSize: 1024 * 1024 * 1024 });
  readonly #writer = new WireWriter();
  readonly #address: PgAddress;
  /** Every ParameterStatus the backend reported, latest value. */
  readonly params = new Map<string, string>();
  pid = 0;
  secret = 0;
  txStatus: number = TxStatus.Idle;
  /** The backend waits for COPY data (CopyInResponse seen, no ReadyForQuery yet). */
  copyIn = false;
  /** Postgres sent a FATAL error: the connection is about to end. */
  sawFatal = false;
  /** Names of the prepared statements the pooler created on this connection. */
  readonly statements = new Set<string>();
  /** The session settings last applied here (transaction pooling replays on change). */
  settingsKey = "";
  /** Which pool this connection belongs to (user, database, startup parameters). */
  poolKey = "";
  #closeMarker: string | null = null;
  #markerSeen = false;
  #broken = false;
  #busy = false;
  /** When this connection was last returned to its pool (for idle timeouts). */
  idleSince = 0;

  private constructor(conn: Deno.Conn, address: PgAddress, user: string, database: string) {
    this.#conn = conn;
    this.#address = address;
    this.user = user;
    this.database = database;
  }

  /** Opens and authenticates a connection; rejects with a PgError (Postgres's own, when it sent one). */
  static async connect(opts: {
    address: PgAddress;
    user: string;
    database: string;
    params?: Record<string, string>;
    password?: string;
  }): Promise<BackendConn> {
    let conn: Deno.Conn;
    try {
      if ("path" in opts.address) {
        conn = await Deno.connect({ transport: "unix", path: opts.address.path });
      } else {
        const tcp = await Deno.connect(opts.address);
        tcp.setNoDelay(true);
        conn = tcp;
      }
    } catch (e) {
      throw connectionFailure(`could not connect to Postgres: ${(e as Error).message}`);
    }
    const bc = new BackendConn(conn, opts.address, opts.user, opts.database);
    try {
      await bc.#startup(opts.params ?? {}, opts.password);
    } catch (e) {
      bc.close();
      throw e;
    }
    return bc;
  }

  get broken(): boolean {
    return this.#broken;
  }

  /** Bytes read from Postgres and not yet handled (a clean, idle connection has none). */
  get unread(): number {
    return this.#reader.buffered();
  }

  get busy(): boolean {
    return this.#busy;
  }

  async #startup(params: Record<string, string>, password?: string): Promise<void> {
    const w = this.#writer;
    w.reset();
    writeStartupMessage(w, { ...params, user: this.user, database: this.database });
    await this.#write(w.view());
    let scram: ScramClient | undefined;
    for (;;) {
      const r = await this.#nextFrame();
      switch (r.code) {
        case BackendCode.Authentication: {
          const auth = parseAuthentication(r.body);
          if (auth.code === AuthCode.Ok) break;
          if (password === undefined) {
            throw new PgError(
              SqlState.INVALID_PASSWORD,
              `Postgres asked for a password for user "${this.user}" and the pooler has none`,
              { severity: "FATAL" },
            );
          }
          w.reset();
          if (auth.code === AuthCode.CleartextPassword) {
            writePassword(w, password);
          } else if (auth.code === AuthCode.Sasl) {
            scram = new ScramClient(this.user, password);
            writeSaslInitialResponse(w, "SCRAM-SHA-256", scram.clientFirst());
          } else if (auth.code === AuthCode.SaslContinue && scram) {
            writeSaslResponse(w, scram.handleServerFirst(auth.data.slice()));
          } else if (auth.code === AuthCode.SaslFinal && scram) {
            scram.verifyServerFinal(auth.data.slice());
            break;
          } else {
            throw new PgError(
              SqlState.FEATURE_NOT_SUPPORTED,
              `unsupported authentication method ${auth.code} requested by Postgres`,
              { severity: "FATAL" },
            );
          }
          await this.#write(w.view());
          break;
        }
        case BackendCode.ParameterStatus: {
          const [k, v] = parseParameterStatus(r.body);
          this.params.set(k, v);
          break;
        }
        case BackendCode.BackendKeyData: {
          const k = parseBackendKeyData(r.body);
          this.pid = k.pid;
          this.secret = k.secret;
          break;
        }
        case BackendCode.ErrorResponse:
          throw parseErrorFields(r.body);
        case BackendCode.NoticeResponse:
          break;
        case BackendCode.ReadyForQuery:
          this.txStatus = parseReadyForQuery(r.body);
          return;
        default:
          throw new PgError(
            SqlState.PROTOCOL_VIOLATION,
            `unexpected message ${String.fromCharCode(r.code)} from Postgres during startup`,
          );
      }
    }
  }

  /** Reads until one complete frame is buffered. The views stay valid until the next read. */
  async #nextFrame(): Promise<FrameReader> {
    const r = this.#reader;
    while (!r.next()) await this.#fill();
    return r;
  }

  async #fill(): Promise<void> {
    let n: number | null;
    try {
      n = await this.#conn.read(this.#reader.writable());
    } catch (e) {
      this.#broken = true;
      throw connectionFailure(`lost connection to Postgres: ${(e as Error).message}`);
    }
    if (n === null) {
      this.#broken = true;
      throw connectionFailure("server closed the connection unexpectedly");
    }
    this.#reader.commit(n);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    try {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    } catch (e) {
      this.#broken = true;
      throw connectionFailure(`lost connection to Postgres: ${(e as Error).message}`);
    }
  }

  /** Writes raw frontend frames to the backend. */
  async send(payload: Uint8Array): Promise<void> {
    await this.#write(payload);
  }

  /**
   * Reads the backend continuously and passes every frame on raw, one contiguous view per socket
   * read (cut after each ReadyForQuery, so `ready()` runs only once the frames before it were
   * handed over), until `handler.ready()` returns false or the ReadyForQuery after the close
   * marker (see `expectCloseMarker`) arrives. The views handed to `frames` are valid only until
   * it returns (or its promise settles). Throws a PgError when the connection is lost.
   */
  async pump(handler: PumpHandler): Promise<void> {
    if (this.#busy) throw new Error("BackendConn.pump() while busy");
    this.#busy = true;
    const r = this.#reader;
    try {
      for (;;) {
        if (!r.buffered()) await this.#fill();
        let start = -1;
        let end = 0;
        let cut = false;
        while (r.next()) {
          cut = true;
          if (start < 0) start = r.frameStart;
          end = r.frameEnd;
          const code = r.code;
          if (code === BackendCode.DataRow || code === BackendCode.CopyData) continue;
          if (handler.inspect && !handler.inspect(code, r.body)) {
            // Drop this frame: pass on what came before it, start again after it.
            const before = r.frameStart;
            if (before > start) {
              const p = handler.frames(r.buffer.subarray(start, before));
              if (p) await p;
            }
            start = -1;
            continue;
          }
          switch (code) {
            case BackendCode.ReadyForQuery: {
              this.txStatus = parseReadyForQuery(r.body);
              this.copyIn = false;
              const p = handler.frames(r.buffer.subarray(start, end));
              if (p) await p;
              start = -1;
              const markerDone = this.#markerSeen;
              if (!handler.ready(this.txStatus) || markerDone) {
                this.#closeMarker = null;
                this.#markerSeen = false;
                return;
              }
              break;
            }
            case BackendCode.CopyInResponse:
              this.copyIn = true;
              break;
            case BackendCode.ParameterStatus: {
              const [k, v] = parseParameterStatus(r.body);
              this.params.set(k, v);
              break;
            }
            case BackendCode.ErrorResponse:
              if (isFatal(r.body)) this.sawFatal = true;
              break;
            case BackendCode.RowDescription:
              if (this.#closeMarker && firstFieldName(r.body) === this.#closeMarker) {
                this.#markerSeen = true;
              }
              break;
          }
        }
        if (start >= 0) {
          const p = handler.frames(r.buffer.subarray(start, end));
          if (p) await p;
        }
        if (!cut) await this.#fill();
      }
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Makes the running pump stop after the ReadyForQuery that follows a RowDescription whose first
   * column is named `token` (a `SELECT 1 AS "<token>"` the caller sends): a way to settle a
   * session that does not rely on counting ReadyForQuery frames, which COPY and extended-protocol
   * errors make unreliable.
   */
  expectCloseMarker(token: string): void {
    this.#closeMarker = token;
    this.#markerSeen = false;
  }

  /** Runs one administrative simple query and returns all rows as text. Throws Postgres's error. */
  async query(sql: string): Promise<QueryResult> {
    const w = this.#writer;
    w.reset();
    writeQuery(w, sql);
    const out: QueryResult = { fields: [], rows: [], tag: "" };
    let error: PgError | undefined;
    this.#busy = true;
    try {
      await this.#write(w.view());
      for (;;) {
        const r = await this.#nextFrame();
        switch (r.code) {
          case BackendCode.RowDescription:
            out.fields = parseFieldNames(r.body);
            break;
          case BackendCode.DataRow:
            out.rows.push(parseDataRow(r.body));
            break;
          case BackendCode.CommandComplete:
            out.tag = decoder.decode(r.body.subarray(0, r.body.length - 1));
            break;
          case BackendCode.ErrorResponse:
            error = parseErrorFields(r.body);
            break;
          case BackendCode.ParameterStatus: {
            const [k, v] = parseParameterStatus(r.body);
            this.params.set(k, v);
            break;
          }
          case BackendCode.ReadyForQuery:
            this.txStatus = parseReadyForQuery(r.body);
            if (error) throw error;
            return out;
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Asks Postgres to cancel whatever this connection runs (a CancelRequest on a new socket). */
  async cancel(): Promise<void> {
    const a = this.#address;
    let c: Deno.Conn | undefined;
    try {
      c = "path" in a
        ? await Deno.connect({ transport: "unix", path: a.path })
        : await Deno.connect({ hostname: a.hostname, port: a.port });
      const w = new WireWriter(16);
      writeCancelRequest(w, this.pid, this.secret);
      await c.write(w.view());
      // Postgres closes the socket once it has read the request; do not wait on a hung one.
      const conn = c;
      const timer = setTimeout(() => {
        try {
          conn.close();
        } catch {
          // closed
        }
      }, CANCEL_TIMEOUT_MS);
      await c.read(new Uint8Array(1)).catch(() => null);
      clearTimeout(timer);
    } catch {
      // Best effort: a backend we cannot cancel is closed by the caller.
    } finally {
      try {
        c?.close();
      } catch {
        // closed by the timeout
      }
    }
  }

  /**
   * Shuts down the write side of the socket: Postgres reads EOF, as from a client that did so
   * (it ends the connection; the pump sees the end). The connection is not reused after this.
   */
  shutdownWrite(): void {
    this.#broken = true;
    (this.#conn as Deno.TcpConn).closeWrite().catch(() => {});
  }

  /** Gives back a receive buffer that grew for a large frame. */
  shrink(): void {
    this.#reader.shrink();
  }

  /** Sends Terminate (when healthy) and closes the socket. */
  close(): void {
    if (!this.#broken) {
      try {
        const w = new WireWriter(8);
        writeTerminate(w);
        this.#conn.write(w.view()).catch(() => {});
      } catch {
        // closing anyway
      }
    }
    this.#broken = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

function parseFieldNames(body: Uint8Array): string[] {
  const n = (body[0] << 8) | body[1];
  const names: string[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const [name, next] = readCString(body, off);
    names.push(name);
    off = next + 18;
  }
  return names;
}

function parseDataRow(body: Uint8Array): (string | null)[] {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = dv.getInt16(0);
  const out: (string | null)[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const len = dv.getInt32(off);
    off += 4;
    if (len < 0) {
      out.push(null);
    } else {
      out.push(decoder.decode(body.subarray(off, off + len)));
      off += len;
    }
  }
  return out;
}
