import type { IpBytes } from "./address.ts";
import type { Token } from "./_tokenize.ts";

/** The first field of a pg_hba.conf line. */
export type ConnectionType =
  | "local"
  | "host"
  | "hostssl"
  | "hostnossl"
  | "hostgssenc"
  | "hostnogssenc";

/** The methods the gateway carries out on TCP connections. */
export type AuthMethod = "trust" | "reject" | "scram-sha-256" | "md5" | "password" | "cert";

/** Which client addresses a rule covers. */
export type HbaAddress =
  | { kind: "all" }
  | { kind: "samehost" }
  | { kind: "samenet" }
  | { kind: "ip"; net: IpBytes; mask: IpBytes }
  /** `local` lines have no address. */
  | { kind: "none" };

/** One line of pg_hba.conf, parsed. */
export interface HbaRule {
  /** The file the line came from, and where it starts there. */
  file: string;
  lineNo: number;
  type: ConnectionType;
  /** The database list: names and the keywords all, sameuser, samerole, replication. */
  databases: Token[];
  /** The role list: names, `+group`, and the keyword all. */
  users: Token[];
  address: HbaAddress;
  /**
   * The method. A `local` line may name any method Postgres knows (it never matches here);
   * every other line one of {@linkcode AuthMethod}.
   */
  method: AuthMethod | string;
  /** `clientcert=` (hostssl only; `cert` implies verify-full). */
  clientCert?: "verify-ca" | "verify-full";
  /** `clientname=` for certificate checks: match the user name against CN (default) or DN. */
  clientName?: "CN" | "DN";
  /** `map=`: the pg_ident.conf map for `cert`. */
  map?: string;
}
