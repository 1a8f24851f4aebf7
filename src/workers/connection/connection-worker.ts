/** Thread entry of a connection worker: wires objects from this folder and src/, nothing else. */
import { parentPort, workerData } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { createLogger } from "../../runtime/logger.ts";
import {
  type ConnectionControl,
  type StartupMessage,
  workerDataOf,
} from "../../runtime/thread-contracts.ts";
import { ClientServer } from "./client-server.ts";

const data = workerDataOf("connection-worker", workerData);
const log = createLogger(data.config, `conn-${data.workerIndex}`);
const server = new ClientServer({
  config: data.config,
  workerIndex: data.workerIndex,
  rings: data.rings,
  consensusBell: data.consensusBell,
  clientsMax: data.clientsMax,
  reusePort: data.reusePort,
  logger: log,
});
const control: ConnectionControl = {
  metricsJson: () => server.metricsJson(),
  stopAccepting: () => server.stopAccepting(),
  shutdown: () => server.shutdown(),
};
Comlink.expose(control, nodeEndpoint(parentPort!));
try {
  await server.listen();
  parentPort!.postMessage({ ready: true } satisfies StartupMessage);
} catch (error) {
  parentPort!.postMessage({
    ready: false,
    error: (error as Error).message,
    code: (error as NodeJS.ErrnoException).code,
  } satisfies StartupMessage);
}
