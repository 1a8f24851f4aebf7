/**
 * Transparent mode with the real program: three replicas, each fronting its own unmodified
 * redis-server (`--app`). Mixed traffic from 24 connections leaves every copy with the same
 * DEBUG DIGEST; kill -9 of the leader loses nothing acknowledged; the killed replica rebuilds its
 * copy from its log; a copy changed behind its replica's back is caught by output checking.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisCli, sleep, TestCluster } from "./cluster-harness.ts";

const APP =
  "redis-server --port {port} --bind {host} --dir {dir} --save '' --appendonly no --enable-debug-command yes";

function client(port: number): Redis {
  const c = new Redis({
    port,
    host: "127.0.0.1",
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
  });
  c.on("error", () => {}); // a killed replica's clients reconnect quietly
  return c;
}

interface AppStatus {
  readonly appliedSteps: number;
  readonly program: { readonly port: number; readonly state: string };
  readonly divergences: readonly { replica: number; steps: number }[];
}

describe("--app: three replicas fronting three redis-server copies", () => {
  let cluster: TestCluster;
  const clients: Redis[] = [];

  async function app(id: number): Promise<AppStatus | null> {
    const status = await cluster.status(id);
    return (status?.app as unknown as AppStatus | undefined) ?? null;
  }

  /** DEBUG DIGEST of each live replica's copy, read on the copy's own port. */
  async function digests(ids: readonly number[]): Promise<string[]> {
    return Promise.all(
      ids.map(async (id) => {
        const status = await app(id);
        return (await redisCli(status!.program.port, ["DEBUG", "DIGEST"])).trim();
      }),
    );
  }

  /** Wait until the replicas applied the same number of steps (and so hold the same input). */
  async function settle(ids: readonly number[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const steps = await Promise.all(ids.map(async (id) => (await app(id))?.appliedSteps ?? -1));
      last = steps.join(",");
      if (steps[0]! >= 0 && steps.every((s) => s === steps[0])) {
        await sleep(300);
        const again = await Promise.all(ids.map(async (id) => (await app(id))?.appliedSteps));
        if (again.join(",") === last) return;
      }
      await sleep(100);
    }
    throw new Error(
      `replicas ${ids.join(",")} did not settle (steps ${last})\n${cluster.outputs()}`,
    );
  }

  beforeAll(async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: ["--app", APP] });
    await cluster.waitForLeader(60_000);
    await cluster.waitForAllUp(60_000);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  });

  it("24 connections of mixed commands leave every copy with the same DEBUG DIGEST", async () => {
    for (let i = 0; i < 24; i++) clients.push(client(cluster.replica((i % 3) + 1).clientPort));
    // A blocked pop on one replica, woken later by a push through another.
    const blocked = clients[0]!.blpop("jobs", 0);
    // A subscriber on one replica, a publisher on another.
    const subscriber = client(cluster.replica(2).clientPort);
    const messages: string[] = [];
    subscriber.on("message", (_channel: string, message: string) => messages.push(message));
    await subscriber.subscribe("news");
    await Promise.all(
      clients.slice(1).map(async (c, i) => {
        for (let round = 0; round < 15; round++) {
          const k = `k${(i + round) % 10}`;
          await c.set(`s:${k}`, `v${i}.${round}`);
          await c.incr("counter");
          await c.lpush(`l:${k}`, `e${i}.${round}`);
          await c.hset(`h:${k}`, `f${i}`, String(round));
          await c.sadd(`set:${k}`, `m${round}`);
          await c.zadd(`z:${k}`, round, `m${i}`);
          await c.multi().incr("txn").lpush("txnlog", String(i)).exec();
          await c.expire(`s:${k}`, 3600);
        }
      }),
    );
    expect(await clients[5]!.publish("news", "hello")).toBe(1);
    await clients[7]!.lpush("jobs", "job-1");
    expect(await blocked).toEqual(["jobs", "job-1"]);
    expect(await clients[2]!.get("counter")).toBe(String(23 * 15));
    const deadline = Date.now() + 10_000;
    while (messages.length === 0 && Date.now() < deadline) await sleep(20);
    expect(messages).toEqual(["hello"]);
    subscriber.disconnect();
    await settle([1, 2, 3]);
    const [a, b, c] = await digests([1, 2, 3]);
    expect(a).not.toBe("0000000000000000000000000000000000000000");
    expect(b).toBe(a);
    expect(c).toBe(a);
  }, 180_000);

  it("kill -9 of the leader loses nothing acknowledged; the killed replica rebuilds its copy", async () => {
    const leader = await cluster.waitForLeader(60_000);
    const survivors = [1, 2, 3].filter((id) => id !== leader);
    const writers = survivors.map((id) => client(cluster.replica(id).clientPort));
    let acknowledged = 0;
    let stop = false;
    const load = Promise.all(
      writers.map(async (w) => {
        while (!stop) {
          try {
            await w.incr("acked");
            acknowledged++;
          } catch {
            await sleep(50); // no leader for a moment: the request failed, so it is not counted
          }
        }
      }),
    );
    await sleep(500);
    await cluster.kill(leader);
    await cluster.waitForLeader(60_000, [leader]);
    await sleep(1000);
    stop = true;
    await load;
    // Every acknowledged increment is there; an unacknowledged one may have run too.
    const value = Number(await writers[0]!.get("acked"));
    expect(value).toBeGreaterThanOrEqual(acknowledged);
    cluster.launch(leader);
    await cluster.waitForAllUp(60_000);
    await settle([1, 2, 3], 120_000);
    const [a, b, c] = await digests([1, 2, 3]);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(await redisCli(cluster.replica(leader).clientPort, ["GET", "acked"])).toBe(`${value}\n`);
    for (const w of writers) w.disconnect();
  }, 240_000);

  it("output checking stops a replica whose copy was changed behind its back", async () => {
    const leader = await cluster.waitForLeader(60_000);
    const victim = [1, 2, 3].find((id) => id !== leader)!;
    const other = [1, 2, 3].find((id) => id !== leader && id !== victim)!;
    const copyPort = (await app(victim))!.program.port;
    // The planted divergence: a value only the victim's copy holds.
    await redisCli(copyPort, ["SET", "planted", "behind-the-back"]);
    const reader = client(cluster.replica(leader).clientPort);
    // Reads through the log: the victim's copy answers differently from the others. Digests are
    // compared every 100 steps and, once diverged, differ at every later comparison: keep reading
    // until the victim stops (a report lost on UDP only delays it).
    for (let i = 0; i < 3000 && cluster.replica(victim).process !== null; i++)
      await reader.get("planted");
    reader.disconnect();
    const deadline = Date.now() + 30_000;
    while (cluster.replica(victim).process !== null && Date.now() < deadline) await sleep(50);
    if (cluster.replica(victim).process !== null) {
      const views = await Promise.all([1, 2, 3].map((id) => app(id)));
      throw new Error(
        `replica ${victim} (leader ${leader}) did not stop: ${JSON.stringify(views.map((v) => ({ steps: v?.appliedSteps, digests: (v as unknown as { digests: unknown })?.digests, divergences: v?.divergences })))}\n${cluster.outputs()}`,
      );
    }
    expect(cluster.replica(victim).output).toMatch(/copy of the program diverged/);
    // The other replicas raise the alarm once a majority's reports are in.
    const counted = new RegExp(`apus_output_divergences_total\\{replica="${victim}"\\} [1-9]`);
    const alarmDeadline = Date.now() + 30_000;
    while (Date.now() < alarmDeadline) {
      const seen = (await app(leader))?.divergences ?? [];
      if (seen.some((d) => d.replica === victim) && counted.test(await cluster.metrics(other)))
        break;
      await sleep(100);
    }
    expect((await app(leader))!.divergences.some((d) => d.replica === victim)).toBe(true);
    expect(await cluster.metrics(other)).toMatch(counted);
    // Restarted, it rebuilds its copy from the log and agrees again.
    cluster.launch(victim);
    await cluster.waitForAllUp(60_000);
    await settle([1, 2, 3], 120_000);
    const [a, b, c] = await digests([1, 2, 3]);
    expect(b).toBe(a);
    expect(c).toBe(a);
  }, 240_000);
});

describe("--app: the uncompacted log is bounded", () => {
  it("past --app-log-max-bytes new requests get a clear error and nothing else breaks", async () => {
    const cluster = await TestCluster.start({
      replicas: 1,
      extraArgs: ["--app", APP, "--app-log-max-bytes", "1m"],
    });
    try {
      await cluster.waitForLeader(60_000);
      const port = cluster.replica(1).clientPort;
      const value = "x".repeat(64 * 1024);
      let refused = "";
      for (let i = 0; i < 40 && refused === ""; i++) {
        const reply = await redisCli(port, ["SET", `big${i}`, value]);
        if (reply.includes("log full")) refused = reply;
      }
      expect(refused).toMatch(/apus log full.*--app-log-max-bytes/);
      const status = (await cluster.status(1))!.app as { logBytes: number; logBytesMax: number };
      expect(status.logBytes).toBeGreaterThanOrEqual(status.logBytesMax);
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});

describe("--app with --durability memory: a restarted replica recovers its copy from its peers", () => {
  it("kill -9 of a follower, relaunched with --initial-cluster-state existing, rebuilds the same copy", async () => {
    const cluster = await TestCluster.start({
      replicas: 3,
      durability: "memory",
      extraArgs: ["--app", APP],
    });
    const view = async (id: number) => (await cluster.status(id))?.app as unknown as AppStatus;
    try {
      const leader = await cluster.waitForLeader(60_000);
      await cluster.waitForAllUp(60_000);
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      const writer = client(cluster.replica(leader).clientPort);
      for (let i = 0; i < 300; i++) await writer.set(`m${i % 37}`, `v${i}`);
      await writer.rpush("list", "a", "b", "c");
      await cluster.kill(follower);
      for (let i = 0; i < 100; i++) await writer.incr("after");
      // Nothing on disk: it must learn the whole log from the others before it votes.
      cluster.launch(follower, ["--initial-cluster-state", "existing"]);
      const deadline = Date.now() + 120_000;
      let steps = "";
      for (;;) {
        const views = await Promise.all([1, 2, 3].map(view));
        steps = views.map((v) => v?.appliedSteps ?? -1).join(",");
        if (views.every((v) => v !== undefined && v.appliedSteps === views[0]!.appliedSteps)) break;
        if (Date.now() > deadline)
          throw new Error(
            `the recovered replica did not catch up (${steps})\n${cluster.outputs()}`,
          );
        await sleep(200);
      }
      const digests = await Promise.all(
        [1, 2, 3].map(async (id) =>
          (await redisCli((await view(id)).program.port, ["DEBUG", "DIGEST"])).trim(),
        ),
      );
      expect(digests[1]).toBe(digests[0]);
      expect(digests[2]).toBe(digests[0]);
      expect(await redisCli(cluster.replica(follower).clientPort, ["GET", "after"])).toBe("100\n");
      writer.disconnect();
    } finally {
      await cluster.stop();
    }
  }, 240_000);
});

describe("--app with --checkpoint: the log is compacted, and a replica installs the checkpoint", () => {
  it("a wiped follower and a restarted one rebuild from checkpoints and agree, with no false divergence", async () => {
    const cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: [
        ...["--app", APP, "--checkpoint", "redis-cli -p {port} SAVE"],
        ...["--snapshot-every-bytes", "16k"],
      ],
    });
    const view = async (id: number) => (await cluster.status(id))?.app as unknown as AppStatus;
    const settleAll = async () => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const views = await Promise.all([1, 2, 3].map(view));
        if (views.every((v) => v !== undefined && v.appliedSteps === views[0]!.appliedSteps))
          return;
        if (Date.now() > deadline)
          throw new Error(
            `no agreement: ${views.map((v) => v?.appliedSteps).join(",")}\n${cluster.outputs()}`,
          );
        await sleep(200);
      }
    };
    const digestsAgree = async () => {
      const digests = await Promise.all(
        [1, 2, 3].map(async (id) =>
          (await redisCli((await view(id)).program.port, ["DEBUG", "DIGEST"])).trim(),
        ),
      );
      expect(digests[1]).toBe(digests[0]);
      expect(digests[2]).toBe(digests[0]);
    };
    try {
      const leader = await cluster.waitForLeader(60_000);
      await cluster.waitForAllUp(60_000);
      const [wiped, restarted] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
      const writer = client(cluster.replica(leader).clientPort);
      const value = "v".repeat(100);
      for (let i = 0; i < 1500; i++) await writer.set(`c${i % 300}`, `${value}${i}`);
      // Compacted: the leader took at least one checkpoint.
      const snapshots = Number(
        /apus_snapshots_total (\d+)/.exec(await cluster.metrics(leader))?.[1],
      );
      expect(snapshots, cluster.outputs()).toBeGreaterThan(0);
      // One follower loses everything; the other restarts from its own WAL (checkpoint + rest).
      await cluster.kill(wiped);
      rmSync(join(cluster.dir, `replica-${wiped}`), { recursive: true, force: true });
      await cluster.kill(restarted);
      cluster.launch(restarted);
      for (let i = 0; i < 300; i++) await writer.incr("after");
      cluster.launch(wiped, ["--initial-cluster-state", "existing"]);
      await cluster.waitForAllUp(60_000);
      await settleAll();
      await digestsAgree();
      // Their output digests continue from the checkpoint: more traffic raises no divergence.
      for (let i = 0; i < 300; i++) await writer.get(`c${i}`);
      await settleAll();
      for (const id of [1, 2, 3]) {
        expect(cluster.replica(id).process).not.toBeNull();
        expect((await view(id)).divergences).toEqual([]);
      }
      expect(cluster.replica(wiped).output).toMatch(
        /restarting the program's copy from a checkpoint/,
      );
      await digestsAgree();
      writer.disconnect();
    } finally {
      await cluster.stop();
    }
  }, 300_000);
});
