/**
 * Settings that decide what a chosen command does (--max-value-bytes here) must be the same on
 * every replica: one that differs says so at start, its peers say so too, and it never joins.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisCli, sleep, TestCluster } from "./cluster-harness.ts";

async function waitFor(what: string, check: () => Promise<boolean>, cluster: TestCluster) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}\n${cluster.outputs()}`);
}

describe("a replica whose limits differ from its peers'", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: ["--request-timeout-ms", "1500"],
    });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it("is refused by the others, says why, and cannot serve writes", async () => {
    // Replica 3 comes back with a smaller --max-value-bytes than 1 and 2.
    await cluster.kill(3);
    cluster.replica(3).output = "";
    cluster.launch(3, ["--max-value-bytes", "1m"]);
    await waitFor(
      "replica 3 to report the difference",
      async () =>
        cluster.replica(3).output.includes("max-value-bytes: theirs 8388608, ours 1048576"),
      cluster,
    );
    await waitFor(
      "replica 1 to refuse replica 3",
      async () => (await cluster.metrics(1)).includes('apus_peer_settings_agree{peer="3"} 0'),
      cluster,
    );
    expect(cluster.replica(1).output + cluster.replica(2).output).toContain(
      "max-value-bytes: theirs 1048576, ours 8388608",
    );
    expect(await cluster.metrics(1)).toContain('apus_peer_settings_agree{peer="2"} 1');

    // 1 and 2 are a majority and go on; 3 hears nobody and cannot commit.
    const leader = await cluster.waitForLeader(20_000, [3]);
    expect(leader).not.toBe(3);
    expect((await redisCli(cluster.replica(1).clientPort, ["SET", "k", "v"])).trim()).toBe("OK");
    let onThree = "";
    await waitFor(
      "replica 3's client port",
      async () => {
        onThree = (
          await redisCli(cluster.replica(3).clientPort, ["SET", "k3", "v"]).catch(() => "")
        ).trim();
        return onThree !== "";
      },
      cluster,
    );
    expect(onThree).toMatch(/^(CLUSTERDOWN|TRYAGAIN|ERR|TIMEOUT)/);
    expect((await redisCli(cluster.replica(1).clientPort, ["GET", "k3"])).trim()).toBe("");
    // Neither side sends the other anything but hellos.
    expect(await cluster.metrics(3)).toContain('apus_peer_settings_agree{peer="1"} 0');
    expect(await cluster.metrics(3)).not.toMatch(
      /apus_peer_messages_sent_total\{type="[a-zA-Z]+"\} [1-9]/,
    );

    // Restarted with the cluster's value, it joins and catches up.
    await cluster.kill(3);
    cluster.launch(3);
    await waitFor(
      "replica 3 to catch up",
      async () =>
        (await redisCli(cluster.replica(3).clientPort, ["GET", "k"]).catch(() => "")).trim() ===
        "v",
      cluster,
    );
  });
});
