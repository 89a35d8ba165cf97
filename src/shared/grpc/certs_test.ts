import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { type CertificateSet, checkCertificates, isX509v3, pemCertificates } from "./certs.ts";
import { makeTestPki } from "./testing_pki.ts";

const pki = await makeTestPki();
const FILES = { caFile: "ca.pem", certFile: "cert.pem", keyFile: "key.pem" };

/** Asserts that checkCertificates refuses `set` with one line matching `re`. */
function assertRefused(set: CertificateSet, re: RegExp): void {
  assert.throws(() => checkCertificates(set, FILES), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, re);
    assert.equal(e.message.includes("\n"), false, `not one line: ${JSON.stringify(e.message)}`);
    return true;
  });
}

Deno.test({
  name: "certs",
  sanitizeResources: false,
  async fn(t) {
    try {
      await t.step("checkCertificates() accepts a v3 CA, a leaf it issued and its key", () => {
        checkCertificates({ caPem: pki.ca, certPem: pki.cert, keyPem: pki.key }, FILES);
      });

      await t.step("checkCertificates() accepts a CA file holding several CAs", () => {
        checkCertificates(
          { caPem: pki.rogueCa + pki.ca, certPem: pki.cert, keyPem: pki.key },
          FILES,
        );
      });

      await t.step("checkCertificates() refuses a CA file with an X.509 v1 certificate", () => {
        assertRefused(
          { caPem: pki.v1Ca, certPem: pki.v1Cert, keyPem: pki.v1Key },
          /^ca\.pem: CN=v1 CA is an X\.509 v1 certificate: a CA must be X\.509 v3$/,
        );
        // Also when a good CA comes first.
        assertRefused(
          { caPem: pki.ca + pki.v1Ca, certPem: pki.cert, keyPem: pki.key },
          /X\.509 v1/,
        );
      });

      await t.step("checkCertificates() refuses a key that is not the certificate's", () => {
        assertRefused(
          { caPem: pki.ca, certPem: pki.cert, keyPem: pki.strayKey },
          /^key\.pem is not the private key of cert\.pem$/,
        );
        assertRefused(
          { caPem: pki.ca, certPem: pki.cert, keyPem: pki.rogueKey },
          /is not the private key/,
        );
      });

      await t.step("checkCertificates() refuses a certificate from another CA", () => {
        assertRefused(
          { caPem: pki.ca, certPem: pki.rogueCert, keyPem: pki.rogueKey },
          /^cert\.pem is not issued by a CA of ca\.pem$/,
        );
      });

      await t.step("checkCertificates() refuses a leaf as the CA, and files without PEM", () => {
        assertRefused({ caPem: pki.cert, certPem: pki.cert, keyPem: pki.key }, /not a CA/);
        assertRefused({ caPem: "", certPem: pki.cert, keyPem: pki.key }, /^No certificate in/);
        assertRefused({ caPem: pki.ca, certPem: pki.key, keyPem: pki.key }, /^No certificate in/);
        assertRefused({ caPem: pki.ca, certPem: pki.cert, keyPem: "junk" }, /holds no private key/);
      });

      await t.step("isX509v3() reads the version field of the DER", () => {
        assert.equal(isX509v3(new X509Certificate(pki.ca).raw), true);
        assert.equal(isX509v3(new X509Certificate(pki.v1Ca).raw), false);
        assert.equal(isX509v3(new Uint8Array([0x30, 0x03, 0x30, 0x01, 0xa0])), false);
        assert.equal(isX509v3(new Uint8Array()), false);
      });

      await t.step("pemCertificates() cuts a bundle into its certificates", () => {
        assert.deepEqual(pemCertificates(pki.ca + "\n" + pki.rogueCa).length, 2);
        assert.deepEqual(pemCertificates(pki.key), []);
      });
    } finally {
      await Deno.remove(pki.dir, { recursive: true });
    }
  },
});
