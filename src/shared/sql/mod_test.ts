import assert from "node:assert/strict";
import { literal, quoteIdent } from "./mod.ts";

Deno.test("literal() doubles quotes, and writes backslashes in the escape form", () => {
  assert.equal(literal("it's"), "'it''s'");
  assert.equal(literal("a\\b'c"), "E'a\\\\b''c'");
});

Deno.test("quoteIdent() double-quotes and doubles inner double quotes", () => {
  assert.equal(quoteIdent('My "T"'), '"My ""T"""');
});
