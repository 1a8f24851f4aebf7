import { randomInt } from "node:crypto";
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import { decodeCommands, encodeCommands } from "../../app/command-codec.ts";
import type { ConnectionRef, ReplicatedApp, ReplySink } from "../../app/replicated-app.ts";
import { formatBallot } from "../../core/ballot.ts";
import { ApusError } from "../../core/errors.ts";
import { type Member, REPLICA_ID_MAX } from "../../core/membership.ts";
import { SeededPrng } from "../../core/prng.ts";
import type { DurableState } from "../../core/ready.ts";
import { Replica } from "../../core/replica.ts";
import type { Message } from "../../core/types.ts";
import { decodeMessage, encodeMessage } from "../../core/wire.ts";
import type { BellRinger, BellWaiter } from "../../ring/bell.ts";
import { FrameRingReader } from "../../ring/frame-ring.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import { listedPeers, membersOf } from "../../runtime/peer-list.ts";
import {
  type LatencySummary,
  type LeaderTransferOutcome,
  type MemberChangeOutcome,
  type MemberChangeRequest,
  type MembersView,
  PUSH_SEQ,
  REQUEST_CONN_ID,
  REQUEST_PREFIX_BYTES,
  REQUEST_SEQ,
  REQUEST_SEQ_EVENT,
  type ReplicaStatus,
  type WorkerRings,
} from "../../runtime/thread-contracts.ts";
import {
  clearRecoveryMarker,
  hasRecoveryMarker,
  RECOVERY_MARKER_FILE,
  setRecoveryMarker,
} from "../../storage/recovery-marker.ts";
import type { Storage } from "../../storage/storage.ts";
import type { Transport } from "../../transport/transport.ts";
import {
  CONNECTION_PREFIX_BYTES,
  LOG_HEADER_BYTES,
  logBodyOffset,
  logCommandCount,
  readConnectionPrefix,
  writeConnectionPrefix,
} from "../log-command.ts";
import { Applier } from "./applier.ts";
import type { ConsensusMetrics } from "./consensus-metrics.ts";
import { describeReplica, replicationInfo } from "./consensus-status.ts";
import { coreTiming } from "./core-timing.ts";
import { LeaderTransfers } from "./leader-transfer.ts";
import { MembershipAdmin } from "./membership-admin.ts";
import { decodeDigestReport, encodeDigestReport } from "./output-check.ts";
import { agreedSettings, decodeHello, PeerAgreement } from "./peer-agreement.ts";
import { ReadServer } from "./read-server.ts";
import { ReadyLoop } from "./ready-loop.ts";
import { ReplyRouter } from "./reply-router.ts";
import {
  CHANNEL_AGREEMENT,
  CHANNEL_CORE,
  CHANNEL_FORWARD,
  CHANNEL_FORWARD_REFUSED,
  CHANNEL_OUTPUT_DIGEST,
  RESEND_AFTER_MS,
  RequestRouter,
  type RouterEvent,
} from "./request-router.ts";
import type { PendingRequest } from "./request-table.ts";
import type { SnapshotStreamLink } from "./snapshot-stream-link.ts";
import { errorReply, StateMachine } from "./state-machine.ts";

/** What the application may ask of the consensus worker. */
export interface AppHooks {
  /** INFO's replication section. */
  info(): string;
  /** Unasked output for a client connection (sent only if the client is this replica's). */
  push(connection: ConnectionRef, bytes: Uint8Array): void;
  /** Put an "unblock" event for one of this replica's connections in the log. */
  proposeUnblock(connection: ConnectionRef, block: number): void;
  /** Whether a connection's client is this replica's (this process's). */
  isLocal(connection: ConnectionRef): boolean;
  /** Put this run in the log again (the embedded store's lease of its blocked clients). */
  renewLease(): void;
  /** The application failed beyond repair (its copy died): stop this replica. */
  fatal(error: Error): void;
  /** A digest of the application's output after `steps` steps (output checking). */
  digest(steps: number, digest: string): void;
  /** The application has waited long for one command (a program's copy that does not answer). */
  stalled(connection: ConnectionRef, command: string): void;
}

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
  "read_index",
  "read_index_reply",
  "timeout_now",
];

/** Request records taken from the rings per drain, so sockets and timers get their turn. */
const DRAIN_RECORDS_MAX = 4096;
/** How often waiting requests are checked against their deadline. */
const EXPIRE_INTERVAL_MS = 50;

/** A diverged replica repeats the report that shows it this many times, this far apart, then exits. */
const DIVERGED_REPORTS = 3;
const DIVERGED_REPEAT_MS = 100;

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
  /** Each client server's rings: one per connection worker, or the in-thread one (--workers 0). */
  readonly rings: readonly Pick<WorkerRings, "requests" | "replies">[];
  /**
   * Waited on for request records: the doorbell every connection worker rings (busy-polling
   * --ring-spin-us before it parks), or the in-thread server's LocalBell.
   */
  readonly requestWaiter: BellWaiter;
  /** `replyBells[i]` wakes the reader of `rings[i].replies`. */
  readonly replyBells: readonly BellRinger[];
  readonly storage: Storage;
  /** Created first, so the transport's drop counter can feed it. */
  readonly metrics: ConsensusMetrics;
  readonly transport: Transport;
  /** Carries the core's messages that hold a snapshot (snapshot-stream-link.ts); null: the transport does. */
  readonly snapshotStream?: SnapshotStreamLink | null;
  readonly logger: Logger;
  /**
   * The bootstrap configuration (bootstrap-members.ts): the members that govern slot 1 on, or
   * null to join a running cluster and learn them from the log (--join).
   */
  readonly members: readonly Member[] | null;
  /** Builds the replicated application (the embedded store, or a program under --app). */
  readonly createApp: (hooks: AppHooks) => ReplicatedApp;
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
  private readonly snapshotStream: SnapshotStreamLink | null;
  private readonly log: Logger;
  /** Applies chosen entries to the replicated application; snapshots; output checking. */
  private readonly applier: Applier;
  private readonly router: RequestRouter;
  /** Read-only requests served at a read index (--reads index, embedded store); else null. */
  private readonly reads: ReadServer | null;
  private readonly replies: ReplyRouter;
  /** Peers' settings that must match ours: a peer's messages wait for its matching hello. */
  private readonly agreement: PeerAgreement;
  /** Leadership transfers this replica runs as leader (leader-transfer.ts). */
  private readonly transfers: LeaderTransfers;
  /** Follows the configuration into the transport; membership changes (membership-admin.ts). */
  private readonly membership: MembershipAdmin;
  private readonly readers: FrameRingReader[];
  private readonly waiter: BellWaiter;
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
  /** Started with no durable state in an existing cluster, or with the marker: the core recovers first. */
  private readonly recoveringAtStart: boolean;
  /** The data directory held the durable "recovering" marker at start. */
  private readonly markerAtStart: boolean;

  constructor(options: ConsensusNodeOptions) {
    this.config = options.config;
    this.metrics = options.metrics;
    this.sentByType = MESSAGE_TYPE_NAMES.map((type) => this.metrics.messagesSent.labels({ type }));
    this.storage = options.storage;
    this.transport = options.transport;
    this.snapshotStream = options.snapshotStream ?? null;
    this.log = options.logger;
    this.incarnation = options.incarnation;
    this.agreement = new PeerAgreement(
      this.config.id,
      listedPeers(this.config.peers).map((peer) => peer.id),
      this.incarnation,
      agreedSettings(this.config),
    );
    const timing = coreTiming(this.config);
    this.tickMs = timing.tickMs;
    // Recover when there is nothing on disk in a cluster that ran before, or when a recovery (or
    // an operator who restored a backup) left the durable marker: a half-recovered directory is
    // not empty, but its state still does not dominate what was forgotten.
    const onDisk = this.config.durability === "fsync";
    this.markerAtStart = onDisk && hasRecoveryMarker(this.config.dataDir);
    this.recoveringAtStart =
      this.markerAtStart ||
      (hasNoDurableState(this.storage.recovered) &&
        this.config.initialClusterState === "existing" &&
        !this.config.join);
    if (this.recoveringAtStart && onDisk && !this.markerAtStart)
      setRecoveryMarker(this.config.dataDir);
    // A new member (--join, nothing on disk) holds the marker while it joins: a crash before it
    // caught up restarts it recovering, never taking the entries it learned for votes of its own
    // (Replica.finishJoining; the batch that ends the join clears it).
    if (
      !this.recoveringAtStart &&
      onDisk &&
      options.members === null &&
      hasNoDurableState(this.storage.recovered)
    )
      setRecoveryMarker(this.config.dataDir);
    this.core = new Replica(
      {
        id: this.config.id,
        replicaCount: this.config.peers.length,
        prng: new SeededPrng(randomInt(1, 2 ** 31)),
        electionTicks: timing.electionTicks,
        heartbeatTicks: timing.heartbeatTicks,
        retransmitTicks: timing.retransmitTicks,
        windowSlots: this.config.window,
        batchCommandsMax: this.config.batchCommandsMax,
        batchBytesMax: this.config.batchBytesMax,
        adaptiveBatching: this.config.batching === "adaptive",
        compactionTailSlots: this.config.compactionTailSlots,
        recovering: this.recoveringAtStart,
        // A replica that joined and must recover (its marker says a recovery did not finish)
        // asks the members it was started with; it learns the rest from their answers.
        members:
          this.recoveringAtStart && options.members === null
            ? membersOf(listedPeers(this.config.peers))
            : options.members,
      },
      this.storage.recovered,
    );
    const app = options.createApp({
      info: () => this.replicationInfo(),
      push: (connection, bytes) => {
        // Unasked output of a program (a Pub/Sub message) for a client of this replica.
        if (connection.origin !== this.config.id || connection.incarnation !== this.incarnation)
          return;
        this.replies.send(connection.worker, connection.connId, PUSH_SEQ, bytes);
        this.scheduleReplyFlush();
      },
      proposeUnblock: (connection, block) =>
        this.proposeConnectionEvent(connection, "unblock", String(block)),
      isLocal: (connection) =>
        connection.origin === this.config.id && connection.incarnation === this.incarnation,
      renewLease: () => this.announceRun(),
      fatal: (error) => this.appFailed(error),
      stalled: (connection, command) =>
        this.log.warn(
          { connection, command },
          "the program's copy has not answered a command for 5 s; every later command waits behind it (a slow command, or one whose replies the apply loop cannot count)",
        ),
      digest: (steps, digest) => {
        // Every replica judges every report: the leader raises the alarm, a replica that finds
        // itself in the minority stops.
        const payload = encodeDigestReport(steps, digest);
        for (let peer = 1; peer <= REPLICA_ID_MAX; peer++)
          if (peer !== this.config.id) this.sendToPeer(peer, CHANNEL_OUTPUT_DIGEST, payload);
        this.transport.flush();
        this.applier.judgeOutput(this.config.id, steps, digest);
      },
    });
    const machine = new StateMachine(app, {
      replicaId: this.config.id,
      incarnation: this.incarnation,
    });
    this.applier = new Applier(machine, this.config, this.metrics, this.log, {
      claim: (requestId) => this.claimReply(requestId),
      flushReplies: () => this.replies.flush(),
      diverged: (error, steps, digest) => this.stopDiverged(error, steps, digest),
      compact: (snapshot) => {
        this.core.compact(snapshot);
        this.schedulePump(); // the snapshot is persisted with the next Ready (it may come late)
      },
      fatal: (error) => this.appFailed(error),
    });
    this.router = new RequestRouter(
      this.core,
      {
        send: (to, channel, bytes) => this.sendToPeer(to, channel, bytes),
        fail: (request, reason, text) => {
          this.metrics.requestErrors.inc({ reason });
          // A connection's close that was not chosen in time goes in again: without it every
          // replica keeps the session. The first copy may still be chosen too (it was sent to a
          // leader); a close applied twice changes nothing (connection ids are not reused).
          const close = this.closeCopies.get(request.requestId);
          if (close !== undefined) {
            this.closeCopies.delete(request.requestId);
            this.deferredEvents.push({
              worker: request.worker,
              connId: request.connId,
              command: close,
            });
          }
          this.replies.send(
            request.worker,
            request.connId,
            request.seq,
            errorReply(text, request.commandCount),
          );
        },
        count: (event) => this.countRouterEvent(event),
        nowMs: () => performance.now(),
        stampMs: () => Date.now(),
      },
      {
        id: this.config.id,
        incarnation: this.incarnation,
        pendingRequestsMax: this.config.pendingRequestsMax,
        requestTimeoutMs: this.config.requestTimeoutMs,
        resendAfterMs: RESEND_AFTER_MS,
      },
    );
    this.reads =
      this.config.reads === "index" && app.read !== undefined && app.readOnly !== undefined
        ? new ReadServer(
            {
              askIndex: (ctx) => this.core.read(ctx),
              cancelIndex: (ctx) => this.core.cancelRead(ctx),
              serve: (commands, worker, connId) =>
                app.read?.(commands, this.localConnection(worker, connId)) ?? null,
              reply: (worker, connId, seq, reply) => this.replies.send(worker, connId, seq, reply),
              nowMs: () => performance.now(),
              count: (outcome) => this.metrics.reads.inc({ outcome }),
            },
            {
              pendingReadsMax: this.config.pendingRequestsMax,
              requestTimeoutMs: this.config.requestTimeoutMs,
              reaskAfterMs: RESEND_AFTER_MS,
            },
          )
        : null;
    this.replies = new ReplyRouter(options.rings, options.replyBells);
    this.readers = options.rings.map((r) => new FrameRingReader(r.requests));
    this.waiter = options.requestWaiter;
    this.transport.onMessage = (from, channel, payload) =>
      this.onPeerMessage(from, channel, payload);
    if (this.snapshotStream !== null)
      this.snapshotStream.onMessage = (from, bytes) => this.onStreamedMessage(from, bytes);
    this.readyLoop = new ReadyLoop(
      this.core,
      {
        send: (messages) => {
          this.membership.follow(); // a member the log just added is dialed before it is sent to
          this.send(messages);
          this.transport.flush();
        },
        apply: (ready) => {
          // A follower waits to answer its client until it learns the commit: tell it now.
          if (this.applier.apply(ready).foreignApplied && this.core.role === "leader") {
            this.core.announceCommit();
            this.schedulePump();
          }
          if (this.reads !== null) {
            const served =
              this.reads.onIndexes(ready.reads, this.applier.applied) +
              (ready.chosen.length > 0 || ready.snapshot !== null
                ? this.reads.onApplied(this.applier.applied)
                : 0);
            if (served > 0) this.replies.flush();
          }
        },
        append: (persist) => {
          // A joiner that learned it is a voter recovers from here on (PersistBatch.recovering):
          // the marker is durable before anything this batch records.
          if (persist.recovering === true && this.config.durability === "fsync")
            setRecoveryMarker(this.config.dataDir);
          this.storage.append(persist);
        },
        flush: () => {
          // The WAL's usual commit is synchronous (undefined: durable at return, see Wal.flush).
          const started = performance.now();
          const observe = () =>
            this.metrics.fsyncLatency.observe((performance.now() - started) / 1000);
          const flushing = this.storage.flush();
          if (flushing === undefined) {
            observe();
            return undefined;
          }
          return flushing.then(observe);
        },
        advanced: (ready) => {
          if (ready.persist?.recovered === true && this.config.durability === "fsync")
            clearRecoveryMarker(this.config.dataDir);
          this.noticeLeaderChange();
        },
        fatal: (error) => this.fatal(error),
      },
      { durable: this.config.durability !== "memory" },
    );
    this.readyLoop.onFlushed = () => this.schedulePump();
    this.membership = new MembershipAdmin({
      core: this.core,
      config: this.config,
      log: this.log,
      transport: this.transport,
      snapshotStream: this.snapshotStream,
      agreement: this.agreement,
      ticks: () => this.ticks,
      tickMs: this.tickMs,
      schedulePump: () => this.schedulePump(),
      stopping: () => this.stopping,
    });
    this.transfers = new LeaderTransfers({
      core: this.core,
      config: this.config,
      log: this.log,
      tickMs: this.tickMs,
      schedulePump: () => this.schedulePump(),
      stopping: () => this.stopping,
    });
  }

  async start(): Promise<void> {
    await this.transport.start();
    await this.snapshotStream?.start();
    this.membership.checkPeersFlag();
    this.membership.follow(); // members the log added since --peers was written
    this.sendHellos();
    this.timers.push(setInterval(() => this.onTick(), this.tickMs));
    this.timers.push(setInterval(() => this.expireRequests(), EXPIRE_INTERVAL_MS));
    // The application keeps state of this replica's clients (the store's sessions, a program
    // copy's connections); those of its previous run (a crash logs no close) go once this run's
    // first log command is applied. Say so at once rather than wait for a client: a blocked
    // client of a dead run must not take elements meanwhile. Best effort: it times out like any
    // request if no leader comes.
    this.announceRun();
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
    const others = this.otherReplicas();
    if (this.config.join && hasNoDurableState(this.storage.recovered)) {
      this.log.info(
        { join: true },
        "no durable state and --join: a new member of a running cluster; it votes for nothing until it learns the configuration from the log, once the leader added it (apus member add), and recovers first if that names this id a voter already",
      );
      return;
    }
    if (this.recoveringAtStart && others === 0) {
      this.log.warn(
        "recovering a single replica: there is no one to recover from, so it starts with an empty state; whatever it held is gone",
      );
    } else if (this.recoveringAtStart) {
      this.log.warn(
        { role: "recovering", peersNeeded: others, marker: this.markerAtStart },
        `${this.markerAtStart ? `the data directory holds ${RECOVERY_MARKER_FILE} (a recovery that did not finish, or a restored backup)` : "no durable state and --initial-cluster-state existing"}: recovering; this replica promises and accepts nothing until every other replica (${others}) has answered with its promises and votes`,
      );
    } else if (hasNoDurableState(this.storage.recovered) && others > 0) {
      this.log.info(
        { initialClusterState: "new" },
        "no durable state: joining as a member of a NEW cluster and voting at once; if this replica ran before (a memory-durability restart, a wiped or replaced data directory) stop it now and start it with --initial-cluster-state existing, or acknowledged writes can be lost",
      );
    }
  }

  private warnedEveryoneRecovers = false;

  /** Every other replica says it is recovering too: nobody holds the state; say what to do. */
  private warnIfEveryoneRecovers(): void {
    const others = this.otherReplicas();
    if (this.warnedEveryoneRecovers || others === 0) return;
    if (this.core.status().peersRecovering < others) return;
    this.warnedEveryoneRecovers = true;
    this.log.error(
      "every other replica is recovering too: no replica holds the cluster's state (with --durability memory, all of them restarted). This replica waits, since voting now could lose acknowledged writes; if the state is really gone, stop every replica and start them all with --initial-cluster-state new (and empty data directories)",
    );
  }

  /** The other replicas of the configuration this replica knows (--peers' before the log says). */
  private otherReplicas(): number {
    const latest = this.core.membership().latest;
    if (latest === null) return listedPeers(this.config.peers).length - 1;
    return latest.members.filter((m) => m.id !== this.config.id).length;
  }

  // ---- inputs ---------------------------------------------------------------------------------

  private onTick(): void {
    this.ticks++;
    this.sendHellos();
    if (this.core.role === "recovering") this.warnIfEveryoneRecovers();
    this.core.tick();
    this.schedulePump();
  }

  private onPeerMessage(from: number, channel: number, payload: Uint8Array): void {
    if (channel === CHANNEL_AGREEMENT) return this.onHello(from, payload);
    if (!this.agreement.agreed(from)) {
      this.metrics.droppedPackets.inc({ reason: "settings-not-agreed" });
      return;
    }
    if (channel === CHANNEL_CORE) {
      // Decoded batches are views of the buffer: copy, since the transport may reuse it.
      this.deliverCore(from, payload.slice());
      return;
    }
    if (channel === CHANNEL_OUTPUT_DIGEST) {
      const report = decodeDigestReport(payload);
      if (report === null) this.metrics.droppedPackets.inc({ reason: "decode" });
      else this.applier.judgeOutput(from, report.steps, report.digest);
      return;
    }
    if (channel === CHANNEL_FORWARD_REFUSED) {
      this.router.onForwardRefused(from, payload);
      return;
    }
    if (channel === CHANNEL_FORWARD) {
      this.router.onForward(from, payload.slice());
      this.schedulePump();
      return;
    }
    this.metrics.droppedPackets.inc({ reason: "channel" });
  }

  /**
   * A core message that came whole over the snapshot stream (its digest checked): the same path
   * as one on CHANNEL_CORE, behind the same settings agreement (before it, the stream keeps the
   * bytes and its sender offers them again). The bytes are ours to keep.
   */
  private onStreamedMessage(
    from: number,
    bytes: Buffer,
  ): "delivered" | "undecodable" | "not-ready" {
    if (!this.agreement.agreed(from)) {
      this.metrics.droppedPackets.inc({ reason: "settings-not-agreed" });
      return "not-ready";
    }
    return this.deliverCore(from, bytes) ? "delivered" : "undecodable";
  }

  /** Decode one core message (`payload` is not reused) and step the core; false if it is bad. */
  private deliverCore(from: number, payload: Uint8Array): boolean {
    const decoded = decodeMessage(payload);
    if (!decoded.ok) {
      this.metrics.droppedPackets.inc({ reason: "decode" });
      return false;
    }
    if (decoded.message.from !== from) {
      this.metrics.droppedPackets.inc({ reason: "sender-mismatch" });
      return false;
    }
    this.stepCore(decoded.message);
    this.schedulePump();
    return true;
  }

  /** Our settings to the peers that have not shown they hold them (peer-agreement.ts). */
  private sendHellos(): void {
    const hellos = this.agreement.hellosToSend(performance.now());
    for (const { to, payload } of hellos) this.transport.send(to, CHANNEL_AGREEMENT, payload);
    if (hellos.length > 0) this.transport.flush();
  }

  private onHello(from: number, payload: Uint8Array): void {
    const hello = decodeHello(payload);
    if (hello === null) {
      this.metrics.droppedPackets.inc({ reason: "decode" });
      return;
    }
    const { reply, event } = this.agreement.receive(from, hello, performance.now());
    if (reply !== null) {
      this.transport.send(from, CHANNEL_AGREEMENT, reply);
      this.transport.flush();
    }
    if (event === null) return;
    this.metrics.peerSettings.set({ peer: String(from) }, event.kind === "agreed" ? 1 : 0);
    if (event.kind === "agreed") {
      this.log.info({ peer: from }, `replica ${from}'s settings match this replica's`);
    } else {
      this.log.error(
        { peer: from, differences: event.differences },
        `replica ${from} runs with settings that must be the same on every replica, and they differ (${event.differences.join("; ")}): its messages are dropped and it cannot join this replica's cluster. Start every replica with the same values`,
      );
    }
  }

  /**
   * One peer message into the core. Far-away slots are dropped inside the core (its own counters); an
   * exception other than a broken core invariant is logged and counted, and the replica goes on:
   * one peer's message must not take down the consensus thread. A failed assertion is a bug in
   * the core whose state can no longer be trusted, so it still stops the replica.
   */
  private stepCore(message: Message): void {
    try {
      this.core.step(message);
    } catch (error) {
      if (error instanceof ApusError && error.code === "ERR_ASSERTION") throw error;
      this.metrics.droppedPackets.inc({ reason: "core-error" });
      this.log.error(
        { err: error, from: message.from, type: message.type },
        "a peer message failed; dropped",
      );
    }
  }

  /** Wait for request records (the doorbell spins briefly, then parks), take them, repeat. */
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
      // Let sockets and timers run before the next drain. This turn's immediate is queued before
      // the pump's, so records that arrive in the rest of this turn are drained before the pump
      // hands the core its proposals: with --workers 0 the first record of a turn wakes this loop
      // at once (a microtask), and without this order it would go alone into a slot of its own.
      const nextTurn = new Promise<void>((resolve) => setImmediate(resolve));
      if (taken > 0) this.schedulePump();
      await nextTurn;
    }
  }

  private onRequestRecord(worker: number, record: Uint8Array): void {
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    const connId = view.getUint32(REQUEST_CONN_ID, true);
    const seq = view.getUint32(REQUEST_SEQ, true);
    // The log command is the record less its ring prefix: one copy, out of the ring.
    const command = record.slice(REQUEST_PREFIX_BYTES);
    const commandCount = logCommandCount(command);
    if (this.stopping) {
      this.replies.send(
        worker,
        connId,
        seq,
        errorReply("SHUTDOWN replica is shutting down", commandCount),
      );
      return;
    }
    if (
      seq !== REQUEST_SEQ_EVENT &&
      this.reads !== null &&
      this.takeRead(worker, connId, seq, command)
    )
      return;
    // Connection events still go in: without its close, a copy would keep a gone client's state.
    if (seq !== REQUEST_SEQ_EVENT && this.applier.logFull()) {
      this.metrics.requestErrors.inc({ reason: "log-full" });
      this.replies.send(
        worker,
        connId,
        seq,
        errorReply(
          `ERR apus log full: the log of the program's copies holds ${this.applier.logBytes} bytes (--app-log-max-bytes ${this.config.appLogBytesMax}) and cannot be compacted yet; restart the cluster with empty data directories, or raise the limit`,
          commandCount,
        ),
      );
      return;
    }
    const request = this.router.add(worker, connId, seq, commandCount, command);
    if (request !== null && seq === REQUEST_SEQ_EVENT) this.keepClose(request, command);
    if (request === null && seq === REQUEST_SEQ_EVENT) {
      // A connection's close must reach the log, or every replica keeps its session (a blocked
      // one would take elements): it waits for room instead of being refused.
      this.deferredEvents.push({ worker, connId, command });
      return;
    }
    if (request === null)
      this.refuseBusy(
        worker,
        connId,
        seq,
        commandCount,
        `${this.router.requests.size} requests already wait for consensus`,
      );
  }

  /** --max-pending requests (or reads) already wait: answer -BUSY, counted. */
  private refuseBusy(
    worker: number,
    connId: number,
    seq: number,
    commandCount: number,
    what: string,
  ): void {
    this.metrics.requestErrors.inc({ reason: "pending-full" });
    this.replies.send(
      worker,
      connId,
      seq,
      errorReply(`BUSY ${what} here (--max-pending); retry later`, commandCount),
    );
  }

  /**
   * A request whose every command only reads is served at a read index (ReadServer) instead of
   * through the log. True when it was taken (or refused BUSY), false when it goes to the log.
   */
  private takeRead(worker: number, connId: number, seq: number, command: Uint8Array): boolean {
    const app = this.applier.machine.app;
    const commands = decodeCommands(command, logBodyOffset(command));
    if (
      commands === null ||
      app.readOnly?.(commands, this.localConnection(worker, connId)) !== true
    )
      return false;
    if (!this.reads!.add(worker, connId, seq, commands))
      this.refuseBusy(
        worker,
        connId,
        seq,
        commands.length,
        `${this.reads!.size} reads already wait for a read index`,
      );
    return true;
  }

  /** One of this replica's client connections, as the application names connections. */
  private localConnection(worker: number, connId: number): ConnectionRef {
    return { origin: this.config.id, incarnation: this.incarnation, worker, connId };
  }

  /** Connection events that found the router full, in order: tried again every expiry tick. */
  private readonly deferredEvents: { worker: number; connId: number; command: Uint8Array }[] = [];
  /** Copies of the connection closes in the router, by request id, to go in again if they expire. */
  private readonly closeCopies = new Map<number, Uint8Array>();

  /** Keeps a copy of a client connection's close until it is applied (see the router's fail). */
  private keepClose(request: PendingRequest, command: Uint8Array): void {
    const prefix = readConnectionPrefix(command);
    // Connection 0 is this run's announcement: the next renewal follows, no copy needed.
    if (prefix?.event === "close" && prefix.connId !== 0)
      this.closeCopies.set(request.requestId, Uint8Array.from(command));
  }

  private divergedStopping = false;

  /**
   * Our copy diverged. Stop serving and voting, but first repeat the report that shows it to
   * every peer, a few times (UDP may drop one, and an exit would drop what is still queued), so
   * the others raise the alarm too.
   */
  private stopDiverged(error: Error, steps: number, digest: string): void {
    if (this.divergedStopping) return;
    this.divergedStopping = true;
    this.log.fatal({ err: error }, "this replica's copy of the program diverged; stopping");
    const payload = encodeDigestReport(steps, digest);
    let sent = 0;
    const repeat = () => {
      for (let peer = 1; peer <= REPLICA_ID_MAX; peer++)
        if (peer !== this.config.id) this.sendToPeer(peer, CHANNEL_OUTPUT_DIGEST, payload);
      this.transport.flush();
      sent++;
      setTimeout(sent < DIVERGED_REPORTS ? repeat : () => process.exit(1), DIVERGED_REPEAT_MS);
    };
    repeat();
  }

  private appFailed(error: Error): never {
    this.log.fatal(
      { err: error },
      "the replicated application failed; stopping this replica (its supervisor restarts it, and it rebuilds the program's copy from its log)",
    );
    process.exit(1);
  }

  /**
   * This run in the log: the close of a connection that never exists (ids start at 1), which the
   * embedded store takes as word from this run (kv-sessions.ts: it retires earlier runs, and
   * renews the lease of this run's blocked clients). Not retried if it times out: the next
   * renewal follows.
   */
  private announceRun(): void {
    this.proposeConnectionEvent({ ...this.localConnection(0, 0) }, "close", "");
  }

  /** A connection event this replica puts in the log itself (its client's blocking timeout). */
  private proposeConnectionEvent(
    connection: ConnectionRef,
    event: "unblock" | "close",
    argument: string,
  ): void {
    if (this.stopping) return;
    const command = encodeCommands(
      [[Buffer.from(argument, "latin1")]],
      LOG_HEADER_BYTES + CONNECTION_PREFIX_BYTES,
    );
    writeConnectionPrefix(command, { worker: connection.worker, connId: connection.connId, event });
    const request = this.router.add(
      connection.worker,
      connection.connId,
      REQUEST_SEQ_EVENT,
      0,
      command,
    );
    if (request === null) {
      this.log.warn({ connection, event }, "no room to put a connection event in the log; dropped");
      return;
    }
    this.schedulePump();
  }

  /** The router's events, as metrics. */
  private countRouterEvent(event: RouterEvent): void {
    switch (event) {
      case "proposed":
        this.metrics.proposals.inc();
        this.schedulePump();
        return;
      case "forwarded":
        this.metrics.forwarded.inc();
        return;
      case "resent":
      case "unparked":
        this.metrics.resent.inc();
        this.schedulePump();
        return;
      case "refused":
        this.metrics.forwardRefused.inc();
        return;
      default:
        this.metrics.droppedPackets.inc({ reason: event });
    }
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

  /** Hand out everything the core has ready (ready-loop.ts), then flush replies. */
  private pump(): void {
    if (this.stopping) return; // shutdown() finishes the persist in flight and closes the log
    this.noticeLeaderChange();
    this.readyLoop.pump();
    if (this.replies.flush()) setTimeout(() => this.schedulePump(), 1);
    this.transport.flush();
  }

  /**
   * One of this replica's requests is about to run: take it off the router (it no longer expires:
   * it ran) and hand the application where its reply goes. A program may answer much later
   * (BLPOP); the reply then reaches the ring on its own flush.
   */
  private claimReply(requestId: number): ReplySink {
    this.closeCopies.delete(requestId);
    const request = this.router.take(requestId);
    if (request === undefined) return null; // answered already (timed out) or an earlier run's
    return (reply) => {
      const micros = (performance.now() - request.takenMs) * 1000;
      if (this.core.role === "leader") this.metrics.observeConsensus(micros);
      this.metrics.requestLatency.observe(micros / 1e6);
      this.replies.send(request.worker, request.connId, request.seq, reply);
      this.scheduleReplyFlush();
    };
  }

  private replyFlushScheduled = false;

  /** Replies that come outside apply() (a program's) go to the rings on the next turn, together. */
  private scheduleReplyFlush(): void {
    if (this.replyFlushScheduled) return;
    this.replyFlushScheduled = true;
    setImmediate(() => {
      this.replyFlushScheduled = false;
      if (this.replies.flush()) setTimeout(() => this.scheduleReplyFlush(), 1);
    });
  }

  private send(messages: readonly Message[]): void {
    for (const message of messages) {
      if (!this.agreement.agreed(message.to)) continue; // see sendToPeer
      this.sentByType[message.type]?.inc();
      // A snapshot goes over the snapshot stream (TCP, in chunks, resumable), not the transport.
      if (this.snapshotStream?.take(message) === true) continue;
      this.transport.send(message.to, CHANNEL_CORE, encodeMessage(message));
    }
  }

  /**
   * Anything but a hello goes only to a peer whose settings we have seen agree with ours. A
   * replica that restarted with other settings therefore sends its peers nothing before they
   * have its hello, even while they still take it for its earlier, agreeing run.
   */
  private sendToPeer(to: number, channel: number, bytes: Uint8Array): void {
    if (this.agreement.agreed(to)) this.transport.send(to, channel, bytes);
  }

  /** Log leadership changes and release requests that waited for a leader. */
  private noticeLeaderChange(): void {
    const leader = this.core.knownLeader;
    const role = this.core.role;
    if (role !== this.lastRole) {
      this.metrics.role.reset();
      this.metrics.role.set({ role }, 1);
      if (role === "recovering" && this.core.status().counters.joinedAsVoter > 0) {
        this.log.warn(
          { id: this.config.id },
          "this replica joined with no state, and the configuration it learned names its id a voter already: a replica of this id ran before and its votes are lost with its data. Recovering from every member's promises and votes before it votes (the marker is durable: a restart goes on recovering)",
        );
      }
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
      if (leader !== 0) {
        this.metrics.elections.inc();
        this.log.info(
          { leader },
          leader === this.config.id ? "leading the cluster" : "following leader",
        );
      }
      this.knownLeader = leader;
    }
    this.router.noticeLeaderChange();
  }

  private expireRequests(): void {
    this.router.expire();
    while (this.deferredEvents.length > 0) {
      const event = this.deferredEvents[0]!;
      const count = logCommandCount(event.command);
      const request = this.router.add(
        event.worker,
        event.connId,
        REQUEST_SEQ_EVENT,
        count,
        event.command,
      );
      if (request === null) break;
      this.keepClose(request, event.command);
      this.deferredEvents.shift();
      this.schedulePump();
    }
    this.reads?.expire();
    this.metrics.pendingRequests.set(this.router.requests.size);
    this.replies.flush();
  }

  private fatal(error: unknown): void {
    this.log.fatal({ err: error }, "cannot persist to the write-ahead log; stopping this replica");
    process.exit(1);
  }

  // ---- control --------------------------------------------------------------------------------

  private replicationInfo(): string {
    return replicationInfo(this.config, this.core.status());
  }

  status(): ReplicaStatus {
    return describeReplica({
      config: this.config,
      core: this.core.status(),
      ticks: this.ticks,
      tickMs: this.tickMs,
      pendingRequests: this.router.requests.size,
      keys: this.applier.machine.app.keyCount() ?? 0,
      app: this.applier.describe(),
      workers: this.config.workers === 0 ? 0 : this.readers.length,
      uptimeMs: performance.now() - this.startedMs,
      snapshotTransfers: this.snapshotStream?.progress() ?? [],
      members: this.membership.view(),
    });
  }

  get pendingRequests(): number {
    return this.router.requests.size;
  }

  latency(reset: boolean): LatencySummary {
    return this.metrics.latency(reset);
  }

  async metricsJson(): Promise<unknown[]> {
    const core = this.core.status();
    this.metrics.exportCoreCounters(core.counters);
    this.metrics.commitIndex.set(core.chosenSlot);
    const current = this.core.membership().current?.members ?? [];
    this.metrics.members.set({ role: "voter" }, current.filter((m) => m.voter).length);
    this.metrics.members.set({ role: "learner" }, current.filter((m) => !m.voter).length);
    this.metrics.pendingRequests.set(this.router.requests.size);
    this.metrics.keys.set(this.applier.machine.app.keyCount() ?? 0);
    this.metrics.replyOverflow.set(this.replies.queuedRecords());
    this.metrics.ringRequestBytes.set(this.readers.reduce((sum, r) => sum + r.usedBytes, 0));
    return (await this.metrics.registry.getMetricsAsJSON()) as unknown[];
  }

  /** GET /members. */
  members(): MembersView {
    return this.membership.view();
  }

  /** POST /members: a membership change, answered once it governs (membership-admin.ts). */
  changeMembers(request: MemberChangeRequest): Promise<MemberChangeOutcome> {
    return this.membership.change(request);
  }

  /** Hand leadership over and wait for the outcome (leader-transfer.ts). */
  transferLeadership(target: number | null, waitMs: number | null): Promise<LeaderTransferOutcome> {
    return this.transfers.run(target, waitMs);
  }

  /** Stop taking requests, fail what waits, make the log durable, close the sockets. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.waiter.close();
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const request of this.router.drain()) {
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
    this.reads?.drain("SHUTDOWN replica is shutting down; the read did not run");
    this.replies.flush();
    this.transport.onMessage = () => {}; // peers' messages no longer reach the core
    while (this.readyLoop.busy) await new Promise((resolve) => setTimeout(resolve, 1));
    await this.storage.close();
    await this.snapshotStream?.close();
    await this.transport.close();
    this.log.info("consensus worker stopped; log flushed");
  }
}
