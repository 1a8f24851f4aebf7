import { randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createFrameContext,
  type DropReason,
  LENGTH_PREFIX_BYTES,
  MESSAGE_BYTES_MAX_LIMIT,
  type PeerAddress,
  sealSingle,
  TCP_INBOUND_CONNECTIONS_MAX,
  TCP_UNAUTHENTICATED_PER_SOURCE_MAX,
  type TcpTransport,
  type TransportOptions,
} from "../../src/transport/index.ts";
import { derivePeerKeys } from "../../src/transport/peer-keys.ts";
import {
  HANDSHAKE_NONCE_BYTES,
  HandshakeInitiator,
  HELLO_BYTES,
  NO_CHANNEL_BINDING,
  PROOF_BYTES,
} from "../../src/transport/tcp-handshake.ts";
import {
  addresses,
  baseOptions,
  CLUSTER_ID,
  closeAll,
  freePorts,
  MIB,
  makeNode,
  type Node,
  nextIncarnation,
  pattern,
  sameBytes,
  startCluster,
  string,
  text,
  waitFor,
} from "./helpers.ts";
import {
  type CertDir,
  type CertMaterial,
  makeCa,
  makeClusterCerts,
  makeLeaf,
} from "./peer-certs.ts";
import { authenticatedSocket, handshakeKeys, repliedHandshake } from "./tcp-raw.ts";

describe("tcp transport: connections", () => {
  let nodes: Node[] = [];
  let strays: net.Socket[] = [];
  afterEach(async () => {
    for (const s of strays) s.destroy();
    strays = [];
    await closeAll(nodes);
    nodes = [];
  });

  it("a peer that is down, then comes up, gets later messages (reconnect with backoff)", async () => {
    const peers = addresses(await freePorts(2));
    const a = makeNode("tcp", baseOptions(1, peers));
    nodes.push(a);
    await a.transport.start();
    a.transport.send(2, 0, text("while down"));
    a.transport.flush(); // connect is refused: quietly, then backoff
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(a.drops).toEqual([]);
    const b = makeNode("tcp", baseOptions(2, peers));
    nodes.push(b);
    await b.transport.start();
    // Keep sending, as Paxos retransmits, until something gets through.
    let sent = 0;
    await waitFor(() => {
      if (b.received.some((m) => string(m.payload).startsWith("later"))) return true;
      a.transport.send(2, 0, text(`later ${sent++}`));
      a.transport.flush();
      return false;
    }, "a message after the peer came up");
    expect(b.received.every((m) => m.from === 1)).toBe(true);
  });

  it("a peer that restarts gets messages again", async () => {
    nodes = await startCluster("tcp", 2);
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, text("first"));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "first");
    await b.transport.close();
    const b2 = makeNode("tcp", b.options);
    nodes.push(b2);
    await b2.transport.start();
    await waitFor(() => {
      if (b2.received.length > 0) return true;
      a.transport.send(2, 0, text("again"));
      a.transport.flush();
      return false;
    }, "a message to the restarted peer");
  });

  it("bounds the send queue to a dead peer, dropping 'queue-full'", async () => {
    const peers = addresses(await freePorts(2));
    const a = makeNode("tcp", { ...baseOptions(1, peers), messageBytesMax: 16 * MIB });
    nodes.push(a);
    await a.transport.start();
    const chunk = new Uint8Array(16 * MIB);
    for (let i = 0; i < 5; i++) a.transport.send(2, 0, chunk);
    a.transport.flush();
    // 3 × (16 MiB + framing) are queued; the 4th and 5th would pass 64 MiB.
    expect(a.transport.stats().dropped["queue-full"]).toBe(2);
    expect(a.transport.stats().messagesSent).toBe(3);
  });

  it("idle strangers cannot lock out peers: the oldest unauthenticated connection of their source is evicted", async () => {
    nodes = await startCluster("tcp", 2);
    const [a, b] = nodes as [Node, Node];
    for (let i = 0; i < TCP_INBOUND_CONNECTIONS_MAX + 5; i++) {
      const s = net.createConnection(b.address);
      s.on("error", () => {});
      strays.push(s);
    }
    await Promise.all(
      strays.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.once("connect", () => resolve());
            s.once("close", () => resolve());
          }),
      ),
    );
    a.transport.send(2, 0, text("through the crowd"));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "a peer's message despite idle strangers");
  });
});

// ---- issue 10: the handshake before frames, timeouts, bounds, mutual TLS ------------------------

const HANDSHAKE_TIMEOUT_MS = 300;
const STALL_TIMEOUT_MS = 300;
/** Slack for timers on 2 busy shared cores. */
const SLACK_MS = 2500;

function quick(options: TransportOptions): TransportOptions {
  return {
    ...options,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    frameStallTimeoutMs: STALL_TIMEOUT_MS,
  };
}

/** Handshakes that do not time out while a test's crowd arrives on 2 busy shared cores. */
function patient(options: TransportOptions): TransportOptions {
  return { ...options, handshakeTimeoutMs: 60_000 };
}

/**
 * Connect to `node` (from `localAddress`, any of 127/8 on Linux loopback, if given), write
 * `bytes`, and resolve with the ms until the node closed it.
 */
function closedAfter(node: Node, bytes: Uint8Array, localAddress?: string): Promise<number> {
  return new Promise((resolve) => {
    const started = Date.now();
    const from = localAddress === undefined ? {} : { localAddress };
    const socket = net.createConnection({ ...node.address, ...from }, () => socket.write(bytes));
    socket.on("error", () => {});
    socket.on("data", () => {});
    socket.once("close", () => resolve(Date.now() - started));
  });
}

/**
 * A frame signed as replica `from` of `node`'s cluster, addressed to `node` and echoing its
 * incarnation (as a sender that completed a handshake with it would).
 */
function frameFrom(node: Node, from: number, payload: Uint8Array): Buffer {
  const context = createFrameContext({ ...node.options, id: from }, false, { framesSecondKey: 0 });
  context.sessions.admit(node.options.id, node.options.incarnation, 0, 0);
  const header = { flags: 0, clusterId: node.options.clusterId, from, to: node.options.id };
  return sealSingle(context, header, LENGTH_PREFIX_BYTES, 0, payload);
}

/** Resolves when `socket` has closed (the node closed it). */
function isClosed(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value, 0);
  return bytes;
}

function count(node: Node, reason: DropReason): number {
  return node.drops.filter((d) => d.reason === reason).length;
}

/** Loopback source addresses other than 127.0.0.1 (Linux routes all of 127/8 to lo). */
function otherSources(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `127.0.0.${index + 2}`);
}

/**
 * `perSource` strangers from each of `sources`, each saying a well-formed HELLO (as replica 1,
 * which the node answers without knowing who sent it) and nothing more. Resolves with the
 * sockets once the node has dealt with every one: answered its HELLO, or closed it.
 */
async function helloCrowd(
  node: Node,
  sources: readonly string[],
  perSource: number,
): Promise<net.Socket[]> {
  const hello = new HandshakeInitiator({
    keys: handshakeKeys(node),
    clusterId: node.options.clusterId,
    id: 1,
    peerCount: node.options.peers.length,
    nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
    binding: NO_CHANNEL_BINDING,
    incarnation: 1,
    to: node.options.id,
  }).hello();
  const sockets: net.Socket[] = [];
  const settled: Promise<void>[] = [];
  for (let i = 0; i < perSource; i++) {
    for (const localAddress of sources) {
      const socket = net.createConnection({ ...node.address, localAddress }, () =>
        socket.write(hello),
      );
      socket.on("error", () => {});
      sockets.push(socket);
      settled.push(
        new Promise((resolve) => {
          socket.once("data", () => resolve());
          socket.once("close", () => resolve());
        }),
      );
    }
  }
  await Promise.all(settled);
  return sockets;
}

describe("tcp transport: handshake before frames, timeouts, bounds", () => {
  let nodes: Node[] = [];
  let strays: net.Socket[] = [];
  afterEach(async () => {
    for (const s of strays) s.destroy();
    strays = [];
    await closeAll(nodes);
    nodes = [];
  });

  it("a stranger holding half a handshake is cut off at the handshake timeout, counted", async () => {
    nodes = await startCluster("tcp", 2, quick);
    const b = nodes[1]!;
    const ms = await closedAfter(b, new Uint8Array(HELLO_BYTES - 1));
    expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(HANDSHAKE_TIMEOUT_MS + SLACK_MS);
    await waitFor(() => count(b, "handshake") === 1, "the drop counted");
    expect(b.received).toEqual([]);
  });

  it("a stranger claiming a 200 MiB frame is cut off after a HELLO's worth; memory stays bounded", async () => {
    // The replica's own setting: frames of up to 256 MiB, which a stranger could once fill.
    nodes = await startCluster("tcp", 2, (o) => ({
      ...quick(o),
      messageBytesMax: MESSAGE_BYTES_MAX_LIMIT,
    }));
    const b = nodes[1]!;
    const claim = Buffer.alloc(1 << 20);
    claim.writeUInt32LE(200 * MIB, 0);
    claim.write("AP", 4, "latin1");
    const before = process.memoryUsage();
    const socket = net.createConnection(b.address);
    strays.push(socket);
    socket.on("error", () => {});
    await once(socket, "connect");
    // Stream the claimed frame's bytes as fast as the socket takes them, until it is closed.
    let written = 0;
    const pump = () => {
      while (!socket.destroyed && written < 200 * MIB && socket.write(claim))
        written += claim.length;
    };
    socket.on("drain", pump);
    pump();
    await isClosed(socket);
    await waitFor(() => count(b, "handshake") === 1, "the drop counted");
    // What the transport read before deciding: one socket read or a few, never the claim.
    expect(b.transport.stats().bytesReceived).toBeLessThan(4 * MIB);
    const after = process.memoryUsage();
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(32 * MIB);
  });

  it("a crowd of half handshakes: at most TCP_INBOUND_CONNECTIONS_MAX held, all cut off, a peer still gets through", async () => {
    nodes = await startCluster("tcp", 2, quick);
    const [a, b] = nodes as [Node, Node];
    // From enough source addresses to fill the table despite the bound per source.
    const sources = otherSources(
      (2 * TCP_INBOUND_CONNECTIONS_MAX) / TCP_UNAUTHENTICATED_PER_SOURCE_MAX,
    );
    const crowd = 3 * TCP_INBOUND_CONNECTIONS_MAX;
    const closings: Promise<number>[] = [];
    const tcp = b.transport as TcpTransport;
    let held = 0;
    const sample = setInterval(() => {
      held = Math.max(held, tcp.inboundConnectionCount);
    }, 1);
    for (let i = 0; i < crowd; i++) {
      closings.push(closedAfter(b, new Uint8Array(10), sources[i % sources.length]));
    }
    a.transport.send(2, 0, text("through the crowd"));
    a.transport.flush();
    await waitFor(() => {
      if (b.received.length > 0) return true;
      a.transport.send(2, 0, text("through the crowd"));
      a.transport.flush();
      return false;
    }, "a peer's message despite the crowd");
    const times = await Promise.all(closings);
    clearInterval(sample);
    expect(Math.max(...times)).toBeLessThan(HANDSHAKE_TIMEOUT_MS + SLACK_MS);
    expect(held).toBeGreaterThan(TCP_INBOUND_CONNECTIONS_MAX / 2);
    expect(held).toBeLessThanOrEqual(TCP_INBOUND_CONNECTIONS_MAX);
    expect(tcp.inboundConnectionCount).toBe(1); // replica 1's
    // Each stranger is counted once: evicted, or cut off at the timeout.
    await waitFor(() => count(b, "handshake") >= crowd, "every stranger counted");
  });

  it("a crowd from one source address cannot stop a peer's handshake from completing", async () => {
    nodes = await startCluster("tcp", 2, patient);
    const b = nodes[1]!;
    // Replica 1's handshake is half done (REPLY received) when the crowd arrives from 127.0.0.2.
    const genuine = await repliedHandshake(b, 1, { localAddress: "127.0.0.1" });
    strays.push(genuine.socket);
    const crowd = 3 * TCP_INBOUND_CONNECTIONS_MAX;
    strays.push(...(await helloCrowd(b, ["127.0.0.2"], crowd)));
    const held = (b.transport as TcpTransport).inboundConnectionCount;
    const evicted = count(b, "handshake");
    genuine.prove();
    genuine.socket.write(frameFrom(b, 1, text("after the crowd")));
    await waitFor(
      () => b.received.length === 1 || genuine.socket.destroyed,
      "the frame, or the genuine connection closed",
    );
    expect(b.received.map((m) => string(m.payload))).toEqual(["after the crowd"]);
    // The crowd held its source's share; each of the rest was evicted from its own source.
    expect(held).toBe(1 + TCP_UNAUTHENTICATED_PER_SOURCE_MAX);
    expect(evicted).toBe(crowd - TCP_UNAUTHENTICATED_PER_SOURCE_MAX);
  });

  it("a crowd from many source addresses fills the table, and is evicted from its largest source first", async () => {
    nodes = await startCluster("tcp", 2, patient);
    const b = nodes[1]!;
    const genuine = await repliedHandshake(b, 1, { localAddress: "127.0.0.1" });
    strays.push(genuine.socket);
    // 12 sources of 12: 96 past the per-source bound, so the table fills and its evictions start.
    const sources = otherSources(12);
    strays.push(...(await helloCrowd(b, sources, 12)));
    const held = (b.transport as TcpTransport).inboundConnectionCount;
    genuine.prove();
    genuine.socket.write(frameFrom(b, 1, text("after the crowd")));
    await waitFor(
      () => b.received.length === 1 || genuine.socket.destroyed,
      "the frame, or the genuine connection closed",
    );
    expect(b.received.map((m) => string(m.payload))).toEqual(["after the crowd"]);
    expect(held).toBe(TCP_INBOUND_CONNECTIONS_MAX);
  });

  it("an authenticated peer stalling part way through a frame is cut off; an idle one is not", async () => {
    nodes = await startCluster("tcp", 3, quick);
    const c = nodes[2]!;
    const idle = await authenticatedSocket(c, 1);
    const stalling = await authenticatedSocket(c, 2);
    strays.push(idle, stalling);
    idle.write(frameFrom(c, 1, text("then nothing")));
    const frame = frameFrom(c, 2, new Uint8Array(64 * 1024));
    const started = Date.now();
    stalling.write(frame.subarray(0, frame.length / 2));
    await isClosed(stalling);
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(STALL_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(STALL_TIMEOUT_MS + SLACK_MS);
    expect(count(c, "stalled")).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 3 * STALL_TIMEOUT_MS));
    expect(idle.destroyed).toBe(false);
    expect(c.received.map((m) => string(m.payload))).toEqual(["then nothing"]);
  });

  it("frames are read only from the replica the handshake authenticated", async () => {
    nodes = await startCluster("tcp", 3, quick);
    const c = nodes[2]!;
    const socket = await authenticatedSocket(c, 1);
    strays.push(socket);
    socket.write(frameFrom(c, 2, text("as replica 2 on replica 1's connection")));
    await isClosed(socket);
    expect(count(c, "unknown-peer")).toBe(1);
    expect(c.received).toEqual([]);
  });

  it("a frame over frameBytesMax after the handshake is refused at its length prefix", async () => {
    nodes = await startCluster("tcp", 2, quick);
    const b = nodes[1]!;
    const socket = await authenticatedSocket(b, 1);
    strays.push(socket);
    socket.write(u32(200 * MIB));
    await isClosed(socket);
    expect(count(b, "oversize")).toBe(1);
  });

  it("a peer with another secret is refused at the handshake, on both sides", async () => {
    const other = new TextEncoder().encode("another-secret-0123456789abcdef");
    nodes = await startCluster("tcp", 2, (o) => quick(o.id === 1 ? { ...o, secrets: [other] } : o));
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, text("forged"));
    a.transport.flush();
    await waitFor(() => count(a, "handshake") >= 1 && count(b, "handshake") >= 1, "both refuse");
    expect(b.received).toEqual([]);
    await expect(
      authenticatedSocket(b, 1, derivePeerKeys([other], CLUSTER_ID).handshake),
    ).rejects.toThrow(/handshake failed: tag/);
  });
});

describe("tcp transport: mutual TLS", () => {
  let certs: CertDir;
  let nodes: Node[] = [];
  let strays: net.Socket[] = [];
  beforeAll(() => {
    certs = makeClusterCerts(3);
    makeCa(certs.dir, "other-ca");
    makeLeaf(certs.dir, "intruder", { ca: "other-ca" });
    makeLeaf(certs.dir, "elsewhere", { san: "IP:127.0.0.3" });
  });
  afterAll(() => certs.remove());
  afterEach(async () => {
    for (const s of strays) s.destroy();
    strays = [];
    await closeAll(nodes);
    nodes = [];
  });

  const withTls = (material: (id: number) => CertMaterial) => (options: TransportOptions) =>
    quick({ ...options, tls: material(options.id) });

  it("two transports exchange messages both ways over mutual TLS", async () => {
    nodes = await startCluster(
      "tcp",
      2,
      withTls((id) => certs.material(`replica-${id}`)),
    );
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, text("to b, encrypted"));
    a.transport.send(2, 1, pattern(1 << 20, 7));
    a.transport.flush();
    b.transport.send(1, 0, text("to a, encrypted"));
    b.transport.flush();
    await waitFor(() => b.received.length === 2 && a.received.length === 1, "both directions");
    expect(string(b.received[0]!.payload)).toBe("to b, encrypted");
    expect(sameBytes(b.received[1]!.payload, pattern(1 << 20, 7))).toBe(true);
    expect(string(a.received[0]!.payload)).toBe("to a, encrypted");
    expect(a.drops).toEqual([]);
    expect(b.drops).toEqual([]);
  });

  it("a peer whose certificate comes from another CA is refused, whichever side it is", async () => {
    const intruder = certs.material("intruder", "other-ca");
    nodes = await startCluster(
      "tcp",
      2,
      withTls((id) =>
        id === 1
          ? { ...intruder, ca: certs.material("replica-2").ca }
          : certs.material(`replica-${id}`),
      ),
    );
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, text("from the intruder"));
    a.transport.flush();
    b.transport.send(1, 0, text("to the intruder"));
    b.transport.flush();
    await waitFor(
      () => count(b, "handshake") >= 2 && count(a, "handshake") >= 1,
      "b refuses the intruder's client certificate and its server certificate",
    );
    expect(b.received).toEqual([]);
    expect(a.received).toEqual([]);
  });

  it("a certificate of the CA that names another address cannot claim this replica", async () => {
    // Replica 2 is dialed at 127.0.0.2; its impostor has a certificate of the CA for 127.0.0.3.
    const ports = await freePorts(2);
    const peers = [
      { host: "127.0.0.1", port: ports[0]! },
      { host: "127.0.0.2", port: ports[1]! },
    ];
    const a = makeNode("tcp", withTls(() => certs.material("replica-1"))(baseOptions(1, peers)));
    const impostor = makeNode(
      "tcp",
      withTls(() => certs.material("elsewhere"))(baseOptions(2, peers)),
    );
    nodes = [a, impostor];
    await Promise.all(nodes.map((n) => n.transport.start()));
    impostor.transport.send(1, 0, text("I am replica 2"));
    impostor.transport.flush();
    a.transport.send(2, 0, text("to replica 2"));
    a.transport.flush();
    // Inbound: TLS and the handshake pass, then its certificate does not name 127.0.0.2.
    // Outbound: tls.connect refuses the server certificate for the host dialed.
    await waitFor(() => count(a, "handshake") >= 2, "a refuses the impostor both ways");
    expect(a.received).toEqual([]);
    expect(impostor.received).toEqual([]);
  });

  it("a host without TLS holding half a TLS hello is cut off at the handshake timeout", async () => {
    nodes = await startCluster(
      "tcp",
      2,
      withTls((id) => certs.material(`replica-${id}`)),
    );
    const b = nodes[1]!;
    const ms = await closedAfter(b, Uint8Array.of(0x16, 0x03, 0x01, 0x00));
    expect(ms).toBeLessThan(HANDSHAKE_TIMEOUT_MS + SLACK_MS);
    await waitFor(() => count(b, "handshake") === 1, "counted");
  });
});

// ---- replays across a restart: plain TCP --------------------------------------------------------

/** The length-prefixed frames of a stream's bytes that follow its handshake. */
function splitFrames(bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    const length = bytes.readUInt32LE(offset);
    const end = offset + LENGTH_PREFIX_BYTES + length;
    expect(end).toBeLessThanOrEqual(bytes.byteLength);
    frames.push(bytes.subarray(offset, end));
    offset = end;
  }
  return frames;
}

/**
 * An on-path host between replica 1 (which dials it as replica 2) and replica 2's real address:
 * relays each connection both ways and records what replica 1 writes on it. With `inject` set,
 * it writes those bytes into the next connection right after replica 1's handshake messages
 * (HELLO and PROOF: `handshakeBytes`), ahead of replica 1's own frames.
 */
class RecordingRelay {
  /** What replica 1 wrote, one Buffer per connection, in order of connection. */
  readonly streams: Buffer[][] = [];
  inject: Buffer | null = null;
  private readonly server: net.Server;
  private readonly sockets: net.Socket[] = [];

  constructor(target: PeerAddress, handshakeBytes: number) {
    this.server = net.createServer((fromA) => {
      const toB = net.createConnection(target);
      const recorded: Buffer[] = [];
      this.streams.push(recorded);
      this.sockets.push(fromA, toB);
      let relayed = 0;
      for (const socket of [fromA, toB]) {
        socket.on("error", () => {});
        socket.once("close", () => {
          fromA.destroy();
          toB.destroy();
        });
      }
      toB.on("data", (chunk: Buffer) => fromA.write(chunk));
      fromA.on("data", (chunk: Buffer) => {
        recorded.push(Buffer.from(chunk));
        const inject = this.inject;
        const cut = handshakeBytes - relayed;
        relayed += chunk.byteLength;
        if (inject === null || cut < 0 || cut > chunk.byteLength) {
          toB.write(chunk);
          return;
        }
        this.inject = null;
        toB.write(chunk.subarray(0, cut));
        toB.write(inject);
        toB.write(chunk.subarray(cut));
      });
    });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, "127.0.0.1", resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe("tcp transport: frames recorded before a replica restarts (plain TCP)", () => {
  let nodes: Node[] = [];
  let relay: RecordingRelay | null = null;
  afterEach(async () => {
    await relay?.close();
    relay = null;
    await closeAll(nodes);
    nodes = [];
  });

  /** The distinct payloads `node` received, in order of first arrival. */
  function payloads(node: Node): string[] {
    return [...new Set(node.received.map((m) => string(m.payload)))];
  }

  /** Send `what` from `from` to `to` until it arrives (Paxos retransmits too). */
  async function deliver(from: Node, to: Node, what: string): Promise<void> {
    await waitFor(() => {
      if (to.received.some((m) => string(m.payload) === what)) return true;
      from.transport.send(to.options.id, 0, text(what));
      from.transport.flush();
      return false;
    }, what);
  }

  it("injected into a fresh handshake's stream after the receiver restarts: dropped 'stale-session', not delivered; live frames flow", async () => {
    const ports = await freePorts(3);
    const real = addresses(ports.slice(0, 2));
    const relayed = [real[0]!, { host: "127.0.0.1", port: ports[2]! }];
    relay = new RecordingRelay(real[1]!, HELLO_BYTES + PROOF_BYTES);
    await relay.listen(ports[2]!);
    const a = makeNode("tcp", baseOptions(1, relayed));
    const b = makeNode("tcp", baseOptions(2, real));
    nodes.push(a, b);
    await Promise.all([a.transport.start(), b.transport.start()]);
    // Replica 1 forwards client requests; the relay records them, in frames of their own.
    const requests = ["SET k 1", "INCR k", "INCR k", "DEL k"];
    for (const request of requests) {
      a.transport.send(2, 1, text(request));
      a.transport.flush();
      await waitFor(() => b.received.length > requests.indexOf(request), request);
    }
    const recorded = Buffer.concat(relay.streams[0]!).subarray(HELLO_BYTES + PROOF_BYTES);
    const frames = splitFrames(recorded);
    expect(frames.length).toBe(requests.length);
    // Replica 2 restarts: a new incarnation, an empty replay window. Replica 1 keeps its run.
    await b.transport.close();
    const b2 = makeNode("tcp", { ...b.options, incarnation: nextIncarnation() });
    nodes.push(b2);
    await b2.transport.start();
    // Replica 1 dials again through the relay, which injects the recording after its PROOF.
    relay.inject = recorded;
    await deliver(a, b2, "after the restart");
    expect(relay.inject).toBeNull();
    expect(payloads(b2)).toEqual(["after the restart"]);
    expect(count(b2, "stale-session")).toBe(frames.length);
    // Dropped without closing the connection: replica 1's later frames come on the same one.
    const connections = relay.streams.length;
    await deliver(a, b2, "and later");
    expect(relay.streams.length).toBe(connections);
    expect(payloads(b2)).toEqual(["after the restart", "and later"]);
  });

  it("frames queued for a receiver's previous run are not sent to its new run", async () => {
    const peers = addresses(await freePorts(2));
    const a = makeNode("tcp", baseOptions(1, peers));
    const b = makeNode("tcp", baseOptions(2, peers));
    nodes.push(a, b);
    await Promise.all([a.transport.start(), b.transport.start()]);
    // Replica 1 learns replica 2's incarnation from replica 2's handshake (its PROOF).
    await deliver(b, a, "hello from 2");
    await b.transport.close();
    // Replica 2 is down: this is sealed for its previous run and waits in replica 1's queue.
    a.transport.send(2, 1, text("INCR k, for the previous run"));
    a.transport.flush();
    const b2 = makeNode("tcp", { ...b.options, incarnation: nextIncarnation() });
    nodes.push(b2);
    await b2.transport.start();
    // Replica 1 redials (its queue is not empty); the handshake shows the new run.
    await waitFor(
      () => count(a, "stale-session") === 1 || b2.received.length > 0,
      "the queued frame discarded (or delivered)",
    );
    expect(payloads(b2)).toEqual([]);
    expect(a.drops.filter((d) => d.reason === "stale-session")).toEqual([
      { reason: "stale-session", from: "peer 2" },
    ]);
    a.transport.send(2, 1, text("for the new run"));
    a.transport.flush();
    await waitFor(() => b2.received.length === 1, "the frame sealed after the handshake");
    expect(payloads(b2)).toEqual(["for the new run"]);
    expect(b2.drops).toEqual([]);
  });
});
