/**
 * Microbenchmarks of the peer transports: what the HMAC costs per frame (the raw-key createHmac
 * that re-imports the key every call, against FrameAuthenticator's one-shot HMAC; every MAC
 * candidate is compared in bench/mac.bench.ts), what sealing and opening a frame cost (opening
 * includes the replay window: each opened frame is a new one, restamped and signed again outside
 * the timed call), and round trips between two transports on loopback in one process.
 * `node bench/transport.bench.ts [--quick]`. No timing is asserted anywhere; read medians.
 */
import { createHmac, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import os from "node:os";
import { Bench } from "tinybench";
import {
  createFrameContext,
  createTransport,
  openFrame,
  sealSingle,
  type Transport,
  type TransportKind,
  type TransportOptions,
  UdpTransport,
  writeSessionFields,
} from "../src/transport/index.ts";
import { derivePeerKey } from "../src/transport/peer-keys.ts";

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
  const a: Transport = createTransport(kind, options(1, peers));
  const b: Transport = createTransport(kind, options(2, peers));
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
  // UDP: until the session frames have crossed, each side drops the other's frames.
  while (
    a instanceof UdpTransport &&
    b instanceof UdpTransport &&
    (a.peerIncarnation(2) === 0 || b.peerIncarnation(1) === 0)
  )
    await new Promise((resolve) => setTimeout(resolve, 5));
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

let lastIncarnation = Date.now();
function options(id: number, peers: TransportOptions["peers"]): TransportOptions {
  lastIncarnation++;
  return {
    id,
    peers,
    clusterId: CLUSTER_ID,
    secrets: [SECRET],
    incarnation: lastIncarnation,
    messageBytesMax: 16 << 20,
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
  const addresses = [
    { host: "127.0.0.1", port: 1 },
    { host: "127.0.0.1", port: 2 },
  ];
  const frameKey = derivePeerKey(SECRET, "frames", CLUSTER_ID);

  for (const size of [128, 16 * 1024]) {
    // A sender and a receiver per size: tinybench warms every task up before it runs any, so
    // rows sharing a receiver would move its window past each other's sequence numbers.
    const counters = { framesSecondKey: 0 };
    const sender = createFrameContext(options(1, addresses), true, counters);
    const context = createFrameContext(options(2, addresses), true, counters);
    // The receiver's incarnation, as replica 1 would have learned it from a session frame.
    sender.sessions.admit(2, context.sessions.incarnation, 0, 0);
    const { authenticator } = sender;
    const data = randomBytes(size);
    const header = { flags: 0, clusterId: CLUSTER_ID, from: 1, to: 2 };
    const frame = sealSingle(sender, header, 0, 0, data);
    let seq = frame.byteLength; // above the first frame's, which tinybench opens once at add()

    const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
    const add = (name: string, fn: () => void, beforeEach?: () => void) => {
      bench.add(name, fn, beforeEach === undefined ? {} : { beforeEach });
      rows.push({ name, bytes: size });
    };
    add(`HMAC-SHA256 ${label}, createHmac(raw key) per call`, () => {
      createHmac("sha256", frameKey).update(data).digest();
    });
    add(`HMAC-SHA256 ${label}, FrameAuthenticator (two crypto.hash)`, () => {
      authenticator.digest(data);
    });
    add(`sealSingle ${label} payload (header, session fields, copy, HMAC sign)`, () => {
      sealSingle(sender, header, 0, 0, data);
    });
    const fresh = () => {
      seq++;
      writeSessionFields(frame, sender.sessions.incarnation, seq, context.sessions.incarnation);
      authenticator.sign(frame);
    };
    add(
      `openFrame ${label} payload (checks + HMAC verify + replay window)`,
      () => {
        const opened = openFrame(frame, context);
        if (!opened.ok) throw new Error(`openFrame failed: ${opened.reason}`);
      },
      fresh,
    );
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
    if (result.state !== "completed")
      throw new Error(`${task.name}: ${result.state}`, {
        cause: "error" in result ? result.error : undefined,
      });
    const row = rows.find((r) => r.name === task.name)!;
    const perOpUs = result.latency.p50 * 1000;
    const mibPerS = row.bytes / (perOpUs / 1e6) / 1024 / 1024;
    return `| ${task.name} | ${perOpUs.toFixed(2)} µs | ${mibPerS.toFixed(0)} MiB/s |`;
  });
  process.stdout.write(`${header}${lines.join("\n")}\n`);
}

await main();
