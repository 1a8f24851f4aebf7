/**
 * The replicas of a chaos run: real `node dist/replica.js` processes, each on its own loopback
 * address (127.0.0.11, .12, …) for its peer, client and admin listeners, so that nftables rules
 * can cut the network between two replicas by address. The nemesis kills (-9), pauses
 * (SIGSTOP/SIGCONT) and restarts them; each keeps its data directory unless the nemesis swaps it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import {
  copyFileSync,
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  symlinkSync,
  type WriteStream,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LOCAL_REPLICA_COUNT_MAX } from "../limits.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const REPLICA_JS = join(REPO, "dist", "replica.js");

/**
 * Copy dist/ into the run's directory (with package.json and a link to node_modules), so that
 * every start in one run runs the same build, even if dist/ is rebuilt meanwhile. Returns the
 * copy's replica.js.
 */
function snapshotBuild(dir: string): string {
  const build = join(dir, "build");
  cpSync(join(REPO, "dist"), join(build, "dist"), { recursive: true });
  copyFileSync(join(REPO, "package.json"), join(build, "package.json"));
  symlinkSync(join(REPO, "node_modules"), join(build, "node_modules"), "dir");
  return join(build, "dist", "replica.js");
}

/**
 * Replica i (1-based) listens on 127.0.S.(ADDRESS_BASE + i), S the run's subnet: nftables rules
 * match addresses, so two runs at once (vitest runs test files in parallel) need different ones.
 */
const ADDRESS_BASE = 10;
export const SUBNET_MAX = 255;
export const REPLICAS_MAX = LOCAL_REPLICA_COUNT_MAX;
const STATUS_TIMEOUT_MS = 500;

export interface ChaosClusterOptions {
  readonly replicas: number;
  readonly durability: "fsync" | "memory";
  /** Replicas listen on 127.0.<subnet>.11, .12, … */
  readonly subnet: number;
  /** Where data directories, the secret and replica logs go. */
  readonly dir: string;
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** What /status answers (the fields the chaos run reads). */
export interface StatusView {
  readonly id: number;
  readonly role: "leader" | "follower" | "candidate" | "recovering";
  readonly leader: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
}

export type InitialClusterState = "new" | "existing";

export type ReplicaState = "running" | "paused" | "dead";

interface Replica {
  readonly id: number;
  readonly host: string;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly adminPort: number;
  process: ChildProcess | null;
  paused: boolean;
  /** Times started, for the log file. */
  starts: number;
}

export function replicaHost(subnet: number, id: number): string {
  assert(id >= 1 && id <= REPLICAS_MAX);
  assert(Number.isInteger(subnet) && subnet >= 0 && subnet <= SUBNET_MAX);
  return `127.0.${subnet}.${ADDRESS_BASE + id}`;
}

async function portFree(host: string, port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

/**
 * Three consecutive ports (peer, client, admin), free on every replica's address, below Linux's
 * ephemeral range so no client socket takes one while a replica is down.
 */
async function freePortBase(replicas: number, subnet: number): Promise<number> {
  for (;;) {
    const base = 20_000 + 3 * Math.floor(Math.random() * 4000);
    let free = true;
    for (let id = 1; id <= replicas && free; id++)
      for (let p = 0; p < 3 && free; p++) free = await portFree(replicaHost(subnet, id), base + p);
    if (free) return base;
  }
}

export class ChaosCluster {
  readonly options: ChaosClusterOptions;
  private readonly replicas: Replica[] = [];
  private readonly secretFile: string;
  private readonly logs = new Map<number, WriteStream>();
  /** This run's copy of dist/replica.js. */
  private readonly replicaJs: string;

  private constructor(options: ChaosClusterOptions, base: number) {
    this.options = options;
    this.replicaJs = snapshotBuild(options.dir);
    for (let id = 1; id <= options.replicas; id++)
      this.replicas.push({
        id,
        host: replicaHost(options.subnet, id),
        peerPort: base,
        clientPort: base + 1,
        adminPort: base + 2,
        process: null,
        paused: false,
        starts: 0,
      });
    this.secretFile = join(options.dir, "cluster.secret");
    writeFileSync(this.secretFile, "chaos-test-secret-0123456789abcdef0123\n", { mode: 0o600 });
  }

  static async create(options: ChaosClusterOptions): Promise<ChaosCluster> {
    assert(options.replicas >= 1 && options.replicas <= REPLICAS_MAX);
    if (!existsSync(REPLICA_JS))
      throw new Error(`${REPLICA_JS} is missing: run npm run build first`);
    return new ChaosCluster(options, await freePortBase(options.replicas, options.subnet));
  }

  get ids(): number[] {
    return this.replicas.map((r) => r.id);
  }

  get majority(): number {
    return Math.floor(this.options.replicas / 2) + 1;
  }

  private replica(id: number): Replica {
    const r = this.replicas[id - 1];
    assert(r !== undefined, `no replica ${id}`);
    return r;
  }

  host(id: number): string {
    return this.replica(id).host;
  }

  clientAddress(id: number): { host: string; port: number } {
    const r = this.replica(id);
    return { host: r.host, port: r.clientPort };
  }

  dataDir(id: number): string {
    return join(this.options.dir, `replica-${id}`);
  }

  state(id: number): ReplicaState {
    const r = this.replica(id);
    if (r.process === null) return "dead";
    return r.paused ? "paused" : "running";
  }

  running(): number[] {
    return this.ids.filter((id) => this.state(id) === "running");
  }

  args(id: number, initialClusterState: InitialClusterState | null = null): string[] {
    const r = this.replica(id);
    const peers = this.replicas.map((p) => `${p.host}:${p.peerPort}`).join(",");
    const o = this.options;
    return [
      this.replicaJs,
      ...["--id", String(id), "--peers", peers],
      ...["--client-host", r.host, "--client-port", String(r.clientPort)],
      ...["--admin-host", r.host, "--admin-port", String(r.adminPort)],
      ...["--data-dir", this.dataDir(id), "--durability", o.durability],
      ...["--secret-file", this.secretFile, "--workers", "1"],
      ...["--heartbeat-ms", String(o.heartbeatMs)],
      ...["--election-timeout-ms", String(o.electionTimeoutMs)],
      ...["--request-timeout-ms", String(o.requestTimeoutMs)],
      ...["--log-level", "info"],
      ...(initialClusterState === null ? [] : ["--initial-cluster-state", initialClusterState]),
    ];
  }

  /**
   * Start replica `id` (it must be dead). A restart in memory mode has lost its state: it says
   * --initial-cluster-state existing (recover from the others before voting) unless told otherwise.
   */
  start(id: number, initialClusterState?: InitialClusterState): void {
    const r = this.replica(id);
    assert(r.process === null, `replica ${id} is already running`);
    const state =
      initialClusterState ??
      (r.starts > 0 && this.options.durability === "memory" ? "existing" : null);
    mkdirSync(this.options.dir, { recursive: true });
    let log = this.logs.get(id);
    if (log === undefined) {
      log = createWriteStream(join(this.options.dir, `replica-${id}.log`), { flags: "a" });
      this.logs.set(id, log);
    }
    r.starts++;
    log.write(`=== start ${r.starts} at ${new Date().toISOString()} ${state ?? ""} ===\n`);
    const child = spawn(process.execPath, this.args(id, state), {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    r.process = child;
    r.paused = false;
    child.on("exit", (code, signal) => {
      log.write(`=== exit code ${code} signal ${signal} ===\n`);
      if (r.process === child) {
        r.process = null;
        r.paused = false;
      }
    });
  }

  /** kill -9: no shutdown, no flush. Resolves once the process is gone. */
  async kill(id: number): Promise<void> {
    const r = this.replica(id);
    const child = r.process;
    if (child === null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  pause(id: number): void {
    const r = this.replica(id);
    if (r.process === null || r.paused) return;
    r.process.kill("SIGSTOP");
    r.paused = true;
  }

  resume(id: number): void {
    const r = this.replica(id);
    if (r.process === null || !r.paused) return;
    r.process.kill("SIGCONT");
    r.paused = false;
  }

  /** Every replica running again: paused ones continued, dead ones started. */
  healProcesses(): void {
    for (const id of this.ids) {
      if (this.state(id) === "paused") this.resume(id);
      else if (this.state(id) === "dead") this.start(id);
    }
  }

  async status(id: number): Promise<StatusView | null> {
    const r = this.replica(id);
    if (r.process === null || r.paused) return null;
    try {
      const response = await fetch(`http://${r.host}:${r.adminPort}/status`, {
        signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
      });
      return (await response.json()) as StatusView;
    } catch {
      return null;
    }
  }

  /** The leader a majority of the running replicas agree on, or null. */
  async leader(): Promise<number | null> {
    const statuses = await Promise.all(this.running().map((id) => this.status(id)));
    const votes = new Map<number, number>();
    for (const s of statuses) {
      if (s?.leader === null || s === null) continue;
      votes.set(s.leader, (votes.get(s.leader) ?? 0) + 1);
    }
    for (const [leader, count] of votes) {
      const own = statuses.find((s) => s?.id === leader);
      if (count >= this.majority && own?.role === "leader") return leader;
    }
    return null;
  }

  async waitForLeader(timeoutMs: number): Promise<number | null> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const leader = await this.leader();
      if (leader !== null) return leader;
      await sleep(50);
    }
    return null;
  }

  /**
   * Wait until every replica has applied what the leader had committed when the wait began;
   * returns the replicas that did not (empty: converged).
   */
  async waitForConvergence(timeoutMs: number): Promise<number[]> {
    const deadline = performance.now() + timeoutMs;
    const leader = await this.waitForLeader(timeoutMs);
    if (leader === null) return this.ids;
    const target = (await this.status(leader))?.commitIndex ?? 0;
    let behind = this.ids;
    while (performance.now() < deadline) {
      const statuses = await Promise.all(this.ids.map((id) => this.status(id)));
      behind = this.ids.filter((_id, i) => (statuses[i]?.appliedIndex ?? -1) < target);
      if (behind.length === 0) return [];
      await sleep(100);
    }
    return behind;
  }

  /** Kill every replica (continuing paused ones is not needed: SIGKILL ends them). */
  async stop(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id)));
    for (const log of this.logs.values()) log.end();
  }

  /** Synchronous last resort on process exit. */
  killAllNow(): void {
    for (const r of this.replicas) r.process?.kill("SIGKILL");
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
