import { AuthFileError, type ReadFile, tokenizeFile } from "./_tokenize.ts";

/** One line of pg_ident.conf: map name, system user (a name or a `/regex`), database role. */
export interface IdentEntry {
  file: string;
  lineNo: number;
  map: string;
  systemUser: string | RegExp;
  role: string;
}

/**
 * Parses pg_ident.conf text as Postgres 15 does: three fields per line (map name, system user
 * name, database role name); a system user starting with `/` is a regular expression, and `\1`
 * in the role stands for its first parenthesised group.
 *
 * @throws {AuthFileError} for a line without three single fields or with a bad expression.
 */
export function parseIdent(file: string, text: string, readFile: ReadFile): IdentEntry[] {
  return tokenizeFile(file, text, readFile).map(({ lineNo, fields }) => {
    const fail = (msg: string): never => {
      throw new AuthFileError(file, lineNo, msg);
    };
    if (fields.length < 3) fail("missing entry at end of line");
    if (fields.length > 3) fail("extra fields at end of line");
    if (fields.some((f) => f.length !== 1)) fail("multiple values in ident field");
    const [map, sys, role] = fields.map((f) => f[0].text);
    let systemUser: string | RegExp = sys;
    if (sys.startsWith("/")) {
      try {
        systemUser = new RegExp(sys.slice(1));
      } catch (e) {
        fail(`invalid regular expression "${sys.slice(1)}": ${(e as Error).message}`);
      }
    }
    return { file, lineNo, map, systemUser, role };
  });
}

/**
 * True when map `map` lets system user `systemUser` (for `cert`: the certificate's CN or DN)
 * log in as `role`.
 */
export function identAllows(
  entries: readonly IdentEntry[],
  map: string,
  systemUser: string,
  role: string,
): boolean {
  for (const e of entries) {
    if (e.map !== map) continue;
    if (typeof e.systemUser === "string") {
      if (e.systemUser === systemUser && e.role === role) return true;
      continue;
    }
    const m = e.systemUser.exec(systemUser);
    if (!m) continue;
    const want = e.role.includes("\\1") ? e.role.replace("\\1", m[1] ?? "") : e.role;
    if (want === role) return true;
  }
  return false;
}
