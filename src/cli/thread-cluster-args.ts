import { parseArgs } from "node:util";
import { ApusError } from "../core/errors.ts";
import { REPLICA_COUNT_MAX } from "../limits.ts";
import { parseReplicaArgs, parseSize, type ReplicaConfig } from "../runtime/config.ts";
import {
  SHM_RING_BYTES_DEFAULT,
  SHM_RING_BYTES_MAX,
  SHM_RING_BYTES_MIN,
} from "../transport/shm-transport.ts";
import { hasFlag, launcherOwnedFlag, splitLauncherArgv } from "./launcher-args.ts";

/**
 * The flags of dist/thread-cluster.js, parsed and checked here, pure: N replicas as threads of
 * one process. Each replica's settings go through parseReplicaArgs like dist/replica.js's, with
 * the per-replica ones (id, peers, ports, transport, workers, data dir) filled in from the
 * cluster's flags.
 */
export type ThreadClusterArgs =
  | { readonly action: "help" }
  | { readonly action: "version" }
  | { readonly action: "run"; readonly plan: ThreadClusterPlan };

export interface ThreadClusterPlan {
  readonly replicaCount: number;
  readonly transport: "shm" | "udp";
  /** Bytes of each shm ring (one per ordered pair of replicas). */
  readonly ringBytes: number;
  /** Parent of replica-<id> data dirs; null: a fresh temp dir, removed at exit. */
  readonly dataDir: string | null;
  /** configs[id - 1]; dataDir inside them is relative to DATA_DIR_PLACEHOLDER when dataDir is null. */
  readonly configs: readonly ReplicaConfig[];
}

export const THREAD_CLUSTER_DEFAULTS = {
  baseClientPort: 7101,
  baseAdminPort: 8101,
  basePeerPort: 7201,
  workers: 1,
  transport: "shm",
} as const;
/** Stands for the temp dir in configs' dataDir until the entry point makes it. */
export const DATA_DIR_PLACEHOLDER = "<temp>";

/** Replica flags the cluster sets itself; passing them after `--` is a mistake. */
const RESERVED_REPLICA_FLAGS = [
  "id",
  "peers",
  "client-port",
  "admin-port",
  "transport",
  "workers",
  "data-dir",
];

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

function port(flag: string, text: string | undefined, fallback: number, count: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value) || value < 1 || value + count - 1 > 65535)
    throw invalid(
      `--${flag}: expected a port such that ${text}..+${count - 1} stays within 1..65535`,
    );
  return value;
}

export function parseThreadClusterArgs(argv: readonly string[]): ThreadClusterArgs {
  const { own, forReplicas: replicaFlags } = splitLauncherArgv(argv);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...own],
      strict: true,
      allowPositionals: false,
      options: {
        replicas: { type: "string" },
        "base-client-port": { type: "string" },
        "base-admin-port": { type: "string" },
        "base-peer-port": { type: "string" },
        workers: { type: "string" },
        transport: { type: "string" },
        "ring-bytes": { type: "string" },
        "data-dir": { type: "string" },
        help: { type: "boolean" },
        version: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw invalid(`${(error as Error).message} (replica flags go after --)`);
  }
  if (values.help === true) return { action: "help" };
  if (values.version === true) return { action: "version" };
  const text = (flag: string) => values[flag] as string | undefined;

  const replicasText = text("replicas");
  if (replicasText === undefined) throw invalid("--replicas: required, e.g. --replicas 3");
  const replicaCount = /^\d+$/.test(replicasText) ? Number(replicasText) : 0;
  if (replicaCount < 1 || replicaCount > REPLICA_COUNT_MAX)
    throw invalid(`--replicas: expected 1 to ${REPLICA_COUNT_MAX}, got "${replicasText}"`);
  const transport = text("transport") ?? THREAD_CLUSTER_DEFAULTS.transport;
  if (transport !== "shm" && transport !== "udp")
    throw invalid(`--transport: must be shm or udp, got "${transport}"`);
  const workersText = text("workers") ?? String(THREAD_CLUSTER_DEFAULTS.workers);
  const ringBytes = parseSize(text("ring-bytes") ?? String(SHM_RING_BYTES_DEFAULT));
  if (ringBytes === null || ringBytes < SHM_RING_BYTES_MIN || ringBytes > SHM_RING_BYTES_MAX)
    throw invalid(
      `--ring-bytes: expected ${SHM_RING_BYTES_MIN} to ${SHM_RING_BYTES_MAX} bytes (k/m suffixes), got "${text("ring-bytes")}"`,
    );
  const clientBase = port(
    "base-client-port",
    text("base-client-port"),
    THREAD_CLUSTER_DEFAULTS.baseClientPort,
    replicaCount,
  );
  const adminBase = port(
    "base-admin-port",
    text("base-admin-port"),
    THREAD_CLUSTER_DEFAULTS.baseAdminPort,
    replicaCount,
  );
  const peerBase = port(
    "base-peer-port",
    text("base-peer-port"),
    THREAD_CLUSTER_DEFAULTS.basePeerPort,
    replicaCount,
  );
  const owned = launcherOwnedFlag(replicaFlags, RESERVED_REPLICA_FLAGS);
  if (owned !== null)
    throw invalid(
      `--${owned} after -- : the thread cluster sets it for each replica; use its own flags (--help)`,
    );
  const dataDir = text("data-dir") ?? null;
  const peers = Array.from({ length: replicaCount }, (_, i) =>
    transport === "shm" ? `shm:${i + 1}` : `127.0.0.1:${peerBase + i}`,
  ).join(",");
  const defaults = [
    ...(hasFlag(replicaFlags, "durability") ? [] : ["--durability", "memory"]),
    ...(hasFlag(replicaFlags, "log-level") ? [] : ["--log-level", "warn"]),
  ];
  const configs = Array.from({ length: replicaCount }, (_, i) => {
    const id = i + 1;
    const parsed = parseReplicaArgs(
      [
        ...defaults,
        ...replicaFlags,
        ...["--id", String(id), "--peers", peers, "--transport", transport],
        ...["--client-port", String(clientBase + i), "--admin-port", String(adminBase + i)],
        ...["--workers", workersText],
        ...["--data-dir", `${dataDir ?? DATA_DIR_PLACEHOLDER}/replica-${id}`],
      ],
      { allowShm: true },
    );
    if (parsed.action !== "run") throw invalid("--help and --version go before --");
    return parsed.config;
  });
  return { action: "run", plan: { replicaCount, transport, ringBytes, dataDir, configs } };
}

export function threadClusterHelp(version: string): string {
  const d = THREAD_CLUSTER_DEFAULTS;
  return `apus-smr ${version}: N replicas as threads of ONE process, for measurement

Usage: node dist/thread-cluster.js --replicas N [options] [-- replica flags...]

Each replica is what dist/replica.js runs (a consensus worker thread, connection worker
threads, an admin HTTP server), started N times inside this process. Replica i serves Redis
clients on base-client-port+i-1 and GET /status, /metrics, /latency on base-admin-port+i-1.

--transport shm joins the replicas through shared memory: the leader writes each message
straight into the follower's inbox ring (a SharedArrayBuffer) and rings an Atomics doorbell;
the follower writes its acknowledgement back the same way. No socket, no kernel: this is the
one-sided-write model of RDMA from the APUS paper, run between threads. It is NOT RDMA (that
needs RDMA hardware and a native binding, which this project does not have), and it works only
between replicas of one process. --transport udp runs the same layout over loopback UDP, for an
apples-to-apples comparison of protocol cost against kernel cost.

Options:
  --replicas N             replicas to run, 1..${REPLICA_COUNT_MAX} (required)
  --transport shm|udp      peer transport (default: ${d.transport})
  --base-client-port PORT  client port of replica 1 (default: ${d.baseClientPort})
  --base-admin-port PORT   admin HTTP port of replica 1 (default: ${d.baseAdminPort})
  --base-peer-port PORT    UDP peer port of replica 1, udp only (default: ${d.basePeerPort})
  --workers N              connection worker threads per replica (default: ${d.workers}; the
                           replicas share this machine's cores; 0 serves each replica's clients
                           on its consensus thread)
  --ring-bytes BYTES       shm ring per ordered pair of replicas; larger messages are split
                           into records (default: ${SHM_RING_BYTES_DEFAULT / 1024 / 1024}m)
  --data-dir DIR           parent of replica-<id> write-ahead logs with -- --durability fsync
                           (default: a fresh temp dir, removed at exit)
  --help                   show this text
  --version                print the version

Replica flags after -- are those of dist/replica.js --help, except the ones set here (--id,
--peers, --client-port, --admin-port, --transport, --workers, --data-dir). Defaults differ:
--durability memory (no disk: measure protocol, not fsync) and --log-level warn.

Prints one line per replica, then the leader. SIGINT or SIGTERM stops every replica and exits 0.
`;
}
