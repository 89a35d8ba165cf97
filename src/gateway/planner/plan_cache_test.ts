import assert from "node:assert/strict";
import { PlanCache } from "./plan_cache.ts";
import type { Plan } from "./types.ts";

const A: Plan = { kind: "default" };
const B: Plan = { kind: "scatter", tablegroup: "tg", write: false };

Deno.test("PlanCache.get() returns the plan set for the same text and version", () => {
  const cache = new PlanCache();
  assert.equal(cache.get("select 1", 1), undefined);
  cache.set("select 1", 1, A);
  assert.equal(cache.get("select 1", 1), A);
  assert.equal(cache.get("select 2", 1), undefined);
  assert.equal(cache.size, 1);
});

Deno.test("PlanCache.get() misses and drops a plan of another layout version", () => {
  const cache = new PlanCache();
  cache.set("select 1", 1, A);
  assert.equal(cache.get("select 1", 2), undefined);
  assert.equal(cache.size, 0);
  assert.equal(cache.get("select 1", 1), undefined);
  cache.set("select 1", 2, B);
  assert.equal(cache.get("select 1", 2), B);
});

Deno.test("PlanCache.set() replaces the plan of a text", () => {
  const cache = new PlanCache();
  cache.set("q", 1, A);
  cache.set("q", 2, B);
  assert.equal(cache.size, 1);
  assert.equal(cache.get("q", 2), B);
});

Deno.test("PlanCache.set() evicts the least recently used entry beyond maxEntries", () => {
  const cache = new PlanCache({ maxEntries: 2 });
  cache.set("a", 1, A);
  cache.set("b", 1, A);
  assert.equal(cache.get("a", 1), A); // a is now the most recent
  cache.set("c", 1, B);
  assert.equal(cache.size, 2);
  assert.equal(cache.get("b", 1), undefined);
  assert.equal(cache.get("a", 1), A);
  assert.equal(cache.get("c", 1), B);
});

Deno.test("PlanCache keeps 1000 entries by default", () => {
  const cache = new PlanCache();
  for (let i = 0; i < 1500; i++) cache.set(`select ${i}`, 1, A);
  assert.equal(cache.size, 1000);
  assert.equal(cache.get("select 499", 1), undefined);
  assert.equal(cache.get("select 500", 1), A);
});

Deno.test("PlanCache.set() does not cache texts longer than maxTextLength", () => {
  const cache = new PlanCache({ maxTextLength: 10 });
  cache.set("select 1234567", 1, A);
  assert.equal(cache.size, 0);
  cache.set("select 1", 1, A);
  assert.equal(cache.size, 1);
});

Deno.test("PlanCache.clear() drops every entry", () => {
  const cache = new PlanCache();
  cache.set("a", 1, A);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get("a", 1), undefined);
});
