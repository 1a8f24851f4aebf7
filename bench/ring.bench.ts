/**
 * FrameRing between two threads: ping-pong latency through two rings (one each way) for several
 * spin settings, and one-way throughput. Timed with process.hrtime.bigint in the threads (tinybench
 * cannot time a cross-thread round trip). Each configuration runs `--runs` times (default 3); the
 * table shows medians.
 *
 *   node bench/ring.bench.ts [--runs 3] [--round-trips 20000]
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import {
  createDoorbell,
  createFrameRing,
  DoorbellWaiter,
  FrameRingReader,
  type FrameRingShared,
  FrameRingWriter,
} from "../src/ring/index.ts";

const PING_RING_BYTES = 64 * 1024;
const STREAM_RING_BYTES = 256 * 1024;
const WARMUP_ROUND_TRIPS = 2_000;
/** Int32 index in the stream start buffer: 1 once the consumer's clock runs (main writes). */
const START_FLAG = 0;

type Job =
  | {
      readonly kind: "echo";
      readonly inbound: FrameRingShared;
      readonly outbound: FrameRingShared;
      readonly spinUs: number;
    }
  | {
      readonly kind: "stream";
      readonly outbound: FrameRingShared;
      readonly recordBytes: number;
      readonly recordCount: number;
      readonly start: SharedArrayBuffer;
    };

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

// ---- worker side ------------------------------------------------------------------------------

async function echo(job: Extract<Job, { kind: "echo" }>): Promise<void> {
  const reader = new FrameRingReader(job.inbound);
  const writer = new FrameRingWriter(job.outbound);
  const waiter = new DoorbellWaiter(job.inbound.bell, { spinUs: job.spinUs });
  const reply = (record: Uint8Array) => {
    while (!writer.tryWrite(record)) writer.notify();
  };
  while (await waiter.waitForWork(() => reader.hasRecords)) {
    reader.drain(reply);
    writer.notify();
  }
}

function stream(job: Extract<Job, { kind: "stream" }>): void {
  const writer = new FrameRingWriter(job.outbound);
  const record = new Uint8Array(job.recordBytes).fill(0x5a);
  const start = new Int32Array(job.start);
  Atomics.wait(start, START_FLAG, 0);
  for (let i = 0; i < job.recordCount; i++) {
    while (!writer.tryWrite(record)) writer.notify();
    if ((i & 63) === 0) writer.notify();
  }
  writer.notify();
}

// ---- main side --------------------------------------------------------------------------------

interface Latency {
  readonly p50Us: number;
  readonly p99Us: number;
}

async function pingPong(recordBytes: number, spinUs: number, roundTrips: number): Promise<Latency> {
  const mainBell = createDoorbell();
  const toWorker = createFrameRing(PING_RING_BYTES, createDoorbell());
  const toMain = createFrameRing(PING_RING_BYTES, mainBell);
  const job: Job = { kind: "echo", inbound: toWorker, outbound: toMain, spinUs };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  const writer = new FrameRingWriter(toWorker);
  const reader = new FrameRingReader(toMain);
  const waiter = new DoorbellWaiter(mainBell, { spinUs });
  const record = new Uint8Array(recordBytes).fill(1);
  const hasReply = () => reader.hasRecords;
  const ignore = () => {};
  const samples = new Float64Array(roundTrips);
  for (let i = -WARMUP_ROUND_TRIPS; i < roundTrips; i++) {
    const t0 = process.hrtime.bigint();
    writer.tryWrite(record);
    writer.notify();
    await waiter.waitForWork(hasReply);
    reader.drain(ignore);
    if (i >= 0) samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  waiter.close();
  await worker.terminate();
  samples.sort();
  return { p50Us: percentile(samples, 0.5), p99Us: percentile(samples, 0.99) };
}

interface Throughput {
  readonly recordsPerSecond: number;
  readonly megabytesPerSecond: number;
}

async function oneWay(recordBytes: number, recordCount: number): Promise<Throughput> {
  const shared = createFrameRing(STREAM_RING_BYTES);
  const start = new SharedArrayBuffer(4);
  const job: Job = { kind: "stream", outbound: shared, recordBytes, recordCount, start };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  await new Promise((resolve) => worker.once("online", resolve));
  const reader = new FrameRingReader(shared);
  const waiter = new DoorbellWaiter(shared.bell, { spinUs: 50 });
  let received = 0;
  const count = () => {
    received++;
  };
  const t0 = process.hrtime.bigint();
  Atomics.store(new Int32Array(start), START_FLAG, 1);
  Atomics.notify(new Int32Array(start), START_FLAG);
  while (received < recordCount) {
    await waiter.waitForWork(() => reader.hasRecords);
    reader.drain(count);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  waiter.close();
  await worker.terminate();
  return {
    recordsPerSecond: recordCount / seconds,
    megabytesPerSecond: (recordCount * recordBytes) / seconds / 1e6,
  };
}

function format(value: number, digits = 1): string {
  return value.toFixed(digits).padStart(10);
}

async function main(): Promise<void> {
  const runs = option("--runs", 3);
  const roundTrips = option("--round-trips", 20_000);
  console.log(`FrameRing, node ${process.version}, medians of ${runs} runs`);
  console.log(`\nping-pong, two threads, two rings, ${roundTrips} round trips (µs)`);
  console.log(
    `${"record".padEnd(8)}${"spin µs".padStart(10)}${"p50".padStart(10)}${"p99".padStart(10)}`,
  );
  for (const recordBytes of [64, 4096]) {
    for (const spinUs of [0, 20, 50]) {
      const results: Latency[] = [];
      for (let run = 0; run < runs; run++)
        results.push(await pingPong(recordBytes, spinUs, roundTrips));
      const p50 = median(results.map((r) => r.p50Us));
      const p99 = median(results.map((r) => r.p99Us));
      console.log(
        `${`${recordBytes} B`.padEnd(8)}${String(spinUs).padStart(10)}${format(p50, 2)}${format(p99, 2)}`,
      );
    }
  }
  console.log("\none-way throughput, 256 KiB ring, consumer spin 50 µs");
  console.log(`${"record".padEnd(8)}${"records/s".padStart(14)}${"MB/s".padStart(10)}`);
  for (const [recordBytes, recordCount] of [
    [64, 2_000_000],
    [4096, 200_000],
  ] as const) {
    const results: Throughput[] = [];
    for (let run = 0; run < runs; run++) results.push(await oneWay(recordBytes, recordCount));
    const perSecond = median(results.map((r) => r.recordsPerSecond));
    const megabytes = median(results.map((r) => r.megabytesPerSecond));
    console.log(
      `${`${recordBytes} B`.padEnd(8)}${perSecond.toFixed(0).padStart(14)}${format(megabytes, 0)}`,
    );
  }
}

if (isMainThread) {
  await main();
} else {
  const job = workerData as Job;
  if (job.kind === "echo") await echo(job);
  else stream(job);
  parentPort?.close();
}
