import {
  ApusError,
  decodeMessage,
  encodeMessage,
  formatBallot,
  type Member,
  type Message,
  MessageType,
  type PersistBatch,
  type Ready,
  type Replica,
  SeededPrng,
  type Snapshot,
} from "../core/index.ts";
import { ReadyLoop, type ReadyLoopIo } from "../workers/consensus/ready-loop.ts";
import type { PendingRequest } from "../workers/consensus/request-table.ts";
import { Checker, Violation } from "./checker.ts";
import { logCommand, readLogHeader, requestKey } from "./log-command.ts";
import { replicaFactory } from "./planted-bugs.ts";
import { describeScenario, livenessTicksMax, type Scenario } from "./scenario.ts";
import { SimClient } from "./sim-client.ts";
import { SimNetwork } from "./sim-network.ts";
import {
  CHANNEL_CORE,
  CHANNEL_FORWARD,
  CHANNEL_FORWARD_REFUSED,
  type OriginCounters,
  type RequestOutcome,
  SimOrigin,
  type SimOriginIo,
} from "./sim-origin.ts";
import { SimStateMachine } from "./sim-state-machine.ts";
import { SimStorage } from "./sim-storage.ts";

/** Answers that decide a race: the adversary holds some of them back (scenario.raceDelayRate). */
const RACE_MESSAGES = new Set<number>([
  MessageType.Promise,
  MessageType.Accepted,
  MessageType.ProbeReply,
  MessageType.RecoverReply,
]);

function isHintOnly(persist: PersistBatch): boolean {
  return persist.promised === null && persist.accepted.length === 0 && persist.snapshot === null;
}

/** Chance per replica per tick that the runtime asks a leader to announce its commit point. */
const ANNOUNCE_COMMIT_RATE = 0.25;

interface SimNode {
  readonly id: number;
  core: Replica | null;
  /** The runtime's own Ready loop (src/workers/consensus/ready-loop.ts) around this core. */
  loop: ReadyLoop | null;
  /** The last persist this incarnation appended was a deferred chosen-slot hint. */
  hintDeferred: boolean;
  readonly storage: SimStorage;
  machine: SimStateMachine;
  /** The runtime's request handling around this incarnation's core (null while down). */
  origin: SimOrigin | null;
  /** Bumped at each restart: the origin incarnation in log headers, as the runtime's random one. */
  incarnation: number;
  downUntil: number;
  /** Stalled (a GC pause, SIGSTOP) until this tick: no ticks, and what arrives meanwhile is lost. */
  pausedUntil: number;
  /** Last ballot this replica led with (to count elections). */
  ledBallot: number;
  /** A snapshot "still being serialized" (maybeCompact): handed to the core later, or lost. */
  pendingSnapshot: Snapshot | null;
  /** Snapshots this replica took (every other one is handed over late). */
  snapshotsTaken: number;
}

export interface SimResult {
  readonly scenario: Scenario;
  readonly ok: boolean;
  readonly violation: Violation | null;
  readonly ticks: number;
  readonly chosenSlots: number;
  readonly acked: number;
  /** Requests answered -CLUSTERDOWN "not executed", -TIMEOUT, BUSY, or lost with their origin. */
  readonly notExecuted: number;
  readonly timedOut: number;
  readonly busy: number;
  readonly lost: number;
  /** Forwards sent, refused by their receiver, and requests sent again, over all origins. */
  readonly forwarded: number;
  readonly refused: number;
  readonly resent: number;
  /** Requests that timed out parked behind a refusal from the replica still taken for leader. */
  readonly expiredParked: number;
  /** Copies of requests the client sessions skipped (at the first replica to apply each slot). */
  readonly duplicates: number;
  readonly packetsSent: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly elections: number;
  /**
   * Leadership transfers: begun, completed (the leader met its target's higher ballot, which a
   * campaign the target began on its own timeout also is), timed out; and the campaigns that
   * TimeoutNow started and those the target won with that ballot (the transfer's real success).
   */
  readonly transfers: TransferCounters;
  /** Membership changes the leader queued (each is then chosen, or lost with its leader). */
  readonly membershipChanges: number;
}

export interface TransferCounters {
  started: number;
  completed: number;
  timedOut: number;
  /** Campaigns a TimeoutNow started (the target's side). */
  campaigns: number;
  /** ... whose ballot became leader: the target won its first Phase 1. */
  campaignsWon: number;
}

export type TraceSink = (line: string) => void;

const MESSAGE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, code]) => [code, name]),
);

function describeMessage(m: Message): string {
  const base = `${MESSAGE_NAMES[m.type]} ${m.from}->${m.to} b=${formatBallot(m.ballot)}`;
  switch (m.type) {
    case MessageType.Accept:
      return `${base} slot=${m.slot} cmds=${m.batch.commands.length} commit=${m.commitSlot}`;
    case MessageType.Accepted:
      return `${base} slot=${m.slot} chosen=${m.chosenSlot}`;
    case MessageType.Promise:
      return `${base} from=${m.fromSlot} chosen=${m.chosenSlot} entries=${m.entries.length}${m.more ? " more" : ""}`;
    case MessageType.Chosen:
      return `${base} entries=${m.entries[0]?.slot ?? "-"}..${m.entries.at(-1)?.slot ?? "-"}`;
    case MessageType.Heartbeat:
      return `${base} commit=${m.commitSlot} round=${m.readRound}`;
    case MessageType.HeartbeatReply:
      return `${base} chosen=${m.chosenSlot} round=${m.readRound}`;
    case MessageType.ReadIndex:
      return `${base} seq=${m.seq}`;
    case MessageType.ReadIndexReply:
      return `${base} seq=${m.seq} index=${m.index}`;
    case MessageType.TimeoutNow:
      return `${base} target=${m.target}`;
    default:
      return base;
  }
}

/**
 * Deterministic cluster simulation: N cores, a lossy network, crashing disks-and-all replicas,
 * clients that each talk to one replica (whose SimOrigin keeps, forwards, resends and expires
 * their requests as the runtime does), and the checker looking at everything after every step.
 */
export class Simulator {
  readonly scenario: Scenario;
  private readonly prng: SeededPrng;
  private readonly network: SimNetwork;
  private readonly checker: Checker;
  private readonly nodes: SimNode[] = [];
  private readonly clients: SimClient[] = [];
  private readonly makeReplica: ReturnType<typeof replicaFactory>;
  private readonly trace: TraceSink | undefined;
  private now = 0;
  private partitionEndTick = 0;
  /** Draws the reads, apart from the main prng so runs without reads keep their sequences. */
  private readonly readPrng: SeededPrng;
  private readCtx = 0;
  /** Off once the run waits for the last reads' indexes. */
  private readsOn = true;
  /** Draws the pauses, apart from the main prng for the same reason. */
  private readonly pausePrng: SeededPrng;
  /** Draws the leadership transfers, apart from the main prng for the same reason. */
  private readonly transferPrng: SeededPrng;
  /** Draws the membership changes, apart from the main prng for the same reason. */
  private readonly membershipPrng: SeededPrng;
  private membershipChanges = 0;
  /** Fault phase: faults strike and clients issue new commands. */
  private faultsOn = true;
  private crashes = 0;
  /** Copies of requests skipped by the client sessions (counted once per slot). */
  private duplicates = 0;
  private partitions = 0;
  private elections = 0;
  private readonly answers = { notExecuted: 0, timedOut: 0, busy: 0, lost: 0 };
  /** Origin counters of incarnations that crashed (the live ones are added at the end). */
  /** Transfer counters of incarnations that crashed (the live ones are added at the end). */
  private readonly transferTotals: TransferCounters = {
    started: 0,
    completed: 0,
    timedOut: 0,
    campaigns: 0,
    campaignsWon: 0,
  };
  private readonly originTotals: OriginCounters = {
    forwarded: 0,
    refused: 0,
    resent: 0,
    expiredParked: 0,
  };

  constructor(scenario: Scenario, trace?: TraceSink) {
    this.scenario = scenario;
    this.trace = trace;
    this.prng = new SeededPrng(scenario.seed);
    this.readPrng = new SeededPrng(scenario.seed ^ 0x7ead);
    this.pausePrng = new SeededPrng(scenario.seed ^ 0x9a05e);
    this.transferPrng = new SeededPrng(scenario.seed ^ 0x7a4f);
    this.membershipPrng = new SeededPrng(scenario.seed ^ 0x3e3c);
    const total = scenario.replicaCount + scenario.spareReplicas;
    this.network = new SimNetwork(total, { ...scenario.faults }, this.prng);
    this.checker = new Checker(scenario.replicaCount, scenario.membershipLag);
    this.makeReplica = replicaFactory(scenario.bug);
    for (let id = 1; id <= total; id++) {
      const storage = new SimStorage();
      storage.forgetVotes = scenario.bug === "forget-votes";
      // A spare starts with no state: like a replica that lost its state, it is excused from
      // holding votes until it joined (or recovered), and meanwhile no member may lose its own.
      if (id > scenario.replicaCount) storage.amnesiac = true;
      storage.forgetPromises = scenario.bug === "forget-promise";
      const node: SimNode = {
        id,
        core: null,
        loop: null,
        hintDeferred: false,
        storage,
        machine: new SimStateMachine(),
        origin: null,
        incarnation: 0,
        downUntil: 0,
        pausedUntil: 0,
        ledBallot: 0,
        pendingSnapshot: null,
        snapshotsTaken: 0,
      };
      this.nodes.push(node);
      this.start(node);
    }
    for (let id = 1; id <= scenario.clients; id++)
      this.clients.push(new SimClient(id, this.anyReplica()));
  }

  private log(line: string): void {
    this.trace?.(`t=${this.now} ${line}`);
  }

  run(): SimResult {
    let violation: Violation | null = null;
    try {
      this.runFaultPhase();
      this.runHealPhase();
      this.checker.checkDurability(this.disks(), true);
      this.checker.checkExecutions();
    } catch (error) {
      if (error instanceof Violation) violation = error;
      else if (error instanceof ApusError && error.code === "ERR_ASSERTION") {
        violation = new Violation("assertion", this.now, error.message);
      } else throw error;
    }
    if (violation !== null) this.log(`VIOLATION ${violation.message}`);
    return {
      scenario: this.scenario,
      ok: violation === null,
      violation,
      ticks: this.now,
      chosenSlots: this.checker.chosenSlots,
      acked: this.checker.acked.size,
      ...this.answers,
      ...this.originCounters(),
      duplicates: this.duplicates,
      packetsSent: this.network.sent,
      crashes: this.crashes,
      partitions: this.partitions,
      elections: this.elections,
      transfers: this.transferCounters(),
      membershipChanges: this.membershipChanges,
    };
  }

  private runFaultPhase(): void {
    while (this.now < this.scenario.faultTicks) {
      this.step();
      this.injectFaults();
    }
  }

  /** Faults stop, the network heals, every replica restarts: everything pending must commit. */
  private runHealPhase(): void {
    this.log("faults stop: heal partitions, restart crashed replicas, no loss or duplication");
    this.faultsOn = false;
    this.network.faults = {
      dropRate: 0,
      duplicateRate: 0,
      delayTicksMin: 1,
      delayTicksMax: this.scenario.faults.delayTicksMax,
      lateRate: 0,
      lateTicksMax: 0,
    };
    this.network.heal();
    for (const node of this.nodes) if (node.core === null) this.start(node);
    // A replica that lost its state learns the whole chosen prefix before it serves again,
    // catchupEntriesMax slots per round trip; its clients wait that long too.
    const recoveryTicks = Math.ceil(
      (this.checker.chosenSlots / this.scenario.catchupEntriesMax) *
        (2 * this.scenario.faults.delayTicksMax + 1),
    );
    const budget = livenessTicksMax(this.scenario) + recoveryTicks;
    const deadline = this.now + budget;
    while (this.clients.some((c) => c.body !== null)) {
      if (this.now >= deadline) {
        const stuck = this.clients
          .filter((c) => c.body !== null)
          .map((c) => `${c.id}:${c.operation}${c.wait ? ` (request ${c.wait.key})` : ""}`);
        this.checker.fail(
          "liveness",
          `operations ${stuck.join(", ")} not acknowledged ${budget} ticks after faults stopped; ${this.describeNodes()}`,
        );
      }
      this.step();
    }
    // Every replica must then converge on the same history.
    const convergeDeadline = this.now + budget;
    while (!this.converged()) {
      if (this.now >= convergeDeadline) {
        const slots = this.memberNodes()
          .map((n) => `${n.id}:${n.machine.appliedSlot}`)
          .join(" ");
        this.checker.fail(
          "convergence",
          `replicas did not converge after faults stopped (applied ${slots})`,
        );
      }
      this.step();
    }
    // Every read asked of a live member gets its index once a leader is stable. A replica outside
    // the configuration hears from no leader (the runtime fails such reads after its timeout).
    this.readsOn = false;
    const members = new Set(this.memberNodes().map((n) => n.id));
    const readDeadline = this.now + budget;
    for (;;) {
      const waiting = this.checker.pendingReads().filter((r) => members.has(r.replica));
      if (waiting.length === 0) break;
      if (this.now >= readDeadline) {
        const stuck = waiting.slice(0, 5).map((r) => `${r.ctx}@${r.replica} (t=${r.tick})`);
        this.checker.fail(
          "liveness",
          `reads ${stuck.join(", ")} got no index ${budget} ticks after faults stopped`,
        );
      }
      this.step();
    }
  }

  /** Every member of the latest configuration applied the whole chosen log, with one history. */
  private converged(): boolean {
    const members = this.memberNodes();
    const first = members[0]!.machine;
    if (first.appliedSlot < this.checker.chosenSlots) return false;
    return members.every(
      (n) => n.machine.appliedSlot === first.appliedSlot && n.machine.hash === first.hash,
    );
  }

  /** Each replica's role, chosen prefix and latest configuration, for a failure's message. */
  private describeNodes(): string {
    return this.nodes
      .map((n) => {
        if (n.core === null) return `${n.id}: down`;
        const st = n.core.status();
        const latest = n.core.membership().latest;
        const members =
          latest === null
            ? "none"
            : `${latest.members.map((m) => `${m.id}${m.voter ? "" : "L"}`).join(",")}@${latest.slot}+${latest.effectiveFrom}`;
        return `${n.id}: ${st.role} chosen=${st.chosenSlot} last=${st.lastSlot} members=${members}`;
      })
      .join("; ");
  }

  /** The replicas of the latest configuration the chosen log holds. */
  private memberNodes(): SimNode[] {
    const ids = new Set(this.checker.latestMembers().map((m) => m.id));
    return this.nodes.filter((n) => ids.has(n.id));
  }

  /**
   * One tick: deliver what arrives, let clients act, tick every core, let every origin resend
   * and expire (the runtime's expireRequests timer), drain every Ready.
   */
  private step(): void {
    this.now++;
    this.checker.now = this.now;
    for (const packet of this.network.deliver(this.now)) {
      const node = this.nodes[packet.to - 1]!;
      // Through the tick it wakes: it runs its timers and takes its clients' requests before it
      // reads what the network brought (Node's event loop runs timers before polling sockets).
      if (node.core === null || node.origin === null || this.now <= node.pausedUntil) continue;
      // The runtime copies what it keeps out of the transport's buffer.
      if (packet.channel === CHANNEL_FORWARD) {
        if (this.trace) this.log(`deliver forward ${packet.from}->${packet.to}`);
        node.origin.onForward(packet.from, packet.bytes.slice(), this.now);
        continue;
      }
      if (packet.channel === CHANNEL_FORWARD_REFUSED) {
        node.origin.onForwardRefused(packet.from, packet.bytes.slice(), this.now);
        continue;
      }
      const decoded = decodeMessage(packet.bytes);
      if (!decoded.ok) this.checker.fail("wire", `${decoded.code}: ${decoded.reason}`);
      if (this.trace) this.log(`deliver ${describeMessage(decoded.message)}`);
      node.core.step(decoded.message);
    }
    for (const client of this.clients) this.stepClient(client);
    this.askReads();
    for (const node of this.nodes) {
      if (node.core === null || this.paused(node)) continue;
      node.core.tick();
      // The runtime announces a commit whenever a follower waits on it: any time, in effect.
      if (this.prng.nextFloat() < ANNOUNCE_COMMIT_RATE) node.core.announceCommit();
      node.origin?.expireRequests(this.now);
      this.drain(node);
    }
    this.checker.checkDurability(this.disks());
  }

  private paused(node: SimNode): boolean {
    return this.now < node.pausedUntil;
  }

  private disks(): SimStorage[] {
    return this.nodes.map((n) => n.storage);
  }

  /** The runtime's pump(): notice a leader change, then hand out what the core has ready. */
  private drain(node: SimNode): void {
    node.origin?.noticeLeaderChange(this.now);
    node.loop?.pump();
    this.noteAmnesia(node);
  }

  /** The Ready loop's view of this replica's world: the network, its disk, the checker. */
  private loopIo(node: SimNode): ReadyLoopIo {
    return {
      send: (messages) => {
        for (const message of messages) this.checker.onSent(message, node.storage);
        this.sendAll(messages);
      },
      apply: (ready) => this.apply(node, ready),
      append: (persist) => {
        // As the runtime does: a joiner that learned it votes makes its marker durable first.
        if (persist.recovering === true && this.scenario.bug !== "no-recovery-marker")
          node.storage.recoveryMarker = true;
        if (this.faultsOn && this.crashAllowed(node) && this.crashBeforePersist(persist)) {
          this.crash(node, "crash before the persist completed");
          return;
        }
        node.storage.append(persist);
        node.hintDeferred = isHintOnly(persist);
      },
      flush: () => {
        node.storage.flush();
        node.hintDeferred = false;
        return undefined;
      },
      advanced: (ready) => {
        // As the runtime does: the marker goes once the batch completing recovery is durable.
        if (ready.persist?.recovered === true && this.scenario.bug !== "no-recovery-marker")
          node.storage.recoveryMarker = false;
        if (node.core === null) return;
        // Crash point: part-way through a recovery, just after it persisted what it learned.
        if (
          this.faultsOn &&
          node.core.role === "recovering" &&
          ready.persist !== null &&
          this.scenario.durability === "fsync" &&
          this.prng.nextFloat() < 4 * this.scenario.crashPointRate
        ) {
          this.crash(node, "crash part-way through recovery");
          return;
        }
        node.origin?.noticeLeaderChange(this.now);
        this.noteLeadership(node);
        this.maybeCompact(node);
        if (
          this.faultsOn &&
          node.hintDeferred &&
          this.crashAllowed(node) &&
          this.prng.nextFloat() < this.scenario.crashPointRate
        ) {
          this.crash(node, "crash after a deferred chosen-slot hint was reported");
        }
      },
      fatal: (error) => {
        throw error;
      },
    };
  }

  /** Torn persists at random, and targeted: a crash just before a promise becomes durable. */
  private crashBeforePersist(persist: PersistBatch): boolean {
    if (this.prng.nextFloat() < this.scenario.tornPersistRate) return true;
    return persist.promised !== null && this.prng.nextFloat() < this.scenario.crashPointRate;
  }

  /** A replica that lost its state stops being excused once it votes again (or recovered). */
  private noteAmnesia(node: SimNode): void {
    if (
      node.storage.amnesiac &&
      node.core !== null &&
      node.core.role !== "recovering" &&
      !node.core.status().joining // a rejoining replica may yet find it must recover
    ) {
      node.storage.amnesiac = false;
      this.log(
        `replica ${node.id} votes again (${node.core.recoveries > 0 ? "recovered" : "without recovering"})`,
      );
    }
  }

  private noteLeadership(node: SimNode): void {
    const status = node.core!.status();
    if (status.role !== "leader" || status.ballot === node.ledBallot) return;
    node.ledBallot = status.ballot;
    this.elections++;
    this.log(`replica ${node.id} leads with ballot ${formatBallot(status.ballot)}`);
  }

  /**
   * Install and apply, as ConsensusNode.apply: every replica runs each request once through the
   * client sessions; the origin (id and incarnation) answers its own requests.
   */
  private apply(node: SimNode, ready: Ready): void {
    for (const read of ready.reads) this.checker.onReadIndex(node.id, read.ctx, read.index);
    if (ready.snapshot !== null) {
      node.machine.install(ready.snapshot);
      this.checker.onApplied(node.id, ready.snapshot.slot, node.machine.hash);
    }
    for (const entry of ready.chosen) {
      this.checker.onChosen(node.id, entry);
      const ran: string[] = [];
      const mine: number[] = [];
      const skippedBefore = node.machine.duplicates;
      node.machine.apply(entry.slot, entry.batch, (header) => {
        ran.push(requestKey(header));
        if (header.origin === node.id && header.incarnation === node.incarnation)
          mine.push(header.requestId);
      });
      this.checker.onApplied(node.id, entry.slot, node.machine.hash);
      if (this.checker.onExecuted(node.id, entry.slot, ran))
        this.duplicates += node.machine.duplicates - skippedBefore;
      for (const requestId of mine) node.origin?.onOwnReply(requestId, entry.slot);
    }
    if (node.core !== null && (ready.chosen.length > 0 || ready.snapshot !== null))
      this.checker.checkMembership(
        node.id,
        node.machine.appliedSlot,
        node.core.membership().latest,
      );
  }

  /**
   * The runtime serializes the store in the background and hands the snapshot to the core when
   * it is done, while the log goes on being applied (changes of membership included). So every
   * other snapshot here is handed over only after 2 × membershipLag + 4 more slots were applied
   * (a crash loses it). Decided by count, not drawn: the fault draws of a seed stay as they were.
   */
  private maybeCompact(node: SimNode): void {
    const every = this.scenario.compactEverySlots;
    const core = node.core!;
    const pending = node.pendingSnapshot;
    if (pending !== null) {
      if (node.machine.appliedSlot < pending.slot + 2 * this.scenario.membershipLag + 4) return;
      node.pendingSnapshot = null;
      core.compact(pending);
      return;
    }
    if (every === 0 || node.machine.appliedSlot - core.status().snapshotSlot < every) return;
    const snapshot = node.machine.takeSnapshot();
    if (node.snapshotsTaken++ % 2 === 1) node.pendingSnapshot = snapshot;
    else core.compact(snapshot);
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) {
      // Targeted delay: hold back the answers that decide who wins a race.
      const extra =
        RACE_MESSAGES.has(message.type) && this.prng.nextFloat() < this.scenario.raceDelayRate
          ? 1 + this.prng.nextInt(this.scenario.electionTicks)
          : 0;
      this.network.send(
        this.now,
        {
          from: message.from,
          to: message.to,
          channel: CHANNEL_CORE,
          bytes: encodeMessage(message),
        },
        extra,
      );
    }
  }

  // ---- clients --------------------------------------------------------------------------------

  /** Linearizable reads at random replicas; the checker judges the index each gets. */
  private askReads(): void {
    const rate = this.scenario.readRate;
    if (rate === 0 || !this.readsOn) return;
    for (const node of this.nodes) {
      if (node.core === null || this.paused(node) || this.readPrng.nextFloat() >= rate) continue;
      const ctx = ++this.readCtx;
      if (node.core.read(ctx) !== "queued") continue;
      this.checker.onReadAsked(node.id, ctx);
      if (this.trace) this.log(`replica ${node.id} asked for read ${ctx}`);
    }
  }

  /** A client's next replica: any member of the latest configuration. */
  private anyReplica(): number {
    const members = this.memberNodes();
    return members[this.prng.nextInt(members.length)]!.id;
  }

  /** A client starts an operation (during faults only) and sends it to its replica. */
  private stepClient(client: SimClient): void {
    if (client.wait !== null) return;
    if (client.body === null) {
      if (!this.faultsOn) return;
      client.begin(this.prng);
    }
    if (this.now < client.sendAtTick) return;
    const node = this.nodes[client.target - 1]!;
    if (this.paused(node)) return; // its connection hangs until the process runs again
    const origin = node.origin;
    if (origin === null) {
      client.retry(this.anyReplica(), this.now + 1); // connection refused
      return;
    }
    client.attempt++;
    const command = logCommand(client.body!);
    const request = origin.submit(client.id, client.attempt, command, this.now);
    if (request === null) {
      this.answers.busy++;
      client.retry(
        this.anyReplica(),
        this.now + 1 + this.prng.nextInt(this.scenario.electionTicks),
      );
      return;
    }
    const header = readLogHeader(command)!;
    this.checker.onSubmitted(header, command);
    client.wait = { node: node.id, incarnation: origin.incarnation, key: requestKey(header) };
    if (this.trace)
      this.log(
        `client ${client.id} sends operation ${client.operation} as request ${client.wait.key}`,
      );
    this.drain(node);
  }

  /** The origin answers a client (the reply router): acknowledged, or an error. */
  private answer(node: SimNode, request: PendingRequest, outcome: RequestOutcome): void {
    const client = this.clients[request.connId - 1]!;
    const key = requestKey({
      origin: node.id,
      incarnation: node.incarnation,
      requestId: request.requestId,
    });
    if (client.attempt !== request.seq || client.wait?.key !== key) {
      this.checker.fail("integrity", `request ${key} answered, but its client waits on another`);
    }
    if (this.trace)
      this.log(
        `request ${key} answered ${outcome.kind === "ok" ? `ok from slot ${outcome.slot}` : outcome.text}`,
      );
    if (outcome.kind === "ok") {
      this.checker.onAcked(key, outcome.slot);
      client.finish();
      return;
    }
    if (outcome.reason === "no-leader") {
      this.answers.notExecuted++;
      this.checker.onNotExecuted(key);
    } else {
      this.answers.timedOut++;
    }
    client.retry(this.anyReplica(), this.now + 1);
  }

  /** The origin crashed: its clients' connections drop, with no answer ("may or may not"). */
  private dropConnections(node: SimNode): void {
    for (const client of this.clients) {
      if (client.wait?.node !== node.id || client.wait.incarnation !== node.incarnation) continue;
      this.answers.lost++;
      client.retry(this.anyReplica(), this.now + 1);
    }
  }

  private originCounters(): {
    forwarded: number;
    refused: number;
    resent: number;
    expiredParked: number;
  } {
    const totals = { ...this.originTotals };
    for (const node of this.nodes)
      if (node.origin !== null) this.addOriginCounters(totals, node.origin);
    return totals;
  }

  private transferCounters(): TransferCounters {
    const totals = { ...this.transferTotals };
    for (const node of this.nodes)
      if (node.core !== null) this.addTransferCounters(totals, node.core);
    return totals;
  }

  private addTransferCounters(totals: TransferCounters, core: Replica): void {
    const counts = core.status().counters;
    totals.started += counts.transfersStarted;
    totals.completed += counts.transfersCompleted;
    totals.timedOut += counts.transfersTimedOut;
    totals.campaigns += counts.transferCampaigns;
    totals.campaignsWon += counts.transferCampaignsWon;
  }

  private addOriginCounters(totals: OriginCounters, origin: SimOrigin): void {
    totals.forwarded += origin.forwarded;
    totals.refused += origin.refused;
    totals.resent += origin.resent;
    totals.expiredParked += origin.expiredParked;
  }

  // ---- faults ---------------------------------------------------------------------------------

  /**
   * Ask a running leader to hand over: to the peer it finds most caught up, to a random peer (down,
   * stalled or recovering ones included), or to the peer with the lowest chosen prefix.
   */
  private transfer(): void {
    const leaders = this.nodes.filter((n) => n.core?.role === "leader" && !this.paused(n));
    if (leaders.length === 0) return;
    const leader = leaders[this.transferPrng.nextInt(leaders.length)]!;
    const core = leader.core!;
    const others = this.nodes.filter((n) => n.id !== leader.id);
    const how = this.transferPrng.nextInt(3);
    let target: number | undefined;
    if (how === 1 && others.length > 0) {
      target = others[this.transferPrng.nextInt(others.length)]!.id;
    } else if (how === 2 && core.status().peers.length > 0) {
      const peers = core.status().peers;
      target = peers.reduce((low, p) => (p.chosenSlot < low.chosenSlot ? p : low)).id;
    }
    const result = core.transferLeadership(target);
    this.log(
      `replica ${leader.id} transfers leadership (${["most caught up", "random", "most lagging"][how]}): ${result.started ? `to ${result.target}` : result.reason}`,
    );
    this.drain(leader);
  }

  /**
   * Ask a running leader for a membership change: add a replica outside the configuration as a
   * learner, promote a learner, demote or remove a member, or (one time in four) make an
   * arbitrary set of the members voters at once. Changes keep at most 9 voters.
   */
  private changeMembership(): void {
    const leaders = this.nodes.filter((n) => n.core?.role === "leader" && !this.paused(n));
    if (leaders.length === 0) return;
    const leader = leaders[this.membershipPrng.nextInt(leaders.length)]!;
    const core = leader.core!;
    const latest = core.membership().latest;
    if (latest === null) return;
    const members = latest.members.map((m) => ({ ...m }));
    const outside = this.nodes.filter((n) => !members.some((m) => m.id === n.id));
    // As `apus member promote` checks that a learner caught up: only a replica that is up and
    // votes already (it finished joining or recovering) is made a voter. Promoting one that has
    // yet to recover would leave two voters recovering, each waiting for the other's answer.
    const ready = (id: number): boolean => {
      const core = this.nodes[id - 1]?.core;
      return (
        core !== null && core !== undefined && core.role !== "recovering" && !core.status().joining
      );
    };
    const learners = members.filter((m) => !m.voter && ready(m.id));
    const voters = members.filter((m) => m.voter);
    const prng = this.membershipPrng;
    const how = prng.nextInt(8);
    let next: Member[];
    let what: string;
    if (how === 0 && outside.length > 0) {
      const id = outside[prng.nextInt(outside.length)]!.id;
      next = [...members, { id, voter: false, address: "" }];
      what = `add ${id} as learner`;
    } else if (how <= 2 && learners.length > 0 && voters.length < 9) {
      const id = learners[prng.nextInt(learners.length)]!.id;
      next = members.map((m) => (m.id === id ? { ...m, voter: true } : m));
      what = `promote ${id}`;
    } else if (how === 3 && voters.length > 1) {
      const id = voters[prng.nextInt(voters.length)]!.id;
      next = members.map((m) => (m.id === id ? { ...m, voter: false } : m));
      what = `demote ${id}`;
    } else if (how === 4 && members.length > 1) {
      const id = members[prng.nextInt(members.length)]!.id;
      next = members.filter((m) => m.id !== id);
      what = `remove ${id}`;
    } else if (how >= 6) {
      // Any set of voters among the members and the replicas outside (at most 9, at least 1).
      const pool = [...members.map((m) => m.id), ...outside.map((n) => n.id)];
      const eligible = members.filter((m) => m.voter || ready(m.id)).map((m) => m.id);
      const chosen = eligible.filter(() => prng.nextInt(2) === 0).slice(0, 9);
      if (chosen.length === 0) chosen.push(eligible[prng.nextInt(eligible.length)]!);
      next = pool.map((id) => ({ id, voter: chosen.includes(id), address: "" }));
      what = `voters become ${chosen.join(",")}`;
    } else return;
    const result = core.changeMembership(next);
    if (result.queued) this.membershipChanges++;
    this.log(
      `replica ${leader.id} is asked to ${what}: ${result.queued ? "queued" : result.reason}`,
    );
    this.drain(leader);
  }

  private injectFaults(): void {
    const s = this.scenario;
    for (const node of this.nodes) {
      if (node.core === null && this.now >= node.downUntil) this.start(node);
    }
    if (s.crashRate > 0 && this.prng.nextFloat() < s.crashRate) {
      const up = this.crashable(s.durability === "memory");
      if (up.length > 0) this.crash(up[this.prng.nextInt(up.length)]!, "crash");
    }
    if (s.wipeRate > 0 && this.prng.nextFloat() < s.wipeRate) {
      const up = this.crashable(true);
      if (up.length > 0)
        this.crash(up[this.prng.nextInt(up.length)]!, "crash, disk replaced", true);
    }
    if (s.duelRate > 0 && this.prng.nextFloat() < s.duelRate) this.duel();
    if (s.pauseRate > 0 && this.pausePrng.nextFloat() < s.pauseRate) {
      const running = this.nodes.filter((n) => n.core !== null && !this.paused(n));
      if (running.length > 0) {
        const node = running[this.pausePrng.nextInt(running.length)]!;
        node.pausedUntil = this.now + 1 + this.pausePrng.nextInt(3 * s.electionTicks);
        this.log(`replica ${node.id} stalls until t=${node.pausedUntil}`);
      }
    }
    if (s.transferRate > 0 && this.transferPrng.nextFloat() < s.transferRate) this.transfer();
    if (s.membershipRate > 0 && this.membershipPrng.nextFloat() < s.membershipRate)
      this.changeMembership();

    if (this.network.partitioned && this.now >= this.partitionEndTick) {
      this.network.heal();
      this.log("partition heals");
    } else if (
      !this.network.partitioned &&
      s.partitionRate > 0 &&
      this.prng.nextFloat() < s.partitionRate
    ) {
      for (let id = 1; id <= this.nodes.length; id++) this.network.side[id] = this.prng.nextInt(2);
      this.partitionEndTick = this.now + s.electionTicks * (1 + this.prng.nextInt(8));
      this.partitions++;
      this.log(`partition ${this.network.side.slice(1).join("")} until t=${this.partitionEndTick}`);
    }
  }

  /**
   * Replicas that may crash now. A crash that loses state (memory durability, a wiped disk) is
   * allowed only while every other replica is up and holds its state: a lost majority of states
   * is beyond what any mode promises, and the checker would rightly complain.
   */
  private crashable(losesState: boolean): SimNode[] {
    const up = this.nodes.filter((n) => n.core !== null);
    if (!losesState) {
      // With memory durability any crash loses state; callers pass true then.
      return up;
    }
    if (this.scenario.replicaCount < 3) return []; // one replica's state is all there is
    // The others that were ever members: a spare never added holds nothing anyone waits for.
    const members = new Set<number>();
    for (const entry of this.checker.membership.all())
      for (const m of entry.members) members.add(m.id);
    const others = (n: SimNode) => this.nodes.filter((o) => o !== n && members.has(o.id));
    return up.filter(
      (n) =>
        !this.soleVoter(n.id) && others(n).every((o) => o.core !== null && !o.storage.amnesiac),
    );
  }

  /** The only voter of a configuration the chosen log holds: its state is all there is. */
  private soleVoter(id: number): boolean {
    return this.checker.membership.all().some((entry) => {
      const voters = entry.members.filter((m) => m.voter);
      return voters.length === 1 && voters[0]!.id === id;
    });
  }

  /** A crash of `node` now stays within what the durability mode promises (see crashable). */
  private crashAllowed(node: SimNode): boolean {
    return this.scenario.durability !== "memory" || this.crashable(true).includes(node);
  }

  /** Two replicas time out at once (their clocks jump) and campaign against each other. */
  private duel(): void {
    const up = this.nodes.filter((n) => n.core !== null);
    if (up.length < 2) return;
    const first = up[this.prng.nextInt(up.length)]!;
    const rest = up.filter((n) => n !== first);
    const second = rest[this.prng.nextInt(rest.length)]!;
    this.log(`duel: replicas ${first.id} and ${second.id} time out together`);
    for (const node of [first, second]) {
      for (let i = 0; i < 2 * this.scenario.electionTicks && node.core !== null; i++) {
        node.core.tick();
        this.drain(node);
      }
    }
  }

  private crash(node: SimNode, why: string, wipe = false): void {
    this.dropConnections(node);
    this.checker.dropReads(node.id);
    if (node.origin !== null) this.addOriginCounters(this.originTotals, node.origin);
    if (node.core !== null) this.addTransferCounters(this.transferTotals, node.core);
    node.origin = null;
    node.core = null;
    node.pendingSnapshot = null; // the background serialization dies with the process
    node.loop?.stop();
    node.loop = null;
    node.storage.loseUnwritten();
    if (wipe || this.scenario.durability === "memory") node.storage.wipe();
    node.downUntil = this.now + 1 + this.prng.nextInt(4 * this.scenario.electionTicks);
    this.crashes++;
    this.log(`replica ${node.id}: ${why}; restarts at t=${node.downUntil}`);
  }

  /** The origin's side channels go through the lossy network; its answers reach the clients. */
  private originIo(node: SimNode): SimOriginIo {
    return {
      send: (to, channel, bytes) =>
        this.network.send(this.now, { from: node.id, to, channel, bytes }),
      answer: (request, outcome) => this.answer(node, request, outcome),
      ...(this.trace ? { trace: (line: string) => this.log(line) } : {}),
    };
  }

  /** Start (or restart) a replica from its disk alone: all memory is new. */
  private start(node: SimNode): void {
    const s = this.scenario;
    node.incarnation++;
    node.machine = new SimStateMachine(s.bug === "no-sessions");
    node.hintDeferred = false;
    const lostState = node.storage.amnesiac;
    // The runtime's rule (consensus-node.ts): recover when the durable marker is set, or when
    // nothing is on disk in a cluster that ran before (--initial-cluster-state existing, which an
    // operator gives a replica that lost its state). The marker is written before anything else.
    const spare = node.id > s.replicaCount;
    // A spare that lost its state is started again by an operator: half the time with its first
    // command line (--join, knowing nothing), which the core must notice when the configuration
    // it learns names it a voter; else recovering from the bootstrap replicas.
    const rejoin =
      spare &&
      s.bug !== "amnesiac-votes" &&
      !node.storage.recoveryMarker &&
      lostState &&
      node.storage.empty &&
      this.membershipPrng.nextInt(2) === 0;
    const recovering =
      s.bug !== "amnesiac-votes" &&
      !rejoin &&
      (node.storage.recoveryMarker || (lostState && node.storage.empty));
    if (recovering && s.bug !== "no-recovery-marker") node.storage.recoveryMarker = true;
    // As the runtime: a spare that joins with nothing on disk holds the marker while it joins.
    if (spare && !recovering && node.storage.empty && s.bug !== "no-recovery-marker")
      node.storage.recoveryMarker = true;
    // A spare joins knowing no configuration; one that recovers asks the bootstrap replicas first
    // (and every member of each configuration it learns from their answers).
    const bootstrap: Member[] = Array.from({ length: s.replicaCount }, (_, i) => ({
      id: i + 1,
      voter: true,
      address: "",
    }));
    node.core = this.makeReplica(
      {
        id: node.id,
        replicaCount: s.replicaCount,
        ...(spare ? { members: recovering ? bootstrap : null } : {}),
        membershipLag: s.membershipLag,
        electionTicks: s.electionTicks,
        heartbeatTicks: 1,
        retransmitTicks: 2 * s.faults.delayTicksMax + 1,
        windowSlots: s.windowSlots,
        adaptiveBatching: s.adaptiveBatching,
        proposalQueueMax: s.proposalQueueMax,
        catchupEntriesMax: s.catchupEntriesMax,
        compactionTailSlots: s.compactionTailSlots,
        prng: new SeededPrng(this.prng.next32()),
        // The runtime recovers a replica that lost its state (--initial-cluster-state existing);
        // the planted bug starts it as if the cluster were new.
        recovering,
      },
      node.incarnation > 1 ? node.storage.read() : undefined,
    );
    node.origin = new SimOrigin(node.core, this.originIo(node), {
      id: node.id,
      incarnation: node.incarnation,
      pendingRequestsMax: s.pendingRequestsMax,
      requestTimeoutTicks: s.requestTimeoutTicks,
      resendAfterTicks: s.resendAfterTicks,
      clusterdownAfterSend: s.bug === "clusterdown-after-send",
    });
    node.loop = new ReadyLoop(node.core, this.loopIo(node), { durable: true });
    if (node.incarnation > 1)
      this.log(`replica ${node.id} restarts ${lostState ? "with no state" : "from disk"}`);
    this.drain(node);
  }
}

export function runScenario(scenario: Scenario, trace?: TraceSink): SimResult {
  return new Simulator(scenario, trace).run();
}

export function replayCommand(scenario: Scenario): string {
  const bug = scenario.bug ? ` --bug ${scenario.bug}` : "";
  return `npm run sim -- --seed ${scenario.seed} --replicas ${scenario.replicaCount}${bug} --trace`;
}

export function formatFailure(result: SimResult): string {
  return `${result.violation?.message}\n  scenario: ${describeScenario(result.scenario)}\n  replay:   ${replayCommand(result.scenario)}`;
}
