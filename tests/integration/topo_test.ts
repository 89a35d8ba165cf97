// Integration tests of src/shared/topo against a real etcd 3.4 (127.0.0.1, ports 26150-26151).
//
// Every test starts its own etcd on a fresh temp data directory and stops it in a finally block,
// and closes every TopoServer/Topo it opens, so Deno's op and resource sanitizers stay on.

import assert from "node:assert/strict";
import { type EtcdHandle, startEtcd } from "../helpers/etcd.ts";
import {
  decodeRecord,
  encodeRecord,
  Topo,
  TopoPaths,
  TopoServer,
} from "../../src/shared/topo/mod.ts";
import type { CellRecord, PoolerRecord } from "../../src/shared/grpc/types.ts";

const CLIENT_PORT = 26150;
const PEER_PORT = 26151;
const TOPO_MOD_URL = new URL("../../src/shared/topo/mod.ts", import.meta.url).href;
const REPO_ROOT = new URL("../../", import.meta.url);

/** Runs `fn` against a fresh etcd; stops it and removes its data whatever happens. */
async function withEtcd(fn: (etcd: EtcdHandle) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "topo_test_" });
  let etcd: EtcdHandle | undefined;
  try {
    etcd = await startEtcd({
      clientPort: CLIENT_PORT,
      peerPort: PEER_PORT,
      dataDir: `${root}/etcd`,
    });
    await fn(etcd);
  } finally {
    await etcd?.stop();
    await Deno.remove(root, { recursive: true });
  }
}

/** Polls `check` every 100 ms until it is true or `timeoutMs` passed; returns the last answer. */
async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // etcd may be briefly unreachable (restart): keep polling.
    }
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Collects every snapshot a watch hands out. */
function snapshots<T>() {
  const seen: T[] = [];
  return {
    seen,
    onChange: (s: T) => void seen.push(s),
    last: (): T | undefined => seen[seen.length - 1],
  };
}

Deno.test({
  name: "TopoServer put/get/list/delete/create round-trip through etcd",
  fn: () =>
    withEtcd(async (etcd) => {
      const topo = new TopoServer(etcd.address);
      try {
        assert.equal(await topo.get("/t/a"), null);
        await topo.put("/t/a", "1");
        await topo.put("/t/b", "2");
        await topo.put("/u/c", "3");
        assert.equal(await topo.get("/t/a"), "1");

        const listed = await topo.list("/t/");
        assert.deepEqual(Object.fromEntries(listed), { "/t/a": "1", "/t/b": "2" });

        await topo.put("/t/a", "one");
        assert.equal(await topo.get("/t/a"), "one");

        await topo.delete("/t/a");
        assert.equal(await topo.get("/t/a"), null);
        assert.deepEqual([...(await topo.list("/t/")).keys()], ["/t/b"]);

        assert.equal(await topo.create("/t/new", "first"), true);
        assert.equal(
          await topo.create("/t/new", "second"),
          false,
          "create refuses an existing key",
        );
        assert.equal(await topo.get("/t/new"), "first");
        assert.equal(await topo.create("/t/b", "x"), false);
        assert.equal(await topo.get("/t/b"), "2");
      } finally {
        topo.close();
      }
      assert.equal(topo.closed, true);
    }),
});

Deno.test({
  name: "TopoServer.register() writes a leased key that update() rewrites and revoke() removes",
  fn: () =>
    withEtcd(async (etcd) => {
      const topo = new TopoServer(etcd.address);
      try {
        const reg = topo.register("/reg/me", "v1", 2);
        await reg.ready();
        assert.equal(await topo.get("/reg/me"), "v1");

        const lease = await topo.client.get("/reg/me").exec();
        assert.notEqual(String(lease.kvs[0].lease), "0", "the key is attached to a lease");

        await reg.update("v2");
        assert.equal(await topo.get("/reg/me"), "v2");

        // Kept alive past its TTL by this process.
        await sleep(3000);
        assert.equal(await topo.get("/reg/me"), "v2");

        await reg.revoke();
        assert.equal(await topo.get("/reg/me"), null);
      } finally {
        topo.close();
      }
    }),
});

Deno.test({
  name: "A registration of a process killed with SIGKILL disappears once its lease expires",
  fn: () =>
    withEtcd(async (etcd) => {
      const dir = await Deno.makeTempDir({ prefix: "topo_test_child_" });
      const topo = new TopoServer(etcd.address);
      let child: Deno.ChildProcess | undefined;
      try {
        const script = `${dir}/register.ts`;
        await Deno.writeTextFile(
          script,
          [
            `import { TopoServer } from ${JSON.stringify(TOPO_MOD_URL)};`,
            `const topo = new TopoServer(${JSON.stringify(etcd.address)});`,
            `await topo.register("/killed/child", "alive", 2).ready();`,
            `console.log("ready");`,
            `await new Promise(() => setInterval(() => {}, 60_000));`,
          ].join("\n"),
        );
        child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--config", new URL("deno.json", REPO_ROOT).pathname, script],
          cwd: REPO_ROOT.pathname,
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const stderr = new Response(child.stderr).text();
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        const readyBy = Date.now() + 30_000;
        while (!out.includes("ready\n") && Date.now() < readyBy) {
          const { value, done } = await reader.read();
          if (done) break;
          out += value;
        }
        if (!out.includes("ready\n")) {
          child.kill("SIGKILL");
          await child.status;
          reader.releaseLock();
          await child.stdout.cancel().catch(() => {});
          assert.fail(`child never registered: ${out}${await stderr}`);
        }
        assert.equal(await topo.get("/killed/child"), "alive");

        child.kill("SIGKILL");
        const status = await child.status;
        assert.equal(status.signal, "SIGKILL");
        await reader.cancel().catch(() => {});
        await stderr;
        child = undefined;

        // TTL 2 s; etcd checks expiries every 500 ms. 10 s is a generous bound, not a timing.
        const gone = await eventually(
          async () => (await topo.get("/killed/child")) === null,
          10_000,
        );
        assert.ok(gone, "the dead process's registration is gone");
      } finally {
        if (child) {
          try {
            child.kill("SIGKILL");
          } catch {
            // Already dead.
          }
          await child.status;
        }
        topo.close();
        await Deno.remove(dir, { recursive: true });
      }
    }),
});

Deno.test({
  name: "TopoServer.watchPrefix() hands out the full snapshot after put and after delete",
  fn: () =>
    withEtcd(async (etcd) => {
      const topo = new TopoServer(etcd.address);
      const writer = new TopoServer(etcd.address);
      await writer.put("/w/a", "1");
      await writer.put("/other/z", "9");
      const snaps = snapshots<Map<string, string>>();
      // A long resync interval, so that what arrives comes from the watch stream.
      const watch = topo.watchPrefix("/w/", snaps.onChange, { resyncMs: 60_000 });
      try {
        assert.ok(await eventually(() => snaps.last()?.size === 1, 5000), "initial snapshot");
        assert.deepEqual(Object.fromEntries(snaps.last()!), { "/w/a": "1" });

        await writer.put("/w/b", "2");
        assert.ok(await eventually(() => snaps.last()?.size === 2, 5000), "snapshot after put");
        assert.deepEqual(Object.fromEntries(snaps.last()!), { "/w/a": "1", "/w/b": "2" });

        await writer.delete("/w/a");
        assert.ok(
          await eventually(() => snaps.last()?.size === 1 && snaps.last()!.has("/w/b"), 5000),
          "snapshot after delete",
        );
        assert.deepEqual(Object.fromEntries(snaps.last()!), { "/w/b": "2" });

        // Keys outside the prefix never show up.
        assert.ok(snaps.seen.every((s) => ![...s.keys()].some((k) => !k.startsWith("/w/"))));
      } finally {
        await watch.stop();
        topo.close();
        writer.close();
      }
    }),
});

Deno.test({
  name: "A registration and a prefix watch survive an etcd restart",
  fn: () =>
    withEtcd(async (etcd) => {
      const topo = new TopoServer(etcd.address);
      const snaps = snapshots<Map<string, string>>();
      const reg = topo.register("/r/pooler", "p1", 2);
      // A long resync interval, so that what arrives after the restart comes from the watch.
      const watch = topo.watchPrefix("/r/", snaps.onChange, { resyncMs: 60_000 });
      try {
        await reg.ready();
        assert.ok(await eventually(() => snaps.last()?.has("/r/pooler") ?? false, 5000));

        await etcd.restart();

        // Back after the restart, and still there well past the TTL: kept alive or re-granted.
        assert.ok(
          await eventually(async () => (await topo.get("/r/pooler")) === "p1", 15_000),
          "the registration is present after the restart",
        );
        await sleep(3 * 2000);
        assert.equal(await topo.get("/r/pooler"), "p1", "the registration outlives its TTL");

        await topo.put("/r/after", "x");
        assert.ok(
          await eventually(() => snaps.last()?.get("/r/after") === "x", 10_000),
          "the watch delivers a put made after the restart",
        );
        await topo.delete("/r/after");
        assert.ok(
          await eventually(() => snaps.last()?.has("/r/after") === false, 10_000),
          "the watch delivers a delete made after the restart",
        );
        assert.equal(snaps.last()?.get("/r/pooler"), "p1");
      } finally {
        await watch.stop();
        await reg.revoke();
        topo.close();
      }
    }),
});

Deno.test({
  name: "Topo.connect() waits for a cell record written a moment later",
  fn: () =>
    withEtcd(async (etcd) => {
      const paths = new TopoPaths("c1");
      const writer = new TopoServer(etcd.address);
      try {
        const connecting = Topo.connect({
          globalAddress: etcd.address,
          cluster: "c1",
          cell: "zone1",
          waitMs: 10_000,
        });
        await sleep(700);
        const cell: CellRecord = {
          name: "zone1",
          localTopoAddress: etcd.address,
          root: paths.cellRoot("zone1"),
        };
        await writer.put(paths.cell("zone1"), encodeRecord("Cell", cell));
        const topo = await connecting;
        try {
          assert.equal(topo.cell, "zone1");
          assert.equal(topo.paths.cluster, "c1");
          assert.equal(topo.local, topo.global, "one etcd serves both topos");
        } finally {
          topo.close();
        }
      } finally {
        writer.close();
      }
    }),
});

Deno.test({
  name: "Topo.connect() fails with one line naming the cell when its record never appears",
  fn: () =>
    withEtcd(async (etcd) => {
      await assert.rejects(
        Topo.connect({ globalAddress: etcd.address, cluster: "c1", cell: "nowhere", waitMs: 500 }),
        (e: Error) => {
          assert.match(e.message, /\bnowhere\b/);
          assert.match(e.message, /c1/);
          assert.match(e.message, /is not registered/);
          assert.doesNotMatch(e.message, /\n/);
          return true;
        },
      );
    }),
});

Deno.test({
  name: "Topo.registerPooler() is seen by listPoolers() and watchPoolers() with enum names",
  fn: () =>
    withEtcd(async (etcd) => {
      const paths = new TopoPaths("c1");
      const seed = new TopoServer(etcd.address);
      await seed.put(
        paths.cell("zone1"),
        encodeRecord("Cell", {
          name: "zone1",
          localTopoAddress: etcd.address,
          root: paths.cellRoot("zone1"),
        }),
      );
      seed.close();

      const topo = await Topo.connect({
        globalAddress: etcd.address,
        cluster: "c1",
        cell: "zone1",
        waitMs: 5000,
      });
      const seen = snapshots<PoolerRecord[]>();
      const watch = topo.watchPoolers(seen.onChange);
      const rec: PoolerRecord = {
        id: "pooler-1",
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
      const reg = topo.registerPooler(rec);
      try {
        await reg.ready();

        const raw = await topo.local.get(paths.pooler("zone1", "pooler-1"));
        assert.ok(raw);
        assert.equal(JSON.parse(raw).type, "PRIMARY", "stored as proto3 JSON with enum names");
        assert.deepEqual(decodeRecord<PoolerRecord>("Pooler", raw), rec);

        assert.deepEqual(await topo.listPoolers(), [rec]);
        assert.ok(await eventually(() => seen.last()?.length === 1, 5000), "watch sees it");
        assert.deepEqual(seen.last(), [rec]);

        await reg.update(encodeRecord("Pooler", { ...rec, type: "REPLICA", serving: false }));
        assert.ok(await eventually(() => seen.last()?.[0]?.type === "REPLICA", 5000));
        assert.deepEqual(seen.last(), [{ ...rec, type: "REPLICA", serving: false }]);

        await reg.revoke();
        assert.ok(await eventually(() => seen.last()?.length === 0, 5000), "watch sees it go");
        assert.deepEqual(await topo.listPoolers(), []);
      } finally {
        await watch.stop();
        await reg.revoke();
        topo.close();
      }
    }),
});

Deno.test({
  name: "Topo.clusterSecret() gives every component of a cluster the same secret, made once",
  fn: () =>
    withEtcd(async (etcd) => {
      const paths = new TopoPaths("c2");
      const writer = new TopoServer(etcd.address);
      const topos: Topo[] = [];
      try {
        for (const zone of ["zone1", "zone2"]) {
          const cell: CellRecord = {
            name: zone,
            localTopoAddress: etcd.address,
            root: paths.cellRoot(zone),
          };
          await writer.put(paths.cell(zone), encodeRecord("Cell", cell));
        }
        // Two components in two cells ask at the same moment: one secret is made.
        for (const cell of ["zone1", "zone2"]) {
          topos.push(await Topo.connect({ globalAddress: etcd.address, cluster: "c2", cell }));
        }
        const [a, b] = await Promise.all(topos.map((t) => t.clusterSecret("mock-auth")));
        assert.equal(a.length, 32);
        assert.deepEqual(a, b);
        assert.deepEqual(await topos[0].clusterSecret("mock-auth"), a, "kept");
        assert.notDeepEqual(await topos[0].clusterSecret("other"), a, "one per name");
      } finally {
        for (const t of topos) t.close();
        writer.close();
      }
    }),
});
