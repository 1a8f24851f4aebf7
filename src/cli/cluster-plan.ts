import { join } from "node:path";
import { parseArgs } from "node:util";
import { ApusError } from "../core/errors.ts";
import { LOCAL_REPLICA_COUNT_MAX } from "../limits.ts";
import { workersForCores } from "../runtime/config.ts";
import { launcherOwnedFlag, splitLauncherArgv } from "./launcher-args.ts";

/**
 * The local cluster launcher's settings (`npm start`, dist/cluster.js) and the plan they make:
 * each replica's ports, directories and command line. Pure: parsing and planning here, processes
 * in cluster-supervisor.ts.
 */
export interface ClusterOptions {
  readonly replicas: number;
  /** Replica i listens for Redis clients on baseClientPort + i - 1. */
  readonly baseClientPort: number;
  readonly basePeerPort: number;
  readonly baseAdminPort: number;
  readonly dataDir: string;
  readonly durability: "fsync" | "memory";
  readonly transport: "udp" | "tcp";
  /** Connection workers per replica. */
  readonly workers: number;
  /** Restart a replica that exits while the cluster runs. */
  readonly restart: boolean;
  /** Everything after `--`, passed to every replica. */
  readonly replicaArgs: readonly string[];
}

export interface ReplicaPlan {
  readonly id: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly adminPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** Arguments after the replica script's path. */
  readonly args: readonly string[];
}

export interface PlannedPort {
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly replicaId: number;
  readonly use: "client" | "peer" | "admin";
  /** The launcher flag that moves this port. */
  readonly flag: string;
}

export type ClusterArgs =
  | { readonly action: "help" }
  | { readonly action: "run"; readonly options: ClusterOptions };

export const REPLICAS_MAX = LOCAL_REPLICA_COUNT_MAX;
export const SECRET_FILE_NAME = "cluster.secret";
export const LOOPBACK = "127.0.0.1";

/**
 * Share the machine's cores among the replicas: cores / N each, one of them for consensus, at
 * most 4 for clients; 0 (clients on the consensus thread) when no core is left over, as with 3
 * replicas on 2 cores.
 */
export function defaultClusterWorkers(cores: number, replicas: number): number {
  return workersForCores(cores / replicas);
}

/** Replica flags the launcher sets itself; `--` may not override them. */
const LAUNCHER_OWNED: Readonly<Record<string, string>> = {
  id: "the launcher numbers replicas 1..N (see --replicas)",
  peers: "the launcher lists 127.0.0.1:<base-peer-port + i - 1> (see --base-peer-port)",
  "client-port": "use --base-client-port",
  "admin-port": "use --base-admin-port",
  "data-dir": "use the launcher's --data-dir (replica i gets <data-dir>/replica-i)",
  "secret-file": "the launcher creates <data-dir>/cluster.secret",
  durability: "use the launcher's own --durability, before --",
  transport: "use the launcher's own --transport, before --",
  workers: "use the launcher's own --workers, before --",
  "admin-auth":
    "the launcher reads each replica's /status without credentials, so its replicas keep the default (writes: only state-changing admin requests need an admin user)",
};

function invalid(flag: string, message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", `--${flag}: ${message}`);
}

function intFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw invalid(flag, `expected a whole number, got "${text}"`);
  const value = Number(text);
  if (value < min || value > max)
    throw invalid(flag, `must be from ${min} to ${max}, got ${value}`);
  return value;
}

function choiceFlag<T extends string>(
  flag: string,
  text: string | undefined,
  choices: readonly T[],
): T {
  if (text === undefined) return choices[0]!;
  if (!(choices as readonly string[]).includes(text))
    throw invalid(flag, `must be one of ${choices.join(", ")}, got "${text}"`);
  return text as T;
}

function checkReplicaArgs(args: readonly string[]): void {
  const owned = launcherOwnedFlag(args, Object.keys(LAUNCHER_OWNED));
  if (owned !== null)
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--${owned} after -- is set by the launcher: ${LAUNCHER_OWNED[owned]}`,
    );
}

function checkPortRanges(options: ClusterOptions): void {
  const ranges = [
    { flag: "base-client-port", base: options.baseClientPort },
    { flag: "base-peer-port", base: options.basePeerPort },
    { flag: "base-admin-port", base: options.baseAdminPort },
  ];
  for (const range of ranges) {
    const last = range.base + options.replicas - 1;
    if (last > 65535)
      throw invalid(
        range.flag,
        `${range.base} + ${options.replicas} replicas runs past port 65535`,
      );
  }
  for (let a = 0; a < ranges.length; a++) {
    for (let b = a + 1; b < ranges.length; b++) {
      const first = ranges[a]!;
      const second = ranges[b]!;
      if (Math.abs(first.base - second.base) < options.replicas)
        throw invalid(
          second.flag,
          `ports ${second.base}..${second.base + options.replicas - 1} overlap --${first.flag} ports ${first.base}..${first.base + options.replicas - 1}`,
        );
    }
  }
}

/** Parse the launcher's argv; everything after the first `--` goes to every replica unchanged. */
export function parseClusterArgs(argv: readonly string[], cores: number): ClusterArgs {
  const { own, forReplicas: replicaArgs } = splitLauncherArgv(argv);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...own],
      strict: true,
      allowPositionals: false,
      options: {
        replicas: { type: "string" },
        "base-client-port": { type: "string" },
        "base-peer-port": { type: "string" },
        "base-admin-port": { type: "string" },
        "data-dir": { type: "string" },
        durability: { type: "string" },
        transport: { type: "string" },
        workers: { type: "string" },
        app: { type: "string" },
        protocol: { type: "string" },
        "no-restart": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new ApusError("ERR_INVALID_CONFIG", (error as Error).message);
  }
  if (values.help === true) return { action: "help" };
  const str = (key: string) => values[key] as string | undefined;
  const replicas = intFlag("replicas", str("replicas"), 3, 1, REPLICAS_MAX);
  const dataDir = str("data-dir") ?? "./data";
  if (dataDir.length === 0) throw invalid("data-dir", "must not be empty");
  checkReplicaArgs(replicaArgs);
  // --app and --protocol are replica settings the launcher takes too, so the one-liner
  // `npm start -- --app "redis-server …"` works; the replica checks them.
  const app = str("app");
  if (app !== undefined && app.trim().length === 0)
    throw invalid("app", 'must be a command line, e.g. "redis-server --port {port} --dir {dir}"');
  const protocol = str("protocol");
  if (protocol !== undefined && app === undefined)
    throw invalid("protocol", "only means something with --app");
  const appArgs = [
    ...(app === undefined ? [] : ["--app", app]),
    ...(protocol === undefined ? [] : ["--protocol", protocol]),
  ];
  const options: ClusterOptions = {
    replicas,
    baseClientPort: intFlag("base-client-port", str("base-client-port"), 7001, 1, 65535),
    basePeerPort: intFlag("base-peer-port", str("base-peer-port"), 17001, 1, 65535),
    baseAdminPort: intFlag("base-admin-port", str("base-admin-port"), 8001, 1, 65535),
    dataDir,
    durability: choiceFlag("durability", str("durability"), ["fsync", "memory"] as const),
    transport: choiceFlag("transport", str("transport"), ["udp", "tcp"] as const),
    workers: intFlag("workers", str("workers"), defaultClusterWorkers(cores, replicas), 0, 64),
    restart: values["no-restart"] !== true,
    replicaArgs: [...appArgs, ...replicaArgs],
  };
  checkPortRanges(options);
  return { action: "run", options };
}

export function peerList(options: ClusterOptions): string {
  const peers: string[] = [];
  for (let id = 1; id <= options.replicas; id++)
    peers.push(`${LOOPBACK}:${options.basePeerPort + id - 1}`);
  return peers.join(",");
}

export function secretFilePath(options: ClusterOptions): string {
  return join(options.dataDir, SECRET_FILE_NAME);
}

export function planReplicas(options: ClusterOptions): ReplicaPlan[] {
  const peers = peerList(options);
  const plans: ReplicaPlan[] = [];
  for (let id = 1; id <= options.replicas; id++) plans.push(planReplica(options, id, peers, false));
  return plans;
}

/** Replica `id`'s ports, directories and command line; `joins`: it joins a running cluster. */
function planReplica(
  options: ClusterOptions,
  id: number,
  peers: string,
  joins: boolean,
): ReplicaPlan {
  const clientPort = options.baseClientPort + id - 1;
  const peerPort = options.basePeerPort + id - 1;
  const adminPort = options.baseAdminPort + id - 1;
  const dataDir = join(options.dataDir, `replica-${id}`);
  const args = [
    ...["--id", String(id), "--peers", peers, ...(joins ? ["--join"] : [])],
    ...["--client-port", String(clientPort), "--admin-port", String(adminPort)],
    ...["--data-dir", dataDir, "--secret-file", secretFilePath(options)],
    ...["--durability", options.durability, "--transport", options.transport],
    ...["--workers", String(options.workers), "--log-format", "json"],
    ...options.replicaArgs,
  ];
  return {
    id,
    clientPort,
    peerPort,
    adminPort,
    dataDir,
    logFile: join(options.dataDir, `replica-${id}.log`),
    args,
  };
}

/** The peer address of the launcher's replica `id`. */
export function peerAddressOf(options: ClusterOptions, id: number): string {
  return `${LOOPBACK}:${options.basePeerPort + id - 1}`;
}

/**
 * A replica that `grow` adds to the running cluster: the next id, the launcher's ports for it,
 * started with --join and --peers naming the members (`memberIds`) and itself.
 */
export function planGrownReplica(
  options: ClusterOptions,
  id: number,
  memberIds: readonly number[],
): ReplicaPlan {
  const peers = [...memberIds, id]
    .map((member) => `${member}=${peerAddressOf(options, member)}`)
    .join(",");
  return planReplica(options, id, peers, true);
}

/** Every port the cluster will listen on, with the flag that moves it. */
export function plannedPorts(
  options: ClusterOptions,
  plans: readonly ReplicaPlan[],
): PlannedPort[] {
  return plans.flatMap((plan) => [
    {
      port: plan.clientPort,
      protocol: "tcp" as const,
      replicaId: plan.id,
      use: "client" as const,
      flag: "--base-client-port",
    },
    {
      port: plan.peerPort,
      protocol: options.transport,
      replicaId: plan.id,
      use: "peer" as const,
      flag: "--base-peer-port",
    },
    {
      port: plan.adminPort,
      protocol: "tcp" as const,
      replicaId: plan.id,
      use: "admin" as const,
      flag: "--base-admin-port",
    },
  ]);
}

/** "port 7002 (client port of replica 2, tcp) is in use (…); move the client ports with --base-client-port". */
export function describeTakenPort(port: PlannedPort, reason: string): string {
  return `port ${port.port} (${port.use} port of replica ${port.replicaId}, ${port.protocol}) ${reason}; move the ${port.use} ports with ${port.flag} N, or stop what holds it`;
}

export function clusterHelpText(version: string, cores: number): string {
  return `apus-smr ${version}: a local cluster of replicas on 127.0.0.1, for trying apus-smr out

Usage: npm start [-- [options] [-- replica options]]
       node dist/cluster.js [options] [-- replica options]

Starts N replicas (node dist/replica.js), each serving Redis clients, shows which one leads and a
live status line, restarts a replica that dies (kill -9 the leader to watch a failover), and
stops them all on Ctrl-C.

Options:
  --replicas N            replicas to run, 1..${REPLICAS_MAX}; default: 3
  --base-client-port P    replica i serves Redis clients on P + i - 1; default: 7001
  --base-peer-port P      replica i talks to its peers on P + i - 1; default: 17001
  --base-admin-port P     replica i serves /status, /metrics, /latency on P + i - 1; default: 8001
  --data-dir DIR          replica i keeps its write-ahead log in DIR/replica-i and writes its log
                          lines to DIR/replica-i.log; DIR/cluster.secret (created if missing)
                          is the peers' shared key; default: ./data
  --durability MODE       fsync (survives losing every replica at once) or memory; default: fsync
  --transport T           peer transport, udp or tcp; default: udp
  --workers N             connection worker threads per replica; 0 serves clients on the
                          consensus thread (no hop between threads: best when a worker would
                          not get a core of its own); default: cores / replicas - 1, 0..4
                          (here ${defaultClusterWorkers(cores, 3)} with 3 replicas)
  --app "CMD"             replicate an unmodified server program instead of the embedded store:
                          each replica runs its own copy of CMD ({port} {host} {dir} {id} filled
                          in), e.g. --app "redis-server --port {port} --bind {host} --dir {dir} --save ''"
  --protocol P            with --app: resp (default), memcache or raw
  --no-restart            leave a replica that exits down instead of restarting it after 1 s
  --help                  show this text
  -- FLAGS...             pass FLAGS to every replica (see node dist/replica.js --help),
                          e.g. -- --batch-max-commands 1 --log-level debug

While it runs, type a command and Enter:
  grow                    start replica N+1 (--join), add it as a learner, promote it once it
                          caught up (up to ${REPLICAS_MAX} replicas)
  shrink                  remove the replica with the highest id from the configuration, then
                          stop it (never below one)
  members                 the configuration (node dist/cli.js member list)

Then: redis-cli -p 7001 set hello world, or node dist/cli.js status.
`;
}
