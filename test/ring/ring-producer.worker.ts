/**
 * Test producer thread: writes numbered, checksummed records into one FrameRing.
 * Record: header [u32 producerId, u32 seq, u32 crc32(body)] (little-endian) + body of PRNG bytes.
 */
import { parentPort, workerData } from "node:worker_threads";
import { crc32 } from "node:zlib";
import { SeededPrng } from "../../src/core/prng.ts";
import { type FrameRingShared, FrameRingWriter } from "../../src/ring/index.ts";

export const RECORD_HEADER_BYTES = 12;
/** Int32 index in the paced mode's ack buffer: records the consumer has received (consumer writes). */
export const ACK_RECEIVED = 0;

export interface ProducerData {
  /** stream: write as fast as the ring allows. paced: one record, then wait for the ack. */
  readonly mode: "stream" | "paced";
  readonly shared: FrameRingShared;
  readonly producerId: number;
  readonly recordCount: number;
  readonly bodyBytesMax: number;
  readonly seed: number;
  /** paced: busy-wait up to this long before each write, to land at any point of the park. */
  readonly delayUsMax: number;
  /** paced: Int32Array(1) over it, see ACK_RECEIVED. */
  readonly ack: SharedArrayBuffer | null;
}

export interface ProducerDone {
  /** tryWrite calls refused because the ring was full. */
  readonly fullCount: number;
}

function run(data: ProducerData): ProducerDone {
  const writer = new FrameRingWriter(data.shared);
  const prng = new SeededPrng(data.seed);
  const header = new Uint8Array(RECORD_HEADER_BYTES);
  const headerView = new DataView(header.buffer);
  const body = new Uint8Array(data.bodyBytesMax);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const ack = data.ack === null ? null : new Int32Array(data.ack);
  let fullCount = 0;
  for (let seq = 0; seq < data.recordCount; seq++) {
    const bodyBytes = prng.nextInt(data.bodyBytesMax + 1);
    for (let i = 0; i < bodyBytes; i++) body[i] = (seq * 31 + i * 7) & 0xff;
    const bodyView = body.subarray(0, bodyBytes);
    headerView.setUint32(0, data.producerId, true);
    headerView.setUint32(4, seq, true);
    headerView.setUint32(8, crc32(bodyView), true);
    if (ack !== null) busyWait(prng.nextInt(data.delayUsMax + 1));
    for (let attempt = 0; !writer.tryWrite(header, bodyView); attempt++) {
      fullCount++;
      writer.notify(); // the consumer may be parked on what is already in the ring
      if (attempt > 100) Atomics.wait(nap, 0, 0, 0.05); // give the core back (2-core VM)
    }
    if (ack !== null) {
      writer.notify();
      let received = Atomics.load(ack, ACK_RECEIVED);
      while (received <= seq) {
        Atomics.wait(ack, ACK_RECEIVED, received, 1000);
        received = Atomics.load(ack, ACK_RECEIVED);
      }
    } else if (prng.nextInt(8) === 0) {
      writer.notify(); // bursts of random length
    }
  }
  writer.notify();
  return { fullCount };
}

function busyWait(micros: number): void {
  const deadline = performance.now() + micros / 1000;
  while (performance.now() < deadline) {
    // spin
  }
}

parentPort?.postMessage(run(workerData as ProducerData));
