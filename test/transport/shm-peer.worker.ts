/**
 * Test replica thread for shm-transport.test.ts: one ShmTransport on a shared fabric. It sends
 * `messageCount` numbered, checksummed messages of varied sizes (some fragmented) to every other
 * replica, checks what it receives (order per sender, contents), posts a report once it has
 * everything, and on "close" closes the transport and lets the thread end by itself.
 */
import { parentPort, workerData } from "node:worker_threads";
import { crc32 } from "node:zlib";
import { ShmTransport } from "../../src/transport/shm-transport.ts";
import {
  MESSAGE_HEADER_BYTES,
  makeMessage,
  type PeerData,
  type PeerReport,
} from "./shm-messages.ts";

const BURST_MESSAGES = 50;

const { id, fabric, messageCount, sizes } = workerData as PeerData;
const transport = new ShmTransport({ id, fabric, messageBytesMax: 1 << 20, spinUs: 20 });
const received = new Array<number>(fabric.replicaCount).fill(0);
const errors: string[] = [];
const others = Array.from({ length: fabric.replicaCount }, (_, i) => i + 1).filter((p) => p !== id);
let reported = false;

transport.onMessage = (from, channel, payload) => {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const seq = view.getUint32(0, true);
  const want = received[from - 1]!;
  if (seq !== want && errors.length < 10) errors.push(`from ${from}: seq ${seq}, want ${want}`);
  if (channel !== seq % 3 && errors.length < 10) errors.push(`from ${from}: channel ${channel}`);
  if (
    view.getUint32(4, true) !== crc32(payload.subarray(MESSAGE_HEADER_BYTES)) &&
    errors.length < 10
  )
    errors.push(`from ${from} seq ${seq}: bad checksum`);
  received[from - 1] = want + 1;
  maybeReport();
};

function maybeReport(): void {
  if (reported || others.some((p) => received[p - 1]! < messageCount)) return;
  reported = true;
  const stats = transport.stats();
  const dropped = Object.values(stats.dropped).reduce((a, b) => a + b, 0);
  const report: PeerReport = { id, received, errors, messagesSent: stats.messagesSent, dropped };
  parentPort!.postMessage(report);
}

parentPort!.on("message", (message: string) => {
  if (message !== "close") return;
  void transport.close().then(() => parentPort!.close());
});

await transport.start();
for (let seq = 0; seq < messageCount; seq++) {
  for (const to of others)
    transport.send(to, seq % 3, makeMessage(id, seq, sizes[seq % sizes.length]!));
  if (seq % BURST_MESSAGES === BURST_MESSAGES - 1) {
    transport.flush();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
transport.flush();
maybeReport();
