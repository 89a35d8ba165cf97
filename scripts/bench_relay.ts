/**
 * The floor of one Deno hop, for `deno task bench --floor`: a TCP relay that copies bytes both
 * ways between each accepted connection and a new connection to the target, with no parsing,
 * no batching and no state: `Deno.listen`/`Deno.connect`, TCP_NODELAY, one read and one write
 * per chunk. Whatever a gateway or pooler hop costs beyond this is ours; this much is Deno's and
 * the kernel's.
 *
 * Usage: `deno run -A scripts/bench_relay.ts LISTEN_PORT TARGET_PORT` (both on 127.0.0.1).
 *
 * @module
 */

const [listenPort, targetPort] = Deno.args.map(Number);
if (!listenPort || !targetPort) {
  console.error("usage: bench_relay.ts LISTEN_PORT TARGET_PORT");
  Deno.exit(2);
}

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
    }
  } catch {
    // either side closed: close both
  }
  for (const c of [from, to]) {
    try {
      c.close();
    } catch {
      // already closed by the other direction
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: listenPort });
for await (const client of listener) {
  client.setNoDelay(true);
  Deno.connect({ hostname: "127.0.0.1", port: targetPort }).then((server) => {
    server.setNoDelay(true);
    pipe(client, server);
    pipe(server, client);
  }, () => client.close());
}
