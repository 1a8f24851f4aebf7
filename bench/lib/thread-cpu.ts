/**
 * CPU per thread of a set of processes, grouped by what the thread does: reads utime + stime of
 * every /proc/<pid>/task/<tid>/stat and names the thread by its comm (Node names a worker thread
 * after `new Worker(…, { name })`, cut to 15 bytes: "consensus-worke", "connection-work").
 *
 * Resolution: the kernel counts in clock ticks (`getconf CLK_TCK`, 100 → 10 ms), sampled per
 * tick, so a difference is only worth reading over windows of seconds (≥ 2 s), never per request.
 * A thread that exits between two snapshots loses its CPU from the difference (its process's
 * /proc/<pid>/stat keeps it, this does not); a thread born between them counts from zero.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** What a thread does, from its name. */
export type ThreadRole = "consensus" | "connection" | "main" | "libuv" | "v8" | "other";

/** Every role, in the order tables print them. */
export const THREAD_ROLES: readonly ThreadRole[] = [
  "consensus",
  "connection",
  "main",
  "libuv",
  "v8",
  "other",
];

/** Linux USER_HZ, the unit of utime/stime in /proc; 100 if getconf cannot say. */
function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    if (Number.isSafeInteger(ticks) && ticks > 0) return ticks;
  } catch {
    // no getconf: every common kernel uses 100
  }
  return 100;
}

export const CLOCK_TICKS_PER_SECOND = clockTicksPerSecond();
const MICROSECONDS_PER_TICK = 1_000_000 / CLOCK_TICKS_PER_SECOND;

/**
 * The role of thread `tid` of process `pid` named `comm`. The main thread is the one whose tid is
 * the pid, whatever its name ("MainThread" for Node, "redis-server" for redis).
 */
export function threadRole(pid: number, tid: number, comm: string): ThreadRole {
  if (tid === pid) return "main";
  if (comm.startsWith("consensus")) return "consensus";
  if (comm.startsWith("connection")) return "connection";
  if (comm.startsWith("libuv-worker")) return "libuv";
  // V8's platform: the worker pool for GC/compilation and its delayed-task scheduler thread.
  if (comm.startsWith("V8Worker") || comm.startsWith("DelayedTaskSche")) return "v8";
  return "other";
}

interface ThreadReading {
  readonly pid: number;
  readonly role: ThreadRole;
  /** utime + stime since the thread started, in clock ticks. */
  readonly cpuTicks: number;
}

/** Every thread of some processes at one moment. */
export interface ThreadCpuSnapshot {
  readonly takenAtMs: number;
  /** Keyed "pid/tid". */
  readonly threads: ReadonlyMap<string, ThreadReading>;
}

/** utime + stime in ticks and the comm from one /proc/…/stat line; null if unreadable. */
function parseStat(text: string): { comm: string; cpuTicks: number } | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  // After "(comm) ": state is field 3, utime 14, stime 15 (1-based, proc(5)).
  const fields = text.slice(close + 2).split(" ");
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime)) return null;
  return { comm: text.slice(open + 1, close), cpuTicks: utime + stime };
}

/** Reads every thread of `pids`; processes or threads gone meanwhile are left out. */
export function snapshotThreadCpu(pids: readonly number[]): ThreadCpuSnapshot {
  const threads = new Map<string, ThreadReading>();
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // the process is gone
    }
    for (const tidText of tids) {
      const tid = Number(tidText);
      let stat: ReturnType<typeof parseStat>;
      try {
        stat = parseStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
      } catch {
        continue; // the thread exited between readdir and read
      }
      if (stat === null) continue;
      threads.set(`${pid}/${tid}`, {
        pid,
        role: threadRole(pid, tid, stat.comm),
        cpuTicks: stat.cpuTicks,
      });
    }
  }
  return { takenAtMs: performance.now(), threads };
}

/** CPU µs per thread role. */
export type RoleCpuUs = Record<ThreadRole, number>;

export function zeroRoleCpu(): RoleCpuUs {
  return { consensus: 0, connection: 0, main: 0, libuv: 0, v8: 0, other: 0 };
}

/** CPU spent between two snapshots of the same processes. */
export interface ThreadCpuDelta {
  readonly windowMs: number;
  /** Per process, per role, in µs. */
  readonly byPid: ReadonlyMap<number, RoleCpuUs>;
  /** Sum over every process and role, in µs. */
  readonly totalUs: number;
}

/** `after` − `before`; processes absent from `after` are left out. */
export function threadCpuDelta(
  before: ThreadCpuSnapshot,
  after: ThreadCpuSnapshot,
): ThreadCpuDelta {
  if (after.takenAtMs < before.takenAtMs) throw new Error("snapshots passed in the wrong order");
  const byPid = new Map<number, RoleCpuUs>();
  let totalUs = 0;
  for (const [key, reading] of after.threads) {
    const ticks = reading.cpuTicks - (before.threads.get(key)?.cpuTicks ?? 0);
    if (ticks < 0) throw new Error(`thread ${key} went back in CPU time: a reused tid?`);
    let roles = byPid.get(reading.pid);
    if (roles === undefined) {
      roles = zeroRoleCpu();
      byPid.set(reading.pid, roles);
    }
    const us = ticks * MICROSECONDS_PER_TICK;
    roles[reading.role] += us;
    totalUs += us;
  }
  return { windowMs: after.takenAtMs - before.takenAtMs, byPid, totalUs };
}

/** Sum of every role's µs. */
export function roleCpuTotal(roles: RoleCpuUs): number {
  let total = 0;
  for (const role of THREAD_ROLES) total += roles[role];
  return total;
}
