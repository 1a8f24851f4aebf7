/**
 * Issue 7 §1 with real processes: a replica that lost its state (memory durability) comes back
 * with --initial-cluster-state existing, promises and accepts nothing until every other replica
 * has answered, and then holds what it had voted for, so the leader's crash loses nothing.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { sleep, TestCluster } from "./cluster-harness.ts";
import { missingKeys, writeKeys } from "./keys.ts";

async function waitForRole(cluster: TestCluster, id: number, role: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await cluster.status(id))?.role === role) return;
    await sleep(50);
  }
  throw new Error(`replica ${id} not ${role} within ${timeoutMs} ms\n${cluster.outputs()}`);
}

describe("a replica that lost its state recovers before it votes (memory durability)", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it("restarted empty, it waits for every other replica, then holds the log; the leader's crash loses nothing", async () => {
    cluster = await TestCluster.start({ replicas: 3, durability: "memory" });
    const leader = await cluster.waitForLeader();
    const [a, b] = cluster.replicas.filter((r) => r.id !== leader).map((r) => r.id) as [
      number,
      number,
    ];
    const acked = await writeKeys(cluster.replica(leader).clientPort, "k", 100, 5, 100);
    expect(acked).toHaveLength(100);

    // Replica a loses everything; b is stopped (alive, state kept, silent): a cannot recover yet.
    await cluster.kill(a);
    process.kill(cluster.replica(b).process!.pid!, "SIGSTOP");
    try {
      cluster.launch(a, ["--initial-cluster-state", "existing"]);
      await waitForRole(cluster, a, "recovering");
      await sleep(1500);
      expect((await cluster.status(a))?.role).toBe("recovering");
      expect(await cluster.metrics(a)).toMatch(/apus_role\{role="recovering"\} 1/);
    } finally {
      process.kill(cluster.replica(b).process!.pid!, "SIGCONT");
    }
    await waitForRole(cluster, a, "follower");
    await waitForOutput(cluster, a, /recovered from every other replica/);

    // Now the sequence: the leader crashes; a and b elect a new leader between them.
    await cluster.kill(leader);
    const next = await cluster.waitForLeader(20_000, [leader]);
    expect([a, b]).toContain(next);
    expect(await missingKeys(cluster.replica(next).clientPort, acked)).toEqual([]);
    expect(await missingKeys(cluster.replica(a).clientPort, acked)).toEqual([]);
    const after = await writeKeys(cluster.replica(next).clientPort, "after", 10, 5, 100);
    expect(after).toHaveLength(10);
  });

  it("a data directory restored from a backup (marked RECOVERING) recovers before it votes, then drops the marker", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    const leader = await cluster.waitForLeader();
    const follower = cluster.replicas.find((r) => r.id !== leader)!.id;
    const acked = await writeKeys(cluster.replica(leader).clientPort, "b", 50, 5, 100);
    expect(acked).toHaveLength(50);
    await cluster.kill(follower);
    // What an operator does after restoring a stale copy of the directory (README).
    const marker = join(cluster.dir, `replica-${follower}`, "RECOVERING");
    writeFileSync(marker, "");
    cluster.launch(follower);
    await waitForRole(cluster, follower, "follower");
    await waitForOutput(cluster, follower, /holds RECOVERING/);
    await waitForOutput(cluster, follower, /recovered from every other replica/);
    expect(existsSync(marker)).toBe(false);
    expect(await missingKeys(cluster.replica(follower).clientPort, acked)).toEqual([]);
  });
});

/**
 * Waits for a replica's output to show `pattern`: its consensus thread's log lines reach the
 * process's stdout through the main thread, so /status can show the new role a moment before
 * the line that announced it arrives.
 */
async function waitForOutput(cluster: TestCluster, id: number, pattern: RegExp): Promise<void> {
  for (let waited = 0; waited < 5000 && !pattern.test(cluster.replica(id).output); waited += 50)
    await sleep(50);
  expect(cluster.replica(id).output).toMatch(pattern);
}
