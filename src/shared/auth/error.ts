/** The two ways a SCRAM exchange fails. */
export type ScramErrorKind = "malformed" | "invalid-proof";

/** Options for {@linkcode ScramError}. */
export type ScramErrorOptions = {
  /** Postgres's `errdetail`, when it gives one for this case. */
  detail?: string;
  /** SQLSTATE to report; by default `08P01` for malformed and `28P01` for invalid-proof. */
  sqlstate?: string;
};

/**
 * A failed SCRAM exchange.
 *
 * `kind` says what went wrong: `"malformed"` for a message that breaks the protocol (bad syntax,
 * nonce or channel-binding mismatch, unsupported feature), `"invalid-proof"` for a wrong
 * password, a mock exchange, or a server whose signature does not match. `message` and `detail`
 * use Postgres's wording so that the gateway can relay them as a FATAL ErrorResponse with
 * `sqlstate`.
 */
export class ScramError extends Error {
  /** What went wrong; see the class doc. */
  readonly kind: ScramErrorKind;
  /** Postgres's `errdetail` for this case, if any. */
  readonly detail: string | undefined;
  /** SQLSTATE to report: `08P01` (protocol violation), `0A000` or `28P01`. */
  readonly sqlstate: string;

  constructor(kind: ScramErrorKind, message: string, options: ScramErrorOptions = {}) {
    super(message);
    this.name = "ScramError";
    this.kind = kind;
    this.detail = options.detail;
    this.sqlstate = options.sqlstate ?? (kind === "malformed" ? "08P01" : "28P01");
  }
}

/** A `"malformed SCRAM message"` error with Postgres's `detail`. */
export function malformed(detail: string): ScramError {
  return new ScramError("malformed", "malformed SCRAM message", { detail });
}
