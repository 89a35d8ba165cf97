/**
 * Test helper: certificates made with openssl in a temp folder — a CA and a certificate it
 * issued, a rogue CA and its own client certificate, an X.509 v1 CA, and a key that matches no
 * certificate. Tests only.
 */

/** PEM texts and file paths of a test PKI (see makeTestPki). */
export interface TestPki {
  dir: string;
  /** The trusted CA (v3) and a leaf it issued (serverAuth + clientAuth, localhost/127.0.0.1). */
  ca: string;
  cert: string;
  key: string;
  /** Another CA (v3) and a leaf it issued. */
  rogueCa: string;
  rogueCert: string;
  rogueKey: string;
  /** An X.509 v1 CA certificate, and a leaf it issued. */
  v1Ca: string;
  v1Cert: string;
  v1Key: string;
  /** A leaf of the trusted CA naming only `elsewhere.invalid` (not localhost or 127.0.0.1). */
  otherNameCert: string;
  otherNameKey: string;
  /** A private key that belongs to no certificate here. */
  strayKey: string;
  /** The file of each PEM above: `${dir}/<name>.pem`. */
  file(name: PkiName): string;
}

export type PkiName = Exclude<keyof TestPki, "dir" | "file">;

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const LEAF_EXT = [
  "-addext",
  "basicConstraints=critical,CA:FALSE",
  "-addext",
  "keyUsage=critical,digitalSignature",
  "-addext",
  "extendedKeyUsage=serverAuth,clientAuth",
  "-addext",
  "subjectAltName=DNS:localhost,IP:127.0.0.1",
];
const CA_EXT = [
  "-addext",
  "basicConstraints=critical,CA:TRUE",
  "-addext",
  "keyUsage=critical,keyCertSign,cRLSign",
];

/** Makes a test PKI in a new temp folder (remove `dir` when done). */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "multigres_pki_" });
  const f = (name: string) => `${dir}/${name}.pem`;
  const req = (key: string, cert: string, args: string[]) =>
    openssl([
      "req",
      "-x509",
      "-new",
      ...EC,
      "-days",
      "30",
      "-keyout",
      f(key),
      "-out",
      f(cert),
      ...args,
    ]);
  await req("caKey", "ca", ["-subj", "/CN=test CA", ...CA_EXT]);
  await req("rogueCaKey", "rogueCa", ["-subj", "/CN=rogue CA", ...CA_EXT]);
  await req("key", "cert", [
    "-subj",
    "/CN=test leaf",
    "-CA",
    f("ca"),
    "-CAkey",
    f("caKey"),
    ...LEAF_EXT,
  ]);
  await req("rogueKey", "rogueCert", [
    "-subj",
    "/CN=rogue leaf",
    "-CA",
    f("rogueCa"),
    "-CAkey",
    f("rogueCaKey"),
    ...LEAF_EXT,
  ]);
  await req("otherNameKey", "otherNameCert", [
    "-subj",
    "/CN=elsewhere",
    "-CA",
    f("ca"),
    "-CAkey",
    f("caKey"),
    ...LEAF_EXT.slice(0, -1),
    "subjectAltName=DNS:elsewhere.invalid",
  ]);
  // v1: a certificate signed from a request with no extensions at all.
  await openssl([
    "req",
    "-new",
    ...EC,
    "-keyout",
    f("v1CaKey"),
    "-subj",
    "/CN=v1 CA",
    "-out",
    f("v1Csr"),
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    f("v1Csr"),
    "-key",
    f("v1CaKey"),
    "-days",
    "30",
    "-out",
    f("v1Ca"),
  ]);
  await openssl([
    "req",
    "-new",
    ...EC,
    "-keyout",
    f("v1Key"),
    "-subj",
    "/CN=v1 leaf",
    "-out",
    f("v1LeafCsr"),
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    f("v1LeafCsr"),
    "-CA",
    f("v1Ca"),
    "-CAkey",
    f("v1CaKey"),
    "-set_serial",
    "2",
    "-days",
    "30",
    "-out",
    f("v1Cert"),
  ]);
  await openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-out",
    f("strayKey"),
  ]);
  const read = (name: string) => Deno.readTextFileSync(f(name));
  return {
    dir,
    ca: read("ca"),
    cert: read("cert"),
    key: read("key"),
    rogueCa: read("rogueCa"),
    rogueCert: read("rogueCert"),
    rogueKey: read("rogueKey"),
    v1Ca: read("v1Ca"),
    v1Cert: read("v1Cert"),
    v1Key: read("v1Key"),
    otherNameCert: read("otherNameCert"),
    otherNameKey: read("otherNameKey"),
    strayKey: read("strayKey"),
    file: f,
  };
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}
