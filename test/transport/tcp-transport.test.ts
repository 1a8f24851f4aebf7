import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { TCP_INBOUND_CONNECTIONS_MAX } from "../../src/transport/index.ts";
import {
  addresses,
  baseOptions,
  closeAll,
  freePorts,
  MIB,
  makeNode,
  type Node,
  startCluster,
  string,
  text,
  waitFor,
} from "./helpers.ts";

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

  it("idle strangers cannot lock out peers: the oldest unauthenticated connection is evicted", async () => {
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
