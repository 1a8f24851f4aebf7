import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetFaults, nftUsable } from "../../src/chaos/net-faults.ts";
import { TestCluster } from "./cluster-harness.ts";
import { client, writeKeys } from "./keys.ts";

describe.skipIf(!nftUsable())("a lossy network (nftables drops 20 % of peer packets)", () => {
  let cluster: TestCluster;
  const faults = new NetFaults([]);

  beforeAll(async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      heartbeatMs: 50,
      electionTimeoutMs: 600,
      extraArgs: ["--request-timeout-ms", "1000"],
    });
    await cluster.waitForLeader();
    const ports = cluster.replicas.map((r) => r.peerPort).join(", ");
    faults.create();
    faults.rule(
      "udp",
      "dport",
      `{ ${ports} }`,
      "numgen",
      "random",
      "mod",
      "100",
      "<",
      "20",
      "drop",
    );
  });

  afterAll(async () => {
    faults.destroy();
    await cluster?.stop();
  });

  it("still commits every write, retransmits, and converges once the loss stops", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    // Under 20 % loss a heartbeat run can be lost long enough for an election, and a write in
    // flight then times out; the client retries (the SET is idempotent) until the new leader
    // commits it. What is checked is that every write commits, not how few tries it took.
    const acked = [
      ...(await writeKeys(cluster.replica(leader).clientPort, "lossy-a", 150, 30, 100)),
      ...(await writeKeys(follower.clientPort, "lossy-b", 50, 30, 100)),
    ];
    expect(acked.length).toBe(200);
    const retransmits = (await Promise.all(cluster.replicas.map((r) => cluster.metrics(r.id))))
      .map((text) => Number(/^apus_accept_retransmits_total (\d+)/m.exec(text)?.[1] ?? 0))
      .reduce((a, b) => a + b, 0);
    expect(retransmits).toBeGreaterThan(0);

    faults.destroy();
    const next = await cluster.waitForLeader();
    const target = (await cluster.status(next))!.commitIndex;
    await cluster.waitForApplied(
      cluster.replicas.map((r) => r.id),
      target,
    );
    for (const r of cluster.replicas) {
      const c = client(r.clientPort);
      try {
        const values = await c.mget(...acked);
        expect(acked.filter((key, i) => values[i] !== key)).toEqual([]);
      } finally {
        c.disconnect();
      }
    }
  });
});
