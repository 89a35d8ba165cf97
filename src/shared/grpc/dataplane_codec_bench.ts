/**
 * 100 data-plane messages of 10 small requests each (what one gRPC message carried per turn at 50
 * pgbench clients), encoded then decoded: protobufjs through proto-loader's object conversion
 * (what grpc-js did before), against the hand-written codec. Payload lengths are summed after
 * `b.end()`.
 *
 * ```sh
 * deno bench -A src/shared/grpc/dataplane_codec_bench.ts
 * ```
 *
 * @module
 */
import * as protoLoader from "@grpc/proto-loader";
import { LOADER_OPTIONS, protoDir } from "./_load.ts";
import { decodeDataPlaneRequest, encodeDataPlaneRequest } from "./dataplane_codec.ts";
import type { DataPlaneRequest } from "./types.ts";

const def = protoLoader.loadSync("multipoolerservice.proto", {
  ...LOADER_OPTIONS,
  includeDirs: [protoDir()],
});
// deno-lint-ignore no-explicit-any
const method = (def["multigres.multipooler.MultiPooler"] as any).DataPlane;

const query = new TextEncoder().encode(
  "Q\0\0\0\x3dSELECT abalance FROM pgbench_accounts WHERE aid = 4242;\0",
);
const msg: DataPlaneRequest = {
  requests: Array.from({ length: 10 }, (_, i) => ({
    sessionId: 1000 + i,
    op: "EXECUTE" as const,
    user: "",
    database: "",
    startup: {},
    payload: query,
  })),
};

function check(m: DataPlaneRequest): void {
  let n = 0;
  for (const r of m.requests) n += r.payload.length;
  if (n !== query.length * 10) throw new Error(`checksum ${n}`);
}

Deno.bench("100 data-plane messages ×10 requests: protobufjs via proto-loader", {
  group: "dataplane",
  baseline: true,
}, (b) => {
  let out = msg;
  b.start();
  for (let i = 0; i < 100; i++) out = method.requestDeserialize(method.requestSerialize(msg));
  b.end();
  check(out);
});

Deno.bench(
  "100 data-plane messages ×10 requests: hand-written codec",
  { group: "dataplane" },
  (b) => {
    let out = msg;
    b.start();
    for (let i = 0; i < 100; i++) out = decodeDataPlaneRequest(encodeDataPlaneRequest(msg));
    b.end();
    check(out);
  },
);
