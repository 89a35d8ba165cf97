import { PgError, SqlState } from "../../shared/errors/mod.ts";
import { literal } from "../metadata/schema.ts";

/** Startup packet keys that are not settings. */
const NOT_SETTINGS = new Set(["user", "database", "options", "replication"]);

/**
 * The settings a client asked for in its startup packet: every key but user/database/replication,
 * plus the `-c name=value` / `--name=value` pairs inside `options` (spaces escaped with `\`).
 */
export function startupSettings(startup: Record<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(startup)) {
    if (!NOT_SETTINGS.has(k)) out.push([k, v]);
  }
  if (startup.options) out.push(...parseOptions(startup.options));
  return out;
}

/** Parses the `options` startup parameter the way Postgres does (`-c a=b --c=d`). */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i];
    if (ch === "\\") {
      // Postgres drops a trailing backslash and keeps the character after any other one.
      if (i + 1 < options.length) cur += options[++i];
      inWord = true;
    } else if (
      ch === " " || ch === "\t" || ch === "\n" || ch === "\r" || ch === "\f" || ch === "\v"
    ) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i];
    let shown: string;
    if (w === "-c") {
      w = words[++i] ?? "";
      shown = `-c ${w}`;
    } else if (w.startsWith("-c")) {
      w = w.slice(2);
      shown = `-c ${w}`;
    } else if (w.startsWith("--")) {
      shown = w;
      w = w.slice(2);
    } else {
      throw new PgError(
        SqlState.PROTOCOL_VIOLATION,
        `invalid command-line argument for server process: ${w}`,
        { severity: "FATAL", hint: 'Try "postgres --help" for more information.' },
      );
    }
    const eq = w.indexOf("=");
    if (eq <= 0) {
      throw new PgError(
        SqlState.SYNTAX_ERROR,
        `${shown.trimEnd()} requires a value`,
        { severity: "FATAL" },
      );
    }
    out.push([w.slice(0, eq).replaceAll("-", "_"), w.slice(eq + 1)]);
  }
  return out;
}

/** One statement that applies the settings (set_config keeps quoting simple and exact). */
export function settingsSql(settings: [string, string][]): string {
  return settings
    .map(([k, v]) => `SELECT pg_catalog.set_config(${literal(k)}, ${literal(v)}, false);`)
    .join("\n");
}

/**
 * The startup parameters a backend is opened with: the client's own, minus what the pooler sets
 * itself. Postgres validates them (with its own FATAL errors) and makes them the connection's
 * defaults, so RESET returns to them as it would on a direct connection.
 */
export function backendStartupParams(startup: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(startup)) {
    if (!NOT_SETTINGS.has(k) || k === "options") out[k] = v;
  }
  return out;
}
