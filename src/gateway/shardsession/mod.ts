/**
 * A client session's statements across shards: the {@linkcode StatementRouter} plans each unit
 * (a Query, or extended-protocol messages up to Sync or Flush) when the session's database has
 * tables outside its default tablegroup (or the text may be DDL the gateway carries out), runs
 * it on per-shard pooler sessions ({@linkcode ShardSession}), and hands the client session one
 * answer (rows concatenated, or merged by `../merge` when the plan says how); units for the
 * default shard go back to the session's raw relay. See README.md.
 *
 * @module
 */
export { type DefaultRelay, type ShardingDeps, StatementRouter } from "./statement_router.ts";
export { ShardSession, type ShardSessionOptions } from "./shard_session.ts";
export { type Message } from "./messages.ts";
export { concatAnswers } from "./units.ts";
