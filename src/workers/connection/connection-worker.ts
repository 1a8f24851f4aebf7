/** Thread entry of a connection worker: wires objects from this folder and src/, nothing else. */
import { parentPort, workerData } from "node:worker_threads";
import * as Comlink from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { DoorbellRinger, DoorbellWaiter } from "../../ring/doorbell.ts";
import { createLogger } from "../../runtime/logger.ts";
import {
  type ConnectionControl,
  type StartupMessage,
  workerDataOf,
} from "../../runtime/thread-contracts.ts";
import { ClientServer } from "../client-server.ts";

const data = workerDataOf("connection-worker", workerData);
const log = createLogger(data.config, `conn-${data.workerIndex}`);
const server = new ClientServer({
  config: data.config,
  workerIndex: data.workerIndex,
  rings: data.rings,
  requestBell: new DoorbellRinger(data.consensusBell),
  // Replies come a whole consensus round after the request: spinning for them would mostly
  // burn CPU the other threads need (bench/ring.bench.ts), so this side parks at once.
  replyWaiter: new DoorbellWaiter(data.rings.workerBell, { spinUs: 0 }),
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
