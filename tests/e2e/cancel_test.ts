import assert from "node:assert/strict";
import { WireWriter, writeCancelRequest } from "../../src/shared/wire/mod.ts";
import { alive } from "../../src/provisioner/mod.ts";
import { E2E, psql, startCluster, startExtraGateway } from "../helpers/cluster.ts";

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
      const gw2 = await startExtraGateway(c, 50);
      const port2 = gw2.port;
      try {
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
        await gw2.stop();
        assert.ok(!alive(gw2.pid));
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
