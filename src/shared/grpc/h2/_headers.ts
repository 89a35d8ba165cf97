/**
 * The gRPC header blocks this room sends (built once where they do not vary) and the lookups
 * on header lists it receives.
 *
 * @module
 */

import { encodeGrpcMessage, GrpcStatus } from "./grpc_status.ts";
import type { HeaderList } from "./hpack_decoder.ts";
import { encodeHeaderBlock } from "./hpack_encoder.ts";

/** The content type of gRPC (protobuf or not: messages are bytes here). */
export const GRPC_CONTENT_TYPE = "application/grpc";
const USER_AGENT = "multigres-h2/1";

/** Request headers of a stream to `path` at `authority`. */
export function requestBlock(path: string, authority: string): Uint8Array {
  return encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", authority],
    ["content-type", GRPC_CONTENT_TYPE],
    ["te", "trailers"],
    ["user-agent", USER_AGENT],
  ]);
}

/** Response headers: `:status 200`, `content-type application/grpc`. */
export const RESPONSE_BLOCK: Uint8Array = encodeHeaderBlock([
  [":status", "200"],
  ["content-type", GRPC_CONTENT_TYPE],
]);

const OK_TRAILERS = encodeHeaderBlock([["grpc-status", "0"]]);

/**
 * Trailers with `grpc-status` and `grpc-message` (omitted when empty); with `withHeaders`, a
 * trailers-only response (`:status` and `content-type` first).
 */
export function trailersBlock(code: number, message: string, withHeaders: boolean): Uint8Array {
  if (code === GrpcStatus.OK && message === "" && !withHeaders) return OK_TRAILERS;
  const list: HeaderList = withHeaders
    ? [[":status", "200"], ["content-type", GRPC_CONTENT_TYPE]]
    : [];
  list.push(["grpc-status", String(code)]);
  if (message !== "") list.push(["grpc-message", encodeGrpcMessage(message)]);
  return encodeHeaderBlock(list);
}

/** A response of only `:status` (a request that is not gRPC: 405, 415). */
export function httpStatusBlock(status: number): Uint8Array {
  return encodeHeaderBlock([[":status", String(status)]]);
}

/** The value of the first header named `name`, or `undefined`. */
export function headerValue(headers: HeaderList, name: string): string | undefined {
  for (let i = 0; i < headers.length; i++) if (headers[i][0] === name) return headers[i][1];
  return undefined;
}

/** `content-type` is `application/grpc`, alone or followed by `+` or `;`. */
export function isGrpcContentType(value: string | undefined): boolean {
  if (value === undefined || !value.startsWith(GRPC_CONTENT_TYPE)) return false;
  const next = value.charCodeAt(GRPC_CONTENT_TYPE.length);
  return Number.isNaN(next) || next === 0x2b || next === 0x3b; // end, '+', ';'
}
