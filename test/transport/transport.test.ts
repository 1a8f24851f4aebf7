import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { LENGTH_PREFIX_BYTES, sealSingle, type TransportKind } from "../../src/transport/index.ts";
import {
  baseOptions,
  CLUSTER_ID,
  closeAll,
  forger,
  frameContext,
  freePorts,
  MIB,
  makeNode,
  type Node,
  nextIncarnation,
  pattern,
  SECRET,
  sameBytes,
  startCluster,
  string,
  text,
  waitFor,
  waitForSessions,
} from "./helpers.ts";
import { authenticatedSocket } from "./tcp-raw.ts";

/** Behaviour both transports share: the Transport contract. */
describe.each<TransportKind>(["udp", "tcp"])("%s transport", (kind) => {
  let nodes: Node[] = [];
  afterEach(async () => {
    await closeAll(nodes);
    nodes = [];
  });

  it("three transports exchange messages both ways on channels 0 and 1", async () => {
    nodes = await startCluster(kind, 3);
    for (const [index, node] of nodes.entries()) {
      const from = index + 1;
      for (let to = 1; to <= 3; to++) {
        if (to === from) continue;
        node.transport.send(to, 0, text(`core ${from}->${to}`));
        node.transport.send(to, 1, text(`client ${from}->${to}`));
      }
      node.transport.flush();
    }
    await waitFor(() => nodes.every((n) => n.received.length === 4), "4 messages at each replica");
    for (const [index, node] of nodes.entries()) {
      const to = index + 1;
      const seen = node.received.map((m) => `${m.from}:${m.channel}:${string(m.payload)}`).sort();
      const expected = [1, 2, 3]
        .filter((from) => from !== to)
        .flatMap((from) => [`${from}:0:core ${from}->${to}`, `${from}:1:client ${from}->${to}`])
        .sort();
      expect(seen).toEqual(expected);
      expect(node.drops).toEqual([]);
    }
    const stats = nodes[0]!.transport.stats();
    expect(stats.messagesSent).toBe(4);
    expect(stats.messagesReceived).toBe(4);
    expect(stats.bytesSent).toBeGreaterThan(0);
    expect(stats.bytesReceived).toBeGreaterThan(0);
  });

  it("coalesces many small messages to one peer into few datagrams/frames, in order", async () => {
    nodes = await startCluster(kind, 2);
    const [a, b] = nodes as [Node, Node];
    const count = 1000;
    const before = a.transport.stats().datagramsSent; // UDP: the session frame sent at start
    for (let i = 0; i < count; i++) a.transport.send(2, 0, text(`m${i}`));
    a.transport.flush();
    await waitFor(() => b.received.length === count, `${count} messages`);
    expect(b.received.map((m) => string(m.payload))).toEqual(
      Array.from({ length: count }, (_, i) => `m${i}`),
    );
    // ~10 bytes per record: all of them fit in one datagram (65000 B) or one frame (256 KiB).
    expect(a.transport.stats().datagramsSent - before).toBe(1);
    expect(a.transport.stats().messagesSent).toBe(count);
  });

  it("delivers a 1 MiB message intact", async () => {
    nodes = await startCluster(kind, 2);
    const [a, b] = nodes as [Node, Node];
    const big = pattern(MIB, 7);
    a.transport.send(2, 0, big);
    a.transport.send(2, 1, text("after"));
    a.transport.flush();
    await waitFor(() => b.received.length === 2, "1 MiB message and the one after");
    const delivered = b.received.find((m) => m.channel === 0)!;
    expect(delivered.payload.byteLength).toBe(MIB);
    expect(sameBytes(delivered.payload, big)).toBe(true);
    expect(b.drops).toEqual([]);
  });

  it("delivers a 16 MiB message when messageBytesMax allows it", async () => {
    nodes = await startCluster(kind, 2);
    const [a, b] = nodes as [Node, Node];
    const huge = pattern(16 * MIB, 11);
    a.transport.send(2, 0, huge);
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "16 MiB message", 30_000);
    expect(sameBytes(b.received[0]!.payload, huge)).toBe(true);
  });

  it("drops a send above messageBytesMax, counted 'oversize'", async () => {
    nodes = await startCluster(kind, 2, (o) => ({ ...o, messageBytesMax: 1000 }));
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, new Uint8Array(1001));
    a.transport.send(2, 0, text("fits"));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "the message that fits");
    expect(a.transport.stats().dropped.oversize).toBe(1);
    expect(a.drops).toEqual([{ reason: "oversize", from: "peer 2" }]);
  });

  // TCP refuses another secret or cluster at the connection handshake (tcp-handshake.ts), before
  // any frame: counted "handshake" there, "auth" or "cluster" on UDP.
  it("drops frames signed with another secret, counted 'auth' (UDP) or 'handshake' (TCP)", async () => {
    nodes = await startCluster(kind, 2, (o) =>
      o.id === 1 ? { ...o, secrets: [text("another-secret-0123456789")] } : o,
    );
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, text("forged"));
    a.transport.flush();
    const reason = kind === "tcp" ? "handshake" : "auth";
    await waitFor(() => b.transport.stats().dropped[reason] >= 1, `a ${reason} drop`);
    expect(b.received).toEqual([]);
    expect(b.drops[0]!.reason).toBe(reason);
  });

  it("drops frames of another cluster, counted 'cluster' (UDP) or 'handshake' (TCP)", async () => {
    nodes = await startCluster(kind, 2, (o) =>
      o.id === 1 ? { ...o, clusterId: CLUSTER_ID + 1 } : o,
    );
    const [a, b] = nodes as [Node, Node];
    a.transport.send(2, 0, text("wrong cluster"));
    a.transport.flush();
    const reason = kind === "tcp" ? "handshake" : "cluster";
    await waitFor(() => b.transport.stats().dropped[reason] >= 1, `a ${reason} drop`);
    expect(b.received).toEqual([]);
  });

  it("drops a correctly signed frame from an unknown replica id, counted 'unknown-peer'", async () => {
    nodes = await startCluster(kind, 2);
    const b = nodes[1]!;
    const forged = sealSingle(
      frameContext(1),
      { flags: 0, clusterId: CLUSTER_ID, from: 9, to: 2 },
      kind === "tcp" ? LENGTH_PREFIX_BYTES : 0,
      0,
      text("from nowhere"),
    );
    await sendRaw(kind, b, [forged]);
    await waitFor(() => b.transport.stats().dropped["unknown-peer"] >= 1, "an unknown-peer drop");
    expect(b.received).toEqual([]);
    // Service continues.
    nodes[0]!.transport.send(2, 0, text("still here"));
    nodes[0]!.transport.flush();
    await waitFor(() => b.received.length === 1, "a good message after the forged one");
  });

  it("follows the membership: a replica added later with a stable id is reached; a removed one is dropped both ways", async () => {
    nodes = await startCluster(kind, 2);
    const [a, b] = nodes as [Node, Node];
    // Replica 7 joins: it knows the cluster; the others learn its address from the membership.
    const [port] = await freePorts(1);
    const peers = [
      a.address,
      b.address,
      null,
      null,
      null,
      null,
      { host: "127.0.0.1", port: port! },
    ];
    const joiner = makeNode(kind, baseOptions(7, peers));
    nodes.push(joiner);
    await joiner.transport.start();
    joiner.transport.send(1, 0, text("before it is a member"));
    joiner.transport.flush();
    await waitFor(
      () => a.transport.stats().dropped["unknown-peer"] >= 1,
      "a non-member's frame dropped",
    );
    expect(a.received).toEqual([]);
    expect(a.transport.addPeer(7, joiner.address)).toBe(true);
    expect(a.transport.hasPeer(7)).toBe(true);
    await waitFor(() => {
      a.transport.send(7, 0, text("welcome"));
      a.transport.flush();
      joiner.transport.send(1, 0, text("thanks"));
      joiner.transport.flush();
      return joiner.received.length > 0 && a.received.length > 0;
    }, "messages both ways once added");
    expect(string(joiner.received[0]!.payload)).toBe("welcome");
    expect(a.received.every((m) => m.from === 7 && string(m.payload) === "thanks")).toBe(true);
    a.transport.removePeer(7);
    expect(a.transport.hasPeer(7)).toBe(false);
    const dropsBefore = a.transport.stats().dropped["unknown-peer"];
    a.transport.send(7, 0, text("gone"));
    expect(a.transport.stats().dropped["unknown-peer"]).toBe(dropsBefore + 1);
    // The rest of the cluster is untouched.
    a.transport.send(2, 0, text("still here"));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "a message to a member");
  });

  it("survives garbage and truncated input, counts it, and keeps serving", async () => {
    nodes = await startCluster(kind, 2);
    const [a, b] = nodes as [Node, Node];
    const good = sealSingle(
      frameContext(1),
      { flags: 0, clusterId: CLUSTER_ID, from: 1, to: 2 },
      0,
      0,
      text("x"),
    );
    const garbage = [
      Buffer.from([]),
      Buffer.from([1, 2, 3]),
      Buffer.from(pattern(100, 3)),
      good.subarray(0, good.byteLength - 1), // truncated: tag no longer matches
      good.subarray(0, 20), // shorter than any frame
    ];
    if (kind === "udp") {
      await sendRaw("udp", b, garbage);
      await waitFor(() => sumDrops(b) >= garbage.length - 1, "garbage counted");
    } else {
      // Each connection is closed at its first bad frame: one connection per piece of garbage.
      for (const piece of garbage.slice(1)) {
        const prefixed = Buffer.concat([u32(piece.byteLength), piece]);
        await sendRaw("tcp", b, [prefixed]);
      }
      await sendRaw("tcp", b, [u32(0xffff_ffff)]); // absurd claimed length
      await waitFor(() => sumDrops(b) >= garbage.length, "garbage counted");
      expect(b.transport.stats().dropped.oversize).toBe(1);
    }
    expect(b.received).toEqual([]);
    a.transport.send(2, 0, text("still here"));
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "a good message after the garbage");
  });

  it("key roll, round by round: each pair of neighbouring rounds talks both ways; second-key frames are counted; old and new alone do not talk", async () => {
    const OLD = SECRET;
    const NEW = text("the-new-cluster-secret-0123456789");
    // Replica i runs the secret file of round i: before, (1) old+new, (2) new+old, (3) after.
    const rounds = [[OLD], [OLD, NEW], [NEW, OLD], [NEW]];
    nodes = await startCluster(kind, 4, (o) => ({ ...o, secrets: rounds[o.id - 1]! }));
    const talks = async (from: Node, to: Node) => {
      const refused = () =>
        to.transport.stats().dropped.auth + to.transport.stats().dropped.handshake;
      const drops = refused();
      const what = `${from.options.id} to ${to.options.id}`;
      from.transport.send(to.options.id, 0, text(what));
      from.transport.flush();
      await waitFor(
        () => to.received.some((m) => string(m.payload) === what) || refused() > drops,
        what,
      );
      return to.received.some((m) => string(m.payload) === what);
    };
    const [before, first, second, after] = nodes as [Node, Node, Node, Node];
    for (const [a, b] of [
      [before, first],
      [first, second],
      [second, after],
    ] as const) {
      expect(await talks(a, b)).toBe(true);
      expect(await talks(b, a)).toBe(true);
    }
    // Round 2 reads round 1's frames (signed with the old key) under its second key.
    expect(second.transport.stats().framesSecondKey).toBeGreaterThanOrEqual(1);
    expect(after.transport.stats().framesSecondKey).toBe(0);
    expect(await talks(before, after)).toBe(false);
    expect(await talks(after, before)).toBe(false);
    expect(await talks(second, before)).toBe(false); // why round 1 comes first
  });

  it("a frame received twice is delivered once and dropped 'replay'; one of an older incarnation too", async () => {
    nodes = await startCluster(kind, 2);
    const b = nodes[1]!;
    const run = forger(1, b, nextIncarnation()); // replica 1, as if restarted
    const prefix = kind === "tcp" ? LENGTH_PREFIX_BYTES : 0;
    const header = { flags: 0, clusterId: CLUSTER_ID, from: 1, to: 2 };
    const once = sealSingle(run, header, prefix, 1, text("INCR counter"));
    await sendRaw(kind, b, [once, once]);
    await waitFor(() => b.transport.stats().dropped.replay === 1, "a replay drop");
    expect(b.received.map((m) => string(m.payload))).toEqual(["INCR counter"]);
    // Replica 1's own transport runs an older incarnation now: its frames are replays.
    nodes[0]!.transport.send(2, 0, text("from the older run"));
    nodes[0]!.transport.flush();
    await waitFor(() => b.transport.stats().dropped.replay >= 2, "an older incarnation dropped");
    expect(b.received.length).toBe(1);
  });

  it("close() releases its port: a new transport binds the same address", async () => {
    nodes = await startCluster(kind, 2);
    const { options } = nodes[1]!;
    await nodes[1]!.transport.close();
    const again = makeNode(kind, baseOptions(2, options.peers));
    nodes.push(again);
    await again.transport.start();
    await waitForSessions([nodes[0]!, again]);
    nodes[0]!.transport.send(2, 0, text("to the new one"));
    nodes[0]!.transport.flush();
    await waitFor(() => again.received.length === 1, "a message to the rebound transport");
  });

  it("start() on a taken address rejects with ERR_TRANSPORT naming it and the fix", async () => {
    nodes = await startCluster(kind, 2);
    const { options } = nodes[1]!;
    const clash = makeNode(kind, baseOptions(2, options.peers));
    const { port } = options.peers[1]!;
    await expect(clash.transport.start()).rejects.toMatchObject({
      code: "ERR_TRANSPORT",
      message: expect.stringMatching(
        new RegExp(`^cannot bind ${kind} 127\\.0\\.0\\.1:${port}: address in use`),
      ),
    });
    await clash.transport.close();
  });

  it("rejects invalid options naming the option", () => {
    const peers = [{ host: "127.0.0.1", port: 7001 }];
    expect(() => makeNode(kind, { ...baseOptions(2, peers) })).toThrow(
      /id is 2 but peers has no address for it/,
    );
    expect(() => makeNode(kind, { ...baseOptions(1, peers), secrets: [text("short")] })).toThrow(
      /secrets\[0\] is 5 bytes/,
    );
    expect(() => makeNode(kind, { ...baseOptions(1, peers), secrets: [] })).toThrow(
      /secrets lists 0 keys/,
    );
    const three = [SECRET, SECRET, SECRET];
    expect(() => makeNode(kind, { ...baseOptions(1, peers), secrets: three })).toThrow(
      /secrets lists 3 keys; give 1, or 2 during a key roll/,
    );
    expect(() => makeNode(kind, { ...baseOptions(1, peers), incarnation: 0 })).toThrow(
      /incarnation 0/,
    );
    expect(() => makeNode(kind, { ...baseOptions(1, peers), clusterId: -1 })).toThrow(/clusterId/);
  });
});

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0, 0);
  return bytes;
}

function sumDrops(node: Node): number {
  return Object.values(node.transport.stats().dropped).reduce((a, b) => a + b, 0);
}

/**
 * Send raw bytes to `node`: datagrams from a fresh socket, or one TCP connection that first
 * completes the connection handshake as replica 1 (frames are only read after it).
 */
async function sendRaw(kind: TransportKind, node: Node, pieces: Buffer[]): Promise<void> {
  const { port } = node.address;
  if (kind === "udp") {
    const socket = dgram.createSocket("udp4");
    for (const piece of pieces) {
      await new Promise<void>((resolve) => socket.send(piece, port, "127.0.0.1", () => resolve()));
    }
    socket.close();
    return;
  }
  const socket = await authenticatedSocket(node, 1);
  for (const piece of pieces) socket.write(piece);
  // The transport closes a connection that sends garbage; wait for that (or for our end).
  await new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.resume();
    setTimeout(() => {
      socket.destroy();
    }, 5000).unref();
  });
}
