/**
 * `deno task compat`: runs one of PostgreSQL 15's own test suites twice against a local cluster,
 * once against Postgres directly and once through the gateway, and prints which tests fail only
 * through the gateway. `--suite regress` (the default) is the regression suite
 * (`parallel_schedule`, driven by `pg_regress`); `--suite isolation` is the isolation suite
 * (`isolation_schedule`, driven by `pg_isolation_regress` and `isolationtester`: several sessions
 * interleaving steps, with steps that wait on another session's lock).
 *
 * ```sh
 * deno task compat                          # both runs, then the comparison
 * deno task compat --max-connections 4      # fewer tests at once (default 8)
 * deno task compat --suite isolation        # the isolation suite instead
 * deno task compat --pool-mode session      # a cluster in session pooling (default transaction)
 * ```
 *
 * Setup (as root, cached in `.compat/`, git-ignored):
 * - the suite's SQL and expected files come from Debian's source package of `postgresql-15`
 *   at the installed server's version (`apt-get source`); a `deb-src` entry mirroring the Debian
 *   `deb` entries is added to apt when there is none;
 * - `postgresql-server-dev-15` of the same version provides `pg_regress` and PGXS, with which
 *   `regress.so` (the suite's C functions) is built; `autoinc.so` and `refint.so` come from the
 *   server package and are linked beside it;
 * - for `--suite isolation`, Debian ships no `isolationtester`: it and `pg_isolation_regress` are
 *   built once from the same source tree (`configure --without-readline --without-zlib` in a
 *   build folder, then `make -C src/test/isolation`, which builds the libpq it links; the
 *   tarball ships the generated spec parser, so no bison or flex) into
 *   `.compat/build/<version>/isolation/`.
 *
 * Each run gets a fresh cluster (`cluster start --data-dir /tmp/multigres_compat_* --port-offset
 * 2000`: gateway on 127.0.0.1:17432, Postgres on 127.0.0.1:27432), stopped afterwards, also on
 * failure. The suite leaves objects and sometimes roles behind, so it cannot run twice in one
 * database, and the gateway routes only the databases in Multigres's metadata (today `postgres`):
 * the script first checks whether the suite's own database (`regression`, or
 * `isolation_regression`, whose name one isolation spec spells out) is reachable through the
 * gateway and otherwise runs both halves in `postgres` (`--use-existing --dbname=postgres`), each
 * in a cluster of its own so that both start from the same state. The database settings
 * pg_regress applies to a database it creates (lc_messages 'C' …) are set by hand.
 *
 * Both isolation runs get `PGISOLATIONTIMEOUT` (`ISOLATION_STEP_TIMEOUT_S`): isolationtester
 * cancels a step that has neither finished nor been seen blocked (by
 * `pg_isolation_test_session_is_blocked` on the backend pid the server announced) after that many
 * seconds instead of Postgres's 300, so a wait the gateway hides costs that long per waiting step.
 *
 * Outputs stay in `.compat/results/{direct,gateway}/` for the regression suite and in
 * `.compat/results/isolation-<pool mode>/{direct,gateway}/` for the isolation suite
 * (regression.out, regression.diffs, results/, and the cluster's logs). Exit code 0 when both runs
 * completed, whatever failed; 1 when the suite could not run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { basename } from "node:path";

const PG_MAJOR = "15";
const PG_PACKAGE = `postgresql-${PG_MAJOR}`;
const DEV_PACKAGE = `postgresql-server-dev-${PG_MAJOR}`;
const PG_ROOT = `/usr/lib/postgresql/${PG_MAJOR}`;
const PG_BIN = `${PG_ROOT}/bin`;
const PG_CONFIG = `${PG_BIN}/pg_config`;
const PG_REGRESS = `${PG_ROOT}/lib/pgxs/src/test/regress/pg_regress`;
const SUPERUSER = "postgres";
const PASSWORD = "postgres";
/** Gateway and Postgres ports of a cluster at port offset 0 (see `clusterPorts`). */
const GATEWAY_PORT = 15432;
const POSTGRES_PORT = 25432;
/** A run that takes longer than this is stopped (a hung session would block forever). */
const RUN_TIMEOUT_MS = 40 * 60_000;
/**
 * `PGISOLATIONTIMEOUT` of both isolation runs: seconds after which isolationtester cancels a step
 * that has neither finished nor been seen blocked (Postgres's default is 300).
 */
const ISOLATION_STEP_TIMEOUT_S = 30;
/** Settings pg_regress gives a database it creates (`create_database` in pg_regress.c). */
const DATABASE_SETTINGS: [string, string][] = [
  ["lc_messages", "C"],
  ["lc_monetary", "C"],
  ["lc_numeric", "C"],
  ["lc_time", "C"],
  ["bytea_output", "hex"],
  ["timezone_abbreviations", "Default"],
];
/** How many changed lines of a diff to show as the reason of a failure. */
const REASON_LINES = 6;

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
const CACHE = `${REPO_ROOT}.compat`;
const APT_SRC_FILE = "/etc/apt/sources.list.d/multigres-src.sources";

const USAGE = `Usage: deno task compat [--suite regress|isolation] [--pool-mode transaction|session]
                        [--max-connections N] [--port-offset N]

Runs one of PostgreSQL ${PG_MAJOR}'s test suites against Postgres directly and through the
gateway of a local cluster, and prints the tests that fail only through the gateway.

Options:
  --suite NAME          regress (parallel_schedule, the default) or isolation (isolation_schedule)
  --pool-mode MODE      pool mode of the cluster: transaction (the default) or session
  --max-connections N   tests run at once within a parallel group (default 8)
  --port-offset N       port offset of the cluster (default 2000: gateway 17432, Postgres 27432)`;

/** Thrown with the one line to print when the suite cannot run. */
class CompatError extends Error {}

type Target = "direct" | "gateway";
type SuiteName = "regress" | "isolation";
type PoolMode = "transaction" | "session";
const SUITE_NAMES: readonly SuiteName[] = ["regress", "isolation"];
const POOL_MODES: readonly PoolMode[] = ["transaction", "session"];

interface TestResult {
  name: string;
  ok: boolean;
  /** What pg_regress printed after the status (e.g. the exit code of a crashed psql). */
  detail: string;
}

interface RunOutcome {
  target: Target;
  port: number;
  results: TestResult[];
  /** Diff lines of each failed test, from regression.diffs. */
  diffs: Map<string, string[]>;
  /** Components of the cluster that were no longer running when the suite ended. */
  dead: string[];
  seconds: number;
}

interface Suite {
  name: SuiteName;
  /** Debian version of the installed server, e.g. 15.18-0+deb12u1. */
  version: string;
  /** Upstream version, e.g. 15.18. */
  upstream: string;
  srcDir: string;
  /** `pg_regress` or `pg_isolation_regress`. */
  driver: string;
  /** The database the driver would create: `regression`, `isolation_regression`. */
  database: string;
  /** The driver's `--inputdir`: sql/ or specs/, and expected/. */
  inputDir: string;
  schedule: string;
  /** Driver options of this suite alone (regress: `--dlpath`). */
  args: string[];
  /** Environment of this suite alone (isolation: `PGISOLATIONTIMEOUT`). */
  env: Record<string, string>;
}

let current: Deno.ChildProcess | undefined;
let interrupted = false;

async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        "suite": { type: "string", default: "regress" },
        "pool-mode": { type: "string", default: "transaction" },
        "max-connections": { type: "string", default: "8" },
        "port-offset": { type: "string", default: "2000" },
        "help": { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const suiteName = values.suite as SuiteName;
  const poolMode = values["pool-mode"] as PoolMode;
  const maxConnections = Number(values["max-connections"]);
  const portOffset = Number(values["port-offset"]);
  if (!SUITE_NAMES.includes(suiteName)) {
    console.error(`error: --suite must be one of: ${SUITE_NAMES.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  if (!POOL_MODES.includes(poolMode)) {
    console.error(`error: --pool-mode must be one of: ${POOL_MODES.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    console.error(`error: --max-connections must be a positive integer\n\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(portOffset) || portOffset < 0) {
    console.error(`error: --port-offset must be a non-negative integer\n\n${USAGE}`);
    return 2;
  }

  Deno.addSignalListener("SIGINT", onInterrupt);
  Deno.addSignalListener("SIGTERM", onInterrupt);
  const started = Date.now();
  try {
    const suite = await prepareSuite(suiteName);
    const setupSeconds = (Date.now() - started) / 1000;
    let dbname = "";
    const outcomes: RunOutcome[] = [];
    for (const target of ["direct", "gateway"] as const) {
      if (interrupted) throw new CompatError("Interrupted");
      outcomes.push(
        await withCluster({ portOffset, poolMode }, async (cluster) => {
          if (!dbname) dbname = await chooseDatabase(cluster, suite);
          await prepareDatabase(cluster, dbname);
          return await runSuite(suite, cluster, { target, dbname, maxConnections, poolMode });
        }),
      );
    }
    report(suite, { dbname, poolMode }, outcomes, {
      setup: setupSeconds,
      total: (Date.now() - started) / 1000,
    });
    return 0;
  } catch (e) {
    if (e instanceof CompatError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    Deno.removeSignalListener("SIGTERM", onInterrupt);
  }
}

function onInterrupt(): void {
  interrupted = true;
  console.error("Interrupted: stopping the run and the cluster");
  try {
    current?.kill("SIGTERM");
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------------------------
// Setup: source package, server-dev package, regress.so, isolationtester

/** Everything the suite needs on disk; installs and builds what is missing. */
async function prepareSuite(name: SuiteName): Promise<Suite> {
  step("Checking prerequisites (PostgreSQL 15, etcd)");
  await must(Deno.execPath(), ["run", "-A", "src/cli/main.ts", "prereqs"], {
    what: "multigres prereqs",
    env: { PG_BIN_DIR: PG_BIN },
  });
  const version = await packageVersion(PG_PACKAGE);
  if (!version) throw new CompatError(`${PG_PACKAGE} is not installed`);
  const upstream = upstreamOf(version);
  step(`Installed server: ${PG_PACKAGE} ${version}`);

  const src = await ensureSource(version);
  const common = { name, version, upstream, srcDir: src.srcDir };
  if (name === "regress") {
    await ensureServerDev(version);
    const dlpath = await buildRegressLib(src.srcDir, src.upstream);
    const inputDir = `${src.srcDir}/src/test/regress`;
    return {
      ...common,
      driver: PG_REGRESS,
      database: "regression",
      inputDir,
      schedule: `${inputDir}/parallel_schedule`,
      args: [`--dlpath=${dlpath}`],
      env: {},
    };
  }
  const binDir = await buildIsolationTools(src.srcDir, src.upstream);
  const inputDir = `${src.srcDir}/src/test/isolation`;
  return {
    ...common,
    driver: `${binDir}/pg_isolation_regress`,
    database: "isolation_regression",
    inputDir,
    schedule: `${inputDir}/isolation_schedule`,
    args: [],
    env: { PGISOLATIONTIMEOUT: String(ISOLATION_STEP_TIMEOUT_S) },
  };
}

/**
 * Debian's source of postgresql-15 at `version`, unpacked under `.compat/src/`. When Debian does
 * not serve that version's source (its index may list a security update whose files are gone),
 * the newest source it does serve is used instead, with a note: the suite then runs against a
 * newer server, which is why the gateway is compared with the direct run of the same suite.
 */
async function ensureSource(version: string): Promise<{ srcDir: string; upstream: string }> {
  const unpacked = (v: string) => {
    const upstream = upstreamOf(v);
    return { srcDir: `${CACHE}/src/${v}/${PG_PACKAGE}-${upstream}`, upstream };
  };
  for (const v of [version, ...(await cachedSourceVersions())]) {
    if (await exists(`${unpacked(v).srcDir}/src/test/regress/parallel_schedule`)) {
      if (v !== version) step(`Using the cached source of ${PG_PACKAGE} ${v} (server ${version})`);
      return unpacked(v);
    }
  }
  requireRoot(`download Debian's source of ${PG_PACKAGE}`);
  if (!(await hasDebSrc())) {
    const text = await debSrcEntries();
    step(`Adding deb-src entries to apt: ${APT_SRC_FILE}`);
    await Deno.writeTextFile(APT_SRC_FILE, text);
  }
  if (!(await sourceAvailable(version))) await aptUpdate();
  if (!(await commandExists("dpkg-source"))) await aptInstall(["dpkg-dev"]);
  const candidates = [version, ...(await sourceVersions()).filter((v) => v !== version)];
  for (const v of candidates) {
    const { srcDir } = unpacked(v);
    const parent = `${CACHE}/src/${v}`;
    step(`Downloading ${PG_PACKAGE} ${v} source into ${parent}`);
    await Deno.remove(parent, { recursive: true }).catch(() => {});
    await Deno.mkdir(parent, { recursive: true });
    const r = await run("apt-get", ["source", `${PG_PACKAGE}=${v}`], { cwd: parent });
    if (r.code !== 0) {
      step(`Debian does not serve ${PG_PACKAGE} ${v}'s source; trying an older one`);
      continue;
    }
    if (!(await exists(`${srcDir}/src/test/regress/parallel_schedule`))) {
      throw new CompatError(`apt-get source did not unpack the regression suite into ${srcDir}`);
    }
    if (v !== version) step(`Using the regression suite of ${v} against the ${version} server`);
    return unpacked(v);
  }
  throw new CompatError(`Debian serves no source of ${PG_PACKAGE} that apt-get can download`);
}

/** `1:15.18-0+deb12u1` → `15.18`. */
function upstreamOf(version: string): string {
  return version.replace(/^\d+:/, "").replace(/-[^-]*$/, "");
}

/** Source versions apt lists for the package, newest first. */
async function sourceVersions(): Promise<string[]> {
  const r = await run("apt-cache", ["showsrc", PG_PACKAGE]);
  const vs = [...r.stdout.matchAll(/^Version: (\S+)$/gm)].map((m) => m[1]);
  return [...new Set(vs)].sort((a, b) => compareVersions(b, a));
}

/** Versions whose source is already unpacked under the cache. */
async function cachedSourceVersions(): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${CACHE}/src`)) if (e.isDirectory) out.push(e.name);
  } catch {
    // no cache yet
  }
  return out.sort((a, b) => compareVersions(b, a));
}

/** Orders Debian versions of one package by their upstream numbers (enough for 15.x). */
function compareVersions(a: string, b: string): number {
  const pa = upstreamOf(a).split(".").map(Number);
  const pb = upstreamOf(b).split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

async function sourceAvailable(version: string): Promise<boolean> {
  const r = await run("apt-cache", ["showsrc", PG_PACKAGE]);
  return r.code === 0 && r.stdout.split("\n").some((l) => l.trim() === `Version: ${version}`);
}

/** Whether apt already has any deb-src entry (one-line or deb822 format). */
async function hasDebSrc(): Promise<boolean> {
  for (const file of await aptSourceFiles()) {
    const text = await Deno.readTextFile(file);
    if (file.endsWith(".list") && /^\s*deb-src\s/m.test(text)) return true;
    if (file.endsWith(".sources") && /^Types:.*\bdeb-src\b/m.test(text)) return true;
  }
  return false;
}

/**
 * deb-src entries (deb822) mirroring the Debian archive's `deb` entries of the apt configuration.
 * Other repositories are left out: most publish no sources, and `apt-get update` fails on them.
 */
async function debSrcEntries(): Promise<string> {
  const stanzas: string[] = [];
  for (const file of await aptSourceFiles()) {
    const text = await Deno.readTextFile(file);
    if (file.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = stanza.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
        const types = fields.find((l) => /^Types:/i.test(l));
        const uris = fields.find((l) => /^URIs:/i.test(l));
        if (!types || !/\bdeb\b/.test(types) || !uris || !isDebianArchive(uris)) continue;
        if (fields.some((l) => /^Enabled:\s*no/i.test(l))) continue;
        stanzas.push(
          fields.map((l) => (/^Types:/i.test(l) ? "Types: deb-src" : l)).join("\n"),
        );
      }
    } else {
      for (const line of text.split("\n")) {
        const m = /^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line);
        if (!m || !isDebianArchive(m[2])) continue;
        const signedBy = /signed-by=(\S+?)[\s\]]/.exec(m[1] ?? "")?.[1];
        stanzas.push(
          [
            "Types: deb-src",
            `URIs: ${m[2]}`,
            `Suites: ${m[3]}`,
            `Components: ${m[4].trim()}`,
            ...(signedBy ? [`Signed-By: ${signedBy}`] : []),
          ].join("\n"),
        );
      }
    }
  }
  if (stanzas.length === 0) {
    throw new CompatError("No Debian archive entry in apt's sources: cannot add deb-src entries");
  }
  return `# Written by scripts/compat.ts: Debian source packages, for the regression suite.\n\n${
    stanzas.join("\n\n")
  }\n`;
}

function isDebianArchive(uris: string): boolean {
  return /debian\.org|\/debian(-security)?\/?(\s|$)/.test(uris);
}

async function aptSourceFiles(): Promise<string[]> {
  const files: string[] = [];
  if (await exists("/etc/apt/sources.list")) files.push("/etc/apt/sources.list");
  try {
    for await (const e of Deno.readDir("/etc/apt/sources.list.d")) {
      if (e.isFile && /\.(list|sources)$/.test(e.name)) {
        files.push(`/etc/apt/sources.list.d/${e.name}`);
      }
    }
  } catch {
    // no sources.list.d
  }
  return files.sort();
}

async function aptUpdate(): Promise<void> {
  step("apt-get update");
  await must("apt-get", ["update"], { what: "apt-get update (is the network reachable?)" });
}

async function aptInstall(packages: string[]): Promise<void> {
  requireRoot(`install ${packages.join(" ")}`);
  step(`apt-get install ${packages.join(" ")}`);
  const args = ["install", "-y", "--no-install-recommends", "--allow-downgrades", ...packages];
  const r = await run("apt-get", args, { env: { DEBIAN_FRONTEND: "noninteractive" } });
  if (r.code === 0) return;
  // A stale package list is the usual cause: refresh it once.
  await aptUpdate();
  await must("apt-get", args, {
    what: `apt-get install ${packages.join(" ")}`,
    env: { DEBIAN_FRONTEND: "noninteractive" },
  });
}

/** postgresql-server-dev-15 at the server's version: pg_regress and PGXS. */
async function ensureServerDev(version: string): Promise<void> {
  if ((await packageVersion(DEV_PACKAGE)) !== version) {
    await aptInstall([`${DEV_PACKAGE}=${version}`]);
  }
  if (!(await exists(PG_REGRESS))) {
    throw new CompatError(`${DEV_PACKAGE} ${version} has no pg_regress at ${PG_REGRESS}`);
  }
  await ensureBuildTools();
}

/** make and gcc, for regress.so and isolationtester. */
async function ensureBuildTools(): Promise<void> {
  const missing = [];
  for (const tool of ["make", "gcc"]) {
    if (!(await commandExists(tool))) missing.push(tool);
  }
  if (missing.length > 0) await aptInstall(missing);
}

/**
 * Builds `regress.so` from the suite's `regress.c` with PGXS, into the folder given to pg_regress
 * as `--dlpath`, beside links to the server's `autoinc.so` and `refint.so` (the `triggers` test).
 */
async function buildRegressLib(srcDir: string, upstream: string): Promise<string> {
  const dir = `${CACHE}/build/${upstream}`;
  if (!(await exists(`${dir}/regress.so`))) {
    step(`Building regress.so with PGXS in ${dir}`);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.copyFile(`${srcDir}/src/test/regress/regress.c`, `${dir}/regress.c`);
    await Deno.writeTextFile(
      `${dir}/Makefile`,
      [
        "# Written by scripts/compat.ts: the regression suite's C functions, built with PGXS.",
        "MODULES = regress",
        `PG_CONFIG = ${PG_CONFIG}`,
        "PGXS := $(shell $(PG_CONFIG) --pgxs)",
        "include $(PGXS)",
        "",
      ].join("\n"),
    );
    // with_llvm=no: no JIT bitcode, which would need clang for nothing.
    await must("make", ["-C", dir, "USE_PGXS=1", "with_llvm=no"], { what: "make regress.so" });
  }
  const pkglib = (await must(PG_CONFIG, ["--pkglibdir"], { what: "pg_config" })).trim();
  for (const lib of ["autoinc.so", "refint.so"]) {
    if (!(await exists(`${pkglib}/${lib}`))) {
      throw new CompatError(`${pkglib}/${lib} is missing: reinstall ${PG_PACKAGE}`);
    }
    await Deno.remove(`${dir}/${lib}`).catch(() => {});
    await Deno.symlink(`${pkglib}/${lib}`, `${dir}/${lib}`);
  }
  return dir;
}

/**
 * Builds `isolationtester` and `pg_isolation_regress` (which Debian does not package) from the
 * source tree, once; returns the folder holding both. pg_isolation_regress runs the
 * isolationtester of its own folder, which finds the libpq built with it through its rpath.
 */
async function buildIsolationTools(srcDir: string, upstream: string): Promise<string> {
  const prefix = `${CACHE}/build/${upstream}/isolation`;
  const binDir = `${prefix}/bin`;
  const tools = ["isolationtester", "pg_isolation_regress"];
  if ((await Promise.all(tools.map((t) => exists(`${binDir}/${t}`)))).every(Boolean)) {
    return binDir;
  }
  await ensureBuildTools();
  // A build folder of its own (a VPATH build) leaves the source tree unconfigured.
  const buildDir = `${prefix}/tree`;
  step(`Building isolationtester and pg_isolation_regress in ${buildDir}`);
  await Deno.remove(prefix, { recursive: true }).catch(() => {});
  await Deno.mkdir(buildDir, { recursive: true });
  // The rpath of what is built is ${prefix}/lib, where libpq is installed below.
  await must(`${srcDir}/configure`, [
    `--prefix=${prefix}`,
    "--without-readline",
    "--without-zlib",
  ], { what: "configure (PostgreSQL source)", cwd: buildDir });
  // Serial: with -j2 the build failed in submake-libpq (the submakes share src/port).
  await must("make", ["-C", "src/test/isolation"], {
    what: "make isolationtester",
    cwd: buildDir,
  });
  await must("make", ["-C", "src/interfaces/libpq", "install"], {
    what: "make install (libpq)",
    cwd: buildDir,
  });
  await Deno.mkdir(binDir, { recursive: true });
  for (const t of tools) {
    await Deno.copyFile(`${buildDir}/src/test/isolation/${t}`, `${binDir}/${t}`);
    await Deno.chmod(`${binDir}/${t}`, 0o755);
  }
  return binDir;
}

// ---------------------------------------------------------------------------------------------
// The cluster

interface Cluster {
  dataDir: string;
  gatewayPort: number;
  postgresPort: number;
}

/** Starts a fresh cluster, runs `fn`, and stops and removes the cluster, also on failure. */
async function withCluster<T>(
  opts: { portOffset: number; poolMode: PoolMode },
  fn: (c: Cluster) => Promise<T>,
): Promise<T> {
  const { portOffset, poolMode } = opts;
  const dataDir = await Deno.makeTempDir({ prefix: "multigres_compat_" });
  await Deno.chmod(dataDir, 0o755);
  const cluster: Cluster = {
    dataDir,
    gatewayPort: GATEWAY_PORT + portOffset,
    postgresPort: POSTGRES_PORT + portOffset,
  };
  try {
    step(`Starting a cluster in ${dataDir} (gateway :${cluster.gatewayPort}, ${poolMode} pooling)`);
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      "src/cli/main.ts",
      "cluster",
      "start",
      "--data-dir",
      dataDir,
      "--port-offset",
      String(portOffset),
      "--pool-mode",
      poolMode,
      "--password",
      PASSWORD,
    ], { env: { PG_BIN_DIR: PG_BIN } });
    if (r.code !== 0) {
      throw new CompatError(`Cluster start failed: ${lastLine(r.stderr || r.stdout)}`);
    }
    return await fn(cluster);
  } finally {
    if (await stopCluster(dataDir)) {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  }
}

async function stopCluster(dataDir: string): Promise<boolean> {
  step(`Stopping the cluster in ${dataDir}`);
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    "src/cli/main.ts",
    "cluster",
    "stop",
    "--data-dir",
    dataDir,
  ]);
  if (r.code !== 0) {
    console.error(
      `warning: cluster stop failed, stop it with: deno run -A src/cli/main.ts cluster stop ` +
        `--data-dir ${dataDir} (${lastLine(r.stderr || r.stdout)})`,
    );
    return false;
  }
  return true;
}

/** Components whose pid file names a process that no longer runs. */
async function deadComponents(dataDir: string): Promise<string[]> {
  const dead: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dataDir}/run`)) {
      if (!e.name.endsWith(".pid")) continue;
      const pid = (await Deno.readTextFile(`${dataDir}/run/${e.name}`)).trim();
      if (!(await exists(`/proc/${pid}`))) dead.push(e.name.slice(0, -4));
    }
  } catch {
    // no run/ folder: nothing to tell
  }
  return dead.sort();
}

/** psql as the superuser; returns stdout, throws CompatError on failure. */
async function psql(port: number, dbname: string, sql: string): Promise<string> {
  const r = await run(`${PG_BIN}/psql`, [
    "-X",
    "-q",
    "-At",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-U",
    SUPERUSER,
    "-d",
    dbname,
    "-c",
    sql,
  ], { env: { PGPASSWORD: PASSWORD } });
  if (r.code !== 0) throw new CompatError(`psql on port ${port}: ${lastLine(r.stderr)}`);
  return r.stdout.trim();
}

/**
 * The database both runs use: the suite's own (`regression`, `isolation_regression`) when the
 * gateway routes it, otherwise `postgres`, the one database in Multigres's metadata.
 */
async function chooseDatabase(c: Cluster, suite: Suite): Promise<string> {
  const serverVersion = await psql(c.postgresPort, "postgres", "SHOW server_version");
  if (!serverVersion.startsWith(suite.upstream)) {
    throw new CompatError(
      `The cluster runs PostgreSQL ${serverVersion}, the suite is for ${suite.upstream}`,
    );
  }
  const db = suite.database;
  await psql(c.postgresPort, "postgres", `CREATE DATABASE "${db}" TEMPLATE template0`);
  try {
    await psql(c.gatewayPort, db, "SELECT 1");
    step(`Database "${db}" is reachable through the gateway: both runs use it`);
    return db;
  } catch (e) {
    step(
      `Database "${db}" is not reachable through the gateway (${(e as Error).message}): ` +
        'both runs use "postgres", each on a fresh cluster',
    );
    await psql(c.postgresPort, "postgres", `DROP DATABASE "${db}"`);
    return "postgres";
  }
}

/**
 * Gives `dbname` the settings pg_regress gives a database it creates. They are also set with
 * ALTER SYSTEM (and a reload) so that backends the pooler opened earlier have them too.
 */
async function prepareDatabase(c: Cluster, dbname: string): Promise<void> {
  const found = await psql(
    c.postgresPort,
    "postgres",
    `SELECT count(*) FROM pg_database WHERE datname = '${dbname}'`,
  );
  if (found === "0") {
    await psql(c.postgresPort, "postgres", `CREATE DATABASE "${dbname}" TEMPLATE template0`);
  }
  for (const [name, value] of DATABASE_SETTINGS) {
    await psql(c.postgresPort, "postgres", `ALTER DATABASE "${dbname}" SET ${name} TO '${value}'`);
    await psql(c.postgresPort, "postgres", `ALTER SYSTEM SET ${name} TO '${value}'`);
  }
  await psql(c.postgresPort, "postgres", "SELECT pg_reload_conf()");
}

// ---------------------------------------------------------------------------------------------
// One run of the suite

async function runSuite(
  suite: Suite,
  cluster: Cluster,
  opts: { target: Target; dbname: string; maxConnections: number; poolMode: PoolMode },
): Promise<RunOutcome> {
  const port = opts.target === "direct" ? cluster.postgresPort : cluster.gatewayPort;
  const outDir = `${resultsDir(suite.name, opts.poolMode)}/${opts.target}`;
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  // The server (OS user postgres) writes COPY and large-object files into results/.
  await Deno.mkdir(`${outDir}/results`, { recursive: true });
  await Deno.chmod(outDir, 0o777);
  await Deno.chmod(`${outDir}/results`, 0o777);
  const args = [
    "--use-existing",
    "--host=127.0.0.1",
    `--port=${port}`,
    `--user=${SUPERUSER}`,
    `--dbname=${opts.dbname}`,
    `--inputdir=${suite.inputDir}`,
    `--outputdir=${outDir}`,
    // psql's folder; isolationtester is found beside pg_isolation_regress.
    `--bindir=${PG_BIN}`,
    ...suite.args,
    `--schedule=${suite.schedule}`,
    `--max-connections=${opts.maxConnections}`,
  ];
  step(
    `Running the ${suite.name} suite ` +
      `${opts.target === "direct" ? "directly" : "through the gateway"} ` +
      `(port ${port}, database ${opts.dbname}) into ${outDir}`,
  );
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    ...suite.env,
    PGPASSWORD: PASSWORD,
  };
  for (const k of ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGOPTIONS", "PGSERVICE"]) {
    delete env[k];
  }
  const started = Date.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(suite.driver, {
      args,
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
  } catch (e) {
    throw new CompatError(`Cannot run ${suite.driver}: ${(e as Error).message}`);
  }
  current = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    console.error(`The suite ran longer than ${RUN_TIMEOUT_MS / 60_000} minutes: stopping it`);
    child.kill("SIGTERM");
  }, RUN_TIMEOUT_MS);
  let output = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of child.stdout) {
      await Deno.stdout.write(chunk);
      output += decoder.decode(chunk, { stream: true });
    }
    await child.status;
  } finally {
    clearTimeout(timer);
    current = undefined;
  }
  const seconds = (Date.now() - started) / 1000;
  await Deno.writeTextFile(`${outDir}/pg_regress.out`, output);
  const dead = await deadComponents(cluster.dataDir);
  await copyLogs(cluster.dataDir, `${outDir}/cluster-logs`);

  const results = parseResults(output);
  if (interrupted) throw new CompatError("Interrupted");
  if (timedOut) throw new CompatError(`The ${opts.target} run did not finish in time`);
  if (results.length === 0) {
    throw new CompatError(
      `${basename(suite.driver)} ran no test ` +
        `${opts.target === "direct" ? "directly" : "through the gateway"}: ` +
        `${lastLine(output)} (see ${outDir}/pg_regress.out)`,
    );
  }
  let diffs = new Map<string, string[]>();
  try {
    diffs = parseDiffs(await Deno.readTextFile(`${outDir}/regression.diffs`));
  } catch {
    // no regression.diffs: every test passed
  }
  return { target: opts.target, port, results, diffs, dead, seconds };
}

/**
 * Where a suite's two runs keep their outputs: `results/` for the regression suite (whatever the
 * pool mode, as before there was a choice), `results/isolation-<mode>/` for the isolation suite.
 */
function resultsDir(name: SuiteName, poolMode: PoolMode): string {
  return name === "regress" ? `${CACHE}/results` : `${CACHE}/results/${name}-${poolMode}`;
}

/** Keeps the components' and Postgres's logs of a run beside its results. */
async function copyLogs(dataDir: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  const sources: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dataDir}/logs`)) {
      sources.push(`${dataDir}/logs/${e.name}`);
    }
  } catch {
    // no logs/
  }
  try {
    for await (const e of Deno.readDir(`${dataDir}/pg`)) {
      sources.push(`${dataDir}/pg/${e.name}/postgres.log`);
    }
  } catch {
    // no pg/
  }
  for (const src of sources) {
    await Deno.copyFile(src, `${to}/${basename(src)}`).catch(() => {});
  }
}

/** Test name → result, from pg_regress's output (`test x ... ok`, `     x ... FAILED`). */
function parseResults(output: string): TestResult[] {
  const results: TestResult[] = [];
  const re = /^(?:test |\s+)(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))\s*(.*)$/;
  for (const line of output.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const detail = m[3].replace(/\s*\d+ ms$/, "").trim();
    results.push({ name: m[1], ok: m[2] !== "FAILED", detail });
  }
  return results;
}

/** Test name → the lines of its diff, from regression.diffs (`diff -U3 expected results`). */
function parseDiffs(text: string): Map<string, string[]> {
  const diffs = new Map<string, string[]>();
  let lines: string[] | undefined;
  for (const line of text.replace(/\n$/, "").split("\n")) {
    const m = /^diff .*\/results\/([^/\s]+)\.out$/.exec(line);
    if (m) {
      lines = [];
      diffs.set(m[1], lines);
    } else {
      lines?.push(line);
    }
  }
  return diffs;
}

/** The hunks of a test's diff, each from its `@@` line on. */
function hunks(diff: string[]): string[][] {
  const out: string[][] = [];
  for (const line of diff) {
    if (line.startsWith("@@")) out.push([line]);
    else out.at(-1)?.push(line);
  }
  return out;
}

/** The first hunk of `diff` whose changes `other` does not have too (line numbers aside). */
function firstNewHunk(diff: string[], other: string[] | undefined): string[] | undefined {
  const key = (h: string[]) => h.slice(1).join("\n");
  const seen = new Set(hunks(other ?? []).map(key));
  return hunks(diff).find((h) => !seen.has(key(h)));
}

/** A hunk's header and its first changed lines. */
function reason(hunk: string[] | undefined): string[] {
  if (!hunk) return ["(no diff in regression.diffs)"];
  const out = [hunk[0]];
  for (const line of hunk.slice(1)) {
    if (out.length > REASON_LINES) break;
    if (line.startsWith("+") || line.startsWith("-")) out.push(line);
  }
  return out.map((l) => (l.length > 120 ? `${l.slice(0, 117)}...` : l));
}

// ---------------------------------------------------------------------------------------------
// The report

function report(
  suite: Suite,
  opts: { dbname: string; poolMode: PoolMode },
  outcomes: RunOutcome[],
  times: { setup: number; total: number },
): void {
  const [direct, gateway] = outcomes;
  const okDirect = new Map(direct.results.map((r) => [r.name, r.ok]));
  const okGateway = new Map(gateway.results.map((r) => [r.name, r.ok]));
  const names = [...new Set([...okDirect.keys(), ...okGateway.keys()])];
  const onlyGateway = names.filter((n) => okDirect.get(n) === true && okGateway.get(n) !== true);
  const onlyDirect = names.filter((n) => okGateway.get(n) === true && okDirect.get(n) !== true);
  const both = names.filter((n) => okDirect.get(n) === false && okGateway.get(n) === false);
  // Failing in both runs but with changes of its own through the gateway.
  const bothWorse = both.filter((n) =>
    firstNewHunk(gateway.diffs.get(n) ?? [], direct.diffs.get(n)) !== undefined
  );
  const count = (o: RunOutcome, ok: boolean) => o.results.filter((r) => r.ok === ok).length;

  const row = (label: string, a: string | number, b: string | number) =>
    `${label.padEnd(24)}${String(a).padStart(12)}${String(b).padStart(12)}`;
  console.log("");
  console.log(
    `PostgreSQL ${suite.version} ${suite.name === "regress" ? "regression" : "isolation"} suite ` +
      `(${basename(suite.schedule)}), database "${opts.dbname}", ${opts.poolMode} pooling`,
  );
  if (suite.name === "isolation") {
    console.log(`PGISOLATIONTIMEOUT=${ISOLATION_STEP_TIMEOUT_S} s in both runs`);
  }
  console.log(row("", "direct", "gateway"));
  console.log(row("port", direct.port, gateway.port));
  console.log(row("tests", direct.results.length, gateway.results.length));
  console.log(row("passed", count(direct, true), count(gateway, true)));
  console.log(row("failed", count(direct, false), count(gateway, false)));
  console.log(row("run time (s)", direct.seconds.toFixed(0), gateway.seconds.toFixed(0)));
  for (const o of outcomes) {
    if (o.dead.length > 0) {
      console.log(`warning: after the ${o.target} run, not running: ${o.dead.join(", ")}`);
    }
  }
  console.log("");
  console.log(`Fail only through the gateway (${onlyGateway.length}):`);
  const byName = new Map(gateway.results.map((r) => [r.name, r]));
  for (const name of onlyGateway) {
    const detail = byName.get(name)?.detail;
    console.log(`  ${name}${detail ? ` ${detail}` : ""}`);
    const hunk = hunks(gateway.diffs.get(name) ?? [])[0];
    for (const line of reason(hunk)) console.log(`      ${line}`);
  }
  console.log("");
  console.log(`Fail in both (${both.length}): ${both.join(", ") || "-"}`);
  if (bothWorse.length > 0) {
    console.log(`  of which with other differences through the gateway (${bothWorse.length}):`);
    for (const name of bothWorse) {
      console.log(`  ${name}`);
      const hunk = firstNewHunk(gateway.diffs.get(name) ?? [], direct.diffs.get(name));
      for (const line of reason(hunk)) console.log(`      ${line}`);
    }
  } else if (both.length > 0) {
    console.log("  (with the same differences in both runs)");
  }
  console.log(`Fail only directly (${onlyDirect.length}): ${onlyDirect.join(", ") || "-"}`);
  console.log("");
  console.log(
    `Time: setup ${times.setup.toFixed(0)} s, total ${times.total.toFixed(0)} s. ` +
      `Outputs: ${resultsDir(suite.name, opts.poolMode)}/{direct,gateway}/`,
  );
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env,
      stdin: "null",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: "", stderr: `${cmd}: command not found` };
    }
    throw e;
  }
}

/** Runs a command that must succeed; returns its stdout or throws with its last error line. */
async function must(
  cmd: string,
  args: string[],
  opts: { what: string; cwd?: string; env?: Record<string, string> },
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new CompatError(`${opts.what} failed: ${lastLine(errorLines(r.stderr) || r.stdout)}`);
  }
  return r.stdout;
}

/** apt's `E:` lines when there are any (its warnings come last otherwise). */
function errorLines(stderr: string): string {
  const errors = stderr.split("\n").filter((l) => /^E: /.test(l));
  return errors.length > 0 ? errors.join("\n") : stderr;
}

async function packageVersion(name: string): Promise<string> {
  const r = await run("dpkg-query", ["-W", "-f=${db:Status-Status} ${Version}", name]);
  const [status, version] = r.stdout.trim().split(" ");
  return r.code === 0 && status === "installed" ? version : "";
}

async function commandExists(name: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${name}`])).code === 0;
}

function requireRoot(what: string): void {
  if (Deno.uid() !== 0) {
    throw new CompatError(`Must run as root to ${what} (or install it by hand first)`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? "(no output)";
}

function step(msg: string): void {
  console.error(`compat: ${msg}`);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
