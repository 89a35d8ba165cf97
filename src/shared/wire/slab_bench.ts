/**
 * Copying a small request (the gateway copies every client request it forwards; the pooler every
 * result it batches): into a fresh ArrayBuffer with `slice()`, against a view of a shared
 * {@linkcode Slab}. Each batch copies 1,000 frames of 120 bytes and checks a byte sum after
 * `b.end()`.
 *
 * ```sh
 * deno bench -A src/shared/wire/slab_bench.ts
 * ```
 *
 * @module
 */
import { Slab } from "./slab.ts";

const frame = new Uint8Array(120).map((_, i) => i);
const COPIES = 1000;

function check(copies: Uint8Array[]): void {
  let sum = 0;
  for (const c of copies) sum += c[119];
  if (sum !== 119 * COPIES) throw new Error(`checksum ${sum}`);
}

Deno.bench("copy 1,000 × 120 B requests: slice() (new ArrayBuffer each)", {
  group: "copy",
  baseline: true,
}, (b) => {
  const out: Uint8Array[] = new Array(COPIES);
  b.start();
  for (let i = 0; i < COPIES; i++) out[i] = frame.slice();
  b.end();
  check(out);
});

Deno.bench("copy 1,000 × 120 B requests: Slab.copy() (views of 64 KiB chunks)", {
  group: "copy",
}, (b) => {
  const slab = new Slab();
  const out: Uint8Array[] = new Array(COPIES);
  b.start();
  for (let i = 0; i < COPIES; i++) out[i] = slab.copy(frame);
  b.end();
  check(out);
});
