/**
 * `npm run bench:scaling`: consensus latency as replicas (3…9) and concurrent connections (1…96)
 * grow, on real clusters of `dist/replica.js` processes (and of dist/thread-cluster.js threads
 * over shared memory, when that file exists). Closed-loop clients (one SET outstanding per
 * connection) run in piscina threads and aim at the leader. Each point reports the leader's
 * consensus p50/p99, client p50/p99, throughput, average batch size and CPU; the same run measures
 * the machine's UDP/TCP/ring round trips so every figure can be read as a ratio to them. A
 * benchmark, not a test: nothing is asserted (--quick is the CI smoke run).
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as hdr from "hdr-histogram-js";
import { Piscina } from "piscina";
import { parseList, parsePositive } from "./lib/args.ts";
import { type LinePoint, lineChartSpec, renderSvg } from "./lib/charts.ts";
import {
  type Cluster,
  getJson,
  getText,
  type LatencySummary,
  REPLICA_JS,
  ROOT,
  sleep,
  startCluster,
  THREAD_CLUSTER_JS,
  threadClusterAvailable,
} from "./lib/cluster.ts";
import { type DriveResult, type DriveTask, VARIANTS, type Variant } from "./lib/contracts.ts";
import { measureMachineLimits } from "./lib/machine-limits.ts";
import {
  consensusCounters,
  machineBusyPercent,
  machineCpu,
  processCpuSeconds,
  processesCpuSeconds,
} from "./lib/probes.ts";
import {
  type Machine,
  markdown,
  type Point,
  type Results,
  rises,
  type Sample,
  type Settings,
  summarize,
} from "./lib/report.ts";
import { createLatencyHistogram } from "./lib/resp-load.ts";

const USAGE = `Usage: npm run bench:scaling -- [options]     (or: node bench/scaling.ts [options] after npm run build)

Starts real clusters (node dist/replica.js processes on 127.0.0.1, --durability memory) and drives
the leader with closed-loop clients: each connection keeps one SET outstanding. Writes
results.json, results.md and SVG charts.

  --replicas LIST        replica counts (default 3,5,7,9)
  --connections LIST     concurrent connections (default 1,8,24,48,96)
  --duration-ms MS       measured time per point (default 5000)
  --warmup-ms MS         load before each measured window, not counted (default 1000)
  --repeat K             repetitions per point; tables show medians (default 3)
  --modes LIST           of full, one-slot, full-shm, full-threads-udp (default full,one-slot,
                         full-shm; the last two need dist/thread-cluster.js and are skipped
                         with a note without it)
                           full       default flags: batching on, --workers default
                           one-slot   --workers 1 --batch-max-commands 1 (a slot per request)
                           full-shm   full, replicas as threads of dist/thread-cluster.js over
                                      shared memory (no kernel on the peer path)
                           full-threads-udp  full-shm's layout over loopback UDP (isolates the
                                      transport from the process layout)
  --load-threads N       load-generator threads (piscina; default 2)
  --round-trips N        round trips per machine-limit probe (default 5000)
  --quick                smoke run for CI: replicas 3,5 × connections 1,8, full + one-slot,
                         1 s points, 1 repetition (under a minute); options given win
  --out DIR              where to write (default bench/results/scaling-<date>/; --quick: a temp dir)
  --help
`;

/** Time from dispatching the load tasks to the start of warm-up: threads connect their sockets. */
const CONNECT_GRACE_MS = 300;
/** Per-sample overhead beyond grace + warm-up + window (admin reads, histogram merge), for the ETA. */
const SAMPLE_OVERHEAD_MS_ESTIMATE = 400;
const KEY_COUNT = 10_000;
const VALUE_BYTES: readonly [number, number] = [16, 64];
/** After a cluster elects its leader: a short pause before the first warm-up. */
const SETTLE_MS = 300;

interface Options {
  readonly settings: Settings;
  readonly variantNames: readonly string[];
  readonly roundTrips: number;
  readonly outDir: string;
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      replicas: { type: "string" },
      connections: { type: "string" },
      "duration-ms": { type: "string" },
      "warmup-ms": { type: "string" },
      repeat: { type: "string" },
      modes: { type: "string" },
      "load-threads": { type: "string" },
      "round-trips": { type: "string" },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help === true) return null;
  const quick = values.quick === true;
  const variantNames = (values.modes ?? (quick ? "full,one-slot" : "full,one-slot,full-shm"))
    .split(",")
    .map((m) => m.trim());
  for (const name of variantNames)
    if (!VARIANTS.some((v) => v.name === name))
      throw new Error(
        `--modes: unknown mode "${name}"; modes are ${VARIANTS.map((v) => v.name).join(", ")}`,
      );
  const replicaCounts = parseList("replicas", values.replicas ?? (quick ? "3,5" : "3,5,7,9"));
  for (const n of replicaCounts)
    if (n < 3)
      throw new Error(`--replicas: ${n} replicas cannot tolerate a failure; use 3 or more`);
  const stamp = new Date().toISOString().slice(0, 10);
  return {
    settings: {
      replicaCounts,
      connectionCounts: parseList(
        "connections",
        values.connections ?? (quick ? "1,8" : "1,8,24,48,96"),
      ),
      durationMs: parsePositive("duration-ms", values["duration-ms"] ?? (quick ? "1000" : "5000")),
      warmupMs: parsePositive("warmup-ms", values["warmup-ms"] ?? (quick ? "300" : "1000")),
      repeat: parsePositive("repeat", values.repeat ?? (quick ? "1" : "3")),
      loadThreads: parsePositive("load-threads", values["load-threads"] ?? "2"),
      quick,
      target: "leader",
      valueBytes: VALUE_BYTES,
    },
    variantNames,
    roundTrips: parsePositive("round-trips", values["round-trips"] ?? (quick ? "1000" : "5000")),
    outDir:
      values.out ??
      (quick
        ? join(tmpdir(), `apus-scaling-quick-${stamp}-${process.pid}`)
        : join(ROOT, "bench", "results", `scaling-${stamp}`)),
  };
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** Time a cluster of N takes to start and elect, for the estimate (9 processes on 2 cores: slow). */
function clusterStartMsEstimate(replicaCount: number): number {
  return 1500 + 500 * replicaCount;
}

function sampleMsEstimate(settings: Settings): number {
  return CONNECT_GRACE_MS + settings.warmupMs + settings.durationMs + SAMPLE_OVERHEAD_MS_ESTIMATE;
}

/** Splits `total` connections over at most `threads` tasks, as evenly as it goes. */
function split(total: number, threads: number): number[] {
  const taskCount = Math.min(total, threads);
  return Array.from(
    { length: taskCount },
    (_, i) => Math.floor(total / taskCount) + (i < total % taskCount ? 1 : 0),
  );
}

function sleepUntil(epochMs: number): Promise<void> {
  return sleep(Math.max(0, epochMs - Date.now()));
}

interface Snapshot {
  readonly atMs: number;
  readonly replicaCpuSeconds: number;
  /** Per replica process, in id order (one entry for a thread-cluster). */
  readonly perProcessCpuSeconds: readonly number[];
  /** This benchmark process, every thread (main, load generators), µs. */
  readonly benchCpuUs: number;
  readonly machine: ReturnType<typeof machineCpu>;
  readonly counters: ReturnType<typeof consensusCounters>;
}

function benchCpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

async function snapshot(cluster: Cluster, leaderAdmin: string): Promise<Snapshot> {
  const metrics = await getText(`${leaderAdmin}/metrics`);
  return {
    atMs: Date.now(),
    replicaCpuSeconds: processesCpuSeconds(cluster.pids()),
    perProcessCpuSeconds: cluster.pids().map((pid) => processCpuSeconds(pid) ?? 0),
    benchCpuUs: benchCpuUs(),
    machine: machineCpu(),
    counters: consensusCounters(metrics),
  };
}

/** One measure window: warm-up, then `durationMs` of closed-loop load at the leader. */
async function measure(
  pool: Piscina,
  cluster: Cluster,
  connectionCount: number,
  settings: Settings,
  repetition: number,
): Promise<Sample> {
  const leaderAdmin = `http://127.0.0.1:${cluster.adminPort(cluster.leaderId)}`;
  const measureStartEpochMs = Date.now() + CONNECT_GRACE_MS + settings.warmupMs;
  const measureEndEpochMs = measureStartEpochMs + settings.durationMs;
  let connectionIndexBase = 0;
  const runs = split(connectionCount, settings.loadThreads).map((count) => {
    const task: DriveTask = {
      host: "127.0.0.1",
      port: cluster.clientPort(cluster.leaderId),
      connectionCount: count,
      connectionIndexBase,
      measureStartEpochMs,
      measureEndEpochMs,
      valueBytesMin: settings.valueBytes[0],
      valueBytesMax: settings.valueBytes[1],
      keyCount: KEY_COUNT,
      seed: repetition * 1_000_003 + connectionIndexBase,
    };
    connectionIndexBase += count;
    return pool.run(task, { name: "drive" }) as Promise<DriveResult>;
  });
  const allRuns = Promise.all(runs);
  allRuns.catch(() => {}); // awaited below; a failure before then must not be "unhandled"
  await sleepUntil(measureStartEpochMs);
  await getJson<LatencySummary>(`${leaderAdmin}/latency?reset=1`);
  const before = await snapshot(cluster, leaderAdmin);
  await sleepUntil(measureEndEpochMs);
  const consensus = await getJson<LatencySummary>(`${leaderAdmin}/latency`);
  const after = await snapshot(cluster, leaderAdmin);
  const results = await allRuns;

  const histogram = createLatencyHistogram();
  for (const r of results) {
    const part = hdr.decodeFromCompressedBase64(r.histogramBase64, 32, false);
    histogram.add(part);
    part.destroy();
  }
  const windowMs = after.atMs - before.atMs;
  const requestCount = results.reduce((a, r) => a + r.requestCount, 0);
  const loadWindowMs = Math.max(...results.map((r) => r.windowMs));
  const replicaCpuPercent =
    (100 * (after.replicaCpuSeconds - before.replicaCpuSeconds)) / (windowMs / 1000);
  const benchCpuPercent = (100 * (after.benchCpuUs - before.benchCpuUs)) / 1000 / windowMs;
  const busyPercent = machineBusyPercent(before.machine, after.machine);
  const batchCount = after.counters.batchRequestsCount - before.counters.batchRequestsCount;
  const sample: Sample = {
    repetition,
    consensus,
    clientP50Us: histogram.getValueAtPercentile(50),
    clientP99Us: histogram.getValueAtPercentile(99),
    clientMaxUs: histogram.maxValue,
    throughputRps: requestCount / (settings.durationMs / 1000),
    requestCount,
    errorCount: results.reduce((a, r) => a + r.errorCount, 0),
    batchAvg:
      batchCount > 0
        ? (after.counters.batchRequestsSum - before.counters.batchRequestsSum) / batchCount
        : null,
    chosenSlots: after.counters.chosenSlots - before.counters.chosenSlots,
    replicaCpuPercent:
      (100 * (after.replicaCpuSeconds - before.replicaCpuSeconds)) / (windowMs / 1000),
    cpuPerRequestUs: perReplicaCpu(cluster, before, after, requestCount),
    loadgenCpuPercent:
      (100 * results.reduce((a, r) => a + r.cpuWindowUs, 0)) / 1000 / Math.max(1, loadWindowMs),
    benchCpuPercent,
    machineBusyPercent: busyPercent,
    otherCpuPercent: Math.max(0, busyPercent * cpus().length - replicaCpuPercent - benchCpuPercent),
    windowMs,
  };
  histogram.destroy();
  return sample;
}

/** Each replica process's CPU µs per request over the window; null for a one-process cluster. */
function perReplicaCpu(
  cluster: Cluster,
  before: Snapshot,
  after: Snapshot,
  requestCount: number,
): Sample["cpuPerRequestUs"] {
  if (before.perProcessCpuSeconds.length !== cluster.replicaCount || requestCount === 0)
    return null;
  const usPerRequest = (i: number) =>
    ((after.perProcessCpuSeconds[i]! - before.perProcessCpuSeconds[i]!) * 1e6) / requestCount;
  const followers: number[] = [];
  for (let id = 1; id <= cluster.replicaCount; id++)
    if (id !== cluster.leaderId) followers.push(usPerRequest(id - 1));
  return { leader: usPerRequest(cluster.leaderId - 1), followers };
}

function describeMachine(): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    nodeVersion: process.versions.node,
    date: new Date().toISOString(),
    kernel: release(),
    loadAverageAtStart: loadavg(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

async function writeCharts(results: Results, outDir: string): Promise<string[]> {
  const files: string[] = [];
  const { replicaCounts, connectionCounts } = results.settings;
  for (const variant of results.variants) {
    const points: LinePoint[] = results.points
      .filter((p) => p.variant === variant.name)
      .map((p) => ({
        x: p.replicaCount,
        y: p.median.consensusP50Us,
        series: `${p.connectionCount} conn`,
      }));
    if (points.length === 0) continue;
    const file = `consensus-p50-vs-replicas-${variant.name}.svg`;
    const spec = lineChartSpec({
      title: `Consensus latency p50 vs replicas: ${variant.name}`,
      subtitle: `${variant.runner}, ${variant.transport}, --durability memory, leader-aimed closed loop`,
      xTitle: "replicas",
      yTitle: "consensus p50 at the leader (µs)",
      seriesTitle: "connections",
      points,
      xValues: replicaCounts,
    });
    writeFileSync(join(outDir, file), await renderSvg(spec));
    files.push(file);
  }
  const fewest = Math.min(...replicaCounts);
  for (const [metric, label] of [
    ["consensusP50Us", "consensus p50 at the leader (µs)"],
    ["clientP50Us", "client p50 (µs)"],
  ] as const) {
    const points: LinePoint[] = results.points
      .filter((p) => p.replicaCount === fewest)
      .map((p) => {
        const v = results.variants.find((x) => x.name === p.variant)!;
        return { x: p.connectionCount, y: p.median[metric], series: `${v.name} (${v.transport})` };
      });
    if (points.length === 0) continue;
    const file = `${metric === "consensusP50Us" ? "consensus" : "client"}-p50-vs-connections-${fewest}-replicas.svg`;
    const spec = lineChartSpec({
      title: `${metric === "consensusP50Us" ? "Consensus" : "Client"} latency p50 vs connections, ${fewest} replicas`,
      subtitle: `one line per mode/transport; UDP round trip here: ${results.limits.udpProcesses.p50Us.toFixed(0)} µs p50`,
      xTitle: "concurrent connections (log scale)",
      yTitle: label,
      seriesTitle: "mode (transport)",
      points,
      xValues: connectionCounts,
      xLog: true,
    });
    writeFileSync(join(outDir, file), await renderSvg(spec));
    files.push(file);
  }
  return files;
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options === null) {
    process.stdout.write(USAGE);
    return;
  }
  const { settings } = options;
  if (!existsSync(REPLICA_JS)) throw new Error(`${REPLICA_JS} is missing: run npm run build first`);
  const started = Date.now();
  const skipped: { variant: string; reason: string }[] = [];
  const variants: Variant[] = [];
  for (const name of options.variantNames) {
    const variant = VARIANTS.find((v) => v.name === name)!;
    if (variant.runner === "thread-cluster" && !threadClusterAvailable()) {
      const reason = `${THREAD_CLUSTER_JS} does not exist (not built yet): no shared-memory transport in this run`;
      process.stdout.write(`note: skipping ${name}: ${reason}\n`);
      skipped.push({ variant: name, reason });
      continue;
    }
    variants.push(variant);
  }
  const machine = describeMachine();
  const sampleCount =
    variants.length *
    settings.replicaCounts.length *
    settings.connectionCounts.length *
    settings.repeat;
  const estimateMs =
    sampleCount * sampleMsEstimate(settings) +
    variants.length * settings.replicaCounts.reduce((a, n) => a + clusterStartMsEstimate(n), 0) +
    4 * options.roundTrips * 0.1;
  process.stdout.write(
    `bench:scaling: ${variants.map((v) => v.name).join(", ")} × replicas ${settings.replicaCounts.join(",")} × connections ${settings.connectionCounts.join(",")} × ${settings.repeat} repetition(s), ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms each\n` +
      `machine: ${machine.cores} × ${machine.cpuModel}, Node ${machine.nodeVersion}, load average ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")}\n` +
      `${sampleCount} points; estimated ${formatDuration(estimateMs)}; results → ${options.outDir}\n`,
  );

  process.stdout.write(`machine limits (${options.roundTrips} round trips each, 64 B):\n`);
  const limits = await measureMachineLimits(options.roundTrips);
  for (const r of Object.values(limits))
    process.stdout.write(
      `  ${r.name}: p50 ${r.p50Us.toFixed(1)} µs, p99 ${r.p99Us.toFixed(1)} µs\n`,
    );

  const pool = new Piscina({
    filename: new URL("./lib/resp-load.ts", import.meta.url).href,
    minThreads: settings.loadThreads,
    maxThreads: settings.loadThreads,
    idleTimeout: 60_000,
  });
  const samples = new Map<string, { leaderId: number; samples: Sample[] }>();
  let done = 0;
  try {
    for (const replicaCount of settings.replicaCounts) {
      // Every mode's cluster of this size runs at once and the modes take turns point by point:
      // on a shared, noisy machine the modes are then compared under the same background load.
      // The idle clusters' heartbeats show up in the "others" CPU column.
      const clusters: Cluster[] = [];
      try {
        for (const variant of variants) {
          process.stdout.write(
            `${variant.name}: starting ${replicaCount} replicas (${variant.runner})… `,
          );
          clusters.push(await startCluster(replicaCount, variant));
          process.stdout.write(`leader ${clusters.at(-1)!.leaderId}\n`);
        }
        await sleep(SETTLE_MS);
        for (let repetition = 1; repetition <= settings.repeat; repetition++) {
          for (const connectionCount of settings.connectionCounts) {
            for (const [index, variant] of variants.entries()) {
              const cluster = clusters[index]!;
              const sample = await measure(pool, cluster, connectionCount, settings, repetition);
              const key = `${variant.name}/${replicaCount}/${connectionCount}`;
              const entry = samples.get(key) ?? { leaderId: cluster.leaderId, samples: [] };
              entry.samples.push(sample);
              samples.set(key, entry);
              done++;
              const elapsed = Date.now() - started;
              process.stdout.write(
                `  [${done}/${sampleCount}] ${variant.name} N=${replicaCount} c=${connectionCount} rep ${repetition}/${settings.repeat}: ` +
                  `consensus p50 ${Math.round(sample.consensus.p50Us)} µs p99 ${Math.round(sample.consensus.p99Us)} µs, ` +
                  `client p50 ${sample.clientP50Us} µs p99 ${sample.clientP99Us} µs, ${Math.round(sample.throughputRps)} req/s, ` +
                  `batch ${sample.batchAvg?.toFixed(1) ?? "–"}, CPU replicas ${Math.round(sample.replicaCpuPercent)} %${sample.cpuPerRequestUs === null ? "" : ` (leader ${Math.round(sample.cpuPerRequestUs.leader)} µs/req, followers ${sample.cpuPerRequestUs.followers.map(Math.round).join("/")})`} loadgen ${Math.round(sample.loadgenCpuPercent)} % others ${Math.round(sample.otherCpuPercent)} %` +
                  `${sample.errorCount > 0 ? `, ${sample.errorCount} errors` : ""} | elapsed ${formatDuration(elapsed)}, ETA ${formatDuration((elapsed / done) * (sampleCount - done))}\n`,
              );
            }
          }
        }
      } finally {
        for (const cluster of clusters) await cluster.stop();
      }
    }
  } finally {
    await pool.destroy();
  }

  const points: Point[] = [];
  for (const variant of variants)
    for (const replicaCount of settings.replicaCounts)
      for (const connectionCount of settings.connectionCounts) {
        const entry = samples.get(`${variant.name}/${replicaCount}/${connectionCount}`);
        if (entry === undefined) continue;
        points.push({
          variant: variant.name,
          replicaCount,
          connectionCount,
          leaderId: entry.leaderId,
          samples: entry.samples,
          median: summarize(entry.samples),
        });
      }
  const results: Results = {
    machine,
    settings,
    variants,
    skipped,
    limits,
    points,
    rises: rises(
      points,
      settings,
      variants.map((v) => v.name),
    ),
    elapsedMs: Date.now() - started,
  };
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const charts = await writeCharts(results, options.outDir);
  const md = markdown(results, charts);
  writeFileSync(join(options.outDir, "results.md"), md);
  process.stdout.write(
    `\n${md}\nwrote ${options.outDir}/results.json, results.md, ${charts.join(", ")}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:scaling failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
