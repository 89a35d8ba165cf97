/**
 * `deno task fuzz [--seed N] [--cases N] [--minutes M]`: the protocol fuzzer against a one-cell
 * cluster of its own (127.0.0.1, ports offset 2300), gateway and Postgres side by side. Prints
 * every difference (committed data, hangs, answers) and a summary; exits 1 when anything was
 * committed differently or the gateway hung where Postgres did not. Stops its cluster on every
 * way out (also Ctrl-C and SIGTERM).
 */
import { parseArgs } from "node:util";
import { startCluster } from "../tests/helpers/cluster.ts";
import { type Difference, fuzz } from "../tests/helpers/fuzz.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seed: { type: "string", default: String(Date.now() % 100_000) },
    cases: { type: "string", default: "2000" },
    minutes: { type: "string", default: "30" },
    from: { type: "string", default: "0" },
  },
});
const seed = Number(values.seed);
const count = Number(values.cases);
const deadline = Date.now() + Number(values.minutes) * 60_000;

console.error(`Starting a one-cell cluster for the fuzzer (seed ${seed}, up to ${count} cases)…`);
const c = await startCluster(2300);
let stopping: Promise<void> | null = null;
const stop = () => (stopping ??= c.stop());
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    console.error(`\n${sig}: stopping the cluster`);
    stop().finally(() => Deno.exit(130));
  });
}

let code = 0;
try {
  const admin = await c.client({ direct: true });
  admin.on("error", () => {}); // the cluster stopping under it (Ctrl-C) is no news
  const started = Date.now();
  const byKind: Record<Difference["kind"], number> = { committed: 0, hang: 0, answers: 0 };
  const { ran } = await fuzz(
    {
      gateway: { name: "gateway", port: c.port, password: c.password },
      postgres: { name: "postgres", port: c.directPort, password: c.password },
    },
    admin,
    {
      seed,
      count,
      from: Number(values.from),
      deadline,
      onCase: (fc, diffs) => {
        for (const d of diffs) {
          byKind[d.kind]++;
          console.log(`[${d.kind}] seed ${fc.seed} case ${fc.index}: ${fc.label}`);
          console.log(`  postgres: ${JSON.stringify(d.postgres)}`);
          console.log(`  gateway:  ${JSON.stringify(d.gateway)}`);
        }
        if ((fc.index + 1) % 100 === 0) console.error(`… ${fc.index + 1} cases`);
      },
    },
  );
  await admin.end();
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  console.log(
    `fuzz: seed ${seed}, ${ran} cases in ${secs} s: ${byKind.committed} differences in what is committed, ${byKind.hang} hangs, ${byKind.answers} differences in answers`,
  );
  if (byKind.committed || byKind.hang) code = 1;
} catch (e) {
  console.error(`fuzz failed: ${(e as Error).stack ?? e}`);
  code = 1;
} finally {
  await stop();
}
Deno.exit(code);
