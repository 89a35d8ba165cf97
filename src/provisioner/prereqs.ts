/** What a local cluster needs on the machine, found or installed. */

export interface Prereqs {
  pgBinDir: string;
  etcd: string;
  etcdctl: string;
}

const APT_PACKAGES = "postgresql-15 etcd-server etcd-client pgbackrest";

function findPgBinDir(): string | null {
  const env = Deno.env.get("PG_BIN_DIR");
  if (env && exists(`${env}/postgres`)) return env;
  let best: { v: number; dir: string } | null = null;
  try {
    for (const e of Deno.readDirSync("/usr/lib/postgresql")) {
      const v = Number(e.name);
      const dir = `/usr/lib/postgresql/${e.name}/bin`;
      if (v >= 15 && exists(`${dir}/postgres`) && (!best || v > best.v)) best = { v, dir };
    }
  } catch {
    // no Debian Postgres
  }
  return best?.dir ?? null;
}

function which(cmd: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (exists(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

/** Whether `path` exists (any kind of file). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function find(): Prereqs | null {
  const pgBinDir = findPgBinDir();
  const etcd = which("etcd");
  const etcdctl = which("etcdctl");
  const psql = pgBinDir ? `${pgBinDir}/psql` : null;
  if (!pgBinDir || !etcd || !etcdctl || !psql || !exists(psql)) return null;
  return { pgBinDir, etcd, etcdctl };
}

/**
 * Finds PostgreSQL 15+, etcd and etcdctl. When something is missing and we are root on a Debian
 * machine, installs it with apt-get; otherwise throws one line saying exactly what to run.
 */
export async function ensurePrereqs(log: (msg: string) => void = console.error): Promise<Prereqs> {
  const found = find();
  if (found) return found;
  const isRoot = Deno.uid() === 0;
  if (!isRoot || !which("apt-get")) {
    throw new Error(
      `PostgreSQL 15+ or etcd is missing: run sudo apt-get install -y ${APT_PACKAGES}`,
    );
  }
  log(`Installing ${APT_PACKAGES} with apt-get (once)...`);
  for (
    const args of [["update", "-qq"], ["install", "-y", "-qq", ...APT_PACKAGES.split(" ")]]
  ) {
    const out = await new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const tail = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
      throw new Error(`apt-get ${args[0]} failed: ${tail}`);
    }
  }
  const after = find();
  if (!after) throw new Error(`Still missing after apt-get: install ${APT_PACKAGES} by hand`);
  return after;
}
