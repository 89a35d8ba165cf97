/**
 * HTTP/2 protocol codes (RFC 9113): frame types, flags, settings, error codes, and the sizes
 * this room uses by default.
 *
 * @module
 */

/** Frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags; which one a bit means depends on the frame type. */
export const FrameFlag = {
  /** DATA, HEADERS: the sender's last frame on the stream. */
  END_STREAM: 0x1,
  /** SETTINGS, PING: an acknowledgement. */
  ACK: 0x1,
  /** HEADERS, CONTINUATION: the header block ends here. */
  END_HEADERS: 0x4,
  /** DATA, HEADERS: a pad length byte and padding surround the payload. */
  PADDED: 0x8,
  /** HEADERS: 5 bytes of priority precede the header block. */
  PRIORITY: 0x20,
} as const;

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes of RST_STREAM and GOAWAY (RFC 9113 §7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES: string[] = Object.keys(ErrorCode);

/** The name of an error code (`PROTOCOL_ERROR`), or `0x…` for an unknown one. */
export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

/** Every frame starts with 9 bytes: length (24), type (8), flags (8), stream id (31). */
export const FRAME_HEADER_SIZE = 9;
/** Initial flow-control window of a connection and of a stream. */
export const DEFAULT_WINDOW_SIZE = 65_535;
/** SETTINGS_MAX_FRAME_SIZE until the peer says otherwise; also the smallest allowed value. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** Largest allowed SETTINGS_MAX_FRAME_SIZE. */
export const MAX_FRAME_SIZE_LIMIT = 16_777_215;
/** Largest flow-control window. */
export const MAX_WINDOW_SIZE = 2_147_483_647;
/** HPACK dynamic table size until SETTINGS_HEADER_TABLE_SIZE says otherwise. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/** The client connection preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (24 bytes). */
export const CLIENT_PREFACE: Uint8Array = new TextEncoder().encode(
  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
);
