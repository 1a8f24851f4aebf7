/**
 * One replica's threads, started and stopped: the consensus worker and the connection workers
 * (sharing rings of SharedArrayBuffer) and the admin HTTP server. `dist/replica.js` runs one per
 * process; `dist/thread-cluster.js` runs several in one process. No data-path work happens in the
 * calling (main) thread. Process concerns (signals, exit codes) stay with the caller.
 */
import { randomBytes, randomInt } from "node:crypto";
import { Worker } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import type { Logger } from "pino";
import { ApusError } from "../core/errors.ts";
import { createDoorbell } from "../ring/doorbell.ts";
import { createFrameRing } from "../ring/frame-ring.ts";
import type { ShmFabricShared } from "../transport/shm-transport.ts";
import { VERSION } from "../version.ts";
import { AdminServer, type Remote } from "./admin-server.ts";
import { ClientUsers } from "./client-auth.ts";
import type { ReplicaConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { nextPeerIncarnation } from "./peer-incarnation.ts";
import { formatPeerList, listedPeers } from "./peer-list.ts";
import { readPeerSecrets, secretFileWarning } from "./peer-secrets.ts";
import type {
  ConnectionControl,
  ConnectionWorkerData,
  ConsensusControl,
  ConsensusWorkerData,
  ReplicaStatus,
  StartupMessage,
  WorkerDataByName,
  WorkerName,
  WorkerRings,
} from "./thread-contracts.ts";

/** Reply rings carry chunked replies, so they need not hold the largest one. */
const REPLY_RING_BYTES = 4 * 1024 * 1024;
/** Beyond the largest request (--max-request-bytes), so a few small ones can wait behind it. */
const REQUEST_RING_SLACK_BYTES = 1024 * 1024;
/** Requests waiting for consensus get this long to finish at shutdown before they are failed. */
const SHUTDOWN_GRACE_MS = 2000;

export interface ReplicaExtras {
  /** The peer keys, instead of reading --secret-file (the thread cluster makes a random one). */
  readonly secrets?: readonly Uint8Array[];
  /** Required when config.transport is "shm": the rings shared with the other replica threads. */
  readonly shmFabric?: ShmFabricShared;
}

export interface RunningReplica {
  readonly config: ReplicaConfig;
  /**
   * Connection workers actually started (1 on a Node without reusePort); 0 when the consensus
   * worker serves the clients itself.
   */
  readonly workers: number;
  /** host:port of the admin server, or "off". */
  readonly adminAddress: string;
  /** The consensus worker's /status, without HTTP. */
  status(): Promise<ReplicaStatus>;
  /**
   * On SIGTERM a leader first hands leadership over (until it stepped down or gave up: at most
   * 2 x the election timeout; any other `signal` skips this). Then stop
   * accepting clients, give requests in flight SHUTDOWN_GRACE_MS, stop the consensus worker
   * (flushing its log), close clients and the admin server, end the threads. Idempotent.
   */
  stop(signal: string): Promise<void>;
}

/** Node >= 22.12 lets several threads listen on one port (reusePort). */
function hasReusePort(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

/** The cluster secrets (peer-secrets.ts); shm frames are not authenticated, so it needs none. */
function secretsOf(
  config: ReplicaConfig,
  extras: ReplicaExtras,
  log: Logger,
): readonly Uint8Array[] {
  if (extras.secrets !== undefined) return extras.secrets;
  if (config.transport === "shm") return [randomBytes(32)];
  const secrets = readPeerSecrets(config);
  const warning = secretFileWarning(config);
  if (warning !== null) log.warn(warning);
  if (secrets.length > 1)
    log.info(
      { secretFile: config.secretFile },
      "key roll: the secret file holds two keys; signing with the first, accepting both (when the new key is first everywhere and no replica's apus_peer_frames_second_key_total grows, remove the old one)",
    );
  return secrets;
}

/** Each thread's entry file, in its folder under ../workers (src/workers or dist/workers). */
const WORKER_ENTRIES: Readonly<Record<WorkerName, string>> = {
  "consensus-worker": "consensus/consensus-worker",
  "connection-worker": "connection/connection-worker",
};

/** A worker's entry file: .ts when run from src (tests), .js from dist. */
function workerUrl(name: WorkerName): URL {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`../workers/${WORKER_ENTRIES[name]}${extension}`, import.meta.url);
}

/** Workers being stopped on purpose: their exit is expected. */
const stoppingWorkers = new WeakSet<Worker>();

/** Start a worker and wait for its "ready" message; a failure at start rejects with its reason. */
function startWorker<Name extends WorkerName>(
  name: Name,
  data: WorkerDataByName[Name],
  log: Logger,
): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl(name), { workerData: data, name });
    const onError = (error: Error) => reject(error);
    const onExit = (code: number) =>
      reject(new Error(`${name} exited with code ${code} while starting`));
    worker.once("error", onError);
    worker.once("exit", onExit);
    const onMessage = (message: StartupMessage | { readonly ready?: undefined }) => {
      if (message.ready === undefined) return; // a comlink message, not the start-up one
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
      if (message.ready) {
        worker.on("error", (error) => {
          log.fatal({ err: error, worker: name }, "a worker thread failed; stopping the replica");
          process.exit(1);
        });
        // A thread that ends on its own (e.g. the consensus worker after a WAL I/O error) must not
        // leave a process that accepts clients nobody answers: a supervisor should restart it.
        worker.on("exit", (code) => {
          if (stoppingWorkers.has(worker)) return;
          log.fatal({ worker: name, code }, "a worker thread exited; stopping the replica");
          process.exit(1);
        });
        resolve(worker);
      } else {
        reject(Object.assign(new Error(message.error), { code: message.code }));
      }
    };
    worker.on("message", onMessage);
  });
}

/** The error of a failed start, as one line that says what to do. */
export function describeStartError(error: unknown, config: ReplicaConfig): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return `cannot listen for clients on ${config.clientHost}:${config.clientPort}: the address is in use (another replica or a redis-server?); choose another --client-port`;
  if (code === "EADDRNOTAVAIL")
    return `cannot listen for clients on ${config.clientHost}:${config.clientPort}: no such local address; check --client-host`;
  return (error as Error).message;
}

function connectionWorkerCount(config: ReplicaConfig, log: Logger): number {
  if (hasReusePort() || config.workers <= 1) return config.workers;
  log.warn(
    { node: process.versions.node },
    `Node ${process.versions.node} cannot share a port between threads (reusePort needs >= 22.12): running 1 connection worker instead of ${config.workers}`,
  );
  return 1;
}

function createRings(requestBytesMax: number, workers: number, consensusBell: SharedArrayBuffer) {
  const rings: WorkerRings[] = [];
  // Every request ring rings the consensus worker's one doorbell; each reply ring its worker's.
  for (let i = 0; i < workers; i++) {
    const workerBell = createDoorbell();
    rings.push({
      requests: createFrameRing(requestBytesMax + REQUEST_RING_SLACK_BYTES, consensusBell),
      replies: createFrameRing(REPLY_RING_BYTES, workerBell),
      workerBell,
    });
  }
  return rings;
}

/**
 * --workers 0: the rings of the client server on the consensus thread. Their own doorbells stay
 * unused: that thread rings same-thread bells (src/ring/bell.ts LocalBell).
 */
function createInThreadRings(requestBytesMax: number): ConsensusWorkerData["inThreadRings"] {
  return {
    requests: createFrameRing(requestBytesMax + REQUEST_RING_SLACK_BYTES),
    replies: createFrameRing(REPLY_RING_BYTES),
  };
}

/** --workers 0: the consensus worker answers the connection-worker calls for its in-thread server. */
function inThreadControl(consensus: Remote<ConsensusControl>): Remote<ConnectionControl> {
  return {
    metricsJson: () => consensus.clientMetricsJson(),
    stopAccepting: () => consensus.stopAcceptingClients(),
    shutdown: () => consensus.shutdownClients(),
  };
}

/** Says at start who may use the admin port: a warning wherever it has no authentication. */
function logAdminAuth(
  config: ReplicaConfig,
  hasUsers: boolean,
  adminAddress: string,
  log: Logger,
): void {
  if (!hasUsers)
    log.warn(
      `the admin port ${adminAddress} has no authentication (no --requirepass-file or --users-file): whoever reaches it can read the cluster's state and move leadership; keep --admin-host on 127.0.0.1 or a private network`,
    );
  else if (config.adminAuth === "none")
    log.warn(
      `--admin-auth none: the admin port ${adminAddress} has no authentication although client users are configured; whoever reaches it can move leadership`,
    );
  else
    log.info(
      `the admin port ${adminAddress} needs HTTP Basic authentication of a user with role admin for changes${config.adminAuth === "all" ? ", and of any user for reads" : "; reads are open (--admin-auth all closes them)"}`,
    );
}

/** Start one replica's threads and admin server; resolves once clients can connect. */
export async function startReplica(
  config: ReplicaConfig,
  extras: ReplicaExtras = {},
): Promise<RunningReplica> {
  const log = createLogger(config, "main");
  if (config.transport === "shm" && extras.shmFabric === undefined)
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      "--transport shm needs replicas that are threads of one process: use node dist/thread-cluster.js --transport shm",
    );
  const workers = connectionWorkerCount(config, log);
  const reusePort = hasReusePort();
  if (config.durability === "memory")
    log.warn(
      "--durability memory: the log is kept in memory only; the cluster survives the loss of a minority of replicas, not of all of them at once",
    );
  const secrets = secretsOf(config, extras, log);
  // The admin server checks the client port's users itself (read here once, before any thread).
  const adminUsers = config.adminPort === 0 ? null : ClientUsers.load(config);

  const consensusBell = createDoorbell();
  const rings = createRings(config.requestBytesMax, workers, consensusBell);
  const consensusData: ConsensusWorkerData = {
    config,
    incarnation: randomInt(1, 2 ** 32 - 1),
    peerIncarnation: nextPeerIncarnation(config),
    secrets,
    rings,
    consensusBell,
    inThreadRings: workers === 0 ? createInThreadRings(config.requestBytesMax) : null,
    shmFabric: extras.shmFabric ?? null,
  };
  const consensusWorker = await startWorker("consensus-worker", consensusData, log);
  const consensus = Comlink.wrap<ConsensusControl>(
    nodeEndpoint(consensusWorker),
  ) as unknown as Remote<ConsensusControl>;

  const connectionWorkers: Worker[] = [];
  const connections: Remote<ConnectionControl>[] =
    workers === 0 ? [inThreadControl(consensus)] : [];
  // A connection worker that cannot start (port in use) must not leave the consensus worker
  // holding the data dir's lock and the peer port.
  const abandon = async (error: unknown): Promise<never> => {
    for (const w of [consensusWorker, ...connectionWorkers]) stoppingWorkers.add(w);
    await Promise.all([consensusWorker, ...connectionWorkers].map((w) => w.terminate()));
    throw error;
  };
  for (let i = 0; i < workers; i++) {
    const data: ConnectionWorkerData = {
      config,
      workerIndex: i,
      rings: rings[i]!,
      consensusBell,
      clientsMax: Math.ceil(config.clientsMax / workers),
      reusePort: reusePort && workers > 1,
    };
    const worker = await startWorker("connection-worker", data, log).catch(abandon);
    connectionWorkers.push(worker);
    connections.push(
      Comlink.wrap<ConnectionControl>(nodeEndpoint(worker)) as unknown as Remote<ConnectionControl>,
    );
  }

  let admin: AdminServer | null = null;
  let adminAddress = "off";
  if (config.adminPort !== 0) {
    admin = new AdminServer({
      host: config.adminHost,
      port: config.adminPort,
      consensus,
      connections,
      logger: log,
      users: adminUsers,
      auth: config.adminAuth,
    });
    adminAddress = await admin.listen().catch(abandon);
    logAdminAuth(config, adminUsers !== null, adminAddress, log);
  }
  log.info(
    {
      clients: `${config.clientHost}:${config.clientPort}`,
      admin: adminAddress,
      peers: formatPeerList(listedPeers(config.peers)),
      workers,
      durability: config.durability,
      transport: config.transport,
      dataDir: config.durability === "fsync" ? config.dataDir : null,
      version: VERSION,
    },
    `replica ${config.id} serving Redis clients on ${config.clientHost}:${config.clientPort}`,
  );

  let stopping: Promise<void> | null = null;
  const stopAll = async (signal: string) => {
    // A leader stopping on SIGTERM hands over first, so clients see no election timeout. The wait
    // ends as soon as this replica stopped leading (whoever leads next need not be known yet) or
    // the core gave up (one election timeout, capped at 2 x), and without a taker it stops all
    // the same. Only SIGTERM: SIGINT, and the launchers stopping a whole cluster, skip it.
    if (
      // Whatever --peers lists: the configuration may have grown since (no taker: it stops at once).
      signal === "SIGTERM" &&
      (await consensus.status()).role === "leader"
    ) {
      log.info({ signal }, "stopping: this replica leads; handing leadership over first");
      await consensus.transferLeadership(null, 2 * config.electionTimeoutMs);
    }
    log.info({ signal }, "stopping: no new clients; waiting for requests in flight");
    await Promise.all(connections.map((c) => c.stopAccepting()));
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    while (Date.now() < deadline && (await consensus.pendingRequests()) > 0)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await consensus.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the last replies reach clients
    await Promise.all(connections.map((c) => c.shutdown()));
    await admin?.close();
    for (const w of [consensusWorker, ...connectionWorkers]) stoppingWorkers.add(w);
    await Promise.all([consensusWorker, ...connectionWorkers].map((w) => w.terminate()));
    log.info("stopped");
    log.flush?.();
  };
  return {
    config,
    workers,
    adminAddress,
    status: () => consensus.status(),
    stop: (signal) => {
      stopping ??= stopAll(signal);
      return stopping;
    },
  };
}
