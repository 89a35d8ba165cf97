import { dirname, join } from "node:path";
import type { Logger } from "../../shared/log/mod.ts";
import { type IdentEntry, parseIdent } from "./ident.ts";
import { parseHba } from "./parse.ts";
import type { HbaRule } from "./rules.ts";
import type { ReadFile } from "./_tokenize.ts";

/** The file the rules are given as when no `--hba-file` is: see {@linkcode DEFAULT_HBA}. */
export const DEFAULT_HBA_NAME = "(default pg_hba rules)";

/**
 * The rules without `--hba-file`: every TCP connection, from anywhere, to any database, as any
 * role, must prove its password with SCRAM-SHA-256 (Postgres 15's initdb default for host
 * connections).
 */
export const DEFAULT_HBA = `# TYPE  DATABASE  USER  ADDRESS  METHOD
host      all       all   all      scram-sha-256
`;

/** Options of {@linkcode HbaConfig}. */
export interface HbaConfigOptions {
  /** pg_hba.conf; empty or absent: {@linkcode DEFAULT_HBA}. */
  hbaFile?: string;
  /** pg_ident.conf for `map=`; default: `pg_ident.conf` beside the hba file, if it exists. */
  identFile?: string;
  logger?: Logger;
  /** For tests. */
  readFile?: ReadFile;
}

/**
 * The pg_hba rules (and pg_ident maps) in force, read from their files at start and again on
 * {@linkcode HbaConfig.reload} (SIGHUP). A reload that finds an error keeps the rules it had
 * and logs the error with the file name and line number, as Postgres does.
 */
export class HbaConfig {
  readonly #hbaFile: string;
  readonly #identFile: string;
  readonly #identOptional: boolean;
  #logger?: Logger;
  readonly #readFile: ReadFile;
  #rules: readonly HbaRule[] = [];
  #ident: readonly IdentEntry[] = [];

  /** @throws {Error} when the files cannot be read or hold an error (operator-facing). */
  constructor(opts: HbaConfigOptions = {}) {
    this.#hbaFile = opts.hbaFile ?? "";
    this.#identOptional = !opts.identFile;
    this.#identFile = opts.identFile ||
      (this.#hbaFile ? join(dirname(this.#hbaFile), "pg_ident.conf") : "");
    this.#logger = opts.logger;
    this.#readFile = opts.readFile ?? ((p) => Deno.readTextFileSync(p));
    const loaded = this.#load();
    this.#rules = loaded.rules;
    this.#ident = loaded.ident;
    this.#warn();
  }

  /**
   * Logs reloads and rules that cannot match through `logger` from now on (for a config made
   * before the logger, so that its errors stop a process before anything starts).
   */
  useLogger(logger: Logger): void {
    this.#logger = logger;
    this.#warn();
  }

  /** The rules in file order. */
  get rules(): readonly HbaRule[] {
    return this.#rules;
  }

  /** The pg_ident.conf entries. */
  get ident(): readonly IdentEntry[] {
    return this.#ident;
  }

  /** Where the rules come from (for logs and status). */
  get source(): string {
    return this.#hbaFile || DEFAULT_HBA_NAME;
  }

  /**
   * Reads the files again. On success the new rules apply to the next connection; on an error
   * the old ones stay and the error is logged (and returned).
   */
  reload(): Error | null {
    try {
      const loaded = this.#load();
      this.#rules = loaded.rules;
      this.#ident = loaded.ident;
      this.#logger?.info("pg_hba rules reloaded", {
        file: this.source,
        rules: this.#rules.length,
      });
      this.#warn();
      return null;
    } catch (e) {
      this.#logger?.error("pg_hba rules not reloaded, the previous ones stay in force", {
        error: (e as Error).message,
      });
      return e as Error;
    }
  }

  #load(): { rules: HbaRule[]; ident: IdentEntry[] } {
    const rules = this.#hbaFile
      ? parseHba(this.#hbaFile, this.#read(this.#hbaFile, "--hba-file"), this.#readFile)
      : parseHba(DEFAULT_HBA_NAME, DEFAULT_HBA, this.#readFile);
    let ident: IdentEntry[] = [];
    if (this.#identFile) {
      let text: string | null = null;
      try {
        text = this.#readFile(this.#identFile);
      } catch (e) {
        if (!this.#identOptional) {
          throw new Error(`Cannot read --ident-file ${this.#identFile}: ${(e as Error).message}`);
        }
      }
      if (text !== null) ident = parseIdent(this.#identFile, text, this.#readFile);
    }
    return { rules, ident };
  }

  #read(path: string, flag: string): string {
    try {
      return this.#readFile(path);
    } catch (e) {
      throw new Error(`Cannot read ${flag} ${path}: ${(e as Error).message}`);
    }
  }

  #warn(): void {
    for (const r of this.#rules) {
      if (r.clientCert) {
        this.#logger?.warn(
          "this rule needs a client certificate, which the gateway cannot verify: it refuses the connections it matches",
          { file: r.file, line: r.lineNo },
        );
      }
    }
  }
}
