import assert from "node:assert/strict";
import { type HeaderList, HpackDecoder } from "./hpack_decoder.ts";
import { encodeHeaderBlock } from "./hpack_encoder.ts";
import { hex } from "./_testing.ts";

Deno.test("encodeHeaderBlock() indexes whole static entries", () => {
  assert.deepEqual(
    encodeHeaderBlock([[":method", "POST"], [":scheme", "http"], [":status", "200"]]),
    hex("83 86 88"),
  );
});

Deno.test("encodeHeaderBlock() writes literals without indexing, naming static entries", () => {
  // RFC 7541 C.2.2 uses exactly this form for :path.
  assert.deepEqual(
    encodeHeaderBlock([[":path", "/sample/path"]]),
    hex("040c 2f73 616d 706c 652f 7061 7468"),
  );
  // content-type is static index 31: 0000 1111 then 31 - 15 = 16.
  assert.deepEqual(
    encodeHeaderBlock([["content-type", "application/grpc"]]),
    hex("0f10 10 6170706c69636174696f6e2f67727063"),
  );
});

Deno.test("encodeHeaderBlock() writes new names as literals without indexing, never Huffman", () => {
  assert.deepEqual(
    encodeHeaderBlock([["te", "trailers"]]),
    hex("00 02 7465 08 7472 6169 6c65 7273"),
  );
});

Deno.test("encodeHeaderBlock() encodes long lengths with continuation bytes", () => {
  const value = "x".repeat(300);
  const block = encodeHeaderBlock([["grpc-message", value]]);
  assert.deepEqual([...block.subarray(0, 17)], [
    0,
    12,
    ...new TextEncoder().encode("grpc-message"),
    0x7f,
    0xad,
    0x01,
  ]);
  assert.equal(block.length, 2 + 12 + 3 + 300);
});

Deno.test("encodeHeaderBlock() starts with a table size update when asked", () => {
  assert.deepEqual(encodeHeaderBlock([[":status", "200"]], { tableSizeUpdate: 0 }), hex("20 88"));
  assert.deepEqual(encodeHeaderBlock([], { tableSizeUpdate: 1337 }), hex("3f9a0a"));
});

Deno.test("encodeHeaderBlock() output decodes back to the same list and indexes nothing", () => {
  const list: HeaderList = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/multigres.multipooler.MultiPooler/DataPlane"],
    [":authority", "127.0.0.1:15432"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-status", "13"],
    ["grpc-message", "caf%C3%A9"],
    ["x-latin1", "\u00ff"],
  ];
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(encodeHeaderBlock(list)), list);
  assert.equal(d.tableLength, 0);
});

Deno.test("encodeHeaderBlock() refuses characters outside latin1", () => {
  assert.throws(() => encodeHeaderBlock([["x", "€"]]), RangeError);
});
