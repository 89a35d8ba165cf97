import assert from "node:assert/strict";
import { ErrorCode } from "./constants.ts";
import { H2Error } from "./h2_error.ts";
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from "./huffman.ts";
import { hex } from "./_testing.ts";

const text = (s: string) => new TextEncoder().encode(s);

// The Huffman-coded strings of RFC 7541 Appendix C.4 and C.6.
const VECTORS: [string, string][] = [
  ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
  ["no-cache", "a8eb 1064 9cbf"],
  ["custom-key", "25a8 49e9 5ba9 7d7f"],
  ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
  ["302", "6402"],
  ["private", "aec3 771a 4b"],
  ["Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"],
  ["https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"],
  ["307", "640e ff"],
  ["gzip", "9bd9 ab"],
  [
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ],
];

function assertCompressionError(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof H2Error && e.code === ErrorCode.COMPRESSION_ERROR);
}

Deno.test("huffmanDecode() decodes the RFC 7541 Appendix C strings", () => {
  for (const [plain, coded] of VECTORS) {
    assert.deepEqual(huffmanDecode(hex(coded)), text(plain), plain);
  }
});

Deno.test("huffmanEncode() produces the RFC 7541 Appendix C strings", () => {
  for (const [plain, coded] of VECTORS) {
    assert.deepEqual(huffmanEncode(text(plain)), hex(coded), plain);
    assert.equal(huffmanEncodedLength(text(plain)), hex(coded).length, plain);
  }
});

Deno.test("huffmanDecode() round-trips every byte value, alone and together", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  for (const b of all) {
    assert.deepEqual(huffmanDecode(huffmanEncode(all.subarray(b, b + 1))), all.subarray(b, b + 1));
  }
  assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  const reversed = all.slice().reverse();
  assert.deepEqual(huffmanDecode(huffmanEncode(reversed)), reversed);
});

Deno.test("huffmanDecode() of nothing is nothing", () => {
  assert.deepEqual(huffmanDecode(new Uint8Array(0)), new Uint8Array(0));
});

Deno.test("huffmanDecode() rejects a whole EOS symbol", () => {
  assertCompressionError(() => huffmanDecode(hex("ffff ffff"))); // 30 ones + 2 padding bits
});

Deno.test("huffmanDecode() rejects padding that is not all ones", () => {
  assertCompressionError(() => huffmanDecode(hex("18"))); // "a" (00011), then 000
});

Deno.test("huffmanDecode() rejects padding longer than 7 bits", () => {
  assertCompressionError(() => huffmanDecode(hex("6402 ff"))); // "302" then a byte of ones
});
