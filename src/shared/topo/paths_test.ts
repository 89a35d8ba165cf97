import assert from "node:assert/strict";
import { TopoPaths, validateName } from "./paths.ts";

const paths = new TopoPaths("prod");

Deno.test("TopoPaths.cell() is /multigres/<cluster>/global/<cell>", () => {
  assert.equal(paths.cell("zone1"), "/multigres/prod/global/zone1");
});

Deno.test("TopoPaths.cellLocalTopo() is the cell path plus /local-toposerver", () => {
  assert.equal(paths.cellLocalTopo("zone1"), "/multigres/prod/global/zone1/local-toposerver");
});

Deno.test("TopoPaths.database() is /multigres/<cluster>/global/databases/<db>", () => {
  assert.equal(paths.database("app"), "/multigres/prod/global/databases/app");
  assert.equal(paths.databasesPrefix, "/multigres/prod/global/databases/");
  assert.ok(paths.database("app").startsWith(paths.databasesPrefix));
});

Deno.test("TopoPaths.globalRoot is /multigres/<cluster>/global/", () => {
  assert.equal(paths.globalRoot, "/multigres/prod/global/");
});

Deno.test("TopoPaths.pooler() is /multigres/<cluster>/<cell>/poolers/<id>", () => {
  assert.equal(paths.pooler("zone1", "pooler-1"), "/multigres/prod/zone1/poolers/pooler-1");
  assert.equal(paths.poolersPrefix("zone1"), "/multigres/prod/zone1/poolers/");
  assert.equal(paths.cellRoot("zone1"), "/multigres/prod/zone1");
});

Deno.test("TopoPaths.gateway() is /multigres/<cluster>/<cell>/gateways/<id>", () => {
  assert.equal(paths.gateway("zone2", "gw_a"), "/multigres/prod/zone2/gateways/gw_a");
  assert.equal(paths.gatewaysPrefix("zone2"), "/multigres/prod/zone2/gateways/");
});

Deno.test("TopoPaths.orch() is /multigres/<cluster>/<cell>/orchs/<id>", () => {
  assert.equal(paths.orch("zone1", "orch.1"), "/multigres/prod/zone1/orchs/orch.1");
  assert.equal(paths.orchsPrefix("zone1"), "/multigres/prod/zone1/orchs/");
});

Deno.test("TopoPaths.pooler() keeps each cluster's records apart", () => {
  const other = new TopoPaths("staging");
  assert.notEqual(other.pooler("zone1", "p"), paths.pooler("zone1", "p"));
  assert.equal(other.pooler("zone1", "p"), "/multigres/staging/zone1/poolers/p");
});

/** Asserts that `fn` throws an Error whose message names the bad value. */
function assertRejects(fn: () => unknown, bad: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(
      e.message.includes(JSON.stringify(bad)),
      `message ${JSON.stringify(e.message)} should name ${JSON.stringify(bad)}`,
    );
    return true;
  });
}

Deno.test("TopoPaths constructor rejects a cluster name with a slash or an empty one", () => {
  assertRejects(() => new TopoPaths("a/b"), "a/b");
  assertRejects(() => new TopoPaths(""), "");
});

Deno.test("TopoPaths.cell() rejects a name with a slash, an empty name and dot-dot tricks", () => {
  assertRejects(() => paths.cell("zone1/poolers"), "zone1/poolers");
  assertRejects(() => paths.cell(""), "");
  assertRejects(() => paths.cell("../x"), "../x");
  assertRejects(() => paths.cell(" zone1"), " zone1");
});

Deno.test('TopoPaths.cell() rejects "databases", which would collide with the databases prefix', () => {
  assert.throws(() => paths.cell("databases"), /Invalid cell name "databases": it is reserved/);
  assert.throws(() => paths.cellLocalTopo("databases"), /reserved/);
  assert.throws(() => paths.pooler("databases", "p1"), /reserved/);
});

Deno.test('TopoPaths.database() accepts "databases" as a database name', () => {
  assert.equal(paths.database("databases"), "/multigres/prod/global/databases/databases");
});

Deno.test("TopoPaths.database() rejects a name with a slash or an empty one", () => {
  assertRejects(() => paths.database("a/b"), "a/b");
  assertRejects(() => paths.database(""), "");
});

Deno.test("TopoPaths.pooler() rejects a bad id and a bad cell", () => {
  assertRejects(() => paths.pooler("zone1", "p/1"), "p/1");
  assertRejects(() => paths.pooler("zone1", ""), "");
  assertRejects(() => paths.pooler("zo/ne", "p1"), "zo/ne");
  assertRejects(() => paths.gateway("zone1", "g/1"), "g/1");
  assertRejects(() => paths.orch("zone1", ""), "");
});

Deno.test("validateName() says what kind of name is wrong", () => {
  assert.throws(
    () => validateName("pooler id", "a b"),
    { message: 'Invalid pooler id name "a b": use letters, digits, _ . and -' },
  );
  validateName("cell", "zone-1_a.b");
});

Deno.test("TopoPaths.cellsFromKeys() lists cells, skipping databases and sub-keys", () => {
  const keys = [
    "/multigres/prod/global/zone2",
    "/multigres/prod/global/zone1",
    "/multigres/prod/global/zone1/local-toposerver",
    "/multigres/prod/global/databases/app",
    "/multigres/prod/global/databases",
    "/multigres/prod/zone3/poolers/p1",
    "/multigres/other/global/zone9",
  ];
  assert.deepEqual(paths.cellsFromKeys(keys), ["zone1", "zone2"]);
});

Deno.test("TopoPaths.cellsFromKeys() lists each cell once, sorted, from any iterable", () => {
  const keys = new Set([
    "/multigres/prod/global/b/local-toposerver",
    "/multigres/prod/global/b",
    "/multigres/prod/global/a",
  ]);
  assert.deepEqual(paths.cellsFromKeys(keys), ["a", "b"]);
  assert.deepEqual(paths.cellsFromKeys([]), []);
});

Deno.test("TopoPaths.cellsFromKeys() reads back the cells that cell() wrote", () => {
  const cells = ["zone1", "zone2", "eu-west.a"];
  const keys = cells.flatMap((c) => [paths.cell(c), paths.cellLocalTopo(c)]);
  keys.push(paths.database("app"), paths.database("zone1"));
  assert.deepEqual(paths.cellsFromKeys(keys), [...cells].sort());
});
