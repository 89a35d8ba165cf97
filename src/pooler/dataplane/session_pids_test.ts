import assert from "node:assert/strict";
import { SessionPids } from "./session_pids.ts";

Deno.test("SessionPids.reach() gives idle sessions a backend only for their role or a superuser", async () => {
  const pids = new SessionPids();
  const attached: number[] = [];
  const open = (pid: number, user: string) =>
    pids.opened(pid, user, () => {
      attached.push(pid);
      pids.attached(pid, 1000 + pid);
      return Promise.resolve();
    });
  open(1, "alice");
  open(2, "bob");
  const end3 = open(3, "alice");
  end3();
  await pids.reach([1, 2, 3], { user: "alice", superuser: false });
  assert.deepEqual(attached, [1]); // bob's is not alice's to pin; 3 is closed
  await pids.reach([1, 2], { user: "carol", superuser: true });
  assert.deepEqual(attached, [1, 2]); // 1 has its backend already
  assert.equal(pids.map.get(2), 1002);
  pids.detached(2, 1002);
  assert.equal(pids.map.has(2), false);
  assert.equal(pids.sessionOf(1002), 2, "a notification names its last session");
});
