import { AttrReader, sanitizeChar } from "./_attrs.ts";
import {
  decodeBase64,
  DEFAULT_ITERATIONS,
  encodeBase64,
  equalBytes,
  hmac,
  hmacAuthMessage,
  isPrintable,
  KEY_LENGTH,
  randomNonce,
  randomSalt,
  SALT_LENGTH,
  sha256,
  xor,
} from "./_crypto.ts";
import { malformed, ScramError } from "./error.ts";
import type { ScramVerifier } from "./verifier.ts";

/** Options for {@linkcode ScramServer}. */
export type ScramServerOptions = {
  /** Server nonce appended to the client's; random (24 base64 characters) by default. For tests. */
  nonce?: string;
  /**
   * The role name from the startup packet. It seeds the mock salt (see
   * {@linkcode ScramServer}) and names the role in the invalid-proof message. When absent the
   * mock salt is seeded with the `n=` name of the client-first-message, which libpq leaves empty.
   */
  user?: string;
  /**
   * Secret that makes mock salts unguessable, the counterpart of Postgres's cluster-wide mock
   * authentication nonce. Default: 32 random bytes chosen once per process. Give every gateway
   * the same secret, or a client that reaches two of them sees an unknown role's salt change.
   */
  mockSecret?: Uint8Array;
};

const encoder = new TextEncoder();
const ZERO_KEY = new Uint8Array(KEY_LENGTH);
/** `c=` values accepted without channel binding: base64 of "n,," and of "y,,". */
const CBIND_NONE = "biws";
const CBIND_UNUSED = "eSws";

let processMockSecret: Uint8Array | undefined;

/** The salt a mock exchange shows for `user`: stable per user and secret, unrelated to others. */
function mockSalt(user: string, secret: Uint8Array | undefined): Uint8Array {
  const key = secret ?? (processMockSecret ??= randomSalt(KEY_LENGTH));
  return hmac(key, user).subarray(0, SALT_LENGTH);
}

type State = "first" | "final" | "done";

/**
 * The server side of one SCRAM-SHA-256 exchange as Postgres runs it: mechanism
 * `SCRAM-SHA-256` only, so the gs2 header must be `n,,` or `y,,` (`p=...` is channel binding,
 * which we do not offer), no authzid, and the `n=` name is ignored in favour of the startup
 * packet's user.
 *
 * With a null verifier (unknown role, or a role whose password is not a SCRAM secret) the
 * server runs a mock exchange, as Postgres does so as not to reveal which roles exist: it answers
 * the client-first-message with a salt derived from the user name and `mockSecret`, 4096
 * iterations and a fresh nonce, computes the proof check as usual, and then fails with
 * `invalid-proof`.
 *
 * Each call throws {@linkcode ScramError} on failure and the exchange is over after any failure.
 * The input bytes are copied where needed, so the caller may reuse its buffer.
 */
export class ScramServer {
  #storedKey: Uint8Array;
  #serverKey: Uint8Array;
  #salt: Uint8Array | null;
  #iterations: number;
  #mock: boolean;
  #opts: ScramServerOptions;
  #state: State = "first";
  #channelBinding = "";
  #nonce = "";
  #clientFirstBare = new Uint8Array();
  #serverFirst = "";
  #clientKey: Uint8Array | undefined;

  constructor(verifier: ScramVerifier | null, opts: ScramServerOptions = {}) {
    this.#mock = verifier === null;
    this.#storedKey = verifier?.storedKey ?? ZERO_KEY;
    this.#serverKey = verifier?.serverKey ?? ZERO_KEY;
    this.#salt = verifier?.salt ?? null;
    this.#iterations = verifier?.iterations ?? DEFAULT_ITERATIONS;
    this.#opts = opts;
  }

  /**
   * The ClientKey the client proved it knows (ClientProof XOR ClientSignature), set once
   * {@linkcode handleClientFinal} succeeded. With the verifier's ServerKey it lets us log in to
   * a backend that holds the same secret (see {@linkcode ScramClient.fromClientKey}).
   */
  get clientKey(): Uint8Array | undefined {
    return this.#clientKey;
  }

  /**
   * Reads the client-first-message (the SASLInitialResponse data) and returns the
   * server-first-message, `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
   *
   * @throws {ScramError} `malformed` for a message Postgres would reject.
   */
  handleClientFirst(data: Uint8Array): Uint8Array {
    this.#enter("first");
    const r = new AttrReader(data);

    const flag = r.peek();
    if (flag === 0x70 /* p */) {
      throw malformed(
        "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.",
      );
    }
    if (flag !== 0x6e /* n */ && flag !== 0x79 /* y */) {
      throw malformed(`Unexpected channel-binding flag "${sanitizeChar(flag)}".`);
    }
    this.#channelBinding = flag === 0x6e ? CBIND_NONE : CBIND_UNUSED;
    r.skip();
    if (r.peek() !== 0x2c /* , */) {
      throw malformed(`Comma expected, but found character "${sanitizeChar(r.peek())}".`);
    }
    r.skip();
    if (r.peek() === 0x61 /* a */) {
      throw new ScramError(
        "malformed",
        "client uses authorization identity, but it is not supported",
        { sqlstate: "0A000" },
      );
    }
    if (r.peek() !== 0x2c /* , */) {
      throw malformed(
        `Unexpected attribute "${sanitizeChar(r.peek())}" in client-first-message.`,
      );
    }
    r.skip();
    const bareStart = r.pos;
    if (r.peek() === 0x6d /* m */) {
      throw new ScramError("malformed", "client requires an unsupported SCRAM extension", {
        sqlstate: "0A000",
      });
    }
    const name = r.read("n");
    const clientNonce = r.read("r");
    if (!isPrintable(clientNonce)) {
      throw new ScramError("malformed", "non-printable characters in SCRAM nonce");
    }
    while (!r.atEnd) r.readAny(); // extensions, ignored

    const salt = this.#salt ?? mockSalt(this.#opts.user ?? name, this.#opts.mockSecret);
    this.#nonce = clientNonce + (this.#opts.nonce ?? randomNonce());
    this.#clientFirstBare = data.slice(bareStart);
    this.#serverFirst = `r=${this.#nonce},s=${encodeBase64(salt)},i=${this.#iterations}`;
    this.#state = "final";
    return encoder.encode(this.#serverFirst);
  }

  /**
   * Reads the client-final-message (the SASLResponse data), checks the proof in constant time
   * and returns the server-final-message, `v=<ServerSignature>`.
   *
   * @throws {ScramError} `malformed` for a bad message, a channel-binding or nonce mismatch;
   * `invalid-proof` (SQLSTATE 28P01) for a wrong password and always in a mock exchange.
   */
  handleClientFinal(data: Uint8Array): Uint8Array {
    this.#enter("final");
    const r = new AttrReader(data);

    if (r.read("c") !== this.#channelBinding) {
      throw new ScramError(
        "malformed",
        "unexpected SCRAM channel-binding attribute in client-final-message",
      );
    }
    const nonce = r.read("r");
    let proofStart: number;
    let attr;
    do {
      proofStart = r.pos;
      attr = r.readAny(); // extensions before the proof, ignored
    } while (attr.name !== "p");
    const proof = decodeBase64(attr.value);
    if (proof === null || proof.length !== KEY_LENGTH) {
      throw malformed("Malformed proof in client-final-message.");
    }
    if (!r.atEnd) throw malformed("Garbage found at the end of client-final-message.");
    if (nonce !== this.#nonce) {
      throw new ScramError("malformed", "invalid SCRAM response", {
        detail: "Nonce does not match.",
      });
    }

    // proofStart is just past the comma that precedes "p=".
    const withoutProof = data.subarray(0, proofStart - 1);
    const authMessage = [this.#clientFirstBare, this.#serverFirst, withoutProof] as const;
    const clientKey = xor(proof, hmacAuthMessage(this.#storedKey, authMessage));
    // Checked even in a mock exchange, so that both take the same time.
    if (!equalBytes(sha256(clientKey), this.#storedKey) || this.#mock) {
      const user = this.#opts.user;
      throw new ScramError(
        "invalid-proof",
        user === undefined
          ? "password authentication failed"
          : `password authentication failed for user "${user}"`,
      );
    }
    this.#clientKey = clientKey;
    const signature = hmacAuthMessage(this.#serverKey, authMessage);
    return encoder.encode(`v=${encodeBase64(signature)}`);
  }

  /** Moves on from `expected` to "done" (so any failure ends the exchange), or throws. */
  #enter(expected: State): void {
    if (this.#state !== expected) {
      throw new ScramError("malformed", "invalid SCRAM exchange state");
    }
    this.#state = "done";
  }
}
