// TypeScript shapes of the proto messages, as @grpc/proto-loader hands them over with our
// options (camelCase fields, enums as strings, int64 as number, bytes as Uint8Array).

export type PoolerType = "POOLER_TYPE_UNSPECIFIED" | "PRIMARY" | "REPLICA";
export type DurabilityPolicyKind = "DURABILITY_POLICY_KIND_UNSPECIFIED" | "AT_LEAST_N";

export interface DurabilityPolicy {
  kind: DurabilityPolicyKind;
  n: number;
}

export interface CellRecord {
  name: string;
  localTopoAddress: string;
  root: string;
}

export interface DatabaseRecord {
  name: string;
  durabilityPolicy?: DurabilityPolicy | null;
  backupLocation: string;
  cells: string[];
}

export interface PoolerRecord {
  id: string;
  cell: string;
  addr: string;
  httpAddr: string;
  database: string;
  tablegroup: string;
  shard: string;
  type: PoolerType;
  term: number;
  serving: boolean;
  postgresAddr: string;
  /** DataPlane on the lean h2 transport (host:port); empty or absent: on `addr` (grpc-js). */
  dataPlaneAddr?: string;
}

export interface GatewayRecord {
  id: string;
  cell: string;
  grpcAddr: string;
  pgAddr: string;
  httpAddr: string;
  pidPrefix: number;
}

export interface OrchRecord {
  id: string;
  cell: string;
  grpcAddr: string;
  httpAddr: string;
}

export interface ShardRule {
  term: number;
  leaderId: string;
  cohort: string[];
  durabilityPolicy?: DurabilityPolicy | null;
}

export interface KeyRange {
  start: string;
  end: string;
}

export interface ShardLayout {
  name: string;
  keyRange?: KeyRange | null;
}

export interface TableGroupLayout {
  name: string;
  shards: ShardLayout[];
}

export interface TableLayout {
  /** Qualified: `schema.table`. */
  name: string;
  tablegroup: string;
  /** Empty for a table of an unsharded tablegroup. */
  shardingColumn: string;
  shardingType: string;
  /** 1-based; 0 when unknown. */
  shardingPosition?: number;
}

export interface DatabaseLayout {
  name: string;
  tablegroups: TableGroupLayout[];
  tables?: TableLayout[];
  /** The owning role on the default database's server. */
  owner?: string;
}

// ---- multipooler ----

export type SessionOp =
  | "SESSION_OP_UNSPECIFIED"
  | "OPEN"
  | "EXECUTE"
  | "CLOSE"
  | "ACK"
  | "CANCEL";

export interface SessionRequest {
  sessionId: number;
  op: SessionOp;
  user: string;
  database: string;
  startup: Record<string, string>;
  payload: Uint8Array;
  /** With ACK: bytes of results the gateway wrote to its client since its last ACK. */
  acked?: number;
  /**
   * With CLOSE: why the session ends (CloseReason); statements already sent run to their end.
   * With PROTOCOL_ERROR and MALFORMED, `payload` holds the offending message's first bytes.
   */
  reason?: number;
  /** With OPEN: a read-only session served by a replica. */
  replica?: boolean;
  /** With OPEN: the session's pid as its client knows it (BackendKeyData). */
  clientPid?: number;
}

/** The DataPlane method's gRPC path (served by grpc-js and by grpc/h2). */
export const DATA_PLANE_PATH = "/multigres.multipooler.MultiPooler/DataPlane";

/** Largest piece of payload in one data-plane request or response; bigger ones are split. */
export const MAX_PAYLOAD_PIECE = 1024 * 1024;
/** A batch is sent as soon as it holds this many payload bytes. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Unacknowledged result bytes per session above which the pooler pauses that backend. */
export const FLOW_WINDOW_BYTES = 2 * 1024 * 1024;
/** The gateway acknowledges once this many bytes were written to the client. */
export const FLOW_ACK_BYTES = 512 * 1024;

export interface SessionResponse {
  sessionId: number;
  payload: Uint8Array;
  done: boolean;
  reserved: number;
  closed: boolean;
  /** Request bytes of this session written to Postgres since the last acknowledgement. */
  acked?: number;
  /** With `done`: DoneFlag bits. */
  flags?: number;
  /** With `done`: EXECUTE requests of this session the pooler has taken so far. */
  settled?: number;
}

/**
 * CloseReason (multipoolerdata.proto): how a client session ended, which decides what its
 * backend is told, as Postgres itself would have reacted to the same ending.
 */
export const CloseReason = {
  /** The client is gone (reset, write error): results are dropped. */
  GONE: 0,
  /** The client sent Terminate: results still flow until the pooler answers `closed`. */
  TERMINATE: 1,
  /** The client shut down its write side (EOF): results flow until `closed`. */
  EOF: 2,
  /** The gateway closes the session on a protocol violation after the answers before it. */
  PROTOCOL_ERROR: 3,
  /** The gateway's link to the pooler ends: statements running are cancelled. */
  SHUTDOWN: 4,
  /**
   * A message length Postgres refuses: like PROTOCOL_ERROR, but the connection closes without
   * a word (Postgres only logs it), so nothing Postgres had not flushed reaches the client.
   */
  MALFORMED: 5,
} as const;

/**
 * Whether the gateway still wants a session's answers after closing it with `reason` (then
 * `closed`): Terminate, EOF and the protocol violations (PROTOCOL_ERROR, MALFORMED).
 */
export function isDraining(reason: number): boolean {
  return reason === CloseReason.TERMINATE || reason === CloseReason.EOF ||
    reason === CloseReason.PROTOCOL_ERROR || reason === CloseReason.MALFORMED;
}

/** DoneFlag (multipoolerdata.proto). */
export const DoneFlag = {
  /** The session cannot move to another pooler (it holds state there). */
  STATEFUL: 1,
  /** With `closed`: the request was not run; a session that is not STATEFUL may resend it elsewhere. */
  RETRY: 2,
  /**
   * With `closed` after a PROTOCOL_ERROR or MALFORMED close: Postgres itself answered the
   * client's offending bytes (a COPY FROM under way judges them), so the gateway adds no error of
   * its own.
   */
  ANSWERED: 4,
} as const;

export interface DataPlaneRequest {
  requests: SessionRequest[];
}

export interface DataPlaneResponse {
  responses: SessionResponse[];
}

/** Bits of SessionResponse.reserved. */
export const ReservationReason = {
  TRANSACTION: 1,
  TEMP_TABLE: 2,
  PORTAL: 4,
  COPY: 8,
  LISTEN: 16,
  ADVISORY_LOCK: 32,
  PREPARED_STATE: 64,
  SESSION: 128,
} as const;

export interface HealthStatus {
  poolerId: string;
  type: PoolerType;
  term: number;
  serving: boolean;
  postgresUp: boolean;
  lsn: string;
  timestampMs: number;
  database: string;
  tablegroup: string;
  shard: string;
}

export interface GetAuthCredentialsResponse {
  exists: boolean;
  verifier: string;
  canLogin: boolean;
  validUntil: string;
  expired: boolean;
  // The fields below come with a request that names a database; absent: not known.
  superuser?: boolean;
  /** rolconnlimit (-1: none). */
  roleConnLimit?: number;
  /** Every role the user is a member of, directly or indirectly, and itself. */
  memberOf?: string[];
  databaseExists?: boolean;
  databaseAllowsConnections?: boolean;
  /** has_database_privilege(user, database, 'CONNECT'). */
  canConnect?: boolean;
  /** datconnlimit (-1: none). */
  databaseConnLimit?: number;
}

export type MetadataChange =
  | "METADATA_CHANGE_CREATE_DATABASE"
  | "METADATA_CHANGE_DROP_DATABASE"
  | "METADATA_CHANGE_RENAME_DATABASE"
  | "METADATA_CHANGE_CREATE_TABLEGROUP"
  | "METADATA_CHANGE_DROP_TABLEGROUP"
  | "METADATA_CHANGE_ADD_TABLE"
  | "METADATA_CHANGE_DROP_TABLE"
  | "METADATA_CHANGE_UPDATE_TABLE";

export interface ChangeMetadataRequest {
  change: MetadataChange;
  user: string;
  database: string;
  name: string;
  newName?: string;
  shards?: string[];
  tablegroup?: string;
  shardingColumn?: string;
  shardingType?: string;
  cascade?: boolean;
  ifExists?: boolean;
  shardingPosition?: number;
}

/**
 * Every gid Multigres prepares a transaction under is this prefix and 32 hex digits; the
 * recovery ends no other (a client's own prepared transactions are the client's).
 */
export const TWO_PHASE_GID_PREFIX = "multigres_2pc_";
/** What a gid of Multigres's looks like (see {@linkcode TWO_PHASE_GID_PREFIX}). */
export const TWO_PHASE_GID = /^multigres_2pc_[0-9a-f]{32}$/;

/** Two-phase commit across shards (MultiPooler.DecideTwoPhase and friends). */
export type TwoPhaseDecision = "TWO_PHASE_DECISION_COMMIT" | "TWO_PHASE_DECISION_ABORT";

export interface TwoPhaseDecisionRecord {
  gid: string;
  decision: TwoPhaseDecision;
  /** "database/tablegroup/shard" of every participant (empty for the recovery's aborts). */
  participants: string[];
  ageSeconds: number;
}

/** A transaction Multigres prepared on a primary (MultiPooler.ListPrepared). */
export interface PreparedTransaction {
  gid: string;
  database: string;
  ageSeconds: number;
}

export interface GetMetadataResponse {
  databases: DatabaseLayout[];
  defaultDatabase: string;
}

export interface PoolerStatusResponse {
  pooler?: PoolerRecord | null;
  rule?: ShardRule | null;
  postgresUp: boolean;
  sessions: number;
  backendsInUse: number;
  backendsIdle: number;
  /** WAL position written (primary) or replayed (replica) at the last probe; "" if unknown. */
  lsn: string;
}

// ---- pgctld ----

export type ServerState =
  | "SERVER_STATE_UNSPECIFIED"
  | "NOT_INITIALIZED"
  | "STOPPED"
  | "STARTING"
  | "RUNNING"
  | "STOPPING"
  | "CRASHED";

export type StopMode = "STOP_MODE_UNSPECIFIED" | "SMART" | "FAST" | "IMMEDIATE";

export interface PgctldStatusResponse {
  state: ServerState;
  pid: number;
  dataDir: string;
  port: number;
  socketDir: string;
  version: string;
  lastExit: string;
}

// ---- multiorch ----

export interface ShardStatus {
  database: string;
  tablegroup: string;
  shard: string;
  primary: string;
  term: number;
  replicas: string[];
  durabilityPolicy?: DurabilityPolicy | null;
}

export interface OrchStatusResponse {
  id: string;
  cell: string;
  shards: ShardStatus[];
}

// ---- multigateway ----

export interface GatewayStatusResponse {
  id: string;
  cell: string;
  sessions: number;
  primaries: Record<string, string>;
}
