/**
 * A raw client connection logged in with our own SCRAM client code, for tests and the bench that
 * need the socket itself (bad frames, many idle connections) rather than a driver.
 */
import { ScramClient } from "../../src/shared/auth/mod.ts";
import {
  FrameReader,
  parseAuthentication,
  parseErrorFields,
  WireWriter,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
} from "../../src/shared/wire/mod.ts";

/**
 * Connects to 127.0.0.1:`port`, logs in with SCRAM-SHA-256 and returns the socket once the server
 * is ready for queries. Rejects with the server's error (a PgError) when it refuses.
 */
export async function scramLogin(
  port: number,
  user: string,
  password: string,
  database = "postgres",
): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const w = new WireWriter();
  writeStartupMessage(w, { user, database });
  await conn.write(w.view());
  const r = new FrameReader();
  const scram = new ScramClient(user, password);
  for (;;) {
    const n = await conn.read(r.writable());
    if (n === null) throw new Error("closed during login");
    r.commit(n);
    while (r.next()) {
      if (r.code === 0x45) throw parseErrorFields(r.body);
      if (r.code === 0x5a) return conn;
      if (r.code !== 0x52) continue;
      const auth = parseAuthentication(r.body);
      w.reset();
      if (auth.code === 10) writeSaslInitialResponse(w, "SCRAM-SHA-256", scram.clientFirst());
      else if (auth.code === 11) writeSaslResponse(w, scram.handleServerFirst(auth.data.slice()));
      else if (auth.code === 12) scram.verifyServerFinal(auth.data.slice());
      if (w.length) await conn.write(w.view());
    }
  }
}
