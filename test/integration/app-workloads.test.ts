/**
 * Application workloads as they are written for Redis, run unchanged through ioredis against a
 * three-replica cluster of real processes, each client on a different replica: a job queue with
 * blocking moves, a rate limiter with MULTI and an optimistic WATCH transaction, a leaderboard,
 * a Pub/Sub chat, and databases chosen with SELECT.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./cluster-harness.ts";

describe("application workloads through ioredis, three replicas", () => {
  let cluster: TestCluster;
  const clients: Redis[] = [];

  /** A client of replica `index` (0-based), closed after the tests. */
  function client(index: number, options: { db?: number } = {}): Redis {
    const redis = new Redis({
      port: cluster.replicas[index % cluster.replicas.length]!.clientPort,
      host: "127.0.0.1",
      enableReadyCheck: false,
      maxRetriesPerRequest: 3,
      ...options,
    });
    clients.push(redis);
    return redis;
  }

  beforeAll(async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  });

  it("a job queue: blocked workers on two replicas take every job once (BLMOVE, BRPOPLPUSH)", async () => {
    const producer = client(0);
    const workers = [client(1), client(2), client(1)];
    const done = client(0);
    const jobs = 60;
    const taken: string[] = [];
    let stop = false;
    const work = async (worker: Redis, index: number): Promise<void> => {
      while (!stop) {
        // Half the workers use the old name, half the new one.
        const job =
          index % 2 === 0
            ? await worker.blmove("jobs", "processing", "RIGHT", "LEFT", 1)
            : await worker.brpoplpush("jobs", "processing", 1);
        if (job === null) continue;
        taken.push(job);
        await worker.lrem("processing", 1, job);
        await worker.rpush("done", job);
      }
    };
    // The workers block on the empty queue before any job exists.
    const running = workers.map((w, i) => work(w, i));
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < jobs; i++) await producer.lpush("jobs", `job-${i}`);
    for (let waited = 0; (await done.llen("done")) < jobs && waited < 200; waited++)
      await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await Promise.all(running);
    expect(taken.length).toBe(jobs);
    expect(new Set(taken).size).toBe(jobs);
    expect(await done.llen("done")).toBe(jobs);
    expect(await done.llen("processing")).toBe(0);
    // The queue was served in order: job-0 first (LPUSH then take from the right).
    expect(await done.lindex("done", 0)).toBe("job-0");
  });

  it("a blocking pop times out on an idle cluster, and is served when a push comes on another replica", async () => {
    const waiter = client(1);
    const started = Date.now();
    expect(await waiter.blpop("idle-queue", 0.5)).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    const pending = waiter.blpop("idle-queue", 10);
    await new Promise((r) => setTimeout(r, 200));
    await client(2).rpush("idle-queue", "hello");
    expect(await pending).toEqual(["idle-queue", "hello"]);
  });

  it("a rate limiter: MULTI INCR EXPIRE from three replicas counts every request", async () => {
    const limiters = [client(0), client(1), client(2)];
    const perClient = 20;
    const allowed: number[] = [];
    await Promise.all(
      limiters.map(async (redis) => {
        for (let i = 0; i < perClient; i++) {
          const result = await redis.multi().incr("rate:user-1").expire("rate:user-1", 60).exec();
          expect(result![1]![1]).toBe(1);
          allowed.push(result![0]![1] as number);
        }
      }),
    );
    // Every transaction saw a distinct count: none ran interleaved with another.
    expect(allowed.sort((a, b) => a - b)).toEqual(
      Array.from({ length: 3 * perClient }, (_, i) => i + 1),
    );
    const ttl = await limiters[0]!.ttl("rate:user-1");
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it("an optimistic transaction (WATCH … MULTI … EXEC) retried on conflict loses no increment", async () => {
    const writers = [client(0), client(1), client(2)];
    await writers[0]!.set("balance", "0");
    let conflicts = 0;
    const increments = 15;
    await Promise.all(
      writers.map(async (redis) => {
        for (let i = 0; i < increments; i++) {
          for (;;) {
            await redis.watch("balance");
            const balance = Number(await redis.get("balance"));
            const result = await redis
              .multi()
              .set("balance", String(balance + 1))
              .exec();
            if (result !== null) break;
            conflicts++;
          }
        }
      }),
    );
    expect(await writers[1]!.get("balance")).toBe(String(3 * increments));
    console.log(`optimistic transactions: ${conflicts} conflicts retried`);
  });

  it("a leaderboard on sorted sets, written and read on every replica", async () => {
    const boards = [client(0), client(1), client(2)];
    const players = ["ann", "bob", "cid", "dee", "eve"];
    for (let round = 0; round < 4; round++)
      for (let p = 0; p < players.length; p++)
        await boards[(round + p) % 3]!.zincrby("board", p * 10 + round, players[p]!);
    const top = await boards[1]!.zrevrange("board", 0, 2, "WITHSCORES");
    expect(top).toEqual(["eve", "166", "dee", "126", "cid", "86"]);
    expect(await boards[2]!.zrevrank("board", "bob")).toBe(3);
    expect(await boards[0]!.zscore("board", "ann")).toBe("6");
    expect(await boards[2]!.zcount("board", 50, "+inf")).toBe(3);
    await boards[0]!.zremrangebyrank("board", 0, 0);
    expect(await boards[1]!.zcard("board")).toBe(4);
  });

  it("a chat over Pub/Sub: subscribers on two replicas get every message, in order", async () => {
    const alice = client(1);
    const bob = client(2);
    const got: Record<string, string[]> = { alice: [], bob: [] };
    alice.on("message", (_channel, message) => got.alice!.push(message));
    bob.on("pmessage", (_pattern, channel, message) => got.bob!.push(`${channel}:${message}`));
    await alice.subscribe("room:1");
    await bob.psubscribe("room:*");
    const publisher = client(0);
    const receivers: number[] = [];
    for (let i = 0; i < 20; i++) receivers.push(await publisher.publish("room:1", `m${i}`));
    receivers.push(await publisher.publish("room:2", "other"));
    expect(receivers).toEqual([...Array.from({ length: 20 }, () => 2), 1]);
    for (let waited = 0; got.bob!.length < 21 && waited < 100; waited++)
      await new Promise((r) => setTimeout(r, 20));
    expect(got.alice).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(got.bob).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `room:1:m${i}`),
      "room:2:other",
    ]);
    expect(await publisher.pubsub("NUMSUB", "room:1")).toEqual(["room:1", 1]);
  });

  it("databases chosen with SELECT (ioredis `db`) are kept apart on every replica", async () => {
    const in0 = client(0);
    const in3 = client(1, { db: 3 });
    const alsoIn3 = client(2, { db: 3 });
    await in0.set("shared-name", "zero");
    await in3.set("shared-name", "three");
    expect(await alsoIn3.get("shared-name")).toBe("three");
    expect(await client(2).get("shared-name")).toBe("zero");
    expect(await alsoIn3.dbsize()).toBe(1);
  });
});
