/**
 * What mutual TLS costs the TCP peer transport (issue 10): two TcpTransports in one process on
 * loopback, plain TCP against TCP + mTLS (TLS 1.3, P-256 certificates made with openssl), both
 * with the peer handshake and the frame MAC, which stay on under TLS.
 *
 *   - round trip: a sends one message, b echoes it; tinybench median per round trip;
 *   - throughput: a streams messages to b, flushing every FLUSH_EVERY; median of REPEATS runs;
 *   - connection setup: a fresh pair, first message sent until delivered (connect, TLS, the
 *     peer handshake), median of SETUPS pairs.
 *
 * `node bench/tcp-tls.bench.ts [--quick]`. Nothing is asserted; read the medians, compare rows
 * of one run (the machine is shared and noisy).
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { Bench } from "tinybench";
import type { PeerTlsMaterial } from "../src/transport/peer-tls.ts";
import { TcpTransport } from "../src/transport/tcp-transport.ts";
import type { TransportOptions } from "../src/transport/transport.ts";
import { freePorts } from "../test/transport/helpers.ts";
import { makeClusterCerts } from "../test/transport/peer-certs.ts";

const CLUSTER_ID = 7;
const SECRETS = [randomBytes(32)];
const FLUSH_EVERY = 64;
/**
 * Bytes sent and not yet delivered, at most: the stream waits for b below it, far under
 * TCP_SEND_QUEUE_BYTES_MAX (64 MiB), so no send is dropped "queue-full".
 */
const STREAM_WINDOW_BYTES = 8 << 20;
const quick = process.argv.includes("--quick");
const REPEATS = quick ? 2 : 7;
const SETUPS = quick ? 3 : 21;

type Mode = "plain" | "mtls";

interface Pair {
  readonly a: TcpTransport;
  readonly b: TcpTransport;
  close(): Promise<void>;
}

async function makePair(mode: Mode, tls: readonly PeerTlsMaterial[]): Promise<Pair> {
  const peers = (await freePorts(2)).map((port) => ({ host: "127.0.0.1", port }));
  const options = (id: number): TransportOptions => ({
    id,
    peers,
    clusterId: CLUSTER_ID,
    secrets: SECRETS,
    incarnation: 1,
    messageBytesMax: 16 << 20,
    ...(mode === "mtls" ? { tls: tls[id - 1]! } : {}),
  });
  const a = new TcpTransport(options(1));
  const b = new TcpTransport(options(2));
  a.onMessage = () => {};
  b.onMessage = () => {};
  await Promise.all([a.start(), b.start()]);
  return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
}

/** b echoes; each call sends one message and resolves when the echo is back. */
function echo(pair: Pair): (payload: Uint8Array) => Promise<void> {
  let resolveReply: (() => void) | null = null;
  pair.a.onMessage = () => {
    const resolve = resolveReply;
    resolveReply = null;
    resolve?.();
  };
  pair.b.onMessage = (from, channel, payload) => {
    pair.b.send(from, channel, payload);
    pair.b.flush();
  };
  return (payload) =>
    new Promise<void>((resolve) => {
      resolveReply = resolve;
      pair.a.send(2, 0, payload);
      pair.a.flush();
    });
}

interface StreamRun {
  readonly seconds: number;
  /** CPU of the process (both transports: sending and receiving) per message, µs. */
  readonly cpuUsPerMessage: number;
}

/** Stream `count` messages of `size` bytes from a to b. */
async function stream(pair: Pair, size: number, count: number): Promise<StreamRun> {
  const payload = randomBytes(size);
  const windowMessages = Math.max(FLUSH_EVERY, Math.floor(STREAM_WINDOW_BYTES / size));
  let received = 0;
  let wake: (() => void) | null = null;
  pair.b.onMessage = () => {
    received++;
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let sent = 0; sent < count; ) {
    const batchEnd = Math.min(count, sent + FLUSH_EVERY);
    for (; sent < batchEnd; sent++) pair.a.send(2, 0, payload);
    pair.a.flush();
    // Let the event loop write and read between batches, as the runtime does between turns,
    // and wait for b while the window is full.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (sent - received > windowMessages) await new Promise<void>((resolve) => (wake = resolve));
  }
  while (received < count) await new Promise<void>((resolve) => (wake = resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  const dropped = pair.a.stats().dropped["queue-full"];
  if (dropped > 0) throw new Error(`${dropped} sends dropped queue-full: the window is too large`);
  return { seconds, cpuUsPerMessage: (used.user + used.system) / count };
}

/** Milliseconds from the first send on a fresh pair to its delivery. */
async function setup(mode: Mode, tls: readonly PeerTlsMaterial[]): Promise<number> {
  const pair = await makePair(mode, tls);
  const delivered = new Promise<void>((resolve) => {
    pair.b.onMessage = () => resolve();
  });
  const started = process.hrtime.bigint();
  pair.a.send(2, 0, randomBytes(64));
  pair.a.flush();
  await delivered;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await pair.close();
  return ms;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const certs = makeClusterCerts(2);
  const tls = [certs.material("replica-1"), certs.material("replica-2")];
  const modes: Mode[] = ["plain", "mtls"];
  const lines: string[] = [];

  const bench = new Bench({ time: quick ? 200 : 1500, warmupTime: quick ? 50 : 300 });
  const pairs: Pair[] = [];
  for (const mode of modes) {
    const pair = await makePair(mode, tls);
    pairs.push(pair);
    const roundTrip = echo(pair);
    for (const size of [64, 4096, 64 * 1024, 1 << 20]) {
      const payload = randomBytes(size);
      const label = size >= 1 << 20 ? "1 MiB" : size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
      bench.add(`${mode} round trip, ${label} each way`, () => roundTrip(payload));
    }
  }
  await bench.run();
  lines.push("| round trip (tinybench) | median µs | p99 µs |", "|---|---:|---:|");
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
    const p50 = (result.latency.p50 * 1000).toFixed(1);
    const p99 = (result.latency.p99 * 1000).toFixed(1);
    lines.push(`| ${task.name} | ${p50} | ${p99} |`);
  }

  lines.push(
    "",
    "| one-way stream | median msgs/s | median MiB/s | median CPU µs per message (both ends) |",
    "|---|---:|---:|---:|",
  );
  for (const [size, count] of [
    [1024, quick ? 5_000 : 50_000],
    [64 * 1024, quick ? 200 : 2_000],
  ] as const) {
    // Runs alternate between the modes (plain, mTLS, plain, …), so drift on a shared machine
    // falls on both.
    const runs: StreamRun[][] = modes.map(() => []);
    for (let run = 0; run < REPEATS; run++) {
      for (const index of modes.keys()) runs[index]!.push(await stream(pairs[index]!, size, count));
    }
    for (const [index, mode] of modes.entries()) {
      const s = median(runs[index]!.map((run) => run.seconds));
      const cpuUs = median(runs[index]!.map((run) => run.cpuUsPerMessage));
      const mib = (size * count) / s / (1 << 20);
      lines.push(
        `| ${mode}, ${size / 1024} KiB messages × ${count} | ${Math.round(count / s).toLocaleString("en-US")} | ${mib.toFixed(0)} | ${cpuUs.toFixed(2)} |`,
      );
    }
  }
  for (const pair of pairs) await pair.close();

  lines.push("", "| connection setup (fresh pair, first message) | median ms |", "|---|---:|");
  const setupMs: number[][] = modes.map(() => []);
  for (let i = 0; i < SETUPS; i++) {
    for (const [index, mode] of modes.entries()) setupMs[index]!.push(await setup(mode, tls));
  }
  for (const [index, mode] of modes.entries()) {
    lines.push(`| ${mode} | ${median(setupMs[index]!).toFixed(2)} |`);
  }
  certs.remove();

  process.stdout.write(
    `apus-smr TCP peer transport, plain vs mutual TLS — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ` +
      `${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.platform()} ${os.arch()}\n\n` +
      `${lines.join("\n")}\n`,
  );
}

await main();
