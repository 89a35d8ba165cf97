import { parseArgs } from "node:util";

/** One flag: its type, default and help line. */
export interface FlagSpec {
  type: "string" | "number" | "boolean";
  default: string | number | boolean;
  help: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

/** The typed values a set of specs parses into. */
export type FlagValues<S extends FlagSpecs> = {
  readonly [K in keyof S]: S[K]["type"] extends "number" ? number
    : S[K]["type"] extends "boolean" ? boolean
    : string;
};

/** Flags every server component takes. */
export const COMMON_FLAGS = {
  "cluster": { type: "string", default: "local", help: "Name of the Multigres cluster" },
  "cell": { type: "string", default: "zone1", help: "Cell this component runs in" },
  "topo-global-address": {
    type: "string",
    default: "127.0.0.1:2379",
    help: "Address of the global toposerver (etcd), host:port[,host:port]",
  },
  "bind-address": {
    type: "string",
    default: "127.0.0.1",
    help: "Address the component's servers listen on",
  },
  "log-level": { type: "string", default: "info", help: "debug, info, warn or error" },
  "grpc-ca-file": {
    type: "string",
    default: "",
    help: "PEM CA certificate(s) of the cluster: gRPC peers must show a certificate it issued",
  },
  "grpc-cert-file": {
    type: "string",
    default: "",
    help: "PEM certificate this component shows to gRPC peers (as server and as client)",
  },
  "grpc-key-file": { type: "string", default: "", help: "PEM private key of --grpc-cert-file" },
  "grpc-insecure": {
    type: "boolean",
    default: false,
    help: "Plaintext, unauthenticated gRPC instead of mutual TLS (one of the two is required)",
  },
  "config": {
    type: "string",
    default: "",
    help: "JSON file of flag values (flag name → value); flags and env win over it",
  },
} as const satisfies FlagSpecs;

/** The env variable that can set a flag: `--grpc-port` → `MULTIGRES_GRPC_PORT`. */
export function envName(flag: string): string {
  return "MULTIGRES_" + flag.toUpperCase().replaceAll("-", "_");
}

/**
 * Parses flags once, into a frozen typed config. Precedence: command line, then the env variable
 * `MULTIGRES_<FLAG>`, then the `--config` JSON file, then the default.
 * Throws an Error with one clear line on an unknown flag or a bad value.
 */
export function parseFlags<S extends FlagSpecs>(
  specs: S,
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): FlagValues<S> {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type === "boolean" ? "boolean" : "string" };
  }
  // parseArgs takes no value for a boolean: pull `--flag=value` and `--no-flag` out first, so the
  // command line can also turn off what the env or the config file turned on.
  const explicit: Record<string, string> = {};
  const rest: string[] = [];
  for (const arg of args) {
    const m = /^--(no-)?([^=]+)(?:=(.*))?$/.exec(arg);
    const spec = m ? specs[m[2]] : undefined;
    if (m && spec?.type === "boolean" && (m[1] || m[3] !== undefined)) {
      explicit[m[2]] = m[1] ? "false" : m[3]!;
    } else {
      rest.push(arg);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new Error(`Invalid arguments: ${(e as Error).message.split("\n")[0]}`);
  }
  const cli = { ...parsed.values, ...explicit } as Record<string, string | boolean | undefined>;
  const configPath = (cli["config"] as string | undefined) ?? env[envName("config")] ?? "";
  const file = configPath ? readConfigFile(configPath) : {};
  const out: Record<string, string | number | boolean> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = cli[name] ?? env[envName(name)] ?? file[name];
    out[name] = raw === undefined ? spec.default : coerce(name, spec, raw);
  }
  return Object.freeze(out) as FlagValues<S>;
}

function coerce(name: string, spec: FlagSpec, raw: unknown): string | number | boolean {
  switch (spec.type) {
    case "number": {
      const n = typeof raw === "number" ? raw : Number(String(raw).trim());
      if (!Number.isFinite(n) || String(raw).trim() === "") {
        throw new Error(`Invalid value for --${name}: ${JSON.stringify(raw)} is not a number`);
      }
      return n;
    }
    case "boolean": {
      if (typeof raw === "boolean") return raw;
      const s = String(raw).toLowerCase();
      if (["1", "true", "yes", "on"].includes(s)) return true;
      if (["0", "false", "no", "off", ""].includes(s)) return false;
      throw new Error(`Invalid value for --${name}: ${JSON.stringify(raw)} is not a boolean`);
    }
    default:
      return String(raw);
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`Cannot read config file ${path}: ${(e as Error).message}`);
  }
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error("not a JSON object");
    }
    return value as Record<string, unknown>;
  } catch (e) {
    throw new Error(`Invalid config file ${path}: ${(e as Error).message}`);
  }
}

/** The help text for a set of flags, one line each. */
export function flagHelp(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) =>
      `  --${name.padEnd(24)} ${s.help} (default ${JSON.stringify(s.default)}; env ${
        envName(name)
      })`
    )
    .join("\n");
}

/**
 * `parseFlags` for a component's `main`: `--help` prints the flags and exits 0.
 */
export function parseComponentFlags<S extends FlagSpecs>(
  component: string,
  specs: S,
  args: string[] = Deno.args,
): FlagValues<S> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(`Usage: ${component} [flags]\n\nFlags:\n${flagHelp(specs)}`);
    Deno.exit(0);
  }
  return parseFlags(specs, args);
}
