/**
 * The WAL's write path, end to end: ops/s, p50 and CPU µs per request of each kind of thread, for a
 * 3-replica fsync cluster under `redis-benchmark -t set` aimed at the leader, one cluster per
 * variant and repeat, variants alternating (A B, B A, …) so drift on a shared machine hits both.
 *
 *   node bench/wal-path.ts [--variant NAME=REPO_ROOT]… [--clients 1,24] [--repeat 3] [--requests N]
 *
 * A variant is a checkout with a built dist/ (e.g. `git worktree add /tmp/wal-base <commit>`, then
 * `npm ci && npm run build` there); the default is this checkout. CPU comes from
 * /proc/<pid>/task/<tid>/stat (utime + stime) grouped by the thread's name (/proc/…/comm, cut at
 * 15 bytes): "consensus-worke", "connection-work", "libuv-worker" (the pool), "V8Worker"… No timing
 * is asserted.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { getJson, ROOT, sleep } from "./lib/cluster.ts";

const REPLICA_COUNT = 3;
/** Requests per run when --requests is not given: about 10 s at each point on 2 cores. */
const REQUESTS_AT_ONE_CLIENT = 10_000;
const REQUESTS_AT_MANY_CLIENTS = 60_000;
const LEADER_WAIT_MS_MAX = 30_000;
/** Kernel clock ticks per second for /proc/…/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface Variant {
  readonly name: string;
  readonly root: string;
}

/** Per thread name, CPU ticks summed over the process's threads of that name. */
type ThreadTicks = Map<string, number>;

function threadGroup(pid: number, tid: number, comm: string): string {
  if (tid === pid) return "main";
  if (comm.startsWith("V8")) return "v8";
  if (comm === "libuv-worker") return "pool";
  // comm is cut at 15 bytes: "consensus-worke", "connection-work".
  if (comm.startsWith("consensus")) return "consensus";
  return comm.startsWith("connection") ? "connection" : `other:${comm}`;
}

function sampleTicks(pid: number): ThreadTicks {
  const ticks: ThreadTicks = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const used = Number(fields[11]) + Number(fields[12]);
      const group = threadGroup(pid, tid, comm);
      ticks.set(group, (ticks.get(group) ?? 0) + used);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ticks;
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 24, timeout: 600_000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
}

class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), "apus-wal-path-"));
  readonly pids: number[] = [];
  private readonly base = 20_000 + ((process.pid * 7) % 1000) * 10;
  private readonly children: ReturnType<typeof spawn>[] = [];

  clientPort(id: number): number {
    return this.base + id;
  }

  adminPort(id: number): number {
    return this.base + 20 + id;
  }

  async start(root: string): Promise<number> {
    const ids = Array.from({ length: REPLICA_COUNT }, (_, i) => i + 1);
    const peers = ids.map((id) => `127.0.0.1:${this.base + 40 + id}`).join(",");
    writeFileSync(join(this.dir, "secret"), "bench-secret-0123456789abcdef0123\n");
    for (const id of ids) {
      const child = spawn(
        process.execPath,
        [
          join(root, "dist", "replica.js"),
          ...["--id", String(id), "--peers", peers, "--durability", "fsync"],
          ...["--client-port", String(this.clientPort(id))],
          ...["--admin-port", String(this.adminPort(id))],
          ...["--data-dir", join(this.dir, `r${id}`)],
          ...["--secret-file", join(this.dir, "secret"), "--log-level", "warn"],
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      this.children.push(child);
      this.pids.push(child.pid ?? 0);
    }
    const deadline = Date.now() + LEADER_WAIT_MS_MAX;
    while (Date.now() < deadline) {
      await sleep(150);
      const status = await getJson<{ leader: number | null }>(
        `http://127.0.0.1:${this.adminPort(1)}/status`,
      ).catch(() => null);
      if (status !== null && status.leader !== null) return status.leader;
    }
    throw new Error(`no leader within ${LEADER_WAIT_MS_MAX} ms`);
  }

  stop(): void {
    for (const child of this.children) child.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Sample {
  readonly variant: string;
  readonly clients: number;
  readonly rps: number;
  readonly p50Ms: number;
  /** CPU µs per request by row name (see ROWS). */
  readonly cpuUs: Record<string, number>;
}

const ROWS = [
  "leader consensus",
  "follower consensus (each)",
  "pool (cluster)",
  "v8 helpers (cluster)",
  "leader process",
  "cluster",
] as const;

function cpuPerRequest(
  before: ThreadTicks[],
  after: ThreadTicks[],
  leaderIndex: number,
  requests: number,
): Record<string, number> {
  const usPerTick = 1e6 / TICKS_PER_SECOND;
  const delta = (i: number, group: string | null) => {
    let sum = 0;
    for (const [name, ticks] of after[i] ?? new Map<string, number>())
      if (group === null || name === group) sum += ticks - (before[i]?.get(name) ?? 0);
    return (sum * usPerTick) / requests;
  };
  const all = (group: string | null) => before.reduce((s, _, i) => s + delta(i, group), 0);
  const followers = before.map((_, i) => i).filter((i) => i !== leaderIndex);
  return {
    "leader consensus": delta(leaderIndex, "consensus"),
    "follower consensus (each)":
      followers.reduce((s, i) => s + delta(i, "consensus"), 0) / followers.length,
    "pool (cluster)": all("pool"),
    "v8 helpers (cluster)": all("v8"),
    "leader process": delta(leaderIndex, null),
    cluster: all(null),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(
  variant: Variant,
  clientCounts: readonly number[],
  requestsArg: number | null,
) {
  const cluster = new Cluster();
  const samples: Sample[] = [];
  try {
    const leader = await cluster.start(variant.root);
    const port = String(cluster.clientPort(leader));
    await run("redis-benchmark", ["-p", port, "-t", "set", "-n", "3000", "-c", "8", "-q"]);
    for (const clients of clientCounts) {
      const requests =
        requestsArg ?? (clients === 1 ? REQUESTS_AT_ONE_CLIENT : REQUESTS_AT_MANY_CLIENTS);
      const before = cluster.pids.map(sampleTicks);
      const csv = await run("redis-benchmark", [
        ...["-p", port, "-t", "set", "-n", String(requests), "-c", String(clients)],
        ...["-r", "100000", "--csv"],
      ]);
      const after = cluster.pids.map(sampleTicks);
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",…
      const line = csv.split("\n").find((l) => l.startsWith('"SET"'));
      if (line === undefined) throw new Error(`redis-benchmark printed no SET row:\n${csv}`);
      const cells = line.split(",").map((c) => Number(c.replaceAll('"', "")));
      samples.push({
        variant: variant.name,
        clients,
        rps: cells[1]!,
        p50Ms: cells[4]!,
        cpuUs: cpuPerRequest(before, after, leader - 1, requests),
      });
      process.stdout.write(
        `  ${variant.name} C=${clients}: ${Math.round(cells[1]!)} ops/s, p50 ${cells[4]} ms, ` +
          `cluster ${samples.at(-1)!.cpuUs.cluster!.toFixed(0)} µs/req\n`,
      );
    }
  } finally {
    cluster.stop();
  }
  return samples;
}

function table(samples: readonly Sample[], variants: readonly Variant[], clients: number): string {
  const of = (v: string) => samples.filter((s) => s.variant === v && s.clients === clients);
  const head = `| C=${clients}, medians of ${of(variants[0]!.name).length} | ${variants.map((v) => v.name).join(" | ")} |`;
  const lines = [head, `|---|${variants.map(() => "--:").join("|")}|`];
  const row = (label: string, f: (s: Sample) => number, digits: number) =>
    lines.push(
      `| ${label} | ${variants.map((v) => median(of(v.name).map(f)).toFixed(digits)).join(" | ")} |`,
    );
  row("ops/s", (s) => s.rps, 0);
  row("p50 ms", (s) => s.p50Ms, 3);
  for (const name of ROWS) row(`CPU µs/req: ${name}`, (s) => s.cpuUs[name] ?? 0, 0);
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: "string", multiple: true },
      clients: { type: "string", default: "1,24" },
      repeat: { type: "string", default: "3" },
      requests: { type: "string" },
    },
  });
  const variants: Variant[] = (values.variant ?? [`current=${ROOT}`]).map((spec) => {
    const at = spec.indexOf("=");
    if (at < 1) throw new Error(`--variant ${spec}: write NAME=REPO_ROOT`);
    return { name: spec.slice(0, at), root: spec.slice(at + 1) };
  });
  const clientCounts = values.clients.split(",").map(Number);
  const repeat = Number(values.repeat);
  const requests = values.requests === undefined ? null : Number(values.requests);
  process.stdout.write(
    `wal-path: ${REPLICA_COUNT} replicas, fsync, redis-benchmark SET at the leader, ${repeat} ` +
      `alternating runs; ${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, Node ${process.versions.node}\n`,
  );
  const samples: Sample[] = [];
  for (let r = 0; r < repeat; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) samples.push(...(await measure(variant, clientCounts, requests)));
  }
  process.stdout.write("\n");
  for (const clients of clientCounts)
    process.stdout.write(`${table(samples, variants, clients)}\n\n`);
}

await main();
