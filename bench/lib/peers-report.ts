/**
 * `npm run bench:peers` results: their shape (results.json), medians over repetitions, the
 * markdown tables (results.md, stdout) and the SVG charts.
 */
import { type LinePoint, lineChartSpec, renderSvg } from "./charts.ts";
import type { FsyncProbe } from "./fsync-probe.ts";
import type { RoundTrip } from "./machine-limits.ts";
import type { SystemName } from "./peers-servers.ts";

/** One measure window on one system. */
export interface PeerSample {
  readonly repetition: number;
  readonly throughputOps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** utime+stime of the system's server processes over the window / writes completed, µs. */
  readonly serverCpuUsPerOp: number;
  /** This benchmark process (the client libraries, the harness) over the window / writes, µs. */
  readonly clientCpuUsPerOp: number;
  /** Server processes' CPU, % of one core. */
  readonly serverCpuPercent: number;
  /** Busy share of the whole machine (both cores, every process, other tenants too), %. */
  readonly machineBusyPercent: number;
  readonly completedCount: number;
  readonly errorCount: number;
  readonly firstError: string | null;
  readonly windowMs: number;
  /** The leader after the window was not the one the clients were connected to. */
  readonly leaderMoved: boolean;
}

export interface PeerSummary {
  readonly throughputOps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly serverCpuUsPerOp: number;
  readonly clientCpuUsPerOp: number;
  readonly machineBusyPercent: number;
  readonly errorCount: number;
}

export interface PeerPoint {
  readonly system: SystemName;
  readonly replicaCount: number;
  readonly clientCount: number;
  readonly samples: readonly PeerSample[];
  readonly median: PeerSummary;
}

export interface PeerMachine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly nodeVersion: string;
  readonly javaVersion: string;
  readonly date: string;
  readonly loadAverageAtStart: readonly number[];
  readonly loadAverageAtEnd: readonly number[];
}

export interface PeerSettings {
  readonly replicaCounts: readonly number[];
  readonly clientCounts: readonly number[];
  readonly repeat: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly valueBytes: number;
  readonly quick: boolean;
}

export interface MachineFloor {
  readonly fsync: FsyncProbe;
  readonly udp: RoundTrip;
  readonly tcp: RoundTrip;
}

/** CPU of one cluster's processes with no client load (heartbeats, timers, spinning), before the points. */
export interface IdleCpu {
  readonly system: SystemName;
  readonly replicaCount: number;
  /** % of one core, summed over the cluster's processes. */
  readonly cpuPercent: number;
}

export interface PeerResults {
  readonly machine: PeerMachine;
  readonly settings: PeerSettings;
  /** What each system's servers said they are, per replica count. */
  readonly versions: Readonly<Record<string, string>>;
  readonly floor: MachineFloor;
  readonly idle: readonly IdleCpu[];
  readonly points: readonly PeerPoint[];
  readonly elapsedMs: number;
}

export const SYSTEM_LABEL: Readonly<Record<SystemName, string>> = {
  "apus-smr": "apus-smr",
  zookeeper: "ZooKeeper",
  etcd: "etcd",
};

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarizePeer(samples: readonly PeerSample[]): PeerSummary {
  const of = (f: (s: PeerSample) => number) => median(samples.map(f));
  return {
    throughputOps: of((s) => s.throughputOps),
    p50Us: of((s) => s.p50Us),
    p99Us: of((s) => s.p99Us),
    serverCpuUsPerOp: of((s) => s.serverCpuUsPerOp),
    clientCpuUsPerOp: of((s) => s.clientCpuUsPerOp),
    machineBusyPercent: of((s) => s.machineBusyPercent),
    errorCount: samples.reduce((a, s) => a + s.errorCount, 0),
  };
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");

/** The one-line picture per system and size: ops/s · p50 µs at every client count. */
function compactTable(results: PeerResults): string[] {
  const { clientCounts, replicaCounts } = results.settings;
  const lines = [
    `| system, replicas, fsync | ${clientCounts.map((c) => `C=${c} ops/s · p50 µs · p99 µs · server CPU µs/op`).join(" | ")} |`,
    `|---|${clientCounts.map(() => "--:").join("|")}|`,
  ];
  for (const replicaCount of replicaCounts)
    for (const system of ["apus-smr", "zookeeper", "etcd"] as const) {
      const cells = clientCounts.map((c) => {
        const p = results.points.find(
          (x) => x.system === system && x.replicaCount === replicaCount && x.clientCount === c,
        );
        if (p === undefined) return "–";
        const m = p.median;
        return `${int(m.throughputOps)} · ${int(m.p50Us)} · ${int(m.p99Us)} · ${int(m.serverCpuUsPerOp)}`;
      });
      lines.push(`| ${SYSTEM_LABEL[system]}, ${replicaCount} | ${cells.join(" | ")} |`);
    }
  return lines;
}

function fullTable(results: PeerResults): string[] {
  const lines = [
    "| system | replicas | C | ops/s | p50 µs | p99 µs | server CPU µs/op | client CPU µs/op | machine busy % | errors | leader moved |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const p of results.points) {
    const m = p.median;
    const moved = p.samples.filter((s) => s.leaderMoved).length;
    lines.push(
      `| ${SYSTEM_LABEL[p.system]} | ${p.replicaCount} | ${p.clientCount} | ${int(m.throughputOps)} | ${int(m.p50Us)} | ${int(m.p99Us)} | ${int(m.serverCpuUsPerOp)} | ${int(m.clientCpuUsPerOp)} | ${Math.round(m.machineBusyPercent)} | ${m.errorCount} | ${moved} |`,
    );
  }
  return lines;
}

function floorTable(floor: MachineFloor): string[] {
  const sum = floor.fsync.p50Us + floor.udp.p50Us + floor.tcp.p50Us;
  return [
    "| machine floor | p50 µs | p99 µs |",
    "|---|--:|--:|",
    `| fdatasync of a 64 B append (temp dir: where every system keeps its log) | ${floor.fsync.p50Us.toFixed(0)} | ${floor.fsync.p99Us.toFixed(0)} |`,
    `| UDP round trip, 64 B, two Node processes | ${floor.udp.p50Us.toFixed(0)} | ${floor.udp.p99Us.toFixed(0)} |`,
    `| TCP round trip, 64 B, two Node processes | ${floor.tcp.p50Us.toFixed(0)} | ${floor.tcp.p99Us.toFixed(0)} |`,
    `| fsync + UDP + TCP (a durable replicated write can hardly beat this at C=1) | ${sum.toFixed(0)} | |`,
  ];
}

export function machineLine(machine: PeerMachine): string {
  const load = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(" ");
  return (
    `${machine.cores} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, ` +
    `Node ${machine.nodeVersion}, ${machine.javaVersion}; load average ${load(machine.loadAverageAtStart)} at start` +
    (machine.loadAverageAtEnd.length === 0 ? "" : `, ${load(machine.loadAverageAtEnd)} at end`)
  );
}

export function peersMarkdown(results: PeerResults, charts: readonly string[]): string {
  const { settings } = results;
  return [
    `# apus-smr beside etcd and ZooKeeper, ${results.machine.date.slice(0, 10)}`,
    "",
    `Machine: ${machineLine(results.machine)}.`,
    "",
    `Versions: ${Object.entries(results.versions)
      .map(([k, v]) => `${k}: ${v}`)
      .join("; ")}.`,
    "",
    `One closed-loop Node client harness for all three (C loops, a connection each, \`await write(k<i>, ${settings.valueBytes} B)\`), ` +
      `every connection to the leader, fsync on everywhere; ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms window per point, ` +
      `systems interleaved, medians of ${settings.repeat}. Server CPU: utime+stime of the system's processes over the window.`,
    "",
    `Idle CPU of each cluster before the load (% of one core, all its processes): ${results.idle
      .map((i) => `${SYSTEM_LABEL[i.system]} ×${i.replicaCount} ${i.cpuPercent.toFixed(1)} %`)
      .join(", ")}.`,
    "",
    ...compactTable(results),
    "",
    ...fullTable(results),
    "",
    ...floorTable(results.floor),
    "",
    ...charts.map((c) => `![${c}](${c})`),
    "",
  ].join("\n");
}

export async function peersCharts(
  results: PeerResults,
  write: (file: string, svg: string) => void,
): Promise<string[]> {
  const files: string[] = [];
  const multi = results.settings.replicaCounts.length > 1;
  const series = (p: PeerPoint) =>
    multi ? `${SYSTEM_LABEL[p.system]} ×${p.replicaCount}` : SYSTEM_LABEL[p.system];
  const subtitle = `${results.settings.replicaCounts.join("/")} replicas, fsync on, closed loop at the leader, medians of ${results.settings.repeat}; ${results.machine.cores} cores, ${results.machine.date.slice(0, 10)}`;
  for (const [metric, yTitle, file] of [
    ["throughputOps", "writes per second", "peers-throughput.svg"],
    ["p50Us", "write latency p50 (µs)", "peers-p50.svg"],
  ] as const) {
    const points: LinePoint[] = results.points.map((p) => ({
      x: p.clientCount,
      y: Math.round(p.median[metric]),
      series: series(p),
    }));
    const spec = lineChartSpec({
      title: `${metric === "throughputOps" ? "Throughput" : "Latency p50"} vs concurrent clients`,
      subtitle,
      xTitle: "concurrent clients (log scale)",
      yTitle,
      seriesTitle: "system",
      points,
      xValues: results.settings.clientCounts,
      xLog: true,
    });
    write(file, await renderSvg(spec));
    files.push(file);
  }
  return files;
}
