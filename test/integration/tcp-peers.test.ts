/**
 * Real replicas over `--transport tcp` with mutual TLS (issue 10): they commit writes, and a host
 * without a certificate that connects to a peer port and holds half a frame or half a TLS hello
 * is cut off within --peer-handshake-timeout-ms while the replica keeps serving.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertDir, makeClusterCerts, makeLeaf } from "../transport/peer-certs.ts";
import { freePort, REPLICA_JS, TestCluster } from "./cluster-harness.ts";

const HANDSHAKE_TIMEOUT_MS = 1000;
const STRANGERS = 100;

function client(port: number): Redis {
  return new Redis({ port, host: "127.0.0.1", enableReadyCheck: false, maxRetriesPerRequest: 1 });
}

function tlsFlags(certs: CertDir, id: number): string[] {
  const files = certs.files(`replica-${id}`);
  return ["--peer-tls-cert", files.cert, "--peer-tls-key", files.key, "--peer-tls-ca", files.ca];
}

/**
 * Connect, write `bytes`, hold: `written` resolves once the bytes are sent, `closed` with how long
 * the replica took to close the connection.
 */
function holdUntilClosed(
  port: number,
  bytes: Buffer,
): { written: Promise<void>; closed: Promise<number> } {
  let socket!: net.Socket;
  const written = new Promise<void>((resolve) => {
    socket = net.createConnection({ host: "127.0.0.1", port }, () =>
      socket.write(bytes, () => resolve()),
    );
  });
  const closed = new Promise<number>((resolve, reject) => {
    const started = Date.now();
    socket.on("error", () => {});
    socket.on("data", () => {}); // a TLS alert, if any
    socket.once("close", () => resolve(Date.now() - started));
    setTimeout(() => {
      socket.destroy();
      reject(new Error("the replica held a half-open stranger for 15 s"));
    }, 15_000).unref();
  });
  return { written, closed };
}

/**
 * The replica process's resident memory: prom-client's default process_resident_memory_bytes,
 * under the admin registry's "apus_process_" prefix.
 */
function residentBytes(metrics: string): number {
  const line = metrics
    .split("\n")
    .find((l) => l.startsWith("apus_process_process_resident_memory_bytes "));
  if (line === undefined)
    throw new Error(
      `no apus_process_process_resident_memory_bytes in /metrics:\n${metrics
        .split("\n")
        .filter((l) => l.includes("process_"))
        .join("\n")}`,
    );
  return Number(line.split(" ").at(-1));
}

function droppedHandshakes(metrics: string): number {
  const line = metrics.split("\n").find((l) => l.includes('reason="handshake"'));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

describe("three replicas over --transport tcp with mutual TLS", () => {
  let certs: CertDir;
  let cluster: TestCluster;
  const clients: Redis[] = [];

  beforeAll(async () => {
    certs = makeClusterCerts(3);
    cluster = await TestCluster.start({
      replicas: 3,
      durability: "memory",
      extraArgs: [
        "--transport",
        "tcp",
        "--peer-handshake-timeout-ms",
        String(HANDSHAKE_TIMEOUT_MS),
      ],
      extraArgsFor: (id) => tlsFlags(certs, id),
    });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
    for (const r of cluster.replicas) clients.push(client(r.clientPort));
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
    certs?.remove();
  });

  it("commits writes made on every replica and reads them back everywhere", async () => {
    for (let i = 0; i < clients.length; i++) {
      expect(await clients[i]!.set(`tls-key-${i}`, `value-${i}`)).toBe("OK");
    }
    for (const c of clients) {
      for (let i = 0; i < clients.length; i++)
        expect(await c.get(`tls-key-${i}`)).toBe(`value-${i}`);
    }
  });

  it("cuts off strangers holding half a frame or half a TLS hello; the replica keeps serving", async () => {
    const leader = await cluster.waitForLeader();
    const target = cluster.replica(leader);
    const metricsBefore = await cluster.metrics(leader);
    const before = droppedHandshakes(metricsBefore);
    const rssBefore = residentBytes(metricsBefore);
    // A frame's length prefix claiming 200 MiB, then the start of a header: not TLS at all.
    const halfFrame = Buffer.alloc(10);
    halfFrame.writeUInt32LE(200 * 1024 * 1024, 0);
    halfFrame.write("AP", 4, "latin1");
    // The first bytes of a TLS record header (handshake, TLS 1.0 record version): a hello that
    // never finishes.
    const halfHello = Buffer.from([0x16, 0x03, 0x01, 0x02]);
    const holds = [holdUntilClosed(target.peerPort, halfFrame)];
    for (let i = 0; i < STRANGERS; i++) holds.push(holdUntilClosed(target.peerPort, halfHello));
    // While they hold, the cluster commits, and the replica's memory does not follow the frame's
    // 200 MiB claim nor grow much with 100 half hellos (generous bound: RSS moves with the GC).
    expect(await clients[leader - 1]!.set("during-strangers", "yes")).toBe("OK");
    await Promise.all(holds.map((h) => h.written));
    let closedSoFar = 0;
    for (const h of holds)
      void h.closed.then(
        () => closedSoFar++,
        () => {},
      );
    const rssDuring = residentBytes(await cluster.metrics(leader));
    // Read while strangers still hold (some, the half frame first, are closed at once).
    const holding = holds.length - closedSoFar;
    expect(holding).toBeGreaterThan(0);
    const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
    console.log(
      `leader RSS: ${mib(rssBefore)} before the strangers, ${mib(rssDuring)} while ${holding} of ${holds.length} hold`,
    );
    expect(rssDuring - rssBefore).toBeLessThan(64 * 1024 * 1024);
    const times = await Promise.all(holds.map((h) => h.closed));
    // Each is closed at once (not TLS) or at the handshake timeout, with slack for 2 busy cores.
    expect(Math.max(...times)).toBeLessThan(HANDSHAKE_TIMEOUT_MS + 4000);
    for (const c of clients) expect(await c.get("during-strangers")).toBe("yes");
    expect(await clients[leader - 1]!.incr("after-strangers")).toBe(1);
    const after = droppedHandshakes(await cluster.metrics(leader));
    expect(after - before).toBeGreaterThanOrEqual(STRANGERS + 1);
  });
});

describe("peer TLS settings at start", () => {
  let certs: CertDir;
  beforeAll(() => {
    certs = makeClusterCerts(1);
    makeLeaf(certs.dir, "elsewhere", { san: "IP:10.9.8.7" });
  });
  afterAll(() => certs?.remove());

  it("refuses to start with a certificate that does not name its --peers host, naming the flag and file", async () => {
    const files = certs.files("elsewhere");
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const secretFile = join(certs.dir, "cluster.secret");
    writeFileSync(secretFile, "integration-test-secret-0123456789abcdef\n", { mode: 0o600 });
    const child = spawn(
      process.execPath,
      [
        REPLICA_JS,
        "--id",
        "1",
        "--peers",
        `127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}`,
        "--client-port",
        String(ports[2]),
        "--admin-port",
        String(ports[3]),
        "--secret-file",
        secretFile,
        "--durability",
        "memory",
        "--transport",
        "tcp",
        "--peer-tls-cert",
        files.cert,
        "--peer-tls-key",
        files.key,
        "--peer-tls-ca",
        files.ca,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).not.toBe(0);
    expect(output).toContain("--peer-tls-cert");
    expect(output).toContain("elsewhere.crt");
    expect(output).toContain("127.0.0.1");
  });
});
