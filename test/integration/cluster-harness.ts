/**
 * Real replicas as real processes on loopback, for the integration tests: each replica is
 * `node dist/replica.js` (the file a user runs), with its own data directory, peer, client and
 * admin ports. Nothing is mocked.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ReplicaStatus } from "../../src/runtime/thread-contracts.ts";

export const REPLICA_JS = fileURLToPath(new URL("../../dist/replica.js", import.meta.url));

/** Ports handed out in this test process: the kernel may offer a released port again. */
const portsTaken = new Set<number>();

/**
 * A port free for both TCP and UDP right now, never handed out before in this process, and below
 * Linux's ephemeral range (32768+), so a client socket's local port cannot take it before the
 * replica binds it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (portsTaken.has(port)) continue;
    const tcpFree = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (!tcpFree) continue;
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket("udp4");
      socket.once("error", () => resolve(false));
      socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
    });
    if (!udpFree) continue;
    portsTaken.add(port);
    return port;
  }
}

export interface ReplicaProcess {
  readonly id: number;
  /**
   * Added by addReplica: started with --join and --peers in the stable-id form (ID=host:port),
   * naming the replicas of the harness that were not removed, and itself.
   */
  readonly joined?: boolean;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly adminPort: number;
  process: ChildProcess | null;
  output: string;
}

export interface ClusterOptions {
  readonly replicas: number;
  readonly durability?: "fsync" | "memory";
  readonly extraArgs?: readonly string[];
  /** Flags for one replica only (its own certificate, say), after extraArgs. */
  readonly extraArgsFor?: (id: number) => readonly string[];
  readonly workers?: number;
  /** Defaults 20 / 300: fast failover in tests. Larger clusters on 2 cores want more slack. */
  readonly heartbeatMs?: number;
  readonly electionTimeoutMs?: number;
}

export class TestCluster {
  readonly dir: string;
  readonly replicas: ReplicaProcess[] = [];
  readonly secretFile: string;
  private readonly options: ClusterOptions;

  private constructor(options: ClusterOptions) {
    this.options = options;
    this.dir = mkdtempSync(join(tmpdir(), "apus-it-"));
    this.secretFile = join(this.dir, "cluster.secret");
    writeFileSync(this.secretFile, "integration-test-secret-0123456789abcdef\n", { mode: 0o600 });
  }

  static async start(options: ClusterOptions): Promise<TestCluster> {
    const cluster = new TestCluster(options);
    for (let id = 1; id <= options.replicas; id++) {
      cluster.replicas.push({
        id,
        clientPort: await freePort(),
        peerPort: await freePort(),
        adminPort: await freePort(),
        process: null,
        output: "",
      });
    }
    for (const replica of cluster.replicas) cluster.launch(replica.id);
    return cluster;
  }

  /** The bootstrap --peers (positional: replica i is the i-th), of the replicas start() made. */
  get peers(): string {
    return this.replicas
      .filter((r) => r.joined !== true)
      .map((r) => `127.0.0.1:${r.peerPort}`)
      .join(",");
  }

  replica(id: number): ReplicaProcess {
    const r = this.replicas.find((replica) => replica.id === id);
    if (r === undefined) throw new Error(`no replica ${id} in this test cluster`);
    return r;
  }

  /** Replicas removed from the configuration (removeReplica): left out of later --peers. */
  private readonly removed = new Set<number>();

  /** --peers in the stable-id form: every replica not removed (ID=127.0.0.1:port). */
  get stablePeers(): string {
    return this.replicas
      .filter((r) => !this.removed.has(r.id))
      .map((r) => `${r.id}=127.0.0.1:${r.peerPort}`)
      .join(",");
  }

  /** A new replica (fresh ports and data directory), started with --join; returns it. */
  async addReplica(id: number, extra: readonly string[] = []): Promise<ReplicaProcess> {
    const replica: ReplicaProcess = {
      id,
      joined: true,
      clientPort: await freePort(),
      peerPort: await freePort(),
      adminPort: await freePort(),
      process: null,
      output: "",
    };
    this.replicas.push(replica);
    this.launch(id, extra);
    return replica;
  }

  /** Replica `id`'s data directory. */
  dataDir(id: number): string {
    return join(this.dir, `replica-${id}`);
  }

  /** Leave `id` out of the --peers of replicas started from now on (it left the configuration). */
  forget(id: number): void {
    this.removed.add(id);
  }

  args(id: number): string[] {
    const r = this.replica(id);
    return [
      REPLICA_JS,
      "--id",
      String(id),
      "--peers",
      r.joined === true ? this.stablePeers : this.peers,
      ...(r.joined === true ? ["--join"] : []),
      "--client-port",
      String(r.clientPort),
      "--admin-port",
      String(r.adminPort),
      "--data-dir",
      join(this.dir, `replica-${id}`),
      "--durability",
      this.options.durability ?? "fsync",
      "--secret-file",
      this.secretFile,
      "--workers",
      String(this.options.workers ?? 2),
      "--heartbeat-ms",
      String(this.options.heartbeatMs ?? 20),
      "--election-timeout-ms",
      String(this.options.electionTimeoutMs ?? 300),
      "--log-level",
      "info",
      ...(this.options.extraArgs ?? []),
      ...(this.options.extraArgsFor?.(id) ?? []),
    ];
  }

  /** Start replica `id`; `extra` flags go after the cluster's own (a later flag wins). */
  launch(id: number, extra: readonly string[] = []): void {
    const r = this.replica(id);
    const child = spawn(process.execPath, [...this.args(id), ...extra], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    r.process = child;
    const keep = (chunk: Buffer) => {
      r.output = (r.output + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.on("exit", () => {
      if (r.process === child) r.process = null;
    });
  }

  /** kill -9: no shutdown, no flush. */
  async kill(id: number): Promise<void> {
    const child = this.replica(id).process;
    if (child === null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async terminate(id: number): Promise<number | null> {
    const child = this.replica(id).process;
    if (child === null) return null;
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    child.kill("SIGTERM");
    return exited;
  }

  async status(id: number): Promise<ReplicaStatus | null> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.replica(id).adminPort}/status`, {
        signal: AbortSignal.timeout(1000),
      });
      return (await response.json()) as ReplicaStatus;
    } catch {
      return null;
    }
  }

  async metrics(id: number): Promise<string> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.replica(id).adminPort}/metrics`);
      return await response.text();
    } catch (error) {
      throw new Error(`replica ${id}'s /metrics: ${(error as Error).message}\n${this.outputs()}`);
    }
  }

  /** Wait until every replica answers /status (a leader needs only a majority to be up). */
  async waitForAllUp(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(this.replicas.map((r) => this.status(r.id)));
      if (statuses.every((s) => s !== null)) return;
      await sleep(50);
    }
    throw new Error(`not every replica answered within ${timeoutMs} ms\n${this.outputs()}`);
  }

  /** Wait until the live replicas agree on one leader; returns its id. */
  async waitForLeader(timeoutMs = 20_000, exclude: readonly number[] = []): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(
        this.replicas
          .filter((r) => r.process !== null && !exclude.includes(r.id))
          .map((r) => this.status(r.id)),
      );
      const leaders = statuses.filter((s) => s?.role === "leader").map((s) => s!.id);
      const live = statuses.filter((s) => s !== null);
      if (
        leaders.length === 1 &&
        live.length > this.replicas.length / 2 &&
        live.every((s) => s!.leader === leaders[0])
      )
        return leaders[0]!;
      await sleep(50);
    }
    throw new Error(`no single leader within ${timeoutMs} ms\n${this.outputs()}`);
  }

  /** Wait until every live replica has applied at least `slot`. */
  async waitForApplied(ids: readonly number[], slot: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(ids.map((id) => this.status(id)));
      if (statuses.every((s) => s !== null && s.appliedIndex >= slot)) return;
      await sleep(50);
    }
    throw new Error(`replicas ${ids.join(",")} did not apply slot ${slot} within ${timeoutMs} ms`);
  }

  /** Bytes of every file under replica `id`'s data directory (its WAL, snapshots, metadata). */
  dataDirBytes(id: number): number {
    const total = (dir: string): number =>
      readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return sum + total(path);
        return entry.isFile() ? sum + statSync(path).size : sum;
      }, 0);
    return total(join(this.dir, `replica-${id}`));
  }

  outputs(): string {
    return this.replicas.map((r) => `--- replica ${r.id} ---\n${r.output.slice(-3000)}`).join("\n");
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => this.kill(r.id)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Run the real redis-cli; resolves with its stdout. */
export function redisCli(port: number, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "redis-cli",
      ["-p", String(port), ...args],
      { timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`redis-cli ${args.join(" ")} failed: ${error.message} ${stderr}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}
