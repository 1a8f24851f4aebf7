/**
 * The snapshot stream end to end over loopback TCP (src/transport/snapshot-sender.ts,
 * snapshot-receiver.ts, snapshot-partials.ts): real sockets, the real handshake; a transfer
 * arrives whole and checked, resumes after a break at the offset the receiver kept (in memory
 * and on disk, across a restart of the receiver), a newer transfer replaces an older one, and a
 * host with the wrong key, or forged frames on an authenticated connection, gets nothing in.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statfsSync, truncateSync, utimesSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FrameReader } from "../../src/transport/frame-reader.ts";
import { derivePeerKeys } from "../../src/transport/peer-keys.ts";
import {
  DirectoryPartials,
  MemoryPartials,
  PARTIALS_ABANDONED_MS,
  PARTIALS_DIR,
  type PartialStore,
} from "../../src/transport/snapshot-partials.ts";
import { SnapshotReceiver } from "../../src/transport/snapshot-receiver.ts";
import { SnapshotSender } from "../../src/transport/snapshot-sender.ts";
import {
  SNAPSHOT_RECONNECT_DELAY_MS_MAX,
  SNAPSHOT_UNAUTHENTICATED_MAX,
  SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX,
  type StreamEvent,
} from "../../src/transport/snapshot-stream.ts";
import {
  DoneOutcome,
  deriveStreamKeys,
  STREAM_FRAME_BYTES_MIN,
  type StreamFrame,
  StreamFrameType,
  StreamOpener,
  StreamSealer,
} from "../../src/transport/snapshot-stream-frame.ts";
import {
  HANDSHAKE_NONCE_BYTES,
  HandshakeInitiator,
  NO_CHANNEL_BINDING,
} from "../../src/transport/tcp-handshake.ts";
import { addresses, CLUSTER_ID, freePorts, SECRET } from "./helpers.ts";

const CHUNK = 16 * 1024;

interface Ends {
  readonly sender: SnapshotSender;
  receiver: SnapshotReceiver;
  readonly events: StreamEvent[];
  readonly delivered: { from: number; bytes: Buffer }[];
  readonly ports: number[];
  /** Deliveries to answer "not-ready" first (the settings agreement not done yet). */
  notReady: number;
}

const open: Ends[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const ends of open.splice(0)) {
    await ends.sender.close();
    await ends.receiver.close();
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function common(ports: readonly number[], id: number, events: StreamEvent[]) {
  return {
    id,
    peers: addresses(ports),
    clusterId: CLUSTER_ID,
    secrets: [SECRET],
    incarnation: 1,
    handshakeTimeoutMs: 2000,
    stallTimeoutMs: 500,
    onEvent: (event: StreamEvent) => events.push(event),
  };
}

function makeReceiver(ends: Omit<Ends, "receiver">, partials: PartialStore): SnapshotReceiver {
  return new SnapshotReceiver({
    ...common(ends.ports, 2, ends.events),
    partials,
    deliver: (from, bytes) => {
      if (ends.notReady > 0) {
        ends.notReady--;
        return "not-ready";
      }
      ends.delivered.push({ from, bytes });
      return "delivered";
    },
  });
}

async function makeEnds(partials: PartialStore): Promise<Ends> {
  const ports = await freePorts(2);
  const events: StreamEvent[] = [];
  const sender = new SnapshotSender({ ...common(ports, 1, events), chunkBytes: CHUNK });
  const ends = { sender, events, delivered: [], ports, notReady: 0 } as unknown as Ends;
  ends.receiver = makeReceiver(ends, partials);
  await ends.receiver.start();
  open.push(ends);
  return ends;
}

async function until(what: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const count = (events: readonly StreamEvent[], kind: StreamEvent["kind"], direction: string) =>
  events.filter((e) => e.kind === kind && "direction" in e && e.direction === direction).length;

describe("the snapshot stream", () => {
  it("moves a transfer whole, checked, and says so both ways", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const bytes = randomBytes(CHUNK * 10 + 123);
    ends.sender.send(2, "m1", 7, bytes, 0);
    await until(() => ends.delivered.length === 1);
    expect(ends.delivered[0]!.from).toBe(1);
    expect(ends.delivered[0]!.bytes.equals(bytes)).toBe(true);
    await until(() => count(ends.events, "completed", "out") === 1);
    expect(count(ends.events, "completed", "in")).toBe(1);
    expect(ends.sender.covers(2, "m1")).toBe(true);
    expect(ends.sender.covers(2, "m2")).toBe(false);
    expect(ends.sender.progress()).toEqual([]);
  });

  it("resumes at the offset the receiver kept after the connection breaks", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const bytes = randomBytes(CHUNK * 200);
    ends.sender.send(2, "m1", 9, bytes, 0);
    // Cut every connection once some chunks are in, keeping the listener and what was held.
    await until(() => ends.events.some((e) => e.kind === "bytes" && e.direction === "in"));
    const internals = ends.receiver as unknown as { connections: Set<{ raw: net.Socket }> };
    for (const connection of internals.connections) connection.raw.destroy();
    await until(() => ends.delivered.length === 1);
    expect(ends.delivered[0]!.bytes.equals(bytes)).toBe(true);
    expect(count(ends.events, "resumed", "out")).toBeGreaterThan(0);
    expect(count(ends.events, "resumed", "in")).toBeGreaterThan(0);
    const resumed = ends.events.find((e) => e.kind === "resumed" && e.direction === "in");
    expect(resumed).toMatchObject({ slot: 9 });
    expect((resumed as { offset: number }).offset).toBeGreaterThan(0);
  });

  it("resumes from the data directory after the receiver restarts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-partials-"));
    dirs.push(dir);
    const ends = await makeEnds(new DirectoryPartials(dir));
    const bytes = randomBytes(CHUNK * 200);
    ends.sender.send(2, "m1", 11, bytes, 0);
    await until(() => ends.events.some((e) => e.kind === "bytes" && e.direction === "in"));
    await ends.receiver.close();
    // A new process would open the same directory: what was written is still there.
    ends.receiver = makeReceiver(ends, new DirectoryPartials(dir));
    await ends.receiver.start();
    await until(() => ends.delivered.length === 1);
    expect(ends.delivered[0]!.bytes.equals(bytes)).toBe(true);
    const resumed = ends.events.filter((e) => e.kind === "resumed" && e.direction === "in");
    expect(resumed.length).toBeGreaterThan(0);
  });

  it("resumes what a restarted sender sends again under another head (a new ballot)", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const rest = randomBytes(CHUNK * 200);
    const first = Buffer.concat([Buffer.from("ballot-1...."), rest]);
    ends.sender.send(2, "m1", 5, first, 12);
    await until(() => ends.events.some((e) => e.kind === "bytes" && e.direction === "in"));
    await ends.sender.close(); // the sender's process is gone
    const events: StreamEvent[] = [];
    const restarted = new SnapshotSender({ ...common(ends.ports, 1, events), chunkBytes: CHUNK });
    try {
      const second = Buffer.concat([Buffer.from("ballot-2...."), rest]);
      restarted.send(2, "m2", 5, second, 12);
      await until(() => ends.delivered.length === 1);
      expect(ends.delivered[0]!.bytes.equals(second)).toBe(true);
      const resumed = events.find((e) => e.kind === "resumed");
      expect((resumed as { offset: number } | undefined)?.offset).toBeGreaterThan(0);
    } finally {
      await restarted.close();
    }
  });

  it("hands the core again a message it delivered last, offered again, without moving it again", async () => {
    // The core may have dropped it (an InstallSnapshot while it recovers): a repeat must reach it.
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const rest = randomBytes(CHUNK * 20);
    const first = Buffer.concat([Buffer.from("ballot-1...."), rest]);
    ends.sender.send(2, "m1", 4, first, 12);
    await until(() => count(ends.events, "completed", "out") === 1);
    const events: StreamEvent[] = [];
    const again = new SnapshotSender({ ...common(ends.ports, 1, events), chunkBytes: CHUNK });
    try {
      again.send(2, "m1", 4, first, 12);
      await until(() => count(events, "completed", "out") === 1);
      // Under another head (the same snapshot, a new ballot): handed over too.
      const second = Buffer.concat([Buffer.from("ballot-2...."), rest]);
      again.send(2, "m2", 4, second, 12);
      await until(() => count(events, "completed", "out") === 2);
      expect(events.filter((e) => e.kind === "bytes")).toEqual([]);
      expect(ends.delivered.map((d) => d.bytes.equals(first))).toEqual([true, true, false]);
      expect(ends.delivered[2]!.bytes.equals(second)).toBe(true);
    } finally {
      await again.close();
    }
  });

  it("keeps a whole transfer the node cannot take yet, and delivers it when offered again", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    ends.notReady = 2;
    const bytes = randomBytes(CHUNK * 5);
    ends.sender.send(2, "m1", 8, bytes, 12);
    await until(() => ends.delivered.length === 1);
    expect(ends.delivered[0]!.bytes.equals(bytes)).toBe(true);
    const notReady = ends.events.filter((e) => e.kind === "failed" && e.reason === "not-ready");
    expect(notReady.length).toBe(4); // both ends, twice
    // Moved once: the offers after "not ready" resumed at the end.
    const moved = ends.events.filter((e) => e.kind === "bytes" && e.direction === "in");
    expect(moved.reduce((sum, e) => sum + (e as { count: number }).count, 0)).toBe(
      bytes.byteLength - 12,
    );
  });

  it("backs off to its cap while the receiver is not ready, and does not count that as progress", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    ends.notReady = Number.MAX_SAFE_INTEGER;
    ends.sender.send(2, "m1", 8, randomBytes(CHUNK * 5), 12);
    const notReady = () =>
      ends.events.filter(
        (e) => e.kind === "failed" && e.direction === "out" && e.reason === "not-ready",
      ).length;
    const internals = ends.sender as unknown as {
      current: Map<number, { reconnectDelayMs: number; progressMs: number }>;
    };
    await until(() => notReady() === 1);
    const progressMs = internals.current.get(2)!.progressMs;
    // 50 ms doubling to the cap takes six offers.
    await until(() => notReady() === 7);
    const out = internals.current.get(2)!;
    expect(out.reconnectDelayMs).toBe(SNAPSHOT_RECONNECT_DELAY_MS_MAX);
    expect(out.progressMs).toBe(progressMs); // the give-up clock runs
    expect(ends.delivered).toEqual([]);
  });

  it("replaces a transfer in progress by a newer one to the same peer", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const older = randomBytes(CHUNK * 400);
    const newer = randomBytes(CHUNK * 3);
    ends.sender.send(2, "old", 1, older, 0);
    ends.sender.send(2, "new", 2, newer, 0);
    await until(() => ends.delivered.length === 1);
    expect(ends.delivered[0]!.bytes.equals(newer)).toBe(true);
    expect(
      ends.events.some(
        (e) => e.kind === "failed" && e.direction === "out" && e.reason === "replaced",
      ),
    ).toBe(true);
  });

  it("completes a transfer in progress instead of restarting it for a newer answer of the same snapshot", async () => {
    // A recovering replica asks again while the snapshot moves; each RecoverReply streams another
    // chosenSlot before the same snapshot: each would restart the transfer from 0.
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const snapshot = randomBytes(CHUNK * 200);
    const reply = (chosenSlot: number) =>
      Buffer.concat([Buffer.alloc(12), Buffer.from([chosenSlot, 0, 0, 0, 0, 0, 0, 0]), snapshot]);
    for (let chosenSlot = 1; chosenSlot <= 3; chosenSlot++)
      ends.sender.send(2, `reply-${chosenSlot}`, 9, reply(chosenSlot), 12, "recovery-1");
    // An InstallSnapshot of the same snapshot does not replace the answer either.
    ends.sender.send(2, "install", 9, Buffer.concat([Buffer.alloc(12), snapshot]), 12);
    await until(() => ends.delivered.length === 1);
    expect(ends.delivered[0]!.bytes.equals(reply(1))).toBe(true);
    expect(ends.events.filter((e) => e.kind === "coalesced").length).toBe(3);
    expect(ends.events.some((e) => e.kind === "failed" && e.reason === "replaced")).toBe(false);
    // Another question (a new recovery) replaces it; so does a newer snapshot.
    ends.sender.send(2, "a", 9, reply(4), 12, "recovery-1");
    ends.sender.send(2, "b", 9, reply(5), 12, "recovery-2");
    ends.sender.send(2, "c", 10, Buffer.concat([Buffer.alloc(12), snapshot]), 12);
    await until(() => ends.delivered.length === 2);
    expect(ends.delivered[1]!.bytes.equals(Buffer.concat([Buffer.alloc(12), snapshot]))).toBe(true);
    const replaced = ends.events.filter((e) => e.kind === "failed" && e.reason === "replaced");
    expect(replaced.length).toBe(2);
  });

  it("sends only to replicas it knows, and to one added later (the membership)", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    const events: StreamEvent[] = [];
    const lone = new SnapshotSender({
      ...common(ends.ports, 1, events),
      peers: [addresses(ends.ports)[0]!, null],
      chunkBytes: CHUNK,
    });
    try {
      expect(lone.send(2, "m", 1, randomBytes(10), 0)).toBe(false);
      lone.addPeer(2, addresses(ends.ports)[1]!);
      const bytes = randomBytes(CHUNK * 3);
      expect(lone.send(2, "m", 1, bytes, 0)).toBe(true);
      await until(() => ends.delivered.length === 1);
      expect(ends.delivered[0]!.bytes.equals(bytes)).toBe(true);
      lone.removePeer(2);
      expect(lone.send(2, "n", 2, bytes, 0)).toBe(false);
    } finally {
      await lone.close();
    }
  });

  it("refuses an offer larger than a memory store holds", async () => {
    const ends = await makeEnds(new MemoryPartials(CHUNK));
    ends.sender.send(2, "big", 3, randomBytes(CHUNK + 1), 0);
    await until(() =>
      ends.events.some(
        (e) => e.kind === "failed" && e.direction === "out" && e.reason === "refused",
      ),
    );
    expect(ends.delivered).toEqual([]);
    expect(ends.sender.progress()).toEqual([]);
  });

  it("refuses an offer larger than the free disk space less the reserve, and takes one that fits", async () => {
    // The WAL lives on that disk: a snapshot must never take its room.
    const dir = mkdtempSync(join(tmpdir(), "apus-partials-"));
    dirs.push(dir);
    const ends = await makeEnds(new DirectoryPartials(dir));
    const stats = statfsSync(dir);
    const free = stats.bavail * stats.bsize;
    const connected = await rawConnect(
      ends.ports[1]!,
      derivePeerKeys([SECRET], CLUSTER_ID).handshake,
    );
    const { socket, sealer, opener } = connected!;
    const reader = new FrameReader(opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    const digest = createHash("sha256").digest();
    socket.write(sealer.offer(3, free, digest, Buffer.alloc(12)));
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Done,
      outcome: DoneOutcome.Refused,
    });
    const refused = ends.events.find((e) => e.kind === "failed" && e.reason === "refused");
    expect((refused as { detail?: string }).detail).toMatch(/free space there/);
    socket.write(sealer.offer(3, 1024, digest, Buffer.alloc(12)));
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Resume,
      offset: 0,
    });
    socket.destroy();
  });

  it("evicts an unauthenticated connection of the source holding the most, not a lone peer's", async () => {
    const ports = await freePorts(2);
    const events: StreamEvent[] = [];
    const receiver = new SnapshotReceiver({
      ...common(ports, 2, events),
      handshakeTimeoutMs: 600_000,
      partials: new MemoryPartials(1 << 20),
      deliver: () => "delivered",
    });
    await receiver.start();
    const sockets: net.Socket[] = [];
    let closed = 0;
    const connect = async (localAddress: string) => {
      const socket = net.createConnection({ host: "127.0.0.1", port: ports[1]!, localAddress });
      socket.on("error", () => {});
      socket.once("close", () => closed++);
      sockets.push(socket);
      await new Promise((resolve) => socket.once("connect", resolve));
      return socket;
    };
    try {
      // A genuine peer's handshake in progress, then a crowd from several source addresses that
      // fills the table and one more.
      const genuine = await connect("127.0.0.1");
      let genuineClosed = false;
      genuine.once("close", () => (genuineClosed = true));
      const crowd = SNAPSHOT_UNAUTHENTICATED_MAX / SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX;
      for (let source = 2; source < 2 + crowd; source++)
        for (let i = 0; i < SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX; i++)
          await connect(`127.0.0.${source}`);
      await until(() => closed + receiver.connectionCount === sockets.length);
      expect(genuineClosed).toBe(false);
      expect(receiver.connectionCount).toBe(SNAPSHOT_UNAUTHENTICATED_MAX);
    } finally {
      for (const socket of sockets) socket.destroy();
      await receiver.close();
    }
  });

  it("counts a disk error on a partial and answers, never throwing it out of the receiver", async () => {
    // A store whose disk fails: discarding throws, and so does appending after the first chunk.
    class FailingDisk extends MemoryPartials {
      appends = 0;
      override append(from: number, data: Uint8Array): void {
        if (++this.appends > 1) throw new Error("EIO: i/o error, write");
        super.append(from, data);
      }
      override discard(): void {
        throw new Error("EIO: i/o error, unlink");
      }
    }
    const ends = await makeEnds(new FailingDisk(1 << 20));
    const keys = derivePeerKeys([SECRET], CLUSTER_ID);
    const { socket, sealer, opener } = (await rawConnect(ends.ports[1]!, keys.handshake))!;
    const reader = new FrameReader(opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    // Whole after one chunk, but not the offered digest: thrown away (which fails), answered.
    const wrong = createHash("sha256").update("other bytes").digest();
    socket.write(sealer.offer(3, 100, wrong, Buffer.alloc(12)));
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Resume,
      offset: 0,
    });
    socket.write(sealer.chunk(0, randomBytes(100)));
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Ack,
      offset: 100,
    });
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Done,
      outcome: DoneOutcome.DigestMismatch,
    });
    // The next transfer's append fails: refused (its discard fails too), answered.
    socket.write(sealer.offer(4, 100, wrong, Buffer.alloc(12)));
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Resume,
      offset: 0,
    });
    socket.write(sealer.chunk(0, randomBytes(100)));
    expect(await nextFrame(socket, opener, reader)).toEqual({
      type: StreamFrameType.Done,
      outcome: DoneOutcome.Refused,
    });
    socket.destroy();
    const store = ends.events.filter((e) => e.kind === "failed" && e.reason === "store");
    expect(store.length).toBe(2);
    expect((store[0] as { detail?: string }).detail).toMatch(/EIO.*check the disk/);
  }, 20_000);

  it("lets no host in without the key, and closes an authenticated connection on a forged frame", async () => {
    const ends = await makeEnds(new MemoryPartials(1 << 30));
    // The wrong cluster key: the handshake fails.
    const wrong = derivePeerKeys([Buffer.from("another-secret-0123456789abcdef")], CLUSTER_ID);
    const refused = await rawConnect(ends.ports[1]!, wrong.handshake);
    expect(refused).toBeNull();
    // The right key, then a frame signed under the wrong per-connection key, then a truncated one.
    const keys = derivePeerKeys([SECRET], CLUSTER_ID);
    for (const frameOf of [
      (sealer: StreamSealer) =>
        sealer.offer(1, 100, createHash("sha256").digest(), Buffer.alloc(0)),
      () => Buffer.from([10, 0, 0, 0, 1, 2, 3]),
    ]) {
      const connected = await rawConnect(ends.ports[1]!, keys.handshake);
      expect(connected).not.toBeNull();
      const { socket } = connected!;
      const forger = new StreamSealer(randomBytes(32));
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.write(frameOf(forger));
      socket.end();
      await closed;
    }
    await until(() =>
      ends.events.some((e) => e.kind === "failed" && e.direction === "in" && e.reason === "auth"),
    );
    expect(ends.delivered).toEqual([]);
    expect(ends.receiver.connectionCount).toBe(0);
  });
});

/** The next frame the receiver writes on a rawConnect socket (the reader keeps what follows). */
function nextFrame(
  socket: net.Socket,
  opener: StreamOpener,
  reader: FrameReader,
): Promise<StreamFrame> {
  return new Promise((resolve, reject) => {
    const take = () => {
      const bytes = reader.next();
      if (bytes === null) return false;
      socket.off("data", onData);
      if (typeof bytes === "string") reject(new Error(bytes));
      else {
        const frame = opener.open(bytes);
        if (typeof frame === "string") reject(new Error(frame));
        else resolve(frame);
      }
      return true;
    };
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      take();
    };
    if (!take()) socket.on("data", onData);
  });
}

/** Connect as replica 1 and run the handshake with `keys`; null when the receiver refuses. */
async function rawConnect(
  port: number,
  keys: readonly Uint8Array[],
): Promise<{ socket: net.Socket; sealer: StreamSealer; opener: StreamOpener } | null> {
  const socket = net.createConnection({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  const initiator = new HandshakeInitiator({
    keys,
    clusterId: CLUSTER_ID,
    id: 1,
    peerCount: 2,
    nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
    binding: NO_CHANNEL_BINDING,
    incarnation: 1,
    to: 2,
  });
  socket.write(initiator.hello());
  return new Promise((resolve) => {
    socket.once("close", () => resolve(null));
    const onData = (chunk: Buffer) => {
      const result = initiator.receive(chunk);
      if (result.state !== "done") {
        if (result.state === "failed") socket.destroy();
        return;
      }
      socket.off("data", onData); // the frames that follow are the caller's
      socket.removeAllListeners("close");
      socket.write(result.send!);
      const streamKeys = deriveStreamKeys(
        derivePeerKeys([SECRET], CLUSTER_ID).snapshots[0]!,
        initiator.transcriptDigest(),
        NO_CHANNEL_BINDING,
      );
      resolve({
        socket,
        sealer: new StreamSealer(streamKeys.initiator),
        opener: new StreamOpener(streamKeys.responder, 0),
      });
    };
    socket.on("data", onData);
  });
}

describe("partial transfers", () => {
  const identity = (from: number, digestByte: number, totalBytes = 100) => ({
    from,
    slot: 7,
    totalBytes,
    digest: Buffer.alloc(32, digestByte),
  });

  for (const kind of ["memory", "directory"] as const) {
    it(`keeps one transfer per peer and what was held of it (${kind})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "apus-partials-"));
      dirs.push(dir);
      const store: PartialStore =
        kind === "memory" ? new MemoryPartials(1000) : new DirectoryPartials(dir);
      expect(store.open(identity(1, 1))).toBe(0);
      store.append(1, Buffer.alloc(40, 0xaa));
      expect(store.open(identity(1, 1))).toBe(40);
      expect(store.open(identity(2, 1))).toBe(0); // another peer: its own
      expect(store.held(1)).toBe(40);
      // Another transfer from the same peer replaces it.
      expect(store.open(identity(1, 2))).toBe(0);
      expect(store.open(identity(1, 1))).toBe(0);
      store.append(1, Buffer.alloc(100, 0xbb));
      const whole = await store.read(1, Buffer.from("head"));
      expect(whole.byteLength).toBe(104);
      expect(whole.subarray(0, 4).toString()).toBe("head");
      expect(whole.subarray(4).equals(Buffer.alloc(100, 0xbb))).toBe(true);
      store.discard(1);
      expect(store.held(1)).toBe(0);
    });
  }

  it("takes on a full disk a transfer it holds whole, and counts what it held before a restart", () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-partials-"));
    dirs.push(dir);
    const stats = statfsSync(dir);
    // As large as all the free space: held whole (a sparse file), it needs no more.
    const whole = identity(1, 9, stats.bavail * stats.bsize);
    new DirectoryPartials(dir).open(whole);
    truncateSync(join(dir, PARTIALS_DIR, "from-1.bin"), whole.totalBytes);
    // A host with the memory to assemble it (the test's host may have less than its free disk).
    class LargeHost extends DirectoryPartials {
      override readonly assemblyBytesMax = Number.MAX_SAFE_INTEGER;
    }
    const restarted = new LargeHost(dir);
    expect(restarted.refusal(whole)).toBeNull();
    expect(restarted.refusal(identity(1, 8, whole.totalBytes))).toMatch(/free space there/);
  });

  it("throws away at start the partials of no peer and those abandoned long ago", async () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-partials-"));
    dirs.push(dir);
    const before = new DirectoryPartials(dir);
    for (const from of [1, 3, 5]) {
      before.open(identity(from, 5, 10));
      before.append(from, Buffer.alloc(6, 1));
    }
    // Replica 3's was last written two days ago; replica 5 is no peer (3 replicas).
    const old = (Date.now() - 2 * PARTIALS_ABANDONED_MS) / 1000;
    for (const ext of ["bin", "json"])
      utimesSync(join(dir, PARTIALS_DIR, `from-3.${ext}`), old, old);
    const ports = await freePorts(3);
    const events: StreamEvent[] = [];
    const after = new DirectoryPartials(dir);
    const receiver = new SnapshotReceiver({
      ...common(ports, 2, events),
      partials: after,
      deliver: () => "delivered",
    });
    await receiver.start();
    await receiver.close();
    expect(readdirSync(join(dir, PARTIALS_DIR)).sort()).toEqual(["from-1.bin", "from-1.json"]);
    expect(after.open(identity(1, 5, 10))).toBe(6);
    expect(events).toContainEqual({ kind: "pruned", direction: "in", count: 2 });
  });

  it("finds what it held after a restart, and starts again for another identity", () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-partials-"));
    dirs.push(dir);
    const before = new DirectoryPartials(dir);
    before.open(identity(3, 5, 10));
    before.append(3, Buffer.alloc(6, 1));
    expect(new DirectoryPartials(dir).open(identity(3, 5, 10))).toBe(6);
    // The same peer and digest but another total: another transfer, started from 0.
    expect(new DirectoryPartials(dir).open(identity(3, 5, 4))).toBe(0);
    expect(new DirectoryPartials(dir).open(identity(3, 5, 10))).toBe(0);
  });
});
