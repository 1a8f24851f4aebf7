import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import {
  createShmFabric,
  SHM_SEND_QUEUE_BYTES_MAX,
  ShmTransport,
} from "../../src/transport/shm-transport.ts";
import type { DropReason } from "../../src/transport/transport.ts";
import { makeMessage, type PeerData, type PeerReport } from "./shm-messages.ts";

const WORKER_URL = new URL("./shm-peer.worker.ts", import.meta.url);

interface Got {
  from: number;
  channel: number;
  payload: Uint8Array;
}

function pair(ringBytes: number): {
  a: ShmTransport;
  b: ShmTransport;
  got: Got[];
  drops: DropReason[];
} {
  const fabric = createShmFabric(2, ringBytes);
  const drops: DropReason[] = [];
  const a = new ShmTransport({
    id: 1,
    fabric,
    messageBytesMax: 4 << 20,
    onDrop: (r) => drops.push(r),
  });
  const b = new ShmTransport({ id: 2, fabric, messageBytesMax: 4 << 20, spinUs: 0 });
  const got: Got[] = [];
  // The view is valid only during the call: copy, as the consensus node does.
  b.onMessage = (from, channel, payload) => got.push({ from, channel, payload: payload.slice() });
  a.onMessage = () => {};
  return { a, b, got, drops };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe("ShmTransport across worker threads", () => {
  it("carries messages both ways among 3 replicas, in order per pair, fragments included", async () => {
    const fabric = createShmFabric(3, 16 * 1024); // small rings: queueing and fragments happen
    const messageCount = 1500;
    const workers = [1, 2, 3].map((id) => {
      const data: PeerData = { id, fabric, messageCount, sizes: [8, 100, 1000, 20_000, 0, 3000] };
      return new Worker(WORKER_URL, { workerData: data });
    });
    const reports = await Promise.all(
      workers.map((w) => once(w, "message").then(([m]) => m as PeerReport)),
    );
    for (const report of reports) {
      expect(report.errors).toEqual([]);
      expect(report.dropped).toBe(0);
      expect(report.messagesSent).toBe(2 * messageCount);
      expect(report.received.filter((_, i) => i + 1 !== report.id)).toEqual([
        messageCount,
        messageCount,
      ]);
    }
    // close() stops the receive loop and the retry timer: each thread then ends by itself.
    const exits = workers.map((w) => once(w, "exit"));
    for (const w of workers) w.postMessage("close");
    expect((await Promise.all(exits)).map(([code]) => code)).toEqual([0, 0, 0]);
  });
});

describe("ShmTransport in one thread", () => {
  it("queues what a full ring cannot take and delivers all of it, in order", async () => {
    const { a, b, got, drops } = pair(4096);
    for (let seq = 0; seq < 500; seq++) a.send(2, 1, makeMessage(1, seq, 200));
    a.flush();
    expect(a.queuedBytes(2)).toBeGreaterThan(0); // 100 KB cannot sit in a 4 KiB ring
    await b.start();
    await until(() => got.length === 500);
    expect(got.map((m) => new DataView(m.payload.buffer).getUint32(0, true))).toEqual(
      Array.from({ length: 500 }, (_, i) => i),
    );
    expect(got.every((m) => m.from === 1 && m.channel === 1)).toBe(true);
    expect(a.queuedBytes(2)).toBe(0);
    expect(drops).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it("reassembles a message far larger than the ring", async () => {
    const { a, b, got } = pair(4096);
    await b.start();
    const big = makeMessage(1, 7, 3 * 1024 * 1024);
    a.send(2, 0, big);
    a.send(2, 0, makeMessage(1, 8, 10));
    a.flush();
    await until(() => got.length === 2);
    // Buffer.equals: a deep toEqual of 3 MiB takes seconds.
    expect(Buffer.from(got[0]!.payload).equals(big)).toBe(true);
    expect(got[1]!.payload.byteLength).toBe(10);
    await Promise.all([a.close(), b.close()]);
  });

  it("drops beyond the queue limit (queue-full) and oversize sends, counting them", async () => {
    const { a, b, got, drops } = pair(4096);
    const mib = new Uint8Array(1 << 20);
    const fits = SHM_SEND_QUEUE_BYTES_MAX / mib.byteLength;
    for (let i = 0; i < fits + 2; i++) a.send(2, 0, mib);
    a.send(2, 0, new Uint8Array((4 << 20) + 1));
    expect(drops.filter((r) => r === "queue-full").length).toBeGreaterThanOrEqual(2);
    expect(drops.at(-1)).toBe("oversize");
    expect(a.stats().dropped["queue-full"]).toBeGreaterThanOrEqual(2);
    await Promise.all([a.close(), b.close()]);
    expect(got).toEqual([]);
  });

  it("after close(), sends drop as send-error and nothing is delivered", async () => {
    const { a, b, got, drops } = pair(4096);
    await b.start();
    await b.close();
    await a.close();
    a.send(2, 0, new Uint8Array(4));
    a.flush();
    expect(drops).toEqual(["send-error"]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(got).toEqual([]);
  });
});
