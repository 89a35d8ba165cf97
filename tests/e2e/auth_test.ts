/**
 * Who gets in, with Postgres as the oracle: one pg_hba.conf is given to the cluster's own
 * Postgres and to the gateway, and every role × rule × TLS × client case must end the same way
 * directly and through the gateway (success, or the same SQLSTATE, message and detail; psql shows
 * no SQLSTATE, so for psql the message and detail). Then the connection limits, a password
 * change, and a reload of a file with an error.
 */
import assert from "node:assert/strict";
import pg from "pg";
import postgres from "postgres";
import { dirname } from "node:path";
import { E2E, eventually, startCluster, type TestCluster } from "../helpers/cluster.ts";

/** The roles of the matrix: how each is stored, and the password each client gives. */
const ROLES = [
  { user: "r_scram", password: "pw" }, // SCRAM-SHA-256 secret, direct member of connectors
  { user: "r_scram", password: "bad" }, // the same with a wrong password
  { user: "r_md5", password: "pw" }, // md5 secret, member of connectors through team
  { user: "r_md5", password: "bad" },
  { user: "r_scram", password: "" }, // an empty password
  { user: "r_nopw", password: "pw" }, // no password at all
  { user: "r_nologin", password: "pw" }, // NOLOGIN
  { user: "r_expired", password: "pw" }, // VALID UNTIL in the past; in connectors through team
  { user: "r_noconnect", password: "pw" }, // no CONNECT privilege on the test databases
  { user: "r_ghost", password: "pw" }, // no such role
];

/** The databases of the matrix; each selects rules (db_none has none, and does not exist). */
const DATABASES = [
  "db_trust",
  "db_reject",
  "db_md5",
  "db_password",
  "db_scram",
  "db_byuser",
  "db_tls",
  "db_none",
  "connectors", // named like a role: samerole
  "r_scram", // named like a user: sameuser
];

/**
 * The one file both read. The first lines are the cluster's own needs: its poolers reach
 * Postgres over the Unix socket, replicas and the superuser over TCP with SCRAM.
 */
const HBA = `# TYPE     DATABASE     USER          ADDRESS                   METHOD
local        all          all                                     trust
local        replication  all                                     trust
host         replication  all           127.0.0.1/32              scram-sha-256
host         all          postgres      127.0.0.1/32              scram-sha-256

# By address: a range without 127.0.0.1 comes first and must not apply.
host         all          all           10.0.0.0/8                trust
host         all          all           ::1/128                   trust
# GSSAPI encryption is never used here: hostgssenc never applies, hostnogssenc always does.
hostgssenc   db_trust     all           all                       reject

# By database, one method each.
host         db_trust     all           127.0.0.1/32              trust
host         "db_reject"  all           127.0.0.1/32              reject
host         db_md5       all           127.0.0.1/32              md5
host         db_password  all           samenet                   password
host         db_scram,db_other  all     127.0.0.1/32              scram-sha-256

# By user: a name, a group (members directly or through another role), then the rest.
hostnogssenc db_byuser    r_nopw        127.0.0.1/32              trust
host         db_byuser    @byuser.txt   127.0.0.1/32              password
host         db_byuser    +connectors   127.0.0.1 255.255.255.255 md5
host         db_byuser    all           samehost                  reject

# By encryption: cleartext passwords only over TLS.
hostssl      db_tls       all           127.0.0.1/32              password
hostnossl    db_tls       all           127.0.0.1/32 \\
             reject

# Client certificates (Postgres trusts the cluster's certificate as a CA).
hostssl      db_cert      all           127.0.0.1/32              cert
hostssl      db_certca    all           127.0.0.1/32              trust clientcert=verify-ca

# Databases named like roles.
host         samerole     all           127.0.0.1/32              password
host         sameuser     all           127.0.0.1/32              md5

# The connection limit tests.
host         db_limit     all           127.0.0.1/32              md5
host         all          r_limit,r_change 127.0.0.1/32           scram-sha-256
`;

/** Included with `@byuser.txt`: a comment and a name. */
const BYUSER = "# cleartext passwords for these\nr_md5\n";

/** What a client saw: "ok", or the error as `code message [detail]` (psql: `- message`). */
type Outcome = string;

type Client = (
  port: number,
  who: { user: string; password: string; database: string; tls: boolean },
) => Promise<Outcome>;

const viaPg: Client = async (port, who) => {
  const c = new pg.Client({
    host: "127.0.0.1",
    port,
    user: who.user,
    password: who.password,
    database: who.database,
    ssl: who.tls ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: 20_000,
  });
  c.on("error", () => {});
  try {
    await c.connect();
    const r = await c.query("select current_user as u");
    return r.rows[0].u === who.user ? "ok" : `connected as ${r.rows[0].u}`;
  } catch (e) {
    const err = e as Error & { code?: string; detail?: string };
    return describe(err.code, err.message, err.detail);
  } finally {
    await c.end().catch(() => {});
  }
};

const viaPostgresJs: Client = async (port, who) => {
  const sql = postgres({
    host: "127.0.0.1",
    port,
    user: who.user,
    pass: who.password,
    database: who.database,
    ssl: who.tls ? "require" : false,
    max: 1,
    connect_timeout: 20,
    onnotice: () => {},
  });
  try {
    const [r] = await sql`select current_user as u`;
    return r.u === who.user ? "ok" : `connected as ${r.u}`;
  } catch (e) {
    const err = e as Error & { code?: string; detail?: string };
    return describe(err.code, err.message, err.detail);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
};

/** psql logs in, reads its empty stdin and quits: exit code 0 means it got in. */
const viaPsql: Client = async (port, who) => {
  const out = await new Deno.Command("psql", {
    args: ["-X", "-h", "127.0.0.1", "-p", String(port), "-U", who.user, "-d", who.database],
    env: {
      PGPASSWORD: who.password,
      PGSSLMODE: who.tls ? "require" : "disable",
      PGCONNECT_TIMEOUT: "20",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code === 0) return "ok";
  const err = dec.decode(out.stderr);
  const at = err.indexOf("FATAL:");
  // An error of libpq's own ("fe_sendauth: no password supplied") names the port it tried.
  if (at < 0) return `- ${err.trim().replace(/port \d+/, "port …")}`;
  // "FATAL:  message\nDETAIL:  detail"
  const [message, detail] = err.slice(at + 6).split(/\n?DETAIL:/).map((s) => s.trim());
  return describe("-", message, detail);
};

/** An error as the matrix compares it. */
function describe(code: string | undefined, message: string, detail?: string): Outcome {
  return `${code ?? "?"} ${message}${detail ? ` [${detail}]` : ""}`;
}

const CLIENTS: [string, Client][] = [["psql", viaPsql], ["pg", viaPg], [
  "postgres.js",
  viaPostgresJs,
]];

/** Runs `fn` over `items` with at most `n` at a time. */
async function inParallel<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** A client certificate for CN `cn` issued with the cluster's certificate (Postgres's CA here). */
async function clientCert(
  c: TestCluster,
  dir: string,
  cn: string,
): Promise<{ cert: string; key: string }> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" })
      .output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
  };
  await run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    `${dir}/client.key`,
    "-out",
    `${dir}/client.csr`,
  ]);
  await run([
    "x509",
    "-req",
    "-in",
    `${dir}/client.csr`,
    "-CA",
    `${c.dir}/tls/server.crt`,
    "-CAkey",
    `${c.dir}/tls/server.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    `${dir}/client.crt`,
  ]);
  return {
    cert: await Deno.readTextFile(`${dir}/client.crt`),
    key: await Deno.readTextFile(`${dir}/client.key`),
  };
}

async function setUp(c: TestCluster, admin: pg.Client): Promise<void> {
  for (
    const sql of [
      "create role connectors nologin",
      "create role team nologin in role connectors",
      "create role r_scram login password 'pw' in role connectors",
      "set password_encryption = 'md5'",
      "create role r_md5 login password 'pw' in role team",
      "reset password_encryption",
      "create role r_nopw login in role connectors",
      "create role r_nologin nologin password 'pw' in role connectors",
      "create role r_expired login password 'pw' valid until '2000-01-01' in role team",
      "create role r_noconnect login password 'pw'",
      "create role r_limit login password 'pw' connection limit 1 in role connectors",
      "create role r_change login password 'old' in role connectors",
    ]
  ) await admin.query(sql);
  const md5 = await admin.query("select rolpassword from pg_authid where rolname = 'r_md5'");
  assert.match(md5.rows[0].rolpassword, /^md5/);
  const databases = DATABASES.filter((d) => d !== "db_none");
  for (const db of [...databases, "db_limit", "db_cert", "db_certca"]) {
    await admin.query(`create database ${db}${db === "db_limit" ? " connection limit 1" : ""}`);
    await admin.query(`revoke connect on database ${db} from public`);
    await admin.query(`grant connect on database ${db} to connectors`);
  }

  // TLS for Postgres too, with the certificate the cluster made for its gateway.
  const data = c.cluster.pgDataDir;
  await Deno.copyFile(`${c.dir}/tls/server.crt`, `${data}/server.crt`);
  await Deno.copyFile(`${c.dir}/tls/server.key`, `${data}/server.key`);
  await Deno.chmod(`${data}/server.key`, 0o600);
  const chown = await new Deno.Command("chown", {
    args: ["postgres:postgres", `${data}/server.crt`, `${data}/server.key`],
  }).output();
  assert.ok(chown.success, "chown of the certificate failed");
  await admin.query("alter system set ssl = on");
  await admin.query("alter system set ssl_ca_file = 'server.crt'");

  // The same rules for both, and the file they include, beside each.
  for (const dir of [data, dirname(c.cluster.cfg.hbaFile!)]) {
    await Deno.writeTextFile(`${dir}/byuser.txt`, BYUSER);
  }
  await Deno.writeTextFile(`${data}/pg_hba.conf`, HBA);
  await admin.query("select pg_reload_conf()");
  await Deno.writeTextFile(c.cluster.cfg.hbaFile!, HBA);
  assert.ok(c.cluster.signal("multigateway", "SIGHUP"));

  const probe = { user: "r_nopw", password: "", database: "db_trust", tls: true };
  assert.ok(
    await eventually(async () => (await viaPg(c.directPort, probe)) === "ok"),
    "Postgres did not take the rules (or ssl)",
  );
  assert.ok(
    await eventually(async () => (await viaPg(c.port, probe)) === "ok"),
    "the gateway did not take the rules",
  );
  const bad = await admin.query(
    "select line_number, error from pg_hba_file_rules where error <> ''",
  );
  assert.deepEqual(bad.rows, []);
}

Deno.test("who gets in: the same answers as Postgres for one pg_hba.conf", E2E, async (t) => {
  const hbaDir = await Deno.makeTempDir({ prefix: "multigres_hba_" });
  const hbaFile = `${hbaDir}/pg_hba.conf`;
  // At start the gateway has a file with the default rule; the test's rules come by SIGHUP.
  await Deno.writeTextFile(hbaFile, "host all all all scram-sha-256\n");
  let c: TestCluster | undefined;
  let admin: pg.Client | undefined;
  try {
    c = await startCluster(3300, { cells: 1, hbaFile });
    admin = await c.client({ direct: true });
    await setUp(c, admin);
    const cluster = c;

    await t.step("every role × rule × TLS × client: the same outcome", async () => {
      const cases = ROLES.flatMap((r) =>
        DATABASES.flatMap((database) =>
          [false, true].flatMap((tls) =>
            CLIENTS.map(([name, fn]) => ({ ...r, database, tls, name, fn }))
          )
        )
      );
      const diffs: string[] = [];
      const tally = new Map<string, number>();
      await inParallel(cases, 3, async (k) => {
        const who = { user: k.user, password: k.password, database: k.database, tls: k.tls };
        const direct = await k.fn(cluster.directPort, who);
        const gateway = await k.fn(cluster.port, who);
        const label = `${k.name} ${k.user}/${k.password} ${k.database} ${k.tls ? "tls" : "plain"}`;
        if (direct !== gateway) {
          diffs.push(`${label}\n  postgres: ${direct}\n  gateway:  ${gateway}`);
        }
        const kind = direct === "ok" ? "ok" : direct.replace(/"[^"]*"/g, '"…"');
        tally.set(kind, (tally.get(kind) ?? 0) + 1);
      });
      console.log(`${cases.length} cases, each directly and through the gateway:`);
      for (const [k, n] of [...tally].sort()) console.log(`  ${String(n).padStart(4)}  ${k}`);
      assert.deepEqual(diffs, [], `${diffs.length} differences:\n${diffs.join("\n")}`);
      // Every kind of answer is there, so the matrix tests what it means to.
      const kinds = [...tally.keys()].join("\n");
      for (
        const want of [
          /^ok$/m,
          /^28P01 password authentication failed/m,
          /^28000 pg_hba.conf rejects connection/m,
          /^28000 no pg_hba.conf entry .*SSL encryption/m,
          /^28000 no pg_hba.conf entry .*no encryption/m,
          /^28000 role "…" is not permitted to log in/m,
          /^28000 role "…" does not exist/m,
          /^42501 permission denied for database "…" \[User does not have CONNECT privilege.\]/m,
        ]
      ) assert.match(kinds, want);
    });

    await t.step(
      "client certificates: refused by the gateway, which cannot verify them",
      async () => {
        const noCert = { user: "r_scram", password: "pw", tls: true };
        for (const database of ["db_cert", "db_certca"]) {
          const direct = await viaPg(cluster.directPort, { ...noCert, database });
          const gateway = await viaPg(cluster.port, { ...noCert, database });
          assert.equal(direct, "28000 connection requires a valid client certificate");
          assert.equal(gateway.replace(/ \[.*\]$/, ""), direct);
        }
        // With a certificate from the CA Postgres trusts, for CN r_scram: Postgres lets it in; the
        // gateway, which cannot tell such a certificate from any other, does not (README: hba).
        const { cert, key } = await clientCert(cluster, hbaDir, "r_scram");
        for (const database of ["db_cert", "db_certca"]) {
          const login = async (port: number) => {
            const c = new pg.Client({
              host: "127.0.0.1",
              port,
              user: "r_scram",
              password: "pw",
              database,
              ssl: { rejectUnauthorized: false, cert, key },
            });
            try {
              await c.connect();
              return "ok";
            } catch (e) {
              const err = e as Error & { code?: string; detail?: string };
              return describe(err.code, err.message, err.detail);
            } finally {
              await c.end().catch(() => {});
            }
          };
          assert.equal(await login(cluster.directPort), "ok");
          assert.equal(
            await login(cluster.port),
            "28000 connection requires a valid client certificate [The gateway cannot verify client certificates.]",
          );
        }
      },
    );

    await t.step("connection limits of a role and of a database", async () => {
      for (const port of [cluster.directPort, cluster.port]) {
        const where = port === cluster.port ? "gateway" : "postgres";
        const held = new pg.Client({
          host: "127.0.0.1",
          port,
          user: "r_limit",
          password: "pw",
          database: "db_md5",
        });
        await held.connect();
        await held.query("select 1");
        const who = { user: "r_limit", password: "pw", database: "db_md5", tls: false };
        assert.equal(
          await viaPg(port, who),
          '53300 too many connections for role "r_limit"',
          where,
        );
        await held.end();
        // Its slot is free again (Postgres may take a moment to see the backend gone).
        assert.ok(await eventually(async () => (await viaPg(port, who)) === "ok"), where);
      }
      // The pooler keeps r_limit's backend for later sessions: Postgres itself is now at the
      // limit for direct connections, which is why the direct case ran first.

      for (const port of [cluster.directPort, cluster.port]) {
        const where = port === cluster.port ? "gateway" : "postgres";
        const held = new pg.Client({
          host: "127.0.0.1",
          port,
          user: "r_scram",
          password: "pw",
          database: "db_limit",
        });
        await held.connect();
        await held.query("select 1");
        const other = { user: "r_md5", password: "pw", database: "db_limit", tls: false };
        assert.equal(
          await viaPg(port, other),
          '53300 too many connections for database "db_limit"',
          where,
        );
        // A superuser is not held to it.
        const sup = { user: "postgres", password: "postgres", database: "db_limit", tls: false };
        assert.equal(await viaPg(port, sup), "ok", where);
        await held.end();
        if (port === cluster.directPort) {
          // Before the gateway's turn: Postgres must have seen the direct session go.
          assert.ok(await eventually(async () => (await viaPg(port, other)) === "ok"), where);
        }
      }
    });

    await t.step("a changed password applies at the next login", async () => {
      const who = (password: string) => ({
        user: "r_change",
        password,
        database: "db_scram",
        tls: false,
      });
      for (const port of [cluster.directPort, cluster.port]) {
        assert.equal(await viaPg(port, who("old")), "ok");
      }
      await admin!.query("alter role r_change password 'new'");
      for (const port of [cluster.directPort, cluster.port]) {
        assert.equal(
          await viaPg(port, who("old")),
          '28P01 password authentication failed for user "r_change"',
        );
        assert.equal(await viaPg(port, who("new")), "ok");
      }
    });

    await t.step("a file with an error keeps the old rules and names the line", async () => {
      const broken = HBA.split("\n");
      // db_trust's line gets a method nobody knows, and db_reject's line would trust.
      const at = broken.findIndex((l) => /^host\s+db_trust/.test(l));
      broken[at] = "host db_trust all 127.0.0.1/32 trusty";
      broken[at + 1] = "host db_reject all 127.0.0.1/32 trust";
      await Deno.writeTextFile(cluster.cluster.cfg.hbaFile!, broken.join("\n"));
      assert.ok(cluster.cluster.signal("multigateway", "SIGHUP"));
      const log = cluster.cluster.logPath("multigateway");
      assert.ok(
        await eventually(async () =>
          (await Deno.readTextFile(log)).includes(
            `${cluster.cluster.cfg.hbaFile}:${at + 1}: invalid authentication method \\"trusty\\"`,
          )
        ),
        "the gateway did not log the line in error",
      );
      // The old rules stay: db_trust still trusts, db_reject still rejects.
      const nopw = { user: "r_nopw", password: "", tls: false };
      assert.equal(await viaPg(cluster.port, { ...nopw, database: "db_trust" }), "ok");
      assert.match(
        await viaPg(cluster.port, { ...nopw, database: "db_reject" }),
        /^28000 pg_hba.conf rejects connection/,
      );
    });
  } finally {
    await admin?.end().catch(() => {});
    await c?.stop();
    await Deno.remove(hbaDir, { recursive: true }).catch(() => {});
  }
});
