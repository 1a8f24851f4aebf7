/**
 * The three systems `npm run bench:peers` compares, each as a cluster of N server processes on
 * 127.0.0.1 in a temp dir of its own (named apus-peers-*), on free ports below the ephemeral range:
 *
 *   apus-smr   N `dist/replica.js` processes (bench/lib/cluster.ts), `--durability fsync`
 *   etcd       N `etcd` processes (Debian etcd-server 3.4); it fsyncs its WAL before it acks
 *   ZooKeeper  N JVMs running QuorumPeerMain with Debian's jars (3.8), forceSync=yes
 *
 * Each exposes the leader's client endpoint (every connection goes there), the pids whose CPU is
 * "the system's", a way to ask who leads now (a sample during which the leader moved is flagged),
 * and stop(), which SIGKILLs every process and removes the temp dir. `stopAllNow()` does that
 * synchronously for every cluster still running, for Ctrl-C and exit.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Cluster, getJson, ROOT, sleep, startCluster, stopChildren } from "./cluster.ts";
import type { Variant } from "./contracts.ts";

export type SystemName = "apus-smr" | "zookeeper" | "etcd";

/** Order in which systems take turns at every point (interleaved, so background load is shared). */
export const SYSTEM_ORDER: readonly SystemName[] = ["apus-smr", "zookeeper", "etcd"];

export interface PeerCluster {
  readonly system: SystemName;
  readonly replicaCount: number;
  /** What the servers say they are (etcd's status, ZooKeeper's srvr, apus-smr's package + git). */
  readonly version: string;
  /** 1-based index of the leader when the cluster was last asked. */
  leaderIndex: number;
  /** TCP port of replica `index`'s client endpoint on 127.0.0.1. */
  clientPort(index: number): number;
  /** Asks every replica who leads; null while they do not agree. */
  currentLeader(): Promise<number | null>;
  pids(): readonly number[];
  stop(): Promise<void>;
}

/** How long a new cluster may take to agree on a leader (9 JVMs on 2 cores start slowly). */
const LEADER_WAIT_MS_MAX = 90_000;
const POLL_MS = 250;
const PROBE_TIMEOUT_MS = 2_000;
/** Ports below /proc/sys/net/ipv4/ip_local_port_range's 32768 (see bench/lib/cluster.ts). */
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const PORT_TRIES_MAX = 200;
/** Lines of a server's log shown when it fails to start. */
const LOG_TAIL_LINES = 15;
/** ZooKeeper's JVM heap: 2 cores and 24 GiB hold 9 of them beside the other systems. */
const ZK_HEAP = "-Xmx256m";

const portsGiven = new Set<number>();

/** A TCP port free on 127.0.0.1, never handed out twice in this process. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_TRIES_MAX; attempt++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (portsGiven.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) {
      portsGiven.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${PORT_TRIES_MAX} tries`);
}

/** Processes and temp dirs of clusters not yet stopped, for stopAllNow(). */
const running = new Set<{ pids: () => readonly number[]; dir: string | null }>();

/** SIGKILLs every server process still running and removes their dirs; synchronous. */
export function stopAllNow(): void {
  for (const entry of running) {
    for (const pid of entry.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    if (entry.dir !== null) rmSync(entry.dir, { recursive: true, force: true });
  }
  running.clear();
}

function logTail(file: string): string {
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
}

/** Spawns a server with stdout and stderr going to `logFile`. */
function spawnLogged(
  command: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    return spawn(command, args, { stdio: ["ignore", fd, fd], env });
  } finally {
    closeSync(fd);
  }
}

async function waitForLeader(
  what: string,
  children: readonly ChildProcess[],
  logFiles: readonly string[],
  ask: () => Promise<number | null>,
): Promise<number> {
  const deadline = Date.now() + LEADER_WAIT_MS_MAX;
  while (Date.now() < deadline) {
    for (const [i, child] of children.entries()) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `${what}: server ${i + 1} exited (${child.exitCode ?? child.signalCode}) during start-up; its log:\n${logTail(logFiles[i]!)}`,
        );
    }
    const leader = await ask().catch(() => null);
    if (leader !== null) return leader;
    await sleep(POLL_MS);
  }
  throw new Error(
    `${what}: no leader agreed within ${LEADER_WAIT_MS_MAX} ms; server 1's log:\n${logTail(logFiles[0]!)}`,
  );
}

// ---------------------------------------------------------------------------------------------
// apus-smr

/** bench/lib/cluster.ts gives every replica `--durability memory` first; this comes after it. */
const APUS_FSYNC_VARIANT: Variant = {
  name: "apus-smr fsync",
  runner: "processes",
  transport: "udp",
  replicaFlags: ["--durability", "fsync"],
  description: "default flags, --durability fsync (every vote fdatasync'ed before it counts)",
};

function apusVersion(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  let commit = "";
  try {
    commit = execFileSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
    }).trim();
    // dist/ is built from the working tree: say when it is not the commit named.
    const dirty = execFileSync("git", ["-C", ROOT, "status", "--porcelain", "--", "src"], {
      encoding: "utf8",
    }).trim();
    if (dirty !== "") commit += " + uncommitted changes in src/";
  } catch {
    // not a git checkout
  }
  return commit === "" ? pkg.version : `${pkg.version} (${commit})`;
}

/**
 * The temp dir cluster.ts made (it keeps it to itself): the parent of --secret-file on the
 * replica's command line, so that stopAllNow() removes it too after a Ctrl-C.
 */
function apusDir(pid: number): string | null {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const at = args.indexOf("--secret-file");
    const secret = at < 0 ? undefined : args[at + 1];
    return secret === undefined || !secret.startsWith(tmpdir()) ? null : dirname(secret);
  } catch {
    return null;
  }
}

interface ApusStatus {
  readonly role: string;
  readonly leader: number | null;
  readonly durability: string;
}

export async function startApus(replicaCount: number): Promise<PeerCluster> {
  const cluster: Cluster = await startCluster(replicaCount, APUS_FSYNC_VARIANT);
  const entry = { pids: () => cluster.pids(), dir: apusDir(cluster.pids()[0]!) };
  running.add(entry);
  const status = (id: number) =>
    getJson<ApusStatus>(`http://127.0.0.1:${cluster.adminPort(id)}/status`);
  // The variant's --durability comes after cluster.ts's; /status says which one won.
  for (let id = 1; id <= replicaCount; id++) {
    const durability = (await status(id)).durability;
    if (durability !== "fsync") {
      await cluster.stop();
      running.delete(entry);
      throw new Error(`apus-smr: replica ${id} runs with durability ${durability}, not fsync`);
    }
  }
  const peer: PeerCluster = {
    system: "apus-smr",
    replicaCount,
    version: apusVersion(),
    leaderIndex: cluster.leaderId,
    clientPort: (index) => cluster.clientPort(index),
    currentLeader: async () => {
      const all = await Promise.all(
        Array.from({ length: replicaCount }, (_, i) => status(i + 1).catch(() => null)),
      );
      const leader = all[0]?.leader ?? null;
      if (leader === null || !all.every((s) => s !== null && s.leader === leader)) return null;
      return all[leader - 1]?.role === "leader" ? leader : null;
    },
    pids: () => cluster.pids(),
    stop: async () => {
      await cluster.stop();
      running.delete(entry);
    },
  };
  return peer;
}

// ---------------------------------------------------------------------------------------------
// etcd

/** The `etcd` binary: on PATH, else Debian's /usr/bin/etcd. */
export function findEtcd(): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "etcd"))) return join(dir, "etcd");
  }
  return existsSync("/usr/bin/etcd") ? "/usr/bin/etcd" : null;
}

/** etcd reads ETCD_* variables as flags: none of the caller's may leak into the benchmark's. */
function envWithoutEtcd(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith("ETCD_")) env[key] = value;
  return env;
}

/** The JSON gateway's /v3/maintenance/status (uint64 fields are decimal strings). */
interface EtcdStatus {
  readonly header: { readonly member_id: string };
  readonly leader: string;
  readonly version: string;
}

async function etcdStatus(clientPort: number): Promise<EtcdStatus> {
  const response = await fetch(`http://127.0.0.1:${clientPort}/v3/maintenance/status`, {
    method: "POST",
    body: "{}",
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`etcd status: HTTP ${response.status}`);
  return (await response.json()) as EtcdStatus;
}

export async function startEtcd(replicaCount: number, etcdBin: string): Promise<PeerCluster> {
  const dir = mkdtempSync(join(tmpdir(), "apus-peers-etcd-"));
  const clientPorts: number[] = [];
  const peerPorts: number[] = [];
  for (let i = 0; i < replicaCount; i++) {
    clientPorts.push(await freePort());
    peerPorts.push(await freePort());
  }
  const initialCluster = peerPorts.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(",");
  const children: ChildProcess[] = [];
  const logFiles: string[] = [];
  const entry = { pids: () => children.map((c) => c.pid!), dir };
  running.add(entry);
  const env = envWithoutEtcd();
  for (let i = 0; i < replicaCount; i++) {
    const clientUrl = `http://127.0.0.1:${clientPorts[i]}`;
    const peerUrl = `http://127.0.0.1:${peerPorts[i]}`;
    const logFile = join(dir, `m${i + 1}.log`);
    logFiles.push(logFile);
    children.push(
      spawnLogged(
        etcdBin,
        [
          "--name",
          `m${i + 1}`,
          "--data-dir",
          join(dir, `m${i + 1}`),
          "--listen-client-urls",
          clientUrl,
          "--advertise-client-urls",
          clientUrl,
          "--listen-peer-urls",
          peerUrl,
          "--initial-advertise-peer-urls",
          peerUrl,
          "--initial-cluster",
          initialCluster,
          "--initial-cluster-token",
          `apus-peers-${process.pid}`,
          "--initial-cluster-state",
          "new",
          "--logger",
          "zap",
          "--log-level",
          "warn",
        ],
        logFile,
        env,
      ),
    );
  }
  const stop = async () => {
    await stopChildren(children);
    rmSync(dir, { recursive: true, force: true });
    running.delete(entry);
  };
  let version = "3.4";
  const currentLeader = async (): Promise<number | null> => {
    const all = await Promise.all(clientPorts.map((p) => etcdStatus(p).catch(() => null)));
    const leader = all[0]?.leader;
    if (leader === undefined || leader === "0") return null;
    if (!all.every((s) => s !== null && s.leader === leader)) return null;
    const index = all.findIndex((s) => s!.header.member_id === leader);
    if (index < 0) return null;
    version = all[index]!.version;
    return index + 1;
  };
  try {
    const leaderIndex = await waitForLeader("etcd", children, logFiles, currentLeader);
    return {
      system: "etcd",
      replicaCount,
      version,
      leaderIndex,
      clientPort: (index) => clientPorts[index - 1]!,
      currentLeader,
      pids: entry.pids,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// ZooKeeper

const ZK_JARS = "/usr/share/java";

/**
 * Debian's zookeeper.jar names its dependencies in its manifest's Class-Path; it needs only an
 * slf4j binding beside it (warnings and errors to the log file, like the other systems).
 */
export function findZooKeeperClasspath(): string | null {
  const jar = join(ZK_JARS, "zookeeper.jar");
  if (!existsSync(jar)) return null;
  const binding = ["slf4j-simple.jar", "slf4j-nop.jar"]
    .map((name) => join(ZK_JARS, name))
    .find((path) => existsSync(path));
  return binding === undefined ? jar : `${jar}:${binding}`;
}

/** Sends a four-letter word to a ZooKeeper server and returns its whole answer. */
export function fourLetterWord(port: number, word: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy(new Error(`${word}: timeout`)));
    socket.once("connect", () => socket.write(word));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("error", reject);
    socket.once("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function zooCfg(dataDir: string, clientPort: number, servers: readonly string[]): string {
  return [
    "tickTime=2000",
    "initLimit=10",
    "syncLimit=5",
    `dataDir=${dataDir}`,
    `clientPort=${clientPort}`,
    "clientPortAddress=127.0.0.1",
    "maxClientCnxns=0",
    // The default, written out: the transaction log is fsync'ed before a write is acknowledged.
    "forceSync=yes",
    "admin.enableServer=false",
    "4lw.commands.whitelist=srvr,stat,mntr",
    ...servers,
    "",
  ].join("\n");
}

export async function startZooKeeper(
  replicaCount: number,
  classpath: string,
): Promise<PeerCluster> {
  const dir = mkdtempSync(join(tmpdir(), "apus-peers-zk-"));
  const clientPorts: number[] = [];
  const servers: string[] = [];
  for (let i = 1; i <= replicaCount; i++) {
    clientPorts.push(await freePort());
    servers.push(`server.${i}=127.0.0.1:${await freePort()}:${await freePort()}`);
  }
  const children: ChildProcess[] = [];
  const logFiles: string[] = [];
  const entry = { pids: () => children.map((c) => c.pid!), dir };
  running.add(entry);
  for (let i = 1; i <= replicaCount; i++) {
    const dataDir = join(dir, `z${i}`);
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "myid"), `${i}\n`);
    const cfg = join(dir, `z${i}.cfg`);
    writeFileSync(cfg, zooCfg(dataDir, clientPorts[i - 1]!, servers));
    const logFile = join(dir, `z${i}.log`);
    logFiles.push(logFile);
    children.push(
      spawnLogged(
        "java",
        [
          ZK_HEAP,
          "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
          "-Dzookeeper.jmx.log4j.disable=true",
          "-cp",
          classpath,
          "org.apache.zookeeper.server.quorum.QuorumPeerMain",
          cfg,
        ],
        logFile,
        process.env,
      ),
    );
  }
  const stop = async () => {
    await stopChildren(children);
    rmSync(dir, { recursive: true, force: true });
    running.delete(entry);
  };
  let version = "3.8";
  const currentLeader = async (): Promise<number | null> => {
    const answers = await Promise.all(
      clientPorts.map((p) => fourLetterWord(p, "srvr").catch(() => "")),
    );
    const modes = answers.map((a) => /^Mode: (\w+)/m.exec(a)?.[1] ?? null);
    const leaders = modes.flatMap((m, i) => (m === "leader" ? [i + 1] : []));
    if (leaders.length !== 1 || !modes.every((m) => m === "leader" || m === "follower"))
      return null;
    const leader = leaders[0]!;
    const named = /^Zookeeper version: ([^,\n]+)/m.exec(answers[leader - 1]!)?.[1];
    // Debian's build leaves "-${mvngit.commit.id}" unexpanded in the version.
    if (named !== undefined) version = `${named.replace(/-\$\{[^}]*\}/, "").trim()}`;
    return leader;
  };
  try {
    const leaderIndex = await waitForLeader("ZooKeeper", children, logFiles, currentLeader);
    return {
      system: "zookeeper",
      replicaCount,
      version,
      leaderIndex,
      clientPort: (index) => clientPorts[index - 1]!,
      currentLeader,
      pids: entry.pids,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
