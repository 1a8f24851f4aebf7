/**
 * `npm run bench:app`: what transparent replication (--app) costs an unmodified server program.
 *
 * Redis: redis-benchmark -t set,get,incr,lpush at C connections against
 *   (a) a bare redis-server (the baseline),
 *   (b) three replicas fronting three redis-server copies, --durability fsync and memory
 *       (memory separates consensus + fsync from the cost of proxying through the copy),
 *   (c) three replicas running the embedded store (no --app), for comparison.
 * memcached: the same shape with bench/lib/memcache-load.ts (set, get) against a bare memcached
 *   and three replicas fronting memcached copies (--protocol memcache), fsync and memory.
 *
 * Per (variant, test, C): throughput, client p50/p99, and CPU per request of every process the
 * variant consists of (replicas + their program copies, or the bare server), from /proc/<pid>/stat
 * around each run. Runs are interleaved (per repetition, per C, per test, every variant in turn)
 * and the tables show medians. A benchmark, not a test: nothing is asserted, but the copies'
 * state is compared at the end of each phase (LLEN of redis-benchmark's list on every copy must
 * equal the LPUSHes sent; memcached copies must hold as many items as each other).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  installSignalCleanup,
  startBare,
  startReplicated,
  stopAll,
  type Target,
} from "./lib/app-targets.ts";
import { lineChartSpec, renderSvg } from "./lib/charts.ts";
import { REPLICA_JS, ROOT, sleep } from "./lib/cluster.ts";
import { probeFsync } from "./lib/fsync-probe.ts";
import { measureMachineLimits } from "./lib/machine-limits.ts";
import type { LoadResult } from "./lib/memcache-load.ts";
import { machineBusyPercent, machineCpu, processesCpuSeconds } from "./lib/probes.ts";
import { median } from "./lib/report.ts";

const USAGE = `Usage: npm run bench:app -- [options]

  --clients LIST   concurrent connections, comma-separated (default 1,8,24)
  --repeat K       runs per point, interleaved; tables show medians (default 3)
  --seconds S      target length of one run; -n is sized from a calibration run (default 2)
  --requests N     fixed requests per run instead (no calibration)
  --only P         redis or memcached: one program only
  --out DIR        where results go (default bench/results/app-<date>/; --quick: a temp dir)
  --quick          smoke run: 1 repetition, clients 1,8, 1000 requests per run
  --redraw DIR     only redraw DIR's charts from its results.json (no measurement)
  --help
`;

const REDIS_TESTS = ["set", "get", "incr", "lpush"] as const;
const MEMCACHE_TESTS = ["set", "get"] as const;
/** redis-benchmark -r: keys drawn from 100000, like the existing bench:redis. */
const KEYSPACE = 100_000;
/** A calibration run is long enough when it took this long (it doubles as the warm-up). */
const CALIBRATION_MS_MIN = 400;
const REQUESTS_MIN = 500;
const REQUESTS_MAX = 5_000_000;
const RUN_TIMEOUT_MS_MIN = 120_000;
const MEMCACHE_LOAD = new URL("./lib/memcache-load.ts", import.meta.url).pathname;

interface Options {
  readonly clients: readonly number[];
  readonly repeat: number;
  readonly seconds: number;
  readonly fixedRequests: number | null;
  readonly programs: readonly ("redis" | "memcached")[];
  readonly outDir: string;
  readonly quick: boolean;
  readonly redraw: string | null;
}

/** One load-generator run: what the load generator reports. */
interface RunResult {
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Error replies seen (the memcache load generator counts them; redis-benchmark does not). */
  readonly errors: number | null;
  /** get hits (memcache load generator only). */
  readonly hits: number | null;
}

interface Sample extends RunResult {
  readonly program: string;
  readonly variant: string;
  readonly test: string;
  readonly clients: number;
  readonly repetition: number;
  readonly wallMs: number;
  /** utime+stime of the variant's processes over the run / requests, µs. */
  readonly cpuUsPerRequest: number;
  /** The same CPU over the run's wall time: cores the variant's processes kept busy. */
  readonly serverCores: number;
  /** Every process on the machine (load generator, other tenants), % of all cores. */
  readonly machineBusyPercent: number;
}

interface Row {
  readonly program: string;
  readonly variant: string;
  readonly test: string;
  readonly clients: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuUsPerRequest: number;
  readonly serverCores: number;
  readonly machineBusyPercent: number;
  readonly runs: number;
}

interface VariantPlan {
  readonly name: string;
  readonly bare: boolean;
  start(): Promise<Target>;
}

interface ProgramPlan {
  readonly program: "redis" | "memcached";
  readonly loadGenerator: string;
  readonly tests: readonly string[];
  readonly variants: readonly VariantPlan[];
  run(port: number, test: string, clients: number, requests: number): Promise<RunResult>;
  /** After the phase: compare the copies' state; returns lines to print. */
  check(targets: readonly Target[], sent: ReadonlyMap<string, number>): Promise<string[]>;
}

// ---------------------------------------------------------------------------------------------
// Child processes of the load generators, killed on Ctrl-C.

const loadChildren = new Set<ChildProcess>();

function runProcess(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    loadChildren.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      loadChildren.delete(child);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      loadChildren.delete(child);
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(
            `${cmd} ${args.join(" ")}: ${signal ?? `exit ${code}`}${signal === "SIGKILL" ? ` (timeout ${timeoutMs} ms?)` : ""}\n${stderr.trim()}`,
          ),
        );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Redis.

/** redis-benchmark --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms" */
function parseRedisCsv(text: string, test: string): { rps: number; p50Ms: number; p99Ms: number } {
  for (const line of text.split("\n")) {
    const cells = line.split(",").map((c) => c.replace(/"/g, ""));
    if (cells.length < 7 || cells[0]!.toLowerCase() !== test) continue;
    return { rps: Number(cells[1]), p50Ms: Number(cells[4]), p99Ms: Number(cells[6]) };
  }
  throw new Error(`redis-benchmark printed no ${test.toUpperCase()} line:\n${text}`);
}

async function redisRun(
  port: number,
  test: string,
  clients: number,
  requests: number,
): Promise<RunResult> {
  const csv = await runProcess(
    "redis-benchmark",
    [
      ...["-h", "127.0.0.1", "-p", String(port), "-t", test, "-n", String(requests)],
      ...["-c", String(clients), "-r", String(KEYSPACE), "--csv"],
    ],
    timeoutFor(requests),
  );
  return { requests, ...parseRedisCsv(csv, test), errors: null, hits: null };
}

/** One request/reply on a fresh connection: reply complete when `done(text)` says so. */
function ask(port: number, request: string, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`127.0.0.1:${port}: no complete reply to ${JSON.stringify(request)}`));
    }, 5000);
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      text += d;
      if (done(text)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write(request);
  });
}

/** RESP integer reply of a one-word-argument command, e.g. LLEN mylist. */
async function respInteger(port: number, ...words: string[]): Promise<number> {
  const request = `*${words.length}\r\n${words.map((w) => `$${w.length}\r\n${w}\r\n`).join("")}`;
  const reply = await ask(port, request, (t) => t.endsWith("\r\n"));
  if (!reply.startsWith(":")) throw new Error(`${words.join(" ")}: ${reply.trim()}`);
  return Number(reply.slice(1).trim());
}

/** Until the copies agree (followers apply a little after the leader answers), up to 5 s. */
async function settledValues(read: () => Promise<number[]>): Promise<number[]> {
  let values = await read();
  for (let i = 0; i < 50 && new Set(values).size > 1; i++) {
    await sleep(100);
    values = await read();
  }
  return values;
}

async function redisCheck(
  targets: readonly Target[],
  sent: ReadonlyMap<string, number>,
): Promise<string[]> {
  const lines: string[] = [];
  for (const target of targets) {
    const lpushes = sent.get(`${target.name}/lpush`) ?? 0;
    const copies = await target.copyPorts();
    // redis-benchmark's LPUSH always pushes onto "mylist".
    const ports = copies.length > 0 ? copies : [target.port];
    const lengths = await settledValues(() =>
      Promise.all(ports.map((p) => respInteger(p, "LLEN", "mylist"))),
    );
    const sizes = await settledValues(() =>
      Promise.all(ports.map((p) => respInteger(p, "DBSIZE"))),
    );
    const ok = lengths.every((l) => l === lpushes) && new Set(sizes).size === 1;
    lines.push(
      `${ok ? "ok  " : "BAD "} ${target.name}: LLEN mylist ${lengths.join(", ")} (LPUSHes sent ${lpushes}); DBSIZE ${sizes.join(", ")}${copies.length > 0 ? " (each copy)" : ""}`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// memcached.

async function memcacheRun(
  port: number,
  test: string,
  clients: number,
  requests: number,
): Promise<RunResult> {
  const out = await runProcess(
    process.execPath,
    [
      MEMCACHE_LOAD,
      JSON.stringify({ port, test, connections: clients, requests, keyspace: KEYSPACE }),
    ],
    timeoutFor(requests),
  );
  const r = JSON.parse(out.trim().split("\n").at(-1)!) as LoadResult;
  return {
    requests: r.requests,
    rps: r.rps,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    errors: r.errors,
    hits: r.hits,
  };
}

async function memcacheItems(port: number): Promise<number> {
  const reply = await ask(port, "stats\r\n", (t) => t.endsWith("END\r\n"));
  const match = /STAT curr_items (\d+)/.exec(reply);
  if (match === null) throw new Error(`stats on ${port}: no curr_items`);
  return Number(match[1]);
}

async function memcacheCheck(targets: readonly Target[]): Promise<string[]> {
  const lines: string[] = [];
  for (const target of targets) {
    const copies = await target.copyPorts();
    const ports = copies.length > 0 ? copies : [target.port];
    const items = await settledValues(() => Promise.all(ports.map(memcacheItems)));
    const ok = new Set(items).size === 1;
    lines.push(
      `${ok ? "ok  " : "BAD "} ${target.name}: curr_items ${items.join(", ")}${copies.length > 0 ? " (each copy)" : ""}`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------

function timeoutFor(requests: number): number {
  // Far above any run here: a replicated fsync run at C=1 does ~1000 requests/s at worst.
  return Math.max(RUN_TIMEOUT_MS_MIN, requests * 5);
}

function plans(): ProgramPlan[] {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const redisApp = "redis-server --port {port} --bind {host} --dir {dir} --save '' --appendonly no";
  const memcachedApp = `memcached -p {port} -l {host} -U 0${root ? " -u root" : ""}`;
  return [
    {
      program: "redis",
      loadGenerator: "redis-benchmark",
      tests: REDIS_TESTS,
      variants: [
        {
          name: "redis-server (bare)",
          bare: true,
          start: () =>
            startBare("redis-server (bare)", "redis-server", [
              ...["--port", "{port}", "--bind", "127.0.0.1", "--dir", tmpdir()],
              ...["--save", "", "--appendonly", "no"],
            ]),
        },
        {
          name: "apus + redis copies, fsync",
          bare: false,
          start: () =>
            startReplicated("apus + redis copies, fsync", [
              ...["--durability", "fsync", "--app", redisApp, "--protocol", "resp"],
            ]),
        },
        {
          name: "apus + redis copies, memory",
          bare: false,
          start: () =>
            startReplicated("apus + redis copies, memory", [
              ...["--durability", "memory", "--app", redisApp, "--protocol", "resp"],
            ]),
        },
        {
          name: "apus embedded store, fsync",
          bare: false,
          start: () => startReplicated("apus embedded store, fsync", ["--durability", "fsync"]),
        },
      ],
      run: redisRun,
      check: redisCheck,
    },
    {
      program: "memcached",
      loadGenerator: "bench/lib/memcache-load.ts (Node, one process)",
      tests: MEMCACHE_TESTS,
      variants: [
        {
          name: "memcached (bare)",
          bare: true,
          start: () =>
            startBare("memcached (bare)", "memcached", [
              ...["-p", "{port}", "-l", "127.0.0.1", "-U", "0"],
              ...(root ? ["-u", "root"] : []),
            ]),
        },
        {
          name: "apus + memcached copies, fsync",
          bare: false,
          start: () =>
            startReplicated("apus + memcached copies, fsync", [
              ...["--durability", "fsync", "--app", memcachedApp, "--protocol", "memcache"],
            ]),
        },
        {
          name: "apus + memcached copies, memory",
          bare: false,
          start: () =>
            startReplicated("apus + memcached copies, memory", [
              ...["--durability", "memory", "--app", memcachedApp, "--protocol", "memcache"],
            ]),
        },
      ],
      run: memcacheRun,
      check: (targets) => memcacheCheck(targets),
    },
  ];
}

function parseOptions(): Options | null {
  const { values } = parseArgs({
    options: {
      clients: { type: "string" },
      repeat: { type: "string" },
      seconds: { type: "string" },
      requests: { type: "string" },
      only: { type: "string" },
      out: { type: "string" },
      quick: { type: "boolean", default: false },
      redraw: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help === true) return null;
  const quick = values.quick === true;
  const positive = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number`);
    return n;
  };
  const only = values.only;
  if (only !== undefined && only !== "redis" && only !== "memcached")
    throw new Error("--only: redis or memcached");
  const stamp = new Date().toISOString().slice(0, 10);
  return {
    clients: (values.clients ?? (quick ? "1,8" : "1,8,24"))
      .split(",")
      .map((c) => Math.round(positive("clients", c))),
    repeat: Math.round(positive("repeat", values.repeat ?? (quick ? "1" : "3"))),
    seconds: positive("seconds", values.seconds ?? "2"),
    fixedRequests:
      values.requests !== undefined
        ? Math.round(positive("requests", values.requests))
        : quick
          ? 1000
          : null,
    programs: only === undefined ? ["redis", "memcached"] : [only],
    outDir:
      values.out ??
      (quick
        ? join(tmpdir(), `apus-bench-app-quick-${process.pid}`)
        : join(ROOT, "bench", "results", `app-${stamp}`)),
    quick,
    redraw: values.redraw ?? null,
  };
}

function firstLine(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).split("\n")[0]!.trim();
  } catch {
    return `${cmd}: not found`;
  }
}

function describeMachine(): Record<string, string | number> {
  const redis = /v=(\S+)/.exec(firstLine("redis-server", ["--version"]))?.[1] ?? "?";
  return {
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    node: process.versions.node,
    kernel: release(),
    redisServer: redis,
    redisBenchmark: firstLine("redis-benchmark", ["--version"]).replace("redis-benchmark ", ""),
    memcached: firstLine("memcached", ["-V"]).replace("memcached ", ""),
    loadAverage: loadavg()
      .map((l) => l.toFixed(2))
      .join(" "),
    date: new Date().toISOString(),
  };
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** One measured run: the variant's CPU from /proc around the load generator. */
async function measure(
  plan: ProgramPlan,
  target: Target,
  test: string,
  clients: number,
  requests: number,
): Promise<Omit<Sample, "program" | "variant" | "test" | "clients" | "repetition">> {
  const pids = await target.pids();
  const cpuBefore = processesCpuSeconds(pids);
  const machineBefore = machineCpu();
  const t0 = performance.now();
  const result = await plan.run(target.port, test, clients, requests);
  const wallMs = performance.now() - t0;
  const cpuSeconds = processesCpuSeconds(pids) - cpuBefore;
  return {
    ...result,
    wallMs,
    cpuUsPerRequest: (cpuSeconds * 1e6) / result.requests,
    serverCores: cpuSeconds / (wallMs / 1000),
    machineBusyPercent: machineBusyPercent(machineBefore, machineCpu()),
  };
}

/** Runs with growing -n until one lasts CALIBRATION_MS_MIN; returns its rate (requests/s). */
async function calibrate(
  plan: ProgramPlan,
  target: Target,
  test: string,
  clients: number,
  sent: Map<string, number>,
): Promise<number> {
  let requests = Math.max(REQUESTS_MIN, clients * 50);
  for (;;) {
    const t0 = performance.now();
    const r = await plan.run(target.port, test, clients, requests);
    const ms = performance.now() - t0;
    sent.set(`${target.name}/${test}`, (sent.get(`${target.name}/${test}`) ?? 0) + r.requests);
    if (ms >= CALIBRATION_MS_MIN || requests >= REQUESTS_MAX) return r.rps;
    requests *= 4;
  }
}

function summarize(samples: readonly Sample[]): Row[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const key = `${s.program}\u0000${s.variant}\u0000${s.test}\u0000${s.clients}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return [...groups.values()].map((of) => ({
    program: of[0]!.program,
    variant: of[0]!.variant,
    test: of[0]!.test,
    clients: of[0]!.clients,
    rps: median(of.map((s) => s.rps)),
    p50Ms: median(of.map((s) => s.p50Ms)),
    p99Ms: median(of.map((s) => s.p99Ms)),
    cpuUsPerRequest: median(of.map((s) => s.cpuUsPerRequest)),
    serverCores: median(of.map((s) => s.serverCores)),
    machineBusyPercent: median(of.map((s) => s.machineBusyPercent)),
    runs: of.length,
  }));
}

function bareOf(rows: readonly Row[], row: Row): Row | undefined {
  return rows.find(
    (r) =>
      r.program === row.program &&
      r.test === row.test &&
      r.clients === row.clients &&
      r.variant.endsWith("(bare)"),
  );
}

function table(rows: readonly Row[]): string {
  const lines = [
    "| variant | test | C | ops/s | × bare | p50 ms | p99 ms | CPU µs/req | × bare | server cores | machine busy % |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const row of rows) {
    const bare = bareOf(rows, row);
    const ratio = (a: number, b: number | undefined) =>
      b === undefined || b === 0 ? "" : (a / b).toFixed(2);
    lines.push(
      `| ${row.variant} | ${row.test.toUpperCase()} | ${row.clients} | ${Math.round(row.rps).toLocaleString("en-US")} | ${ratio(row.rps, bare?.rps)} | ${row.p50Ms.toFixed(3)} | ${row.p99Ms.toFixed(3)} | ${row.cpuUsPerRequest.toFixed(1)} | ${ratio(row.cpuUsPerRequest, bare?.cpuUsPerRequest)} | ${row.serverCores.toFixed(2)} | ${Math.round(row.machineBusyPercent)} |`,
    );
  }
  return lines.join("\n");
}

/** Rows ordered for the table: program, test, C, variant in plan order. */
function ordered(rows: readonly Row[], plan: ProgramPlan, clients: readonly number[]): Row[] {
  const out: Row[] = [];
  for (const test of plan.tests)
    for (const c of clients)
      for (const v of plan.variants) {
        const row = rows.find(
          (r) =>
            r.program === plan.program &&
            r.test === test &&
            r.clients === c &&
            r.variant === v.name,
        );
        if (row !== undefined) out.push(row);
      }
  return out;
}

interface Context {
  readonly tcpRoundTripUs: number;
  readonly udpRoundTripUs: number;
  readonly fsyncUs: number;
  readonly cores: number;
}

/** The closing paragraph: figures from this run where they exist, the limits stated plainly. */
function reading(rows: readonly Row[], clients: readonly number[], ctx: Context): string {
  const find = (program: string, variant: string, test: string, c: number) =>
    rows.find(
      (r) => r.program === program && r.variant === variant && r.test === test && r.clients === c,
    );
  const cMin = Math.min(...clients);
  const cMax = Math.max(...clients);
  const lines: string[] = ["Reading:"];
  const bare1 = find("redis", "redis-server (bare)", "set", cMin);
  const fsync1 = find("redis", "apus + redis copies, fsync", "set", cMin);
  const mem1 = find("redis", "apus + redis copies, memory", "set", cMin);
  const emb1 = find("redis", "apus embedded store, fsync", "set", cMin);
  const fsyncN = find("redis", "apus + redis copies, fsync", "set", cMax);
  const memN = find("redis", "apus + redis copies, memory", "set", cMax);
  const embN = find("redis", "apus embedded store, fsync", "set", cMax);
  const bareN = find("redis", "redis-server (bare)", "set", cMax);
  if (bare1 && fsync1 && mem1) {
    lines.push(
      `- SET at C=${cMin}: bare p50 ${bare1.p50Ms.toFixed(3)} ms, replicated ${fsync1.p50Ms.toFixed(3)} ms (fsync) / ${mem1.p50Ms.toFixed(3)} ms (memory)` +
        `${emb1 ? `, embedded store ${emb1.p50Ms.toFixed(3)} ms` : ""}. One request at a time pays a client→leader hop, a consensus round to a follower ` +
        `(UDP round trip here ${ctx.udpRoundTripUs.toFixed(0)} µs p50), an fdatasync on the fsync variant (${ctx.fsyncUs.toFixed(0)} µs p50 on this disk), ` +
        `and the apply into the leader's copy over loopback TCP (round trip ${ctx.tcpRoundTripUs.toFixed(0)} µs p50) before the reply goes back.`,
    );
  }
  if (fsyncN && memN && bareN) {
    lines.push(
      `- SET at C=${cMax}: ${Math.round(fsyncN.rps).toLocaleString("en-US")} ops/s (copies, fsync), ${Math.round(memN.rps).toLocaleString("en-US")} (copies, memory)` +
        `${embN ? `, ${Math.round(embN.rps).toLocaleString("en-US")} (embedded store, fsync)` : ""} vs ${Math.round(bareN.rps).toLocaleString("en-US")} bare. ` +
        `"copies, memory" vs "copies, fsync" is the price of the disk; "embedded store, fsync" vs "copies, fsync" is the price of the program proxy: each replica's apply ` +
        `loop feeds its copy one command at a time in log order and waits for the copy's reply before the next, so a batch of N commands still costs N loopback ` +
        `round trips, in series, on every replica.`,
    );
  }
  if (fsyncN && bareN) {
    const times =
      bareN.cpuUsPerRequest > 0
        ? `${(fsyncN.cpuUsPerRequest / bareN.cpuUsPerRequest).toFixed(0)}× the bare server's ${bareN.cpuUsPerRequest.toFixed(1)} µs`
        : "against a bare server too cheap to measure in /proc ticks";
    lines.push(
      `- CPU: the replicated SET at C=${cMax} (copies, fsync) costs ${fsyncN.cpuUsPerRequest.toFixed(0)} µs of CPU per request over 3 replicas + 3 copies, ` +
        `${times}: three copies do the work three times, and three Node processes parse, order, log and relay every request; at low load the replicas' ` +
        `fixed costs (timers, heartbeats, the consensus worker's busy-poll before it sleeps) are spread over few requests. Those processes kept ` +
        `${fsyncN.serverCores.toFixed(2)} of ${ctx.cores} cores busy and the machine was ${Math.round(fsyncN.machineBusyPercent)} % busy (load generator, other tenants): ` +
        `with 3 replicas + 3 copies + the load generator on ${ctx.cores} shared cores, throughput here is bounded by CPU and scheduling as much as by the ` +
        `protocol; a machine with a core per process would show different absolute numbers.`,
    );
  }
  const mcBare = find("memcached", "memcached (bare)", "get", cMax);
  if (mcBare) {
    lines.push(
      `- memcached: the load generator is Node (one process): its own ceiling, not memcached's, bounds the bare rows (${Math.round(mcBare.rps).toLocaleString("en-US")} GET/s at C=${cMax}); the ratios understate the gap to a bare memcached driven by a faster client.`,
    );
  }
  lines.push(
    "- Noise: 2 shared cores, other tenants; medians of interleaved runs, read the ratios more than the absolute numbers.",
  );
  return lines.join("\n");
}

async function writeCharts(
  rows: readonly Row[],
  plan: ProgramPlan,
  clients: readonly number[],
  machineLine: string,
  outDir: string,
): Promise<string[]> {
  const files: string[] = [];
  for (const test of plan.tests) {
    const points = rows
      .filter((r) => r.program === plan.program && r.test === test)
      .map((r) => ({ x: r.clients, y: Math.round(r.rps), series: r.variant }));
    if (points.length === 0) continue;
    const spec = lineChartSpec({
      title: `${plan.program} ${test.toUpperCase()}: throughput vs connections`,
      subtitle: `${plan.loadGenerator}, medians; ${machineLine}`,
      xTitle: "concurrent connections C (log scale)",
      yTitle: "ops/s",
      seriesTitle: "variant",
      points,
      xValues: clients,
      xLog: clients.length > 1 && Math.min(...clients) > 0,
    });
    // The bare server runs 10–50× faster than the replicated variants: on a linear y axis their
    // lines would lie flat on the floor. Log y keeps every line readable.
    // Variant names are long: let the legend show them whole.
    const encoding = (
      spec as { encoding?: { y?: Record<string, unknown>; color?: Record<string, unknown> } }
    ).encoding;
    if (encoding?.y !== undefined) {
      encoding.y.scale = { type: "log" };
      encoding.y.title = "ops/s (log scale)";
    }
    if (encoding?.color !== undefined) encoding.color.legend = { labelLimit: 400 };
    const file = `${plan.program}-${test}-throughput.svg`;
    writeFileSync(join(outDir, file), await renderSvg(spec));
    files.push(file);
  }
  return files;
}

/** --redraw: the charts of an earlier run, from its results.json. */
async function redraw(dir: string): Promise<void> {
  const saved = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as {
    machine: Record<string, string | number>;
    options: Options;
    rows: Row[];
  };
  const m = saved.machine;
  const machineLine = `${m.cores} × ${m.cpuModel}, Node ${m.node}, redis ${m.redisServer}, memcached ${m.memcached}`;
  const files: string[] = [];
  for (const plan of plans()) {
    const of = ordered(saved.rows, plan, saved.options.clients);
    if (of.length > 0)
      files.push(...(await writeCharts(of, plan, saved.options.clients, machineLine, dir)));
  }
  process.stdout.write(`redrew ${files.join(", ")} in ${dir}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options === null) {
    process.stdout.write(USAGE);
    return;
  }
  if (options.redraw !== null) {
    await redraw(options.redraw);
    return;
  }
  installSignalCleanup(() => {
    for (const child of loadChildren) child.kill("SIGKILL");
  });
  const started = Date.now();
  const machine = describeMachine();
  const machineLine = `${machine.cores} × ${machine.cpuModel}, Node ${machine.node}, redis ${machine.redisServer}, memcached ${machine.memcached}`;
  process.stdout.write(
    `bench:app: clients ${options.clients.join(",")}, ${options.repeat} repetition(s), ` +
      `${options.fixedRequests === null ? `-n sized for ~${options.seconds} s per run` : `-n ${options.fixedRequests}`}\n` +
      `machine: ${machineLine}, kernel ${machine.kernel}, load average ${machine.loadAverage} (shared, noisy)\n` +
      `replica: ${REPLICA_JS}\n`,
  );
  const limits = await measureMachineLimits(options.quick ? 300 : 2000);
  const fsync = probeFsync(options.quick ? 50 : 300);
  const ctx: Context = {
    tcpRoundTripUs: limits.tcpProcesses.p50Us,
    udpRoundTripUs: limits.udpProcesses.p50Us,
    fsyncUs: fsync.p50Us,
    cores: cpus().length,
  };
  process.stdout.write(
    `floor: loopback TCP round trip ${ctx.tcpRoundTripUs.toFixed(0)} µs p50, UDP ${ctx.udpRoundTripUs.toFixed(0)} µs p50, ` +
      `64 B append + fdatasync ${fsync.p50Us.toFixed(0)} µs p50 / ${fsync.p99Us.toFixed(0)} µs p99 (${tmpdir()})\n`,
  );

  const samples: Sample[] = [];
  const checks: string[] = [];
  const allPlans = plans().filter((p) => options.programs.includes(p.program));
  for (const plan of allPlans) {
    process.stdout.write(`\n== ${plan.program} (${plan.loadGenerator})\n`);
    const targets: Target[] = [];
    const sent = new Map<string, number>();
    try {
      for (const variant of plan.variants) {
        process.stdout.write(`starting ${variant.name}… `);
        const target = await variant.start();
        targets.push(target);
        process.stdout.write(`port ${target.port}, pids ${(await target.pids()).join(" ")}\n`);
      }
      await sleep(500);
      // Requests per (variant, test, C): fixed, or sized from a calibration run (also a warm-up).
      const requestsFor = new Map<string, number>();
      const key = (v: string, t: string, c: number) => `${v}/${t}/${c}`;
      if (options.fixedRequests === null) {
        process.stdout.write("calibrating -n (and warming up):");
        for (const c of options.clients)
          for (const test of plan.tests)
            for (const target of targets) {
              const rps = await calibrate(plan, target, test, c, sent);
              const n = Math.round(
                Math.min(REQUESTS_MAX, Math.max(REQUESTS_MIN, rps * options.seconds)),
              );
              requestsFor.set(key(target.name, test, c), n);
              process.stdout.write(".");
            }
        process.stdout.write("\n");
      }
      const total = options.repeat * options.clients.length * plan.tests.length * targets.length;
      const phaseStart = Date.now();
      let done = 0;
      for (let repetition = 1; repetition <= options.repeat; repetition++)
        for (const clients of options.clients)
          for (const test of plan.tests)
            for (const target of targets) {
              const requests =
                options.fixedRequests ?? requestsFor.get(key(target.name, test, clients))!;
              const m = await measure(plan, target, test, clients, requests);
              sent.set(
                `${target.name}/${test}`,
                (sent.get(`${target.name}/${test}`) ?? 0) + m.requests,
              );
              samples.push({
                program: plan.program,
                variant: target.name,
                test,
                clients,
                repetition,
                ...m,
              });
              done++;
              const elapsed = Date.now() - phaseStart;
              process.stdout.write(
                `  [${done}/${total}] ${target.name.padEnd(32)} ${test.toUpperCase().padEnd(5)} C=${String(clients).padEnd(2)} rep ${repetition}: ` +
                  `${Math.round(m.rps).toLocaleString("en-US").padStart(7)} ops/s, p50 ${m.p50Ms.toFixed(3)} ms, p99 ${m.p99Ms.toFixed(3)} ms, ` +
                  `CPU ${m.cpuUsPerRequest.toFixed(1)} µs/req (${m.serverCores.toFixed(2)} cores), n ${m.requests}` +
                  `${m.errors ? `, ${m.errors} ERRORS` : ""}${m.hits !== null && test === "get" ? `, hits ${((100 * m.hits) / m.requests).toFixed(0)} %` : ""}` +
                  ` | ETA ${formatDuration((elapsed / done) * (total - done))}\n`,
              );
            }
      const lines = await plan.check(targets, sent);
      checks.push(...lines);
      process.stdout.write(
        `copies' state after the ${plan.program} runs:\n${lines.map((l) => `  ${l}`).join("\n")}\n`,
      );
    } finally {
      for (const target of targets) await target.stop();
    }
  }

  const rows = summarize(samples);
  mkdirSync(options.outDir, { recursive: true });
  const charts: string[] = [];
  const tables: string[] = [];
  for (const plan of allPlans) {
    const of = ordered(rows, plan, options.clients);
    if (of.length === 0) continue;
    tables.push(
      `### ${plan.program} — ${plan.loadGenerator}, medians of ${options.repeat} interleaved run(s)\n\n${table(of)}`,
    );
    charts.push(...(await writeCharts(of, plan, options.clients, machineLine, options.outDir)));
  }
  const text =
    `# bench:app — transparent replication of unmodified servers\n\n` +
    `machine: ${machineLine}, kernel ${machine.kernel}, load average at start ${machine.loadAverage}\n` +
    `floor: loopback TCP round trip ${ctx.tcpRoundTripUs.toFixed(0)} µs p50, UDP ${ctx.udpRoundTripUs.toFixed(0)} µs p50, append + fdatasync ${ctx.fsyncUs.toFixed(0)} µs p50\n\n` +
    `CPU µs/req: utime+stime of the variant's processes (3 replicas + their 3 program copies, or the bare server) over the run, per request; ` +
    `server cores: that CPU over the run's wall time; machine busy: every process (load generator and other tenants too), % of ${ctx.cores} cores.\n\n` +
    `${tables.join("\n\n")}\n\n` +
    `Consistency checks:\n${checks.map((l) => `- ${l}`).join("\n")}\n\n` +
    `${reading(rows, options.clients, ctx)}\n`;
  writeFileSync(join(options.outDir, "results.md"), text);
  writeFileSync(
    join(options.outDir, "results.json"),
    `${JSON.stringify({ machine, options, limits, fsync, rows, samples, checks }, null, 2)}\n`,
  );
  process.stdout.write(
    `\n${text}\nwrote ${options.outDir}/results.md, results.json, ${charts.join(", ")} (${formatDuration(Date.now() - started)})\n`,
  );
}

main()
  .catch(async (error: unknown) => {
    process.stderr.write(`bench:app failed: ${(error as Error).stack ?? String(error)}\n`);
    await stopAll();
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of loadChildren) child.kill("SIGKILL");
  });
