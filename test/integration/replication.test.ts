import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisCli, TestCluster } from "./cluster-harness.ts";

function client(port: number): Redis {
  return new Redis({
    port,
    host: "127.0.0.1",
    enableReadyCheck: false,
    maxRetriesPerRequest: 1,
    lazyConnect: false,
  });
}

describe("three replicas as real processes", () => {
  let cluster: TestCluster;
  const clients: Redis[] = [];

  beforeAll(async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
    for (const r of cluster.replicas) clients.push(client(r.clientPort));
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  });

  it("reads back on every replica what was written on any replica", async () => {
    for (let i = 0; i < clients.length; i++) {
      expect(await clients[i]!.set(`key-${i}`, `value-${i}`)).toBe("OK");
    }
    for (const c of clients) {
      for (let i = 0; i < clients.length; i++) expect(await c.get(`key-${i}`)).toBe(`value-${i}`);
    }
    // Commands that are not plain strings go through the log too.
    expect(await clients[1]!.incrby("counter", 5)).toBe(5);
    expect(await clients[2]!.incr("counter")).toBe(6);
    expect(await clients[0]!.rpush("list", "a", "b")).toBe(2);
    expect(await clients[2]!.lrange("list", 0, -1)).toEqual(["a", "b"]);
  });

  it("keeps a pipelining client's replies in order", async () => {
    const pipeline = clients[1]!.pipeline();
    for (let i = 0; i < 200; i++) pipeline.set(`p${i}`, String(i)).get(`p${i}`);
    const results = await pipeline.exec();
    expect(results!.length).toBe(400);
    for (let i = 0; i < 200; i++) expect(results![2 * i + 1]![1]).toBe(String(i));
  });

  it("replicates a 1 MiB value written on a follower", async () => {
    const leader = await cluster.waitForLeader();
    const followers = cluster.replicas.filter((r) => r.id !== leader);
    const value = Buffer.alloc(1024 * 1024, "x");
    value.write("start", 0);
    value.write("end", value.length - 3);
    expect(await clients[followers[0]!.id - 1]!.set("mebibyte", value)).toBe("OK");
    for (const c of clients) expect((await c.getBuffer("mebibyte"))!.equals(value)).toBe(true);
  });

  it("serves redis-cli unchanged, on a follower and on the leader", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    expect((await redisCli(follower.clientPort, ["set", "cli-key", "from-cli"])).trim()).toBe("OK");
    expect((await redisCli(cluster.replica(leader).clientPort, ["get", "cli-key"])).trim()).toBe(
      "from-cli",
    );
    const info = await redisCli(cluster.replica(leader).clientPort, ["info", "replication"]);
    expect(info).toContain("apus_role:leader");
    expect(await redisCli(follower.clientPort, ["ping"])).toContain("PONG");
    // Errors keep Redis's shapes.
    expect(await redisCli(follower.clientPort, ["get"])).toContain(
      "wrong number of arguments for 'get' command",
    );
  });

  it("reports role, leader and progress on /status and counters on /metrics", async () => {
    const leader = await cluster.waitForLeader();
    const status = await cluster.status(leader);
    expect(status!.role).toBe("leader");
    expect(status!.commitIndex).toBeGreaterThan(0);
    const metrics = await cluster.metrics(leader);
    expect(metrics).toContain("apus_proposals_total");
    expect(metrics).toContain("apus_consensus_latency_seconds_bucket");
    expect(metrics).toContain("apus_wal_fsync_seconds");
  });
});
