import { envName } from "../shared/servenv/mod.ts";
import { LocalCluster } from "./local_cluster.ts";
import { ShardProvisioner } from "./shards.ts";

/** How often the hidden schema is read. */
const TICK_MS = 1000;

/**
 * The shard provisioner's loop (`multigres cluster provision`, started by `cluster start` beside
 * the components, with a pid file like them): it reads the hidden schema every second and runs
 * every shard it records, until SIGTERM or SIGINT. The shards keep running after it stops; the
 * cluster's stop stops them.
 */
export async function watchShards(dataDir: string): Promise<void> {
  const log = (msg: string) =>
    console.error(JSON.stringify({ ts: new Date().toISOString(), component: "provisioner", msg }));
  const root = LocalCluster.load(dataDir, log);
  // cluster.json keeps no password: the superuser's comes through the environment.
  const password = Deno.env.get(envName("pg-superuser-password"));
  if (password) root.cfg.password = password;
  const provisioner = new ShardProvisioner(root, log);
  let stopped = false;
  let wake = () => {};
  const stop = () => {
    stopped = true;
    wake();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  log("watching the hidden schema for shards");
  while (!stopped) {
    await provisioner.tick().catch((e) => log(`cannot read the shards: ${(e as Error).message}`));
    await new Promise<void>((r) => {
      const timer = setTimeout(r, TICK_MS);
      wake = () => {
        clearTimeout(timer);
        r();
      };
    });
  }
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  log("stopped (the shards keep running until the cluster stops)");
}
