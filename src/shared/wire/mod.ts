/**
 * PostgreSQL v3 wire codec, both directions, built for the hot path: a reused receive buffer
 * that cuts frames without allocating per frame ({@linkcode FrameReader}), a reused growable
 * writer that builds frames in place ({@linkcode WireWriter}), frame writers
 * (`writeQuery`, `writeErrorResponse`, …), body parsers (`parseStartupPacket`, …), constant
 * frames (`READY_IDLE`, `SYNC`, …) and the protocol codes.
 *
 * It knows nothing about routing: sessions decide what a frame means. See README.md.
 *
 * ```ts
 * import { FrameReader, FrontendCode, parseQuery, WireWriter, writeQuery } from "./mod.ts";
 *
 * const w = writeQuery(new WireWriter(), "SELECT 1");
 * const r = new FrameReader();
 * r.push(w.view());
 * while (r.next()) {
 *   if (r.code === FrontendCode.Query) console.log(parseQuery(r.body)); // SELECT 1
 * }
 * ```
 *
 * @module
 */

export * from "./codes.ts";
export * from "./reader.ts";
export * from "./writer.ts";
export * from "./messages.ts";
export * from "./slab.ts";
