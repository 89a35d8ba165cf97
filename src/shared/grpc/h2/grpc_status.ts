/**
 * gRPC status codes, the {@linkcode StreamStatus} a stream ends with, {@linkcode GrpcError}, and
 * the percent-encoding of `grpc-message`.
 *
 * @module
 */

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** How a stream ended: the gRPC status code and message (from the trailers, or made up here). */
export interface StreamStatus {
  /** A {@linkcode GrpcStatus} code. */
  code: number;
  /** `grpc-message`, decoded; "" when none. */
  message: string;
  /** What made this side fail the stream (a socket error, an exception of a handler), if any. */
  cause?: unknown;
}

/** An error that ends a stream with a gRPC status. */
export class GrpcError extends Error {
  /** A {@linkcode GrpcStatus} code. */
  readonly code: number;

  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GrpcError";
    this.code = code;
  }
}

/** The status of a stream whose response had HTTP status `status` instead of 200. */
export function statusFromHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const HEX = "0123456789ABCDEF";
const HEX_PAIR = /^[0-9a-fA-F]{2}$/;

/**
 * Percent-encodes a status message for `grpc-message`: UTF-8, with `%` and every byte outside
 * printable ASCII as `%XX`.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const b of encoder.encode(message)) {
    out += b < 0x20 || b > 0x7e || b === 0x25
      ? "%" + HEX[b >> 4] + HEX[b & 15]
      : String.fromCharCode(b);
  }
  return out;
}

/** Decodes `grpc-message`; a value that does not decode to UTF-8 is returned as it came. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes = new Uint8Array(value.length);
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length) {
      const hex = value.substring(i + 1, i + 3);
      if (HEX_PAIR.test(hex)) {
        bytes[n++] = parseInt(hex, 16);
        i += 2;
        continue;
      }
    }
    bytes[n++] = c & 0xff;
  }
  try {
    return decoder.decode(bytes.subarray(0, n));
  } catch {
    return value; // not UTF-8 after decoding: show the raw value rather than mojibake
  }
}
