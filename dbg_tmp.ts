import {
  FrameReader,
  parseAuthentication,
  parseErrorFields,
  WireWriter,
  writeQuery,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
} from "./src/shared/wire/mod.ts";
import { ScramClient } from "./src/shared/auth/mod.ts";
const conn = await Deno.connect({ hostname: "127.0.0.1", port: 15432 });
const w = new WireWriter();
writeStartupMessage(w, { user: "postgres", database: "postgres" });
await conn.write(w.view());
const r = new FrameReader();
const scram = new ScramClient("postgres", "postgres");
login: for (;;) {
  const n = await conn.read(r.writable());
  r.commit(n!);
  while (r.next()) {
    if (r.code === 0x5a) break login;
    if (r.code !== 0x52) continue;
    const auth = parseAuthentication(r.body);
    w.reset();
    if (auth.code === 10) writeSaslInitialResponse(w, "SCRAM-SHA-256", scram.clientFirst());
    else if (auth.code === 11) writeSaslResponse(w, scram.handleServerFirst(auth.data.slice()));
    else if (auth.code === 12) scram.verifyServerFinal(auth.data.slice());
    if (w.length) await conn.write(w.view());
  }
}
w.reset();
writeQuery(w, `select repeat('x', 1000) from generate_series(1, ${Deno.args[0]})`);
await conn.write(w.view());
await new Promise((res) => setTimeout(res, Number(Deno.args[1])));
const counts: Record<string, number> = {};
let n: number | null = 0;
let total = 0;
outer: for (;;) {
  n = await conn.read(r.writable(65536));
  if (n === null) break;
  r.commit(n);
  total += n;
  while (r.next()) {
    const k = String.fromCharCode(r.code);
    counts[k] = (counts[k] ?? 0) + 1;
    if (k === "E") console.log(parseErrorFields(r.body).message);
    if (k === "Z") break outer;
  }
}
console.log(counts, "closed:", n === null, "bytes", total);
