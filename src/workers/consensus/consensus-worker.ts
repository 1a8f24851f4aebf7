/** Thread entry of the consensus worker: wires objects from this folder and src/, nothing else. */
import { parentPort, workerData } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { createLogger } from "../../runtime/logger.ts";
import { openStorage } from "../../runtime/open-storage.ts";
import {
  type ConsensusControl,
  type StartupMessage,
  workerDataOf,
} from "../../runtime/thread-contracts.ts";
import { createTransport, MESSAGE_BYTES_MAX_LIMIT, ShmTransport } from "../../transport/index.ts";
import { ConsensusMetrics } from "./consensus-metrics.ts";
import { ConsensusNode } from "./consensus-node.ts";
import { setUpApp } from "./replicated-app-setup.ts";

const data = workerDataOf("consensus-worker", workerData);
const { config } = data;
const log = createLogger(config, "consensus");
const metrics = new ConsensusMetrics();
const storage = await openStorage(config, log);
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
        secret: data.secret,
        messageBytesMax,
        onDrop,
      });
// The embedded store, or (--app) this replica's own copy of the program, started before any log
// entry is applied to it.
const app = await setUpApp(config, log);
const node = new ConsensusNode({
  config,
  incarnation: data.incarnation,
  rings: data.rings,
  consensusBell: data.consensusBell,
  storage,
  transport,
  metrics,
  logger: log,
  ringSpinUs: config.ringSpinUs,
  createApp: (hooks) => app.create(hooks),
});
await node.start();

const control: ConsensusControl = {
  status: () => node.status(),
  metricsJson: () => node.metricsJson(),
  latency: (reset) => node.latency(reset),
  pendingRequests: () => node.pendingRequests,
  shutdown: async () => {
    await node.shutdown();
    await app.stop();
  },
};
Comlink.expose(control, nodeEndpoint(parentPort!));
parentPort!.postMessage({ ready: true } satisfies StartupMessage);
