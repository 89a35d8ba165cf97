import assert from "node:assert/strict";
import { decodeRecord, encodeRecord } from "./records.ts";

const POOLER = {
  id: "zone1-pooler-1",
  cell: "zone1",
  addr: "127.0.0.1:15270",
  httpAddr: "127.0.0.1:15200",
  database: "postgres",
  tablegroup: "default",
  shard: "0-inf",
  type: "PRIMARY",
  term: 7,
  serving: true,
  postgresAddr: "127.0.0.1:25432",
  dataPlaneAddr: "127.0.0.1:15280",
};

Deno.test("encodeRecord() then decodeRecord() gives a Pooler back unchanged", () => {
  const json = encodeRecord("Pooler", POOLER);
  assert.deepEqual(decodeRecord("Pooler", json), POOLER);
});

Deno.test("encodeRecord() writes a Pooler as readable proto3 JSON with camelCase keys", () => {
  // proto3 JSON writes 64-bit integers (the term) as strings.
  assert.deepEqual(JSON.parse(encodeRecord("Pooler", POOLER)), { ...POOLER, term: "7" });
});

Deno.test("decodeRecord() accepts the proto field names too (postgres_addr)", () => {
  const rec = decodeRecord<{ postgresAddr: string; httpAddr: string }>(
    "Pooler",
    '{"postgres_addr":"127.0.0.1:25432","http_addr":"127.0.0.1:15200"}',
  );
  assert.equal(rec.postgresAddr, "127.0.0.1:25432");
  assert.equal(rec.httpAddr, "127.0.0.1:15200");
});

Deno.test('encodeRecord() writes enums by name ("type":"PRIMARY"), also when given a number', () => {
  assert.ok(encodeRecord("Pooler", POOLER).includes('"type":"PRIMARY"'));
  assert.equal(encodeRecord("Pooler", { type: 2 }), '{"type":"REPLICA"}');
  assert.equal(
    encodeRecord("Database", { durabilityPolicy: { kind: 1, n: 2 } }),
    '{"durabilityPolicy":{"kind":"AT_LEAST_N","n":2}}',
  );
});

Deno.test("encodeRecord() leaves unset fields out", () => {
  assert.equal(encodeRecord("Pooler", { id: "p1" }), '{"id":"p1"}');
  assert.equal(encodeRecord("Orch", {}), "{}");
});

Deno.test("encodeRecord() drops fields the message does not define", () => {
  const json = encodeRecord("Cell", {
    name: "zone1",
    root: "/multigres/local/zone1",
    password: "hunter2",
    extra: { nested: true },
  });
  assert.deepEqual(JSON.parse(json), { name: "zone1", root: "/multigres/local/zone1" });
});

Deno.test("encodeRecord() then decodeRecord() gives a Cell back unchanged", () => {
  const cell = {
    name: "zone1",
    localTopoAddress: "127.0.0.1:2379,127.0.0.2:2379",
    root: "/multigres/local/zone1",
  };
  const json = encodeRecord("Cell", cell);
  assert.equal(
    json,
    '{"name":"zone1","localTopoAddress":"127.0.0.1:2379,127.0.0.2:2379",' +
      '"root":"/multigres/local/zone1"}',
  );
  assert.deepEqual(decodeRecord("Cell", json), cell);
});

Deno.test("encodeRecord() then decodeRecord() gives a Database back unchanged", () => {
  const db = {
    name: "app",
    durabilityPolicy: { kind: "AT_LEAST_N", n: 2 },
    backupLocation: "s3://bucket/app",
    cells: ["zone1", "zone2"],
  };
  const json = encodeRecord("Database", db);
  assert.deepEqual(JSON.parse(json), db);
  assert.deepEqual(decodeRecord("Database", json), db);
});

Deno.test("decodeRecord() fills proto defaults for missing fields", () => {
  assert.deepEqual(decodeRecord("Pooler", '{"id":"p1"}'), {
    id: "p1",
    cell: "",
    addr: "",
    httpAddr: "",
    database: "",
    tablegroup: "",
    shard: "",
    type: "POOLER_TYPE_UNSPECIFIED",
    term: 0,
    serving: false,
    postgresAddr: "",
    dataPlaneAddr: "",
  });
  assert.deepEqual(decodeRecord("Database", '{"name":"app"}'), {
    name: "app",
    durabilityPolicy: null,
    backupLocation: "",
    cells: [],
  });
  assert.deepEqual(decodeRecord("Cell", "{}"), { name: "", localTopoAddress: "", root: "" });
});

Deno.test("decodeRecord() drops fields the message does not define", () => {
  const rec = decodeRecord<Record<string, unknown>>(
    "Orch",
    '{"id":"o1","cell":"zone1","grpcAddr":"h:1","httpAddr":"h:2","leader":true}',
  );
  assert.deepEqual(rec, { id: "o1", cell: "zone1", grpcAddr: "h:1", httpAddr: "h:2" });
  assert.equal("leader" in rec, false);
});

Deno.test("decodeRecord() reads enums by name and by number, and int64 as a number", () => {
  const rec = decodeRecord<{ type: string; term: number }>(
    "Pooler",
    '{"type":"REPLICA","term":"12"}',
  );
  assert.equal(rec.type, "REPLICA");
  assert.equal(rec.term, 12);
  assert.equal(decodeRecord<{ type: string }>("Pooler", '{"type":1}').type, "PRIMARY");
});

Deno.test("encodeRecord() then decodeRecord() keeps a Gateway's full uint32 PID prefix", () => {
  const gw = {
    id: "gw1",
    cell: "zone1",
    grpcAddr: "127.0.0.1:15170",
    pgAddr: "127.0.0.1:15432",
    httpAddr: "127.0.0.1:15100",
    pidPrefix: 0xffffffff,
  };
  assert.deepEqual(decodeRecord("Gateway", encodeRecord("Gateway", gw)), gw);
});

Deno.test("decodeRecord() throws on text that is not JSON", () => {
  assert.throws(() => decodeRecord("Cell", "not json"), SyntaxError);
});
