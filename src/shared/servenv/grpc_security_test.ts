import assert from "node:assert/strict";
import { makeTestPki, type PkiName } from "../grpc/testing_pki.ts";
import { grpcSecurityFromFlags } from "./grpc_security.ts";

const pki = await makeTestPki();

function flags(
  files: { ca?: PkiName; cert?: PkiName; key?: PkiName } = {},
  insecure = false,
) {
  return {
    "grpc-ca-file": files.ca ? pki.file(files.ca) : "",
    "grpc-cert-file": files.cert ? pki.file(files.cert) : "",
    "grpc-key-file": files.key ? pki.file(files.key) : "",
    "grpc-insecure": insecure,
  };
}

/** Asserts that the flags are refused with one line matching `re`. */
function assertRefused(cfg: ReturnType<typeof flags>, re: RegExp): void {
  assert.throws(() => grpcSecurityFromFlags(cfg), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, re);
    assert.equal(e.message.includes("\n"), false, `not one line: ${JSON.stringify(e.message)}`);
    return true;
  });
}

Deno.test("grpcSecurityFromFlags", async (t) => {
  try {
    await t.step("the three files give mutual TLS with their PEM texts", () => {
      const sec = grpcSecurityFromFlags(flags({ ca: "ca", cert: "cert", key: "key" }));
      assert.equal(sec.mode, "mtls");
      assert.equal(sec.mode === "mtls" && sec.certs.certPem, pki.cert);
    });

    await t.step("--grpc-insecure alone gives plaintext", () => {
      assert.equal(grpcSecurityFromFlags(flags({}, true)).mode, "insecure");
    });

    await t.step("neither certificates nor --grpc-insecure: refused", () => {
      assertRefused(flags(), /^No gRPC certificates: give --grpc-ca-file, .* or --grpc-insecure/);
    });

    await t.step("some of the files, or files and --grpc-insecure: refused", () => {
      assertRefused(flags({ ca: "ca", cert: "cert" }), /^Give all three of --grpc-ca-file/);
      assertRefused(flags({ ca: "ca", cert: "cert", key: "key" }, true), /not both$/);
    });

    await t.step("a missing file, a v1 CA, a key of another certificate: refused", () => {
      assertRefused(
        { ...flags({ cert: "cert", key: "key" }), "grpc-ca-file": `${pki.dir}/nope.pem` },
        /^Cannot read --grpc-ca-file .*nope\.pem: /,
      );
      assertRefused(flags({ ca: "v1Ca", cert: "v1Cert", key: "v1Key" }), /X\.509 v1/);
      assertRefused(
        flags({ ca: "ca", cert: "cert", key: "strayKey" }),
        /strayKey\.pem is not the private key of .*cert\.pem$/,
      );
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
