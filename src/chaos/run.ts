/**
 * One chaos run, start to end: start the replicas, run the clients and the nemesis (or the
 * planted bug) for the given time, heal, measure how soon writes succeed again, wait for the
 * replicas to converge, read every key from every replica, stop everything, check the history.
 * nftables rules and replica processes are removed even when the run fails.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChaosCluster, sleep } from "./chaos-cluster.ts";
import { type Anomaly, type CheckResult, checkHistory } from "./check.ts";
import { History, type Operation } from "./history.ts";
import { FAULT_KINDS, Nemesis } from "./nemesis.ts";
import { NetFaults, nftUsable } from "./net-faults.ts";
import { type PlantedBug, plantAmnesia } from "./planted-amnesia.ts";
import { processingKey } from "./queue-check.ts";
import { type OpCounts, Workload } from "./workload.ts";

export interface ChaosOptions {
  readonly seconds: number;
  readonly replicas: number;
  readonly seed: number;
  readonly durability: "fsync" | "memory";
  readonly plant: PlantedBug | null;
  readonly clients: number;
  /** Replicas listen on 127.0.<subnet>.11, .12, …: concurrent runs need different subnets. */
  readonly subnet: number;
  /** Called with a one-line progress report about once a second. */
  readonly progress: ((line: string) => void) | null;
}

export const CHAOS_DEFAULTS = {
  seconds: 60,
  replicas: 3,
  durability: "fsync",
  plant: null,
  clients: 10,
  subnet: 0,
} as const;

/** Cluster timing: fast failover, request timeouts short enough to see many outcomes. */
const HEARTBEAT_MS = 50;
const ELECTION_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 2000;
/** A client gives up a little after the replica would have answered with -TIMEOUT. */
const COMMAND_TIMEOUT_MS = 3000;
const THINK_MS_MAX = 20;
const STARTUP_LEADER_MS = 30_000;
/** The nemesis: quiet time between faults, how long one is held, packet loss ([min, max]). */
const NEMESIS_QUIET_MS = [500, 2000] as const;
const NEMESIS_HOLD_MS = [1000, 4000] as const;
const NEMESIS_LOSS_PERCENT = [10, 40] as const;
/** The clients keep running this long after the heal (recovery under load). */
const AFTER_HEAL_MS = 5000;
/** Writes must succeed again within this long after the heal. */
export const AVAILABILITY_BOUND_MS = 20_000;
const CONVERGENCE_WAIT_MS = 30_000;
/** The meta event written before the final reads (a history without it was cut short). */
export const FINAL_READS_PHASE = "final-reads";
/** The register the availability probe writes. */
const PROBE_KEY = "probe";
/** Client id of the availability probe and of the final reads. */
const CHECKER_CLIENT = 0;

export interface ChaosResult {
  readonly options: ChaosOptions;
  readonly dir: string;
  readonly historyPath: string;
  readonly operations: readonly Operation[];
  readonly opCounts: OpCounts;
  readonly faults: ReadonlyMap<string, number>;
  readonly networkFaults: boolean;
  readonly availabilityMs: number | null;
  readonly check: CheckResult;
  /** The checkers' anomalies plus availability and convergence. */
  readonly anomalies: readonly Anomaly[];
  readonly notes: readonly { readonly timeMs: number; readonly text: string }[];
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const dir = mkdtempSync(join(tmpdir(), "apus-chaos-"));
  const historyPath = join(dir, "history.jsonl");
  const history = new History(historyPath);
  history.meta({ ...options, progress: undefined, commit: headCommit(), startedAt: new Date() });
  const cluster = await ChaosCluster.create({
    replicas: options.replicas,
    durability: options.durability,
    subnet: options.subnet,
    dir,
    heartbeatMs: HEARTBEAT_MS,
    electionTimeoutMs: ELECTION_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  const net = nftUsable() ? new NetFaults(cluster.ids.map((id) => cluster.host(id))) : null;
  const cleanUp = () => {
    net?.destroy();
    cluster.killAllNow();
  };
  process.once("exit", cleanUp);
  let result: ChaosResult;
  try {
    net?.create();
    result = await drive(options, cluster, net, history, dir, historyPath);
  } finally {
    net?.destroy();
    await cluster.stop();
    process.off("exit", cleanUp);
  }
  // Nothing to investigate: keep the history and the logs, not the data directories.
  if (result.anomalies.length === 0)
    for (const id of cluster.ids) rmSync(cluster.dataDir(id), { recursive: true, force: true });
  return result;
}

async function drive(
  options: ChaosOptions,
  cluster: ChaosCluster,
  net: NetFaults | null,
  history: History,
  dir: string,
  historyPath: string,
): Promise<ChaosResult> {
  for (const id of cluster.ids) cluster.start(id);
  if ((await cluster.waitForLeader(STARTUP_LEADER_MS)) === null)
    throw new Error(`no leader within ${STARTUP_LEADER_MS} ms of starting; logs in ${dir}`);
  const workload = new Workload(cluster, history, {
    clients: options.clients,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    thinkMsMax: THINK_MS_MAX,
    seed: options.seed,
  });
  const nemesis = new Nemesis(cluster, net, history, {
    seed: options.seed,
    durability: options.durability,
    quietMs: NEMESIS_QUIET_MS,
    holdMs: NEMESIS_HOLD_MS,
    lossPercent: NEMESIS_LOSS_PERCENT,
  });
  const faults = new Map<string, number>();
  const progress = startProgress(options, workload, nemesis, history);
  workload.start();
  try {
    const endMs = history.now() + options.seconds * 1000;
    if (options.plant !== null) {
      await sleep(1000);
      await plantAmnesia(options.plant, cluster, history);
      faults.set(`plant ${options.plant}`, 1);
    } else {
      nemesis.start();
    }
    await sleep(Math.max(0, endMs - history.now()));
    await nemesis.stop();
    nemesis.heal();
    const healMs = history.now();
    await sleep(AFTER_HEAL_MS);
    await workload.stop();
    const availabilityMs = await measureAvailability(cluster, workload, history, healMs);
    const behind = await cluster.waitForConvergence(CONVERGENCE_WAIT_MS);
    history.meta({ phase: FINAL_READS_PHASE });
    await finalReads(cluster, workload);
    for (const kind of FAULT_KINDS) {
      const count = nemesis.counts.get(kind);
      if (count !== undefined) faults.set(kind, count);
    }
    const operations = history.operations();
    const check = checkHistory(operations);
    const anomalies = [...check.anomalies, ...afterHealAnomalies(availabilityMs, behind)];
    return {
      options,
      dir,
      historyPath,
      operations,
      opCounts: { ...workload.counts },
      faults,
      networkFaults: net !== null,
      availabilityMs,
      check,
      anomalies,
      notes: history.notes,
    };
  } finally {
    clearInterval(progress);
    await workload.stop();
    await nemesis.stop();
  }
}

/** The commit the replicas were built from, and whether the tree had changes ("+dirty"). */
function headCommit(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" });
    return dirty.length > 0 ? `${commit}+dirty` : commit;
  } catch {
    return "unknown";
  }
}

/** Liveness after the heal: writes succeed again, every replica catches up. */
function afterHealAnomalies(availabilityMs: number | null, behind: readonly number[]): Anomaly[] {
  const anomalies: Anomaly[] = [];
  if (availabilityMs === null || availabilityMs > AVAILABILITY_BOUND_MS)
    anomalies.push({
      kind: "availability",
      key: null,
      message: `no write succeeded within ${AVAILABILITY_BOUND_MS} ms of the heal`,
      window: [],
    });
  if (behind.length > 0)
    anomalies.push({
      kind: "convergence",
      key: null,
      message: `replicas {${behind}} had not applied the leader's commit index ${CONVERGENCE_WAIT_MS} ms after the heal`,
      window: [],
    });
  return anomalies;
}

/**
 * Milliseconds from the heal to the first write acknowledged after it, by the clients (still
 * running for AFTER_HEAL_MS) or, failing that, by a probe that keeps writing until the bound.
 */
async function measureAvailability(
  cluster: ChaosCluster,
  workload: Workload,
  history: History,
  healMs: number,
): Promise<number | null> {
  const firstOk = (ops: readonly Operation[]) =>
    ops
      .filter((op) => op.kind === "write" && op.outcome === "ok" && op.invokeMs >= healMs)
      .reduce<number | null>((min, op) => Math.min(min ?? Infinity, op.completeMs!), null);
  const seen = firstOk(history.operations());
  if (seen !== null) return seen - healMs;
  let probe = 0;
  while (history.now() - healMs < AVAILABILITY_BOUND_MS) {
    const target = (await cluster.leader()) ?? cluster.ids[probe % cluster.ids.length]!;
    probe++;
    const { outcome } = await workload.once(
      target,
      CHECKER_CLIENT,
      "write",
      PROBE_KEY,
      `probe-${probe}`,
    );
    if (outcome === "ok") return history.now() - healMs;
    await sleep(100);
  }
  return null;
}

/**
 * Read every key from every replica; the list read last is the final list the checker uses. A
 * replica that fails one read is not asked the rest (each would wait for its timeout).
 */
async function finalReads(cluster: ChaosCluster, workload: Workload): Promise<void> {
  const reads = [
    ...[...workload.registerKeys].map((key) => ({ kind: "read" as const, key })),
    ...[...workload.listKeys].map((key) => ({ kind: "list-read" as const, key })),
    ...[...workload.queueKeys].flatMap((key) => [
      { kind: "queue-read" as const, key },
      { kind: "queue-read" as const, key: processingKey(key) },
    ]),
  ];
  for (const id of cluster.ids) {
    for (const { kind, key } of reads) {
      const { outcome } = await workload.once(id, CHECKER_CLIENT, kind, key, null);
      if (outcome !== "ok") break;
    }
  }
}

function startProgress(
  options: ChaosOptions,
  workload: Workload,
  nemesis: Nemesis,
  history: History,
): ReturnType<typeof setInterval> {
  return setInterval(() => {
    if (options.progress === null) return;
    const c = workload.counts;
    const seconds = (history.now() / 1000).toFixed(0).padStart(4);
    options.progress(
      `[${seconds}s] faults ${nemesis.total} (last: ${history.notes.at(-1)?.text ?? "none"}) | ops ok ${c.ok} fail ${c.fail} unknown ${c.unknown}`,
    );
  }, 1000);
}
