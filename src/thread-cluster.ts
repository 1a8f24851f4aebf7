#!/usr/bin/env node
/**
 * N replicas as threads of ONE process (dist/thread-cluster.js), for measurement: each replica is
 * exactly what dist/replica.js runs (runtime/replica-runner.ts), and with --transport shm they
 * talk through a shared-memory fabric instead of sockets. Not RDMA; see --help.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandLine } from "./cli/command-line.ts";
import {
  DATA_DIR_PLACEHOLDER,
  parseThreadClusterArgs,
  type ThreadClusterPlan,
  threadClusterHelp,
} from "./cli/thread-cluster-args.ts";
import type { ReplicaConfig } from "./runtime/config.ts";
import { describeStartError, type RunningReplica, startReplica } from "./runtime/replica-runner.ts";
import { createShmFabric } from "./transport/shm-transport.ts";

/** How long to wait for a leader before saying there is none yet. */
const LEADER_WAIT_MS = 10_000;
const LEADER_POLL_MS = 20;

function withDataDir(config: ReplicaConfig, root: string): ReplicaConfig {
  if (!config.dataDir.startsWith(DATA_DIR_PLACEHOLDER)) return config;
  return { ...config, dataDir: join(root, config.dataDir.slice(DATA_DIR_PLACEHOLDER.length)) };
}

async function waitForLeader(replicas: readonly RunningReplica[]): Promise<RunningReplica | null> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  while (Date.now() < deadline) {
    const statuses = await Promise.all(replicas.map((r) => r.status()));
    const leader = statuses.find((s) => s.role === "leader");
    if (leader !== undefined) return replicas[leader.id - 1] ?? null;
    await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_MS));
  }
  return null;
}

async function run(plan: ThreadClusterPlan): Promise<void> {
  const tempRoot =
    plan.dataDir === null ? mkdtempSync(join(tmpdir(), "apus-thread-cluster-")) : null;
  const removeTemp = () => {
    if (tempRoot !== null) rmSync(tempRoot, { recursive: true, force: true });
  };
  const fabric =
    plan.transport === "shm" ? createShmFabric(plan.replicaCount, plan.ringBytes) : null;
  // One random key per run: the in-process UDP replicas still authenticate every datagram.
  const secret = randomBytes(32);
  const replicas: RunningReplica[] = [];
  const stopAll = async (signal: string) => {
    // Every replica stops: a leader handing over (what a replica does on SIGTERM) would only hand
    // to one that is stopping too, and delay the exit; each stops as on SIGINT, which does not.
    await Promise.all(replicas.map((r) => r.stop(signal === "SIGTERM" ? "SIGINT" : signal)));
    removeTemp();
  };
  const first = plan.configs[0]!;
  process.stdout.write(
    `apus-smr thread cluster: ${plan.replicaCount} replicas as threads of process ${process.pid}, transport ${plan.transport}${plan.transport === "shm" ? " (shared memory; not RDMA)" : " (loopback)"}, durability ${first.durability}\n`,
  );
  for (const planned of plan.configs) {
    const config = withDataDir(planned, tempRoot ?? "");
    try {
      replicas.push(
        await startReplica(config, {
          ...(config.secretFile === null ? { secrets: [secret] } : {}),
          ...(fabric === null ? {} : { shmFabric: fabric }),
        }),
      );
    } catch (error) {
      process.stderr.write(
        `apus-smr: replica ${config.id} cannot start: ${describeStartError(error, config)}\n`,
      );
      await stopAll("start-failed");
      process.exit(1);
    }
    const a = replicas.at(-1)!;
    process.stdout.write(
      `replica ${config.id}: clients ${config.clientHost}:${config.clientPort} admin ${a.adminAddress} workers ${a.workers}\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    void stopAll(signal).then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  const leader = await waitForLeader(replicas);
  if (stopping) return;
  process.stdout.write(
    leader === null
      ? `no leader after ${LEADER_WAIT_MS / 1000} s; watch GET /status on the admin ports\n`
      : `leader: replica ${leader.config.id} (clients ${leader.config.clientHost}:${leader.config.clientPort})\n`,
  );
}

function main(argv: string[]): void {
  const parsed = commandLine(argv, parseThreadClusterArgs, threadClusterHelp);
  if (parsed === null) return;
  run(parsed.plan).catch((error: unknown) => {
    process.stderr.write(`apus-smr: thread cluster failed: ${(error as Error).message}\n`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
