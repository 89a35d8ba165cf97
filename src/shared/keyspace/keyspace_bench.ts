/**
 * Benchmarks of {@linkcode keyspaceId} on the routing hot path (one call per routed statement):
 * int8 and text keys in text form, and the binary forms, each over 1,000 prepared values so the
 * loop is not measuring one cached input (divide the times by 1,000 for one call). The obvious
 * alternative, asking a shard (`select hashint8extended($1, 0)`), costs a network round trip;
 * these stay well under a microsecond per value.
 *
 * ```sh
 * deno bench src/shared/keyspace/keyspace_bench.ts
 * ```
 *
 * @module
 */

import { keyspaceId, keyspaceIdBinary } from "./mod.ts";

const N = 1000;
const int8Texts: string[] = [];
const int8Binary: Uint8Array[] = [];
const shortTexts: string[] = [];
const longTexts: string[] = [];
const uuids: string[] = [];
const numerics: string[] = [];
let x = 0x9e3779b9;
function next(): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}
for (let i = 0; i < N; i++) {
  const v = BigInt.asIntN(64, (BigInt(next()) << 32n) | BigInt(next()));
  int8Texts.push(i % 2 === 0 ? `${v}` : `${next() % 1_000_000}`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, v);
  int8Binary.push(b);
  shortTexts.push(`user-${next().toString(36)}`);
  longTexts.push(`${next().toString(36)}-😀-${"é".repeat(20)}-${next().toString(36)}`);
  const h = [next(), next(), next(), next()].map((w) => w.toString(16).padStart(8, "0")).join("");
  uuids.push(
    `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
  );
  numerics.push(`${next()}.${next() % 100}`);
}

let sink = 0n;

Deno.bench("keyspaceId int8 (text form)", { group: "int8", baseline: true }, () => {
  for (let i = 0; i < N; i++) sink ^= keyspaceId("int8", int8Texts[i]);
});

Deno.bench("keyspaceIdBinary int8", { group: "int8" }, () => {
  for (let i = 0; i < N; i++) sink ^= keyspaceIdBinary("int8", int8Binary[i]);
});

Deno.bench("keyspaceId text, short ASCII", { group: "text", baseline: true }, () => {
  for (let i = 0; i < N; i++) sink ^= keyspaceId("text", shortTexts[i]);
});

Deno.bench("keyspaceId text, non-ASCII", { group: "text" }, () => {
  for (let i = 0; i < N; i++) sink ^= keyspaceId("text", longTexts[i]);
});

Deno.bench("keyspaceId uuid", { group: "other" }, () => {
  for (let i = 0; i < N; i++) sink ^= keyspaceId("uuid", uuids[i]);
});

Deno.bench("keyspaceId numeric", { group: "other" }, () => {
  for (let i = 0; i < N; i++) sink ^= keyspaceId("numeric", numerics[i]);
});

globalThis.addEventListener("unload", () => {
  if (sink === 1n) console.log("(unlikely)");
});
