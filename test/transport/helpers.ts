import dgram from "node:dgram";
import net from "node:net";
import { ApusError } from "../../src/core/errors.ts";
import {
  createFrameContext,
  createTransport,
  type DropReason,
  type FrameContext,
  type PeerAddress,
  type Transport,
  type TransportKind,
  type TransportOptions,
  UdpTransport,
} from "../../src/transport/index.ts";

export const SECRET = new TextEncoder().encode("test-secret-0123456789abcdef");
export const CLUSTER_ID = 0xc0ffee;
export const MIB = 1024 * 1024;

export interface Received {
  readonly from: number;
  readonly channel: number;
  readonly payload: Uint8Array;
}

export interface Node {
  readonly transport: Transport;
  /** The options it was made with (onDrop aside). */
  readonly options: TransportOptions;
  /** Where it binds: options.peers[options.id - 1]. */
  readonly address: PeerAddress;
  /** Copies of every delivered message, in order. */
  readonly received: Received[];
  readonly drops: { reason: DropReason; from: string }[];
}

/** Ports that were free a moment ago: bind port 0 for both UDP and TCP at once, then release. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const udp = dgram.createSocket("udp4");
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    udp.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (udpFree && !ports.includes(port)) ports.push(port);
  }
  return ports;
}

export function addresses(ports: readonly number[]): PeerAddress[] {
  return ports.map((port) => ({ host: "127.0.0.1", port }));
}

/**
 * Incarnations handed out in this test process: each transport made gets a higher one, as a
 * restarted replica would.
 */
let lastIncarnation = Date.now();
export function nextIncarnation(): number {
  lastIncarnation++;
  return lastIncarnation;
}

export function baseOptions(id: number, peers: readonly (PeerAddress | null)[]): TransportOptions {
  return {
    id,
    peers,
    clusterId: CLUSTER_ID,
    secrets: [SECRET],
    incarnation: nextIncarnation(),
    messageBytesMax: 16 * MIB,
  };
}

/**
 * A FrameContext of replica `id` in a cluster of 3 (addresses unused), with its own replay
 * state; `secondKeyFrames` lists the senders of frames admitted under the second key.
 */
export function frameContext(
  id: number,
  overrides: Partial<Pick<TransportOptions, "secrets" | "incarnation" | "messageBytesMax">> & {
    readonly echoRequired?: boolean;
  } = {},
): FrameContext & {
  readonly secondKeyFrames: number[];
  readonly counters: { framesSecondKey: number };
} {
  const secondKeyFrames: number[] = [];
  const counters = { framesSecondKey: 0 };
  const options: TransportOptions = {
    ...baseOptions(id, addresses([7001, 7002, 7003])),
    messageBytesMax: 1 << 20,
    ...overrides,
    onSecondKey: (from) => secondKeyFrames.push(from),
  };
  const context = createFrameContext(options, overrides.echoRequired ?? false, counters);
  return { ...context, secondKeyFrames, counters };
}

export function makeNode(kind: TransportKind, options: TransportOptions): Node {
  const drops: { reason: DropReason; from: string }[] = [];
  const transport = createTransport(kind, {
    ...options,
    onDrop: (reason, from) => drops.push({ reason, from }),
  });
  const received: Received[] = [];
  transport.onMessage = (from, channel, payload) => {
    received.push({ from, channel, payload: Uint8Array.from(payload) });
  };
  return { transport, options, address: options.peers[options.id - 1]!, received, drops };
}

/**
 * Start a cluster of `count` transports on fresh ports (retrying if a port was taken in the
 * meantime), and with UDP wait until each knows the others' incarnations (so that nothing the
 * test sends is dropped "stale-session"). `tweak` adjusts each replica's options.
 */
export async function startCluster(
  kind: TransportKind,
  count: number,
  tweak: (options: TransportOptions) => TransportOptions = (o) => o,
): Promise<Node[]> {
  for (let attempt = 0; ; attempt++) {
    const peers = addresses(await freePorts(count));
    const nodes = peers.map((_, index) => makeNode(kind, tweak(baseOptions(index + 1, peers))));
    try {
      await Promise.all(nodes.map((node) => node.transport.start()));
      await waitForSessions(nodes);
      return nodes;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.transport.close()));
      if (!(error instanceof ApusError) || attempt >= 3) throw error;
    }
  }
}

/**
 * UDP: wait until every node echoes every other's current incarnation (the session frames sent
 * at start have crossed). Other transports: nothing to wait for.
 */
export async function waitForSessions(nodes: readonly Node[]): Promise<void> {
  // A node can only learn a peer whose frames it can authenticate (the same cluster, and the
  // peer's signing secret among its own).
  const canRead = (node: Node, other: Node) =>
    node.options.clusterId === other.options.clusterId &&
    node.options.secrets.some((secret) => sameBytes(secret, other.options.secrets[0]!));
  const knows = (node: Node, other: Node) =>
    !(node.transport instanceof UdpTransport) ||
    !canRead(node, other) ||
    node.transport.peerIncarnation(other.options.id) === other.options.incarnation;
  await waitFor(
    () => nodes.every((node) => nodes.every((other) => other === node || knows(node, other))),
    "peer sessions",
  );
}

/**
 * A FrameContext that forges frames of replica `from` to `to` as a run of incarnation
 * `incarnation` that already knows `to`'s current one (so UDP's echo check passes).
 */
export function forger(from: number, to: Node, incarnation: number): FrameContext {
  const context = frameContext(from, { incarnation });
  context.sessions.admit(to.options.id, to.options.incarnation, 0, 0);
  return context;
}

export async function closeAll(nodes: readonly Node[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.transport.close()));
}

/** Poll until `condition` holds; generous timeout, no other timing assumption. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const string = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Deterministic bytes whose content depends on `seed` and position. */
export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}
