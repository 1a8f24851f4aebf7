import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import {
  FrameAuthenticator,
  REASSEMBLY_PARTIALS_PER_PEER_MAX,
  sealFragments,
  UdpTransport,
} from "../../src/transport/index.ts";
import {
  baseOptions,
  CLUSTER_ID,
  closeAll,
  MIB,
  makeNode,
  type Node,
  pattern,
  SECRET,
  sameBytes,
  startCluster,
  text,
  waitFor,
} from "./helpers.ts";

async function sendDatagrams(port: number, datagrams: Buffer[]): Promise<void> {
  const socket = dgram.createSocket("udp4");
  for (const d of datagrams) {
    await new Promise<void>((resolve) => socket.send(d, port, "127.0.0.1", () => resolve()));
  }
  socket.close();
}

const fragmentsOf = (messageId: number, payload: Uint8Array, from = 1, to = 2) =>
  sealFragments(
    new FrameAuthenticator(SECRET),
    { flags: 0, clusterId: CLUSTER_ID, from, to },
    1400,
    0,
    messageId,
    payload,
  );

describe("udp transport: fragmentation", () => {
  let nodes: Node[] = [];
  afterEach(async () => {
    await closeAll(nodes);
    nodes = [];
  });

  it("splits a 1 MiB message into datagrams of at most datagramBytesMax", async () => {
    nodes = await startCluster("udp", 2);
    const [a, b] = nodes as [Node, Node];
    const big = pattern(MIB, 3);
    a.transport.send(2, 0, big);
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "1 MiB message");
    expect(sameBytes(b.received[0]!.payload, big)).toBe(true);
    const stats = a.transport.stats();
    expect(stats.datagramsSent).toBe(17); // ceil(1 MiB / (65000 - 41))
    expect(stats.bytesSent).toBeLessThan(MIB + 17 * 41 + 1);
  });

  it("with datagramBytesMax 1400 (WAN), a 1 MiB message still gets through", async () => {
    nodes = await startCluster("udp", 2, (o) => ({ ...o, datagramBytesMax: 1400 }));
    const [a, b] = nodes as [Node, Node];
    const big = pattern(MIB, 4);
    a.transport.send(2, 1, big);
    a.transport.send(2, 0, text("small"));
    a.transport.flush();
    await waitFor(() => b.received.length === 2, "1 MiB message in 1400-byte datagrams");
    expect(sameBytes(b.received.find((m) => m.channel === 1)!.payload, big)).toBe(true);
    expect(a.transport.stats().datagramsSent).toBeGreaterThan(700);
  });

  it("evicts partial messages beyond the per-peer limit, counted 'reassembly'", async () => {
    nodes = await startCluster("udp", 2);
    const b = nodes[1]!;
    const partials = REASSEMBLY_PARTIALS_PER_PEER_MAX + 2;
    // First fragment only of each message: none can complete.
    const firsts = Array.from(
      { length: partials },
      (_, id) => fragmentsOf(id, pattern(5000, id))[0]!,
    );
    await sendDatagrams(b.address.port, firsts);
    await waitFor(() => b.transport.stats().dropped.reassembly === 2, "two evictions");
    expect((b.transport as UdpTransport).partialMessageCount).toBe(
      REASSEMBLY_PARTIALS_PER_PEER_MAX,
    );
    expect(b.received).toEqual([]);
    expect(b.drops.every((d) => d.reason === "reassembly" && d.from === "peer 1")).toBe(true);
  });

  it("drops a partial message that never completes after the reassembly timeout", async () => {
    nodes = await startCluster("udp", 2);
    const b = nodes[1]!;
    const fragments = fragmentsOf(99, pattern(5000, 9));
    await sendDatagrams(b.address.port, fragments.slice(1)); // the first one is lost
    await waitFor(() => (b.transport as UdpTransport).partialMessageCount === 1, "a partial");
    await waitFor(() => b.transport.stats().dropped.reassembly === 1, "the timeout", 10_000);
    expect((b.transport as UdpTransport).partialMessageCount).toBe(0);
    expect(b.received).toEqual([]);
  });

  it("a fragment claiming more than messageBytesMax is dropped 'oversize' before allocation", async () => {
    nodes = await startCluster("udp", 2, (o) => ({ ...o, messageBytesMax: 4000 }));
    const b = nodes[1]!;
    const fragments = fragmentsOf(1, pattern(5000, 1));
    await sendDatagrams(b.address.port, fragments);
    await waitFor(
      () => b.transport.stats().dropped.oversize === fragments.length,
      "oversize drops",
    );
    expect((b.transport as UdpTransport).partialMessageCount).toBe(0);
  });

  it("rejects a datagramBytesMax that cannot carry messageBytesMax in 65535 fragments", () => {
    const peers = [{ host: "127.0.0.1", port: 7001 }];
    expect(() => new UdpTransport({ ...baseOptions(1, peers), datagramBytesMax: 100 })).toThrow(
      /datagramBytesMax 100 is out of range/,
    );
    expect(
      () =>
        new UdpTransport({
          ...baseOptions(1, peers),
          messageBytesMax: 256 * MIB,
          datagramBytesMax: 1400,
        }),
    ).toThrow(/raise datagramBytesMax or lower messageBytesMax/);
  });

  it("messages sent before start() go out at the first flush after it", async () => {
    nodes = await startCluster("udp", 2);
    const late = makeNode(
      "udp",
      baseOptions(
        1,
        nodes.map((n) => n.address),
      ),
    );
    await nodes[0]!.transport.close();
    late.transport.send(2, 0, text("early"));
    late.transport.flush();
    await late.transport.start();
    nodes.push(late);
    late.transport.flush();
    await waitFor(() => nodes[1]!.received.length === 1, "the early message");
  });
});
