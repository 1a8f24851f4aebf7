import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import {
  type FrameContext,
  REASSEMBLY_PARTIALS_PER_PEER_MAX,
  sealFragments,
  UdpTransport,
} from "../../src/transport/index.ts";
import {
  baseOptions,
  CLUSTER_ID,
  closeAll,
  forger,
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
  waitForSessions,
} from "./helpers.ts";

async function sendDatagrams(port: number, datagrams: Buffer[]): Promise<void> {
  const socket = dgram.createSocket("udp4");
  for (const d of datagrams) {
    await new Promise<void>((resolve) => socket.send(d, port, "127.0.0.1", () => resolve()));
  }
  socket.close();
}

/** Fragments as replica `from` would send them (`context`: forger(...), which knows the receiver). */
const fragmentsOf = (
  context: FrameContext,
  messageId: number,
  payload: Uint8Array,
  from = 1,
  to = 2,
) =>
  sealFragments(
    context,
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
    const before = a.transport.stats(); // the session frames sent at start
    a.transport.send(2, 0, big);
    a.transport.flush();
    await waitFor(() => b.received.length === 1, "1 MiB message");
    expect(sameBytes(b.received[0]!.payload, big)).toBe(true);
    const stats = a.transport.stats();
    expect(stats.datagramsSent - before.datagramsSent).toBe(17); // ceil(1 MiB / (65000 - 65))
    expect(stats.bytesSent - before.bytesSent).toBeLessThan(MIB + 17 * 65 + 1);
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
    const run = forger(1, b, nextIncarnation());
    const partials = REASSEMBLY_PARTIALS_PER_PEER_MAX + 2;
    // First fragment only of each message: none can complete.
    const firsts = Array.from(
      { length: partials },
      (_, id) => fragmentsOf(run, id, pattern(5000, id))[0]!,
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
    const fragments = fragmentsOf(forger(1, b, nextIncarnation()), 99, pattern(5000, 9));
    await sendDatagrams(b.address.port, fragments.slice(1)); // the first one is lost
    await waitFor(() => (b.transport as UdpTransport).partialMessageCount === 1, "a partial");
    await waitFor(() => b.transport.stats().dropped.reassembly === 1, "the timeout", 10_000);
    expect((b.transport as UdpTransport).partialMessageCount).toBe(0);
    expect(b.received).toEqual([]);
  });

  it("a fragment claiming more than messageBytesMax is dropped 'oversize' before allocation", async () => {
    nodes = await startCluster("udp", 2, (o) => ({ ...o, messageBytesMax: 4000 }));
    const b = nodes[1]!;
    const fragments = fragmentsOf(forger(1, b, nextIncarnation()), 1, pattern(5000, 1));
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

  it("messages sent before start() go out at a flush after it", async () => {
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
    await late.transport.start();
    nodes.push(late);
    // Sealed now, once the session frames have crossed, it echoes replica 2's incarnation.
    await waitForSessions([late, nodes[1]!]);
    late.transport.flush();
    await waitFor(() => nodes[1]!.received.length === 1, "the early message");
  });
});

/**
 * A UDP relay standing in for replica `to` in the sender's --peers: forwards every datagram to
 * the real address and keeps a copy, so a test can replay what went over the wire.
 */
async function relay(to: Node): Promise<{
  port: number;
  recorded: Buffer[];
  replay: (datagrams: Buffer[]) => Promise<void>;
  close: () => void;
}> {
  const socket = dgram.createSocket("udp4");
  const recorded: Buffer[] = [];
  socket.on("message", (datagram) => {
    recorded.push(Buffer.from(datagram));
    socket.send(datagram, to.address.port, to.address.host);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  return {
    port: socket.address().port,
    recorded,
    replay: (datagrams) => sendDatagrams(to.address.port, datagrams),
    close: () => socket.close(),
  };
}

describe("udp transport: replayed datagrams", () => {
  let nodes: Node[] = [];
  let close = () => {};
  afterEach(async () => {
    close();
    await closeAll(nodes);
    nodes = [];
  });

  /** Replicas 1 and 2; replica 1 sends to 2 through a relay that records. */
  async function relayed() {
    const [a, b] = (await startCluster("udp", 2)) as [Node, Node];
    await a.transport.close();
    const r = await relay(b);
    close = r.close;
    const peers = [a.address, { host: "127.0.0.1", port: r.port }];
    const a2 = makeNode("udp", { ...baseOptions(1, peers), peers });
    await a2.transport.start();
    nodes = [a2, b];
    await waitForSessions(nodes);
    return { a: a2, b, r };
  }

  const say = (from: Node, to: number, what: string) => {
    from.transport.send(to, 1, text(what));
    from.transport.flush();
  };

  it("a recorded datagram sent again is dropped 'replay', the message delivered once", async () => {
    const { a, b, r } = await relayed();
    say(a, 2, "INCR counter");
    await waitFor(() => b.received.length === 1, "the message");
    const carrying = r.recorded.filter((d) => d.includes(Buffer.from("INCR counter")));
    expect(carrying.length).toBe(1);
    // After more other datagrams than the replay window holds (paced: UDP drops what overruns a
    // socket buffer), and then right away.
    for (let round = 0; round < 45; round++) {
      for (let i = 0; i < 200; i++) say(a, 2, `other ${round * 200 + i}`);
      const expected = 1 + (round + 1) * 200;
      await waitFor(() => r.recorded.length >= expected, "the relay to pass them on");
    }
    let last = 0;
    await waitFor(() => {
      if (b.received.some((m) => string(m.payload).startsWith("last"))) return true;
      say(a, 2, `last ${last++}`);
      return false;
    }, "the traffic to arrive");
    expect(b.transport.stats().dropped.replay).toBe(0);
    await r.replay([carrying[0]!, carrying[0]!]);
    await waitFor(() => b.transport.stats().dropped.replay === 2, "two replay drops");
    expect(b.received.filter((m) => string(m.payload) === "INCR counter").length).toBe(1);
    expect(b.drops.every((d) => d.reason === "replay")).toBe(true);
  });

  it("after the receiver restarts, recorded datagrams are 'stale-session'; live traffic resumes", async () => {
    const { a, b, r } = await relayed();
    say(a, 2, "before the restart");
    await waitFor(() => b.received.length === 1, "the message");
    await b.transport.close();
    const b2 = makeNode("udp", baseOptions(2, b.options.peers)); // a new, higher incarnation
    nodes.push(b2);
    await b2.transport.start();
    await r.replay(r.recorded.slice());
    await waitFor(
      () => b2.transport.stats().dropped["stale-session"] >= 1,
      "the recording refused",
    );
    expect(b2.received).toEqual([]);
    await waitForSessions([a, b2]);
    say(a, 2, "after the restart");
    await waitFor(() => b2.received.length === 1, "live traffic");
    expect(string(b2.received[0]!.payload)).toBe("after the restart");
    expect(b2.transport.stats().dropped.replay).toBe(0);
  });

  it("after the sender restarts, its old run's datagrams are 'replay'", async () => {
    const { a, b, r } = await relayed();
    say(a, 2, "from the first run");
    await waitFor(() => b.received.length === 1, "the message");
    const recording = r.recorded.slice();
    await a.transport.close();
    const a2 = makeNode("udp", baseOptions(1, a.options.peers));
    nodes.push(a2);
    await a2.transport.start();
    await waitForSessions([a2, b]);
    await r.replay(recording);
    await waitFor(
      () => b.transport.stats().dropped.replay === recording.length,
      "every old datagram",
    );
    say(a2, 2, "from the second run");
    await waitFor(() => b.received.length === 2, "the new run's message");
  });
});
