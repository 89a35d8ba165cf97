import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { WireWriter, writeCancelRequest } from "../../src/shared/wire/mod.ts";
import { alive, stopPid } from "../../src/provisioner/mod.ts";
import { E2E, eventually, psql, startCluster } from "../helpers/cluster.ts";

const GATEWAY = fileURLToPath(new URL("../../src/gateway/main.ts", import.meta.url));

Deno.test("cancel requests and statement_timeout", E2E, async (t) => {
  const c = await startCluster(1500);
  const sql = c.sql({ max: 1 });
  try {
    await t.step("npm:postgres query.cancel() → 57014, and the session goes on", async () => {
      const q = sql`select pg_sleep(30)`;
      setTimeout(() => q.cancel(), 300);
      await assert.rejects(q, (e: Error & { code?: string }) => {
        assert.equal(e.code, "57014");
        assert.match(e.message, /canceling statement due to user request/);
        return true;
      });
      const [r] = await sql`select 'after cancel' as v`;
      assert.equal(r.v, "after cancel");
    });

    await t.step("statement_timeout cancels a long statement", async () => {
      const r = await psql(c.port, [
        "-c",
        "set statement_timeout = '200ms'",
        "-c",
        "select pg_sleep(5)",
      ], c.password);
      assert.match(r.stderr, /canceling statement due to statement timeout/);
    });

    await t.step("a CancelRequest sent to another gateway reaches the session", async () => {
      // A second gateway in the same cell, on ports of its own.
      const port2 = c.port + 50;
      const gw2 = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          GATEWAY,
          "--cluster=e2e",
          "--cell=zone1",
          `--topo-global-address=${c.cluster.topoAddress}`,
          "--id=zone1-gateway-2",
          `--pg-port=${port2}`,
          `--http-port=${c.cluster.ports.gatewayHttp + 50}`,
          `--grpc-port=${c.cluster.ports.gatewayGrpc + 50}`,
          ...c.cluster.grpcFlags("multigateway"),
        ],
        stdout: "null",
        stderr: "null",
        stdin: "null",
      }).spawn();
      try {
        const up = await eventually(async () =>
          (await psql(port2, ["-tAc", "select 1"], c.password)).stdout.trim() === "1"
        );
        assert.ok(up, "the second gateway did not come up");
        // The session lives on the first gateway; npm:pg keeps the key it was given.
        const key = await backendKey(c.port, c.password);
        // Watched from the start: the cancel may land before the read below returns.
        const slow = assert.rejects(
          key.conn.query("select pg_sleep(30)"),
          (e: Error & { code?: string }) => e.code === "57014",
        );
        await new Promise((r) => setTimeout(r, 300));
        const cc = await Deno.connect({ hostname: "127.0.0.1", port: port2 });
        const w = new WireWriter();
        writeCancelRequest(w, key.pid, key.secret);
        await cc.write(w.view());
        assert.equal(await cc.read(new Uint8Array(8)), null);
        cc.close();
        await slow;
        await key.conn.end();
      } finally {
        const pid = gw2.pid;
        await stopPid(pid);
        assert.ok(!alive(pid));
        await gw2.status;
      }
    });
  } finally {
    await sql.end();
    await c.stop();
  }
});

/** An npm:pg connection and the BackendKeyData the gateway gave it. */
async function backendKey(port: number, password: string) {
  const pg = (await import("pg")).default;
  const conn = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password });
  await conn.connect();
  // deno-lint-ignore no-explicit-any
  const internal = conn as any;
  return { conn, pid: internal.processID as number, secret: internal.secretKey as number };
}
