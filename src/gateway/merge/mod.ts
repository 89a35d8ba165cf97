/**
 * The merge: several shards' answers to one scattered SELECT made into the answer one Postgres
 * would give for the client's statement. Pure code, no sockets: the planner's
 * {@linkcode MergeSpec} (what each shard ran and what its hidden columns hold) and each shard's
 * answer frames in, the client's answer frames out.
 *
 * - {@linkcode Merger}: rows pushed per shard, merged rows pulled (k-way merge by the sort keys,
 *   groups and aggregates, HAVING, DISTINCT / DISTINCT ON, OFFSET and LIMIT).
 * - {@linkcode mergeAnswers}: whole answers to a unit, following a {@linkcode MergeScript}
 *   (RowDescriptions cut to the visible columns, the gateway's own messages' answers dropped).
 * - {@linkcode boundsOf}: LIMIT and OFFSET of one execution (literals or bound parameters).
 *
 * ```ts
 * import { mergeAnswers } from "./mod.ts";
 * // answers: one per shard, each up to its ReadyForQuery, to the same rewritten unit
 * // const bytes = mergeAnswers(answers, script);
 * ```
 *
 * See README.md.
 *
 * @module
 */

export { type Bounds, boundsOf, compareKeys, Merger } from "./merger.ts";
export { type DescribeStep, type ExecuteStep, mergeAnswers, type MergeScript } from "./answers.ts";
export type { MergeSpec } from "../planner/mod.ts";
