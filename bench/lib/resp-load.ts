/**
 * The closed-loop load generator: a piscina task module (run off the main thread). `drive` opens
 * K TCP connections to one replica and keeps exactly one `SET key:<n> <16..64 B>` outstanding on
 * each, speaking RESP directly over node:net, until the measure window ends. Every request is
 * timed with process.hrtime.bigint; those answered inside the window are recorded into an
 * hdr-histogram (µs) and counted (so throughput = answers in the window / window length).
 */
import { connect, type Socket } from "node:net";
import * as hdr from "hdr-histogram-js";
import type { DriveResult, DriveTask } from "./contracts.ts";

/** Highest latency the histogram tracks, µs (60 s: far above --request-timeout-ms). */
const LATENCY_US_MAX = 60_000_000;
/** A connection waits this long for its last reply after the window before it is closed. */
const DRAIN_MS_MAX = 10_000;
const CONNECT_MS_MAX = 10_000;
/** Largest reply line kept while looking for \r\n (replies here are +OK or one error line). */
const REPLY_BYTES_MAX = 64 * 1024;
const CR = 13;
const LF = 10;
const PLUS = 43;

export function createLatencyHistogram(): hdr.Histogram {
  return hdr.build({
    useWebAssembly: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: LATENCY_US_MAX,
    numberOfSignificantValueDigits: 3,
  });
}

/** mulberry32: a seeded PRNG, so a run's keys and value sizes repeat. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `SET key value` as a RESP array of bulk strings (ASCII only, so length = byte length). */
export function encodeSet(key: string, value: string): string {
  return `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
}

interface Shared {
  readonly task: DriveTask;
  readonly histogram: hdr.Histogram;
  /** Filled in by the connections; see DriveResult. */
  requestCount: number;
  errorCount: number;
  totalRequestCount: number;
}

/** One client connection: one request in flight at a time; `done` resolves after its last reply. */
class ClosedLoopConnection {
  private readonly random: () => number;
  private readonly keyBase: number;
  /** hrtime of the request in flight; 0n when none. Invariant: at most one request outstanding. */
  private sentAt = 0n;
  private sequence = 0;
  private reply: Buffer[] = [];
  private replyBytes = 0;
  private readonly finish: () => void;
  private readonly socket: Socket;
  private readonly shared: Shared;
  readonly done: Promise<void>;

  constructor(socket: Socket, shared: Shared, connectionIndex: number) {
    this.socket = socket;
    this.shared = shared;
    this.random = prng(shared.task.seed ^ Math.imul(connectionIndex + 1, 0x9e3779b1));
    this.keyBase = connectionIndex * 7919;
    let resolveDone!: () => void;
    this.done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    this.finish = resolveDone;
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => this.finish());
    socket.on("close", () => this.finish());
  }

  sendNext(): void {
    const task = this.shared.task;
    const now = Date.now();
    if (now >= task.measureEndEpochMs) {
      this.finish();
      return;
    }
    const span = task.valueBytesMax - task.valueBytesMin + 1;
    const valueBytes = task.valueBytesMin + Math.floor(this.random() * span);
    const key = `key:${(this.keyBase + this.sequence++) % task.keyCount}`;
    const value = "v".repeat(valueBytes);
    this.sentAt = process.hrtime.bigint();
    this.socket.write(encodeSet(key, value));
  }

  private onData(chunk: Buffer): void {
    this.reply.push(chunk);
    this.replyBytes += chunk.length;
    if (this.replyBytes > REPLY_BYTES_MAX) {
      this.socket.destroy(new Error(`reply longer than ${REPLY_BYTES_MAX} bytes without \\r\\n`));
      return;
    }
    const whole = this.reply.length === 1 ? chunk : Buffer.concat(this.reply);
    const length = whole.length;
    if (length < 2 || whole[length - 2] !== CR || whole[length - 1] !== LF) {
      this.reply = [whole];
      return;
    }
    this.onReply(whole[0] === PLUS);
    this.reply = [];
    this.replyBytes = 0;
  }

  private onReply(ok: boolean): void {
    if (this.sentAt === 0n) throw new Error("a reply arrived with no request outstanding");
    const elapsedUs = Number(process.hrtime.bigint() - this.sentAt) / 1000;
    this.sentAt = 0n;
    const shared = this.shared;
    shared.totalRequestCount++;
    const now = Date.now();
    const inWindow = now >= shared.task.measureStartEpochMs && now < shared.task.measureEndEpochMs;
    if (inWindow && ok) {
      shared.histogram.recordValue(Math.max(1, Math.round(elapsedUs)));
      shared.requestCount++;
    } else if (inWindow) {
      shared.errorCount++;
    }
    this.sendNext();
  }
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port}: no answer in ${CONNECT_MS_MAX} ms`));
    }, CONNECT_MS_MAX);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`connect to ${host}:${port}: ${error.message}`, { cause: error }));
    });
  });
}

function sleepUntil(epochMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, epochMs - Date.now())));
}

/** The piscina task: see DriveTask. */
export async function drive(task: DriveTask): Promise<DriveResult> {
  if (task.connectionCount < 1) throw new Error("drive: connectionCount must be >= 1");
  if (task.valueBytesMin > task.valueBytesMax) throw new Error("drive: valueBytesMin > max");
  const shared: Shared = {
    task,
    histogram: createLatencyHistogram(),
    requestCount: 0,
    errorCount: 0,
    totalRequestCount: 0,
  };
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < task.connectionCount; i++) sockets.push(await open(task.host, task.port));
    const connections = sockets.map(
      (socket, i) => new ClosedLoopConnection(socket, shared, task.connectionIndexBase + i),
    );
    for (const connection of connections) connection.sendNext();
    await sleepUntil(task.measureStartEpochMs);
    const cpuStart = process.threadCpuUsage();
    const windowStart = Date.now();
    await sleepUntil(task.measureEndEpochMs);
    const cpu = process.threadCpuUsage(cpuStart);
    const windowMs = Date.now() - windowStart;
    const drained = Promise.all(connections.map((c) => c.done));
    await Promise.race([drained, sleepUntil(Date.now() + DRAIN_MS_MAX)]);
    return {
      histogramBase64: hdr.encodeIntoCompressedBase64(shared.histogram),
      requestCount: shared.requestCount,
      errorCount: shared.errorCount,
      totalRequestCount: shared.totalRequestCount,
      windowMs,
      cpuWindowUs: cpu.user + cpu.system,
    };
  } finally {
    for (const socket of sockets) socket.destroy();
    shared.histogram.destroy();
  }
}
