import assert from "node:assert/strict";
import { decodeGrpcMessage, encodeGrpcMessage, GrpcStatus, statusFromHttp } from "./grpc_status.ts";

Deno.test("encodeGrpcMessage() percent-encodes %, controls and non-ASCII as UTF-8", () => {
  assert.equal(encodeGrpcMessage("plain text: ok"), "plain text: ok");
  assert.equal(encodeGrpcMessage("100% café\n"), "100%25 caf%C3%A9%0A");
});

Deno.test("decodeGrpcMessage() reverses encodeGrpcMessage()", () => {
  for (const s of ["", "plain", "100% café\n", "日本語", "%", "a%zz"]) {
    assert.equal(decodeGrpcMessage(encodeGrpcMessage(s)), s);
  }
});

Deno.test("decodeGrpcMessage() keeps malformed escapes and invalid UTF-8 as they came", () => {
  assert.equal(decodeGrpcMessage("50%"), "50%");
  assert.equal(decodeGrpcMessage("a%zzb"), "a%zzb");
  assert.equal(decodeGrpcMessage("%FF"), "%FF");
});

Deno.test("statusFromHttp() maps HTTP statuses as gRPC documents", () => {
  assert.equal(statusFromHttp(404), GrpcStatus.UNIMPLEMENTED);
  assert.equal(statusFromHttp(503), GrpcStatus.UNAVAILABLE);
  assert.equal(statusFromHttp(401), GrpcStatus.UNAUTHENTICATED);
  assert.equal(statusFromHttp(418), GrpcStatus.UNKNOWN);
});
