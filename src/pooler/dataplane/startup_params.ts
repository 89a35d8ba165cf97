/** Startup packet keys that are not settings. */
const NOT_SETTINGS = new Set(["user", "database", "options", "replication"]);

/**
 * The startup parameters a backend is opened with: the client's own, minus what the pooler sets
 * itself. Postgres validates them (with its own FATAL errors), parses `options`, and makes them the
 * connection's defaults, so RESET returns to them as it would on a direct connection.
 */
export function backendStartupParams(startup: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(startup)) {
    if (!NOT_SETTINGS.has(k) || k === "options") out[k] = v;
  }
  return out;
}
