/**
 * `deno task compile`: builds one standalone executable per component into `bin/`
 * (multigateway, multipooler, pgctld, multiorch, multigres) with `deno compile`.
 *
 * ```sh
 * deno task compile                      # all five into bin/
 * deno task compile multigres pgctld     # only these
 * deno task compile --out-dir /opt/bin   # elsewhere
 * ```
 *
 * The .proto files are read at run time from `proto/` next to `src/` (see
 * `src/shared/grpc/_load.ts`), so every executable embeds that folder with `--include proto`;
 * inside the executable it sits at the same place relative to the code.
 *
 * `deno compile` needs Deno's `denort` runtime. It downloads it on first use; where the network
 * is closed, set `DENORT_BIN` to a denort binary of the same Deno version: `deno compile` reads
 * that variable itself, and this script passes its environment through unchanged.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

/** Executable name → entry point, relative to the repository root. */
const COMPONENTS: Record<string, string> = {
  multigateway: "src/gateway/main.ts",
  multipooler: "src/pooler/main.ts",
  pgctld: "src/pgctld/main.ts",
  multiorch: "src/orch/main.ts",
  multigres: "src/cli/main.ts",
};

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));

const USAGE = `Usage: deno task compile [--out-dir DIR] [NAME...]

Builds standalone executables of ${Object.keys(COMPONENTS).join(", ")} (default: all)
into DIR (default bin/ in the repository). Set DENORT_BIN to a denort ${Deno.version.deno} binary
where deno compile cannot download it.`;

/** Thrown with the one line to print. */
class CompileError extends Error {}

async function main(args: string[]): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        "out-dir": { type: "string", default: "bin" },
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
  const unknown = positionals.filter((n) => !(n in COMPONENTS));
  if (unknown.length > 0) {
    console.error(`error: unknown component: ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const names = positionals.length > 0 ? positionals : Object.keys(COMPONENTS);
  const outDir = resolve(REPO_ROOT, values["out-dir"]!);
  await Deno.mkdir(outDir, { recursive: true });

  try {
    for (const name of names) {
      const output = `${outDir}/${name}`;
      await compileOne(COMPONENTS[name], output);
      console.log(`Compiled ${COMPONENTS[name]} to ${output}`);
    }
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    console.error(`error: ${e.message}`);
    return 1;
  }
  return 0;
}

/** Runs `deno compile` for one entry point; throws a CompileError with one line on failure. */
async function compileOne(entry: string, output: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "-A", "--include", "proto", "--output", output, entry],
    cwd: REPO_ROOT,
    // Added to the inherited environment (DENORT_BIN included): plain text we can read.
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.success) return;

  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  const denortBin = Deno.env.get("DENORT_BIN");
  if (/denort/i.test(text)) {
    if (denortBin) {
      const cause = text.match(/Could not find denort[^\n]*/)?.[0] ?? lastCause(text);
      throw new CompileError(
        `deno compile could not use DENORT_BIN=${denortBin}: ${cause}` +
          `: set it to a denort ${Deno.version.deno} binary`,
      );
    }
    throw new CompileError(
      `deno compile needs Deno's denort runtime, which could not be downloaded: ` +
        `set DENORT_BIN to a denort ${Deno.version.deno} binary`,
    );
  }
  // Anything else (a type error, a missing file) is deno's own report: show it whole.
  console.error(text.trimEnd());
  throw new CompileError(`deno compile failed for ${entry} (exit code ${out.code})`);
}

/** The innermost "Caused by" line of a deno error report, or its first error line. */
function lastCause(text: string): string {
  const causes = [...text.matchAll(/^\s+\d+: (.+)$/gm)].map((m) => m[1]);
  if (causes.length > 0) return causes[causes.length - 1];
  return text.match(/^error: (.+)$/m)?.[1] ?? "unknown error";
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
