#!/usr/bin/env node
/**
 * One replica: the main thread. It reads the settings, starts the consensus worker and the
 * connection workers (sharing rings of SharedArrayBuffer), serves the admin HTTP port, and stops
 * everything in order on SIGTERM/SIGINT. No data-path work happens here.
 */
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import type { Logger } from "pino";
import { ApusError } from "./core/errors.ts";
import { createDoorbell } from "./ring/doorbell.ts";
import { createFrameRing } from "./ring/frame-ring.ts";
import { AdminServer, type Remote } from "./runtime/admin-server.ts";
import { helpText, parseReplicaArgs, type ReplicaConfig } from "./runtime/config.ts";
import { createLogger } from "./runtime/logger.ts";
import { nodeVersionProblem } from "./runtime/node-version.ts";
import type {
  ConnectionControl,
  ConnectionWorkerData,
  ConsensusControl,
  ConsensusWorkerData,
  WorkerRings,
} from "./runtime/thread-contracts.ts";
import { VERSION } from "./version.ts";

/** Reply rings carry chunked replies, so they need not hold the largest one. */
const REPLY_RING_BYTES = 4 * 1024 * 1024;
/** Requests waiting for consensus get this long to finish at shutdown before they are failed. */
const SHUTDOWN_GRACE_MS = 2000;
/** Used without --secret-file: anyone who can send to the peer port can forge packets. */
const DEVELOPMENT_SECRET = "apus-smr development key: pass --secret-file in production";
const SECRET_BYTES_MIN = 16;

/** Node >= 22.12 lets several threads listen on one port (reusePort). */
function hasReusePort(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

function readSecret(config: ReplicaConfig, log: Logger): Uint8Array {
  if (config.secretFile === null) {
    if (config.peers.length > 1)
      log.warn(
        "no --secret-file: peers authenticate with a built-in development key, so anyone who can reach the peer port can forge packets",
      );
    return Buffer.from(DEVELOPMENT_SECRET);
  }
  let secret: Buffer;
  try {
    secret = readFileSync(config.secretFile);
  } catch (error) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--secret-file: cannot read ${config.secretFile}: ${(error as Error).message}`,
    );
  }
  const trimmed = Buffer.from(secret.toString("latin1").trim(), "latin1");
  if (trimmed.byteLength < SECRET_BYTES_MIN)
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--secret-file: ${config.secretFile} holds ${trimmed.byteLength} bytes; use at least ${SECRET_BYTES_MIN} (e.g. openssl rand -hex 32 > ${config.secretFile})`,
    );
  return trimmed;
}

/** Worker entry files sit beside this file: .ts when run from src (tests), .js from dist. */
function workerUrl(name: string): URL {
  const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./workers/${name}${extension}`, import.meta.url);
}

/** Start a worker and wait for its "ready" message; a failure at start rejects with its reason. */
function startWorker(name: string, data: unknown, log: Logger): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl(name), { workerData: data, name });
    const onError = (error: Error) => reject(error);
    const onExit = (code: number) =>
      reject(new Error(`${name} exited with code ${code} while starting`));
    worker.once("error", onError);
    worker.once("exit", onExit);
    const onMessage = (message: { ready?: boolean; error?: string; code?: string }) => {
      if (message.ready === undefined) return;
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
      if (message.ready) {
        worker.on("error", (error) => {
          log.fatal({ err: error, worker: name }, "a worker thread failed; stopping the replica");
          process.exit(1);
        });
        resolve(worker);
      } else {
        reject(Object.assign(new Error(message.error ?? "failed"), { code: message.code }));
      }
    };
    worker.on("message", onMessage);
  });
}

function describeStartError(error: unknown, config: ReplicaConfig): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return `cannot listen for clients on ${config.clientHost}:${config.clientPort}: the address is in use (another replica or a redis-server?); choose another --client-port`;
  if (code === "EADDRNOTAVAIL")
    return `cannot listen for clients on ${config.clientHost}:${config.clientPort}: no such local address; check --client-host`;
  return (error as Error).message;
}

async function run(config: ReplicaConfig): Promise<void> {
  const log = createLogger(config, "main");
  let workers = config.workers;
  const reusePort = hasReusePort();
  if (!reusePort && workers > 1) {
    log.warn(
      { node: process.versions.node },
      `Node ${process.versions.node} cannot share a port between threads (reusePort needs >= 22.12): running 1 connection worker instead of ${workers}`,
    );
    workers = 1;
  }
  if (config.durability === "memory")
    log.warn(
      "--durability memory: the log is kept in memory only; the cluster survives the loss of a minority of replicas, not of all of them at once",
    );
  const secret = readSecret(config, log);

  const rings: WorkerRings[] = [];
  // Every request ring rings the consensus worker's one doorbell; each reply ring its worker's.
  const consensusBell = createDoorbell();
  for (let i = 0; i < workers; i++) {
    const workerBell = createDoorbell();
    rings.push({
      requests: createFrameRing(config.maxRequestBytes + 1024 * 1024, consensusBell),
      replies: createFrameRing(REPLY_RING_BYTES, workerBell),
      workerBell,
    });
  }
  const consensusData: ConsensusWorkerData = {
    config,
    incarnation: randomInt(1, 2 ** 32 - 1),
    secret,
    rings,
    consensusBell,
  };
  const consensusWorker = await startWorker("consensus-worker", consensusData, log);
  const consensus = Comlink.wrap<ConsensusControl>(
    nodeEndpoint(consensusWorker),
  ) as unknown as Remote<ConsensusControl>;

  const connectionWorkers: Worker[] = [];
  const connections: Remote<ConnectionControl>[] = [];
  for (let i = 0; i < workers; i++) {
    const data: ConnectionWorkerData = {
      config,
      workerIndex: i,
      rings: rings[i]!,
      consensusBell,
      clientsMax: Math.ceil(config.maxClients / workers),
      reusePort: reusePort && workers > 1,
    };
    const worker = await startWorker("connection-worker", data, log);
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
    });
    adminAddress = await admin.listen();
  }
  log.info(
    {
      clients: `${config.clientHost}:${config.clientPort}`,
      admin: adminAddress,
      peers: config.peers.map((p) => `${p.host}:${p.port}`).join(","),
      workers,
      durability: config.durability,
      transport: config.transport,
      dataDir: config.durability === "fsync" ? config.dataDir : null,
      version: VERSION,
    },
    `replica ${config.id} of ${config.peers.length} serving Redis clients on ${config.clientHost}:${config.clientPort}`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: no new clients; waiting for requests in flight");
    await Promise.all(connections.map((c) => c.stopAccepting()));
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    while (Date.now() < deadline && (await consensus.pendingRequests()) > 0)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await consensus.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the last replies reach clients
    await Promise.all(connections.map((c) => c.shutdown()));
    await admin?.close();
    await Promise.all([consensusWorker, ...connectionWorkers].map((w) => w.terminate()));
    log.info("stopped");
    log.flush?.();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

function main(argv: string[]): void {
  const tooOld = nodeVersionProblem();
  if (tooOld !== null) {
    process.stderr.write(`${tooOld}\n`);
    process.exitCode = 2;
    return;
  }
  let parsed: ReturnType<typeof parseReplicaArgs>;
  try {
    parsed = parseReplicaArgs(argv);
  } catch (error) {
    process.stderr.write(
      `apus-smr: ${(error as Error).message}\nRun with --help to see the options.\n`,
    );
    process.exitCode = 2;
    return;
  }
  if (parsed.action === "version") {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (parsed.action === "help") {
    process.stdout.write(helpText(VERSION));
    return;
  }
  const { config } = parsed;
  run(config).catch((error: unknown) => {
    process.stderr.write(
      `apus-smr: replica ${config.id} cannot start: ${describeStartError(error, config)}\n`,
    );
    process.exit(1);
  });
}

main(process.argv.slice(2));
