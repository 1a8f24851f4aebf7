/**
 * `npm run bench:redis`: redis-benchmark against a local three-replica apus-smr cluster and, in
 * the same run, against a bare redis-server on the same machine. Prints a markdown table (and
 * writes it with the raw numbers as JSON under bench/results/). A benchmark, not a test: nothing
 * is asserted. This 2-core machine is shared and noisy: read the ratios, and the medians of
 * --repeat runs, not single absolute numbers.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeCa, makeLeaf } from "../test/transport/peer-certs.ts";
import {
  type RoleCpuUs,
  roleCpuTotal,
  snapshotThreadCpu,
  THREAD_ROLES,
  type ThreadCpuDelta,
  threadCpuDelta,
  zeroRoleCpu,
} from "./lib/thread-cpu.ts";

const USAGE = `Usage: npm run bench:redis -- [options]

  --requests N     requests per redis-benchmark run (default 200000)
  --repeat K       runs per point; the table shows medians (default 3)
  --clients LIST   concurrent connections, comma-separated (default 1,8,24)
  --durability D   fsync or memory for the cluster (default fsync)
  --replica-flags "FLAGS"
                   extra flags for every replica, e.g. --replica-flags="--workers 0" (with "=": the
                   value starts with a dash). Give it more than once to
                   compare: one cluster per variant, all started at once, and each repeat runs
                   every target in turn (A, B, A, B, …), so the machine's noise hits both alike
  --baseline DIR   also run DIR/dist/replica.js (another checkout, built there: e.g.
                   git worktree add /tmp/base <commit> && cd /tmp/base && npm ci && npm run build)
                   as a cluster of its own, in turn with the others: before/after in one run
  --tls            also run every cluster (not --baseline) as a twin with TLS on its client
                   port (--tls-cert/--tls-key, a throwaway CA's certificate, by openssl), and
                   bare redis-server on a TLS port too; redis-benchmark --tls --cacert. A third
                   table sets each TLS target beside its plain twin (throughput, p50, CPU per
                   request), written to bench/results/tls-DATE.md (also with --quick)
  --quick          a smoke run: 2000 requests, 1 repeat, clients 1,8
  --help

Each test (SET, GET) is its own redis-benchmark run, with the CPU of every thread of the
target's processes read from /proc before and after it: the second table gives CPU µs per
request summed over the cluster and split by replica (leader, followers) and by thread
(consensus, connection workers, main, libuv pool, V8 helpers, other). The kernel counts CPU in
10 ms ticks: those figures mean something over runs of 2 s or more (the table gives each run's
length; choose --requests so that even bare redis-server runs that long).
`;

/** Below this a run's CPU figures are mostly tick rounding: the table flags them. */
const CPU_WINDOW_MS_MIN = 2000;
/** How long the idle cluster's CPU is read before the first run. */
const IDLE_WINDOW_MS = 2000;

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A CA and a certificate it signed for 127.0.0.1 (--tls): the replicas' and redis-server's. */
interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** What redis-benchmark --cacert checks the servers against. */
  readonly ca: string;
}

function makeTlsFiles(dir: string): TlsFiles {
  makeCa(dir, "bench-ca");
  makeLeaf(dir, "bench", { ca: "bench-ca" });
  return {
    cert: join(dir, "bench.crt"),
    key: join(dir, "bench.key"),
    ca: join(dir, "bench-ca.crt"),
  };
}
const REPLICA_JS = join(ROOT, "dist", "replica.js");

interface Row {
  target: string;
  test: string;
  clients: number;
  pipeline: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  consensusP50Us: number | null;
  consensusP99Us: number | null;
  cpu: PointCpu;
}

/** One process of a target: a replica (by id and role) or the bare redis-server. */
interface TargetProcess {
  readonly label: string;
  readonly pid: number;
}

/** CPU of one process over a run, µs per request, by thread role. */
interface ProcessCpu {
  readonly label: string;
  readonly usPerRequest: RoleCpuUs;
  readonly totalUsPerRequest: number;
}

/** CPU of a target's processes over a run (or the medians over runs). */
interface PointCpu {
  /** Length of the run (median over runs); below CPU_WINDOW_MS_MIN the figures are coarse. */
  readonly windowMs: number;
  /** Summed over every process of the target, µs per request. */
  readonly totalUsPerRequest: number;
  readonly processes: readonly ProcessCpu[];
}

function run(cmd: string, args: readonly string[], timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${cmd} ${args.join(" ")}: ${error.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** redis-benchmark --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms" */
function parseCsv(text: string): Map<string, { rps: number; p50Ms: number; p99Ms: number }> {
  const result = new Map<string, { rps: number; p50Ms: number; p99Ms: number }>();
  for (const line of text.split("\n")) {
    const cells = line.split(",").map((c) => c.replace(/"/g, ""));
    if (cells.length < 7 || cells[0] === "test") continue;
    result.set(cells[0]!, {
      rps: Number(cells[1]),
      p50Ms: Number(cells[4]),
      p99Ms: Number(cells[6]),
    });
  }
  return result;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(2000),
    headers: { "x-apus-admin": "1" }, // /latency?reset=1 changes state: see refuseCrossSite
  });
  return (await response.json()) as T;
}

const BASE = 20_000 + (process.pid % 1000) * 10;

/** Ports between one variant's cluster and the next (--replica-flags given more than once). */
const VARIANT_PORT_STRIDE = 1000;

class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), "apus-bench-"));
  readonly children: ChildProcess[] = [];
  readonly durability: string;
  /** Extra replica flags (--replica-flags), split on spaces. */
  readonly flags: readonly string[];
  /** TLS on the client port (--tls): clients need redis-benchmark --tls. */
  readonly tls: TlsFiles | null;
  private readonly base: number;
  private readonly replicaJs: string;
  constructor(
    durability: string,
    flags: readonly string[],
    variant: number,
    replicaJs = REPLICA_JS,
    tls: TlsFiles | null = null,
  ) {
    this.durability = durability;
    this.tls = tls;
    this.flags = tls === null ? flags : [...flags, "--tls-cert", tls.cert, "--tls-key", tls.key];
    this.base = BASE + variant * VARIANT_PORT_STRIDE;
    this.replicaJs = replicaJs;
  }

  clientPort(id: number): number {
    return this.base + id;
  }
  adminPort(id: number): number {
    return this.base + 5 + id;
  }

  async start(): Promise<number> {
    const peers = [1, 2, 3].map((id) => `127.0.0.1:${this.base + 100 + id}`).join(",");
    writeFileSync(join(this.dir, "secret"), "bench-secret-0123456789abcdef0123\n");
    for (const id of [1, 2, 3]) {
      this.children.push(
        spawn(
          process.execPath,
          [
            this.replicaJs,
            "--id",
            String(id),
            "--peers",
            peers,
            "--client-port",
            String(this.clientPort(id)),
            "--admin-port",
            String(this.adminPort(id)),
            "--data-dir",
            join(this.dir, `r${id}`),
            "--durability",
            this.durability,
            "--secret-file",
            join(this.dir, "secret"),
            "--log-level",
            "warn",
            ...this.flags,
          ],
          { stdio: "ignore" },
        ),
      );
    }
    for (let i = 0; i < 200; i++) {
      await sleep(100);
      try {
        const status = await getJson<{ role: string; id: number }>(
          `http://127.0.0.1:${this.adminPort(1)}/status`,
        );
        const leader = (status as unknown as { leader: number | null }).leader;
        if (leader !== null) return leader;
      } catch {
        // not up yet
      }
    }
    throw new Error("the cluster elected no leader within 20 s");
  }

  /** Replica id → pid; the ids run 1 … 3 in spawn order. */
  pid(id: number): number {
    const pid = this.children[id - 1]?.pid;
    if (pid === undefined) throw new Error(`replica ${id} has no process`);
    return pid;
  }

  stop(): void {
    for (const child of this.children) child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** redis-benchmark's test names (-t) and how its CSV names them. */
const TESTS = ["SET", "GET"] as const;
type Test = (typeof TESTS)[number];

interface Target {
  readonly name: string;
  readonly port: number;
  /** Admin port whose /latency times this target's requests; null where it would not. */
  readonly admin: number | null;
  /** The processes whose CPU counts as this target's, leader first. */
  readonly processes: readonly TargetProcess[];
  /** TLS on its port: the CA file redis-benchmark checks it with; null for plain TCP. */
  readonly tlsCa: string | null;
  /** A TLS target's plain twin (same build, flags and role), by name; null otherwise. */
  readonly plainTwin: string | null;
}

/** CPU µs per request of each process between two snapshots, `requestCount` requests apart. */
function perRequestCpu(
  delta: ThreadCpuDelta,
  processes: readonly TargetProcess[],
  requestCount: number,
): PointCpu {
  const perProcess = processes.map((p): ProcessCpu => {
    const roles = delta.byPid.get(p.pid) ?? zeroRoleCpu();
    const usPerRequest = zeroRoleCpu();
    for (const role of THREAD_ROLES) usPerRequest[role] = roles[role] / requestCount;
    return { label: p.label, usPerRequest, totalUsPerRequest: roleCpuTotal(usPerRequest) };
  });
  return {
    windowMs: delta.windowMs,
    totalUsPerRequest: perProcess.reduce((sum, p) => sum + p.totalUsPerRequest, 0),
    processes: perProcess,
  };
}

/** One redis-benchmark run of one test against one target, with its processes' CPU around it. */
async function runOnce(
  target: Target,
  test: Test,
  point: { clients: number; pipeline: number },
  requests: number,
): Promise<Row> {
  if (target.admin !== null) await getJson(`http://127.0.0.1:${target.admin}/latency?reset=1`);
  const pids = target.processes.map((p) => p.pid);
  const before = snapshotThreadCpu(pids);
  const csv = await run("redis-benchmark", [
    ...(target.tlsCa === null ? [] : ["--tls", "--cacert", target.tlsCa]),
    "-p",
    String(target.port),
    "-t",
    test.toLowerCase(),
    "-n",
    String(requests),
    "-c",
    String(point.clients),
    "-P",
    String(point.pipeline),
    "--csv",
    "-r",
    "100000",
  ]);
  const cpu = perRequestCpu(
    threadCpuDelta(before, snapshotThreadCpu(pids)),
    target.processes,
    requests,
  );
  const latency =
    target.admin === null
      ? null
      : await getJson<{ p50Us: number; p99Us: number }>(`http://127.0.0.1:${target.admin}/latency`);
  const m = parseCsv(csv).get(test);
  if (m === undefined)
    throw new Error(`redis-benchmark -t ${test} printed no ${test} line:\n${csv}`);
  return {
    target: target.name,
    test,
    clients: point.clients,
    pipeline: point.pipeline,
    ...m,
    consensusP50Us: latency?.p50Us ?? null,
    consensusP99Us: latency?.p99Us ?? null,
    cpu,
  };
}

/** Medians over runs of one point, field by field (so the parts need not add up to the total). */
function medianCpu(of: readonly PointCpu[]): PointCpu {
  const first = of[0]!;
  return {
    windowMs: median(of.map((c) => c.windowMs)),
    totalUsPerRequest: median(of.map((c) => c.totalUsPerRequest)),
    processes: first.processes.map((p, i) => {
      const usPerRequest = zeroRoleCpu();
      for (const role of THREAD_ROLES)
        usPerRequest[role] = median(of.map((c) => c.processes[i]!.usPerRequest[role]));
      return {
        label: p.label,
        usPerRequest,
        totalUsPerRequest: median(of.map((c) => c.processes[i]!.totalUsPerRequest)),
      };
    }),
  };
}

function medianRow(of: readonly Row[]): Row | null {
  const first = of[0];
  if (first === undefined) return null;
  const med = (f: (s: Row) => number | null) => {
    const v = of.map(f).filter((x): x is number => x !== null);
    return v.length === 0 ? null : median(v);
  };
  return {
    target: first.target,
    test: first.test,
    clients: first.clients,
    pipeline: first.pipeline,
    rps: med((s) => s.rps)!,
    p50Ms: med((s) => s.p50Ms)!,
    p99Ms: med((s) => s.p99Ms)!,
    consensusP50Us: med((s) => s.consensusP50Us),
    consensusP99Us: med((s) => s.consensusP99Us),
    cpu: medianCpu(of.map((s) => s.cpu)),
  };
}

/** What each process burns with no client at all (heartbeats, timers, spinning), % of a core. */
async function idleCpu(
  processes: readonly TargetProcess[],
): Promise<{ label: string; percentOfCore: number; byRole: RoleCpuUs }[]> {
  const pids = processes.map((p) => p.pid);
  const before = snapshotThreadCpu(pids);
  await sleep(IDLE_WINDOW_MS);
  const delta = threadCpuDelta(before, snapshotThreadCpu(pids));
  return processes.map((p) => {
    const roles = delta.byPid.get(p.pid) ?? zeroRoleCpu();
    const byRole = zeroRoleCpu();
    // µs per ms of wall clock / 10 = % of one core.
    for (const role of THREAD_ROLES) byRole[role] = roles[role] / delta.windowMs / 10;
    return { label: p.label, percentOfCore: roleCpuTotal(byRole), byRole };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: "string" },
      repeat: { type: "string" },
      clients: { type: "string" },
      durability: { type: "string" },
      "replica-flags": { type: "string", multiple: true },
      baseline: { type: "string" },
      tls: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const quick = values.quick === true;
  const requests = Number(values.requests ?? (quick ? 2000 : 200_000));
  const repeat = Number(values.repeat ?? (quick ? 1 : 3));
  const clientCounts = (values.clients ?? (quick ? "1,8" : "1,8,24")).split(",").map(Number);
  const durability = values.durability ?? "fsync";
  const points: { clients: number; pipeline: number }[] = clientCounts.map((c) => ({
    clients: c,
    pipeline: 1,
  }));
  points.push({ clients: clientCounts.at(-1)!, pipeline: 16 });

  const tlsDir = values.tls ? mkdtempSync(join(tmpdir(), "apus-bench-tls-")) : null;
  const tls = tlsDir === null ? null : makeTlsFiles(tlsDir);
  const redisPort = BASE + 50;
  const redisTlsPort = BASE + 51;
  const redisTlsFlags =
    tls === null
      ? []
      : [
          "--tls-port",
          String(redisTlsPort),
          "--tls-cert-file",
          tls.cert,
          "--tls-key-file",
          tls.key,
          "--tls-auth-clients",
          "no",
        ];
  const redis = spawn(
    "redis-server",
    [
      "--port",
      String(redisPort),
      "--save",
      "",
      "--appendonly",
      "no",
      "--bind",
      "127.0.0.1",
      ...redisTlsFlags,
    ],
    { stdio: "ignore" },
  );
  const variants = [...(values["replica-flags"] ?? [""])];
  const variantFlags = variants.map((flags) => flags.split(" ").filter((f) => f !== ""));
  const clusters = variantFlags.map((flags, i) => new Cluster(durability, flags, i));
  // Each variant's TLS twin: the same flags plus TLS on the client port, started beside it.
  if (tls !== null) {
    const count = variants.length;
    for (const [i, flags] of variantFlags.entries()) {
      clusters.push(new Cluster(durability, flags, count + i, REPLICA_JS, tls));
      variants.push(variants[i]!);
    }
  }
  if (values.baseline !== undefined) {
    const replicaJs = join(values.baseline, "dist", "replica.js");
    if (!existsSync(replicaJs))
      throw new Error(`--baseline ${values.baseline}: no ${replicaJs}; build that checkout first`);
    clusters.unshift(new Cluster(durability, [], variants.length, replicaJs));
    variants.unshift(`baseline ${values.baseline}`);
  }
  const rows: Row[] = [];
  const idleByCluster: Awaited<ReturnType<typeof idleCpu>>[] = [];
  try {
    const leaders = await Promise.all(clusters.map((c) => c.start()));
    await sleep(300);
    const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, Node ${process.versions.node}`;
    process.stdout.write(
      `redis-benchmark: ${requests} requests per run, ${repeat} runs per point, cluster durability ${durability}, leader ${leaders.join(", ")}\nmachine: ${machine} (shared, noisy)\n`,
    );
    const bare = "redis-server (bare)";
    const targets: Target[] = [
      {
        name: bare,
        port: redisPort,
        admin: null,
        processes: [{ label: "redis-server", pid: redis.pid! }],
        tlsCa: null,
        plainTwin: null,
      },
    ];
    if (tls !== null)
      targets.push({
        name: "redis-server (bare) [TLS]",
        port: redisTlsPort,
        admin: null,
        processes: [{ label: "redis-server", pid: redis.pid! }],
        tlsCa: tls.ca,
        plainTwin: bare,
      });
    for (const [i, cluster] of clusters.entries()) {
      const leader = leaders[i]!;
      const labelled = clusters.length > 1 || variants[0] !== "";
      const plainSuffix = labelled ? ` [${variants[i] || "this build"}]` : "";
      const suffix =
        cluster.tls === null
          ? plainSuffix
          : labelled
            ? ` [${variants[i] || "this build"}, TLS]`
            : " [TLS]";
      const tlsCa = cluster.tls?.ca ?? null;
      const replicas: TargetProcess[] = [1, 2, 3].map((id) => ({
        label: `${id === leader ? "leader" : "follower"} r${id}`,
        pid: cluster.pid(id),
      }));
      replicas.sort(
        (a, b) => Number(b.label.startsWith("leader")) - Number(a.label.startsWith("leader")),
      );
      targets.push(
        {
          name: `apus-smr leader${suffix}`,
          port: cluster.clientPort(leader),
          admin: cluster.adminPort(leader),
          processes: replicas,
          tlsCa,
          plainTwin: tlsCa === null ? null : `apus-smr leader${plainSuffix}`,
        },
        // The leader times only requests taken from its own rings: no consensus column here.
        {
          name: `apus-smr follower${suffix}`,
          port: cluster.clientPort((leader % 3) + 1),
          admin: null,
          processes: replicas,
          tlsCa,
          plainTwin: tlsCa === null ? null : `apus-smr follower${plainSuffix}`,
        },
      );
      const idle = await idleCpu(replicas);
      process.stdout.write(
        `idle cluster${suffix}: ${idle.map((p) => `${p.label} ${p.percentOfCore.toFixed(1)} %`).join(", ")} of a core\n`,
      );
      idleByCluster.push(idle);
    }
    for (const point of points) {
      const samples = new Map<Target, Row[]>(targets.map((t) => [t, []]));
      // Each repeat runs every target once, so a noisy minute on the shared machine hits all.
      for (let r = 0; r < repeat; r++) {
        for (const target of targets) {
          for (const test of TESTS)
            samples.get(target)!.push(await runOnce(target, test, point, requests));
        }
      }
      for (const target of targets) {
        for (const test of TESTS) {
          const row = medianRow(samples.get(target)!.filter((s) => s.test === test));
          if (row === null) continue;
          rows.push(row);
          process.stdout.write(
            `  ${row.target.padEnd(20)} ${test} -c ${point.clients} -P ${point.pipeline}: ${Math.round(row.rps)} req/s, p50 ${row.p50Ms} ms, ${row.cpu.totalUsPerRequest.toFixed(1)} CPU µs/req\n`,
          );
        }
      }
    }
    const table = `${formatTable(rows)}\n\n${formatCpuTable(rows)}`;
    process.stdout.write(`\n${table}\n`);
    const outDir = join(ROOT, "bench", "results");
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString().slice(0, 10);
    if (tls !== null) {
      const tlsTable = formatTlsTable(rows, targets);
      process.stdout.write(`\n${tlsTable}\n`);
      const heading = `# TLS on the client port: cost (bench:redis --tls)\n\nredis-benchmark: ${requests} requests per run, ${repeat} runs per point (medians), cluster durability ${durability}\nmachine: ${machine} (shared, noisy)\n`;
      writeFileSync(
        join(outDir, `tls-${stamp}.md`),
        `${heading}\n${tlsTable}\n\n## All targets\n\n${table}\n`,
      );
    }
    if (!quick) {
      writeFileSync(
        join(outDir, `redis-benchmark-${stamp}.json`),
        `${JSON.stringify({ machine, requests, repeat, durability, variants, idle: idleByCluster, rows }, null, 2)}\n`,
      );
      writeFileSync(join(outDir, `redis-benchmark-${stamp}.md`), `${table}\n`);
    }
  } finally {
    for (const cluster of clusters) cluster.stop();
    redis.kill("SIGKILL");
    if (tlsDir !== null) rmSync(tlsDir, { recursive: true, force: true });
  }
}

/** Each TLS target beside its plain twin: what TLS costs in throughput, latency and CPU. */
function formatTlsTable(rows: readonly Row[], targets: readonly Target[]): string {
  const lines = [
    "TLS against plain TCP, same build and flags (ratios TLS ÷ plain; CPU summed over the target's processes, µs per request):",
    "",
    "| target | test | clients | pipeline | req/s plain | req/s TLS | ratio | p50 ms plain | p50 ms TLS | CPU µs/req plain | CPU µs/req TLS | ratio |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const row of rows) {
    const twin = targets.find((t) => t.name === row.target)?.plainTwin ?? null;
    if (twin === null) continue;
    const plain = rows.find(
      (r) =>
        r.target === twin &&
        r.test === row.test &&
        r.clients === row.clients &&
        r.pipeline === row.pipeline,
    );
    if (plain === undefined) continue;
    const cpuPlain = plain.cpu.totalUsPerRequest;
    const cpuTls = row.cpu.totalUsPerRequest;
    lines.push(
      `| ${twin} | ${row.test} | ${row.clients} | ${row.pipeline} | ${Math.round(plain.rps).toLocaleString("en-US")} | ${Math.round(row.rps).toLocaleString("en-US")} | ${(row.rps / plain.rps).toFixed(2)} | ${plain.p50Ms} | ${row.p50Ms} | ${formatUs(cpuPlain)} | ${formatUs(cpuTls)} | ${cpuPlain > 0 ? (cpuTls / cpuPlain).toFixed(2) : ""} |`,
    );
  }
  return lines.join("\n");
}

function formatTable(rows: readonly Row[]): string {
  const lines = [
    "| target | test | clients | pipeline | req/s | ratio to bare redis | client p50 ms | client p99 ms | leader consensus p50 µs | p99 µs |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const row of rows) {
    const bare = rows.find(
      (r) =>
        r.target.startsWith("redis-server") &&
        r.test === row.test &&
        r.clients === row.clients &&
        r.pipeline === row.pipeline,
    );
    const ratio = bare === undefined ? "" : (row.rps / bare.rps).toFixed(2);
    lines.push(
      `| ${row.target} | ${row.test} | ${row.clients} | ${row.pipeline} | ${Math.round(row.rps).toLocaleString("en-US")} | ${ratio} | ${row.p50Ms} | ${row.p99Ms} | ${row.consensusP50Us ?? ""} | ${row.consensusP99Us ?? ""} |`,
    );
  }
  return lines.join("\n");
}

function formatUs(us: number): string {
  return us >= 100 ? Math.round(us).toLocaleString("en-US") : us.toFixed(1);
}

/** One row per point for the target's sum, then one per process, µs of CPU per request. */
function formatCpuTable(rows: readonly Row[]): string {
  const lines = [
    `CPU µs per request (utime+stime of every thread over the whole run ÷ requests; medians over runs; runs under ${CPU_WINDOW_MS_MIN / 1000} s marked *, too short for 10 ms ticks):`,
    "",
    `| target | test | clients | pipeline | process | run s | µs/req | ${THREAD_ROLES.join(" | ")} |`,
    `|---|---|--:|--:|---|--:|--:|${THREAD_ROLES.map(() => "--:").join("|")}|`,
  ];
  for (const row of rows) {
    const short = row.cpu.windowMs < CPU_WINDOW_MS_MIN ? "*" : "";
    const head = `| ${row.target} | ${row.test} | ${row.clients} | ${row.pipeline} |`;
    const seconds = `${(row.cpu.windowMs / 1000).toFixed(1)}${short}`;
    if (row.cpu.processes.length > 1) {
      const sum = zeroRoleCpu();
      for (const p of row.cpu.processes)
        for (const role of THREAD_ROLES) sum[role] += p.usPerRequest[role];
      lines.push(
        `${head} **all** | ${seconds} | **${formatUs(row.cpu.totalUsPerRequest)}** | ${THREAD_ROLES.map((r) => formatUs(sum[r])).join(" | ")} |`,
      );
    }
    for (const p of row.cpu.processes) {
      lines.push(
        `${head} ${p.label} | ${seconds} | ${formatUs(p.totalUsPerRequest)} | ${THREAD_ROLES.map((r) => formatUs(p.usPerRequest[r])).join(" | ")} |`,
      );
    }
  }
  return lines.join("\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:redis failed: ${(error as Error).message}\n`);
  process.exit(1);
});
