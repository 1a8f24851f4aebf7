/**
 * The consensus worker's side of the snapshot stream (src/transport/snapshot-stream.ts): which
 * core messages go over it instead of the peer transport, and what its events become in
 * /metrics, the log and /status.
 *
 * Every core message that carries a snapshot (InstallSnapshot, and a Promise or RecoverReply
 * with one) is streamed: the bytes of `encodeMessage(message)`, whatever fields the core puts in
 * it. The core resends an InstallSnapshot every retransmit interval while the peer has not
 * caught up; a resend of the same message (same type, ballot, snapshot slot and size, and for a
 * Promise or RecoverReply the same question) while its transfer runs, or shortly after it
 * completed, is not encoded again (SnapshotSender.covers).
 *
 * A newer message to a peer whose transfer is in progress replaces that transfer only when it
 * carries a newer snapshot (a higher snapshot slot) or, for a Promise or RecoverReply, answers
 * another question (ballot and fromSlot; for a RecoverReply also the nonce). Otherwise it is
 * dropped, counted in apus_snapshot_stream_coalesced_total, and the older one completes
 * (SnapshotSender.send says why replacing it would starve the receiver). Why the older one is
 * still a right answer:
 *   - an InstallSnapshot of the same slot carries the same state;
 *   - an older Promise for the same ballot and fromSlot is a promise the acceptor made and still
 *     keeps, with what it had accepted then: anything it accepted since is in this ballot (the
 *     new leader's own) or a higher one (which preempts the leader anyway); an older chosenSlot
 *     only tells the leader less;
 *   - an older RecoverReply to the same recovery (same nonce) was made after the Recover reached
 *     this replica, which is all the recovering replica relies on; it asks again for more.
 * An InstallSnapshot does not replace a Promise or RecoverReply of the same snapshot (a
 * recovering replica would drop it and wait for its answer), but they replace it.
 */
import type { Logger } from "pino";
import { Counter } from "prom-client";
import { type Message, MessageType } from "../../core/types.ts";
import { encodeMessage, HEADER_SIZE } from "../../core/wire.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import type { PeerTlsMaterial } from "../../transport/peer-tls.ts";
import {
  DirectoryPartials,
  MemoryPartials,
  type PartialStore,
} from "../../transport/snapshot-partials.ts";
import { type Delivery, SnapshotReceiver } from "../../transport/snapshot-receiver.ts";
import { SnapshotSender } from "../../transport/snapshot-sender.ts";
import {
  type StreamEvent,
  type StreamProgress,
  streamAddresses,
} from "../../transport/snapshot-stream.ts";
import type { PeerAddress } from "../../transport/transport.ts";
import type { ConsensusMetrics } from "./consensus-metrics.ts";

const MIB = 1024 * 1024;

export interface SnapshotStreamLinkOptions {
  readonly config: ReplicaConfig;
  readonly secrets: readonly Uint8Array[];
  /** The peer transport's incarnation (proved in the stream's handshake too). */
  readonly incarnation: number;
  readonly tls: PeerTlsMaterial | null;
  readonly metrics: ConsensusMetrics;
  readonly log: Logger;
}

/** Whether this replica runs the stream (see --snapshot-port-offset). */
export function snapshotStreamEnabled(config: ReplicaConfig): boolean {
  if (config.peers.length < 2 || config.transport === "shm") return false;
  return config.transport === "udp" || config.snapshotPortOffset > 0;
}

/** The snapshot a message carries, if any. */
function carriedSnapshot(message: Message): { slot: number; bytes: number } | null {
  switch (message.type) {
    case MessageType.InstallSnapshot:
    case MessageType.Promise:
    case MessageType.RecoverReply: {
      const snapshot = message.snapshot;
      return snapshot === null ? null : { slot: snapshot.slot, bytes: snapshot.data.byteLength };
    }
    default:
      return null;
  }
}

/** What makes two messages "the same" for the stream (see the comment at the top). */
function messageKey(message: Message, snapshot: { slot: number; bytes: number }): string {
  const base = `${message.type}/${message.ballot}/${snapshot.slot}/${snapshot.bytes}`;
  if (message.type === MessageType.Promise)
    return `${base}/${message.fromSlot}/${message.chosenSlot}`;
  if (message.type === MessageType.RecoverReply)
    return `${base}/${message.nonce}/${message.fromSlot}/${message.chosenSlot}`;
  return base;
}

/** What a Promise or RecoverReply answers; null for an InstallSnapshot (see the top). */
function messageQuestion(message: Message): string | null {
  if (message.type === MessageType.Promise)
    return `${message.type}/${message.ballot}/${message.fromSlot}`;
  if (message.type === MessageType.RecoverReply)
    return `${message.type}/${message.ballot}/${message.nonce}/${message.fromSlot}`;
  return null;
}

const COALESCED_METRIC = "apus_snapshot_stream_coalesced_total";

/** The coalesced counter on `metrics`' registry (registered once per registry). */
function coalescedCounter(metrics: ConsensusMetrics): Counter {
  const held = metrics.registry.getSingleMetric(COALESCED_METRIC);
  if (held !== undefined) return held as Counter;
  return new Counter({
    name: COALESCED_METRIC,
    help: "Snapshot messages not streamed because the transfer in progress to that peer carries the same snapshot and answers the same question (it completes instead of restarting)",
    registers: [metrics.registry],
  });
}

export class SnapshotStreamLink {
  /** Set before start(): a whole, checked transfer (see SnapshotReceiverOptions.deliver). */
  onMessage: (from: number, bytes: Buffer) => Delivery = () => "not-ready";
  private readonly sender: SnapshotSender;
  private readonly receiver: SnapshotReceiver;
  private readonly metrics: ConsensusMetrics;
  private readonly coalesced: Counter;
  private readonly log: Logger;
  private readonly portOffset: number;

  constructor(options: SnapshotStreamLinkOptions) {
    const { config } = options;
    this.metrics = options.metrics;
    this.coalesced = coalescedCounter(options.metrics);
    this.log = options.log;
    this.portOffset = config.snapshotPortOffset;
    const common = {
      id: config.id,
      peers: streamAddresses(config.peers, config.snapshotPortOffset),
      clusterId: config.clusterId,
      secrets: options.secrets,
      incarnation: options.incarnation,
      handshakeTimeoutMs: config.peerHandshakeTimeoutMs,
      stallTimeoutMs: config.snapshotStallTimeoutMs,
      onEvent: (event: StreamEvent) => this.onEvent(event),
      ...(options.tls === null ? {} : { tls: options.tls }),
    };
    const partials: PartialStore =
      config.durability === "fsync"
        ? new DirectoryPartials(config.dataDir)
        : new MemoryPartials(config.snapshotMemoryBytesMax);
    this.sender = new SnapshotSender({ ...common, chunkBytes: config.snapshotChunkBytes });
    this.receiver = new SnapshotReceiver({
      ...common,
      partials,
      deliver: (from, bytes) => this.onMessage(from, bytes),
    });
  }

  async start(): Promise<void> {
    await this.receiver.start();
  }

  /**
   * Take `message` if it carries a snapshot: stream it (or see that it is on its way already).
   * False: not ours, send it on the transport.
   */
  take(message: Message): boolean {
    const snapshot = carriedSnapshot(message);
    if (snapshot === null) return false;
    const key = messageKey(message, snapshot);
    if (this.sender.covers(message.to, key)) return true;
    const question = messageQuestion(message);
    if (this.sender.coalesces(message.to, snapshot.slot, question)) return true; // not encoded
    // The wire header (with the ballot) rides in the OFFER: the snapshot after it is what is
    // streamed and resumed, even when a leader sends it again under a new ballot.
    return this.sender.send(
      message.to,
      key,
      snapshot.slot,
      encodeMessage(message),
      HEADER_SIZE,
      question,
    );
  }

  /**
   * Follow the membership (as Transport.addPeer): replica `id` has peer address `address`; its
   * stream listens at the same port + --snapshot-port-offset.
   */
  addPeer(id: number, address: PeerAddress): void {
    const [stream] = streamAddresses([address], this.portOffset);
    this.sender.addPeer(id, stream!);
    this.receiver.addPeer(id, stream!);
  }

  /** `id` left the configuration (as Transport.removePeer). */
  removePeer(id: number): void {
    this.sender.removePeer(id);
    this.receiver.removePeer(id);
  }

  progress(): StreamProgress[] {
    return [...this.sender.progress(), ...this.receiver.progress()];
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.receiver.close();
  }

  private onEvent(event: StreamEvent): void {
    const m = this.metrics;
    switch (event.kind) {
      case "bytes":
        if (event.direction === "out") m.snapshotStreamBytesSent.inc(event.count);
        else m.snapshotStreamBytesReceived.inc(event.count);
        return;
      case "pruned":
        this.log.info(
          { count: event.count },
          `snapshot stream: threw away ${event.count} partial transfer(s) of replicas that are no peers now, or abandoned`,
        );
        return;
      case "coalesced":
        this.coalesced.inc();
        this.log.debug(
          { peer: event.peer, slot: event.slot },
          `snapshot message to replica ${event.peer} not streamed: the transfer in progress carries the same snapshot (slot ${event.slot})`,
        );
        return;
      case "started":
        this.log.info(
          {
            peer: event.peer,
            direction: event.direction,
            slot: event.slot,
            bytes: event.totalBytes,
          },
          `snapshot transfer ${event.direction === "out" ? "to" : "from"} replica ${event.peer} started: slot ${event.slot}, ${(event.totalBytes / MIB).toFixed(1)} MiB`,
        );
        return;
      case "resumed":
        m.snapshotStreamResumed.inc({ direction: event.direction });
        this.log.info(
          { peer: event.peer, direction: event.direction, slot: event.slot, offset: event.offset },
          `snapshot transfer ${event.direction === "out" ? "to" : "from"} replica ${event.peer} resumes at byte ${event.offset}`,
        );
        return;
      case "completed": {
        m.snapshotStreamCompleted.inc({ direction: event.direction });
        const seconds = Math.max(event.elapsedMs, 1) / 1000;
        const rate = event.movedBytes / MIB / seconds;
        this.log.info(
          {
            peer: event.peer,
            direction: event.direction,
            slot: event.slot,
            bytes: event.totalBytes,
            movedBytes: event.movedBytes,
            ms: Math.round(event.elapsedMs),
            mibPerS: Number(rate.toFixed(1)),
          },
          `snapshot transfer ${event.direction === "out" ? "to" : "from"} replica ${event.peer} completed: slot ${event.slot}, ${(event.totalBytes / MIB).toFixed(1)} MiB in ${seconds.toFixed(2)} s (${rate.toFixed(1)} MiB/s)`,
        );
        return;
      }
      case "failed": {
        m.snapshotStreamFailed.inc({ direction: event.direction, reason: event.reason });
        // A peer that is down or starting refuses connections every backoff: counted, not shouted.
        const quiet = event.reason === "connection" || event.reason === "not-ready";
        (quiet ? this.log.debug : this.log.warn).call(
          this.log,
          { peer: event.peer, direction: event.direction, slot: event.slot, reason: event.reason },
          `snapshot transfer ${event.direction === "out" ? "to" : "from"} replica ${event.peer}: ${event.reason}${event.detail === undefined ? "" : ` (${event.detail})`}`,
        );
        return;
      }
    }
  }
}
