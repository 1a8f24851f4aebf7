/**
 * How fast a large snapshot reaches a lagging replica over the snapshot stream (issue 11), with
 * and without packet loss. Three real replicas on loopback (`dist/replica.js`, fsync): one is
 * killed, the others take a store of --mib MiB in --value-mib MiB values and compact it into one
 * snapshot; the lagging replica is started again, and the leader streams it the snapshot. With
 * --loss P, nftables drops P % of the packets to and from the lagging replica's peer port (UDP
 * transport and TCP stream alike) from before it starts until it caught up.
 *
 *   npm run build && node bench/snapshot-stream.bench.ts [--mib 1024] [--value-mib 8] [--loss 20]
 *
 * Runs once without loss and once with it, and prints a markdown table: the receiver's own
 * transfer time and rate (its log line: OFFER to delivered), and the time from start to caught
 * up. Needs root and nft for the lossy run. Not run in CI: it writes the store through the log
 * of three replicas (a few GiB of disk) and holds several copies of it in memory.
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { NetFaults, nftUsable } from "../src/chaos/net-faults.ts";
import { sleep, TestCluster } from "../test/integration/cluster-harness.ts";
import { client } from "../test/integration/keys.ts";

const MIB = 1024 * 1024;
const faults = new NetFaults([]);
/**
 * After the snapshot arrived, how long the lagging replica is given to apply the entries after
 * it: under heavy loss an entry of several MiB (one transport message, many UDP fragments) may
 * never arrive whole, which is not what this benchmark measures.
 */
const CATCH_UP_WAIT_MS = 120_000;

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "1024" },
    "value-mib": { type: "string", default: "8" },
    loss: { type: "string", default: "20" },
    runs: { type: "string", default: "loss,clean" },
  },
});
const storeMib = Number(values.mib);
const valueMib = Number(values["value-mib"]);
const lossPercent = Number(values.loss);

interface RunResult {
  readonly loss: number;
  readonly snapshotMib: number;
  readonly transferS: number;
  readonly mibPerS: number;
  /** Start to caught up; null when not within CATCH_UP_WAIT_MS after the transfer. */
  readonly catchUpS: number | null;
  /** Snapshot transfers the lagging replica began (the leader's, and a Promise's in an election). */
  readonly transfersIn: number;
  readonly resumed: number;
  readonly failedAttempts: number;
}

function counter(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const [series, value] = line.split(" ");
    if (series === undefined || value === undefined) continue;
    if (series !== name && !series.startsWith(`${name}{`)) continue;
    if (labels !== "" && !series.includes(labels)) continue;
    sum += Number(value);
  }
  return sum;
}

async function writeStore(port: number): Promise<void> {
  const c = client(port);
  const value = Buffer.alloc(valueMib * MIB, 0x5a);
  try {
    for (let i = 0; i < storeMib / valueMib; i++) {
      value.writeUInt32LE(i, 0); // every value its own
      for (let attempt = 0; ; attempt++) {
        try {
          if ((await c.set(`big-${i}`, value)) === "OK") break;
        } catch (error) {
          if (attempt >= 5) throw error;
          await sleep(500);
        }
      }
    }
    for (let i = 0; i < 20; i++) await c.set(`small-${i}`, "x");
  } finally {
    c.disconnect();
  }
}

/** Drop `lossPercent` % of the packets to and from `port`, TCP and UDP alike. */
function lossRules(port: number): void {
  faults.create();
  for (const side of ["dport", "sport"])
    faults.rule(
      ...["meta", "l4proto", "{ tcp, udp }", "th", side, String(port)],
      ...["numgen", "random", "mod", "100", "<", String(lossPercent), "drop"],
    );
}

function dropRules(): void {
  faults.destroy();
}

async function run(loss: number): Promise<RunResult> {
  const cluster = await TestCluster.start({
    replicas: 3,
    workers: 0,
    heartbeatMs: 50,
    electionTimeoutMs: 1000,
    extraArgs: [
      // One snapshot, taken as the last large value is applied (its command bytes pass the
      // store's size): the entries after it are small. A large entry after the snapshot would
      // travel as one transport message, which 20 % loss never lets through whole.
      "--snapshot-every-bytes",
      `${storeMib}m`,
      "--max-value-bytes",
      `${valueMib}m`,
      "--max-request-bytes",
      `${valueMib + 1}m`,
      "--request-timeout-ms",
      "60000",
      "--log-level",
      "info",
    ],
  });
  try {
    const leader = await cluster.waitForLeader();
    const lagging = cluster.replicas.find((r) => r.id !== leader)!.id;
    await cluster.kill(lagging);
    const writeStarted = performance.now();
    await writeStore(cluster.replica(leader).clientPort);
    console.error(
      `  store of ${storeMib} MiB written in ${((performance.now() - writeStarted) / 1000).toFixed(1)} s`,
    );
    while (counter(await cluster.metrics(leader), "apus_snapshots_total") < 1) await sleep(200);
    if (loss > 0) lossRules(cluster.replica(lagging).peerPort);
    const started = performance.now();
    cluster.launch(lagging);
    const target = (await cluster.status(leader))!.commitIndex;
    for (;;) {
      const text = await cluster.metrics(lagging).catch(() => "");
      if (counter(text, "apus_snapshot_stream_transfers_completed_total", 'direction="in"') > 0)
        break;
      await sleep(250);
    }
    let catchUpS: number | null = null;
    try {
      await cluster.waitForApplied([lagging], target, CATCH_UP_WAIT_MS);
      catchUpS = (performance.now() - started) / 1000;
    } catch {
      console.error(
        `  replica ${lagging} did not apply slot ${target} within ${CATCH_UP_WAIT_MS} ms`,
      );
    }
    dropRules();
    const text = await cluster.metrics(lagging);
    for (const r of [leader, lagging]) {
      for (const entry of cluster.replica(r).output.split("\n")) {
        if (entry.includes("snapshot transfer")) console.error(`  ${r}: ${entry.slice(0, 400)}`);
      }
    }
    const line =
      /snapshot transfer from replica \d+ completed: slot \d+, ([\d.]+) MiB in ([\d.]+) s \(([\d.]+) MiB\/s\)/.exec(
        cluster.replica(lagging).output,
      );
    if (line === null) throw new Error(`no completed transfer logged\n${cluster.outputs()}`);
    return {
      loss,
      snapshotMib: Number(line[1]),
      transferS: Number(line[2]),
      mibPerS: Number(line[3]),
      catchUpS,
      resumed: counter(text, "apus_snapshot_stream_transfers_resumed_total", 'direction="in"'),
      failedAttempts: counter(
        text,
        "apus_snapshot_stream_transfers_failed_total",
        'direction="in"',
      ),
      transfersIn: cluster
        .replica(lagging)
        .output.split("\n")
        .filter((entry) => /snapshot transfer from replica \d+ started/.test(entry)).length,
    };
  } finally {
    dropRules();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const results: RunResult[] = [];
  for (const kind of String(values.runs).split(",")) {
    const loss = kind === "loss" ? lossPercent : 0;
    if (loss > 0 && !nftUsable()) {
      console.error("  no root or no nft: the lossy run is skipped");
      continue;
    }
    console.error(`run: ${storeMib} MiB store, ${loss} % loss`);
    results.push(await run(loss));
  }
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  console.log(
    `Snapshot stream, ${storeMib} MiB store in ${valueMib} MiB values, 3 replicas on loopback (fsync, UDP transport), ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString()}\n`,
  );
  console.log(
    "| packet loss to/from the lagging replica | snapshot | transfer (OFFER → delivered) | rate | transfers in | start → caught up | resumed | broken attempts |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.loss} % | ${r.snapshotMib.toFixed(0)} MiB | ${r.transferS.toFixed(1)} s | ${r.mibPerS.toFixed(1)} MiB/s | ${r.transfersIn} | ${r.catchUpS === null ? "not in 120 s" : `${r.catchUpS.toFixed(1)} s`} | ${r.resumed} | ${r.failedAttempts} |`,
    );
  }
}

await main();
