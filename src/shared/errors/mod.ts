/**
 * The one error type that crosses the PostgreSQL wire: {@linkcode PgError}, carrying a SQLSTATE,
 * a severity and the optional ErrorResponse fields, plus small constructors for the errors this
 * project makes up (worded as Postgres words them).
 *
 * Session rule: an `ERROR` becomes ErrorResponse + ReadyForQuery, a `FATAL` becomes ErrorResponse
 * and the connection closes, anything that is not a `PgError` goes through
 * {@linkcode toPgError} (XX000) and is logged.
 *
 * ```ts
 * import { PgError, SqlState, tooManyConnections } from "./mod.ts";
 *
 * const err = tooManyConnections();
 * console.log(err.sqlstate === SqlState.TOO_MANY_CONNECTIONS, err.severity); // true FATAL
 * ```
 *
 * @module
 */

import { SqlState } from "./_sqlstate.ts";

export { SqlState, type SqlStateCode } from "./_sqlstate.ts";

/** Severity of an ErrorResponse/NoticeResponse (the non-localized `V` field). */
export type Severity =
  | "ERROR"
  | "FATAL"
  | "PANIC"
  | "WARNING"
  | "NOTICE"
  | "DEBUG"
  | "INFO"
  | "LOG";

const SEVERITIES: ReadonlySet<string> = new Set([
  "ERROR",
  "FATAL",
  "PANIC",
  "WARNING",
  "NOTICE",
  "DEBUG",
  "INFO",
  "LOG",
]);

/** Whether `s` is one of the {@linkcode Severity} values. */
export function isSeverity(s: string): s is Severity {
  return SEVERITIES.has(s);
}

/** Optional parts of a {@linkcode PgError}; names follow the ErrorResponse fields. */
export interface PgErrorOptions {
  /** Default `"ERROR"`. */
  severity?: Severity;
  /** The localized `S` field when it differs from `severity` (relayed untouched). */
  severityLocalized?: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query text (`P`). */
  position?: number;
  /** Position in an internally generated query (`p`). */
  internalPosition?: number;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: number;
  routine?: string;
  /** Safe to retry elsewhere because nothing was executed. Default `false`. */
  retryable?: boolean;
  cause?: unknown;
}

/**
 * A PostgreSQL error: what an ErrorResponse (or NoticeResponse) says.
 *
 * `retryable` is independent of the SQLSTATE: it means the statement never reached a backend, so
 * running it again elsewhere cannot execute it twice.
 */
export class PgError extends Error {
  override readonly name = "PgError";
  readonly sqlstate: string;
  readonly severity: Severity;
  declare readonly severityLocalized?: string;
  declare readonly detail?: string;
  declare readonly hint?: string;
  declare readonly position?: number;
  declare readonly internalPosition?: number;
  declare readonly internalQuery?: string;
  declare readonly where?: string;
  declare readonly schema?: string;
  declare readonly table?: string;
  declare readonly column?: string;
  declare readonly dataType?: string;
  declare readonly constraint?: string;
  declare readonly file?: string;
  declare readonly line?: number;
  declare readonly routine?: string;
  readonly retryable: boolean;

  constructor(sqlstate: string, message: string, opts?: PgErrorOptions) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.sqlstate = sqlstate;
    this.severity = opts?.severity ?? "ERROR";
    this.retryable = opts?.retryable ?? false;
    if (opts === undefined) return;
    if (opts.severityLocalized !== undefined) this.severityLocalized = opts.severityLocalized;
    if (opts.detail !== undefined) this.detail = opts.detail;
    if (opts.hint !== undefined) this.hint = opts.hint;
    if (opts.position !== undefined) this.position = opts.position;
    if (opts.internalPosition !== undefined) this.internalPosition = opts.internalPosition;
    if (opts.internalQuery !== undefined) this.internalQuery = opts.internalQuery;
    if (opts.where !== undefined) this.where = opts.where;
    if (opts.schema !== undefined) this.schema = opts.schema;
    if (opts.table !== undefined) this.table = opts.table;
    if (opts.column !== undefined) this.column = opts.column;
    if (opts.dataType !== undefined) this.dataType = opts.dataType;
    if (opts.constraint !== undefined) this.constraint = opts.constraint;
    if (opts.file !== undefined) this.file = opts.file;
    if (opts.line !== undefined) this.line = opts.line;
    if (opts.routine !== undefined) this.routine = opts.routine;
  }

  /** Whether the connection must be closed after sending this error (FATAL or PANIC). */
  get fatal(): boolean {
    return this.severity === "FATAL" || this.severity === "PANIC";
  }
}

/** FATAL 08P01: the peer broke the protocol. */
export function protocolViolation(message: string, opts?: PgErrorOptions): PgError {
  return new PgError(SqlState.PROTOCOL_VIOLATION, message, {
    ...opts,
    severity: opts?.severity ?? "FATAL",
  });
}

/** FATAL 28P01 `password authentication failed for user "<user>"`. */
export function invalidPassword(user: string): PgError {
  return new PgError(
    SqlState.INVALID_PASSWORD,
    `password authentication failed for user "${user}"`,
    { severity: "FATAL" },
  );
}

/** FATAL 3D000 `database "<db>" does not exist`. */
export function unknownDatabase(db: string): PgError {
  return new PgError(SqlState.INVALID_CATALOG_NAME, `database "${db}" does not exist`, {
    severity: "FATAL",
  });
}

/** FATAL 53300 `sorry, too many clients already`. */
export function tooManyConnections(): PgError {
  return new PgError(SqlState.TOO_MANY_CONNECTIONS, "sorry, too many clients already", {
    severity: "FATAL",
  });
}

/** FATAL 57P01 `terminating connection due to administrator command`. */
export function adminShutdown(): PgError {
  return new PgError(
    SqlState.ADMIN_SHUTDOWN,
    "terminating connection due to administrator command",
    { severity: "FATAL" },
  );
}

/** ERROR 57014 `canceling statement due to user request`. */
export function queryCanceled(): PgError {
  return new PgError(SqlState.QUERY_CANCELED, "canceling statement due to user request");
}

/** ERROR XX000 with `message`. */
export function internalError(message: string, opts?: PgErrorOptions): PgError {
  return new PgError(SqlState.INTERNAL_ERROR, message, opts);
}

/** ERROR 08006 with `message` (e.g. a backend connection broke). */
export function connectionFailure(message: string, opts?: PgErrorOptions): PgError {
  return new PgError(SqlState.CONNECTION_FAILURE, message, opts);
}

/** ERROR 0A000 with `message`. */
export function featureNotSupported(message: string, opts?: PgErrorOptions): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, message, opts);
}

/**
 * Any thrown value as a {@linkcode PgError}: a `PgError` is returned as is; anything else
 * becomes ERROR XX000 with its message and the original value as `cause`.
 */
export function toPgError(e: unknown): PgError {
  if (e instanceof PgError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new PgError(SqlState.INTERNAL_ERROR, message, { cause: e });
}

/** The same error with another severity (e.g. an ERROR that must end the session as FATAL). */
export function withSeverity(err: PgError, severity: Severity): PgError {
  if (err.severity === severity) return err;
  const { sqlstate: _s, severity: _v, retryable, message: _m, name: _n, ...fields } = err;
  return new PgError(err.sqlstate, err.message, {
    ...(fields as PgErrorOptions),
    severityLocalized: undefined,
    severity,
    retryable,
  });
}
