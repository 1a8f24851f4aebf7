import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  createDoorbell,
  createFrameRing,
  DoorbellWaiter,
  FrameRingReader,
  FrameRingWriter,
} from "../../src/ring/index.ts";
import type { ConsumerData } from "./ring-consumer.worker.ts";
import {
  ACK_RECEIVED,
  type ProducerData,
  type ProducerDone,
  RECORD_HEADER_BYTES,
} from "./ring-producer.worker.ts";

const WORKER_URL = new URL("./ring-producer.worker.ts", import.meta.url);

function startProducer(data: ProducerData): { done: Promise<ProducerDone>; worker: Worker } {
  const worker = new Worker(WORKER_URL, { workerData: data });
  // once() rejects on the worker's "error" event.
  const done = once(worker, "message").then(([message]) => message as ProducerDone);
  return { done, worker };
}

/** Checks order, checksum and count of the records of each producer. */
class Checker {
  readonly nextSeq: number[];
  errors: string[] = [];
  constructor(producerCount: number) {
    this.nextSeq = new Array(producerCount).fill(0);
  }
  check = (record: Uint8Array): void => {
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    const producerId = view.getUint32(0, true);
    const seq = view.getUint32(4, true);
    const want = this.nextSeq[producerId];
    if (want !== seq) this.errors.push(`producer ${producerId}: got seq ${seq}, want ${want}`);
    if (crc32(record.subarray(RECORD_HEADER_BYTES)) !== view.getUint32(8, true)) {
      this.errors.push(`producer ${producerId}: bad checksum at seq ${seq}`);
    }
    this.nextSeq[producerId] = seq + 1;
  };
}

function producerData(overrides: Partial<ProducerData> & Pick<ProducerData, "shared">) {
  const base: ProducerData = {
    mode: "stream",
    shared: overrides.shared,
    producerId: 0,
    recordCount: 100_000,
    bodyBytesMax: 200,
    seed: 1,
    delayUsMax: 0,
    ack: null,
  };
  return { ...base, ...overrides };
}

describe("FrameRing between two threads", () => {
  it("delivers 100,000 records in order, unchanged, once each, through a ring that is often full", async () => {
    const shared = createFrameRing(2048);
    const reader = new FrameRingReader(shared);
    const waiter = new DoorbellWaiter(shared.bell, { spinUs: 20 });
    const checker = new Checker(1);
    const { done } = startProducer(producerData({ shared }));
    let received = 0;
    while (received < 100_000) {
      expect(await waiter.waitForWork(() => reader.hasRecords)).toBe(true);
      received += reader.drain(checker.check, 64);
    }
    const { fullCount } = await done;
    expect(checker.errors.slice(0, 5)).toEqual([]);
    expect(received).toBe(100_000);
    expect(reader.usedBytes).toBe(0);
    expect(fullCount).toBeGreaterThan(100);
  });

  it("never loses a wake-up: a parked consumer is woken by every write (2,000 times)", async () => {
    const recordCount = 2_000;
    const shared = createFrameRing(256);
    const reader = new FrameRingReader(shared);
    const waiter = new DoorbellWaiter(shared.bell, { spinUs: 0 });
    const ack = new Int32Array(new SharedArrayBuffer(4));
    const checker = new Checker(1);
    const { done } = startProducer(
      producerData({
        shared,
        mode: "paced",
        recordCount,
        bodyBytesMax: 16,
        delayUsMax: 60,
        ack: ack.buffer as SharedArrayBuffer,
      }),
    );
    let received = 0;
    const watchdog = setTimeout(() => {
      checker.errors.push(`stuck at ${received}: lost wake-up`);
      waiter.close();
    }, 60_000);
    while (received < recordCount && (await waiter.waitForWork(() => reader.hasRecords))) {
      received += reader.drain(checker.check);
      // The producer waits for this before its next record: the consumer parks in between.
      Atomics.store(ack, ACK_RECEIVED, received);
      Atomics.notify(ack, ACK_RECEIVED);
    }
    clearTimeout(watchdog);
    await done;
    expect(checker.errors).toEqual([]);
    expect(received).toBe(recordCount);
    expect(waiter.parkCount).toBeGreaterThan(recordCount / 2);
  });

  it("a parked consumer thread with nothing else to do stays alive and is woken by a write", async () => {
    const shared = createFrameRing(64);
    const worker = new Worker(new URL("./ring-consumer.worker.ts", import.meta.url), {
      workerData: { shared } satisfies ConsumerData,
    });
    const reply = once(worker, "message");
    const exited = once(worker, "exit");
    await new Promise((resolve) => setTimeout(resolve, 300)); // it parks long before this
    const writer = new FrameRingWriter(shared);
    expect(writer.tryWrite(Uint8Array.of(1, 2), Uint8Array.of(3))).toBe(true);
    writer.notify();
    const [message] = await reply;
    expect(message).toEqual({ records: [[1, 2, 3]], parkCount: 1 });
    await exited;
  });

  it("several producers, one ring each, share the consumer's one doorbell", async () => {
    const producerCount = 3;
    const recordCount = 20_000;
    const bell = createDoorbell();
    const waiter = new DoorbellWaiter(bell, { spinUs: 20 });
    const readers: FrameRingReader[] = [];
    const dones: Promise<ProducerDone>[] = [];
    for (let producerId = 0; producerId < producerCount; producerId++) {
      const shared = createFrameRing(1024, bell);
      readers.push(new FrameRingReader(shared));
      const data = producerData({ shared, producerId, recordCount, seed: 100 + producerId });
      dones.push(startProducer(data).done);
    }
    const checker = new Checker(producerCount);
    const hasWork = () => readers.some((reader) => reader.hasRecords);
    let received = 0;
    while (received < producerCount * recordCount) {
      expect(await waiter.waitForWork(hasWork)).toBe(true);
      for (const reader of readers) received += reader.drain(checker.check, 32);
    }
    await Promise.all(dones);
    expect(checker.errors.slice(0, 5)).toEqual([]);
    expect(checker.nextSeq).toEqual(new Array(producerCount).fill(recordCount));
  });
});
