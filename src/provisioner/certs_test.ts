import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { checkCertificates, isX509v3 } from "../shared/grpc/mod.ts";
import { ensureClusterCerts, GRPC_IDENTITIES, grpcCertFiles } from "./certs.ts";

Deno.test("ensureClusterCerts() makes a v3 CA and a certificate per component, once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multigres_certs_" });
  try {
    ensureClusterCerts(`${dir}/grpc`, { cluster: "t", ips: ["10.1.2.3"] });
    const first = new Map<string, string>();
    for (const who of GRPC_IDENTITIES) {
      const f = grpcCertFiles(`${dir}/grpc`, who);
      const set = {
        caPem: Deno.readTextFileSync(f.caFile),
        certPem: Deno.readTextFileSync(f.certFile),
        keyPem: Deno.readTextFileSync(f.keyFile),
      };
      checkCertificates(set, f);
      const cert = new X509Certificate(set.certPem);
      assert.ok(isX509v3(cert.raw));
      assert.equal(cert.subject, `CN=${who}`);
      assert.match(cert.subjectAltName ?? "", /DNS:localhost, IP Address:127\.0\.0\.1/);
      assert.match(cert.subjectAltName ?? "", /IP Address:10\.1\.2\.3/);
      assert.equal(Deno.statSync(f.keyFile).mode! & 0o777, 0o600);
      first.set(who, set.certPem);
    }
    assert.equal(Deno.statSync(`${dir}/grpc/ca.key`).mode! & 0o777, 0o600);
    // A second start keeps everything; a lost certificate is issued again by the same CA.
    Deno.removeSync(grpcCertFiles(`${dir}/grpc`, "pgctld").certFile);
    ensureClusterCerts(`${dir}/grpc`, { cluster: "t" });
    for (const who of GRPC_IDENTITIES) {
      const f = grpcCertFiles(`${dir}/grpc`, who);
      const pem = Deno.readTextFileSync(f.certFile);
      if (who === "pgctld") assert.notEqual(pem, first.get(who));
      else assert.equal(pem, first.get(who));
    }
    const f = grpcCertFiles(`${dir}/grpc`, "pgctld");
    checkCertificates({
      caPem: Deno.readTextFileSync(f.caFile),
      certPem: Deno.readTextFileSync(f.certFile),
      keyPem: Deno.readTextFileSync(f.keyFile),
    }, f);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
