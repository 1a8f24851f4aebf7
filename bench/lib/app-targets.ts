/**
 * What bench/app.ts measures against: a bare server program on a free port, or a three-replica
 * apus-smr cluster (bench/lib/cluster.ts) fronting copies of it (--app) or running the embedded
 * store. Each target names the processes whose CPU is its cost: the bare server; or the replica
 * processes and their program copies (the copies' pids from each replica's /status
 * app.program.pid). Every target started is registered so that Ctrl-C or SIGTERM stops it.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { type Cluster, getJson, sleep, startCluster, stopChildren } from "./cluster.ts";
import type { Variant } from "./contracts.ts";

const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const PORT_TRIES_MAX = 50;
const READY_MS_MAX = 10_000;

export interface Target {
  readonly name: string;
  /** Where the load generator connects: the bare server, or the cluster leader's client port. */
  readonly port: number;
  /** The processes whose CPU is this target's, read afresh (a copy could be restarted). */
  pids(): Promise<readonly number[]>;
  /** The program copies' own ports (replicated targets), for consistency checks. */
  copyPorts(): Promise<readonly number[]>;
  stop(): Promise<void>;
}

const running = new Set<() => Promise<void>>();

/** Stops every target still running (also what the signal handlers do). */
export async function stopAll(): Promise<void> {
  const stops = [...running];
  running.clear();
  await Promise.allSettled(stops.map((stop) => stop()));
}

/** Direct children of this process still alive: replicas a start interrupted by a signal left. */
function ownChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

let handlersInstalled = false;

/** On SIGINT/SIGTERM/SIGHUP: stop every target, kill any other child of ours, exit 130. */
export function installSignalCleanup(extra: () => void = () => {}): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping every process this benchmark started…\n`);
    extra();
    const hardStop = setTimeout(() => {
      for (const pid of ownChildren()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      process.exit(130);
    }, 3000);
    void stopAll().finally(() => {
      for (const pid of ownChildren()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      clearTimeout(hardStop);
      process.exit(130);
    });
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
}

async function tcpPortIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A free TCP port below the ephemeral range (see cluster.ts on why). */
export async function freeTcpPort(): Promise<number> {
  for (let i = 0; i < PORT_TRIES_MAX; i++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (await tcpPortIsFree(port)) return port;
  }
  throw new Error(`no free TCP port found in ${PORT_TRIES_MAX} tries`);
}

async function acceptsConnections(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `command args…` with {port} filled in by a free port and waits until it accepts
 * connections. The program's own process is the target's one pid.
 */
export async function startBare(
  name: string,
  command: string,
  args: readonly string[],
): Promise<Target> {
  const port = await freeTcpPort();
  const child = spawn(
    command,
    args.map((a) => a.replaceAll("{port}", String(port))),
    { stdio: "ignore" },
  );
  const stop = () => stopChildren([child]);
  running.add(stop);
  const deadline = Date.now() + READY_MS_MAX;
  while (!(await acceptsConnections(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      running.delete(stop);
      await stop();
      throw new Error(`${command} did not start listening on ${port}`);
    }
    await sleep(50);
  }
  return {
    name,
    port,
    pids: async () => [child.pid!],
    copyPorts: async () => [],
    stop: async () => {
      running.delete(stop);
      await stop();
    },
  };
}

interface ProgramStatus {
  readonly app: {
    readonly kind: string;
    readonly program?: {
      readonly pid: number | null;
      readonly port: number;
      readonly state: string;
    };
  };
}

/** Three replica processes with `flags`; with --app, their copies count as the target's too. */
export async function startReplicated(name: string, flags: readonly string[]): Promise<Target> {
  const variant: Variant = {
    name,
    runner: "processes",
    transport: "udp",
    replicaFlags: flags,
    description: name,
  };
  const cluster: Cluster = await startCluster(3, variant);
  const stop = () => cluster.stop();
  running.add(stop);
  const statuses = () =>
    Promise.all(
      [1, 2, 3].map((id) =>
        getJson<ProgramStatus>(`http://127.0.0.1:${cluster.adminPort(id)}/status`),
      ),
    );
  const programs = async () => {
    const list = (await statuses()).map((s) => s.app.program).filter((p) => p !== undefined);
    for (const p of list)
      if (p.state !== "running") throw new Error(`${name}: a program copy is ${p.state}`);
    return list;
  };
  return {
    name,
    port: cluster.clientPort(cluster.leaderId),
    pids: async () => [
      ...cluster.pids(),
      ...(await programs()).map((p) => p.pid).filter((pid): pid is number => pid !== null),
    ],
    copyPorts: async () => (await programs()).map((p) => p.port),
    stop: async () => {
      running.delete(stop);
      await stop();
    },
  };
}
