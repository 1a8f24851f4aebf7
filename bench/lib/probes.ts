/**
 * What the benchmark reads around a measure window: CPU of processes (/proc/<pid>/stat), CPU of
 * the whole machine (/proc/stat), and counters from a replica's Prometheus /metrics.
 */
import { readFileSync } from "node:fs";

/** Linux USER_HZ: utime/stime in /proc are in these ticks (100 on every common kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of a process, all its threads, in seconds; null if it is gone. */
export function processCpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Fields after "(comm)": state is field 3, utime field 14, stime field 15 (1-based, proc(5)).
  const afterComm = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(afterComm[14 - 3]);
  const stime = Number(afterComm[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

export function processesCpuSeconds(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += processCpuSeconds(pid) ?? 0;
  return total;
}

export interface MachineCpu {
  readonly busyTicks: number;
  readonly totalTicks: number;
}

/** The "cpu" line of /proc/stat: every core, every process on the machine (other tenants too). */
export function machineCpu(): MachineCpu {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0); // idle + iowait
  return { busyTicks: total - idle, totalTicks: total };
}

/** Busy share of all cores between two readings, percent of the whole machine. */
export function machineBusyPercent(before: MachineCpu, after: MachineCpu): number {
  const total = after.totalTicks - before.totalTicks;
  return total <= 0 ? 0 : (100 * (after.busyTicks - before.busyTicks)) / total;
}

/** Sum of every sample of `name` (any labels) in Prometheus text; 0 if absent. */
export function metricSum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const value = Number(rest.slice(rest.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

export interface ConsensusCounters {
  readonly batchRequestsSum: number;
  readonly batchRequestsCount: number;
  readonly chosenSlots: number;
}

export function consensusCounters(metricsText: string): ConsensusCounters {
  return {
    batchRequestsSum: metricSum(metricsText, "apus_batch_requests_sum"),
    batchRequestsCount: metricSum(metricsText, "apus_batch_requests_count"),
    chosenSlots: metricSum(metricsText, "apus_chosen_slots_total"),
  };
}
