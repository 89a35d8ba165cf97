import { inRange, type IpBytes, type LocalAddress } from "./address.ts";
import { isKeyword, type Token } from "./_tokenize.ts";
import type { HbaAddress, HbaRule } from "./rules.ts";

/** What pg_hba rules look at in a connection attempt. */
export interface ConnectionFacts {
  /** The client's address (null: unknown, which only `all` covers). */
  address: IpBytes | null;
  /** The connection was upgraded to TLS. */
  tls: boolean;
  user: string;
  database: string;
  /**
   * The roles `user` is a member of, directly or through others, and itself; superuser status
   * does not count (as Postgres's `+group`). Empty for a role that does not exist.
   */
  memberOf: ReadonlySet<string>;
  /** This machine's addresses, for `samehost` and `samenet`. */
  localAddresses: readonly LocalAddress[];
}

/**
 * The first rule that applies to the connection, as Postgres picks it (null: none does, and
 * the connection is refused). `local` and `hostgssenc` lines never apply (no Unix socket and
 * no GSSAPI encryption here); `hostnogssenc` applies to every TCP connection, as in Postgres.
 */
export function findRule(rules: readonly HbaRule[], c: ConnectionFacts): HbaRule | null {
  for (const r of rules) {
    if (!typeMatches(r, c)) continue;
    if (!addressMatches(r.address, c)) continue;
    if (!databaseMatches(r.databases, c)) continue;
    if (!userMatches(r.users, c)) continue;
    return r;
  }
  return null;
}

function typeMatches(r: HbaRule, c: ConnectionFacts): boolean {
  switch (r.type) {
    case "host":
    case "hostnogssenc":
      return true;
    case "hostssl":
      return c.tls;
    case "hostnossl":
      return !c.tls;
    default:
      return false;
  }
}

function addressMatches(a: HbaAddress, c: ConnectionFacts): boolean {
  switch (a.kind) {
    case "all":
      return true;
    case "ip":
      return c.address !== null && inRange(c.address, a.net, a.mask);
    case "samehost":
      return c.address !== null &&
        c.localAddresses.some((l) => inRange(c.address!, l.addr, full(l.addr.length)));
    case "samenet":
      return c.address !== null &&
        c.localAddresses.some((l) => inRange(c.address!, l.addr, l.mask));
    default:
      return false;
  }
}

function full(bytes: number): IpBytes {
  return new Uint8Array(bytes).fill(0xff);
}

function databaseMatches(list: readonly Token[], c: ConnectionFacts): boolean {
  for (const t of list) {
    if (isKeyword(t, "all")) return true;
    if (isKeyword(t, "sameuser")) {
      if (c.database === c.user) return true;
    } else if (isKeyword(t, "samerole") || isKeyword(t, "samegroup")) {
      if (c.memberOf.has(c.database)) return true;
    } else if (isKeyword(t, "replication")) {
      // Only replication connections, which the gateway does not take.
    } else if (t.text === c.database) return true;
  }
  return false;
}

function userMatches(list: readonly Token[], c: ConnectionFacts): boolean {
  for (const t of list) {
    if (!t.quoted && t.text.startsWith("+")) {
      if (c.memberOf.has(t.text.slice(1))) return true;
    } else if (isKeyword(t, "all") || t.text === c.user) return true;
  }
  return false;
}
