import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import {
  makeScramVerifier,
  parseScramVerifier,
  ScramClient,
  ScramError,
  type ScramErrorKind,
  ScramServer,
  type ScramVerifier,
} from "./mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (s: string): Uint8Array => encoder.encode(s);
const text = (b: Uint8Array): string => decoder.decode(b);
const b64 = (s: string): Uint8Array => Uint8Array.fromBase64(s);

// RFC 7677 section 3.
const RFC = {
  user: "user",
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst:
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  // As printed in RFC 7677 and computed by every implementation; the same 16 first characters
  // followed by "2DyAYaqCEqjwdMYxW1w7HWe/Rls=" is not the signature of this exchange.
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

// Made by libpq 15.18's PQencryptPasswordConn(conn, password, "alice", "scram-sha-256"), the
// code Postgres shares with the server (which SASLprep's the password first, as here).
const LIBPQ = {
  pencil:
    "SCRAM-SHA-256$4096:AMoYaH3m35F6zeIVgWxP2g==$WpN4LZP3P4LBWD7azzldfIcZymXVxgPqauSFEsoR7S8=:etpn+6xORHuysWibg0LkggPj0WH4J9/4JxGURMUPb+k=",
  "pässwörd":
    "SCRAM-SHA-256$4096:SUpft0IwNHRJTAOpQgWlnw==$+REiOS/pB6vZvwM3ahlrazAHeWSdtkIRfqejZp7w40c=:yQluNJX/B2mu+z0DGo7PytBYZepu/uqLh/gecw2/iL4=",
  "\ufb01sh":
    "SCRAM-SHA-256$4096:mYGViAkAHRgwwruDa+ogGQ==$UIa50Q3GS8JLFMfIdeaB7mFqWwyLKLOcRl/PvGQFgrY=:XuFKtNsq7OSX5D8zw2hgrCpIsaxSfinBWhM3rNrTv94=",
};

function verifierFor(password: string, salt?: Uint8Array): ScramVerifier {
  const verifier = parseScramVerifier(makeScramVerifier(password, { salt }));
  assert.ok(verifier);
  return verifier;
}

function assertScramError(
  fn: () => unknown,
  kind: ScramErrorKind,
  message: string,
  detail?: string,
): ScramError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ScramError, `expected a ScramError, got ${caught}`);
  assert.equal(caught.kind, kind);
  assert.equal(caught.message, message);
  assert.equal(caught.detail, detail);
  return caught;
}

/** Runs a whole exchange; returns both ends and the server-final-message. */
function exchange(server: ScramServer, client: ScramClient): Uint8Array {
  const serverFirst = server.handleClientFirst(client.clientFirst());
  return server.handleClientFinal(client.handleServerFirst(serverFirst));
}

/** A server that has answered `clientFirst`, for tests of the client-final step. */
function serverAfterFirst(clientFirst: string): ScramServer {
  const server = new ScramServer(verifierFor("pencil"), { nonce: "SERVER" });
  server.handleClientFirst(bytes(clientFirst));
  return server;
}

// An independent ClientProof computation, straight from RFC 5802 section 3, for hand-made
// messages that ScramClient never sends.
function proofFor(password: string, salt: Uint8Array, authMessage: string): string {
  const saltedPassword = pbkdf2Sync(password, salt, 4096, 32, "sha256");
  const clientKey = createHmac("sha256", saltedPassword).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const signature = createHmac("sha256", storedKey).update(authMessage).digest();
  return Uint8Array.from(clientKey, (b, i) => b ^ signature[i]).toBase64();
}

// --- RFC 7677 test vector ---

Deno.test("ScramClient follows the RFC 7677 test vector", () => {
  const client = new ScramClient(RFC.user, RFC.password, { nonce: RFC.clientNonce });
  assert.equal(text(client.clientFirst()), RFC.clientFirst);
  assert.equal(text(client.handleServerFirst(bytes(RFC.serverFirst))), RFC.clientFinal);
  client.verifyServerFinal(bytes(RFC.serverFinal));
});

Deno.test("ScramClient rejects a near-miss of the RFC 7677 server signature", () => {
  const client = new ScramClient(RFC.user, RFC.password, { nonce: RFC.clientNonce });
  client.clientFirst();
  client.handleServerFirst(bytes(RFC.serverFirst));
  assertScramError(
    () => client.verifyServerFinal(bytes("v=6rriTRBi23WpRR/w2DyAYaqCEqjwdMYxW1w7HWe/Rls=")),
    "invalid-proof",
    "incorrect server signature",
  );
});

Deno.test("ScramServer follows the RFC 7677 test vector", () => {
  const server = new ScramServer(verifierFor(RFC.password, b64(RFC.salt)), {
    nonce: RFC.serverNonce,
  });
  assert.equal(text(server.handleClientFirst(bytes(RFC.clientFirst))), RFC.serverFirst);
  assert.equal(server.clientKey, undefined);
  assert.equal(text(server.handleClientFinal(bytes(RFC.clientFinal))), RFC.serverFinal);
  // ClientKey = ClientProof XOR ClientSignature, and H(ClientKey) is the StoredKey.
  const clientKey = server.clientKey;
  assert.ok(clientKey);
  assert.deepEqual(
    Uint8Array.from(createHash("sha256").update(clientKey).digest()),
    verifierFor(RFC.password, b64(RFC.salt)).storedKey,
  );
});

// --- Round trips ---

Deno.test("ScramServer accepts ScramClient with the right password", () => {
  const verifier = verifierFor("correct horse");
  const server = new ScramServer(verifier, { user: "alice" });
  const client = new ScramClient("alice", "correct horse");
  const serverFinal = exchange(server, client);
  assert.match(text(serverFinal), /^v=[A-Za-z0-9+/]{43}=$/);
  client.verifyServerFinal(serverFinal);
  assert.equal(server.clientKey?.length, 32);
});

Deno.test("ScramServer rejects a wrong password with invalid-proof", () => {
  const server = new ScramServer(verifierFor("correct horse"), { user: "alice" });
  const client = new ScramClient("alice", "wrong horse");
  const error = assertScramError(
    () => exchange(server, client),
    "invalid-proof",
    'password authentication failed for user "alice"',
  );
  assert.equal(error.sqlstate, "28P01");
  assert.equal(server.clientKey, undefined);
});

Deno.test("ScramServer accepts the gs2 header y,, with c=eSws", () => {
  const server = new ScramServer(verifierFor("pencil", b64(RFC.salt)), { nonce: "SERVER" });
  const serverFirst = text(server.handleClientFirst(bytes("y,,n=,r=abc")));
  assert.equal(serverFirst, `r=abcSERVER,s=${RFC.salt},i=4096`);
  const withoutProof = "c=eSws,r=abcSERVER";
  const proof = proofFor("pencil", b64(RFC.salt), `n=,r=abc,${serverFirst},${withoutProof}`);
  const serverFinal = server.handleClientFinal(bytes(`${withoutProof},p=${proof}`));
  assert.match(text(serverFinal), /^v=/);
});

Deno.test("ScramServer ignores extensions in both client messages", () => {
  const server = new ScramServer(verifierFor("pencil", b64(RFC.salt)), { nonce: "S" });
  const serverFirst = text(server.handleClientFirst(bytes("n,,n=bob,r=abc,x=ext")));
  const withoutProof = "c=biws,r=abcS,z=more";
  const proof = proofFor(
    "pencil",
    b64(RFC.salt),
    `n=bob,r=abc,x=ext,${serverFirst},${withoutProof}`,
  );
  assert.match(text(server.handleClientFinal(bytes(`${withoutProof},p=${proof}`))), /^v=/);
});

Deno.test("ScramServer makes a fresh 24-character nonce per exchange", () => {
  const verifier = verifierFor("pencil");
  const nonces = [1, 2].map(() => {
    const server = new ScramServer(verifier);
    const serverFirst = text(server.handleClientFirst(bytes("n,,n=,r=abc")));
    return serverFirst.match(/^r=abc([A-Za-z0-9+/]{24}),s=/)?.[1];
  });
  assert.ok(nonces[0]);
  assert.notEqual(nonces[0], nonces[1]);
});

// --- Mock exchange ---

Deno.test("ScramServer without a verifier runs a plausible mock exchange that fails", () => {
  const mockSecret = new Uint8Array(32).fill(7);
  const server = new ScramServer(null, { user: "nobody", mockSecret, nonce: "SERVER" });
  const client = new ScramClient("nobody", "anything", { nonce: "abc" });
  const serverFirst = text(server.handleClientFirst(client.clientFirst()));
  const match = serverFirst.match(/^r=abcSERVER,s=([A-Za-z0-9+/]{22}==),i=4096$/);
  assert.ok(match, serverFirst);
  const clientFinal = client.handleServerFirst(bytes(serverFirst));
  assertScramError(
    () => server.handleClientFinal(clientFinal),
    "invalid-proof",
    'password authentication failed for user "nobody"',
  );
});

Deno.test("ScramServer mock salt is stable per user and differs between users", () => {
  const saltOf = (user: string, mockSecret?: Uint8Array) => {
    const server = new ScramServer(null, { user, mockSecret });
    return text(server.handleClientFirst(bytes("n,,n=,r=abc"))).split(",")[1];
  };
  const secret = new Uint8Array(32).fill(1);
  assert.equal(saltOf("ghost", secret), saltOf("ghost", secret));
  assert.notEqual(saltOf("ghost", secret), saltOf("spook", secret));
  assert.notEqual(saltOf("ghost", secret), saltOf("ghost", new Uint8Array(32).fill(2)));
  assert.equal(saltOf("ghost"), saltOf("ghost")); // the per-process default secret
});

Deno.test("ScramServer mock exchange fails even when the proof matches a zero key", () => {
  // A client cannot guess its way through a mock exchange with any fixed key.
  const server = new ScramServer(null, { nonce: "S" });
  server.handleClientFirst(bytes("n,,n=,r=abc"));
  const proof = new Uint8Array(32).toBase64();
  assertScramError(
    () => server.handleClientFinal(bytes(`c=biws,r=abcS,p=${proof}`)),
    "invalid-proof",
    "password authentication failed",
  );
});

// --- Malformed client messages ---

Deno.test("ScramServer.handleClientFirst() rejects a message without a nonce", () => {
  const server = new ScramServer(verifierFor("pencil"));
  const error = assertScramError(
    () => server.handleClientFirst(bytes("n,,n=user")),
    "malformed",
    "malformed SCRAM message",
    'Expected attribute "r" but found "0x00".',
  );
  assert.equal(error.sqlstate, "08P01");
});

Deno.test("ScramServer.handleClientFirst() rejects channel binding p=tls-server-end-point", () => {
  const server = new ScramServer(verifierFor("pencil"));
  assertScramError(
    () => server.handleClientFirst(bytes("p=tls-server-end-point,,n=,r=abc")),
    "malformed",
    "malformed SCRAM message",
    "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.",
  );
});

Deno.test("ScramServer.handleClientFirst() rejects other malformed messages", () => {
  const cases: [string, string, string | undefined][] = [
    ["", "malformed SCRAM message", 'Unexpected channel-binding flag "0x00".'],
    ["x,,n=,r=abc", "malformed SCRAM message", "Unexpected channel-binding flag \"'x'\"."],
    ["n;,n=,r=abc", "malformed SCRAM message", "Comma expected, but found character \"';'\"."],
    [
      "n,x,n=,r=abc",
      "malformed SCRAM message",
      "Unexpected attribute \"'x'\" in client-first-message.",
    ],
    ["n,,r=abc", "malformed SCRAM message", 'Expected attribute "n" but found "\'r\'".'],
    ["n,,n=,r", "malformed SCRAM message", 'Expected character "=" for attribute "r".'],
    ["n,,n=,r=a\tb", "non-printable characters in SCRAM nonce", undefined],
    [
      "n,,n=,r=abc,1=x",
      "malformed SCRAM message",
      "Attribute expected, but found invalid character \"'1'\".",
    ],
  ];
  for (const [message, errmsg, detail] of cases) {
    const server = new ScramServer(verifierFor("pencil"));
    assertScramError(() => server.handleClientFirst(bytes(message)), "malformed", errmsg, detail);
  }
});

Deno.test("ScramServer.handleClientFirst() rejects authzid and mandatory extensions as 0A000", () => {
  for (
    const [message, errmsg] of [
      ["n,a=admin,n=,r=abc", "client uses authorization identity, but it is not supported"],
      ["n,,m=ext,n=,r=abc", "client requires an unsupported SCRAM extension"],
    ]
  ) {
    const server = new ScramServer(verifierFor("pencil"));
    const error = assertScramError(
      () => server.handleClientFirst(bytes(message)),
      "malformed",
      errmsg,
    );
    assert.equal(error.sqlstate, "0A000");
  }
});

Deno.test("ScramServer.handleClientFinal() rejects a nonce mismatch", () => {
  const server = serverAfterFirst("n,,n=,r=abc");
  const proof = new Uint8Array(32).toBase64();
  assertScramError(
    () => server.handleClientFinal(bytes(`c=biws,r=abcOTHER,p=${proof}`)),
    "malformed",
    "invalid SCRAM response",
    "Nonce does not match.",
  );
});

Deno.test("ScramServer.handleClientFinal() rejects a channel-binding mismatch", () => {
  const proof = new Uint8Array(32).toBase64();
  for (
    const [first, binding] of [
      ["n,,n=,r=abc", "eSws"], // y,, in the final message after n,, in the first
      ["y,,n=,r=abc", "biws"],
      ["n,,n=,r=abc", "cD10bHMtc2VydmVyLWVuZC1wb2ludCws"],
    ]
  ) {
    const server = serverAfterFirst(first);
    assertScramError(
      () => server.handleClientFinal(bytes(`c=${binding},r=abcSERVER,p=${proof}`)),
      "malformed",
      "unexpected SCRAM channel-binding attribute in client-final-message",
    );
  }
});

Deno.test("ScramServer.handleClientFinal() rejects a bad proof or trailing garbage", () => {
  const proof = new Uint8Array(32).toBase64();
  const cases: [string, string][] = [
    ["c=biws,r=abcSERVER,p=AAAA", "Malformed proof in client-final-message."],
    ["c=biws,r=abcSERVER,p=not base64!", "Malformed proof in client-final-message."],
    [`c=biws,r=abcSERVER,p=${proof},x=1`, "Garbage found at the end of client-final-message."],
    ["c=biws,r=abcSERVER", "Attribute expected, but found end of string."],
    ["r=abcSERVER,c=biws", 'Expected attribute "c" but found "\'r\'".'],
  ];
  for (const [message, detail] of cases) {
    const server = serverAfterFirst("n,,n=,r=abc");
    assertScramError(
      () => server.handleClientFinal(bytes(message)),
      "malformed",
      "malformed SCRAM message",
      detail,
    );
  }
});

Deno.test("ScramServer refuses steps out of order and after a failure", () => {
  const server = new ScramServer(verifierFor("pencil"));
  assertScramError(
    () => server.handleClientFinal(bytes("c=biws")),
    "malformed",
    "invalid SCRAM exchange state",
  );
  const failed = new ScramServer(verifierFor("pencil"));
  assert.throws(() => failed.handleClientFirst(bytes("n,,n=user")), ScramError);
  assertScramError(
    () => failed.handleClientFirst(bytes("n,,n=,r=abc")),
    "malformed",
    "invalid SCRAM exchange state",
  );
});

// --- ScramClient against bad servers ---

Deno.test("ScramClient.handleServerFirst() rejects a nonce that does not extend its own", () => {
  for (const nonce of ["abc", "xyzSERVER", "ab"]) {
    const client = new ScramClient("u", "p", { nonce: "abc" });
    client.clientFirst();
    assertScramError(
      () => client.handleServerFirst(bytes(`r=${nonce},s=${RFC.salt},i=4096`)),
      "malformed",
      "invalid SCRAM response (nonce mismatch)",
    );
  }
});

Deno.test("ScramClient.handleServerFirst() rejects a bad salt or iteration count", () => {
  const cases: [string, string][] = [
    ["r=abcS,s=!!,i=4096", "malformed SCRAM message (invalid salt)"],
    ["r=abcS,s=,i=4096", "malformed SCRAM message (invalid salt)"],
    ["r=abcS,s=QUJD,i=0", "malformed SCRAM message (invalid iteration count)"],
    ["r=abcS,s=QUJD,i=-1", "malformed SCRAM message (invalid iteration count)"],
    ["r=abcS,s=QUJD,i=4096x", "malformed SCRAM message (invalid iteration count)"],
    ["r=abcS,s=QUJD,i=2147483648", "malformed SCRAM message (invalid iteration count)"],
    ["r=abcS,i=4096,s=QUJD", "malformed SCRAM message"],
  ];
  for (const [message, errmsg] of cases) {
    const client = new ScramClient("u", "p", { nonce: "abc" });
    client.clientFirst();
    assert.throws(
      () => client.handleServerFirst(bytes(message)),
      (e) => e instanceof ScramError && e.kind === "malformed" && e.message === errmsg,
      message,
    );
  }
});

Deno.test("ScramClient.verifyServerFinal() rejects a wrong signature or a server error", () => {
  const start = () => {
    const client = new ScramClient(RFC.user, RFC.password, { nonce: RFC.clientNonce });
    client.clientFirst();
    client.handleServerFirst(bytes(RFC.serverFirst));
    return client;
  };
  const wrong = `v=${new Uint8Array(32).toBase64()}`;
  assertScramError(
    () => start().verifyServerFinal(bytes(wrong)),
    "invalid-proof",
    "incorrect server signature",
  );
  assertScramError(
    () => start().verifyServerFinal(bytes("e=invalid-proof")),
    "invalid-proof",
    "error received from server in SCRAM exchange: invalid-proof",
  );
  assertScramError(
    () => start().verifyServerFinal(bytes("e=other-error")),
    "malformed",
    "error received from server in SCRAM exchange: other-error",
  );
  assertScramError(
    () => start().verifyServerFinal(bytes("v=AAAA")),
    "malformed",
    "malformed SCRAM message (malformed server signature)",
  );
});

Deno.test("ScramClient escapes , and = in the user name and checks its step order", () => {
  const client = new ScramClient("a,b=c", "p", { nonce: "xyz" });
  assert.equal(text(client.clientFirst()), "n,,n=a=2Cb=3Dc,r=xyz");
  assert.throws(() => client.clientFirst(), /out of order/);
  assert.throws(() => client.verifyServerFinal(bytes(RFC.serverFinal)), /out of order/);
  assert.throws(() => new ScramClient("u", "p", { nonce: "a,b" }), TypeError);
});

// --- ClientKey pass-through ---

Deno.test("ScramClient.fromClientKey() passes a client's authentication on to a backend", () => {
  const verifier = verifierFor("s3cret");
  const gateway = new ScramServer(verifier, { user: "app" });
  exchange(gateway, new ScramClient("app", "s3cret"));
  const clientKey = gateway.clientKey;
  assert.ok(clientKey);

  const backend = new ScramServer(verifier, { user: "app" });
  const relay = ScramClient.fromClientKey("app", clientKey, { serverKey: verifier.serverKey });
  relay.verifyServerFinal(exchange(backend, relay));
  assert.deepEqual(backend.clientKey, clientKey);
});

Deno.test("ScramClient.fromClientKey() checks the server signature only with a ServerKey", () => {
  const verifier = verifierFor("s3cret");
  const gateway = new ScramServer(verifier);
  exchange(gateway, new ScramClient("app", "s3cret"));
  const clientKey = gateway.clientKey!;

  const impostorKey = verifierFor("other").serverKey;
  const checking = ScramClient.fromClientKey("app", clientKey, { serverKey: impostorKey });
  const serverFinal = exchange(new ScramServer(verifier), checking);
  assertScramError(
    () => checking.verifyServerFinal(serverFinal),
    "invalid-proof",
    "incorrect server signature",
  );

  const trusting = ScramClient.fromClientKey("app", clientKey);
  trusting.verifyServerFinal(exchange(new ScramServer(verifier), trusting));

  const other = new ScramServer(verifierFor("s3cret")); // same password, another salt
  assert.throws(
    () => exchange(other, ScramClient.fromClientKey("app", clientKey)),
    (e) => e instanceof ScramError && e.kind === "invalid-proof",
  );
  assert.throws(() => ScramClient.fromClientKey("app", new Uint8Array(31)), RangeError);
});

// --- Verifiers and Postgres interop ---

Deno.test("parseScramVerifier() reads a secret made by Postgres's libpq", () => {
  const verifier = parseScramVerifier(LIBPQ.pencil);
  assert.ok(verifier);
  assert.equal(verifier.iterations, 4096);
  assert.deepEqual(verifier.salt, b64("AMoYaH3m35F6zeIVgWxP2g=="));
  assert.deepEqual(verifier.storedKey, b64("WpN4LZP3P4LBWD7azzldfIcZymXVxgPqauSFEsoR7S8="));
  assert.deepEqual(verifier.serverKey, b64("etpn+6xORHuysWibg0LkggPj0WH4J9/4JxGURMUPb+k="));
});

Deno.test("ScramClient logs in against a Postgres-made secret, and a wrong password does not", () => {
  const verifier = parseScramVerifier(LIBPQ.pencil);
  const client = new ScramClient("alice", "pencil");
  client.verifyServerFinal(exchange(new ScramServer(verifier), client));
  assert.throws(
    () => exchange(new ScramServer(verifier), new ScramClient("alice", "Pencil")),
    (e) => e instanceof ScramError && e.kind === "invalid-proof",
  );
});

Deno.test("makeScramVerifier() matches Postgres byte for byte given the same salt", () => {
  for (const password of ["pencil", "pässwörd"] as const) {
    const { salt, iterations } = parseScramVerifier(LIBPQ[password])!;
    assert.equal(makeScramVerifier(password, { salt, iterations }), LIBPQ[password]);
  }
});

Deno.test("makeScramVerifier() skips SASLprep, so only the normalised form matches", () => {
  // Postgres NFKC-normalises "ﬁsh" to "fish" before hashing; we hash the UTF-8 as is.
  const { salt, iterations } = parseScramVerifier(LIBPQ["\ufb01sh"])!;
  assert.notEqual(makeScramVerifier("\ufb01sh", { salt, iterations }), LIBPQ["\ufb01sh"]);
  assert.equal(makeScramVerifier("fish", { salt, iterations }), LIBPQ["\ufb01sh"]);
});

Deno.test("makeScramVerifier() defaults to 4096 iterations and a random 16-byte salt", () => {
  const a = parseScramVerifier(makeScramVerifier("pencil"));
  const b = parseScramVerifier(makeScramVerifier("pencil"));
  assert.ok(a && b);
  assert.equal(a.iterations, 4096);
  assert.equal(a.salt.length, 16);
  assert.notDeepEqual(a.salt, b.salt);
  assert.equal(
    parseScramVerifier(makeScramVerifier("pencil", { iterations: 1 }))?.iterations,
    1,
  );
  assert.throws(() => makeScramVerifier("pencil", { iterations: 0 }), RangeError);
  assert.throws(() => makeScramVerifier("pencil", { iterations: 1.5 }), RangeError);
  assert.throws(() => makeScramVerifier("pencil", { salt: new Uint8Array() }), RangeError);
});

Deno.test("parseScramVerifier() returns null for anything but a SCRAM-SHA-256 secret", () => {
  const [head, keys] = [
    "SCRAM-SHA-256$4096:AMoYaH3m35F6zeIVgWxP2g==",
    "WpN4LZP3P4LBWD7azzldfIcZymXVxgPqauSFEsoR7S8=:etpn+6xORHuysWibg0LkggPj0WH4J9/4JxGURMUPb+k=",
  ];
  assert.ok(parseScramVerifier(`${head}$${keys}`));
  for (
    const s of [
      "",
      "pencil",
      "md5a6343a68d964ca596d9752250d54bb8a",
      `scram-sha-256$4096:AMoYaH3m35F6zeIVgWxP2g==$${keys}`,
      `SCRAM-SHA-1$4096:AMoYaH3m35F6zeIVgWxP2g==$${keys}`,
      `SCRAM-SHA-256$0:AMoYaH3m35F6zeIVgWxP2g==$${keys}`,
      `SCRAM-SHA-256$-1:AMoYaH3m35F6zeIVgWxP2g==$${keys}`,
      `SCRAM-SHA-256$4096x:AMoYaH3m35F6zeIVgWxP2g==$${keys}`,
      `SCRAM-SHA-256$2147483648:AMoYaH3m35F6zeIVgWxP2g==$${keys}`,
      `SCRAM-SHA-256$4096:$${keys}`,
      `SCRAM-SHA-256$4096:not*base64$${keys}`,
      `SCRAM-SHA-256$4096$${keys}`,
      `${head}$WpN4LZP3P4LBWD7azzldfIcZymXVxgPqauSFEsoR7S8=`,
      `${head}$QUJD:etpn+6xORHuysWibg0LkggPj0WH4J9/4JxGURMUPb+k=`,
      `${head}$${keys}:extra`,
      `${head}$${keys}$`,
      `${head}$${keys} `,
    ]
  ) {
    assert.equal(parseScramVerifier(s), null, s);
  }
});
