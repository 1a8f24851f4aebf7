/**
 * The floor under every consensus figure on this machine, measured in the same run: a 64 B
 * round trip between two Node processes over loopback UDP and TCP (an echo process,
 * bench/lib/echo-server.ts), and a 64 B ping-pong between two threads through a pair of
 * SharedArrayBuffer FrameRings (the hand-off a request makes inside a replica), with the
 * consumer parking at once (spin 0) and busy-polling 20 µs first (the replica's --ring-spin-us).
 * One outstanding at a time; p50/p99 in µs.
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { isMainThread, Worker, workerData } from "node:worker_threads";
import {
  createDoorbell,
  createFrameRing,
  DoorbellWaiter,
  FrameRingReader,
  type FrameRingShared,
  FrameRingWriter,
} from "../../src/ring/index.ts";

const PAYLOAD_BYTES = 64;
const RING_BYTES = 64 * 1024;
const ECHO_START_MS_MAX = 10_000;

export interface RoundTrip {
  readonly name: string;
  readonly roundTrips: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

export interface MachineLimits {
  readonly udpProcesses: RoundTrip;
  readonly tcpProcesses: RoundTrip;
  readonly ringThreadsSpin0: RoundTrip;
  readonly ringThreadsSpin20: RoundTrip;
}

function summarize(name: string, samplesUs: Float64Array): RoundTrip {
  samplesUs.sort();
  const at = (q: number) =>
    samplesUs[Math.min(samplesUs.length - 1, Math.floor(q * samplesUs.length))]!;
  return { name, roundTrips: samplesUs.length, p50Us: at(0.5), p99Us: at(0.99) };
}

/** Times `roundTrips` calls of `once` after a tenth as many warm-up calls. */
async function time(
  name: string,
  roundTrips: number,
  once: () => Promise<void>,
): Promise<RoundTrip> {
  for (let i = 0; i < Math.ceil(roundTrips / 10); i++) await once();
  const samples = new Float64Array(roundTrips);
  for (let i = 0; i < roundTrips; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return summarize(name, samples);
}

async function startEcho(): Promise<{ udpPort: number; tcpPort: number; stop: () => void }> {
  const child = spawn(process.execPath, [new URL("./echo-server.ts", import.meta.url).pathname], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("echo-server printed no ports")),
      ECHO_START_MS_MAX,
    );
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once("exit", (code) => reject(new Error(`echo-server exited with ${code}`)));
  });
  const ports = JSON.parse(first) as { udpPort: number; tcpPort: number };
  return { ...ports, stop: () => child.kill("SIGKILL") };
}

async function udpRoundTrips(port: number, roundTrips: number): Promise<RoundTrip> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  let wake: (() => void) | null = null;
  socket.on("message", () => wake?.());
  const once = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
      socket.send(payload, port, "127.0.0.1");
    });
  try {
    return await time("UDP round trip, two Node processes, loopback", roundTrips, once);
  } finally {
    socket.close();
  }
}

async function tcpRoundTrips(port: number, roundTrips: number): Promise<RoundTrip> {
  const socket = connect({ host: "127.0.0.1", port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  let received = 0;
  let wake: (() => void) | null = null;
  socket.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received >= PAYLOAD_BYTES) {
      received -= PAYLOAD_BYTES;
      wake?.();
    }
  });
  const once = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
      socket.write(payload);
    });
  try {
    return await time("TCP round trip (NODELAY), two Node processes, loopback", roundTrips, once);
  } finally {
    socket.destroy();
  }
}

interface RingEchoJob {
  readonly kind: "apus-scaling-ring-echo";
  readonly inbound: FrameRingShared;
  readonly outbound: FrameRingShared;
  readonly spinUs: number;
}

async function ringRoundTrips(spinUs: number, roundTrips: number): Promise<RoundTrip> {
  const toWorker = createFrameRing(RING_BYTES, createDoorbell());
  const toMain = createFrameRing(RING_BYTES, createDoorbell());
  const job: RingEchoJob = {
    kind: "apus-scaling-ring-echo",
    inbound: toWorker,
    outbound: toMain,
    spinUs,
  };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  const writer = new FrameRingWriter(toWorker);
  const reader = new FrameRingReader(toMain);
  const waiter = new DoorbellWaiter(toMain.bell, { spinUs });
  const record = new Uint8Array(PAYLOAD_BYTES).fill(1);
  const hasReply = () => reader.hasRecords;
  const ignore = () => {};
  const once = async () => {
    writer.tryWrite(record);
    writer.notify();
    await waiter.waitForWork(hasReply);
    reader.drain(ignore);
  };
  try {
    return await time(`ring hand-off round trip, two threads, spin ${spinUs} µs`, roundTrips, once);
  } finally {
    waiter.close();
    await worker.terminate();
  }
}

async function ringEcho(job: RingEchoJob): Promise<void> {
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

export async function measureMachineLimits(roundTrips: number): Promise<MachineLimits> {
  const echo = await startEcho();
  try {
    const udpProcesses = await udpRoundTrips(echo.udpPort, roundTrips);
    const tcpProcesses = await tcpRoundTrips(echo.tcpPort, roundTrips);
    const ringThreadsSpin0 = await ringRoundTrips(0, roundTrips);
    const ringThreadsSpin20 = await ringRoundTrips(20, roundTrips);
    return { udpProcesses, tcpProcesses, ringThreadsSpin0, ringThreadsSpin20 };
  } finally {
    echo.stop();
  }
}

if (!isMainThread && (workerData as RingEchoJob | null)?.kind === "apus-scaling-ring-echo") {
  await ringEcho(workerData as RingEchoJob);
}
