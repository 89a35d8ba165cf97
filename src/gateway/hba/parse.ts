import { cidrMask, parseIp } from "./address.ts";
import { AuthFileError, isKeyword, type ReadFile, type Token, tokenizeFile } from "./_tokenize.ts";
import type { AuthMethod, ConnectionType, HbaAddress, HbaRule } from "./rules.ts";

const CONNECTION_TYPES: readonly ConnectionType[] = [
  "local",
  "host",
  "hostssl",
  "hostnossl",
  "hostgssenc",
  "hostnogssenc",
];
/** Methods the gateway carries out. */
const GATEWAY_METHODS: readonly AuthMethod[] = [
  "trust",
  "reject",
  "scram-sha-256",
  "md5",
  "password",
  "cert",
];
/** Methods Postgres 15 knows (the rest it calls invalid). */
const POSTGRES_METHODS = [
  ...GATEWAY_METHODS,
  "gss",
  "sspi",
  "ident",
  "peer",
  "pam",
  "ldap",
  "radius",
  "bsd",
];

/**
 * Parses pg_hba.conf text as Postgres 15 does (see {@linkcode tokenizeFile} for quoting,
 * comments, continuation and `@file`), into the rules in file order.
 *
 * What Postgres accepts and the gateway cannot carry out is refused with the line's number:
 * host names in the address field (give addresses or CIDR ranges), and methods other than
 * trust, reject, scram-sha-256, md5, password and cert on lines other than `local` (those never
 * match here, so any method Postgres knows is accepted on them).
 *
 * @throws {AuthFileError} for the first line in error, with the file name and line number.
 */
export function parseHba(file: string, text: string, readFile: ReadFile): HbaRule[] {
  return tokenizeFile(file, text, readFile).map((line) =>
    parseLine(file, line.lineNo, line.fields)
  );
}

function parseLine(file: string, lineNo: number, fields: Token[][]): HbaRule {
  const fail = (msg: string): never => {
    throw new AuthFileError(file, lineNo, msg);
  };
  let i = 0;
  const next = (what: string): Token[] => {
    const f = fields[i++];
    if (!f) fail(`end-of-line before ${what}`);
    return f;
  };
  const single = (f: Token[], what: string): Token => {
    if (f.length > 1) fail(`multiple values specified for ${what}`);
    return f[0];
  };

  const typeToken = single(next("connection type"), "connection type");
  const type = typeToken.text as ConnectionType;
  if (!CONNECTION_TYPES.includes(type)) fail(`invalid connection type "${typeToken.text}"`);
  const databases = next("database specification");
  const users = next("role specification");

  let address: HbaAddress = { kind: "none" };
  if (type !== "local") {
    const tok = single(next("IP address specification"), "host address");
    address = parseAddress(tok, () => fields[i++], fail);
  }

  const methodToken = single(next("authentication method"), "authentication type");
  const method = methodToken.text;
  if (!POSTGRES_METHODS.includes(method)) fail(`invalid authentication method "${method}"`);
  if (type !== "local" && !GATEWAY_METHODS.includes(method as AuthMethod)) {
    fail(`authentication method "${method}" is not supported by the gateway`);
  }
  if (method === "cert" && type !== "hostssl") {
    fail("cert authentication is only supported on hostssl connections");
  }

  const rule: HbaRule = { file, lineNo, type, databases, users, address, method };
  if (method === "cert") rule.clientCert = "verify-full";
  for (; i < fields.length; i++) {
    for (const opt of fields[i]) parseOption(rule, opt.text, fail);
  }
  return rule;
}

function parseAddress(
  tok: Token,
  nextField: () => Token[] | undefined,
  fail: (msg: string) => never,
): HbaAddress {
  if (isKeyword(tok, "all")) return { kind: "all" };
  if (isKeyword(tok, "samehost")) return { kind: "samehost" };
  if (isKeyword(tok, "samenet")) return { kind: "samenet" };
  const slash = tok.text.indexOf("/");
  const host = slash >= 0 ? tok.text.slice(0, slash) : tok.text;
  const net = parseIp(host);
  if (!net) {
    if (slash >= 0 && !/^[0-9a-fA-F:.]+$/.test(host)) {
      fail(`specifying both host name and CIDR mask is invalid: "${tok.text}"`);
    }
    if (/^[0-9.]+$/.test(host) || host.includes(":")) fail(`invalid IP address "${host}"`);
    fail(
      `host names are not supported by the gateway: "${tok.text}" (give an IP address or a CIDR range)`,
    );
  }
  if (slash >= 0) {
    const mask = cidrMask(tok.text.slice(slash + 1), net!.length);
    if (!mask) fail(`invalid CIDR mask in address "${tok.text}"`);
    return { kind: "ip", net: net!, mask: mask! };
  }
  const maskField = nextField();
  if (!maskField) {
    fail(
      "end-of-line before netmask specification (specify an address range in CIDR notation, or provide a separate netmask)",
    );
  }
  if (maskField!.length > 1) fail("multiple values specified for netmask");
  const mask = parseIp(maskField![0].text);
  if (!mask) fail(`invalid IP mask "${maskField![0].text}"`);
  if (mask!.length !== net!.length) fail("IP address and mask do not match");
  return { kind: "ip", net: net!, mask: mask! };
}

function parseOption(rule: HbaRule, text: string, fail: (msg: string) => never): void {
  const eq = text.indexOf("=");
  if (eq < 0) fail(`authentication option not in name=value format: ${text}`);
  const name = text.slice(0, eq);
  const value = text.slice(eq + 1);
  if (rule.type === "local") return; // never matches: its options are not the gateway's concern
  switch (name) {
    case "clientcert":
      if (rule.type !== "hostssl") fail('clientcert can only be configured for "hostssl" rows');
      if (value === "verify-full") rule.clientCert = "verify-full";
      else if (value === "verify-ca") {
        if (rule.method === "cert") {
          fail('clientcert only accepts "verify-full" when using "cert" authentication');
        }
        rule.clientCert = "verify-ca";
      } else fail(`invalid value for clientcert: "${value}"`);
      return;
    case "clientname":
      if (value !== "CN" && value !== "DN") fail(`invalid value for clientname: "${value}"`);
      rule.clientName = value as "CN" | "DN";
      return;
    case "map":
      if (rule.method !== "cert") {
        fail(
          'authentication option "map" is only valid for authentication methods ident, peer, gssapi, sspi, and cert',
        );
      }
      rule.map = value;
      return;
    default:
      fail(`unrecognized authentication option name: "${name}"`);
  }
}
