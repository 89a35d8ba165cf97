/**
 * PostgreSQL v3 protocol constants: message type bytes, startup-phase request codes,
 * transaction status bytes, authentication subtypes and ErrorResponse field codes.
 *
 * @module
 */

/** Type byte of messages sent by the client. */
export const FrontendCode = {
  Query: 0x51, // 'Q'
  Parse: 0x50, // 'P'
  Bind: 0x42, // 'B'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Close: 0x43, // 'C'
  Sync: 0x53, // 'S'
  Flush: 0x48, // 'H'
  Terminate: 0x58, // 'X'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  /** Also SASLInitialResponse, SASLResponse and GSSResponse. */
  Password: 0x70, // 'p'
  FunctionCall: 0x46, // 'F'
} as const;

/** Type byte of messages sent by the server. */
export const BackendCode = {
  Authentication: 0x52, // 'R'
  ParameterStatus: 0x53, // 'S'
  BackendKeyData: 0x4b, // 'K'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
  DataRow: 0x44, // 'D'
  CommandComplete: 0x43, // 'C'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParseComplete: 0x31, // '1'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  NoData: 0x6e, // 'n'
  PortalSuspended: 0x73, // 's'
  ParameterDescription: 0x74, // 't'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  NegotiateProtocolVersion: 0x76, // 'v'
  FunctionCallResponse: 0x56, // 'V'
} as const;

/** Protocol version 3.0 as sent in a StartupMessage (major 3 << 16 | minor 0). */
export const PROTOCOL_VERSION_3 = 196608;
/** SSLRequest code (1234 << 16 | 5679). */
export const SSL_REQUEST_CODE = 80877103;
/** CancelRequest code (1234 << 16 | 5678). */
export const CANCEL_REQUEST_CODE = 80877102;
/** GSSENCRequest code (1234 << 16 | 5680). */
export const GSSENC_REQUEST_CODE = 80877104;

/** Transaction status byte of ReadyForQuery. */
export const TxStatus = {
  Idle: 0x49, // 'I'
  InTransaction: 0x54, // 'T'
  Failed: 0x45, // 'E'
} as const;

/** Subtype (first int32) of an Authentication message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  Md5Password: 5,
  Gss: 7,
  GssContinue: 8,
  Sspi: 9,
  Sasl: 10,
  SaslContinue: 11,
  SaslFinal: 12,
} as const;

/** Field type bytes of ErrorResponse and NoticeResponse. */
export const ErrorField = {
  Severity: 0x53, // 'S' (possibly localized)
  SeverityNonLocalized: 0x56, // 'V'
  Code: 0x43, // 'C'
  Message: 0x4d, // 'M'
  Detail: 0x44, // 'D'
  Hint: 0x48, // 'H'
  Position: 0x50, // 'P'
  InternalPosition: 0x70, // 'p'
  InternalQuery: 0x71, // 'q'
  Where: 0x57, // 'W'
  Schema: 0x73, // 's'
  Table: 0x74, // 't'
  Column: 0x63, // 'c'
  DataType: 0x64, // 'd'
  Constraint: 0x6e, // 'n'
  File: 0x46, // 'F'
  Line: 0x4c, // 'L'
  Routine: 0x52, // 'R'
} as const;
