import { AttrReader } from "./_attrs.ts";
import {
  clientKeyOf,
  decodeBase64,
  encodeBase64,
  equalBytes,
  hmacAuthMessage,
  isPrintable,
  KEY_LENGTH,
  MAX_ITERATIONS,
  randomNonce,
  saltedPassword,
  serverKeyOf,
  sha256,
  xor,
} from "./_crypto.ts";
import { ScramError } from "./error.ts";

/** Options for {@linkcode ScramClient}. */
export type ScramClientOptions = {
  /** Client nonce, printable ASCII without commas; random (24 characters) by default. For tests. */
  nonce?: string;
};

/** Options for {@linkcode ScramClient.fromClientKey}. */
export type ScramClientKeyOptions = ScramClientOptions & {
  /**
   * The role's ServerKey (from its SCRAM secret), used to check the server's signature. Without
   * it {@linkcode ScramClient.verifyServerFinal} checks only the message's form: the server is
   * not authenticated.
   */
  serverKey?: Uint8Array;
};

const encoder = new TextEncoder();
const GS2_HEADER = "n,,";
/** base64("n,,"): the `c=` of a client that does not support channel binding. */
const CHANNEL_BINDING = "c=biws";
const ITERATIONS = /^[1-9][0-9]*$/;

type State = "first" | "server-first" | "server-final" | "done";

/** Escapes a `saslname` (RFC 5802 section 5.1): "," as "=2C" and "=" as "=3D". */
function saslName(user: string): string {
  return user.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

function malformedServer(what: string): ScramError {
  return new ScramError("malformed", `malformed SCRAM message (${what})`);
}

/**
 * The client side of one SCRAM-SHA-256 exchange without channel binding (gs2 header `n,,`),
 * for our own connections to Postgres and for tests.
 *
 * Call {@linkcode clientFirst} for the SASLInitialResponse data,
 * {@linkcode handleServerFirst} with the AuthenticationSASLContinue data to get the SASLResponse
 * data, and {@linkcode verifyServerFinal} with the AuthenticationSASLFinal data. Errors are
 * {@linkcode ScramError}s worded as libpq words them; calling the methods out of order throws a
 * plain `Error`.
 *
 * The password is used as UTF-8 without SASLprep, like {@linkcode makeScramVerifier}: Postgres
 * applies SASLprep to non-ASCII passwords, so one that SASLprep changes will not match.
 * Deriving the keys runs PBKDF2 synchronously in {@linkcode handleServerFirst}.
 */
export class ScramClient {
  #password: string | null;
  #clientKey: Uint8Array | null = null;
  #serverKey: Uint8Array | null = null;
  #clientNonce: string;
  #clientFirstBare: string;
  #state: State = "first";
  #expectedSignature: Uint8Array | null = null;

  constructor(user: string, password: string, opts: ScramClientOptions = {}) {
    const nonce = opts.nonce ?? randomNonce();
    if (nonce.length === 0 || !isPrintable(nonce)) {
      throw new TypeError("SCRAM nonce must be printable ASCII without commas");
    }
    this.#password = password;
    this.#clientNonce = nonce;
    this.#clientFirstBare = `n=${saslName(user)},r=${nonce}`;
  }

  /**
   * A client that proves knowledge of `clientKey` (ClientKey := HMAC(SaltedPassword,
   * "Client Key")) instead of a password. Postgres cannot tell the difference: the proof needs
   * only ClientKey and StoredKey = H(ClientKey). This is how a proxy passes a client's
   * authentication on to a backend whose secret is the same, taking the key from
   * {@linkcode ScramServer.clientKey} and the ServerKey from the secret. The server's salt and
   * iteration count are then ignored (a backend with another secret rejects the proof), and no
   * PBKDF2 runs.
   */
  static fromClientKey(
    user: string,
    clientKey: Uint8Array,
    opts: ScramClientKeyOptions = {},
  ): ScramClient {
    if (clientKey.length !== KEY_LENGTH) throw new RangeError("SCRAM ClientKey must be 32 bytes");
    const client = new ScramClient(user, "", opts);
    client.#password = null;
    client.#clientKey = Uint8Array.from(clientKey);
    if (opts.serverKey !== undefined) client.#serverKey = Uint8Array.from(opts.serverKey);
    return client;
  }

  /** The client-first-message, `n,,n=<user>,r=<client nonce>`. */
  clientFirst(): Uint8Array {
    this.#enter("first", "server-first");
    return encoder.encode(GS2_HEADER + this.#clientFirstBare);
  }

  /**
   * Reads the server-first-message and returns the client-final-message,
   * `c=biws,r=<nonce>,p=<ClientProof>`.
   *
   * @throws {ScramError} `malformed` for a bad message or a nonce that does not extend ours.
   */
  handleServerFirst(data: Uint8Array): Uint8Array {
    this.#enter("server-first", "done");
    const r = new AttrReader(data);
    if (r.peek() === 0x6d /* m */) {
      throw new ScramError("malformed", "server requires an unsupported SCRAM extension");
    }
    const nonce = r.read("r");
    if (
      nonce.length <= this.#clientNonce.length || !nonce.startsWith(this.#clientNonce) ||
      !isPrintable(nonce)
    ) {
      throw new ScramError("malformed", "invalid SCRAM response (nonce mismatch)");
    }
    const salt = decodeBase64(r.read("s"));
    if (salt === null || salt.length === 0) throw malformedServer("invalid salt");
    const iterationsText = r.read("i");
    const iterations = Number(iterationsText);
    if (!ITERATIONS.test(iterationsText) || iterations > MAX_ITERATIONS) {
      throw malformedServer("invalid iteration count");
    }
    while (!r.atEnd) r.readAny(); // extensions, ignored

    if (this.#password !== null) {
      const salted = saltedPassword(this.#password, salt, iterations);
      this.#clientKey = clientKeyOf(salted);
      this.#serverKey = serverKeyOf(salted);
    }
    const clientKey = this.#clientKey!;
    const withoutProof = `${CHANNEL_BINDING},r=${nonce}`;
    const serverFirst = data.slice(); // the caller may reuse its buffer
    const authMessage = [this.#clientFirstBare, serverFirst, withoutProof] as const;
    const proof = xor(clientKey, hmacAuthMessage(sha256(clientKey), authMessage));
    if (this.#serverKey !== null) {
      this.#expectedSignature = hmacAuthMessage(this.#serverKey, authMessage);
    }
    this.#state = "server-final";
    return encoder.encode(`${withoutProof},p=${encodeBase64(proof)}`);
  }

  /**
   * Reads the server-final-message and checks the server's signature in constant time (unless
   * this client came from {@linkcode fromClientKey} without a ServerKey).
   *
   * @throws {ScramError} `invalid-proof` for a wrong signature or `e=invalid-proof`; `malformed`
   * for a bad message or another `e=` error.
   */
  verifyServerFinal(data: Uint8Array): void {
    this.#enter("server-final", "done");
    const r = new AttrReader(data);
    if (r.peek() === 0x65 /* e */) {
      const error = r.read("e");
      throw new ScramError(
        error === "invalid-proof" ? "invalid-proof" : "malformed",
        `error received from server in SCRAM exchange: ${error}`,
      );
    }
    const signature = decodeBase64(r.read("v"));
    if (signature === null || signature.length !== KEY_LENGTH) {
      throw malformedServer("malformed server signature");
    }
    while (!r.atEnd) r.readAny(); // extensions, ignored
    const expected = this.#expectedSignature;
    if (expected !== null && !equalBytes(signature, expected)) {
      throw new ScramError("invalid-proof", "incorrect server signature");
    }
  }

  /** Checks the exchange is at `expected` and moves it to `next`. */
  #enter(expected: State, next: State): void {
    if (this.#state !== expected) {
      throw new Error(`SCRAM client used out of order: expected step ${expected}`);
    }
    this.#state = next;
  }
}
