/**
 * The local cluster's certificates for mutual TLS between components: one CA, and a certificate
 * and key per component, made with openssl on first start and kept.
 */

/** Who gets a certificate: each component, and `multigres` (the CLI and shard provisioner). */
import { exists } from "./prereqs.ts";
export const GRPC_IDENTITIES = [
  "multigateway",
  "multipooler",
  "pgctld",
  "multiorch",
  "multigres",
] as const;
export type GrpcIdentity = typeof GRPC_IDENTITIES[number];

/** The files of one identity under `dir`, as the `--grpc-*-file` flags name them. */
export function grpcCertFiles(
  dir: string,
  who: GrpcIdentity,
): { caFile: string; certFile: string; keyFile: string } {
  return { caFile: `${dir}/ca.crt`, certFile: `${dir}/${who}.crt`, keyFile: `${dir}/${who}.key` };
}

/** Ten years: a dev cluster's certificates should not expire under it. */
const DAYS = "3650";
const NEW_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Makes what is missing under `dir`: the CA (`ca.crt`, `ca.key`; X.509 v3) and, for every
 * identity, `<who>.crt` and `<who>.key`, issued by the CA for both TLS server and client use,
 * naming `localhost`, `127.0.0.1` and `opts.ips`. Existing files are kept. Keys are 0600.
 * Throws an Error with one clear line when openssl is missing or fails.
 */
export function ensureClusterCerts(dir: string, opts: { cluster: string; ips?: string[] }): void {
  const ca = grpcCertFiles(dir, "multigres");
  const caKey = `${dir}/ca.key`;
  if (!exists(ca.caFile) || !exists(caKey)) {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A certificate without its CA's key, or the reverse, is of no use: make both afresh.
    openssl(caKey, ca.caFile, [
      "-subj",
      `/CN=Multigres cluster CA (${opts.cluster})`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    // Certificates of an earlier CA would no longer be trusted.
    for (const who of GRPC_IDENTITIES) {
      const f = grpcCertFiles(dir, who);
      for (const p of [f.certFile, f.keyFile]) removeIfExists(p);
    }
  }
  const ips = ["127.0.0.1", ...(opts.ips ?? []).filter((ip) => ip !== "127.0.0.1")];
  const san = ["DNS:localhost", ...ips.map((ip) => `IP:${ip}`)].join(",");
  for (const who of GRPC_IDENTITIES) {
    const f = grpcCertFiles(dir, who);
    if (exists(f.certFile) && exists(f.keyFile)) continue;
    openssl(f.keyFile, f.certFile, [
      "-CA",
      ca.caFile,
      "-CAkey",
      caKey,
      "-subj",
      `/CN=${who}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature",
      "-addext",
      "extendedKeyUsage=serverAuth,clientAuth",
      "-addext",
      `subjectAltName=${san}`,
    ]);
  }
}

/** `openssl req -x509` with a new P-256 key: written to temp names, then renamed into place. */
function openssl(keyFile: string, certFile: string, args: string[]): void {
  const tmpKey = `${keyFile}.tmp`;
  const tmpCert = `${certFile}.tmp`;
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-new",
        ...NEW_EC_KEY,
        "-days",
        DAYS,
        "-keyout",
        tmpKey,
        "-out",
        tmpCert,
        ...args,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
  } catch (e) {
    throw new Error(
      `Cannot run openssl to make the cluster's gRPC certificates (install openssl, or start ` +
        `with --grpc-insecure): ${(e as Error).message}`,
    );
  }
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    throw new Error(`openssl could not make ${certFile}: ${why}`);
  }
  Deno.chmodSync(tmpKey, 0o600);
  Deno.renameSync(tmpKey, keyFile);
  Deno.renameSync(tmpCert, certFile);
}

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
