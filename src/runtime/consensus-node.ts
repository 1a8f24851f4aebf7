import { randomInt } from "node:crypto";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import { formatBallot } from "../core/ballot.ts";
import { ApusError } from "../core/errors.ts";
import { SeededPrng } from "../core/prng.ts";
import type { DurableState, Ready } from "../core/ready.ts";
import { Replica } from "../core/replica.ts";
import type { Message } from "../core/types.ts";
import { decodeMessage, encodeMessage } from "../core/wire.ts";
import { DoorbellWaiter } from "../ring/doorbell.ts";
import { FrameRingReader } from "../ring/frame-ring.ts";
import type { Storage } from "../storage/storage.ts";
import type { Transport } from "../transport/transport.ts";
import type { ReplicaConfig } from "./config.ts";
import type { ConsensusMetrics } from "./consensus-metrics.ts";
import { coreTiming } from "./core-timing.ts";
import { ReadyLoop } from "./ready-loop.ts";
import { ReplyRouter } from "./reply-router.ts";
import { expiredRequestError, type PendingRequest, RequestTable } from "./request-table.ts";
import { errorReply, StateMachine } from "./state-machine.ts";
import {
  type LatencySummary,
  LOG_FLOOR,
  LOG_HEADER_BYTES,
  LOG_INCARNATION,
  LOG_KIND,
  LOG_KIND_CLIENT,
  LOG_ORIGIN,
  LOG_REQUEST_ID,
  REQUEST_CONN_ID,
  REQUEST_PREFIX_BYTES,
  REQUEST_SEQ,
  type ReplicaStatus,
  type WorkerRings,
} from "./thread-contracts.ts";

/** Transport channels. */
export const CHANNEL_CORE = 0;
/** A follower's client request, sent to the leader to propose (the bytes of one log command). */
export const CHANNEL_FORWARD = 1;
/**
 * The leader's answer to a forward it did NOT propose (it no longer leads, or its queue is full):
 * the first LOG_HEADER_BYTES of the command. Since nothing was proposed, the origin may send the
 * request again to whoever leads next without any risk of running it twice.
 */
export const CHANNEL_FORWARD_REFUSED = 2;

const MESSAGE_TYPE_NAMES = [
  "unknown",
  "prepare",
  "promise",
  "nack",
  "accept",
  "accepted",
  "heartbeat",
  "heartbeat_reply",
  "chosen",
  "install_snapshot",
  "probe",
  "probe_reply",
  "recover",
  "recover_reply",
];

/** Request records taken from the rings per drain, so sockets and timers get their turn. */
const DRAIN_RECORDS_MAX = 4096;
/** A snapshot is also taken after this many slots, however small their commands. */
const SNAPSHOT_EVERY_SLOTS = 100_000;
/** A request proposed or forwarded this long ago and not applied is sent again (lost forward). */
const RESEND_AFTER_MS = 1000;
/** How often waiting requests are checked against their deadline. */
const EXPIRE_INTERVAL_MS = 50;

/** Nothing was ever persisted here (a first start, memory durability, a wiped directory). */
function hasNoDurableState(state: DurableState): boolean {
  return (
    state.promised === 0 &&
    state.accepted.length === 0 &&
    state.snapshot === null &&
    state.chosenSlot === 0
  );
}

export interface ConsensusNodeOptions {
  readonly config: ReplicaConfig;
  readonly incarnation: number;
  readonly rings: readonly WorkerRings[];
  readonly consensusBell: SharedArrayBuffer;
  readonly storage: Storage;
  /** Created first, so the transport's drop counter can feed it. */
  readonly metrics: ConsensusMetrics;
  readonly transport: Transport;
  readonly logger: Logger;
  /** Busy-poll of the request rings before parking, µs. */
  readonly ringSpinMicros: number;
}

/**
 * The consensus worker's work: owns the Paxos core, the peer transport, the WAL and the state
 * machine; takes client requests from the connection workers' rings, proposes them (or forwards
 * them to the leader), and routes each reply back to the ring of the worker that owns the client.
 */
export class ConsensusNode {
  readonly metrics: ConsensusMetrics;
  private readonly config: ReplicaConfig;
  private readonly core: Replica;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly machine: StateMachine;
  private readonly requests: RequestTable;
  private readonly replies: ReplyRouter;
  private readonly readers: FrameRingReader[];
  private readonly waiter: DoorbellWaiter;
  private readonly incarnation: number;
  private readonly tickMs: number;
  private readonly startedMs = performance.now();
  private ticks = 0;
  private timers: NodeJS.Timeout[] = [];
  private readonly readyLoop: ReadyLoop;
  private pumpScheduled = false;
  private stopping = false;
  private knownLeader = 0;
  private lastRole: string = "follower";
  /** The per-type counters, bound once: a label lookup per message costs more than the send. */
  private readonly sentByType: Counter.Internal[];
  /** Last slot applied to the state machine (the snapshot point if one is taken now). */
  private appliedSlot = 0;
  private bytesSinceSnapshot = 0;
  private slotsSinceSnapshot = 0;
  /** Started with no durable state in an existing cluster: the core recovers before it votes. */
  private readonly recoveringAtStart: boolean;

  constructor(options: ConsensusNodeOptions) {
    this.config = options.config;
    this.metrics = options.metrics;
    this.sentByType = MESSAGE_TYPE_NAMES.map((type) => this.metrics.messagesSent.labels({ type }));
    this.storage = options.storage;
    this.transport = options.transport;
    this.log = options.logger;
    this.incarnation = options.incarnation;
    const timing = coreTiming(this.config);
    this.tickMs = timing.tickMs;
    this.recoveringAtStart =
      hasNoDurableState(this.storage.recovered) && this.config.initialClusterState === "existing";
    this.core = new Replica(
      {
        id: this.config.id,
        replicaCount: this.config.peers.length,
        prng: new SeededPrng(randomInt(1, 2 ** 31)),
        electionTicks: timing.electionTicks,
        heartbeatTicks: timing.heartbeatTicks,
        retransmitTicks: timing.retransmitTicks,
        windowSlots: this.config.window,
        batchCommandsMax: this.config.batchMaxCommands,
        batchBytesMax: this.config.batchMaxBytes,
        recovering: this.recoveringAtStart,
      },
      this.storage.recovered,
    );
    this.machine = new StateMachine({
      replicaId: this.config.id,
      incarnation: this.incarnation,
      maxValueBytes: this.config.maxValueBytes,
      maxReplyBytes: this.config.maxReplyBytes,
      info: () => this.replicationInfo(),
    });
    this.requests = new RequestTable(this.config.pendingRequestsMax, this.config.requestTimeoutMs);
    this.replies = new ReplyRouter(options.rings);
    this.readers = options.rings.map((r) => new FrameRingReader(r.requests));
    this.waiter = new DoorbellWaiter(options.consensusBell, { spinMicros: options.ringSpinMicros });
    this.transport.onMessage = (from, channel, payload) =>
      this.onPeerMessage(from, channel, payload);
    this.readyLoop = new ReadyLoop(
      this.core,
      {
        send: (messages) => {
          this.send(messages);
          this.transport.flush();
        },
        apply: (ready) => this.apply(ready),
        append: (persist) => this.storage.append(persist),
        flush: () => {
          const started = performance.now();
          return this.storage.flush().then(() => {
            this.metrics.fsyncLatency.observe((performance.now() - started) / 1000);
          });
        },
        advanced: () => this.noticeLeaderChange(),
        fatal: (error) => this.fatal(error),
      },
      { durable: this.config.durability !== "memory" },
    );
    this.readyLoop.onFlushed = () => this.schedulePump();
  }

  async start(): Promise<void> {
    await this.transport.start();
    this.timers.push(setInterval(() => this.onTick(), this.tickMs));
    this.timers.push(setInterval(() => this.expireRequests(), EXPIRE_INTERVAL_MS));
    const recovered = this.storage.recovered;
    this.log.info(
      {
        promised: formatBallot(recovered.promised),
        votes: recovered.accepted.length,
        chosenSlot: recovered.chosenSlot,
        snapshotSlot: recovered.snapshot?.slot ?? 0,
      },
      "consensus worker started; replaying the durable log",
    );
    this.logStartingState();
    this.schedulePump(); // re-apply the recovered chosen prefix
    void this.ringLoop();
  }

  /** Say plainly whether this replica may vote at once, and what to do if that is wrong. */
  private logStartingState(): void {
    const others = this.config.peers.length - 1;
    if (this.recoveringAtStart) {
      this.log.warn(
        { role: "recovering", peersNeeded: others },
        `no durable state and --initial-cluster-state existing: recovering; this replica promises and accepts nothing until every other replica (${others}) has answered with its promises and votes`,
      );
    } else if (hasNoDurableState(this.storage.recovered) && others > 0) {
      this.log.info(
        { initialClusterState: "new" },
        "no durable state: joining as a member of a NEW cluster and voting at once; if this replica ran before (a memory-durability restart, a wiped or replaced data directory) stop it now and start it with --initial-cluster-state existing, or acknowledged writes can be lost",
      );
    }
  }

  // ---- inputs ---------------------------------------------------------------------------------

  private onTick(): void {
    this.ticks++;
    const before = this.core.retransmittedAccepts;
    this.core.tick();
    const resent = this.core.retransmittedAccepts - before;
    if (resent > 0) this.metrics.retransmits.inc(resent);
    this.schedulePump();
  }

  private onPeerMessage(from: number, channel: number, payload: Uint8Array): void {
    if (channel === CHANNEL_CORE) {
      // Decoded batches are views of the buffer: copy, since the transport may reuse it.
      const decoded = decodeMessage(payload.slice());
      if (!decoded.ok) {
        this.metrics.droppedPackets.inc({ reason: "decode" });
        return;
      }
      if (decoded.message.from !== from) {
        this.metrics.droppedPackets.inc({ reason: "sender-mismatch" });
        return;
      }
      this.stepCore(decoded.message);
      this.schedulePump();
      return;
    }
    if (channel === CHANNEL_FORWARD_REFUSED) {
      this.onForwardRefused(from, payload);
      return;
    }
    if (channel === CHANNEL_FORWARD) {
      this.onForward(from, payload.slice());
      return;
    }
    this.metrics.droppedPackets.inc({ reason: "channel" });
  }

  /**
   * One peer message into the core. Far-away slots are dropped inside the core (counted here); an
   * exception other than a broken core invariant is logged and counted, and the replica goes on:
   * one peer's message must not take down the consensus thread. A failed assertion is a bug in
   * the core whose state can no longer be trusted, so it still stops the replica.
   */
  private stepCore(message: Message): void {
    const dropped = this.core.droppedMessages;
    const far = this.core.droppedFarSlots;
    try {
      this.core.step(message);
    } catch (error) {
      if (error instanceof ApusError && error.code === "ERR_ASSERTION") throw error;
      this.metrics.droppedPackets.inc({ reason: "core-error" });
      this.log.error(
        { err: error, from: message.from, type: message.type },
        "a peer message failed; dropped",
      );
      return;
    }
    if (this.core.droppedMessages !== dropped)
      this.metrics.droppedPackets.inc({ reason: "core-refused" });
    if (this.core.droppedFarSlots !== far)
      this.metrics.droppedPackets.inc({ reason: "far-slot" }, this.core.droppedFarSlots - far);
  }

  /** A follower's client request: propose it if we lead, else refuse it so its origin sends it on. */
  private onForward(from: number, command: Uint8Array): void {
    if (command.byteLength < LOG_HEADER_BYTES || command[LOG_KIND] !== LOG_KIND_CLIENT) {
      this.metrics.droppedPackets.inc({ reason: "forward-malformed" });
      return;
    }
    if (this.core.role !== "leader") {
      this.metrics.droppedPackets.inc({ reason: "forward-not-leader" });
      this.transport.send(from, CHANNEL_FORWARD_REFUSED, command.subarray(0, LOG_HEADER_BYTES));
      return;
    }
    if (this.core.propose(command, Date.now()) !== "queued") {
      this.metrics.droppedPackets.inc({ reason: "forward-queue-full" });
      this.transport.send(from, CHANNEL_FORWARD_REFUSED, command.subarray(0, LOG_HEADER_BYTES));
      return;
    }
    this.metrics.proposals.inc();
    this.schedulePump();
  }

  /** Our forward was not proposed by `from`: wait for (another) leader and send it again. */
  private onForwardRefused(from: number, header: Uint8Array): void {
    if (header.byteLength !== LOG_HEADER_BYTES) {
      this.metrics.droppedPackets.inc({ reason: "forward-refusal-malformed" });
      return;
    }
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    if (
      header[LOG_ORIGIN] !== this.config.id ||
      view.getUint32(LOG_INCARNATION, true) !== this.incarnation
    )
      return; // an earlier run's request: nobody waits for it
    const request = this.requests.get(Number(view.getBigUint64(LOG_REQUEST_ID, true)));
    if (request === undefined || request.state !== "sent" || request.command === null) return;
    this.requests.markWaiting(request, from);
    this.metrics.forwardRefused.inc();
    this.dispatch(request);
  }

  /** Wait for request records (spin briefly, then park on the doorbell), take them, repeat. */
  private async ringLoop(): Promise<void> {
    const hasWork = () => this.readers.some((r) => r.hasRecords);
    while (!this.stopping) {
      if (!(await this.waiter.waitForWork(hasWork))) return;
      let taken = 0;
      for (let worker = 0; worker < this.readers.length; worker++) {
        taken += this.readers[worker]!.drain(
          (record) => this.onRequestRecord(worker, record),
          DRAIN_RECORDS_MAX,
        );
      }
      if (taken > 0) this.schedulePump();
      // Let sockets and timers run before the next drain.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private onRequestRecord(worker: number, record: Uint8Array): void {
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    const connId = view.getUint32(REQUEST_CONN_ID, true);
    const seq = view.getUint32(REQUEST_SEQ, true);
    // The log command is the record less its ring prefix: one copy, out of the ring.
    const command = record.slice(REQUEST_PREFIX_BYTES);
    const commandCount =
      command.byteLength >= LOG_HEADER_BYTES + 4
        ? new DataView(command.buffer).getUint32(LOG_HEADER_BYTES, true)
        : 0;
    if (this.stopping) {
      this.replies.send(
        worker,
        connId,
        seq,
        errorReply("SHUTDOWN replica is shutting down", commandCount),
      );
      return;
    }
    if (this.requests.full) {
      this.metrics.requestErrors.inc({ reason: "pending-full" });
      this.replies.send(
        worker,
        connId,
        seq,
        errorReply(
          `BUSY ${this.requests.size} requests already wait for consensus here (--max-pending); retry later`,
          commandCount,
        ),
      );
      return;
    }
    const request = this.requests.add(
      worker,
      connId,
      seq,
      commandCount,
      command,
      performance.now(),
    );
    const header = new DataView(command.buffer);
    header.setUint8(LOG_KIND, LOG_KIND_CLIENT);
    header.setUint8(LOG_ORIGIN, this.config.id);
    header.setUint32(LOG_INCARNATION, this.incarnation, true);
    header.setBigUint64(LOG_REQUEST_ID, BigInt(request.requestId), true);
    // Never written again once proposed: the core keeps this very buffer for retransmits.
    header.setBigUint64(LOG_FLOOR, BigInt(this.requests.floor()), true);
    this.dispatch(request);
  }

  /** Propose at the leader, forward from a follower, or keep waiting while no leader is known. */
  private dispatch(request: PendingRequest): void {
    const command = request.command;
    if (command === null) return;
    const role = this.core.role;
    if (role === "leader") {
      const result = this.core.propose(command, Date.now());
      if (result === "queue-full") return; // stays waiting; retried when the queue drains or times out
      if (result === "queued") {
        // The bytes stay with the request: after a leader change it is sent again.
        this.requests.markSent(request, true);
        request.sentMs = performance.now();
        this.metrics.proposals.inc();
      }
      return;
    }
    const leader = this.core.knownLeader;
    // Not back to a replica that just refused it while we still take it for the leader.
    if (leader !== 0 && role === "follower" && leader !== request.refusedBy) {
      this.transport.send(leader, CHANNEL_FORWARD, command);
      // The bytes stay with the request: a refusal or a leader change sends them again.
      this.requests.markSent(request, true);
      request.sentMs = performance.now();
      this.metrics.forwarded.inc();
    }
  }

  /**
   * Send a request again that was proposed or forwarded but not applied: after a leader change
   * (the old leader's copy may never be chosen) or when a forward may have been lost. Safe: the
   * client sessions of the state machine run each request id once, whichever copy comes first.
   */
  private resend(request: PendingRequest): void {
    const command = request.command;
    if (command === null) return;
    const leader = this.core.knownLeader;
    if (leader === this.config.id) {
      if (this.core.propose(command, Date.now()) !== "queued") return;
    } else if (leader !== 0 && this.core.role === "follower") {
      this.transport.send(leader, CHANNEL_FORWARD, command);
    } else {
      return;
    }
    request.sentMs = performance.now();
    this.metrics.resent.inc();
  }

  // ---- the Ready loop -------------------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Hand out everything the core has ready (src/runtime/ready-loop.ts), then flush replies. */
  private pump(): void {
    if (this.stopping) return; // shutdown() finishes the persist in flight and closes the log
    this.noticeLeaderChange();
    this.readyLoop.pump();
    if (this.replies.flush()) setTimeout(() => this.schedulePump(), 1);
    this.transport.flush();
  }

  /** Install the snapshot and apply the chosen entries of `ready`, in slot order. */
  private apply(ready: Ready): void {
    let foreignApplied = false;
    if (ready.snapshot !== null) {
      this.machine.install(ready.snapshot);
      this.appliedSlot = ready.snapshot.slot;
      this.bytesSinceSnapshot = 0;
      this.slotsSinceSnapshot = 0;
    }
    const skippedBefore = this.machine.duplicates + this.machine.malformed;
    for (const entry of ready.chosen) {
      const applied = this.machine.applyBatch(entry.batch, (requestId, reply) =>
        this.onOwnReply(requestId, reply),
      );
      this.appliedSlot = entry.slot;
      if (applied.foreign) foreignApplied = true;
      this.bytesSinceSnapshot += applied.bytes;
      this.slotsSinceSnapshot++;
      this.metrics.chosenSlots.inc();
      this.metrics.appliedCommands.inc(applied.commands);
      if (applied.requests > 0) this.metrics.batchSize.observe(applied.requests);
    }
    const skipped = this.machine.duplicates + this.machine.malformed - skippedBefore;
    if (skipped > 0) this.metrics.skippedRequests.inc(skipped);
    if (ready.chosen.length > 0) this.replies.flush();
    // A follower waits to answer its client until it learns this commit: tell it now.
    if (foreignApplied && this.core.role === "leader") {
      this.core.announceCommit();
      this.schedulePump();
    }
    this.maybeSnapshot();
  }

  /**
   * Log compaction: once enough was applied, the store's image at the applied slot replaces the
   * log up to it (the WAL writes it to its own file and drops the segments it covers). A peer
   * that falls behind it is sent the snapshot. Serializing is synchronous: it pauses this thread
   * for a time proportional to the store (see the README).
   */
  private maybeSnapshot(): void {
    if (
      this.bytesSinceSnapshot < this.config.snapshotEveryBytes &&
      this.slotsSinceSnapshot < SNAPSHOT_EVERY_SLOTS
    )
      return;
    const started = performance.now();
    const data = this.machine.snapshot();
    this.core.compact({ slot: this.appliedSlot, data });
    this.log.info(
      {
        slot: this.appliedSlot,
        bytes: data.byteLength,
        keys: this.machine.keyCount,
        ms: Math.round(performance.now() - started),
      },
      "snapshot taken; the log before it is dropped",
    );
    this.metrics.snapshots.inc();
    this.bytesSinceSnapshot = 0;
    this.slotsSinceSnapshot = 0;
  }

  /** `reply` is null when the log command could not be decoded (never expected: our own bytes). */
  private onOwnReply(requestId: number, reply: Uint8Array | null): void {
    const request = this.requests.take(requestId);
    if (request === undefined) return; // answered already (timed out) or an earlier run's
    if (reply === null) {
      this.replies.send(
        request.worker,
        request.connId,
        request.seq,
        errorReply("ERR malformed request in the log", request.commandCount),
      );
      return;
    }
    const micros = (performance.now() - request.takenMs) * 1000;
    if (this.core.role === "leader") this.metrics.observeConsensus(micros);
    this.metrics.requestLatency.observe(micros / 1e6);
    this.replies.send(request.worker, request.connId, request.seq, reply);
  }

  private send(messages: readonly Message[]): void {
    for (const message of messages) {
      this.transport.send(message.to, CHANNEL_CORE, encodeMessage(message));
      this.sentByType[message.type]?.inc();
    }
  }

  /** Log leadership changes and release requests that waited for a leader. */
  private noticeLeaderChange(): void {
    const leader = this.core.knownLeader;
    const role = this.core.role;
    if (role !== this.lastRole) {
      this.metrics.role.reset();
      this.metrics.role.set({ role }, 1);
      if (this.lastRole === "recovering") {
        const s = this.core.status();
        this.log.info(
          { promised: formatBallot(s.promised), chosenSlot: s.chosenSlot, lastSlot: s.lastSlot },
          "recovered from every other replica's promises and votes; voting again",
        );
      }
      if (role === "leader") {
        this.metrics.becameLeader.inc();
        this.log.info({ ballot: formatBallot(this.core.status().ballot) }, "became leader");
      } else if (this.lastRole === "leader") {
        this.log.warn({ role }, "stepped down as leader");
      }
      this.lastRole = role;
    }
    if (leader !== this.knownLeader) {
      // A refusal was about the old leader; a new one may take the request.
      for (const request of this.requests.waiting()) request.refusedBy = 0;
      // What the old leader took may never be chosen: the new one gets it too.
      if (leader !== 0) for (const request of this.requests.sent()) this.resend(request);
      if (leader !== 0) {
        this.metrics.elections.inc();
        this.log.info(
          { leader },
          leader === this.config.id ? "leading the cluster" : "following leader",
        );
      }
      this.knownLeader = leader;
    }
    if (leader !== 0) for (const request of this.requests.waiting()) this.dispatch(request);
  }

  private expireRequests(): void {
    const now = performance.now();
    // A forward can be lost (UDP) with no leader change: send what waits too long again.
    for (const request of this.requests.sent()) {
      if (now - request.takenMs < RESEND_AFTER_MS) break; // ids are in arrival order: the rest are younger
      if (now - request.sentMs >= RESEND_AFTER_MS) this.resend(request);
    }
    for (const request of this.requests.expire(now)) {
      const expired = expiredRequestError(request, this.config.requestTimeoutMs, this.core.role);
      this.metrics.requestErrors.inc({ reason: expired.reason });
      const text = expired.text;
      this.replies.send(
        request.worker,
        request.connId,
        request.seq,
        errorReply(text, request.commandCount),
      );
    }
    this.metrics.pendingRequests.set(this.requests.size);
    this.replies.flush();
  }

  private fatal(error: unknown): void {
    this.log.fatal({ err: error }, "cannot persist to the write-ahead log; stopping this replica");
    process.exit(1);
  }

  // ---- control --------------------------------------------------------------------------------

  private replicationInfo(): string {
    const s = this.core.status();
    const role = s.role === "leader" ? "master" : "slave";
    return [
      `role:${role}`,
      `apus_role:${s.role}`,
      `apus_replica_id:${this.config.id}`,
      `apus_replicas:${this.config.peers.length}`,
      `apus_leader_id:${s.leaderId}`,
      `apus_ballot:${formatBallot(s.role === "follower" ? s.promised : s.ballot)}`,
      `apus_commit_index:${s.chosenSlot}`,
      `apus_applied_index:${s.appliedSlot}`,
      `apus_durability:${this.config.durability}`,
    ].join("\r\n");
  }

  status(): ReplicaStatus {
    const s = this.core.status();
    return {
      id: this.config.id,
      role: s.role,
      leader: s.leaderId === 0 ? null : s.leaderId,
      // A follower has no ballot of its own: show the one it promised (its leader's, normally).
      ballot: formatBallot(s.role === "follower" ? s.promised : s.ballot),
      promised: formatBallot(s.promised),
      commitIndex: s.chosenSlot,
      appliedIndex: s.appliedSlot,
      lastSlot: s.lastSlot,
      inFlightSlots: s.inFlightSlots,
      pendingRequests: this.requests.size,
      keys: this.machine.keyCount,
      durability: this.config.durability,
      transport: this.config.transport,
      workers: this.readers.length,
      uptimeMs: Math.round(performance.now() - this.startedMs),
      peers: s.peers.map((p) => ({
        id: p.id,
        address: `${this.config.peers[p.id - 1]!.host}:${this.config.peers[p.id - 1]!.port}`,
        chosenSlot: p.id === this.config.id ? s.chosenSlot : p.chosenSlot,
        lastHeardMsAgo:
          p.id === this.config.id || s.role !== "leader"
            ? null
            : (this.ticks - p.heardTick) * this.tickMs,
      })),
    };
  }

  get pendingRequests(): number {
    return this.requests.size;
  }

  latency(reset: boolean): LatencySummary {
    return this.metrics.latency(reset);
  }

  async metricsJson(): Promise<unknown[]> {
    this.metrics.commitIndex.set(this.core.status().chosenSlot);
    this.metrics.pendingRequests.set(this.requests.size);
    this.metrics.keys.set(this.machine.keyCount);
    this.metrics.replyOverflow.set(this.replies.queuedRecords());
    this.metrics.ringRequestBytes.set(this.readers.reduce((sum, r) => sum + r.usedBytes, 0));
    return (await this.metrics.registry.getMetricsAsJSON()) as unknown[];
  }

  /** Stop taking requests, fail what waits, make the log durable, close the sockets. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.waiter.close();
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const request of this.requests.drain()) {
      this.replies.send(
        request.worker,
        request.connId,
        request.seq,
        errorReply(
          "SHUTDOWN replica is shutting down; the request may or may not have been applied",
          request.commandCount,
        ),
      );
    }
    this.replies.flush();
    this.transport.onMessage = () => {}; // peers' messages no longer reach the core
    while (this.readyLoop.busy) await new Promise((resolve) => setTimeout(resolve, 1));
    await this.storage.close();
    await this.transport.close();
    this.log.info("consensus worker stopped; log flushed");
  }
}
