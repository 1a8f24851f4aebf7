/**
 * Test consumer thread: parks on its doorbell with nothing else on its event loop, then posts
 * the first records it is woken for.
 */
import { parentPort, workerData } from "node:worker_threads";
import { DoorbellWaiter, FrameRingReader, type FrameRingShared } from "../../src/ring/index.ts";

export interface ConsumerData {
  readonly shared: FrameRingShared;
}

const { shared } = workerData as ConsumerData;
const reader = new FrameRingReader(shared);
const waiter = new DoorbellWaiter(shared.bell, { spinUs: 0 });
if (await waiter.waitForWork(() => reader.hasRecords)) {
  const records: number[][] = [];
  reader.drain((record) => records.push([...record]));
  parentPort?.postMessage({ records, parkCount: waiter.parkCount });
}
waiter.close();
