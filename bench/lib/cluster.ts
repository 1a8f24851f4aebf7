/**
 * Real clusters for the benchmark: N `dist/replica.js` processes on 127.0.0.1 (free ports, a temp
 * data dir each, a secret file), or one `dist/thread-cluster.js` process running N replicas as
 * threads. Both expose the same thing: a client port and an admin port per replica, the leader's
 * id, and the pids whose CPU counts as "the cluster".
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMMON_REPLICA_FLAGS, type Variant } from "./contracts.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const REPLICA_JS = join(ROOT, "dist", "replica.js");
export const THREAD_CLUSTER_JS = join(ROOT, "dist", "thread-cluster.js");

/** How long a new cluster may take to agree on a leader (9 processes on 2 cores start slowly). */
const LEADER_WAIT_MS_MAX = 30_000;
const POLL_MS = 150;
const ADMIN_TIMEOUT_MS = 3_000;
/** Tries at finding a run of free consecutive ports for thread-cluster's base ports. */
const PORT_RUN_TRIES_MAX = 50;

export interface LatencySummary {
  readonly count: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

interface StatusLite {
  readonly id: number;
  readonly role: string;
  readonly leader: number | null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function getText(url: string): Promise<string> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
    headers: { "x-apus-admin": "1" }, // /latency?reset=1 changes state: see refuseCrossSite
  });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return await response.text();
}

export async function getJson<T>(url: string): Promise<T> {
  return JSON.parse(await getText(url)) as T;
}

/**
 * Ports are drawn below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
 * 32768+ by default): a port the kernel hands out for "port 0" is also what it hands the load
 * generator's client sockets, and a cluster started later could collide with one of them.
 */
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
/** Ports handed out in this process, never handed out twice. */
const portsGiven = new Set<number>();

async function tcpPortIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function udpPortIsFree(port: number): Promise<boolean> {
  const socket = createSocket("udp4");
  return await new Promise<boolean>((resolve) => {
    socket.once("error", () => resolve(false));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return !portsGiven.has(port) && (await tcpPortIsFree(port)) && (await udpPortIsFree(port));
}

/** A base port B with B … B+count-1 all free for TCP and UDP, below the ephemeral range. */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < PORT_RUN_TRIES_MAX; attempt++) {
    const base = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW - count));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await portIsFree(base + i);
    if (free) {
      for (let i = 0; i < count; i++) portsGiven.add(base + i);
      return base;
    }
  }
  throw new Error(`no run of ${count} free ports found in ${PORT_RUN_TRIES_MAX} tries`);
}

async function freePort(): Promise<number> {
  return await freePortRun(1);
}

export interface Cluster {
  readonly replicaCount: number;
  /** Id of the leader all replicas agreed on when start() returned. */
  readonly leaderId: number;
  clientPort(id: number): number;
  adminPort(id: number): number;
  /** Processes whose CPU is the cluster's: N replica processes, or the one thread-cluster. */
  pids(): readonly number[];
  stop(): Promise<void>;
}

/** Polls every replica's /status until all name the same leader and that one says "leader". */
async function awaitLeader(
  replicaCount: number,
  adminPort: (id: number) => number,
  children: readonly ChildProcess[],
): Promise<number> {
  const deadline = Date.now() + LEADER_WAIT_MS_MAX;
  let last: readonly (StatusLite | null)[] = [];
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.exitCode !== null)
        throw new Error(`a replica process exited with code ${child.exitCode} during start-up`);
    }
    await sleep(POLL_MS);
    const statuses = await Promise.all(
      Array.from({ length: replicaCount }, (_, i) =>
        getJson<StatusLite>(`http://127.0.0.1:${adminPort(i + 1)}/status`).catch(() => null),
      ),
    );
    last = statuses;
    const leader = statuses[0]?.leader ?? null;
    if (leader === null) continue;
    const agreed = statuses.every((s) => s !== null && s.leader === leader);
    if (agreed && statuses[leader - 1]?.role === "leader") return leader;
  }
  const seen = last.map((s, i) =>
    s === null ? `${i + 1}: no answer` : `${i + 1}: ${s.role}, leader ${s.leader}`,
  );
  throw new Error(
    `${replicaCount} replicas agreed on no leader within ${LEADER_WAIT_MS_MAX} ms (${seen.join("; ")})`,
  );
}

/** SIGKILL every child and wait until each has exited (one that already has counts at once). */
export function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  const exits = children.map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once("exit", () => resolve());
      }),
  );
  for (const child of children) child.kill("SIGKILL");
  return Promise.all(exits).then(() => undefined);
}

/** Starts N `node dist/replica.js` processes with the variant's flags. */
export async function startProcessCluster(
  replicaCount: number,
  variant: Variant,
): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "apus-scaling-"));
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, `bench-scaling-${process.pid}-0123456789abcdef0123\n`);
  const clientPorts: number[] = [];
  const adminPorts: number[] = [];
  const peerPorts: number[] = [];
  for (let i = 0; i < replicaCount; i++) {
    clientPorts.push(await freePort());
    adminPorts.push(await freePort());
    peerPorts.push(await freePort());
  }
  const peers = peerPorts.map((port) => `127.0.0.1:${port}`).join(",");
  const children: ChildProcess[] = [];
  const clientPort = (id: number) => clientPorts[id - 1]!;
  const adminPort = (id: number) => adminPorts[id - 1]!;
  for (let id = 1; id <= replicaCount; id++) {
    const args = [
      REPLICA_JS,
      "--id",
      String(id),
      "--peers",
      peers,
      "--client-port",
      String(clientPort(id)),
      "--admin-port",
      String(adminPort(id)),
      "--data-dir",
      join(dir, `r${id}`),
      "--secret-file",
      secretFile,
      ...COMMON_REPLICA_FLAGS,
      ...variant.replicaFlags,
    ];
    children.push(spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] }));
  }
  const stop = async () => {
    await stopChildren(children);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const leaderId = await awaitLeader(replicaCount, adminPort, children);
    return {
      replicaCount,
      leaderId,
      clientPort,
      adminPort,
      pids: () => children.map((c) => c.pid!),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export function threadClusterAvailable(): boolean {
  return existsSync(THREAD_CLUSTER_JS);
}

/** Flags of dist/thread-cluster.js itself (before `--`); a variant's replica flags may hold them. */
const THREAD_CLUSTER_OWN_FLAGS = new Set(["--workers"]);

/**
 * Starts `node dist/thread-cluster.js --replicas N --base-client-port P --base-admin-port A
 * --transport shm|udp [--workers W] -- <replica flags>`. Replica i listens on P+i-1 and A+i-1
 * (its --help says so); the ids are checked against /status, so a different numbering fails
 * loudly rather than measuring the wrong replica. The thread cluster makes its own secret and
 * temp data dirs.
 */
export async function startThreadCluster(replicaCount: number, variant: Variant): Promise<Cluster> {
  const baseClientPort = await freePortRun(replicaCount);
  const baseAdminPort = await freePortRun(replicaCount);
  const basePeerPort = await freePortRun(replicaCount);
  const own: string[] = [];
  const replicaFlags: string[] = [];
  for (let i = 0; i < variant.replicaFlags.length; i++) {
    const flag = variant.replicaFlags[i]!;
    if (THREAD_CLUSTER_OWN_FLAGS.has(flag)) own.push(flag, variant.replicaFlags[++i]!);
    else replicaFlags.push(flag);
  }
  const args = [
    THREAD_CLUSTER_JS,
    "--replicas",
    String(replicaCount),
    "--base-client-port",
    String(baseClientPort),
    "--base-admin-port",
    String(baseAdminPort),
    "--base-peer-port",
    String(basePeerPort),
    "--transport",
    variant.transport,
    ...own,
    "--",
    ...COMMON_REPLICA_FLAGS,
    ...replicaFlags,
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
  const clientPort = (id: number) => baseClientPort + id - 1;
  const adminPort = (id: number) => baseAdminPort + id - 1;
  const stop = () => stopChildren([child]);
  try {
    const leaderId = await awaitLeader(replicaCount, adminPort, [child]);
    for (let id = 1; id <= replicaCount; id++) {
      const status = await getJson<StatusLite>(`http://127.0.0.1:${adminPort(id)}/status`);
      if (status.id !== id)
        throw new Error(
          `thread-cluster: admin port ${adminPort(id)} answers as replica ${status.id}, expected ${id} (base + id - 1)`,
        );
    }
    return { replicaCount, leaderId, clientPort, adminPort, pids: () => [child.pid!], stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Start attempts: a port taken between the check and the replica's listen fails one attempt. */
const START_TRIES_MAX = 3;

export async function startCluster(replicaCount: number, variant: Variant): Promise<Cluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return variant.runner === "processes"
        ? await startProcessCluster(replicaCount, variant)
        : await startThreadCluster(replicaCount, variant);
    } catch (error) {
      if (attempt >= START_TRIES_MAX) throw error;
      process.stdout.write(`(start failed: ${(error as Error).message}; trying again) `);
    }
  }
}
