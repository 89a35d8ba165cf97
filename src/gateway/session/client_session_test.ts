import assert from "node:assert/strict";
import pg from "pg";
import { makeScramVerifier, ScramClient } from "../../shared/auth/mod.ts";
import { connectionFailure, type PgError, unknownDatabase } from "../../shared/errors/mod.ts";
import { DoneFlag, type GetAuthCredentialsResponse } from "../../shared/grpc/types.ts";
import {
  AuthCode,
  BackendCode,
  FrameReader,
  FrontendCode,
  parseAuthentication,
  parseBackendKeyData,
  parseCommandComplete,
  parseErrorFields,
  parseParameterStatus,
  parseReadyForQuery,
  parseSaslMechanisms,
  READY_IDLE,
  TxStatus,
  WireWriter,
  writeCancelRequest,
  writeCommandComplete,
  writeDataRow,
  writeFlush,
  writeParameterStatus,
  writeQuery,
  writeRowDescription,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeSslRequest,
  writeStartupMessage,
  writeSync,
  writeTerminate,
} from "../../shared/wire/mod.ts";
import type { SessionListener } from "../poolergateway/pooler_conn.ts";
import { ClientSession } from "./client_session.ts";
import type { GatewayHandler, SessionBackend, SessionIdentity } from "./handler.ts";
import type { DefaultRelay, StatementRouter } from "../shardsession/mod.ts";

// ---- fakes ----

const ALICE_VERIFIER = makeScramVerifier("secret");
const TEXT_OID = 25;
/** How long a raw client waits for a frame before it declares the server stuck. */
const READ_BOUND_MS = 10_000;

/** A pooler session stand-in: answers open() and Query frames the way a pooler would. */
class FakeBackend implements SessionBackend {
  readonly opened: {
    sessionId: number;
    opts: { user: string; database: string; startup: Record<string, string> };
  }[] = [];
  readonly executed: { sessionId: number; payload: Uint8Array }[] = [];
  readonly closed: number[] = [];
  /** Bytes acknowledged per session (flow control). */
  readonly acked = new Map<number, number>();
  /** When false, execute() records the request and never answers (a query that hangs). */
  answer = true;
  /** The reservation mask its answers carry (128: SESSION, so a session cannot move). */
  reserved = 128;
  /** When true, the next request is refused unrun with RETRY (the pooler lost the primary). */
  retryNext = false;
  readonly #listeners = new Map<number, SessionListener>();

  open(
    sessionId: number,
    opts: { user: string; database: string; startup: Record<string, string> },
    listener: SessionListener,
  ): void {
    this.opened.push({ sessionId, opts: { ...opts, startup: { ...opts.startup } } });
    this.#listeners.set(sessionId, listener);
    const answer = () => {
      listener.onFrames(
        writeParameterStatus(new WireWriter(64), "server_version", "15.0").takeCopy(),
      );
      listener.onDone(this.reserved, false, 0, 0);
    };
    if (this.holdOpens) this.#heldOpens.push(answer);
    else queueMicrotask(answer);
  }

  /** The next request's answer, as these chunks of the stream (cut anywhere). */
  nextChunks?: Uint8Array[];

  /** When true, open() answers only at releaseOpens() (a pooler slow to open a session). */
  holdOpens = false;
  #heldOpens: (() => void)[] = [];

  releaseOpens(): void {
    this.holdOpens = false;
    for (const answer of this.#heldOpens.splice(0)) answer();
  }

  /** The data-plane stream broke: every session hears it. */
  lose(): void {
    for (const l of this.#listeners.values()) l.onLost(connectionFailure("stream ended"));
    this.#listeners.clear();
  }

  readonly cancelled: number[] = [];

  cancel(sessionId: number): void {
    this.cancelled.push(sessionId);
  }

  ack(sessionId: number, bytes: number): void {
    this.acked.set(sessionId, (this.acked.get(sessionId) ?? 0) + bytes);
  }

  congested(): Promise<void> | null {
    return null;
  }

  /**
   * Answers each frame of the payload as Postgres would: a Query with one row and
   * ReadyForQuery, Parse/Bind/Describe/Execute with their completions, Sync with ReadyForQuery.
   */
  execute(sessionId: number, payload: Uint8Array): number {
    // Kept as given, as a gRPC stream that sends later would: the payload must be the
    // backend's own bytes, not a view the session reuses.
    this.executed.push({ sessionId, payload });
    const settled = this.executed.filter((e) => e.sessionId === sessionId).length;
    if (!this.answer) return 1;
    if (this.retryNext) {
      this.retryNext = false;
      const l = this.#listeners.get(sessionId)!;
      this.#listeners.delete(sessionId);
      queueMicrotask(() => l.onDone(0, true, DoneFlag.RETRY, settled - 1));
      return 1;
    }
    const listener = this.#listeners.get(sessionId);
    assert.ok(listener, `execute() on session ${sessionId}, which was never opened`);
    const chunks = this.nextChunks;
    if (chunks) {
      this.nextChunks = undefined;
      queueMicrotask(() => {
        for (const c of chunks) listener.onFrames(c);
        listener.onDone(this.reserved, false, 0, settled);
      });
      return 1;
    }
    const w = new WireWriter(256);
    const r = new FrameReader();
    r.push(payload);
    let ready = false;
    while (r.next()) {
      switch (r.code) {
        case FrontendCode.Query:
          writeRowDescription(w, [{ name: "greeting", typeOid: TEXT_OID }]);
          writeDataRow(w, ["hello from the pooler"]);
          writeCommandComplete(w, "SELECT 1");
          w.raw(READY_IDLE);
          ready = true;
          break;
        case FrontendCode.Parse:
          w.begin(BackendCode.ParseComplete).end();
          break;
        case FrontendCode.Bind:
          w.begin(BackendCode.BindComplete).end();
          break;
        case FrontendCode.Describe:
          w.begin(BackendCode.NoData).end();
          break;
        case FrontendCode.Execute:
          writeDataRow(w, ["1"]);
          writeCommandComplete(w, "SELECT 1");
          break;
        case FrontendCode.Sync:
          w.raw(READY_IDLE);
          ready = true;
          break;
      }
    }
    const frames = w.takeCopy();
    queueMicrotask(() => {
      if (frames.length) listener.onFrames(frames);
      if (ready) listener.onDone(this.reserved, false, 0, settled);
    });
    return 1;
  }

  /** Like the pooler: a draining close (Terminate, EOF, protocol error) is answered `closed`. */
  close(sessionId: number, reason = 0): void {
    this.closed.push(sessionId);
    const l = this.#listeners.get(sessionId);
    this.#listeners.delete(sessionId);
    if (l && reason !== 0) queueMicrotask(() => l.onDone(0, true, 0, 0));
  }
}

/** The rest of the gateway: one role "alice" (password "secret"), one database "db1". */
class FakeHandler implements GatewayHandler {
  backend = new FakeBackend();
  statementRouter?: GatewayHandler["statementRouter"];
  readonly sessions: SessionIdentity[] = [];
  readonly ended: SessionIdentity[] = [];

  credentials(user: string): Promise<GetAuthCredentialsResponse> {
    if (user === "alice") {
      return Promise.resolve({
        exists: true,
        verifier: ALICE_VERIFIER,
        canLogin: true,
        validUntil: "",
        expired: false,
      });
    }
    return Promise.resolve({
      exists: false,
      verifier: "",
      canLogin: false,
      validUntil: "",
      expired: false,
    });
  }

  route(database: string): Promise<SessionBackend> {
    // `backend` may be replaced by a test: a session that moves finds the new one.
    if (database === "db1") return Promise.resolve(this.backend);
    return Promise.reject(unknownDatabase(database));
  }

  readonly cancelHooks = new Map<number, () => void>();
  readonly cancelRequests: { pid: number; secret: number }[] = [];

  newSession(onCancel: () => void): SessionIdentity {
    const n = this.sessions.length + 1;
    const id = { sessionId: 100 + n, pid: 4000 + n, secret: 0x5eed + n };
    this.sessions.push(id);
    this.cancelHooks.set(id.pid, onCancel);
    return id;
  }

  #nextDataPlaneId = 1000;

  /** Set to false to act as a gateway whose failover queue is full. */
  roomToWait = true;

  waitForPrimary(): (() => void) | null {
    return this.roomToWait ? () => {} : null;
  }

  newDataPlaneId(): number {
    return ++this.#nextDataPlaneId;
  }

  cancelRequest(pid: number, secret: number): Promise<void> {
    this.cancelRequests.push({ pid, secret });
    const id = this.sessions.find((s) => s.pid === pid);
    if (id && id.secret === secret) this.cancelHooks.get(pid)?.();
    return Promise.resolve();
  }

  sessionEnded(id: SessionIdentity): void {
    this.ended.push(id);
  }
}

// ---- a raw protocol client ----

interface Frame {
  code: number;
  body: Uint8Array;
}

class RawClient {
  readonly #conn: Deno.TcpConn;
  readonly #reader = new FrameReader();
  readonly #writer = new WireWriter(256);
  #closed = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Writes what `build` puts into a fresh writer. */
  async send(build: (w: WireWriter) => unknown): Promise<void> {
    this.#writer.reset();
    build(this.#writer);
    await this.sendBytes(this.#writer.view());
  }

  async sendBytes(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** One raw byte (the answer to SSLRequest); null at end of stream. */
  async readByte(): Promise<number | null> {
    const b = new Uint8Array(1);
    const n = await this.#conn.read(b);
    return n === null ? null : b[0];
  }

  /**
   * The next typed frame (body copied); null when the server closed the connection. A server
   * that neither answers nor closes within a generous bound fails the test instead of hanging
   * it (the bound is a safety net, not something the tests measure).
   */
  async next(): Promise<Frame | null> {
    const r = this.#reader;
    let gaveUp = false;
    const bound = setTimeout(() => {
      gaveUp = true;
      this.close();
    }, READ_BOUND_MS);
    try {
      while (!r.next()) {
        let n: number | null;
        try {
          n = await this.#conn.read(r.writable());
        } catch (e) {
          if (gaveUp) assert.fail("the server neither answered nor closed the connection");
          if (e instanceof Deno.errors.ConnectionReset) return null;
          throw e;
        }
        if (n === null) return null;
        r.commit(n);
      }
      return { code: r.code, body: r.body.slice() };
    } finally {
      clearTimeout(bound);
    }
  }

  /** The next frame, which must exist. */
  async expectFrame(): Promise<Frame> {
    const f = await this.next();
    assert.ok(f, "the server closed the connection, a frame was expected");
    return f;
  }

  /** Asserts the server closes the connection without sending anything more. */
  async expectClosed(): Promise<void> {
    const f = await this.next();
    assert.equal(f, null, `expected the connection to close, got frame ${describe(f)}`);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

function describe(f: Frame | null): string {
  return f === null ? "end of stream" : `'${String.fromCharCode(f.code)}' (${f.body.length} bytes)`;
}

/** Asserts `f` is an ErrorResponse with this severity, SQLSTATE and message. */
function assertError(
  f: Frame | null,
  severity: string,
  sqlstate: string,
  message: string,
): PgError {
  assert.ok(f, "expected an ErrorResponse, the connection closed");
  assert.equal(f.code, BackendCode.ErrorResponse, `expected ErrorResponse, got ${describe(f)}`);
  const err = parseErrorFields(f.body);
  assert.deepEqual(
    { severity: err.severity, sqlstate: err.sqlstate, message: err.message },
    { severity, sqlstate, message },
  );
  return err;
}

/** Sends a StartupMessage and runs SCRAM-SHA-256; returns the frame after the client-final. */
async function authenticate(
  c: RawClient,
  opts: { user: string; password: string; database?: string; params?: Record<string, string> },
): Promise<Frame | null> {
  const params: Record<string, string> = { user: opts.user };
  if (opts.database !== undefined) params.database = opts.database;
  Object.assign(params, opts.params);
  await c.send((w) => writeStartupMessage(w, params));

  const sasl = await c.expectFrame();
  assert.equal(
    sasl.code,
    BackendCode.Authentication,
    `expected AuthenticationSASL, ${describe(sasl)}`,
  );
  const auth = parseAuthentication(sasl.body);
  assert.equal(auth.code, AuthCode.Sasl);
  assert.deepEqual(parseSaslMechanisms(auth.data), ["SCRAM-SHA-256"]);

  const scram = new ScramClient(opts.user, opts.password);
  await c.send((w) => writeSaslInitialResponse(w, "SCRAM-SHA-256", scram.clientFirst()));
  const cont = await c.expectFrame();
  assert.equal(cont.code, BackendCode.Authentication, `expected SASLContinue, ${describe(cont)}`);
  const serverFirst = parseAuthentication(cont.body);
  assert.equal(serverFirst.code, AuthCode.SaslContinue);
  await c.send((w) => writeSaslResponse(w, scram.handleServerFirst(serverFirst.data)));
  const after = await c.next();
  if (after?.code === BackendCode.Authentication) {
    const final = parseAuthentication(after.body);
    assert.equal(final.code, AuthCode.SaslFinal);
    scram.verifyServerFinal(final.data);
  }
  return after;
}

/** Logs in as alice to db1 and reads up to the first ReadyForQuery; returns the frames after AuthenticationOk. */
async function login(
  c: RawClient,
  params: Record<string, string> = {},
): Promise<Frame[]> {
  const final = await authenticate(c, {
    user: "alice",
    password: "secret",
    database: "db1",
    params,
  });
  assert.equal(
    final?.code,
    BackendCode.Authentication,
    `expected SASLFinal, got ${describe(final)}`,
  );
  const ok = await c.expectFrame();
  assert.equal(
    ok.code,
    BackendCode.Authentication,
    `expected AuthenticationOk, got ${describe(ok)}`,
  );
  assert.equal(parseAuthentication(ok.body).code, AuthCode.Ok);
  const frames: Frame[] = [];
  for (;;) {
    const f = await c.expectFrame();
    frames.push(f);
    if (f.code === BackendCode.ReadyForQuery) return frames;
    assert.notEqual(
      f.code,
      BackendCode.ErrorResponse,
      `login failed: ${parseErrorFields(f.body).message}`,
    );
  }
}

// ---- harness ----

/** Waits, a bounded number of event-loop turns, until `cond()` holds; fails otherwise. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise<void>((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`gave up waiting: ${what}`);
}

interface Gateway {
  port: number;
  handler: FakeHandler;
  /** Opens a raw TCP client to the session (closed by the harness). */
  connect(): Promise<RawClient>;
  /** Whether ClientSession.run() has returned. */
  ended(): boolean;
}

/**
 * Listens on 127.0.0.1:0, runs one ClientSession for the first connection, and after `fn`
 * closes every client and the listener and waits for run() to return.
 */
async function withSession(fn: (gw: Gateway) => Promise<void>): Promise<void> {
  const handler = new FakeHandler();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let runDone = false;
  const session = listener.accept().then(
    (conn) => new ClientSession(conn, handler).run(),
    () => {}, // the listener closed before anyone connected
  ).finally(() => (runDone = true));
  const clients: RawClient[] = [];
  const gw: Gateway = {
    port: listener.addr.port,
    handler,
    async connect() {
      const c = new RawClient(await Deno.connect({ hostname: "127.0.0.1", port: gw.port }));
      clients.push(c);
      return c;
    },
    ended: () => runDone,
  };
  try {
    await fn(gw);
  } finally {
    for (const c of clients) c.close();
    listener.close();
    await eventually(() => runDone, "ClientSession.run() returns after the client is gone");
    await session;
  }
}

// ---- tests ----

Deno.test("ClientSession.run() answers SSLRequest with the single byte 'N' and goes on", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await c.send(writeSslRequest);
    assert.equal(await c.readByte(), 0x4e);
    const frames = await login(c);
    assert.deepEqual(parseReadyForQuery(frames.at(-1)!.body), TxStatus.Idle);
    await c.send(writeTerminate);
    await c.expectClosed();
  });
});

Deno.test("ClientSession.run() lets npm:pg log in with SCRAM and relays the pooler's rows", async () => {
  await withSession(async (gw) => {
    const client = new pg.Client({
      host: "127.0.0.1",
      port: gw.port,
      user: "alice",
      password: "secret",
      database: "db1",
      // Safety nets so a broken session fails the test instead of hanging it.
      connectionTimeoutMillis: READ_BOUND_MS,
      query_timeout: READ_BOUND_MS,
    });
    await client.connect();
    try {
      const res = await client.query("select 'hello from the pooler' as greeting");
      assert.deepEqual(res.rows, [{ greeting: "hello from the pooler" }]);
      assert.equal(res.command, "SELECT");
      assert.equal(res.rowCount, 1);
      assert.equal((client as unknown as { processID: number }).processID, 4001);
    } finally {
      await client.end();
    }
    await eventually(gw.ended, "the session ends after the client's Terminate");
    const executed = gw.handler.backend.executed;
    assert.equal(executed.length, 1);
    assert.equal(executed[0].sessionId, 101);
    assert.deepEqual(
      executed[0].payload,
      writeQuery(new WireWriter(), "select 'hello from the pooler' as greeting").takeCopy(),
    );
  });
});

Deno.test("ClientSession.run() sends the pooler's ParameterStatus, BackendKeyData and ReadyForQuery after login", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    const frames = await login(c, { application_name: "test-app" });
    assert.deepEqual(frames.map((f) => String.fromCharCode(f.code)), ["S", "K", "Z"]);
    assert.deepEqual(parseParameterStatus(frames[0].body), ["server_version", "15.0"]);
    assert.deepEqual(parseBackendKeyData(frames[1].body), { pid: 4001, secret: 0x5eed + 1 });
    assert.equal(parseReadyForQuery(frames[2].body), TxStatus.Idle);
    assert.deepEqual(gw.handler.backend.opened, [{
      sessionId: 101,
      opts: {
        user: "alice",
        database: "db1",
        startup: { application_name: "test-app" },
        replica: false,
        // The pooler answers pg_backend_pid() with the pid of the BackendKeyData.
        clientPid: 4001,
      },
    }]);

    await c.send((w) => writeQuery(w, "SELECT 1"));
    const reply = [await c.expectFrame(), await c.expectFrame(), await c.expectFrame()];
    assert.deepEqual(reply.map((f) => String.fromCharCode(f.code)), ["T", "D", "C"]);
    assert.equal(parseCommandComplete(reply[2].body), "SELECT 1");
    assert.equal(parseReadyForQuery((await c.expectFrame()).body), TxStatus.Idle);
    await c.send(writeTerminate);
    await c.expectClosed();
  });
});

Deno.test("ClientSession.run() relays extended-protocol frames before their Sync, in order", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    // postgres.js sends Parse/Bind/Describe/Execute/Flush and waits for the answers before Sync.
    const w = new WireWriter();
    w.begin(FrontendCode.Parse).cstring("").cstring("SELECT 1").int16(0).end();
    w.begin(FrontendCode.Bind).cstring("").cstring("").int16(0).int16(0).int16(0).end();
    w.begin(FrontendCode.Describe).int8(0x50).cstring("").end();
    w.begin(FrontendCode.Execute).cstring("").int32(0).end();
    writeFlush(w);
    const beforeSync = w.takeCopy();
    await c.sendBytes(beforeSync);
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) answers.push(String.fromCharCode((await c.expectFrame()).code));
    assert.deepEqual(answers, ["1", "2", "n", "D", "C"]);

    const sync = writeSync(new WireWriter()).takeCopy();
    await c.sendBytes(sync);
    const ready = await c.expectFrame();
    assert.equal(ready.code, BackendCode.ReadyForQuery);
    assert.equal(parseReadyForQuery(ready.body), TxStatus.Idle);

    // The pooler saw exactly the client's bytes, in order, all on this session.
    const executed = gw.handler.backend.executed;
    assert.ok(executed.every((e) => e.sessionId === 101));
    const seen = executed.flatMap((e) => [...e.payload]);
    assert.deepEqual(seen, [...beforeSync, ...sync]);
    await c.send(writeTerminate);
    await c.expectClosed();
  });
});

Deno.test("ClientSession.run() relays pipelined queries without waiting for each answer", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    gw.handler.backend.answer = false;
    const w = new WireWriter();
    writeQuery(w, "SELECT 1");
    writeQuery(w, "SELECT 2");
    const sent = w.takeCopy();
    await c.sendBytes(sent);
    await eventually(
      () => gw.handler.backend.executed.reduce((n, e) => n + e.payload.length, 0) === sent.length,
      "both queries reach the pooler although the first has no answer yet",
    );
    assert.deepEqual(gw.handler.backend.executed.flatMap((e) => [...e.payload]), [...sent]);
    await c.send(writeTerminate);
    await c.expectClosed();
  });
});

Deno.test("ClientSession.run() refuses a wrong password with FATAL 28P01 and closes", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    const f = await authenticate(c, { user: "alice", password: "wrong", database: "db1" });
    assertError(f, "FATAL", "28P01", 'password authentication failed for user "alice"');
    await c.expectClosed();
    assert.deepEqual(gw.handler.backend.opened, []);
  });
});

Deno.test("ClientSession.run() refuses an unknown role like a wrong password", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    const f = await authenticate(c, { user: "bob", password: "secret", database: "db1" });
    assertError(f, "FATAL", "28P01", 'password authentication failed for user "bob"');
    await c.expectClosed();
  });
});

Deno.test("ClientSession.run() refuses an unknown database with FATAL 3D000 and closes", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    const final = await authenticate(c, { user: "alice", password: "secret", database: "x" });
    assert.equal(final?.code, BackendCode.Authentication);
    const ok = await c.expectFrame();
    assert.equal(parseAuthentication(ok.body).code, AuthCode.Ok);
    assertError(await c.next(), "FATAL", "3D000", 'database "x" does not exist');
    await c.expectClosed();
    assert.deepEqual(gw.handler.backend.opened, []);
  });
});

Deno.test("ClientSession.run() uses the user name as the database when none is given", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await authenticate(c, { user: "alice", password: "secret" });
    await c.expectFrame(); // AuthenticationOk
    assertError(await c.next(), "FATAL", "3D000", 'database "alice" does not exist');
    await c.expectClosed();
  });
});

for (const length of [3, 20000]) {
  Deno.test(`ClientSession.run() closes on a startup packet of length ${length}, as Postgres does`, async () => {
    await withSession(async (gw) => {
      const c = await gw.connect();
      // Postgres only logs "invalid length of startup packet" and closes.
      await c.send((w) => w.int32(length));
      await c.expectClosed();
      assert.deepEqual(gw.handler.sessions, []);
    });
  });
}

Deno.test("ClientSession.run() refuses protocol 2.0 with FATAL 0A000", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await c.send((w) =>
      w.beginUntyped().int32(2 << 16).cstring("user").cstring("alice").int8(0).end()
    );
    assertError(
      await c.next(),
      "FATAL",
      "0A000",
      "unsupported frontend protocol 2.0: server supports 3.0 to 3.0",
    );
    await c.expectClosed();
  });
});

Deno.test("ClientSession.run() closes on a message declaring 2^30 bytes, as Postgres does", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    // Postgres's limit for a Query is 2^30 - 2: it closes without a word (it only logs it).
    await c.send((w) => w.int8(FrontendCode.Query).int32(2 ** 30));
    await c.expectClosed();
    assert.deepEqual(gw.handler.backend.executed, []);
    await eventually(gw.ended, "the session ends");
    assert.deepEqual(gw.handler.backend.closed, [101]);
  });
});

Deno.test("ClientSession.run() refuses an unknown message type after login with FATAL 08P01", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    await c.send((w) => w.begin(0x7a).end());
    assertError(await c.next(), "FATAL", "08P01", "invalid frontend message type 122");
    await c.expectClosed();
    await eventually(gw.ended, "the session ends");
    assert.deepEqual(gw.handler.backend.closed, [101]);
    assert.deepEqual(gw.handler.ended.map((id) => id.sessionId), [101]);
  });
});

Deno.test("ClientSession.run() closes the pooler session when the client leaves mid-query", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    gw.handler.backend.answer = false;
    await c.send((w) => writeQuery(w, "SELECT pg_sleep(3600)"));
    await eventually(
      () => gw.handler.backend.executed.length === 1,
      "the query reaches the pooler",
    );
    assert.deepEqual(gw.handler.backend.closed, []);
    c.close();
    await eventually(
      () => gw.handler.backend.closed.length > 0,
      "the pooler session is closed after the client disconnects",
    );
    assert.deepEqual(gw.handler.backend.closed, [101]);
    await eventually(gw.ended, "the session ends");
    assert.deepEqual(gw.handler.ended.map((id) => id.sessionId), [101]);
  });
});

Deno.test("ClientSession.run() on Terminate closes the pooler session and reports the end once", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    await c.send(writeTerminate);
    await c.expectClosed();
    await eventually(gw.ended, "the session ends");
    assert.deepEqual(gw.handler.backend.closed, [101]);
    assert.deepEqual(gw.handler.ended, [{ sessionId: 101, pid: 4001, secret: 0x5eed + 1 }]);
    assert.deepEqual(gw.handler.backend.executed, [], "Terminate is not relayed to the pooler");
  });
});

Deno.test("ClientSession: a CancelRequest with the session's key cancels it; a wrong key does not", async () => {
  const handler = new FakeHandler();
  handler.backend.answer = false; // the query hangs until cancelled
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const runs: Promise<void>[] = [];
  const accepting = (async () => {
    for (;;) {
      const conn = await listener.accept().catch(() => null);
      if (!conn) return;
      runs.push(new ClientSession(conn, handler).run());
    }
  })();
  const port = listener.addr.port;
  const client = new pg.Client({
    host: "127.0.0.1",
    port,
    user: "alice",
    password: "secret",
    database: "db1",
  });
  try {
    await client.connect();
    client.query("select pg_sleep(10)").catch(() => {});
    await eventually(() => handler.backend.executed.length > 0, "the query reached the backend");
    const id = handler.sessions[0];
    for (const secret of [id.secret + 1, id.secret]) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      const w = new WireWriter();
      writeCancelRequest(w, id.pid, secret);
      await c.write(w.view());
      // The gateway answers nothing and closes, as Postgres does.
      assert.equal(await c.read(new Uint8Array(8)), null);
      c.close();
    }
    assert.deepEqual(handler.cancelRequests.map((r) => r.secret), [id.secret + 1, id.secret]);
    assert.deepEqual(handler.backend.cancelled, [id.sessionId]);
  } finally {
    await client.end().catch(() => {});
    listener.close();
    await accepting;
    await Promise.all(runs);
  }
});

Deno.test("ClientSession: a request the pooler could not run goes to the new primary, unseen by the client", async () => {
  await withSession(async (gw) => {
    const first = gw.handler.backend;
    first.reserved = 0;
    const c = await gw.connect();
    await login(c);
    await c.send((w) => writeQuery(w, "SELECT 1"));
    assert.deepEqual(await frameCodes(c, 4), ["T", "D", "C", "Z"]);

    // A failover: the old pooler refuses the next request unrun; the router now knows another.
    const second = new FakeBackend();
    second.reserved = 0;
    first.retryNext = true;
    gw.handler.backend = second;
    await c.send((w) => writeQuery(w, "SELECT 2"));
    assert.deepEqual(await frameCodes(c, 4), ["T", "D", "C", "Z"]);
    assert.equal(first.executed.length, 2);
    assert.equal(second.executed.length, 1, "the refused request was sent again, once");
    assert.deepEqual(second.executed[0].payload, first.executed[1].payload);
    assert.notEqual(second.opened[0].sessionId, first.opened[0].sessionId);

    // The stream to that pooler breaks between requests: the session moves again.
    const third = new FakeBackend();
    third.reserved = 0;
    gw.handler.backend = third;
    second.lose();
    await c.send((w) => writeQuery(w, "SELECT 3"));
    assert.deepEqual(await frameCodes(c, 4), ["T", "D", "C", "Z"]);
    assert.equal(third.executed.length, 1);
  });
});

/**
 * Gives the next session a statement router that sends every statement to its pooler and keeps
 * the relay it gets; the returned function gives that relay.
 */
function keepRelay(gw: Gateway): () => DefaultRelay {
  let relay: DefaultRelay | undefined;
  gw.handler.statementRouter = (_session, r) => {
    relay = r;
    return {
      route: () => null,
      active: false,
      close() {},
      cancel() {},
    } as unknown as StatementRouter;
  };
  return () => {
    assert.ok(relay, "the session got its router");
    return relay;
  };
}

Deno.test("ClientSession: what the statement router runs while the session moves waits for the move", async () => {
  await withSession(async (gw) => {
    const relayOf = keepRelay(gw);
    gw.handler.backend.reserved = 0;
    const c = await gw.connect();
    await login(c);
    const relay = relayOf();
    // The stream breaks; the new pooler is slow to open the session that moves there.
    const first = gw.handler.backend;
    const second = new FakeBackend();
    second.reserved = 0;
    second.holdOpens = true;
    gw.handler.backend = second;
    first.lose();
    await eventually(() => second.opened.length === 1, "the session moves");
    // The router runs a statement meanwhile (a two-phase commit's COMMIT PREPARED): it must
    // not go out before the session is open there, or the open swallows its answer.
    const answer = relay.collect(writeQuery(new WireWriter(64), "SELECT 9").takeCopy());
    answer.catch(() => {}); // a failure below is the assertion's, not this promise's
    await new Promise<void>((resolve) => setTimeout(resolve, 0)); // its microtasks have run
    assert.equal(second.executed.length, 0, "nothing sent before the open is answered");
    second.releaseOpens();
    const frames = await Promise.race([
      answer,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the statement never got its answer")), READ_BOUND_MS)
      ),
    ]);
    assert.equal(frames[0], BackendCode.RowDescription);
    assert.equal(second.executed.length, 1);
  });
});

Deno.test("ClientSession: the router sees a ParameterStatus the pooler's chunks cut in pieces", async () => {
  await withSession(async (gw) => {
    const relayOf = keepRelay(gw);
    const c = await gw.connect();
    await login(c);
    const relay = relayOf();
    const w = new WireWriter(128);
    writeCommandComplete(w, "SET");
    writeParameterStatus(w, "client_encoding", "LATIN1");
    writeParameterStatus(w, "standard_conforming_strings", "off");
    w.raw(READY_IDLE);
    const bytes = w.takeCopy();
    // Cut inside the first header, inside the first ParameterStatus and inside the second.
    const cuts = [3, 14, 40, bytes.length];
    gw.handler.backend.nextChunks = cuts.map((end, i) => bytes.slice(i ? cuts[i - 1] : 0, end));
    await c.send((w) => writeQuery(w, "SET client_encoding TO 'LATIN1'"));
    assert.deepEqual(await frameCodes(c, 4), ["C", "S", "S", "Z"]);
    assert.equal(relay.parameter("client_encoding"), "LATIN1");
    assert.equal(relay.parameter("standard_conforming_strings"), "off");
  });
});

Deno.test("ClientSession: a session pinned to its pooler is not moved when the stream breaks", async () => {
  await withSession(async (gw) => {
    const c = await gw.connect();
    await login(c);
    await c.send((w) => writeQuery(w, "SELECT 1"));
    assert.deepEqual(await frameCodes(c, 4), ["T", "D", "C", "Z"]);
    gw.handler.backend.lose(); // reserved 128: its state lives on that pooler
    const err = await c.expectFrame();
    assert.equal(String.fromCharCode(err.code), "E");
    assert.match(new TextDecoder().decode(err.body), /stream ended/);
  });
});

async function frameCodes(c: RawClient, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(String.fromCharCode((await c.expectFrame()).code));
  return out;
}

Deno.test("ClientSession: with too many sessions waiting for a new primary, one more gets 53300", async () => {
  await withSession(async (gw) => {
    gw.handler.backend.reserved = 0;
    gw.handler.roomToWait = false;
    const c = await gw.connect();
    await login(c);
    gw.handler.backend.lose();
    const err = await c.expectFrame();
    assert.equal(String.fromCharCode(err.code), "E");
    assert.equal(parseErrorFields(err.body).sqlstate, "53300");
  });
});
