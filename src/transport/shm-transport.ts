/**
 * The shared-memory transport: replicas that are threads of ONE process exchange messages through
 * SharedArrayBuffer rings, with no socket and no kernel on the path. The sender writes each
 * message straight into the receiver's inbox ring and rings its doorbell; the receiver's
 * acknowledgement travels back the same way in the opposite ring. This is the one-sided-write
 * model of RDMA in the APUS paper, run between threads. It is NOT RDMA: there is no NIC, no
 * registered memory and no remote host; real RDMA needs hardware and a native binding this project
 * does not have. It exists for co-located replicas and for measurement (protocol cost without
 * network-stack cost); `dist/thread-cluster.js --transport shm` uses it.
 *
 * Fabric: one FrameRing per ordered pair (i → j, i != j), written only by replica i's consensus
 * thread and read only by replica j's; one doorbell per receiving replica, shared by every ring
 * into it (frame-ring.ts and doorbell.ts give the handshakes: publish the record, then ring).
 *
 * Record (one ring frame's record): u8 channel | u8 part | [u32 LE totalBytes if part = FIRST] |
 * payload bytes.
 *   PART_WHOLE  the whole message.
 *   PART_FIRST  first fragment of a message larger than one record; totalBytes is its length.
 *   PART_MORE   next fragment of the message begun by the last FIRST on this ring.
 * A ring is a single ordered byte stream from one producer, and a message is queued whole or
 * dropped whole before its first fragment is written, so fragments of one message arrive
 * consecutively and complete: reassembly needs one partial message per inbound ring, bounded by
 * messageBytesMax. Fragmenting (rather than sizing rings for messageBytesMax, 256 MiB for
 * snapshots) keeps every ring small and a large message from needing an empty ring.
 *
 * No HMAC: sender and receiver are threads of the same process, and nothing untrusted can write
 * the rings. Records are still checked (part, lengths) and bad ones dropped and counted.
 */
import { ApusError, assert } from "../core/errors.ts";
import { REPLICA_ID_MAX } from "../core/membership.ts";
import { createDoorbell, DoorbellWaiter, SPIN_US_DEFAULT } from "../ring/doorbell.ts";
import {
  createFrameRing,
  FRAME_LENGTH_BYTES,
  FrameRingReader,
  type FrameRingShared,
  FrameRingWriter,
} from "../ring/frame-ring.ts";
import {
  type DropReason,
  MESSAGE_BYTES_MAX_LIMIT,
  PEERS_MAX,
  peerLabel,
  StatsCounter,
  type Transport,
  type TransportStats,
} from "./transport.ts";

/** Record offsets. */
const RECORD_CHANNEL = 0;
const RECORD_PART = 1;
const RECORD_HEADER_BYTES = 2;
/** FIRST records carry the message length after the header. */
const RECORD_TOTAL = 2;
const RECORD_FIRST_HEADER_BYTES = 6;

const PART_WHOLE = 0;
const PART_FIRST = 1;
const PART_MORE = 2;

/** Ring size the thread cluster uses; a message larger than a record is fragmented. */
export const SHM_RING_BYTES_DEFAULT = 2 * 1024 * 1024;
/** Smallest ring: a few records of SHM_RECORD_BYTES_MIN. */
export const SHM_RING_BYTES_MIN = 4 * 1024;
/** Largest ring (a fabric of N replicas holds N·(N-1) of them). */
export const SHM_RING_BYTES_MAX = 256 * 1024 * 1024;
/**
 * Largest record written, in bytes (header included): messages above it are fragmented. A
 * quarter of the ring at most, so a fragment never waits for a nearly empty ring.
 */
export const SHM_RECORD_BYTES_MAX = 64 * 1024;
const SHM_RECORD_BYTES_MIN = 256;
/** Bytes queued for one peer whose ring is full; beyond, send() drops "queue-full". */
export const SHM_SEND_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/** A full ring that took nothing on the last try is retried this often until its queue drains. */
export const SHM_RETRY_MS = 1;
/** Records taken from one inbound ring per turn, so timers and sockets of the thread still run. */
export const SHM_DRAIN_RECORDS_MAX = 256;

assert(SHM_RECORD_BYTES_MIN * 4 <= SHM_RING_BYTES_MIN - 4 * FRAME_LENGTH_BYTES);
assert(SHM_RECORD_BYTES_MAX > RECORD_FIRST_HEADER_BYTES);
assert(SHM_RING_BYTES_MAX <= 1 << 30);

/**
 * Plain data: passes through workerData, so every replica thread of the process opens the same
 * memory. Made once by createShmFabric.
 */
export interface ShmFabricShared {
  readonly replicaCount: number;
  readonly ringBytes: number;
  /** rings[(from - 1) * replicaCount + (to - 1)]; null on the diagonal (from = to). */
  readonly rings: readonly (FrameRingShared | null)[];
  /** bells[to - 1]: the doorbell of replica `to`, rung by every ring into it. */
  readonly bells: readonly SharedArrayBuffer[];
}

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

/** Rings and doorbells for `replicaCount` replicas, `ringBytes` per ordered pair. */
export function createShmFabric(replicaCount: number, ringBytes: number): ShmFabricShared {
  if (!Number.isInteger(replicaCount) || replicaCount < 1 || replicaCount > PEERS_MAX)
    throw invalid(`shm fabric: replicaCount ${replicaCount}; use 1 to ${PEERS_MAX}`);
  if (
    !Number.isInteger(ringBytes) ||
    ringBytes < SHM_RING_BYTES_MIN ||
    ringBytes > SHM_RING_BYTES_MAX
  )
    throw invalid(
      `shm fabric: ringBytes ${ringBytes}; use ${SHM_RING_BYTES_MIN} to ${SHM_RING_BYTES_MAX}`,
    );
  const bells = Array.from({ length: replicaCount }, () => createDoorbell());
  const rings: (FrameRingShared | null)[] = [];
  for (let from = 1; from <= replicaCount; from++) {
    for (let to = 1; to <= replicaCount; to++) {
      rings.push(from === to ? null : createFrameRing(ringBytes, bells[to - 1]!));
    }
  }
  return { replicaCount, ringBytes, rings, bells };
}

function ringOf(fabric: ShmFabricShared, from: number, to: number): FrameRingShared {
  const ring = fabric.rings[(from - 1) * fabric.replicaCount + (to - 1)];
  assert(ring !== undefined && ring !== null, `shm fabric has no ring ${from} → ${to}`);
  return ring;
}

export interface ShmTransportOptions {
  /** This replica, 1..fabric.replicaCount. */
  readonly id: number;
  readonly fabric: ShmFabricShared;
  /** Largest payload sent or accepted; a larger send() drops "oversize". */
  readonly messageBytesMax: number;
  /** Busy-poll of the empty inbound rings before parking, µs (default SPIN_US_DEFAULT). */
  readonly spinUs?: number;
  /** As TransportOptions.onDrop; `from` is always "peer N". */
  readonly onDrop?: (reason: DropReason, from: string) => void;
}

/** A message that did not fit its ring yet. Invariant: writtenBytes < payload.byteLength, or 0. */
interface QueuedMessage {
  readonly channel: number;
  /** Our own copy. */
  readonly payload: Uint8Array;
  /** Payload bytes already in the ring (fragments); 0 before the first record. */
  writtenBytes: number;
}

interface OutPeer {
  readonly id: number;
  readonly writer: FrameRingWriter;
  /** Oldest first from queueHead. Invariant: empty, or its head is the next record to write. */
  queue: QueuedMessage[];
  queueHead: number;
  /** Invariant: queuedBytes = sum of payload bytes of queue[queueHead..]. */
  queuedBytes: number;
  /** Records written since the last notify. */
  dirty: boolean;
}

interface InPeer {
  readonly id: number;
  readonly reader: FrameRingReader;
  /** The message being reassembled from FIRST/MORE records; null when none. */
  partial: { channel: number; payload: Uint8Array; receivedBytes: number } | null;
}

export class ShmTransport implements Transport {
  onMessage: (from: number, channel: number, payload: Uint8Array) => void = () => {
    throw new ApusError("ERR_ASSERTION", "ShmTransport.onMessage must be set before start()");
  };

  private readonly messageBytesMax: number;
  /** Largest record this transport writes (header included). */
  private readonly recordBytesMax: number;
  private readonly onDrop: ((reason: DropReason, from: string) => void) | undefined;
  /** outPeers[to - 1]; null for ourselves. */
  private readonly outPeers: (OutPeer | null)[] = [];
  private readonly inPeers: InPeer[] = [];
  private readonly waiter: DoorbellWaiter;
  private readonly counters = new StatsCounter();
  private readonly header = new Uint8Array(RECORD_FIRST_HEADER_BYTES);
  private readonly headerView = new DataView(this.header.buffer);
  /** At most one of the two retries is pending. */
  private retryTimer: NodeJS.Timeout | null = null;
  private retryImmediate: NodeJS.Immediate | null = null;
  private started = false;
  private closed = false;

  constructor(options: ShmTransportOptions) {
    const { id, fabric, messageBytesMax } = options;
    if (!Number.isInteger(id) || id < 1 || id > fabric.replicaCount)
      throw invalid(
        `shm transport: id ${id}, but the fabric joins ${fabric.replicaCount} replicas; ids run from 1 to ${fabric.replicaCount}`,
      );
    if (
      !Number.isInteger(messageBytesMax) ||
      messageBytesMax < 1 ||
      messageBytesMax > MESSAGE_BYTES_MAX_LIMIT
    )
      throw invalid(
        `messageBytesMax ${messageBytesMax} is out of range; use 1..${MESSAGE_BYTES_MAX_LIMIT}`,
      );
    this.messageBytesMax = messageBytesMax;
    this.onDrop = options.onDrop;
    this.recordBytesMax = Math.min(
      SHM_RECORD_BYTES_MAX,
      Math.floor(fabric.ringBytes / 4) - FRAME_LENGTH_BYTES,
    );
    assert(this.recordBytesMax >= SHM_RECORD_BYTES_MIN);
    for (let peer = 1; peer <= fabric.replicaCount; peer++) {
      if (peer === id) {
        this.outPeers.push(null);
        continue;
      }
      const writer = new FrameRingWriter(ringOf(fabric, id, peer));
      assert(writer.recordBytesMax >= this.recordBytesMax);
      this.outPeers.push({
        id: peer,
        writer,
        queue: [],
        queueHead: 0,
        queuedBytes: 0,
        dirty: false,
      });
      this.inPeers.push({
        id: peer,
        reader: new FrameRingReader(ringOf(fabric, peer, id)),
        partial: null,
      });
    }
    this.waiter = new DoorbellWaiter(fabric.bells[id - 1]!, {
      spinUs: options.spinUs ?? SPIN_US_DEFAULT,
    });
  }

  /** Nothing to bind: starts the receive loop. */
  async start(): Promise<void> {
    assert(!this.started && !this.closed, "ShmTransport.start() called twice");
    this.started = true;
    void this.receiveLoop();
  }

  /**
   * The fabric's rings are made for its replicas at start: a replica outside it cannot be
   * reached (membership changes are for replicas that run as processes, over UDP or TCP).
   */
  addPeer(id: number, _address: { host: string; port: number }): boolean {
    return this.hasPeer(id);
  }

  /** The rings stay (they are the fabric's); a removed replica is simply not sent to. */
  removePeer(_id: number): void {}

  hasPeer(id: number): boolean {
    return this.outPeers[id - 1] != null;
  }

  send(to: number, channel: number, payload: Uint8Array): void {
    const peer = this.outPeers[to - 1];
    if (Number.isInteger(to) && to > this.outPeers.length && to <= REPLICA_ID_MAX)
      return this.drop("unknown-peer", peerLabel(to));
    assert(
      Number.isInteger(to) && peer !== undefined && peer !== null,
      `send to ${to}: no such peer`,
    );
    assert(Number.isInteger(channel) && channel >= 0 && channel <= 255, "bad channel");
    if (this.closed) return this.drop("send-error", peerLabel(to));
    if (payload.byteLength > this.messageBytesMax) return this.drop("oversize", peerLabel(to));
    // Fast path: nothing waits ahead of it and it fits one record: no copy but the ring's own.
    const whole = RECORD_HEADER_BYTES + payload.byteLength <= this.recordBytesMax;
    if (whole && peer.queueHead === peer.queue.length && this.writeWhole(peer, channel, payload)) {
      this.counters.messagesSent++;
      return;
    }
    // One message larger than the queue limit (a snapshot) still goes when nothing waits ahead.
    if (peer.queuedBytes > 0 && peer.queuedBytes + payload.byteLength > SHM_SEND_QUEUE_BYTES_MAX)
      return this.drop("queue-full", peerLabel(to));
    this.counters.messagesSent++;
    peer.queue.push({ channel, payload: payload.slice(), writtenBytes: 0 });
    peer.queuedBytes += payload.byteLength;
    this.writeQueued(peer);
  }

  /** Retry full rings, then ring the doorbell of every peer written to since the last flush. */
  flush(): void {
    const recordsBefore = this.counters.datagramsSent;
    for (const peer of this.outPeers) {
      if (peer === null) continue;
      if (peer.queueHead < peer.queue.length) this.writeQueued(peer);
      if (peer.dirty) {
        peer.dirty = false;
        peer.writer.notify();
      }
    }
    if (this.outPeers.some((p) => p !== null && p.queueHead < p.queue.length))
      this.scheduleRetry(this.counters.datagramsSent > recordsBefore);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiter.close();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.retryImmediate !== null) clearImmediate(this.retryImmediate);
    this.retryImmediate = null;
    for (const peer of this.outPeers) {
      if (peer === null) continue;
      peer.queue = [];
      peer.queueHead = 0;
      peer.queuedBytes = 0;
    }
  }

  stats(): TransportStats {
    return this.counters.snapshot();
  }

  /** Payload bytes waiting for a full ring to `to` (tests, status). */
  queuedBytes(to: number): number {
    return this.outPeers[to - 1]?.queuedBytes ?? 0;
  }

  // ---- sending --------------------------------------------------------------------------------

  private writeWhole(peer: OutPeer, channel: number, payload: Uint8Array): boolean {
    this.header[RECORD_CHANNEL] = channel;
    this.header[RECORD_PART] = PART_WHOLE;
    return this.writeRecord(peer, this.header.subarray(0, RECORD_HEADER_BYTES), payload);
  }

  private writeRecord(peer: OutPeer, header: Uint8Array, body: Uint8Array): boolean {
    if (!peer.writer.tryWrite(header, body)) return false;
    peer.dirty = true;
    this.counters.datagramsSent++;
    this.counters.bytesSent += FRAME_LENGTH_BYTES + header.byteLength + body.byteLength;
    return true;
  }

  /** Write queued messages (whole or by fragments) until the ring is full or the queue empty. */
  private writeQueued(peer: OutPeer): void {
    while (peer.queueHead < peer.queue.length) {
      const message = peer.queue[peer.queueHead]!;
      if (!this.writeNextRecord(peer, message)) return;
      if (message.writtenBytes < message.payload.byteLength) continue;
      peer.queue[peer.queueHead] = undefined as unknown as QueuedMessage; // let it be collected
      peer.queueHead++;
      peer.queuedBytes -= message.payload.byteLength;
    }
    peer.queue = [];
    peer.queueHead = 0;
    assert(peer.queuedBytes === 0, "queuedBytes out of step with the queue");
  }

  /** The next record of `message`; false when the ring has no room for it now. */
  private writeNextRecord(peer: OutPeer, message: QueuedMessage): boolean {
    const { channel, payload } = message;
    this.header[RECORD_CHANNEL] = channel;
    if (message.writtenBytes === 0) {
      if (RECORD_HEADER_BYTES + payload.byteLength <= this.recordBytesMax) {
        if (!this.writeWhole(peer, channel, payload)) return false;
        message.writtenBytes = payload.byteLength; // complete, an empty one too
        return true;
      }
      const chunk = payload.subarray(0, this.recordBytesMax - RECORD_FIRST_HEADER_BYTES);
      this.header[RECORD_PART] = PART_FIRST;
      this.headerView.setUint32(RECORD_TOTAL, payload.byteLength, true);
      if (!this.writeRecord(peer, this.header.subarray(0, RECORD_FIRST_HEADER_BYTES), chunk))
        return false;
      message.writtenBytes = chunk.byteLength;
      return true;
    }
    const start = message.writtenBytes;
    const chunk = payload.subarray(start, start + this.recordBytesMax - RECORD_HEADER_BYTES);
    this.header[RECORD_PART] = PART_MORE;
    if (!this.writeRecord(peer, this.header.subarray(0, RECORD_HEADER_BYTES), chunk)) return false;
    message.writtenBytes += chunk.byteLength;
    return true;
  }

  /**
   * A ring is full and messages wait. The receiver frees space without telling us (there is no
   * doorbell back), so poll: on the next turn while the last try made progress (a receiver that
   * keeps up), else after SHM_RETRY_MS (one that does not).
   */
  private scheduleRetry(progress: boolean): void {
    if (this.retryTimer !== null || this.retryImmediate !== null || this.closed) return;
    if (progress) {
      this.retryImmediate = setImmediate(() => {
        this.retryImmediate = null;
        this.flush();
      });
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, SHM_RETRY_MS);
  }

  // ---- receiving ------------------------------------------------------------------------------

  private readonly hasInbound = (): boolean => this.inPeers.some((p) => p.reader.hasRecords);

  private async receiveLoop(): Promise<void> {
    while (await this.waiter.waitForWork(this.hasInbound)) {
      for (const peer of this.inPeers) {
        peer.reader.drain((record) => this.onRecord(peer, record), SHM_DRAIN_RECORDS_MAX);
      }
      // Let sockets and timers run before the next drain.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) return;
    }
  }

  private onRecord(peer: InPeer, record: Uint8Array): void {
    this.counters.bytesReceived += FRAME_LENGTH_BYTES + record.byteLength;
    if (this.closed) return;
    if (record.byteLength < RECORD_HEADER_BYTES) return this.drop("malformed", peerLabel(peer.id));
    const channel = record[RECORD_CHANNEL]!;
    switch (record[RECORD_PART]) {
      case PART_WHOLE:
        return this.onWhole(peer, channel, record.subarray(RECORD_HEADER_BYTES));
      case PART_FIRST:
        return this.onFirst(peer, channel, record);
      case PART_MORE:
        return this.onMore(peer, channel, record.subarray(RECORD_HEADER_BYTES));
      default:
        return this.drop("malformed", peerLabel(peer.id));
    }
  }

  private onWhole(peer: InPeer, channel: number, payload: Uint8Array): void {
    this.abandonPartial(peer);
    if (payload.byteLength > this.messageBytesMax) return this.drop("oversize", peerLabel(peer.id));
    this.deliver(peer.id, channel, payload);
  }

  private onFirst(peer: InPeer, channel: number, record: Uint8Array): void {
    this.abandonPartial(peer);
    if (record.byteLength < RECORD_FIRST_HEADER_BYTES)
      return this.drop("malformed", peerLabel(peer.id));
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    const totalBytes = view.getUint32(RECORD_TOTAL, true);
    const chunk = record.subarray(RECORD_FIRST_HEADER_BYTES);
    if (totalBytes > this.messageBytesMax) return this.drop("oversize", peerLabel(peer.id));
    if (chunk.byteLength >= totalBytes) return this.drop("malformed", peerLabel(peer.id));
    const payload = new Uint8Array(totalBytes);
    payload.set(chunk, 0);
    peer.partial = { channel, payload, receivedBytes: chunk.byteLength };
  }

  private onMore(peer: InPeer, channel: number, chunk: Uint8Array): void {
    const partial = peer.partial;
    if (partial === null) return this.drop("malformed", peerLabel(peer.id));
    const end = partial.receivedBytes + chunk.byteLength;
    if (channel !== partial.channel || end > partial.payload.byteLength) {
      peer.partial = null;
      return this.drop("reassembly", peerLabel(peer.id));
    }
    partial.payload.set(chunk, partial.receivedBytes);
    partial.receivedBytes = end;
    if (end < partial.payload.byteLength) return;
    peer.partial = null;
    this.deliver(peer.id, channel, partial.payload);
  }

  /** A WHOLE or FIRST record while a message was incomplete: the sender broke the stream. */
  private abandonPartial(peer: InPeer): void {
    if (peer.partial === null) return;
    peer.partial = null;
    this.drop("reassembly", peerLabel(peer.id));
  }

  private deliver(from: number, channel: number, payload: Uint8Array): void {
    this.counters.messagesReceived++;
    this.onMessage(from, channel, payload);
  }

  private drop(reason: DropReason, from: string): void {
    this.counters.dropped[reason]++;
    this.onDrop?.(reason, from);
  }
}
