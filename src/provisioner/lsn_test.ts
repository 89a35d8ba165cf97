import assert from "node:assert/strict";
import { lsnBytes } from "./local_cluster.ts";

Deno.test("lsnBytes reads Postgres WAL positions, so lag is a byte difference", () => {
  assert.equal(lsnBytes("0/0"), 0n);
  assert.equal(lsnBytes("0/3000148"), 0x3000148n);
  assert.equal(lsnBytes("1/0"), 1n << 32n);
  assert.equal(lsnBytes("16/B374D848")! - lsnBytes("16/B374D800")!, 0x48n);
  assert.equal(lsnBytes(""), null);
  assert.equal(lsnBytes("not/an-lsn"), null);
});
