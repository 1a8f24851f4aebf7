/**
 * The supervisor behind `apus-cluster` (src/cluster.ts): starts N replicas as child processes,
 * shows who leads and one live status line, restarts a replica that dies (so a `kill -9` of the
 * leader shows a failover and a recovery from the WAL), and stops them all on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { VERSION } from "../version.ts";
import { getAdminJson } from "./admin-client.ts";
import {
  CATCHING_UP_SLOTS_MIN,
  describeExit,
  formatClusterLine,
  highestCommit,
  leaderOf,
  type ReplicaState,
} from "./cluster-line.ts";
import { addAndPromote, findLeader, removeMember } from "./cluster-membership.ts";
import {
  type ClusterOptions,
  LOOPBACK,
  type PlannedPort,
  peerAddressOf,
  planGrownReplica,
  plannedPorts,
  REPLICAS_MAX,
  type ReplicaPlan,
  secretFilePath,
} from "./cluster-plan.ts";
import { logSize, readLogTail, summarizeLogLine } from "./log-tail.ts";
import { formatConfiguration } from "./member-report.ts";
import type { Screen } from "./screen.ts";
import { asReplicaStatus } from "./status-table.ts";

const POLL_INTERVAL_MS = 500;
const POLL_TIMEOUT_MS = 400;
const RESTART_DELAY_MS = 1000;
/** A replica that exits this many times in a row before it ever started is left down. */
const FAILED_STARTS_MAX = 3;
/** A run this long counts as started even if /status never answered. */
const STARTED_AFTER_MS = 10_000;
const STOP_GRACE_MS = 5000;
const KILL_GRACE_MS = 2000;
const LOG_TAIL_LINES = 12;
const SECRET_BYTES = 32;
/** A replica exits 2 when its settings are invalid: starting it again cannot help. */
const EXIT_INVALID_CONFIG = 2;

/** The replica entry one folder up: src/replica.ts when run from src, dist/replica.js built. */
function replicaScript(): string {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../replica${extension}`, import.meta.url));
}

/** One replica process and what the launcher knows of it. */
interface Supervised {
  readonly plan: ReplicaPlan;
  child: ChildProcess | null;
  pid: number | null;
  /** Resolves when the current child has exited. */
  exited: Promise<void>;
  state: ReplicaState;
  startedAtMs: number;
  /** /status answered since this start. */
  answered: boolean;
  /** Consecutive exits before the replica started. Invariant: <= FAILED_STARTS_MAX. */
  failedStarts: number;
  /** Started at least once before: the next answer is "back". */
  restarted: boolean;
  catchingUp: boolean;
  /** Byte offset in the log file where this run's lines start. */
  logOffset: number;
  restartTimer: NodeJS.Timeout | null;
  /** Removed from the configuration by shrink: stopped, never restarted. */
  retired: boolean;
}

export function ensureSecret(options: ClusterOptions): boolean {
  mkdirSync(options.dataDir, { recursive: true });
  try {
    writeFileSync(secretFilePath(options), `${randomBytes(SECRET_BYTES).toString("hex")}\n`, {
      mode: 0o600,
      flag: "wx",
    });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/** Why `port` cannot be listened on, or null when it is free. */
export function checkPort(port: PlannedPort): Promise<string | null> {
  const reason = (error: NodeJS.ErrnoException) =>
    error.code === "EADDRINUSE"
      ? "is in use"
      : error.code === "EACCES"
        ? "needs privileges (ports below 1024 do)"
        : `cannot be used (${error.code ?? error.message})`;
  return new Promise((resolve) => {
    if (port.protocol === "udp") {
      const socket = createSocket("udp4");
      socket.once("error", (error) => {
        socket.close();
        resolve(reason(error));
      });
      socket.bind(port.port, LOOPBACK, () => socket.close(() => resolve(null)));
      return;
    }
    const server = createServer();
    server.once("error", (error) => resolve(reason(error)));
    server.listen({ port: port.port, host: LOOPBACK, exclusive: true }, () =>
      server.close(() => resolve(null)),
    );
  });
}

/** A replica of `plan` before its first start. */
function notStarted(plan: ReplicaPlan): Supervised {
  return {
    plan,
    child: null,
    pid: null,
    exited: Promise.resolve(),
    state: { kind: "starting" },
    startedAtMs: 0,
    answered: false,
    failedStarts: 0,
    restarted: false,
    catchingUp: false,
    logOffset: 0,
    restartTimer: null,
    retired: false,
  };
}

export class Cluster {
  private readonly replicas: Supervised[];
  private readonly script = replicaScript();
  /** Node flags of this process minus the debugger's (two inspectors cannot share a port). */
  private readonly execArgv = process.execArgv.filter((arg) => !arg.startsWith("--inspect"));
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private stopping = false;
  /** "id@ballot" of the leader last announced; "" before the first election. */
  private leaderKey = "";
  private leaderId: number | null = null;
  /** When the announced leader's process exited, for the failover time. */
  private leaderLostAtMs: number | null = null;

  private readonly options: ClusterOptions;
  private readonly screen: Screen;

  constructor(options: ClusterOptions, plans: readonly ReplicaPlan[], screen: Screen) {
    this.options = options;
    this.screen = screen;
    this.replicas = plans.map(notStarted);
  }

  start(): void {
    for (const replica of this.replicas) {
      mkdirSync(replica.plan.dataDir, { recursive: true });
      this.spawn(replica);
    }
    this.printBanner();
    this.readCommands();
    this.pollTimer = setInterval(() => void this.poll(), POLL_INTERVAL_MS);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
      process.on(signal, () => void this.stop(signal));
    // If this process dies of a bug, do not leave replicas behind holding the ports.
    process.on("exit", () => {
      for (const replica of this.replicas) replica.child?.kill("SIGINT");
    });
  }

  private spawn(replica: Supervised): void {
    const { plan } = replica;
    replica.logOffset = logSize(plan.logFile);
    const fd = openSync(plan.logFile, "a");
    let child: ChildProcess;
    try {
      // A replica restarted here ran before: if it comes back without state (memory durability,
      // or it never wrote its log), it must recover from the others before it votes.
      // One that joined (grow) remembers it in its data directory: --join is for the first start.
      const args = replica.restarted
        ? [...plan.args.filter((arg) => arg !== "--join"), "--initial-cluster-state", "existing"]
        : plan.args;
      child = spawn(process.execPath, [...this.execArgv, this.script, ...args], {
        stdio: ["ignore", fd, fd],
        // Own process group: Ctrl-C reaches only the launcher, which stops replicas in order.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    replica.child = child;
    replica.pid = child.pid ?? null;
    replica.state = { kind: "starting" };
    replica.startedAtMs = Date.now();
    replica.answered = false;
    replica.catchingUp = false;
    replica.exited = new Promise((resolve) => {
      let ended = false;
      const end = (code: number | null, signal: string | null) => {
        if (ended) return;
        ended = true;
        resolve();
        if (replica.child === child) this.onExit(replica, code, signal);
      };
      child.once("exit", (code, signal) => end(code, signal));
      child.once("error", (error) => {
        if (child.pid === undefined) {
          this.screen.print(
            `replica ${plan.id}: cannot start ${process.execPath}: ${error.message}`,
          );
          end(null, null);
        }
      });
    });
  }

  private onExit(replica: Supervised, code: number | null, signal: string | null): void {
    const { plan } = replica;
    const pid = replica.pid;
    replica.child = null;
    if (this.stopping || replica.retired) return;
    const started = replica.answered || Date.now() - replica.startedAtMs >= STARTED_AFTER_MS;
    replica.failedStarts = started ? 0 : replica.failedStarts + 1;
    const lines = [describeExit(plan.id, pid, code, signal)];
    if (this.leaderId === plan.id) {
      lines[0] += "; it was the leader: the others elect a new one after an election timeout";
      this.leaderLostAtMs = Date.now();
    }
    if (code !== null && code !== 0) lines.push(...this.logTail(replica));
    if (code === EXIT_INVALID_CONFIG) {
      replica.state = { kind: "down", why: "failed" };
      lines.push(
        `replica ${plan.id} refused its settings; not restarting it (check the flags after --)`,
      );
    } else if (replica.failedStarts >= FAILED_STARTS_MAX) {
      replica.state = { kind: "down", why: "failed" };
      lines.push(
        `replica ${plan.id} failed to start ${FAILED_STARTS_MAX} times in a row; leaving it down`,
      );
      if (code === null || code === 0) lines.push(...this.logTail(replica));
    } else if (!this.options.restart) {
      replica.state = { kind: "down", why: "no-restart" };
      lines.push(`replica ${plan.id} stays down (--no-restart)`);
    } else {
      replica.state = { kind: "restarting" };
      lines.push(`restarting replica ${plan.id} in ${RESTART_DELAY_MS / 1000} s`);
      replica.restartTimer = setTimeout(() => {
        replica.restartTimer = null;
        if (this.stopping) return;
        replica.restarted = true;
        this.spawn(replica);
        this.screen.print(`replica ${plan.id} restarted (pid ${replica.pid ?? "?"})`);
      }, RESTART_DELAY_MS);
    }
    this.screen.print(lines.join("\n"));
    this.drawStatus();
    if (this.replicas.every((r) => r.state.kind === "down")) {
      this.screen.release();
      process.stdout.write("no replica is running and none will be restarted; stopping\n");
      this.exit(1);
    }
  }

  // ---- grow and shrink, typed into the launcher's terminal ------------------------------------

  /** A membership change the launcher is making; one at a time. */
  private changing = false;

  /** Lines typed into the launcher: grow, shrink, members. */
  private readCommands(): void {
    const lines = createInterface({ input: process.stdin, terminal: false });
    lines.on("line", (line) => {
      const command = line.trim().toLowerCase();
      if (command === "") return;
      if (command === "grow" || command === "shrink") {
        if (this.changing) {
          this.screen.print(`${command}: a change is under way; wait for it`);
          return;
        }
        this.changing = true;
        const run = command === "grow" ? this.grow() : this.shrink();
        void run.finally(() => {
          this.changing = false;
        });
      } else if (command === "members") {
        void this.printMembers();
      } else {
        this.screen.print(`unknown command "${command}": grow, shrink or members (Ctrl-C stops)`);
      }
    });
  }

  private admins() {
    return this.replicas.map((r) => ({ host: LOOPBACK, port: r.plan.adminPort }));
  }

  /** Start replica N+1 with --join, add it as a learner, promote it once caught up. */
  private async grow(): Promise<void> {
    const say = (line: string) => this.screen.print(line);
    const ids = this.replicas.map((r) => r.plan.id);
    const id = Math.max(...ids) + 1;
    if (id > REPLICAS_MAX) return say(`grow: the launcher runs at most ${REPLICAS_MAX} replicas`);
    const plan = planGrownReplica(this.options, id, ids);
    for (const port of plannedPorts(this.options, [plan])) {
      const taken = await checkPort(port);
      if (taken !== null)
        return say(`grow: port ${port.port} (${port.use} port of replica ${id}) ${taken}`);
    }
    const replica = notStarted(plan);
    mkdirSync(plan.dataDir, { recursive: true });
    this.replicas.push(replica);
    this.spawn(replica);
    say(
      `grow: started replica ${id} (pid ${replica.pid ?? "?"}, --join, redis-cli -p ${plan.clientPort}, log ${plan.logFile})`,
    );
    await addAndPromote(() => this.admins(), id, peerAddressOf(this.options, id), say);
  }

  /** Remove the replica with the highest id from the configuration, then stop it. */
  private async shrink(): Promise<void> {
    const say = (line: string) => this.screen.print(line);
    if (this.replicas.length <= 1) return say("shrink: one replica left; it stays");
    const replica = this.replicas[this.replicas.length - 1]!;
    if (!(await removeMember(this.admins(), replica.plan.id, say))) return;
    replica.retired = true;
    if (replica.restartTimer !== null) clearTimeout(replica.restartTimer);
    // SIGTERM, not SIGINT: a leader hands leadership over before it stops (it still leads until
    // its removal governs a chosen slot), so the members see no election timeout.
    replica.child?.kill("SIGTERM");
    await this.waitExited([replica], STOP_GRACE_MS);
    replica.child?.kill("SIGKILL");
    this.replicas.splice(this.replicas.indexOf(replica), 1);
    say(`shrink: stopped replica ${replica.plan.id}; its data stays in ${replica.plan.dataDir}`);
    this.drawStatus();
  }

  private async printMembers(): Promise<void> {
    const leader = await findLeader(this.admins());
    this.screen.print(
      leader === null ? "members: no replica answers as leader" : formatConfiguration(leader.view),
    );
  }

  private logTail(replica: Supervised): string[] {
    const lines = readLogTail(replica.plan.logFile, replica.logOffset, LOG_TAIL_LINES);
    if (lines.length === 0) return [`  (${replica.plan.logFile} has nothing from this run)`];
    return [
      `  last lines of ${replica.plan.logFile}:`,
      ...lines.map((line) => `    ${summarizeLogLine(line)}`),
    ];
  }

  private async poll(): Promise<void> {
    if (this.polling || this.stopping) return;
    this.polling = true;
    try {
      await Promise.all(this.replicas.map((replica) => this.pollOne(replica)));
    } finally {
      this.polling = false;
    }
    if (this.stopping) return;
    this.announce();
    this.drawStatus();
  }

  private async pollOne(replica: Supervised): Promise<void> {
    const child = replica.child;
    if (child === null) return;
    const address = { host: LOOPBACK, port: replica.plan.adminPort };
    const result = await getAdminJson(address, "/status", POLL_TIMEOUT_MS);
    if (replica.child !== child) return; // it exited meanwhile
    if (!result.ok) {
      if (replica.answered) replica.state = { kind: "unreachable", reason: result.reason };
      return;
    }
    const status = asReplicaStatus(result.value);
    if (status === null) {
      replica.state = { kind: "unreachable", reason: "the admin port does not answer as apus-smr" };
      return;
    }
    if (!replica.answered && replica.restarted)
      this.screen.print(
        `replica ${replica.plan.id} is back (pid ${replica.pid ?? "?"}): ${status.role}, ${this.options.durability === "fsync" ? `recovered its log from ${replica.plan.dataDir}, ` : ""}applied ${status.appliedIndex} of commit ${status.commitIndex}; it catches up from the leader`,
      );
    replica.answered = true;
    replica.failedStarts = 0;
    replica.state = { kind: "up", status };
  }

  /** Print a new leader, and replicas that finished catching up. */
  private announce(): void {
    const views = this.views();
    const leader = leaderOf(views);
    if (leader !== null && `${leader.id}@${leader.ballot}` !== this.leaderKey) {
      const pid = this.replicas[leader.id - 1]?.pid ?? "?";
      const was =
        this.leaderId !== null && this.leaderId !== leader.id
          ? `, was replica ${this.leaderId}`
          : "";
      const took =
        this.leaderLostAtMs === null
          ? ""
          : `; failover took ~${((Date.now() - this.leaderLostAtMs) / 1000).toFixed(1)} s`;
      this.screen.print(
        `leader: replica ${leader.id} (ballot ${leader.ballot}, pid ${pid}${was})${took}`,
      );
      this.leaderKey = `${leader.id}@${leader.ballot}`;
      this.leaderId = leader.id;
      this.leaderLostAtMs = null;
    }
    const commit = highestCommit(views);
    for (const replica of this.replicas) {
      if (replica.state.kind !== "up") continue;
      const behind = commit - replica.state.status.appliedIndex;
      if (behind > CATCHING_UP_SLOTS_MIN) replica.catchingUp = true;
      else if (replica.catchingUp) {
        replica.catchingUp = false;
        this.screen.print(
          `replica ${replica.plan.id} caught up (applied ${replica.state.status.appliedIndex})`,
        );
      }
    }
  }

  private views() {
    return this.replicas.map((replica) => ({ id: replica.plan.id, state: replica.state }));
  }

  private drawStatus(): void {
    if (this.stopping) return;
    const views = this.views();
    this.screen.status(formatClusterLine(views), formatClusterLine(views, false));
  }

  private printBanner(): void {
    const { options } = this;
    const rows = this.replicas.map(({ plan, pid }) => [
      `replica ${plan.id}`,
      `pid ${pid ?? "?"}`,
      `redis-cli -p ${plan.clientPort}`,
      `http://${LOOPBACK}:${plan.adminPort}/status`,
      plan.logFile,
    ]);
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    const table = rows.map(
      (row) =>
        `  ${row
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join("  ")
          .trimEnd()}`,
    );
    const first = this.replicas[0]!.plan.clientPort;
    this.screen.print(
      [
        `apus-smr ${VERSION}: ${options.replicas} replica${options.replicas === 1 ? "" : "s"} on ${LOOPBACK} · durability ${options.durability} · transport ${options.transport} · ${options.workers} connection worker${options.workers === 1 ? "" : "s"} each · data in ${options.dataDir}`,
        ...table,
        `try: redis-cli -p ${first} set hello world; redis-benchmark -p ${first} -t set,get -n 100000 -c 24; kill -9 the leader's pid (shown) and watch`,
        `status table: node dist/cli.js status --admin ${this.replicas.map((r) => `${LOOPBACK}:${r.plan.adminPort}`).join(",")} · type grow, shrink or members and Enter · stop: Ctrl-C`,
      ].join("\n"),
    );
  }

  private async stop(signal: string): Promise<void> {
    if (this.stopping) {
      // A second Ctrl-C: do not wait.
      for (const replica of this.replicas) replica.child?.kill("SIGKILL");
      return;
    }
    this.stopping = true;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    for (const replica of this.replicas)
      if (replica.restartTimer !== null) clearTimeout(replica.restartTimer);
    this.screen.release();
    const running = this.replicas.filter((r) => r.child !== null);
    process.stdout.write(
      `${signal}: stopping ${running.length} replica${running.length === 1 ? "" : "s"}…\n`,
    );
    // SIGINT, not SIGTERM: a leader on SIGTERM first hands leadership over, which is pointless
    // when every replica stops, and could take up to 2 x the election timeout out of STOP_GRACE_MS.
    for (const replica of running) replica.child?.kill("SIGINT");
    if (!(await this.waitExited(running, STOP_GRACE_MS))) {
      for (const replica of running) {
        if (replica.child === null) continue;
        process.stdout.write(
          `replica ${replica.plan.id} (pid ${replica.pid}) did not stop within ${STOP_GRACE_MS / 1000} s: SIGKILL\n`,
        );
        replica.child.kill("SIGKILL");
      }
      await this.waitExited(running, KILL_GRACE_MS);
    }
    process.stdout.write("stopped\n");
    this.exit(0);
  }

  /** True when every one of `replicas` exited within `timeoutMs`. */
  private async waitExited(replicas: readonly Supervised[], timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const all = Promise.all(replicas.map((r) => r.exited)).then(() => true as const);
    const result = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return result;
  }

  private exit(code: number): void {
    this.stopping = true;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    process.exitCode = code;
    // Let stdout drain, then go even if a handle lingers.
    setTimeout(() => process.exit(code), 100).unref();
  }
}
