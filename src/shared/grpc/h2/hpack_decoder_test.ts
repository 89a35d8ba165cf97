import assert from "node:assert/strict";
import { ErrorCode } from "./constants.ts";
import { H2Error } from "./h2_error.ts";
import { type HeaderList, HpackDecoder } from "./hpack_decoder.ts";
import { hex } from "./_testing.ts";

function assertCompressionError(fn: () => unknown, match: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof H2Error);
    assert.equal(e.code, ErrorCode.COMPRESSION_ERROR);
    assert.match(e.message, match);
    return true;
  });
}

Deno.test("HpackDecoder: RFC 7541 C.2.1 literal with indexing adds to the dynamic table", () => {
  const d = new HpackDecoder();
  const block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
  assert.deepEqual(d.decode(block), [["custom-key", "custom-header"]]);
  assert.equal(d.tableSize, 55);
  assert.deepEqual(d.decode(hex("be")), [["custom-key", "custom-header"]]); // index 62
});

Deno.test("HpackDecoder: RFC 7541 C.2.2 literal without indexing leaves the table empty", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468")), [[
    ":path",
    "/sample/path",
  ]]);
  assert.equal(d.tableLength, 0);
});

Deno.test("HpackDecoder: RFC 7541 C.2.3 never-indexed literal leaves the table empty", () => {
  const d = new HpackDecoder();
  const block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
  assert.deepEqual(d.decode(block), [["password", "secret"]]);
  assert.equal(d.tableLength, 0);
});

Deno.test("HpackDecoder: RFC 7541 C.2.4 indexed field", () => {
  assert.deepEqual(new HpackDecoder().decode(hex("82")), [[":method", "GET"]]);
});

const REQUESTS: HeaderList[] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ],
  [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ],
];

Deno.test("HpackDecoder: RFC 7541 C.3 requests without Huffman share a dynamic table", () => {
  const d = new HpackDecoder();
  const blocks = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
  ];
  const sizes = [57, 110, 164];
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(d.decode(hex(blocks[i])), REQUESTS[i]);
    assert.equal(d.tableSize, sizes[i]);
  }
});

Deno.test("HpackDecoder: RFC 7541 C.4 requests with Huffman share a dynamic table", () => {
  const d = new HpackDecoder();
  const blocks = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
  ];
  const sizes = [57, 110, 164];
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(d.decode(hex(blocks[i])), REQUESTS[i]);
    assert.equal(d.tableSize, sizes[i]);
  }
});

const RESPONSES: HeaderList[] = [
  [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ],
  [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["location", "https://www.example.com"],
    ["content-encoding", "gzip"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ],
];

Deno.test("HpackDecoder: RFC 7541 C.5 responses without Huffman evict from a 256-byte table", () => {
  const d = new HpackDecoder(256);
  const blocks = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
  ];
  const sizes = [222, 222, 215];
  const lengths = [4, 4, 3];
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(d.decode(hex(blocks[i])), RESPONSES[i]);
    assert.equal(d.tableSize, sizes[i]);
    assert.equal(d.tableLength, lengths[i]);
  }
});

Deno.test("HpackDecoder: RFC 7541 C.6 responses with Huffman evict from a 256-byte table", () => {
  const d = new HpackDecoder(256);
  const blocks = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ];
  const sizes = [222, 222, 215];
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(d.decode(hex(blocks[i])), RESPONSES[i]);
    assert.equal(d.tableSize, sizes[i]);
  }
});

Deno.test("HpackDecoder reads RFC 7541 C.1 integers (1337 with a 5-bit prefix)", () => {
  // A table size update to 1337 (001 + 11111, then 154, 10) followed by an indexed field.
  const d = new HpackDecoder(4096);
  assert.deepEqual(d.decode(hex("3f9a0a 82")), [[":method", "GET"]]);
  assert.equal(d.maxTableSize, 1337);
});

Deno.test("HpackDecoder applies a table size update: shrinking evicts, 0 empties", () => {
  const d = new HpackDecoder();
  d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
  assert.equal(d.tableLength, 1);
  d.decode(hex("20")); // size update to 0
  assert.equal(d.tableLength, 0);
  assert.equal(d.maxTableSize, 0);
  assertCompressionError(() => d.decode(hex("be")), /beyond the dynamic table/);
});

Deno.test("HpackDecoder rejects a table size update above its limit or after a field", () => {
  assertCompressionError(() => new HpackDecoder(4096).decode(hex("3fe21f")), /exceeds 4096/);
  assertCompressionError(() => new HpackDecoder().decode(hex("82 20")), /after a header field/);
});

Deno.test("HpackDecoder drops an entry larger than the whole table and empties it", () => {
  const d = new HpackDecoder(40);
  d.decode(hex("4001 61 0162")); // a: b (34 octets)
  assert.equal(d.tableLength, 1);
  d.decode(hex("4001 61 0a 30313233343536373839")); // a: 0123456789 (43 > 40)
  assert.equal(d.tableLength, 0);
  assert.equal(d.tableSize, 0);
});

Deno.test("HpackDecoder rejects index 0, unknown indexes and truncated blocks", () => {
  assertCompressionError(() => new HpackDecoder().decode(hex("80")), /index 0/);
  assertCompressionError(() => new HpackDecoder().decode(hex("be")), /beyond/);
  assertCompressionError(() => new HpackDecoder().decode(hex("0f")), /truncated/);
  assertCompressionError(() => new HpackDecoder().decode(hex("040c 2f73")), /truncated/);
  assertCompressionError(() => new HpackDecoder().decode(hex("ff ffffffff0f")), /too large/);
});

Deno.test("HpackDecoder returns names and values as latin1, one char per octet", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("0001 78 02 c3a9")), [["x", "\u00c3\u00a9"]]);
});

Deno.test("HpackDecoder rejects a header list above maxListSize (references to a big entry)", () => {
  const d = new HpackDecoder(4096, 1000);
  const value = "v".repeat(400);
  // a: v×400 added to the table (433 octets), then referenced twice more: 1299 > 1000.
  const literal = [0x40, 1, 0x61, 0x7f, 0x91, 0x02, ...new TextEncoder().encode(value)];
  assert.throws(
    () => d.decode(new Uint8Array([...literal, 0xbe, 0xbe])),
    (e: unknown) => e instanceof H2Error && e.code === ErrorCode.ENHANCE_YOUR_CALM,
  );
  const ok = new HpackDecoder(4096, 1000).decode(new Uint8Array([...literal, 0xbe]));
  assert.equal(ok.length, 2);
});
