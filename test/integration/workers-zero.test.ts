/**
 * `--workers 0`: each replica serves its Redis clients on its consensus thread (no connection
 * worker thread, same rings and records behind same-thread bells). Three real replica processes:
 * redis-cli on the leader and the followers, a pipeline, 50 concurrent connections, kill -9 of the
 * leader while a follower keeps answering, /metrics with the client counters, SIGTERM exits 0; and
 * one --app cluster (a redis-server copy per replica) served the same way.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { redisCli, TestCluster } from "./cluster-harness.ts";
import { client, missingKeys, writeKeys } from "./keys.ts";

const CONCURRENT_CLIENTS = 50;

/** The thread names of a replica process (Linux), from /proc/<pid>/task/<tid>/comm. */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim(),
  );
}

describe("--workers 0: clients served on the consensus thread", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it("serves redis-cli, a pipeline and 50 connections on every replica, fails over, and stops on SIGTERM", async () => {
    cluster = await TestCluster.start({ replicas: 3, workers: 0 });
    const leader = await cluster.waitForLeader();
    await cluster.waitForAllUp();
    const followers = cluster.replicas.filter((r) => r.id !== leader);
    const status = (await cluster.status(leader))!;
    expect(status.workers).toBe(0);
    // No connection worker thread: the consensus thread listens itself.
    const names = threadNames(cluster.replica(leader).process!.pid!);
    expect(names.some((n) => n.startsWith("consensus"))).toBe(true);
    expect(names.some((n) => n.startsWith("connection"))).toBe(false);

    // redis-cli on the leader and on each follower; each reads what another wrote.
    for (const r of cluster.replicas) {
      expect((await redisCli(r.clientPort, ["SET", `cli-${r.id}`, `v${r.id}`])).trim()).toBe("OK");
    }
    for (const r of cluster.replicas) {
      const other = (r.id % 3) + 1;
      expect((await redisCli(r.clientPort, ["GET", `cli-${other}`])).trim()).toBe(`v${other}`);
    }

    // A pipeline: every reply, in order, through a follower.
    const pipelined = await redisCli(
      followers[0]!.clientPort,
      [],
      "SET p 1\nINCR p\nINCR p\nGET p\nDEL p\nGET p\n",
    );
    // redis-cli prints a nil reply as an empty line.
    expect(pipelined).toBe("OK\n2\n3\n3\n1\n\n");

    // Many connections at once, split over the leader and a follower.
    const clients = Array.from({ length: CONCURRENT_CLIENTS }, (_, i) =>
      client(i % 2 === 0 ? cluster!.replica(leader).clientPort : followers[1]!.clientPort),
    );
    try {
      const replies = await Promise.all(
        clients.map(async (c, i) => {
          await c.set(`many-${i}`, String(i));
          return [await c.incr(`many-${i}`), await c.get(`many-${i}`)];
        }),
      );
      expect(replies).toEqual(clients.map((_, i) => [i + 1, String(i + 1)]));
    } finally {
      for (const c of clients) c.disconnect();
    }

    // The in-thread server's client metrics reach /metrics as a connection worker's would.
    const metrics = await cluster.metrics(leader);
    const accepted = /^apus_client_connections_total (\d+)/m.exec(metrics);
    expect(Number(accepted?.[1])).toBeGreaterThanOrEqual(CONCURRENT_CLIENTS / 2);
    expect(metrics).toMatch(/^apus_client_commands_total \d+/m);

    // kill -9 of the leader: a follower keeps answering, and nothing acknowledged is lost.
    const acked = await writeKeys(followers[0]!.clientPort, "before", 50);
    expect(acked.length).toBe(50);
    await cluster.kill(leader);
    await cluster.waitForLeader(20_000, [leader]);
    expect(await missingKeys(followers[0]!.clientPort, acked)).toEqual([]);
    const during = await writeKeys(followers[1]!.clientPort, "during", 20, 5, 100);
    expect(during.length).toBe(20);
    expect(await missingKeys(followers[0]!.clientPort, during)).toEqual([]);

    // SIGTERM: stop accepting, finish, exit 0 (the in-thread server is stopped by the consensus
    // worker on the main thread's behalf).
    for (const r of followers) expect(await cluster.terminate(r.id)).toBe(0);
  }, 120_000);

  it("--app: a redis-server copy per replica behind the consensus thread's own client server", async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      workers: 0,
      extraArgs: ["--app", "redis-server --port {port} --bind {host} --dir {dir} --save ''"],
    });
    const leader = await cluster.waitForLeader(60_000);
    await cluster.waitForAllUp(60_000);
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    const c: Redis = client(follower.clientPort);
    try {
      expect(await c.set("app-key", "x")).toBe("OK");
      expect(await c.append("app-key", "yz")).toBe(3);
      expect(await c.rpush("app-list", "a", "b", "c")).toBe(3);
    } finally {
      c.disconnect();
    }
    const onLeader = client(cluster.replica(leader).clientPort);
    try {
      expect(await onLeader.get("app-key")).toBe("xyz");
      expect(await onLeader.lrange("app-list", 0, -1)).toEqual(["a", "b", "c"]);
    } finally {
      onLeader.disconnect();
    }
    expect(await cluster.terminate(follower.id)).toBe(0);
  }, 120_000);
});
