import type { ClientTransport } from "./transport.ts";

/** Writes all of `bytes` to `conn`. */
export async function writeAll(conn: ClientTransport, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}
