/**
 * `npm run bench:peers`: apus-smr beside etcd and ZooKeeper on this machine. Starts a cluster of
 * each (same size, loopback, fsync on for all three), drives each leader with the same closed-loop
 * Node harness (bench/lib/peers-load.ts), and measures per point throughput, p50/p99 latency and
 * the CPU each system's servers spend per write; the same run measures the machine's floor
 * (fdatasync, UDP and TCP round trips). Systems take turns point by point and every point is
 * repeated, so background load on this shared machine falls on all of them alike; tables show
 * medians. A benchmark, not a test: nothing is asserted.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseList, parsePositive } from "./lib/args.ts";
import { REPLICA_JS, ROOT, sleep } from "./lib/cluster.ts";
import { probeFsync } from "./lib/fsync-probe.ts";
import { measureMachineLimits } from "./lib/machine-limits.ts";
import { ensureZnodes, type KeyWriter, openWriter } from "./lib/peers-clients.ts";
import { driveClosedLoop, loopKey } from "./lib/peers-load.ts";
import {
  type IdleCpu,
  type MachineFloor,
  machineLine,
  type PeerMachine,
  type PeerPoint,
  type PeerResults,
  type PeerSample,
  type PeerSettings,
  peersCharts,
  peersMarkdown,
  SYSTEM_LABEL,
  summarizePeer,
} from "./lib/peers-report.ts";
import {
  findEtcd,
  findZooKeeperClasspath,
  type PeerCluster,
  SYSTEM_ORDER,
  type SystemName,
  startApus,
  startEtcd,
  startZooKeeper,
  stopAllNow,
} from "./lib/peers-servers.ts";
import { machineBusyPercent, machineCpu, processesCpuSeconds } from "./lib/probes.ts";

const USAGE = `Usage: npm run bench:peers -- [options]     (or: node bench/peers.ts [options] after npm run build)

Starts an apus-smr, an etcd and a ZooKeeper cluster of the same size on 127.0.0.1 (temp dirs,
free ports, fsync on for all three: apus-smr --durability fsync, etcd's default, ZooKeeper
forceSync=yes), and drives each leader with one closed-loop Node harness: C loops, a connection
each (ioredis SET, etcd3 put, node-zookeeper-client setData), one write outstanding per loop.
Reports throughput, p50/p99 latency and server CPU per write, medians over repetitions with the
systems interleaved, and the machine's floor (fdatasync, UDP and TCP round trips) from the same
run. Writes results.md, results.json and SVG charts. Needs etcd (Debian etcd-server) and
ZooKeeper (Debian zookeeper + a JRE): scripts/ensure-bench-peers.sh installs them as root.

  --replicas LIST     cluster sizes, comma-separated (default 3; e.g. 3,5,7,9)
  --clients LIST      concurrent clients (default 1,8,24)
  --repeat K          repetitions per point; tables show medians (default 3)
  --duration-ms MS    measured window per point (default 5000)
  --warmup-ms MS      load before each window, not counted (default 1500)
  --value-bytes B     bytes per value written (default 64)
  --round-trips N     round trips per UDP/TCP floor probe, and fdatasyncs / 5 (default 5000)
  --systems LIST      of apus-smr, zookeeper, etcd (default all three)
  --quick             smoke run: clients 1,8, 1 repetition, 1 s windows (about a minute)
  --out DIR           where to write (default bench/results/peers-<date>/; --quick: a temp dir)
  --help
`;

/** Per system, once after its cluster starts: load at the largest C so JITs and caches warm. */
const INITIAL_WARMUP_FACTOR = 2;
/** Pause after the clusters start, before the first warm-up. */
const SETTLE_MS = 500;
/** Window over which every cluster's CPU is read with no client load, before the points. */
const IDLE_WINDOW_MS = 2_000;

interface Options {
  readonly settings: PeerSettings;
  readonly systems: readonly SystemName[];
  readonly roundTrips: number;
  readonly outDir: string;
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      replicas: { type: "string" },
      clients: { type: "string" },
      repeat: { type: "string" },
      "duration-ms": { type: "string" },
      "warmup-ms": { type: "string" },
      "value-bytes": { type: "string" },
      "round-trips": { type: "string" },
      systems: { type: "string" },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help === true) return null;
  const quick = values.quick === true;
  const replicaCounts = parseList("replicas", values.replicas ?? "3");
  for (const n of replicaCounts)
    if (n < 3 || n % 2 === 0)
      throw new Error(`--replicas: use odd sizes of 3 or more (3,5,7,9); got ${n}`);
  const systems = (values.systems ?? SYSTEM_ORDER.join(",")).split(",").map((s) => s.trim());
  for (const s of systems)
    if (!SYSTEM_ORDER.includes(s as SystemName))
      throw new Error(`--systems: unknown "${s}"; systems are ${SYSTEM_ORDER.join(", ")}`);
  const stamp = new Date().toISOString().slice(0, 10);
  return {
    settings: {
      replicaCounts,
      clientCounts: parseList("clients", values.clients ?? (quick ? "1,8" : "1,8,24")),
      repeat: parsePositive("repeat", values.repeat ?? (quick ? "1" : "3")),
      durationMs: parsePositive("duration-ms", values["duration-ms"] ?? (quick ? "1000" : "5000")),
      warmupMs: parsePositive("warmup-ms", values["warmup-ms"] ?? (quick ? "500" : "1500")),
      valueBytes: parsePositive("value-bytes", values["value-bytes"] ?? "64"),
      quick,
    },
    // In turn order, whatever order --systems named them in.
    systems: SYSTEM_ORDER.filter((s) => systems.includes(s)),
    roundTrips: parsePositive("round-trips", values["round-trips"] ?? (quick ? "1000" : "5000")),
    outDir:
      values.out ??
      (quick
        ? join(tmpdir(), `apus-peers-quick-${stamp}-${process.pid}`)
        : join(ROOT, "bench", "results", `peers-${stamp}`)),
  };
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** Wall time of one point: warm-up, window, opening and closing the connections (~0.7 s here). */
function pointMsEstimate(settings: PeerSettings): number {
  return settings.warmupMs + settings.durationMs + 700;
}

function javaVersion(): string {
  try {
    // `java -version` prints to stderr; `2>&1` is not available without a shell.
    const result = spawnSync("java", ["-version"], { encoding: "utf8" });
    const first = `${result.stderr ?? ""}${result.stdout ?? ""}`.split("\n")[0]?.trim() ?? "";
    return first === "" ? "java: not found" : first;
  } catch {
    return "java: not found";
  }
}

function describeMachine(): PeerMachine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    nodeVersion: process.versions.node,
    javaVersion: javaVersion(),
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg(),
    loadAverageAtEnd: [],
  };
}

/** What is missing to run, in words; empty when nothing is. */
function missingTools(systems: readonly SystemName[]): string[] {
  const missing: string[] = [];
  if (systems.includes("apus-smr") && !existsSync(REPLICA_JS))
    missing.push(`${REPLICA_JS} (run npm run build)`);
  if (systems.includes("etcd") && findEtcd() === null)
    missing.push("etcd (Debian: apt-get install etcd-server)");
  if (systems.includes("zookeeper") && findZooKeeperClasspath() === null)
    missing.push("/usr/share/java/zookeeper.jar (Debian: apt-get install zookeeper)");
  return missing;
}

async function startSystem(system: SystemName, replicaCount: number): Promise<PeerCluster> {
  switch (system) {
    case "apus-smr":
      return await startApus(replicaCount);
    case "etcd":
      return await startEtcd(replicaCount, findEtcd()!);
    case "zookeeper":
      return await startZooKeeper(replicaCount, findZooKeeperClasspath()!);
  }
}

async function openWriters(cluster: PeerCluster, count: number): Promise<KeyWriter[]> {
  const port = cluster.clientPort(cluster.leaderIndex);
  return await Promise.all(Array.from({ length: count }, () => openWriter(cluster.system, port)));
}

async function closeWriters(writers: readonly KeyWriter[]): Promise<void> {
  await Promise.all(writers.map((w) => w.close().catch(() => {})));
}

interface CpuReading {
  readonly serverCpuSeconds: number;
  readonly clientCpuUs: number;
  readonly machine: ReturnType<typeof machineCpu>;
}

function readCpu(cluster: PeerCluster): CpuReading {
  const usage = process.cpuUsage();
  return {
    serverCpuSeconds: processesCpuSeconds(cluster.pids()),
    clientCpuUs: usage.user + usage.system,
    machine: machineCpu(),
  };
}

/** One point on one system: C fresh connections to the leader, warm-up, window, close. */
async function measure(
  cluster: PeerCluster,
  clientCount: number,
  settings: PeerSettings,
  repetition: number,
): Promise<PeerSample> {
  const leaderBefore = cluster.leaderIndex;
  const writers = await openWriters(cluster, clientCount);
  /** Filled in by the harness at the window's edges (it calls both before it resolves). */
  const readings: { start?: CpuReading; end?: CpuReading } = {};
  try {
    const outcome = await driveClosedLoop(
      writers,
      settings,
      () => {
        readings.start = readCpu(cluster);
      },
      () => {
        readings.end = readCpu(cluster);
      },
    );
    const { start, end } = readings;
    if (start === undefined || end === undefined)
      throw new Error("no CPU reading at a window edge");
    const leaderNow = await cluster.currentLeader().catch(() => null);
    if (leaderNow !== null) cluster.leaderIndex = leaderNow;
    const ops = Math.max(1, outcome.completedCount);
    const serverCpuUs = (end.serverCpuSeconds - start.serverCpuSeconds) * 1e6;
    return {
      repetition,
      throughputOps: outcome.completedCount / (outcome.windowMs / 1000),
      p50Us: outcome.p50Us,
      p99Us: outcome.p99Us,
      maxUs: outcome.maxUs,
      serverCpuUsPerOp: serverCpuUs / ops,
      clientCpuUsPerOp: (end.clientCpuUs - start.clientCpuUs) / ops,
      serverCpuPercent: (100 * serverCpuUs) / 1000 / outcome.windowMs,
      machineBusyPercent: machineBusyPercent(start.machine, end.machine),
      completedCount: outcome.completedCount,
      errorCount: outcome.errorCount,
      firstError: outcome.firstError,
      windowMs: outcome.windowMs,
      leaderMoved: leaderNow !== leaderBefore,
    };
  } finally {
    await closeWriters(writers);
  }
}

async function measureFloor(roundTrips: number): Promise<MachineFloor> {
  progress(
    `floor: ${Math.ceil(roundTrips / 5)} fdatasyncs, ${roundTrips} UDP and TCP round trips…`,
  );
  const fsync = probeFsync(Math.ceil(roundTrips / 5));
  const limits = await measureMachineLimits(roundTrips);
  const floor = { fsync, udp: limits.udpProcesses, tcp: limits.tcpProcesses };
  progress(
    `floor: fdatasync p50 ${fsync.p50Us.toFixed(0)} µs, UDP RTT p50 ${floor.udp.p50Us.toFixed(0)} µs, TCP RTT p50 ${floor.tcp.p50Us.toFixed(0)} µs`,
  );
  return floor;
}

/** Starts every system's cluster of this size, one after another (each binds its ports first). */
async function startAll(
  systems: readonly SystemName[],
  replicaCount: number,
  versions: Record<string, string>,
): Promise<PeerCluster[]> {
  const clusters: PeerCluster[] = [];
  for (const system of systems) {
    const t0 = Date.now();
    progress(`${SYSTEM_LABEL[system]}: starting ${replicaCount} servers…`);
    const cluster = await startSystem(system, replicaCount);
    clusters.push(cluster);
    versions[SYSTEM_LABEL[system]] = cluster.version;
    progress(
      `${SYSTEM_LABEL[system]}: ${cluster.version}, leader ${cluster.leaderIndex} of ${replicaCount} (${Date.now() - t0} ms)`,
    );
  }
  return clusters;
}

/** Every cluster's own CPU with no clients, over one window (they are all idle at once). */
async function measureIdle(clusters: readonly PeerCluster[]): Promise<IdleCpu[]> {
  const t0 = process.hrtime.bigint();
  const before = clusters.map((c) => processesCpuSeconds(c.pids()));
  await sleep(IDLE_WINDOW_MS);
  const after = clusters.map((c) => processesCpuSeconds(c.pids()));
  const windowS = Number(process.hrtime.bigint() - t0) / 1e9;
  return clusters.map((c, i) => {
    const idle = {
      system: c.system,
      replicaCount: c.replicaCount,
      cpuPercent: (100 * (after[i]! - before[i]!)) / windowS,
    };
    progress(`${SYSTEM_LABEL[c.system]}: idle CPU ${idle.cpuPercent.toFixed(1)} % of a core`);
    return idle;
  });
}

async function runSize(
  options: Options,
  replicaCount: number,
  versions: Record<string, string>,
  idle: IdleCpu[],
  onSample: (system: SystemName, clientCount: number, sample: PeerSample) => void,
): Promise<void> {
  const { settings } = options;
  const maxClients = Math.max(...settings.clientCounts);
  const clusters = await startAll(options.systems, replicaCount, versions);
  try {
    for (const cluster of clusters)
      if (cluster.system === "zookeeper")
        await ensureZnodes(
          cluster.clientPort(cluster.leaderIndex),
          Array.from({ length: maxClients }, (_, i) => loopKey(i)),
        );
    await sleep(SETTLE_MS);
    idle.push(...(await measureIdle(clusters)));
    for (const cluster of clusters) {
      const warmupMs = settings.warmupMs * INITIAL_WARMUP_FACTOR;
      progress(
        `${SYSTEM_LABEL[cluster.system]}: warming up at C=${maxClients} for ${warmupMs + settings.durationMs} ms`,
      );
      await measure(cluster, maxClients, { ...settings, warmupMs }, 0);
    }
    for (let repetition = 1; repetition <= settings.repeat; repetition++)
      for (const clientCount of settings.clientCounts)
        for (const cluster of clusters) {
          const sample = await measure(cluster, clientCount, settings, repetition);
          onSample(cluster.system, clientCount, sample);
        }
  } finally {
    for (const cluster of clusters) await cluster.stop();
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options === null) {
    process.stdout.write(USAGE);
    return;
  }
  const { settings } = options;
  const missing = missingTools(options.systems);
  if (missing.length > 0)
    throw new Error(
      `missing: ${missing.join("; ")}. As root on Debian, bash scripts/ensure-bench-peers.sh installs etcd and ZooKeeper.`,
    );
  const started = Date.now();
  const machine = describeMachine();
  const sampleCount =
    options.systems.length *
    settings.replicaCounts.length *
    settings.clientCounts.length *
    settings.repeat;
  const estimateMs =
    sampleCount * pointMsEstimate(settings) +
    settings.replicaCounts.length *
      options.systems.length *
      (6000 + settings.warmupMs * 2 + settings.durationMs);
  progress(
    `bench:peers: ${options.systems.map((s) => SYSTEM_LABEL[s]).join(", ")} × replicas ${settings.replicaCounts.join(",")} × clients ${settings.clientCounts.join(",")} × ${settings.repeat} repetition(s), ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms each\n` +
      `machine: ${machineLine(machine)}\n` +
      `${sampleCount} points; estimated ${formatDuration(estimateMs)}; results → ${options.outDir}`,
  );
  const floor = await measureFloor(options.roundTrips);
  const versions: Record<string, string> = {};
  const idle: IdleCpu[] = [];
  const samples = new Map<string, PeerSample[]>();
  let done = 0;
  for (const replicaCount of settings.replicaCounts) {
    await runSize(options, replicaCount, versions, idle, (system, clientCount, sample) => {
      const key = `${system}/${replicaCount}/${clientCount}`;
      samples.set(key, [...(samples.get(key) ?? []), sample]);
      done++;
      const elapsed = Date.now() - started;
      progress(
        `  [${done}/${sampleCount}] ${SYSTEM_LABEL[system].padEnd(9)} N=${replicaCount} C=${String(clientCount).padStart(2)} rep ${sample.repetition}: ` +
          `${Math.round(sample.throughputOps)} ops/s, p50 ${sample.p50Us} µs, p99 ${sample.p99Us} µs, ` +
          `server CPU ${Math.round(sample.serverCpuUsPerOp)} µs/op (${Math.round(sample.serverCpuPercent)} %), client ${Math.round(sample.clientCpuUsPerOp)} µs/op, machine ${Math.round(sample.machineBusyPercent)} % busy` +
          `${sample.errorCount > 0 ? `, ${sample.errorCount} errors (${sample.firstError})` : ""}${sample.leaderMoved ? ", LEADER MOVED" : ""}` +
          ` | elapsed ${formatDuration(elapsed)}, ETA ${formatDuration((sampleCount - done) * pointMsEstimate(settings))}`,
      );
    });
  }
  const points: PeerPoint[] = [];
  for (const replicaCount of settings.replicaCounts)
    for (const clientCount of settings.clientCounts)
      for (const system of options.systems) {
        const of = samples.get(`${system}/${replicaCount}/${clientCount}`);
        if (of === undefined) continue;
        points.push({ system, replicaCount, clientCount, samples: of, median: summarizePeer(of) });
      }
  const results: PeerResults = {
    machine: { ...machine, loadAverageAtEnd: loadavg() },
    settings,
    versions,
    floor,
    idle,
    points,
    elapsedMs: Date.now() - started,
  };
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  const charts = await peersCharts(results, (file, svg) =>
    writeFileSync(join(options.outDir, file), svg),
  );
  const md = peersMarkdown(results, charts);
  writeFileSync(join(options.outDir, "results.md"), md);
  process.stdout.write(`${md}\n`);
  progress(
    `wrote ${options.outDir}/results.json, results.md, ${charts.join(", ")} in ${formatDuration(results.elapsedMs)}`,
  );
}

let stopping = false;
function onSignal(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  progress(`bench:peers: ${signal}: stopping every cluster`);
  stopAllNow();
  process.exit(130);
}
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("exit", stopAllNow);

main().catch((error: unknown) => {
  process.stderr.write(`bench:peers failed: ${(error as Error).stack ?? String(error)}\n`);
  stopAllNow();
  process.exit(1);
});
