import assert from "node:assert/strict";
import {
  makeMd5Secret,
  makeScramVerifier,
  md5Response,
  ScramClient,
} from "../../shared/auth/mod.ts";
import { PgError } from "../../shared/errors/mod.ts";
import type { GetAuthCredentialsResponse } from "../../shared/grpc/types.ts";
import { authenticateClient, ConnectionCounts, type GatewayAccess, HbaConfig } from "./mod.ts";

const HBA = `
host  trustdb  all  127.0.0.1/32  trust
host  nodb     all  127.0.0.1/32  reject
host  md5db    all  127.0.0.1/32  md5
host  pwdb     all  127.0.0.1/32  password
host  all      all  127.0.0.1/32  scram-sha-256
`;

/** A file system holding one file. */
function only(path: string, text: string): (p: string) => string {
  return (p) => {
    if (p === path) return text;
    throw new Deno.errors.NotFound(p);
  };
}

function access(): GatewayAccess {
  const hba = new HbaConfig({ hbaFile: "/x/pg_hba.conf", readFile: only("/x/pg_hba.conf", HBA) });
  return { hba, counts: new ConnectionCounts(), localAddresses: [] };
}

const enc = new TextEncoder();
const cstr = (s: string) => enc.encode(s + "\0");

/** Roles as the pooler describes them (database "d…" exists, limits as named). */
function role(over: Partial<GetAuthCredentialsResponse>): GetAuthCredentialsResponse {
  return {
    exists: true,
    verifier: "",
    canLogin: true,
    validUntil: "",
    expired: false,
    superuser: false,
    roleConnLimit: -1,
    memberOf: [],
    databaseExists: true,
    databaseAllowsConnections: true,
    canConnect: true,
    databaseConnLimit: -1,
    ...over,
  };
}

/** A client that knows `password` and answers whatever the server asks (the codes it saw too). */
async function login(
  acc: GatewayAccess,
  creds: GetAuthCredentialsResponse,
  opts: { user?: string; database: string; password: string },
): Promise<{ codes: number[]; release: (() => void) | null }> {
  const user = opts.user ?? "u";
  const codes: number[] = [];
  let pending: Uint8Array | null = null;
  let scram: ScramClient | null = null;
  const io = {
    send: (b: Uint8Array) => {
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const code = view.getInt32(5);
      codes.push(code);
      const data = b.slice(9);
      if (code === 3) pending = cstr(opts.password);
      if (code === 5) pending = cstr(md5Response(makeMd5Secret(opts.password, user), data));
      if (code === 10) {
        scram = new ScramClient(user, opts.password);
        const first = scram.clientFirst();
        const body = new Uint8Array(14 + 4 + first.length);
        body.set(cstr("SCRAM-SHA-256"));
        new DataView(body.buffer).setInt32(14, first.length);
        body.set(first, 18);
        pending = body;
      }
      if (code === 11) pending = scram!.handleServerFirst(data);
      return Promise.resolve();
    },
    readPassword: () => {
      const p = pending;
      pending = null;
      return Promise.resolve(p);
    },
  };
  const release = await authenticateClient(io, {
    user,
    database: opts.database,
    tls: false,
    address: "127.0.0.1",
  }, { credentials: () => Promise.resolve(creds), access: acc });
  return { codes, release };
}

async function refused(p: Promise<unknown>, sqlstate: string, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PgError);
    assert.equal(e.severity, "FATAL");
    assert.equal(`${e.sqlstate} ${e.message}`, `${sqlstate} ${message}`);
    return true;
  });
}

const SCRAM_ROLE = role({ verifier: makeScramVerifier("pw", { iterations: 16 }) });
const MD5_ROLE = role({ verifier: makeMd5Secret("pw", "u") });

Deno.test("authenticateClient() runs each method as Postgres does", async () => {
  const a = access();
  // trust: no password asked.
  assert.deepEqual((await login(a, role({}), { database: "trustdb", password: "" })).codes, [0]);
  // md5 with an md5 secret: an md5 challenge; with a SCRAM secret: SCRAM.
  assert.deepEqual((await login(a, MD5_ROLE, { database: "md5db", password: "pw" })).codes, [5, 0]);
  assert.deepEqual(
    (await login(a, SCRAM_ROLE, { database: "md5db", password: "pw" })).codes,
    [10, 11, 12, 0],
  );
  // password: cleartext, checked against either form.
  for (const r of [MD5_ROLE, SCRAM_ROLE]) {
    assert.deepEqual((await login(a, r, { database: "pwdb", password: "pw" })).codes, [3, 0]);
  }
  // scram-sha-256 with an md5 secret fails after the exchange.
  await refused(
    login(a, MD5_ROLE, { database: "d", password: "pw" }),
    "28P01",
    'password authentication failed for user "u"',
  );
});

Deno.test("authenticateClient() refuses wrong, missing and expired passwords alike", async () => {
  const a = access();
  const fail = 'password authentication failed for user "u"';
  for (const database of ["md5db", "pwdb", "d"]) {
    await refused(login(a, MD5_ROLE, { database, password: "no" }), "28P01", fail);
    await refused(login(a, role({}), { database, password: "pw" }), "28P01", fail);
    await refused(
      login(a, { ...SCRAM_ROLE, expired: true }, { database, password: "pw" }),
      "28P01",
      fail,
    );
    await refused(
      login(a, role({ exists: false, memberOf: [] }), { database, password: "pw" }),
      "28P01",
      fail,
    );
  }
});

Deno.test("authenticateClient() refuses by rule with Postgres's messages", async () => {
  const a = access();
  await refused(
    login(a, role({}), { database: "nodb", password: "" }),
    "28000",
    'pg_hba.conf rejects connection for host "127.0.0.1", user "u", database "nodb", no encryption',
  );
  const none = new HbaConfig({
    hbaFile: "/x/h",
    readFile: only("/x/h", "host all all 10.0.0.0/8 trust"),
  });
  await refused(
    login({ ...a, hba: none }, role({}), { database: "d", password: "" }),
    "28000",
    'no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", no encryption',
  );
});

Deno.test("authenticateClient() makes the role checks after authentication", async () => {
  const a = access();
  const trust = { database: "trustdb", password: "" };
  await refused(login(a, role({ exists: false }), trust), "28000", 'role "u" does not exist');
  await refused(
    login(a, role({ canLogin: false }), trust),
    "28000",
    'role "u" is not permitted to log in',
  );
  await refused(
    login(a, role({ canConnect: false }), trust),
    "42501",
    'permission denied for database "trustdb"',
  );
  // A superuser skips the privilege and the limits.
  (await login(a, role({ canConnect: false, superuser: true }), trust)).release!();

  const one = role({ roleConnLimit: 1 });
  const first = await login(a, one, trust);
  await refused(login(a, one, trust), "53300", 'too many connections for role "u"');
  first.release!();
  (await login(a, one, trust)).release!();

  const db = role({ databaseConnLimit: 1 });
  const held = await login(a, db, { ...trust, user: "x" });
  await refused(
    login(a, db, { ...trust, user: "y" }),
    "53300",
    'too many connections for database "trustdb"',
  );
  held.release!();
  assert.equal(a.counts.database("trustdb"), 0);
  assert.equal(a.counts.role("x"), 0);
});
