/**
 * Microbenchmarks of the peer transports: what the HMAC costs per frame (the raw-key createHmac
 * that re-imports the key every call, against FrameAuthenticator's one-shot HMAC; every MAC
 * candidate is compared in bench/mac.bench.ts), and round trips between two transports on
 * loopback in one process.
 * `node bench/transport.bench.ts [--quick]`. No timing is asserted anywhere; read medians.
 */
import { createHmac, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import os from "node:os";
import { Bench } from "tinybench";
import {
  createTransport,
  FrameAuthenticator,
  type FrameContext,
  openFrame,
  sealSingle,
  type Transport,
  type TransportKind,
} from "../src/transport/index.ts";

const SECRET = randomBytes(32);
const CLUSTER_ID = 1;

async function freePort(): Promise<number> {
  for (;;) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const udp = dgram.createSocket("udp4");
    const free = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    udp.close();
    if (free) return port;
  }
}

/** Two transports; b echoes every message back to a. */
async function pair(kind: TransportKind): Promise<{
  roundTrip: (payload: Uint8Array) => Promise<void>;
  close: () => Promise<void>;
}> {
  const peers = [
    { host: "127.0.0.1", port: await freePort() },
    { host: "127.0.0.1", port: await freePort() },
  ];
  const options = { peers, clusterId: CLUSTER_ID, secret: SECRET, messageBytesMax: 16 << 20 };
  const a: Transport = createTransport(kind, { ...options, id: 1 });
  const b: Transport = createTransport(kind, { ...options, id: 2 });
  let resolveReply: (() => void) | null = null;
  a.onMessage = () => {
    const resolve = resolveReply;
    resolveReply = null;
    resolve?.();
  };
  b.onMessage = (from, channel, payload) => {
    b.send(from, channel, payload);
    b.flush();
  };
  await Promise.all([a.start(), b.start()]);
  return {
    roundTrip: (payload) =>
      new Promise<void>((resolve) => {
        resolveReply = resolve;
        a.send(2, 0, payload);
        a.flush();
      }),
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

interface Row {
  readonly name: string;
  readonly bytes: number;
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const bench = new Bench({ time: quick ? 200 : 1000, warmupTime: quick ? 50 : 200 });
  const rows: Row[] = [];
  const authenticator = new FrameAuthenticator(SECRET);
  const context: FrameContext = {
    authenticator,
    clusterId: CLUSTER_ID,
    id: 2,
    peerCount: 2,
    messageBytesMax: 16 << 20,
  };

  for (const size of [128, 16 * 1024]) {
    const data = randomBytes(size);
    const frame = sealSingle(
      authenticator,
      { flags: 0, clusterId: CLUSTER_ID, from: 1, to: 2 },
      0,
      0,
      data,
    );
    const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
    const add = (name: string, fn: () => void) => {
      bench.add(name, fn);
      rows.push({ name, bytes: size });
    };
    add(`HMAC-SHA256 ${label}, createHmac(raw key) per call`, () => {
      createHmac("sha256", SECRET).update(data).digest();
    });
    add(`HMAC-SHA256 ${label}, FrameAuthenticator (two crypto.hash)`, () => {
      authenticator.digest(data);
    });
    add(`openFrame ${label} payload (checks + HMAC verify)`, () => {
      if (!openFrame(frame, context).ok) throw new Error("openFrame failed");
    });
  }

  const pairs: { close: () => Promise<void> }[] = [];
  for (const kind of ["udp", "tcp"] as const) {
    const p = await pair(kind);
    pairs.push(p);
    for (const size of [64, 4096]) {
      const payload = randomBytes(size);
      const name = `${kind} round trip on loopback, ${size} B each way`;
      bench.add(name, () => p.roundTrip(payload));
      rows.push({ name, bytes: 2 * size });
    }
    const big = randomBytes(1 << 20);
    const name = `${kind} round trip on loopback, 1 MiB each way`;
    bench.add(name, () => p.roundTrip(big));
    rows.push({ name, bytes: 2 << 20 });
  }

  process.stdout.write(
    `apus-smr transport microbenchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ` +
      `${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.platform()} ${os.arch()}\n` +
      `Shared and noisy machine: read the medians, compare rows within one run.\n\n`,
  );
  await bench.run();
  for (const p of pairs) await p.close();

  const header = "| benchmark | median per op | throughput |\n|---|---:|---:|\n";
  const lines = bench.tasks.map((task) => {
    const result = task.result;
    if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
    const row = rows.find((r) => r.name === task.name)!;
    const perOpUs = result.latency.p50 * 1000;
    const mibPerS = row.bytes / (perOpUs / 1e6) / 1024 / 1024;
    return `| ${task.name} | ${perOpUs.toFixed(2)} µs | ${mibPerS.toFixed(0)} MiB/s |`;
  });
  process.stdout.write(`${header}${lines.join("\n")}\n`);
}

await main();
