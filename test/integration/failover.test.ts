import { afterEach, describe, expect, it } from "vitest";
import { sleep, TestCluster } from "./cluster-harness.ts";
import { client, missingKeys, writeKeys } from "./keys.ts";

describe("failures of real processes", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it("elects a new leader after kill -9 of the leader, loses no acknowledged write, and the killed replica catches up from its WAL", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    const leader = await cluster.waitForLeader();
    const other = cluster.replicas.find((r) => r.id !== leader)!;
    const acked = await writeKeys(cluster.replica(leader).clientPort, "before", 300);
    expect(acked.length).toBe(300);

    const killedAt = Date.now();
    await cluster.kill(leader);
    const next = await cluster.waitForLeader(20_000, [leader]);
    const failoverMs = Date.now() - killedAt;
    expect(next).not.toBe(leader);
    // Documented in the README: the measured failover time (not asserted; timing varies).
    console.log(`failover: new leader ${next} serving ${failoverMs} ms after kill -9 of ${leader}`);

    expect(await missingKeys(other.clientPort, acked)).toEqual([]);
    const during = await writeKeys(cluster.replica(next).clientPort, "during", 100);
    expect(during.length).toBe(100);

    cluster.launch(leader);
    const target = (await cluster.status(next))!.commitIndex;
    await cluster.waitForApplied([leader], target);
    expect(await missingKeys(cluster.replica(leader).clientPort, [...acked, ...during])).toEqual(
      [],
    );
    const sizes = await Promise.all(
      cluster.replicas.map(async (r) => {
        const c = client(r.clientPort);
        try {
          return await c.dbsize();
        } finally {
          c.disconnect();
        }
      }),
    );
    expect(new Set(sizes).size).toBe(1);
  });

  it("answers clients on a follower through a leader's death, running every INCR exactly once", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    const leader = await cluster.waitForLeader();
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    const clients = Array.from({ length: 8 }, () => client(follower.clientPort));
    let acked = 0;
    const errors: string[] = [];
    const end = Date.now() + 4000;
    const load = Promise.all(
      clients.map(async (c) => {
        while (Date.now() < end) {
          try {
            await c.incr("counter");
            acked++;
          } catch (error) {
            errors.push((error as Error).message);
          }
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await cluster.kill(leader);
    await load;
    for (const c of clients) c.disconnect();
    // Requests the dead leader took are sent to the next one; client sessions run each once.
    expect(errors).toEqual([]);
    const check = client(follower.clientPort);
    try {
      expect(Number(await check.get("counter"))).toBe(acked);
    } finally {
      check.disconnect();
    }
  });

  it("loses nothing acknowledged when every replica is killed at once (--durability fsync)", async () => {
    cluster = await TestCluster.start({ replicas: 3, durability: "fsync" });
    const leader = await cluster.waitForLeader();
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    const acked = [
      ...(await writeKeys(cluster.replica(leader).clientPort, "all-a", 200)),
      ...(await writeKeys(follower.clientPort, "all-b", 100)),
    ];
    expect(acked.length).toBe(300);
    await Promise.all(cluster.replicas.map((r) => cluster!.kill(r.id)));
    for (const r of cluster.replicas) cluster.launch(r.id);
    const next = await cluster.waitForLeader();
    for (const r of cluster.replicas) expect(await missingKeys(r.clientPort, acked)).toEqual([]);
    expect(next).toBeGreaterThan(0);
  });

  it("compacts the log into snapshots, ships one to a replica that fell behind it, and recovers from it", async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: ["--snapshot-every-bytes", "4k", "--compaction-tail-slots", "0"],
    });
    const leader = await cluster.waitForLeader();
    const lagging = cluster.replicas.find((r) => r.id !== leader)!.id;
    await cluster.kill(lagging);
    const acked = await writeKeys(cluster.replica(leader).clientPort, "snap", 400);
    expect(acked.length).toBe(400);
    expect(await cluster.metrics(leader)).toMatch(/apus_snapshots_total [1-9]/);

    cluster.launch(lagging);
    const target = (await cluster.status(leader))!.commitIndex;
    await cluster.waitForApplied([lagging], target);
    expect(await missingKeys(cluster.replica(lagging).clientPort, acked)).toEqual([]);
    expect(cluster.replica(lagging).output).toContain("snapshot");

    // Every replica restarts from its snapshot file and what its WAL holds after it.
    await Promise.all(cluster.replicas.map((r) => cluster!.kill(r.id)));
    for (const r of cluster.replicas) cluster.launch(r.id);
    await cluster.waitForLeader();
    for (const r of cluster.replicas) expect(await missingKeys(r.clientPort, acked)).toEqual([]);
  });

  it("a replica a little behind when the log is compacted catches up from the tail kept below the snapshot, with no snapshot sent", async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: ["--snapshot-every-bytes", "4k"] });
    const leader = await cluster.waitForLeader();
    const lagging = cluster.replicas.find((r) => r.id !== leader)!.id;
    await cluster.kill(lagging);
    const acked = await writeKeys(cluster.replica(leader).clientPort, "tail", 200);
    expect(acked.length).toBe(200);
    expect(await cluster.metrics(leader)).toMatch(/apus_snapshots_total [1-9]/);
    cluster.launch(lagging);
    const target = (await cluster.status(leader))!.commitIndex;
    await cluster.waitForApplied([lagging], target);
    expect(await missingKeys(cluster.replica(lagging).clientPort, acked)).toEqual([]);
    expect(cluster.replica(lagging).output).not.toMatch(/snapshot transfer from replica/);
    for (const r of cluster.replicas)
      expect(await cluster.metrics(r.id)).not.toMatch(
        /apus_snapshot_stream_transfers_completed_total [1-9]/,
      );
  });

  it("stops cleanly on SIGTERM with exit code 0", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    await cluster.waitForLeader();
    await writeKeys(cluster.replica(1).clientPort, "term", 10);
    // A pooled client that stays connected must not hold the shutdown up.
    const idle = client(cluster.replica(2).clientPort);
    expect(await idle.ping()).toBe("PONG");
    expect(await cluster.terminate(2)).toBe(0);
    idle.disconnect();
    await sleep(100);
    expect(cluster.replica(2).output).toContain("stopped");
  });

  it("commits with nine replicas", async () => {
    // Nine processes on two busy cores: default timing, and a retry if a request meets an election.
    cluster = await TestCluster.start({
      replicas: 9,
      workers: 1,
      heartbeatMs: 50,
      electionTimeoutMs: 500,
    });
    await cluster.waitForLeader(40_000);
    // A leader needs only five; the writes go through replica 5, which may still be starting.
    await cluster.waitForAllUp(60_000);
    const acked = await writeKeys(cluster.replica(5).clientPort, "nine", 50, 3);
    expect(acked.length, cluster.outputs()).toBe(50);
    expect(await missingKeys(cluster.replica(9).clientPort, acked)).toEqual([]);
  });
});
