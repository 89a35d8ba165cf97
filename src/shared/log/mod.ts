/**
 * JSON-lines logging on stderr. One line per event, fixed keys per child logger
 * (`component`, `session`, `shard`…). Never log credentials or query text by default.
 *
 * @module
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const encoder = new TextEncoder();

/** A structured logger; `child()` adds fixed fields to every line. */
export class Logger {
  readonly #fields: Record<string, unknown>;
  readonly #minRank: number;
  readonly #level: LogLevel;
  readonly #sink: (line: string) => void;

  constructor(
    opts: {
      level?: LogLevel;
      fields?: Record<string, unknown>;
      sink?: (line: string) => void;
    } = {},
  ) {
    this.#level = opts.level ?? "info";
    this.#minRank = LEVEL_RANK[this.#level];
    this.#fields = opts.fields ?? {};
    this.#sink = opts.sink ?? writeStderr;
  }

  child(fields: Record<string, unknown>): Logger {
    return new Logger({
      level: this.#level,
      fields: { ...this.#fields, ...fields },
      sink: this.#sink,
    });
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= this.#minRank;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#log("error", msg, fields);
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (LEVEL_RANK[level] < this.#minRank) return;
    const line: Record<string, unknown> = {
      ts: new Date().toISOString(),
      level,
      msg,
      ...this.#fields,
    };
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        line[k] = v instanceof Error ? v.message : v;
      }
    }
    this.#sink(JSON.stringify(line));
  }
}

function writeStderr(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do with a log line.
  }
}

/** Parses a `--log-level` value. */
export function parseLogLevel(value: string): LogLevel {
  if (value in LEVEL_RANK) return value as LogLevel;
  throw new Error(`Invalid log level: ${value} (want debug, info, warn or error)`);
}
