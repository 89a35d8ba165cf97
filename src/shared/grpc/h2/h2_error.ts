/**
 * {@linkcode H2Error}: an HTTP/2 connection error, carrying the code the connection is closed
 * with (sent in GOAWAY).
 *
 * @module
 */

import { ErrorCode, errorCodeName } from "./constants.ts";

/** An HTTP/2 protocol violation; `code` is an {@linkcode ErrorCode}. */
export class H2Error extends Error {
  /** The HTTP/2 error code (`ErrorCode`). */
  readonly code: number;

  constructor(code: number, message: string) {
    super(`${errorCodeName(code)}: ${message}`);
    this.name = "H2Error";
    this.code = code;
  }
}

/** A PROTOCOL_ERROR about `what`. */
export function protocolError(what: string): H2Error {
  return new H2Error(ErrorCode.PROTOCOL_ERROR, what);
}

/** A FRAME_SIZE_ERROR: a frame of this type has an impossible length. */
export function frameSizeError(frameType: string): H2Error {
  return new H2Error(ErrorCode.FRAME_SIZE_ERROR, `invalid ${frameType} frame length`);
}
