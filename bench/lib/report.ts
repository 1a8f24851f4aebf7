/**
 * The scaling benchmark's results: their shape (results.json), medians over repetitions, the
 * seed's "rise" figures, and results.md.
 */
import type { LatencySummary } from "./cluster.ts";
import type { Variant } from "./contracts.ts";
import type { MachineLimits, RoundTrip } from "./machine-limits.ts";

/** One measure window on one cluster. */
export interface Sample {
  readonly repetition: number;
  /** Leader's /latency over the window: request taken from its ring → slot chosen and applied. */
  readonly consensus: LatencySummary;
  readonly clientP50Us: number;
  readonly clientP99Us: number;
  readonly clientMaxUs: number;
  readonly throughputRps: number;
  readonly requestCount: number;
  readonly errorCount: number;
  /** Δapus_batch_requests_sum / Δapus_batch_requests_count at the leader; null if no slot. */
  readonly batchAvg: number | null;
  readonly chosenSlots: number;
  /** utime+stime of the replica processes over the window, % of one core, summed. */
  readonly replicaCpuPercent: number;
  /**
   * CPU µs per request completed in the window, of the leader's process and of each follower's
   * (in id order); null for a cluster whose replicas share one process (thread-cluster).
   */
  readonly cpuPerRequestUs: {
    readonly leader: number;
    readonly followers: readonly number[];
  } | null;
  /** CPU of the load-generator threads over the window, % of one core, summed. */
  readonly loadgenCpuPercent: number;
  /** This benchmark's own process (load generators + main thread), % of one core. */
  readonly benchCpuPercent: number;
  /** Busy share of the whole machine (all cores, every process), %. */
  readonly machineBusyPercent: number;
  /** Everything else on the machine (other tenants, the kernel's softirq work not charged to a
   *  process): machine busy × cores − replicas − this benchmark, % of one core. */
  readonly otherCpuPercent: number;
  readonly windowMs: number;
}

/** Medians over a point's samples, field by field. */
export interface PointSummary {
  readonly consensusP50Us: number;
  readonly consensusP99Us: number;
  readonly clientP50Us: number;
  readonly clientP99Us: number;
  readonly throughputRps: number;
  readonly batchAvg: number | null;
  readonly replicaCpuPercent: number;
  /** Leader's CPU µs per request, and the mean and largest of the followers'; null if unknown. */
  readonly leaderCpuUsPerRequest: number | null;
  readonly followerCpuUsPerRequest: number | null;
  readonly followerCpuUsPerRequestMax: number | null;
  readonly loadgenCpuPercent: number;
  readonly machineBusyPercent: number;
  readonly otherCpuPercent: number;
  readonly errorCount: number;
}

export interface Point {
  readonly variant: string;
  readonly replicaCount: number;
  readonly connectionCount: number;
  readonly leaderId: number;
  readonly samples: readonly Sample[];
  readonly median: PointSummary;
}

export interface Rise {
  readonly variant: string;
  readonly what: string;
  readonly from: { readonly replicaCount: number; readonly connectionCount: number };
  readonly to: { readonly replicaCount: number; readonly connectionCount: number };
  readonly consensusP50FromUs: number;
  readonly consensusP50ToUs: number;
  /** (to / from − 1) × 100. */
  readonly consensusP50RisePercent: number;
  readonly clientP50RisePercent: number;
}

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly nodeVersion: string;
  readonly date: string;
  readonly kernel: string;
  readonly loadAverageAtStart: readonly number[];
  readonly memoryGiB: number;
}

export interface Settings {
  readonly replicaCounts: readonly number[];
  readonly connectionCounts: readonly number[];
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly repeat: number;
  readonly loadThreads: number;
  readonly quick: boolean;
  readonly target: "leader";
  readonly valueBytes: readonly [number, number];
}

export interface Results {
  readonly machine: Machine;
  readonly settings: Settings;
  readonly variants: readonly Variant[];
  readonly skipped: readonly { readonly variant: string; readonly reason: string }[];
  readonly limits: MachineLimits;
  readonly points: readonly Point[];
  readonly rises: readonly Rise[];
  readonly elapsedMs: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(samples: readonly Sample[]): PointSummary {
  const of = (f: (s: Sample) => number) => median(samples.map(f));
  const batches = samples.map((s) => s.batchAvg).filter((b): b is number => b !== null);
  const perRequest = samples.map((s) => s.cpuPerRequestUs).filter((c) => c !== null);
  const mean = (values: readonly number[]) =>
    values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
  const ofCpu = (f: (c: NonNullable<Sample["cpuPerRequestUs"]>) => number) =>
    perRequest.length === 0 ? null : median(perRequest.map(f));
  return {
    consensusP50Us: of((s) => s.consensus.p50Us),
    consensusP99Us: of((s) => s.consensus.p99Us),
    clientP50Us: of((s) => s.clientP50Us),
    clientP99Us: of((s) => s.clientP99Us),
    throughputRps: of((s) => s.throughputRps),
    batchAvg: batches.length === 0 ? null : median(batches),
    replicaCpuPercent: of((s) => s.replicaCpuPercent),
    leaderCpuUsPerRequest: ofCpu((c) => c.leader),
    followerCpuUsPerRequest: ofCpu((c) => mean(c.followers)),
    followerCpuUsPerRequestMax: ofCpu((c) => Math.max(...c.followers)),
    loadgenCpuPercent: of((s) => s.loadgenCpuPercent),
    machineBusyPercent: of((s) => s.machineBusyPercent),
    otherCpuPercent: of((s) => s.otherCpuPercent),
    errorCount: samples.reduce((a, s) => a + s.errorCount, 0),
  };
}

function nearest(values: readonly number[], target: number): number | undefined {
  let best: number | undefined;
  for (const v of values)
    if (best === undefined || Math.abs(v - target) < Math.abs(best - target)) best = v;
  return best;
}

function rise(
  variant: string,
  what: string,
  from: Point | undefined,
  to: Point | undefined,
): Rise | null {
  if (from === undefined || to === undefined || from === to) return null;
  const pct = (a: number, b: number) => (a > 0 ? (b / a - 1) * 100 : Number.NaN);
  return {
    variant,
    what,
    from: { replicaCount: from.replicaCount, connectionCount: from.connectionCount },
    to: { replicaCount: to.replicaCount, connectionCount: to.connectionCount },
    consensusP50FromUs: from.median.consensusP50Us,
    consensusP50ToUs: to.median.consensusP50Us,
    consensusP50RisePercent: pct(from.median.consensusP50Us, to.median.consensusP50Us),
    clientP50RisePercent: pct(from.median.clientP50Us, to.median.clientP50Us),
  };
}

/**
 * The seed's two figures per variant: consensus p50 from the fewest to the most replicas at 24
 * connections (3 → 9 in the full grid), and from 1 to 24 connections at the fewest replicas.
 * On a smaller grid the nearest connection counts stand in; the rise names what it compares.
 */
export function rises(
  points: readonly Point[],
  settings: Settings,
  variants: readonly string[],
): Rise[] {
  const out: Rise[] = [];
  const fewest = Math.min(...settings.replicaCounts);
  const most = Math.max(...settings.replicaCounts);
  const at24 = nearest(settings.connectionCounts, 24)!;
  const at1 = nearest(settings.connectionCounts, 1)!;
  for (const variant of variants) {
    const find = (n: number, c: number) =>
      points.find((p) => p.variant === variant && p.replicaCount === n && p.connectionCount === c);
    const byReplicas = rise(
      variant,
      `replicas ${fewest} → ${most} at ${at24} connections`,
      find(fewest, at24),
      find(most, at24),
    );
    const byConnections = rise(
      variant,
      `connections ${at1} → ${at24} at ${fewest} replicas`,
      find(fewest, at1),
      find(fewest, at24),
    );
    if (byReplicas !== null) out.push(byReplicas);
    if (byConnections !== null) out.push(byConnections);
  }
  return out;
}

const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–");
const fixed = (v: number | null, digits: number) =>
  v === null || !Number.isFinite(v) ? "–" : v.toFixed(digits);
const signed = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(0)} %` : "–");

function limitRow(r: RoundTrip): string {
  return `| ${r.name} | ${r.roundTrips.toLocaleString("en-US")} | ${fixed(r.p50Us, 1)} | ${fixed(r.p99Us, 1)} |`;
}

export function pointsTable(points: readonly Point[], udpP50Us: number): string {
  const lines = [
    "| replicas | conns | consensus p50 µs | p99 µs | p50 / UDP RTT | client p50 µs | p99 µs | req/s | avg batch | CPU % replicas | loadgen | others | errors |",
    "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const p of points) {
    const m = p.median;
    lines.push(
      `| ${p.replicaCount} | ${p.connectionCount} | ${int(m.consensusP50Us)} | ${int(m.consensusP99Us)} | ${fixed(m.consensusP50Us / udpP50Us, 1)}× | ${int(m.clientP50Us)} | ${int(m.clientP99Us)} | ${int(m.throughputRps)} | ${fixed(m.batchAvg, 1)} | ${int(m.replicaCpuPercent)} | ${int(m.loadgenCpuPercent)} | ${int(m.otherCpuPercent)} | ${m.errorCount} |`,
    );
  }
  return lines.join("\n");
}

/**
 * CPU per committed request by replica role, per replica count: the protocol's claim that a
 * follower's cost does not grow with the cluster, and the leader's only by its fan-out.
 */
export function cpuPerReplicaTable(points: readonly Point[]): string {
  const lines = [
    "| replicas | conns | leader CPU µs/req | follower CPU µs/req (mean) | follower max | leader / follower |",
    "|--:|--:|--:|--:|--:|--:|",
  ];
  for (const p of points) {
    const m = p.median;
    if (m.leaderCpuUsPerRequest === null || m.followerCpuUsPerRequest === null) continue;
    lines.push(
      `| ${p.replicaCount} | ${p.connectionCount} | ${int(m.leaderCpuUsPerRequest)} | ${int(m.followerCpuUsPerRequest)} | ${int(m.followerCpuUsPerRequestMax ?? Number.NaN)} | ${fixed(m.leaderCpuUsPerRequest / m.followerCpuUsPerRequest, 2)} |`,
    );
  }
  return lines.length > 2 ? lines.join("\n") : "";
}

export function risesTable(list: readonly Rise[]): string {
  const lines = [
    "| mode | change | consensus p50 from → to µs | consensus p50 rise | client p50 rise |",
    "|---|---|--:|--:|--:|",
  ];
  for (const r of list) {
    lines.push(
      `| ${r.variant} | ${r.what} | ${int(r.consensusP50FromUs)} → ${int(r.consensusP50ToUs)} | ${signed(r.consensusP50RisePercent)} | ${signed(r.clientP50RisePercent)} |`,
    );
  }
  return lines.join("\n");
}

export function markdown(results: Results, charts: readonly string[]): string {
  const { machine, settings, limits } = results;
  const udp = limits.udpProcesses.p50Us;
  const out: string[] = [];
  out.push(`# apus-smr scaling benchmark, ${machine.date.slice(0, 10)}`);
  out.push("");
  out.push(
    `Machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.nodeVersion}; load average at start ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")} (a shared VM: read ratios and medians, not single numbers).`,
  );
  out.push(
    `Grid: replicas ${settings.replicaCounts.join(", ")} × connections ${settings.connectionCounts.join(", ")}; ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms measured per point, ${settings.repeat} repetition(s) (tables show medians); ${settings.loadThreads} load-generator thread(s); SET key:<n> with a ${settings.valueBytes[0]}–${settings.valueBytes[1]} B value, one request outstanding per connection; every connection aimed at the leader; the modes' clusters of one size run side by side and take turns point by point. Took ${(results.elapsedMs / 60_000).toFixed(1)} min.`,
  );
  out.push("");
  out.push("## The machine's own limits (64 B, one outstanding)");
  out.push("");
  out.push("| round trip | count | p50 µs | p99 µs |");
  out.push("|---|--:|--:|--:|");
  for (const r of [
    limits.udpProcesses,
    limits.tcpProcesses,
    limits.ringThreadsSpin0,
    limits.ringThreadsSpin20,
  ])
    out.push(limitRow(r));
  out.push("");
  out.push(
    "A consensus round at the leader needs at least one UDP round trip to a follower plus two ring hand-offs (request in, reply out) and the core's work; a client request adds one TCP round trip. The `p50 / UDP RTT` column is consensus p50 divided by the UDP p50 above.",
  );
  out.push("");
  out.push(
    "## Rises (the seed's Figure 1 figures: +105 % to +168 % from 3 to 9 replicas at 24 connections)",
  );
  out.push("");
  out.push(risesTable(results.rises));
  for (const variant of results.variants) {
    const points = results.points.filter((p) => p.variant === variant.name);
    if (points.length === 0) continue;
    out.push("");
    out.push(
      `## ${variant.name}: ${variant.description} (${variant.runner}, ${variant.transport})`,
    );
    out.push("");
    out.push(pointsTable(points, udp));
    const byReplica = cpuPerReplicaTable(
      [...points].sort(
        (a, b) => a.connectionCount - b.connectionCount || a.replicaCount - b.replicaCount,
      ),
    );
    if (byReplica !== "") {
      out.push("");
      out.push(
        `CPU per request by replica (${variant.name}; utime+stime of each process over the window ÷ requests completed):`,
      );
      out.push("");
      out.push(byReplica);
    }
  }
  for (const s of results.skipped) out.push("", `Skipped ${s.variant}: ${s.reason}`);
  out.push("");
  out.push("## How to read it");
  out.push("");
  out.push(
    [
      "- **consensus** = the leader's /latency: request taken from its ring → slot chosen and applied, over the measure window (reset at its start). **client** = what the load generator saw per SET over TCP, consensus + TCP + the connection worker's parse and reply.",
      "- **avg batch** = requests per consensus slot at the leader (Δ`apus_batch_requests_sum` / Δ`_count`). In `one-slot` it is 1 by construction.",
      "- **replicas CPU %** = utime+stime of every replica process over the window, in % of one core, summed over the cluster (this machine has " +
        `${machine.cores} cores = ${machine.cores * 100} %). **loadgen** = the load-generator threads (same machine, same cores). **others** = the rest of the machine's busy time (the other modes' idle clusters of the same size, which run alongside so the modes take turns under the same background load; other tenants of this shared VM; interrupts): machine busy (/proc/stat) × cores − replicas − this benchmark process. Where replicas + loadgen + others reach ~${machine.cores * 100} %, the point is CPU-bound and its latency is queueing for a core, not protocol.`,
      "- `--durability memory` in every mode: the APUS model keeps the log in memory of a majority (RDMA-written), and the question here is the network path and the protocol; with fsync a disk flush (~130 µs here) would sit in every round and hide both.",
      "- All connections go to the leader: that measures consensus without the follower → leader forwarding hop.",
      "- **CPU µs/req by replica** = utime+stime of one replica process over the window ÷ requests completed in it (all of the process: consensus, connection and main threads, the libuv pool, V8's helpers). A follower's should stay flat from 3 to 9 replicas (it hears one Accept and sends one reply per slot whatever N); the leader's grows only with its fan-out (N − 1 Accepts and replies per slot), which batching spreads over the slot's requests. On 2 cores 9 replicas queue for a core, so read CPU here, not latency.",
    ].join("\n"),
  );
  if (charts.length > 0) {
    out.push("");
    out.push("## Charts");
    out.push("");
    for (const chart of charts) out.push(`![${chart}](${chart})`);
  }
  out.push("");
  return out.join("\n");
}
