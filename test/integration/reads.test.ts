/**
 * Reads served at a read index (--reads index, the default), on real processes: they see the
 * latest acknowledged write on every replica, never go through the log, and an old leader that
 * lost its leadership without noticing (paused, or cut off) answers no read with old data.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { nftUsable, nft as runNft } from "../../src/chaos/net-faults.ts";
import { redisCli, sleep, TestCluster } from "./cluster-harness.ts";

function counter(metrics: string, name: string, labels = ""): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

async function readsServed(cluster: TestCluster, id: number): Promise<number> {
  return counter(await cluster.metrics(id), "apus_reads_total", '{outcome="served"}');
}

async function chosenSlot(cluster: TestCluster, id: number): Promise<number> {
  return (await cluster.status(id))?.commitIndex ?? 0;
}

describe("reads at a read index", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it("see the latest write on the leader and on every follower, without a log entry", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    const leader = await cluster.waitForLeader();
    const followers = [1, 2, 3].filter((id) => id !== leader);
    for (let i = 0; i < 5; i++) {
      expect(await redisCli(cluster.replica(leader).clientPort, ["SET", "k", `v${i}`])).toBe(
        "OK\n",
      );
      for (const id of [leader, ...followers])
        expect(await redisCli(cluster.replica(id).clientPort, ["GET", "k"])).toBe(`v${i}\n`);
    }
    const slotBefore = await chosenSlot(cluster, leader);
    for (const id of [leader, ...followers]) {
      const port = cluster.replica(id).clientPort;
      expect(await redisCli(port, ["MGET", "k", "nope"])).toBe("v4\n\n");
      expect(await redisCli(port, ["EXISTS", "k"])).toBe("1\n");
    }
    // Reads took no slot; each replica served its own.
    expect(await chosenSlot(cluster, leader)).toBe(slotBefore);
    for (const id of [leader, ...followers])
      expect(await readsServed(cluster, id)).toBeGreaterThanOrEqual(7);
    // A pipelined request holding a write goes through the log whole, in order.
    const piped = await redisCli(
      cluster.replica(followers[0]!).clientPort,
      [],
      "SET p 1\r\nGET p\r\nINCR p\r\nGET p\r\n",
    );
    expect(piped).toBe("OK\n1\n2\n2\n");
    expect(await chosenSlot(cluster, leader)).toBeGreaterThan(slotBefore);
    // A TTL runs out for reads although no write moves the log's clock meanwhile: such a read
    // goes through the log and gets a fresh stamp.
    expect(await redisCli(cluster.replica(leader).clientPort, ["SET", "t", "x", "PX", "200"])).toBe(
      "OK\n",
    );
    await sleep(400);
    for (const id of [leader, ...followers])
      expect(await redisCli(cluster.replica(id).clientPort, ["GET", "t"])).toBe("\n");
  }, 60_000);

  it("--reads log sends reads through the log", async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: ["--reads", "log"] });
    const leader = await cluster.waitForLeader();
    await redisCli(cluster.replica(leader).clientPort, ["SET", "k", "v"]);
    const slotBefore = await chosenSlot(cluster, leader);
    expect(await redisCli(cluster.replica(leader).clientPort, ["GET", "k"])).toBe("v\n");
    expect(await chosenSlot(cluster, leader)).toBe(slotBefore + 1);
    expect(await readsServed(cluster, leader)).toBe(0);
  }, 60_000);

  it("a leader paused past an election (SIGSTOP) serves no stale read when it wakes", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    for (let round = 0; round < 3; round++) {
      const old = await cluster.waitForLeader();
      const oldPort = cluster.replica(old).clientPort;
      expect(await redisCli(oldPort, ["SET", "k", `old${round}`])).toBe("OK\n");
      const pid = cluster.replica(old).process!.pid!;
      process.kill(pid, "SIGSTOP");
      try {
        const next = await cluster.waitForLeader(20_000, [old]);
        expect(await redisCli(cluster.replica(next).clientPort, ["SET", "k", `new${round}`])).toBe(
          "OK\n",
        );
        // The GET is in the old leader's socket before it runs again: it must not answer "old".
        const reading = redisCli(oldPort, ["GET", "k"]);
        await sleep(50);
        process.kill(pid, "SIGCONT");
        const answer = await reading;
        expect(answer).not.toBe(`old${round}\n`);
        expect(answer === `new${round}\n` || answer.startsWith("TIMEOUT"), answer).toBe(true);
      } finally {
        process.kill(pid, "SIGCONT");
      }
    }
  }, 120_000);
});

const TABLE = `apus_reads_${process.pid}`;

function nft(...args: string[]): void {
  runNft(args);
}

describe.skipIf(!nftUsable())("an old leader cut off by the network (nftables)", () => {
  let cluster: TestCluster | undefined;
  afterAll(async () => {
    try {
      nft("delete", "table", "inet", TABLE);
    } catch {
      // not created
    }
    await cluster?.stop();
  });

  it("answers no read with data older than the new leader's writes", async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: ["--request-timeout-ms", "1500"],
    });
    const old = await cluster.waitForLeader();
    const oldPort = cluster.replica(old).clientPort;
    expect(await redisCli(oldPort, ["SET", "k", "old"])).toBe("OK\n");
    // The old leader stalls (its clock stops, so it still believes it leads when it wakes), and
    // every peer packet to or from its peer port is dropped: it cannot learn of the new leader.
    const pid = cluster.replica(old).process!.pid!;
    process.kill(pid, "SIGSTOP");
    try {
      const port = String(cluster.replica(old).peerPort);
      nft("add", "table", "inet", TABLE);
      nft("add", "chain", "inet", TABLE, "input", "{ type filter hook input priority 0 ; }");
      nft("add", "rule", "inet", TABLE, "input", "udp", "dport", port, "drop");
      nft("add", "rule", "inet", TABLE, "input", "udp", "sport", port, "drop");
      const next = await cluster.waitForLeader(20_000, [old]);
      expect(await redisCli(cluster.replica(next).clientPort, ["SET", "k", "new"])).toBe("OK\n");
      const reading = redisCli(oldPort, ["GET", "k"]);
      await sleep(50);
      process.kill(pid, "SIGCONT");
      // Without a read round it would answer "old" at once: it still takes itself for leader.
      const answers = [await reading];
      for (let i = 0; i < 3; i++) answers.push(await redisCli(oldPort, ["GET", "k"]));
      for (const answer of answers) {
        expect(answer).not.toBe("old\n");
        expect(answer).toMatch(/^(new\n|TIMEOUT|CLUSTERDOWN)/);
      }
    } finally {
      process.kill(pid, "SIGCONT");
    }
    nft("delete", "table", "inet", TABLE);
    // Healed: it catches up and serves the new value.
    for (let i = 0; i < 100; i++) {
      if ((await redisCli(oldPort, ["GET", "k"])) === "new\n") return;
      await sleep(100);
    }
    expect.fail("the old leader never served the new value after the heal");
  }, 90_000);
});
