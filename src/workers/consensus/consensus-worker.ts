/** Thread entry of the consensus worker: wires objects from this folder and src/, nothing else. */
import { parentPort, workerData } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { LocalBell } from "../../ring/bell.ts";
import { DoorbellRinger, DoorbellWaiter } from "../../ring/doorbell.ts";
import { bootstrapMembers } from "../../runtime/bootstrap-members.ts";
import { createLogger } from "../../runtime/logger.ts";
import { openStorage } from "../../runtime/open-storage.ts";
import { listedPeers } from "../../runtime/peer-list.ts";
import {
  type ConsensusControl,
  type StartupMessage,
  workerDataOf,
} from "../../runtime/thread-contracts.ts";
import { createTransport, MESSAGE_BYTES_MAX_LIMIT, ShmTransport } from "../../transport/index.ts";
import { readPeerTls } from "../../transport/peer-tls.ts";
import { ClientServer } from "../client-server.ts";
import { ConsensusMetrics } from "./consensus-metrics.ts";
import { ConsensusNode } from "./consensus-node.ts";
import { setUpApp } from "./replicated-app-setup.ts";
import { SnapshotStreamLink, snapshotStreamEnabled } from "./snapshot-stream-link.ts";

const data = workerDataOf("consensus-worker", workerData);
const { config } = data;
const log = createLogger(config, "consensus");
const metrics = new ConsensusMetrics();
// Mutual TLS between peers: the PEM files are read and checked once, before anything starts, with
// errors naming the flag and the file (peer-tls.ts). config.ts made sure all three or none are set.
const peerTls =
  config.peerTlsCert === null
    ? null
    : readPeerTls(
        { cert: config.peerTlsCert, key: config.peerTlsKey!, ca: config.peerTlsCa! },
        config.peers[config.id - 1]!.host,
      );
const storage = await openStorage(config, log);
// The configuration that governs slot 1 on: --peers at the first start, kept in the data
// directory; none with --join (learned from the log). Refuses a --join onto another's state.
const recovered = storage.recovered;
const bootstrap = bootstrapMembers({
  dataDir: config.dataDir,
  durable: config.durability === "fsync",
  id: config.id,
  clusterId: config.clusterId,
  join: config.join,
  peers: listedPeers(config.peers),
  hasState:
    recovered.promised !== 0 ||
    recovered.accepted.length > 0 ||
    recovered.snapshot !== null ||
    recovered.chosenSlot > 0,
});
// Large enough for a snapshot sent to a lagging peer (see README, log compaction).
const messageBytesMax = MESSAGE_BYTES_MAX_LIMIT;
const onDrop = (reason: string) => metrics.droppedPackets.inc({ reason });
const transport =
  config.transport === "shm"
    ? new ShmTransport({
        id: config.id,
        fabric: data.shmFabric!,
        messageBytesMax,
        spinUs: config.ringSpinUs,
        onDrop,
      })
    : createTransport(config.transport, {
        id: config.id,
        peers: config.peers,
        clusterId: config.clusterId,
        secrets: data.secrets,
        incarnation: data.peerIncarnation,
        messageBytesMax,
        onDrop,
        onSecondKey: (from) => metrics.peerFramesSecondKey.inc({ peer: String(from) }),
        handshakeTimeoutMs: config.peerHandshakeTimeoutMs,
        recvBufferBytes: config.peerRecvBufferBytes,
        ...(peerTls === null ? {} : { tls: peerTls }),
      });
// Snapshots travel on a stream of their own (TCP, chunked, resumable): see --snapshot-port-offset.
const snapshotStream = snapshotStreamEnabled(config)
  ? new SnapshotStreamLink({
      config,
      secrets: data.secrets,
      incarnation: data.peerIncarnation,
      tls: peerTls,
      metrics,
      log,
    })
  : null;
// The embedded store, or (--app) this replica's own copy of the program, started before any log
// entry is applied to it.
const app = await setUpApp(config, log);

// Who writes the request rings and reads the reply rings: connection workers (doorbells, across
// threads), or with --workers 0 a client server on this thread (same-thread bells, the same rings
// and records).
const inThreadRings = data.inThreadRings;
// In-thread, requests wake the ring loop in the check phase, so one drain takes every request of
// the turn and they share a slot; replies leave at once (a microtask). Measured against microtask
// wakes for both (3 replicas, 24 connections, SET to the leader, bench/results/workers-0-*.md):
// 7,878 against 7,466 SET/s, and 6.4-6.8 requests per slot against 5.0-5.3.
const requestBell = new LocalBell({ wake: "next-turn" });
const replyBell = new LocalBell();
const node = new ConsensusNode({
  config,
  incarnation: data.incarnation,
  rings: inThreadRings === null ? data.rings : [inThreadRings],
  requestWaiter:
    inThreadRings === null
      ? new DoorbellWaiter(data.consensusBell, { spinUs: config.ringSpinUs })
      : requestBell,
  replyBells:
    inThreadRings === null ? data.rings.map((r) => new DoorbellRinger(r.workerBell)) : [replyBell],
  storage,
  transport,
  snapshotStream,
  metrics,
  logger: log,
  members: bootstrap.members,
  createApp: (hooks) => app.create(hooks),
});
await node.start();
const clients =
  inThreadRings === null
    ? null
    : new ClientServer({
        config,
        workerIndex: 0,
        rings: inThreadRings,
        requestBell,
        replyWaiter: replyBell,
        clientsMax: config.clientsMax,
        reusePort: false,
        logger: log,
      });

const control: ConsensusControl = {
  status: () => node.status(),
  metricsJson: () => node.metricsJson(),
  latency: (reset) => node.latency(reset),
  pendingRequests: () => node.pendingRequests,
  transferLeadership: (target, waitMs) => node.transferLeadership(target, waitMs),
  members: () => node.members(),
  changeMembers: (request) => node.changeMembers(request),
  shutdown: async () => {
    await node.shutdown();
    await app.stop();
  },
  clientMetricsJson: async () => (clients === null ? [] : await clients.metricsJson()),
  stopAcceptingClients: async () => clients?.stopAccepting(),
  shutdownClients: async () => clients?.shutdown(),
};
Comlink.expose(control, nodeEndpoint(parentPort!));
try {
  await clients?.listen();
  parentPort!.postMessage({ ready: true } satisfies StartupMessage);
} catch (error) {
  // The client port is taken (or not ours): say so as a connection worker would.
  parentPort!.postMessage({
    ready: false,
    error: (error as Error).message,
    code: (error as NodeJS.ErrnoException).code,
  } satisfies StartupMessage);
}
