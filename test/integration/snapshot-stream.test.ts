/**
 * Snapshots that always arrive (issue 11): a replica that was down while the others wrote and
 * compacted their logs is sent the snapshot over the snapshot stream (TCP, chunked, resumable)
 * instead of one UDP message, with real processes on loopback.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { NetFaults, nftUsable } from "../../src/chaos/net-faults.ts";
import { type CertDir, makeClusterCerts } from "../transport/peer-certs.ts";
import { sleep, TestCluster } from "./cluster-harness.ts";
import { client } from "./keys.ts";

const MIB = 1024 * 1024;

/** `count` values of `bytes` each, different per key, and their digests. */
function bigValue(key: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let block = createHash("sha256").update(key).digest();
  for (let at = 0; at < bytes; at += block.byteLength) {
    block.copy(out, at);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

/** Write `count` 1 MiB values and `small` small keys through `port`; returns the keys written. */
async function writeStore(port: number, prefix: string, count: number, small: number) {
  const c = client(port);
  const keys: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const key = `${prefix}-big-${i}`;
      expect(await c.set(key, bigValue(key, MIB))).toBe("OK");
      keys.push(key);
    }
    for (let i = 0; i < small; i++) {
      const key = `${prefix}-small-${i}`;
      expect(await c.set(key, key)).toBe("OK");
      keys.push(key);
    }
  } finally {
    c.disconnect();
  }
  return keys;
}

/** The keys whose value read through `port` is not what writeStore wrote. */
async function wrongKeys(port: number, keys: readonly string[]): Promise<string[]> {
  const c = client(port);
  try {
    const wrong: string[] = [];
    for (const key of keys) {
      const value = await c.getBuffer(key);
      const expected = key.includes("-big-") ? bigValue(key, MIB) : Buffer.from(key);
      if (value === null || !value.equals(expected)) wrong.push(key);
    }
    return wrong;
  } finally {
    c.disconnect();
  }
}

/** A counter's value in Prometheus text (summed over the series matching `labels`). */
function counter(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(" ");
    if (series === undefined || value === undefined) continue;
    if (series !== name && !series.startsWith(`${name}{`)) continue;
    if (labels !== "" && !series.includes(labels)) continue;
    sum += Number(value);
  }
  return sum;
}

// No tail below the snapshot: a replica behind is sent the snapshot, however little it lags.
const SNAPSHOT_ARGS = [
  ...["--snapshot-every-bytes", "1m", "--max-value-bytes", "2m"],
  ...["--compaction-tail-slots", "0"],
];

/**
 * Kill a follower, write a store of a few MiB (compacted into snapshots), start the follower
 * again and wait until it applied what the leader chose; returns the lagging replica.
 */
async function lagAndCatchUp(
  cluster: TestCluster,
  prefix: string,
  laggingArgs: readonly string[] = [],
  duringCatchUp?: (leader: number, lagging: number) => Promise<void>,
): Promise<{ leader: number; lagging: number; keys: string[] }> {
  const leader = await cluster.waitForLeader();
  const lagging = cluster.replicas.find((r) => r.id !== leader)!.id;
  await cluster.kill(lagging);
  const keys = await writeStore(cluster.replica(leader).clientPort, prefix, 6, 200);
  expect(counter(await cluster.metrics(leader), "apus_snapshots_total")).toBeGreaterThan(0);
  cluster.launch(lagging, laggingArgs);
  await duringCatchUp?.(leader, lagging);
  const target = (await cluster.status(leader))!.commitIndex;
  await cluster.waitForApplied([lagging], target, 60_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${cluster.outputs()}`);
  });
  return { leader, lagging, keys };
}

describe("snapshots over the snapshot stream", () => {
  let cluster: TestCluster | null = null;

  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });

  it("catches a replica up that was down while the others compacted, and it converges", async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: SNAPSHOT_ARGS });
    const { leader, lagging, keys } = await lagAndCatchUp(cluster, "a");
    expect(await wrongKeys(cluster.replica(lagging).clientPort, keys)).toEqual([]);
    const received = await cluster.metrics(lagging);
    expect(
      counter(received, "apus_snapshot_stream_transfers_completed_total", 'direction="in"'),
      cluster.outputs(),
    ).toBeGreaterThan(0);
    expect(counter(received, "apus_snapshot_stream_bytes_received_total")).toBeGreaterThan(4 * MIB);
    const sent = await cluster.metrics(leader);
    expect(
      counter(sent, "apus_snapshot_stream_transfers_completed_total", 'direction="out"'),
    ).toBeGreaterThan(0);
    expect(cluster.replica(leader).output).toMatch(/snapshot transfer to replica \d completed/);
    // Every replica holds the same store afterwards.
    for (const r of cluster.replicas) {
      expect(await wrongKeys(r.clientPort, keys)).toEqual([]);
    }
  });

  it("arrives with the receiver's UDP receive buffer far smaller than the snapshot", async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: SNAPSHOT_ARGS });
    // 64 KiB: a snapshot of several MiB sent as one UDP message (the transport's fragments, all
    // at once) overflows it every time; the stream's TCP flow control does not care.
    const { lagging, keys } = await lagAndCatchUp(cluster, "b", [
      "--peer-recv-buffer-bytes",
      "64k",
    ]);
    expect(await wrongKeys(cluster.replica(lagging).clientPort, keys)).toEqual([]);
    expect(
      counter(
        await cluster.metrics(lagging),
        "apus_snapshot_stream_transfers_completed_total",
        'direction="in"',
      ),
    ).toBeGreaterThan(0);
  });
});

describe("the snapshot stream under --transport tcp with mutual TLS", () => {
  let cluster: TestCluster | null = null;
  let certs: CertDir | null = null;

  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
    certs?.remove();
    certs = null;
  });

  it("runs on the --peers port + --snapshot-port-offset, inside TLS, and catches a replica up", async () => {
    certs = makeClusterCerts(3);
    const dir = certs;
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: [...SNAPSHOT_ARGS, "--transport", "tcp", "--snapshot-port-offset", "1"],
      extraArgsFor: (id) => {
        const files = dir.files(`replica-${id}`);
        return [
          "--peer-tls-cert",
          files.cert,
          "--peer-tls-key",
          files.key,
          "--peer-tls-ca",
          files.ca,
        ];
      },
    });
    const { lagging, keys } = await lagAndCatchUp(cluster, "t");
    expect(await wrongKeys(cluster.replica(lagging).clientPort, keys)).toEqual([]);
    const text = await cluster.metrics(lagging);
    expect(
      counter(text, "apus_snapshot_stream_transfers_completed_total", 'direction="in"'),
      cluster.outputs(),
    ).toBeGreaterThan(0);
    expect(counter(text, "apus_snapshot_stream_transfers_failed_total", 'reason="handshake"')).toBe(
      0,
    );
  });
});

describe.skipIf(!nftUsable())("a snapshot transfer broken part way", () => {
  let cluster: TestCluster | null = null;
  const faults = new NetFaults([]);

  afterEach(async () => {
    faults.destroy();
    await cluster?.stop();
    cluster = null;
  });

  it("resumes at the offset the receiver holds, not from 0", async () => {
    // Small chunks, a short stall timeout: the break is noticed quickly and some bytes are held.
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: [
        ...SNAPSHOT_ARGS,
        "--snapshot-chunk-bytes",
        "64k",
        "--snapshot-stall-timeout-ms",
        "1000",
      ],
    });
    // Every replica's stream port (TCP; the transport is UDP) is slowed to ~2 MiB/s, so a
    // transfer of several MiB is still under way when it is cut.
    const ports = cluster.replicas.map((r) => r.peerPort).join(", ");
    faults.create();
    faults.rule(
      "tcp",
      "dport",
      `{ ${ports} }`,
      "limit",
      "rate",
      "over",
      "2",
      "mbytes/second",
      "drop",
    );
    const { lagging, keys } = await lagAndCatchUp(cluster, "c", [], async (_leader, id) => {
      const port = cluster!.replica(id).peerPort;
      // Once the receiver holds some bytes, drop every TCP packet to its stream port for 2.5 s:
      // the stall timeout closes the connection, and the sender connects again afterwards.
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const text = await cluster!.metrics(id).catch(() => "");
        if (counter(text, "apus_snapshot_stream_bytes_received_total") > 0) break;
        await sleep(20);
      }
      // /status shows the transfer under way (the stream is throttled: it takes seconds).
      const transfers = (await cluster!.status(id))?.snapshotTransfers ?? [];
      expect(transfers.length, JSON.stringify(transfers)).toBe(1);
      expect(transfers[0]).toMatchObject({ direction: "in" });
      expect(transfers[0]!.doneBytes).toBeLessThan(transfers[0]!.totalBytes);
      faults.firstRule("tcp", "dport", String(port), "drop");
      await sleep(2500);
      faults.heal();
    });
    expect(await wrongKeys(cluster.replica(lagging).clientPort, keys)).toEqual([]);
    const text = await cluster.metrics(lagging);
    expect(
      counter(text, "apus_snapshot_stream_transfers_resumed_total", 'direction="in"'),
      cluster.outputs(),
    ).toBeGreaterThan(0);
  });
});
