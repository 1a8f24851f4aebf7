import { BALLOT_NONE, type Ballot, ballotOf, ballotReplica, ballotRound } from "./ballot.ts";
import { type CoreConfig, type CoreOptions, resolveCoreConfig } from "./config.ts";
import { assert } from "./errors.ts";
import { type LogEntry, SlotLog } from "./log.ts";
import {
  isMember,
  isVoter,
  type Member,
  type MembershipChange,
  type MembershipEntry,
  MembershipHistory,
  membersProblem,
  popcount,
  REPLICA_ID_MAX,
  sortedMembers,
  voterMask,
} from "./membership.ts";
import type { DurableState, PersistBatch, ReadState, Ready } from "./ready.ts";
import {
  type Accept,
  type Accepted,
  type AcceptedEntry,
  type Batch,
  type Chosen,
  type ChosenEntry,
  type Heartbeat,
  type HeartbeatReply,
  type InstallSnapshot,
  type Message,
  MessageType,
  NOOP,
  type Prepare,
  type Probe,
  type ProbeReply,
  type PromiseMessage,
  type ReadIndex,
  type ReadIndexReply,
  type Recover,
  type RecoverReply,
  type Slot,
  type Snapshot,
  type TimeoutNow,
} from "./types.ts";

/**
 * "recovering": this replica lost its durable state (memory durability after a restart, a wiped or
 * replaced data directory) and promises and accepts nothing until every other replica has told it
 * what it may have promised and voted for (see the recovery section below).
 */
export type Role = "recovering" | "follower" | "candidate" | "leader";
export type ProposeResult = "queued" | "not-leader" | "queue-full";
export type ReadResult = "queued" | "queue-full";
/**
 * transferLeadership's answer. "started": the transfer to `target` is under way (or already was);
 * the others say why none started: this replica does not lead, the named replica is no peer of
 * ours (or is ourselves), or no peer answered within an election timeout (none could take over).
 */
export type TransferResult =
  | { readonly started: true; readonly target: number }
  | { readonly started: false; readonly reason: "not-leader" | "bad-target" | "no-target" };

/**
 * changeMembership's answer. "queued": the change will be proposed in a slot of its own (watch
 * membership() for it). Otherwise why not: this replica does not lead; a change is already in
 * flight or chosen and not yet governing; `base` is not the latest configuration; the member
 * list is not a configuration (the reason says why); or it equals the latest one.
 */
export type ChangeResult =
  | { readonly queued: true; readonly base: Slot }
  | {
      readonly queued: false;
      readonly reason: "not-leader" | "pending" | "stale-base" | "invalid" | "unchanged";
      readonly detail?: string;
    };

/** What the leader knows of one peer. */
interface PeerProgress {
  /** Highest contiguous chosen slot the peer reported to this leader. */
  chosenSlot: Slot;
  /** Tick of the last reply from the peer (check-quorum). */
  heardTick: number;
  /** The peer has replied at least once in this leadership (so chosenSlot means something). */
  replied: boolean;
  /** Highest slot sent to the peer in catch-up. Invariant: catchupSlot <= our chosenSlot. */
  catchupSlot: Slot;
  /** Tick the peer's chosenSlot last rose: catch-up with no progress for a while is resent. */
  progressTick: number;
  /** Tick of the first report below chosenSlot since the last one at or above it, or -1. */
  lowSinceTick: number;
  /** Highest read round this peer echoed under our ballot (see the read section). */
  readRound: number;
  /** The peer voted (an Accepted) in this leadership: it neither joins nor recovers any more. */
  voted: boolean;
}

/** Catch-up messages a leader keeps in flight to one peer. */
const CATCHUP_PIPELINE = 4;

/** A slot the leader proposed and has not yet seen chosen. */
interface InFlight {
  /** Bit (1 << id) per replica whose vote for the slot under the current ballot is durable. */
  votes: number;
  sentTick: number;
}

interface AskedRead {
  readonly ctx: number;
  askedTick: number;
  /** The ballot we led when we registered it with ourselves (BALLOT_NONE: asked of a leader). */
  registeredIn: Ballot;
}

interface LeaderRead {
  readonly from: number;
  readonly nonce: number;
  readonly seq: number;
  readonly index: Slot;
  readonly round: number;
}

/**
 * Drop the consumed front [0, head) of a FIFO kept as an array and a head index, once it is at
 * least half the array (amortized O(1) per item): a queue that never drains completely under
 * steady load would otherwise keep every item it ever held. Returns the new head (0 or unchanged).
 */
function compactFront<T>(items: T[], head: number): number {
  if (head === items.length) {
    items.length = 0;
    return 0;
  }
  if (head < 1024 || 2 * head < items.length) return head;
  items.splice(0, head);
  return 0;
}

function commandBytes(batch: Batch): number {
  let bytes = 0;
  for (const command of batch.commands) bytes += command.byteLength;
  return bytes;
}

/**
 * One Multi-Paxos replica: acceptor, learner and (when elected) leader, with no I/O.
 * Time enters as tick(), messages as step(), commands as propose(); the output is ready().
 * See README "The core" for the protocol; invariants are asserted and never turned off.
 */
export class Replica {
  readonly config: CoreConfig;
  readonly id: number;
  /** Logical time: ticks since this incarnation started. */
  private now = 0;
  private roleValue: Role = "follower";

  // ---- acceptor and learner state -------------------------------------------------------------
  /** Highest ballot promised. Durable. Invariant: never decreases. */
  private promised: Ballot = BALLOT_NONE;
  protected readonly log = new SlotLog();
  /** Highest slot such that every slot <= it is known chosen. Invariant: compacted <= applied <= chosen. */
  private chosenSlot: Slot = 0;
  /** Highest slot handed to the caller in Ready.chosen (or covered by a snapshot handed out). */
  private appliedSlot: Slot = 0;
  /** Latest snapshot (installed or compacted into), for catching up peers. */
  private snapshot: Snapshot | null = null;
  /** Highest round seen in any ballot; a new campaign uses the next one. */
  private roundMax = 0;

  // ---- membership (see membership.ts) -------------------------------------------------------------
  /** The configurations of our chosen prefix and the slots above it. */
  private readonly members: MembershipHistory;
  /** Every other replica of a configuration in `members`, sorted: whom we send to and hear. */
  private peerIds: number[] = [];
  /** As leader: a change waiting for its slot (changeMembership). */
  private changeQueued: MembershipChange | null = null;
  /** A joiner that knows no configuration recovers by asking these first (the candidate that asked it). */
  private readonly recoverySeeds = new Set<number>();
  /** Started with no configuration and no state: votes for nothing until finishJoining. */
  private joining = false;
  /** As leader: the tick this leadership began. */
  private leaderSinceTick = 0;
  /** As leader: a vote was recorded for a slot beyond chosenSlot + lag, to count once it is not. */
  private deferredVotes = false;
  /**
   * Highest change slot whose configuration a majority of its voters is known to hold up to its
   * effectiveFrom - 1 (see handedOver): from then on it may govern. Only grows.
   */
  private handedOverSlot = 0;

  // ---- what this replica knows of the leader --------------------------------------------------
  private leaderId = 0;
  private leaderBallot: Ballot = BALLOT_NONE;
  /** Commit point announced by leaderBallot's leader. */
  protected leaderCommitSlot: Slot = 0;
  private leaderHeardTick = Number.NEGATIVE_INFINITY;
  private electionElapsed = 0;
  private electionTimeout = 0;

  // ---- recovering -----------------------------------------------------------------------------
  /** Tells this recovery's answers from an earlier incarnation's. Drawn from the injected prng. */
  private recoverNonce = 0;
  /**
   * Bit per replica whose answer was complete (not cut) and asked from at most our chosen prefix
   * + 1: it told us every vote it holds above that prefix. A recovering peer does not count.
   */
  private recoverAnswered = 0;
  /** Highest promise any answer carried. */
  private recoverPromised: Ballot = BALLOT_NONE;
  /** Bit per replica whose latest answer said it is recovering too. */
  private recoverPeersRecovering = 0;
  /** Per peer: fromSlot of our latest question, and the tick it left (one question in flight). */
  private readonly recoverAskedFrom: Slot[] = [];
  private readonly recoverAskedTick: number[] = [];
  /**
   * Per peer: questions in a row without an answer. The wait before asking again doubles with
   * each (up to 8 retransmit intervals): an answer may be a snapshot that takes long to arrive,
   * and asking again makes the peer send it again.
   */
  private readonly recoverAskedTries: number[] = [];

  // ---- candidate ------------------------------------------------------------------------------
  /** Ballot this replica campaigns with or leads in; BALLOT_NONE as a plain follower. */
  private ballot: Ballot = BALLOT_NONE;
  private phase: "probe" | "prepare" = "probe";
  private probeBallot: Ballot = BALLOT_NONE;
  private probeGrants = 0;
  private prepareFromSlot: Slot = 0;
  private promiseVotes = 0;
  private promiseMore = false;
  /** Tick our Prepares last left (Phase 1 resends them every retransmitTicks; see resendPrepares). */
  private prepareSentTick = 0;
  private selfPromiseDurable = false;
  /** Highest-ballot vote per unchosen slot, merged from promises. */
  private readonly recovered = new Map<Slot, AcceptedEntry>();

  // ---- leader ---------------------------------------------------------------------------------
  private nextSlot: Slot = 1;
  private readonly inFlight = new Map<Slot, InFlight>();
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  private queueStampMs = 0;
  /** Commands in the last batch proposed (adaptiveBatching: the next waits for as many). */
  private lastBatchCommands = 1;
  private readonly peers: PeerProgress[] = [];
  private heartbeatElapsed = 0;
  /** chosenSlot when the previous heartbeat went out: a peer still below it needs catch-up. */
  private commitMark: Slot = 0;
  /** Highest commit point sent to every peer (on an Accept or a heartbeat). */
  private commitSent: Slot = 0;

  // ---- leadership transfer (see the transfer section) --------------------------------------------
  /** As leader: the peer we hand over to, or 0. Invariant: 0 unless leading. */
  private transferTarget = 0;
  /** Tick the transfer began: it gives up after electionTicks. */
  private transferStartTick = 0;
  /** Tick TimeoutNow last left (resent every retransmitTicks while we still lead), or -infinity. */
  private transferSentTick = Number.NEGATIVE_INFINITY;
  /** Our commit point when we last pushed it to the target, so it can report itself caught up. */
  private transferCommitPushed: Slot = -1;
  /**
   * As follower: our leader released us from refusing this replica's campaign (a TimeoutNow
   * naming it) at tick transferReleasedTick. Lasts one election timeout, and only while we still
   * follow the leader of transferReleasedBallot, the one that asked: a release never lifts the
   * stickiness we owe a later leader. 0: none.
   */
  private transferReleasedTo = 0;
  private transferReleasedTick = Number.NEGATIVE_INFINITY;
  /** The ballot of the leader that granted transferReleasedTo. */
  private transferReleasedBallot: Ballot = BALLOT_NONE;
  /** The ballot of our last campaign started by a TimeoutNow, or BALLOT_NONE (transferCampaignsWon). */
  private transferCampaignBallot: Ballot = BALLOT_NONE;

  // ---- reads (see the read section) -----------------------------------------------------------
  /** Fresh per incarnation (drawn at the first read): ReadIndex answers meant for another are ignored. */
  private readNonce = 0;
  private readSeqNext = 1;
  /** This replica's reads waiting for an index, by seq. */
  private readonly readsAsked = new Map<number, AskedRead>();
  /** The seq of each asked read, by the caller's ctx (cancelRead). */
  private readonly readSeqByCtx = new Map<number, number>();
  /** As leader: reads (ours and followers') waiting for their round to be confirmed, in round order. */
  private readonly leaderReads: LeaderRead[] = [];
  private leaderReadsHead = 0;
  /** As leader: the last read round sent, and whether a read waits for the next one. */
  private readRoundSent = 0;
  private readRoundWanted = false;
  /** As leader: the highest slot Phase 1 found (or re-proposed); no read index is below it. */
  private readFloor: Slot = 0;
  private readsOut: ReadState[] = [];

  // ---- output being accumulated for the next Ready --------------------------------------------
  private persistPromised: Ballot | null = null;
  private persistAccepted: AcceptedEntry[] = [];
  private persistSnapshot: Snapshot | null = null;
  private persistChosenSlot = false;
  private persistRecovered = false;
  private persistRecovering = false;
  private install: Snapshot | null = null;
  private outNow: Message[] = [];
  private outAfter: Message[] = [];
  /** Own votes in the batch being accumulated: [slot, ballot] pairs. Counted once durable. */
  private selfVotes: number[] = [];
  private selfPromise: Ballot = BALLOT_NONE;
  /** Own votes in the batch handed out by ready() and not yet advance()d. */
  private selfVotesPending: number[] = [];
  private selfPromisePending: Ballot = BALLOT_NONE;
  private readyOutstanding = false;

  constructor(options: CoreOptions, durable?: DurableState) {
    this.config = resolveCoreConfig(options);
    this.id = this.config.id;
    const bootstrap =
      options.members !== undefined
        ? options.members
        : Array.from({ length: this.config.replicaCount }, (_, i) => ({
            id: i + 1,
            voter: true,
            address: "",
          }));
    this.members = MembershipHistory.bootstrap(this.config.membershipLag, bootstrap);
    for (let id = 0; id <= REPLICA_ID_MAX; id++) {
      this.peers.push({
        chosenSlot: 0,
        heardTick: 0,
        replied: false,
        catchupSlot: 0,
        progressTick: 0,
        lowSinceTick: -1,
        readRound: 0,
        voted: false,
      });
    }
    if (durable !== undefined) this.restore(durable);
    this.joining =
      options.members === null &&
      !this.members.known &&
      (durable === undefined ||
        (durable.snapshot === null && durable.accepted.length === 0 && durable.promised === 0));
    this.refreshPeers();
    this.resetElectionTimer();
    if (options.recovering === true) this.beginRecovery();
  }

  // ---- public interface -----------------------------------------------------------------------

  get role(): Role {
    return this.roleValue;
  }

  /** Majority of `voters` voters. A protected hook so a test can plant a wrong quorum. */
  protected quorumSize(voters: number): number {
    return Math.floor(voters / 2) + 1;
  }

  /** The ids in `mask` include a quorum of the voters of `members`. Protected for a planted bug. */
  protected quorumOf(mask: number, members: readonly Member[]): boolean {
    const voters = voterMask(members);
    return popcount(mask & voters) >= this.quorumSize(popcount(voters));
  }

  /** A quorum of each configuration in `configs`. */
  private quorumOfEach(mask: number, configs: readonly MembershipEntry[]): boolean {
    return configs.length > 0 && configs.every((c) => this.quorumOf(mask, c.members));
  }

  /**
   * The configurations that govern the slots a leader can decide next (chosenSlot + 1 up to
   * chosenSlot + lag), plus the latest: check-quorum, pre-vote and read rounds ask a majority of
   * each (at most two differ, since a change waits for the previous one to govern).
   */
  private liveConfigs(from = this.chosenSlot + 1): MembershipEntry[] {
    const configs = this.members.governing(from, this.chosenSlot + this.config.membershipLag);
    const latest = this.members.latest();
    if (latest !== null && !configs.includes(latest)) configs.push(latest);
    return configs;
  }

  /**
   * The configurations that govern the next slot to decide and, for a leader, the one it would
   * propose next: pre-vote asks a majority of these, and a leader steps down without one
   * (check-quorum). Not a configuration that governs only later: its voters may be the ones that
   * still lag, and only a leader of the current one can bring them up to date (handedOver).
   * Liveness only: Phase 1 asks what safety needs (phase1Configs).
   */
  private governingNext(upTo = this.chosenSlot + 1): MembershipEntry[] {
    const configs: MembershipEntry[] = [];
    for (const slot of [this.chosenSlot + 1, upTo]) {
      const config = this.members.at(slot) ?? this.members.latest();
      if (config !== null && !configs.includes(config)) configs.push(config);
    }
    return configs;
  }

  /**
   * Only a voter campaigns (a learner or a removed replica never does): a voter of the latest
   * configuration we know chosen, or of the one the changes among our votes above the chosen
   * prefix would make. The second matters for liveness only: a leader that removed itself may be
   * the only replica that knows its last change chosen, while the new voters hold it as a vote;
   * if they waited to know it chosen, nobody would campaign. Who campaigns is never a safety
   * question (Phase 1 asks the majorities of the configurations that govern).
   */
  private canCampaign(): boolean {
    return !this.joining && this.votesIn(this.id); // a joiner may have to recover first
  }

  /** `id` is a voter of one of nearConfigs(). */
  private votesIn(id: number): boolean {
    return this.inNearConfig((members) => isVoter(members, id));
  }

  /**
   * `id` is a member (voter or learner) of one of the configurations votesIn looks at. A probe
   * from anyone else is refused: a replica removed from every configuration we know. A replica
   * we know only as a learner may be a voter in a configuration we have not learned yet (we lag),
   * and a voter we lag behind may need our grant to bring us up to date: it is not refused.
   */
  private knownMember(id: number): boolean {
    return this.inNearConfig((members) => isMember(members, id));
  }

  /**
   * Whether `test` holds for one of the member lists that say who may campaign: the latest
   * configuration we know chosen, the
   * ones that govern our last chosen slot and the next (until the new voters hold everything
   * before a change, Replica.handedOver, only the old ones can bring them there), and the one the
   * changes among our votes above the chosen prefix would make.
   */
  private inNearConfig(test: (members: readonly Member[]) => boolean): boolean {
    for (const entry of [
      this.members.latest(),
      this.members.at(this.chosenSlot + 1),
      this.members.at(this.chosenSlot),
    ])
      if (entry !== null && test(entry.members)) return true;
    // Last, as it walks our votes above the chosen prefix (a window's worth, for a learner's tick).
    let projected: MembershipHistory | null = null;
    for (let slot = this.chosenSlot + 1; slot <= this.log.lastSlot; slot++) {
      const change = this.log.get(slot)?.batch.change;
      if (change === undefined) continue;
      projected ??= new MembershipHistory(this.config.membershipLag, this.members.all());
      projected.apply(slot, change);
    }
    const latest = projected?.latest();
    return latest !== undefined && latest !== null && test(latest.members);
  }

  /** Recompute peerIds: the members of the configurations from the one governing our chosen slot. */
  private refreshPeers(): void {
    const ids = new Set<number>();
    for (const entry of this.members.governing(this.chosenSlot, Number.MAX_SAFE_INTEGER))
      for (const m of entry.members) ids.add(m.id);
    ids.delete(this.id);
    this.peerIds = [...ids].sort((a, b) => a - b);
  }

  /** Apply the change chosen in `slot` (in slot order, as the chosen prefix grows). */
  private applyChange(slot: Slot, change: MembershipChange): void {
    if (this.members.apply(slot, change)) this.counts.membershipChanges++;
    else this.counts.membershipChangesIgnored++;
    // Older configurations stay until the log is compacted past them: a snapshot still being
    // taken (in the background) through a slot below our chosen prefix carries the ones that
    // govern that slot on (asOf); trimmed below our chosen slot, a late snapshot after two quick
    // changes carried none, and a replica restarting from it ignored every later change.
    this.members.trimBelow(this.membershipKeptFrom());
    this.refreshPeers();
  }

  /** The slot whose governing configuration is the oldest kept (protected: a planted bug trims more). */
  protected membershipKeptFrom(): Slot {
    return this.log.compactedSlot;
  }

  /**
   * The membership as this replica knows it: `current` governs our next slot (null while a
   * joining replica knows none), `latest` is the last chosen change (it governs from its
   * effectiveFrom on), and `history` every configuration held (from the one governing the
   * compacted slot on: the runtime keeps their members dialed until a compaction passes them).
   */
  membership(): {
    current: MembershipEntry | null;
    latest: MembershipEntry | null;
    history: readonly MembershipEntry[];
  } {
    return {
      current: this.members.at(this.chosenSlot + 1),
      latest: this.members.latest(),
      history: this.members.all(),
    };
  }

  /**
   * Propose a new configuration (leader only): `members` replace the latest one, which must be
   * `base` when given (a compare-and-set for administrative tools). One change at a time: refused
   * while another is queued, in flight, or chosen and not yet governing. Any member list with a
   * voter is safe (see membership.ts); the single-server discipline is the caller's.
   */
  changeMembership(members: readonly Member[], base?: Slot): ChangeResult {
    if (this.roleValue !== "leader") return { queued: false, reason: "not-leader" };
    const latest = this.members.latest();
    if (latest === null) return { queued: false, reason: "not-leader" };
    if (this.changePending()) return { queued: false, reason: "pending" };
    if (base !== undefined && base !== latest.slot) return { queued: false, reason: "stale-base" };
    const sorted = sortedMembers(members);
    const problem = membersProblem(sorted);
    if (problem !== null) return { queued: false, reason: "invalid", detail: problem };
    if (this.members.isLatest(sorted)) return { queued: false, reason: "unchanged" };
    const newVoter = sorted.find((m) => m.voter && !isMember(latest.members, m.id));
    if (newVoter !== undefined)
      return {
        queued: false,
        reason: "invalid",
        detail: `replica ${newVoter.id} is new: it joins as a learner first (its votes count once promoted)`,
      };
    this.changeQueued = { base: latest.slot, baseMembers: latest.members, members: sorted };
    return { queued: true, base: latest.slot };
  }

  /** A change queued, in flight, or chosen and not yet governing the slot we would propose next. */
  private changePending(): boolean {
    if (this.changeQueued !== null) return true;
    const latest = this.members.latest();
    if (latest !== null && latest.effectiveFrom > this.nextSlot) return true;
    for (const slot of this.inFlight.keys()) {
      if (this.log.get(slot)?.batch.change !== undefined) return true;
    }
    return false;
  }

  /** A read-only view for /status, logs and tests. */
  status() {
    return {
      id: this.id,
      role: this.roleValue,
      ballot: this.ballot,
      promised: this.promised,
      leaderId: this.roleValue === "leader" ? this.id : this.leaderId,
      chosenSlot: this.chosenSlot,
      appliedSlot: this.appliedSlot,
      compactedSlot: this.log.compactedSlot,
      /** The newest snapshot's slot; the log keeps a tail of chosen entries below it. */
      snapshotSlot: this.snapshot?.slot ?? 0,
      lastSlot: this.log.lastSlot,
      inFlightSlots: this.inFlight.size,
      /** Joined with no state and not caught up yet: votes for nothing (finishJoining). */
      joining: this.joining,
      /** While recovering: other replicas that answered that they are recovering too. */
      peersRecovering: popcount(this.recoverPeersRecovering),
      queuedCommands: this.queue.length - this.queueHead,
      /** As leader: the peer leadership is being handed to, or 0. */
      transferTarget: this.transferTarget,
      /** Reads this replica asked for and has no index for yet. */
      pendingReads: this.readsAsked.size,
      /** Running totals since start (see `counts`). */
      counters: { ...this.counts },
      peers: this.peerIds.map((id) => ({
        id,
        chosenSlot: this.peers[id]!.chosenSlot,
        heardTick: this.peers[id]!.heardTick,
        /** It voted in this leadership (a replica that joins or recovers votes for nothing). */
        voted: this.peers[id]!.voted,
      })),
    };
  }

  tick(): void {
    this.now++;
    assert(this.transferTarget === 0 || this.roleValue === "leader", "only a leader transfers");
    this.retryReads();
    if (this.roleValue === "recovering") {
      this.sendRecover(); // to peers whose answer is overdue
      return;
    }
    if (this.roleValue === "leader") {
      this.tickLeader();
      return;
    }
    if (!this.canCampaign()) {
      if (this.roleValue === "candidate") this.becomeFollower();
      this.electionElapsed = 0; // a learner, a removed or a joining replica never campaigns
      return;
    }
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) this.onElectionTimeout();
    else if (this.roleValue === "candidate" && this.phase === "prepare") this.resendPrepares();
  }

  /** Queue a client command at the leader. It is batched into a slot at the next ready(). */
  propose(command: Uint8Array, stampMs = 0): ProposeResult {
    if (this.roleValue !== "leader") return "not-leader";
    if (this.queue.length - this.queueHead >= this.config.proposalQueueMax) return "queue-full";
    this.queue.push(command);
    if (stampMs > this.queueStampMs) this.queueStampMs = stampMs;
    return "queued";
  }

  /** Leader known to this replica (itself when leading), or 0. */
  get knownLeader(): number {
    return this.roleValue === "leader" ? this.id : this.leaderId;
  }

  /**
   * What the core dropped or resent, for the runtime's metrics; read through status().counters.
   * - droppedMessages: messages step() refused as malformed or misaddressed.
   * - retransmittedAccepts: Accepts sent again because a peer had not voted within retransmitTicks.
   * - droppedReads: reads from followers refused because the leader's read queue was full.
   * - droppedFarSlots: messages or entries dropped because their slot lies more than slotsAheadMax
   *   beyond our chosen prefix: holding them would cost memory at a sender's say-so (an Accept for
   *   slot 2e8 is 40 bytes). Dropping an Accept costs only liveness; catch-up brings the slot later.
   */
  private readonly counts = {
    droppedMessages: 0,
    retransmittedAccepts: 0,
    droppedFarSlots: 0,
    /** Reads a leader refused because readsMax were already waiting for confirmation. */
    droppedReads: 0,
    /** Leadership transfers begun by this replica as leader (transferLeadership). */
    transfersStarted: 0,
    /** ... that ended with this leader meeting its target's higher ballot (the target campaigns). */
    transfersCompleted: 0,
    /** ... given up after an election timeout (the target never caught up or never campaigned). */
    transfersTimedOut: 0,
    /**
     * ... ended otherwise: this leader stopped leading before it met its target's higher ballot
     * (check-quorum, or a third replica's higher ballot), or a transfer to another target
     * replaced it (transferLeadership while one is under way).
     */
    transfersAborted: 0,
    /** TimeoutNow messages that started a campaign here at once. */
    transferCampaigns: 0,
    /** ... whose ballot became leader: won at the first Phase 1, as a transfer should. */
    transferCampaignsWon: 0,
    /** Membership changes applied from the chosen log. */
    membershipChanges: 0,
    /** A joiner learned a configuration that names it a voter, and recovers (configurationLearned). */
    joinedAsVoter: 0,
    /** ... chosen but not applied: a stale base, or a change while another was not yet governing. */
    membershipChangesIgnored: 0,
  };

  step(message: Message): void {
    if (!this.wellFormed(message)) {
      this.counts.droppedMessages++;
      return;
    }
    // A probe's ballot is only a question: counting its round would let probes inflate rounds.
    if (this.roleValue === "recovering") return this.stepRecovering(message);
    const round = ballotRound(message.ballot);
    if (round > this.roundMax && message.type !== MessageType.Probe) this.roundMax = round;
    switch (message.type) {
      case MessageType.Recover:
        return this.onRecover(message);
      case MessageType.RecoverReply:
        return; // an answer that came after we recovered
      case MessageType.Probe:
        return this.onProbe(message);
      case MessageType.ProbeReply:
        return this.onProbeReply(message);
      case MessageType.Prepare:
        return this.onPrepare(message);
      case MessageType.Promise:
        return this.onPromise(message);
      case MessageType.Nack:
        return this.onNack(message.ballot);
      case MessageType.Accept:
        return this.onAccept(message);
      case MessageType.Accepted:
        return this.onAccepted(message);
      case MessageType.Heartbeat:
        return this.onHeartbeat(message);
      case MessageType.HeartbeatReply:
        return this.onHeartbeatReply(message);
      case MessageType.Chosen:
        return this.onChosen(message);
      case MessageType.InstallSnapshot:
        return this.onInstallSnapshot(message);
      case MessageType.ReadIndex:
        return this.onReadIndex(message);
      case MessageType.ReadIndexReply:
        return this.onReadIndexReply(message);
      case MessageType.TimeoutNow:
        return this.onTimeoutNow(message);
    }
  }

  /**
   * Addressed to us from a peer, and a proposer's message carries a ballot of the sender's own:
   * no replica can speak for another's ballot.
   */
  private wellFormed(m: Message): boolean {
    if (m.to !== this.id || m.from === this.id || m.from < 1 || m.from > REPLICA_ID_MAX)
      return false;
    switch (m.type) {
      case MessageType.Probe:
      case MessageType.Prepare:
      case MessageType.Accept:
      case MessageType.Heartbeat:
      case MessageType.Chosen:
      case MessageType.InstallSnapshot:
      case MessageType.ReadIndexReply:
        return ballotRound(m.ballot) >= 1 && ballotReplica(m.ballot) === m.from;
      case MessageType.TimeoutNow:
        return (
          ballotRound(m.ballot) >= 1 &&
          ballotReplica(m.ballot) === m.from &&
          m.target >= 1 &&
          m.target <= REPLICA_ID_MAX &&
          m.target !== m.from
        );
      default:
        return true;
    }
  }

  hasReady(): boolean {
    return (
      this.persistPromised !== null ||
      this.persistAccepted.length > 0 ||
      this.persistSnapshot !== null ||
      this.persistChosenSlot ||
      this.persistRecovered ||
      this.persistRecovering ||
      this.install !== null ||
      this.outNow.length > 0 ||
      this.outAfter.length > 0 ||
      this.chosenSlot > this.appliedSlot ||
      this.readRoundWanted ||
      this.readsOut.length > 0 ||
      this.canFormBatch()
    );
  }

  /** Hand out everything pending. Call advance() once it is done, before the next ready(). */
  ready(): Ready {
    assert(!this.readyOutstanding, "ready() called again before advance()");
    this.formBatches();
    if (this.readRoundWanted) this.sendReadRound();
    const persist = this.takePersist();
    const chosen: ChosenEntry[] = [];
    for (let slot = this.appliedSlot + 1; slot <= this.chosenSlot; slot++) {
      const entry = this.log.get(slot);
      assert(entry?.chosen === true, "chosen prefix has a hole");
      chosen.push({ slot, batch: entry.batch });
    }
    this.appliedSlot = this.chosenSlot;
    const ready: Ready = {
      persist,
      messagesNow: this.outNow,
      messages: this.outAfter,
      snapshot: this.install,
      chosen,
      reads: this.readsOut,
    };
    this.readsOut = [];
    this.outNow = [];
    this.outAfter = [];
    this.install = null;
    this.selfVotesPending = this.selfVotes;
    this.selfVotes = [];
    this.selfPromisePending = this.selfPromise;
    this.selfPromise = BALLOT_NONE;
    this.readyOutstanding = true;
    return ready;
  }

  /** The last Ready is done: its persist is durable, so this replica's own votes now count. */
  advance(): void {
    assert(this.readyOutstanding, "advance() without ready()");
    this.readyOutstanding = false;
    const votes = this.selfVotesPending;
    this.selfVotesPending = [];
    for (let i = 0; i < votes.length; i += 2) {
      if (this.roleValue === "leader" && votes[i + 1] === this.ballot)
        this.recordVote(votes[i]!, this.id);
    }
    const promise = this.selfPromisePending;
    this.selfPromisePending = BALLOT_NONE;
    if (promise !== BALLOT_NONE && this.isPreparing(promise)) {
      this.selfPromiseDurable = true;
      this.countOwnPromise();
    }
  }

  /**
   * The caller saved a snapshot of the state machine through `snapshot.slot` (<= applied):
   * drop that prefix of the log. Far-behind peers are then sent the snapshot instead.
   */
  compact(snapshot: Snapshot): void {
    assert(snapshot.slot <= this.appliedSlot, "compact beyond the applied slot");
    if (snapshot.slot <= this.log.compactedSlot) return;
    if (this.snapshot !== null && snapshot.slot <= this.snapshot.slot) return;
    // The snapshot carries the configurations that govern the slots above it.
    const withMembers: Snapshot = this.members.known
      ? { ...snapshot, membership: this.members.asOf(snapshot.slot) }
      : snapshot;
    // Entries go only up to the tail (compactionTailSlots below the snapshot): a peer behind
    // by less is sent them; one behind the tail, the snapshot.
    this.log.compact(this.tailStart(snapshot.slot) - 1);
    this.members.trimBelow(this.membershipKeptFrom()); // what governs the compacted slot on
    this.refreshPeers();
    this.snapshot = withMembers;
    this.persistSnapshot = withMembers;
  }

  /** The lowest slot compact() keeps below a snapshot at `snapshotSlot` (snapshotSlot + 1: none). */
  private tailStart(snapshotSlot: Slot): Slot {
    let start = snapshotSlot + 1;
    let bytes = 0;
    while (
      start - 1 > this.log.compactedSlot &&
      snapshotSlot - start + 1 < this.config.compactionTailSlots
    ) {
      const entry = this.log.get(start - 1);
      if (entry === undefined) break;
      bytes += commandBytes(entry.batch);
      if (bytes > this.config.compactionTailBytes) break;
      start--;
    }
    return start;
  }

  // ---- recovery -------------------------------------------------------------------------------
  //
  // A replica that lost its durable state must not vote: it may have promised a ballot or voted
  // for a batch that a quorum counted on, and voting again without that memory is how Paxos loses
  // chosen values. It recovers first (after Viewstamped Replication Revisited's recovery, §4.3):
  // it asks EVERY other replica for its promise and its votes, and waits for an answer from each
  // (a replica that is itself recovering does not count). Then it adopts the highest promise
  // and, per unchosen slot, the highest-ballot vote of the answers, learns the chosen prefix they
  // carry, makes that durable, and only then becomes a follower that may vote.
  //
  // Why every other replica and not a majority: any ballot it promised before it lost its state
  // was first promised by that ballot's candidate (a candidate persists its own promise before
  // its Prepares leave), so the candidate's answer carries a promise at least as high. A vote it
  // forgot matters only if a leader counted it towards a quorum; a leader counts its own vote only
  // once durable, so the leader, or another member of that quorum, answers with a vote of at
  // least that ballot. An answer from each replica thus dominates everything it can have
  // forgotten; a majority of answers would miss a candidate whose Prepare it answered just before
  // it crashed. The cost: recovery waits until all the others are up.
  // Two replicas recovering at once wait for each other: with two states lost, a majority of a
  // three-replica cluster, nothing is certain any more, and stalling is the safe answer.

  private beginRecovery(): void {
    this.becomeFollower();
    this.roleValue = "recovering";
    this.leaderId = 0;
    this.recoverNonce = 1 + this.config.prng.nextInt(0xfffffffe);
    this.recoverPromised = BALLOT_NONE;
    this.recoverAnswered = 0;
    this.recovered.clear();
    this.recoverAskedTick.fill(Number.NEGATIVE_INFINITY);
    this.recoverAskedTries.fill(0);
    this.sendRecover();
  }

  /**
   * Whom a recovery must hear: every other voter of a configuration that governs a slot above
   * our chosen prefix (the answers' chosen entries may add configurations as we learn them).
   * Voters, because only a voter campaigns (a promise we forgot was first made by its candidate)
   * and only voters' votes make a quorum (a vote we forgot counted only with theirs); a learner's
   * answer adds nothing, and two learners recovering at once must not wait for each other.
   */
  private recoveryPeers(): number[] {
    if (!this.members.known) return [...this.recoverySeeds];
    const ids = new Set<number>();
    const configs = this.members.governing(this.chosenSlot + 1, Number.MAX_SAFE_INTEGER);
    for (const config of configs) for (const m of config.members) if (m.voter) ids.add(m.id);
    ids.delete(this.id);
    return [...ids];
  }

  /** Ask every replica whose complete answer we lack and whose answer is overdue. */
  private sendRecover(): void {
    for (const peer of this.recoveryPeers()) {
      if ((this.recoverAnswered & (1 << peer)) !== 0) continue;
      const asked = this.recoverAskedTick[peer] ?? Number.NEGATIVE_INFINITY;
      const tries = this.recoverAskedTries[peer] ?? 0;
      const wait = this.config.retransmitTicks * 2 ** Math.min(Math.max(tries - 1, 0), 3);
      if (this.now - asked >= wait) {
        this.recoverAskedTries[peer] = tries + 1;
        this.askRecover(peer);
      }
    }
    this.checkRecoveryDone();
  }

  private askRecover(peer: number): void {
    this.recoverAskedFrom[peer] = this.chosenSlot + 1;
    this.recoverAskedTick[peer] = this.now;
    const recover: Recover = {
      type: MessageType.Recover,
      from: this.id,
      to: peer,
      ballot: BALLOT_NONE,
      nonce: this.recoverNonce,
      fromSlot: this.chosenSlot + 1,
    };
    this.outNow.push(recover);
  }

  /** While recovering, only recovery traffic counts; nothing is promised, accepted or granted. */
  private stepRecovering(m: Message): void {
    // A joiner that knows no configuration asks whoever talks to it too (a leader, a candidate).
    if (!this.members.known) this.recoverySeeds.add(m.from);
    if (m.type === MessageType.RecoverReply) return this.onRecoverReply(m);
    if (m.type === MessageType.Recover) return this.onRecover(m);
    if (m.type === MessageType.Probe) {
      // Refuse, so a candidate does not wait on us; a refusal carries no promise of ours.
      this.outNow.push({
        type: MessageType.ProbeReply,
        from: this.id,
        to: m.from,
        ballot: BALLOT_NONE,
        granted: false,
      });
    }
  }

  /**
   * Another replica recovers: tell it our promise and votes from its fromSlot, like a Promise that
   * promises nothing. Sent after the persist, so it reveals only durable state.
   */
  private onRecover(m: Recover): void {
    if (this.roleValue === "recovering") {
      this.outNow.push({
        type: MessageType.RecoverReply,
        from: this.id,
        to: m.from,
        ballot: BALLOT_NONE,
        nonce: m.nonce,
        fromSlot: m.fromSlot,
        chosenSlot: 0,
        entries: [],
        more: false,
        snapshot: null,
        recovering: true,
      });
      return;
    }
    const votes = this.votesFrom(m.fromSlot);
    const reply: RecoverReply = {
      type: MessageType.RecoverReply,
      from: this.id,
      to: m.from,
      ballot: this.promised,
      nonce: m.nonce,
      fromSlot: m.fromSlot,
      chosenSlot: this.chosenSlot,
      entries: votes.entries,
      more: votes.more,
      snapshot: votes.snapshot,
      recovering: false,
    };
    this.outAfter.push(reply);
  }

  /**
   * An answer: learn the chosen entries it carries (from any replica: chosen is chosen), keep its
   * unchosen votes and its promise. A cut answer is followed at once by a question from our new
   * chosen prefix, so the fastest replica brings us up to date and the others need answer only
   * the tail above it.
   */
  private onRecoverReply(m: RecoverReply): void {
    if (m.nonce !== this.recoverNonce) return;
    if (m.recovering) {
      this.recoverPeersRecovering |= 1 << m.from;
      return;
    }
    this.recoverPeersRecovering &= ~(1 << m.from);
    this.recoverAskedTries[m.from] = 0;
    if ((this.recoverAnswered & (1 << m.from)) !== 0) return;
    // Every answer was asked from at most our chosen prefix + 1 (it only grows): a later fromSlot
    // is forged or garbled, and would hide the votes below it.
    if (m.fromSlot > this.chosenSlot + 1) return;
    if (!this.entriesWithinReach(m.entries, m.snapshot)) return;
    this.learnVotes(m);
    if (m.ballot > this.recoverPromised) this.recoverPromised = m.ballot;
    const round = ballotRound(m.ballot);
    if (round > this.roundMax) this.roundMax = round;
    // The answer to our latest question was cut: ask on at once (an older answer just taught us).
    if (m.more) {
      if (m.fromSlot === this.recoverAskedFrom[m.from]) this.askRecover(m.from);
    } else if (this.members.known) this.recoverAnswered |= 1 << m.from;
    // else: the answer taught us no configuration yet (its sender knows only a prefix without a
    // change): it is asked again, with the backoff, as it learns more.
    this.checkRecoveryDone();
  }

  private checkRecoveryDone(): void {
    if (!this.members.known) return; // a joiner asked its seeds: it learns whom else to ask
    if (this.recoveryPeers().every((peer) => (this.recoverAnswered & (1 << peer)) !== 0))
      this.finishRecovery();
  }

  /** Adopt what the answers carried; it is persisted before anything this replica sends next. */
  protected finishRecovery(): void {
    for (const [slot, vote] of this.recovered) {
      if (slot <= this.chosenSlot) continue;
      const held = this.log.get(slot);
      // Keep what we hold when it is chosen or a vote as high (a stale state restored from a
      // backup still holds real votes): the result dominates both.
      if (held !== undefined && (held.chosen || held.ballot >= vote.ballot)) continue;
      this.log.set(slot, { ballot: vote.ballot, batch: vote.batch, chosen: false });
      this.persistAccepted.push(vote);
    }
    this.recovered.clear();
    if (this.recoverPromised > this.promised) this.promise(this.recoverPromised);
    this.persistRecovered = true;
    this.roleValue = "follower";
    this.recoverNonce = 0;
    this.recoveries++;
    this.resetElectionTimer();
  }

  /**
   * A replica that joined with no state (members: null, nothing on disk) votes for nothing until
   * it caught up with the leader's commit point. Then, if the configurations above its chosen
   * prefix name it a voter, a replica of this id voted before and this one (an empty data
   * directory started with --join again, or memory durability) forgot those votes: it recovers
   * before it votes, as one restarted with --initial-cluster-state existing does. A new member
   * is added as a learner (changeMembership refuses a new id as a voter) and promoted only once
   * caught up, so a genuine join finds itself a learner and votes at once.
   */
  private finishJoining(): void {
    if (!this.joining || !this.members.known) return;
    if (this.leaderCommitSlot === 0 || this.chosenSlot < this.leaderCommitSlot) return;
    this.joining = false;
    if (this.roleValue === "recovering") return;
    const configs = this.members.governing(this.chosenSlot + 1, Number.MAX_SAFE_INTEGER);
    if (!configs.some((config) => isVoter(config.members, this.id))) {
      // A learner: it votes from now on. The runtime holds its "recovering" marker while it
      // joins (a crash part-way must not find learned entries and take them for its own
      // votes); this batch lets it go, as a finished recovery does.
      this.persistRecovered = true;
      return;
    }
    this.recoverBeforeVoting();
  }

  /** A joiner recovers before it ever votes (finishJoining, onPrepare). */
  private recoverBeforeVoting(): void {
    this.joining = false;
    this.counts.joinedAsVoter++;
    this.persistRecovering = true;
    this.beginRecovery();
  }

  /** Recoveries completed by this incarnation (0 or 1; for logs and tests). */
  recoveries = 0;

  // ---- election -------------------------------------------------------------------------------

  private resetElectionTimer(): void {
    const base = this.config.electionTicks;
    this.electionElapsed = 0;
    this.electionTimeout = base + this.config.prng.nextInt(base);
  }

  /** A leader with contact to a majority, or a follower that heard one recently, refuses to be deposed. */
  private leaseHeld(candidate: number): boolean {
    if (this.transferReleases(candidate)) return false;
    if (this.roleValue === "leader") return this.quorumActive();
    return (
      this.leaderId !== 0 &&
      this.leaderId !== candidate &&
      this.now - this.leaderHeardTick < this.config.electionTicks
    );
  }

  private onElectionTimeout(): void {
    this.becomeFollower();
    this.leaderId = 0;
    this.roleValue = "candidate";
    this.phase = "probe";
    this.probeBallot = ballotOf(this.roundMax + 1, this.id);
    this.probeGrants = 1 << this.id;
    this.resetElectionTimer();
    for (const peer of this.peerIds) {
      this.outNow.push({
        type: MessageType.Probe,
        from: this.id,
        to: peer,
        ballot: this.probeBallot,
        chosenSlot: this.chosenSlot,
      });
    }
    if (this.quorumOfEach(this.probeGrants, this.governingNext())) this.beginPhase1();
  }

  private onProbe(m: Probe): void {
    // A replica outside every configuration we know is refused: a removed replica that never
    // heard of its removal cannot disrupt (see knownMember for why learners are not refused).
    const granted =
      m.ballot > this.promised &&
      !this.leaseHeld(m.from) &&
      // A joiner cannot judge, nor can a replica behind the prober: it may not know the
      // configuration that made the prober a member (a removed replica is never ahead).
      (!this.members.known || this.chosenSlot < m.chosenSlot || this.knownMember(m.from));
    // A refusal carries our promise, so a prober behind on rounds learns the round to beat.
    const ballot = granted ? m.ballot : this.promised;
    const reply: ProbeReply = {
      type: MessageType.ProbeReply,
      from: this.id,
      to: m.from,
      ballot,
      granted,
    };
    this.outNow.push(reply);
  }

  private onProbeReply(m: ProbeReply): void {
    if (this.roleValue !== "candidate" || this.phase !== "probe") return;
    if (!m.granted || m.ballot !== this.probeBallot) return;
    this.probeGrants |= 1 << m.from;
    if (this.quorumOfEach(this.probeGrants, this.governingNext())) this.beginPhase1();
  }

  /** Phase 1a for every slot above our chosen prefix. Protected: a test plants a leader that skips it. */
  protected beginPhase1(): void {
    this.roleValue = "candidate";
    this.phase = "prepare";
    this.ballot = ballotOf(Math.max(this.roundMax, ballotRound(this.promised)) + 1, this.id);
    this.roundMax = ballotRound(this.ballot);
    this.promise(this.ballot);
    this.selfPromise = this.ballot;
    this.selfPromiseDurable = false;
    this.resetElectionTimer();
    this.sendPrepares();
  }

  private sendPrepares(): void {
    this.prepareFromSlot = this.chosenSlot + 1;
    this.promiseVotes = 0;
    this.promiseMore = false;
    this.recovered.clear();
    this.prepareTo(this.promiseVotes);
    if (this.selfPromiseDurable) this.countOwnPromise();
  }

  /**
   * Phase 1 asks again, every retransmitTicks, each peer that has not promised yet. Without it a
   * lost or refused Prepare costs an election timeout: a follower that met a transfer target's
   * Prepare before its leader's TimeoutNow (reordered, or the TimeoutNow lost and resent) refused
   * it for its leader's sake and answers nothing, and a lost Prepare in an ordinary election
   * leaves the candidate short of a majority. We resend rather than have the follower remember a
   * refused Prepare until the TimeoutNow comes: that covers lost Prepares too and keeps no more
   * state on followers. A Prepare is idempotent: a peer that already promised this ballot answers
   * the same Promise again (onPrepare), and onPromise counts each peer once (promiseVotes).
   */
  private resendPrepares(): void {
    if (this.now - this.prepareSentTick < this.config.retransmitTicks) return;
    this.prepareTo(this.promiseVotes);
  }

  /** A Prepare of our ballot to every peer not in `promised` (a bit per replica id). */
  private prepareTo(promised: number): void {
    assert(this.roleValue === "candidate" && this.phase === "prepare", "Prepare outside Phase 1");
    this.prepareSentTick = this.now;
    // Every replica we know, and the members of configurations that only the votes we will
    // re-propose make (Phase 1 may need a majority of them, and they may be new to us).
    const targets = new Set(this.peerIds);
    for (const config of this.phase1Configs()) for (const m of config.members) targets.add(m.id);
    targets.delete(this.id);
    for (const peer of targets) {
      if ((promised & (1 << peer)) !== 0) continue;
      const prepare: Prepare = {
        type: MessageType.Prepare,
        from: this.id,
        to: peer,
        ballot: this.ballot,
        fromSlot: this.prepareFromSlot,
      };
      this.outAfter.push(prepare);
    }
  }

  private isPreparing(ballot: Ballot): boolean {
    return this.roleValue === "candidate" && this.phase === "prepare" && this.ballot === ballot;
  }

  private onPrepare(m: Prepare): void {
    if (this.joining) {
      // A joiner promises nothing (see finishJoining). A candidate asking for its promise means
      // no leader may be there to catch it up, and the candidate may need it: it recovers now
      // (safe whatever it turns out to be), and answers the Prepare resent after that.
      // One that knows no configuration asks the candidate first, and every voter of each
      // configuration the answers teach it after that (recoveryPeers).
      if (!this.members.known) this.recoverySeeds.add(m.from);
      this.recoverBeforeVoting();
      return;
    }
    if (m.ballot < this.promised) return this.nack(m.from);
    if (m.ballot > this.promised) {
      if (this.leaseHeld(m.from)) return; // check-quorum / pre-vote: a live leader is not deposed
      this.noteHandedOver(m.ballot);
      this.promise(m.ballot);
      this.becomeFollower();
      this.resetElectionTimer();
    }
    this.sendPromise(this.promiseFor(m));
  }

  /** A Promise reveals the promise just made: it leaves after the persist. A test plants one that does not wait. */
  protected sendPromise(promise: PromiseMessage): void {
    this.outAfter.push(promise);
  }

  /** Queue a message that needs nothing durable (for planted bugs that break the Ready order). */
  protected sendBeforePersist(message: Message): void {
    this.outNow.push(message);
  }

  /** Phase 1b: our votes from m.fromSlot; the chosen part is cut at the catch-up limits. */
  private promiseFor(m: Prepare): PromiseMessage {
    const votes = this.votesFrom(m.fromSlot);
    return {
      type: MessageType.Promise,
      from: this.id,
      to: m.from,
      ballot: m.ballot,
      fromSlot: m.fromSlot,
      chosenSlot: this.chosenSlot,
      entries: votes.entries,
      more: votes.more,
      snapshot: votes.snapshot,
    };
  }

  /**
   * Our votes from `fromSlot` (the snapshot instead of a compacted part): the chosen run cut at
   * the catch-up limits, and the unchosen votes above it only when the chosen run was not cut.
   */
  private votesFrom(fromSlot: Slot): {
    entries: AcceptedEntry[];
    more: boolean;
    snapshot: Snapshot | null;
  } {
    let from = fromSlot;
    let snapshot: Snapshot | null = null;
    if (from <= this.log.compactedSlot) {
      assert(this.snapshot !== null, "compacted without a snapshot");
      snapshot = this.snapshot;
      from = this.snapshot.slot + 1; // the tail below it is in the snapshot
    }
    const entries: AcceptedEntry[] = [];
    const cut = this.chosenPrefixCut(from);
    for (let slot = from; slot <= cut; slot++) entries.push(this.voteAt(slot));
    const more = cut < this.chosenSlot;
    if (!more) {
      for (let slot = Math.max(from, this.chosenSlot + 1); slot <= this.log.lastSlot; slot++) {
        const entry = this.log.get(slot);
        if (entry !== undefined) entries.push({ slot, ballot: entry.ballot, batch: entry.batch });
      }
    }
    return { entries, more, snapshot };
  }

  /** Last slot of the chosen run starting at `from` that fits one catch-up message. */
  private chosenPrefixCut(from: Slot): Slot {
    let bytes = 0;
    let slot = from;
    for (; slot <= this.chosenSlot; slot++) {
      if (slot - from >= this.config.catchupEntriesMax) break;
      bytes += commandBytes(this.log.get(slot)!.batch);
      if (bytes > this.config.catchupBytesMax && slot > from) break;
    }
    return slot - 1;
  }

  private voteAt(slot: Slot): AcceptedEntry {
    const entry = this.log.get(slot);
    assert(entry !== undefined, "vote missing in chosen prefix");
    return { slot, ballot: entry.ballot, batch: entry.batch };
  }

  /**
   * What a Promise or a RecoverReply carries: its snapshot when it is ahead of us, the chosen
   * entries (learned), and the other votes (kept per slot, highest ballot first, in `recovered`).
   */
  private learnVotes(m: PromiseMessage | RecoverReply): void {
    if (m.snapshot !== null && m.snapshot.slot > this.chosenSlot) this.installSnapshot(m.snapshot);
    for (const entry of m.entries) {
      if (entry.slot <= this.chosenSlot) continue;
      if (entry.slot <= m.chosenSlot) this.learnChosen(entry.slot, entry.batch, entry.ballot);
      else this.mergeRecovered(entry);
    }
    this.advanceChosen();
  }

  private onPromise(m: PromiseMessage): void {
    if (!this.isPreparing(m.ballot) || m.fromSlot !== this.prepareFromSlot) return;
    if ((this.promiseVotes & (1 << m.from)) !== 0) return;
    if (!this.entriesWithinReach(m.entries, m.snapshot)) return;
    this.learnVotes(m);
    if (m.more) this.promiseMore = true;
    this.promiseVotes |= 1 << m.from;
    this.checkPhase1Done();
  }

  private countOwnPromise(): void {
    for (let slot = this.chosenSlot + 1; slot <= this.log.lastSlot; slot++) {
      const entry = this.log.get(slot);
      if (entry !== undefined && !entry.chosen)
        this.mergeRecovered({ slot, ballot: entry.ballot, batch: entry.batch });
    }
    this.promiseVotes |= 1 << this.id;
    this.checkPhase1Done();
  }

  /** Keep the highest-ballot vote per slot (Phase 1). Protected: a test plants one that keeps the first. */
  protected mergeRecovered(vote: AcceptedEntry): void {
    const held = this.recovered.get(vote.slot);
    if (held === undefined || vote.ballot > held.ballot) this.recovered.set(vote.slot, vote);
  }

  private checkPhase1Done(): void {
    if (!this.quorumOfEach(this.promiseVotes, this.phase1Configs())) return;
    if (this.promiseMore) {
      this.sendPrepares(); // some promise was cut: ask again from our new chosen prefix
      return;
    }
    this.becomeLeader();
  }

  /**
   * The configurations Phase 1 needs a majority of: those that govern a slot from our chosen
   * prefix + 1 up to the highest vote found plus lag, computed with the changes among the votes
   * we will re-propose (membership.ts explains why that range holds everything an earlier ballot
   * can have chosen).
   */
  private phase1Configs(): MembershipEntry[] {
    const top = this.phase1Top();
    const projected = new MembershipHistory(this.config.membershipLag, this.members.all());
    for (let slot = this.chosenSlot + 1; slot <= top; slot++) {
      const batch = this.phase1Value(slot);
      if (batch?.change !== undefined && projected.known) projected.apply(slot, batch.change);
    }
    return projected.governing(this.chosenSlot + 1, top + this.config.membershipLag);
  }

  /** The highest slot Phase 1 knows a vote or a chosen value for. */
  private phase1Top(): Slot {
    let top = Math.max(this.chosenSlot, this.log.lastSlot);
    for (const slot of this.recovered.keys()) top = Math.max(top, slot);
    return top;
  }

  /** What a new leader proposes in `slot` above the chosen prefix: a known chosen value, else the highest vote. */
  private phase1Value(slot: Slot): Batch | undefined {
    const held = this.log.get(slot);
    return held?.chosen === true ? held.batch : this.recovered.get(slot)?.batch;
  }

  protected becomeLeader(): void {
    assert(this.promised === this.ballot, "leader must hold its own promise");
    this.roleValue = "leader";
    this.leaderId = this.id;
    this.leaderBallot = this.ballot;
    this.leaderSinceTick = this.now;
    if (this.ballot === this.transferCampaignBallot) this.counts.transferCampaignsWon++;
    this.inFlight.clear();
    for (const peer of this.peers) {
      peer.heardTick = this.now;
      peer.replied = false;
      peer.chosenSlot = 0;
      peer.catchupSlot = 0;
      peer.progressTick = this.now;
      peer.lowSinceTick = -1;
      peer.readRound = 0;
      peer.voted = false;
    }
    this.clearLeaderReads();
    this.readRoundSent = 0;
    const top = this.phase1Top();
    this.nextSlot = this.chosenSlot + 1;
    // Re-propose what may have been chosen; fill holes with no-ops (Paxos Made Simple, §3).
    for (let slot = this.chosenSlot + 1; slot <= top; slot++) {
      if (this.log.get(slot)?.chosen !== true)
        this.proposeInSlot(slot, this.recovered.get(slot)?.batch ?? NOOP);
    }
    this.nextSlot = top + 1;
    this.readFloor = top;
    this.recovered.clear();
    this.commitMark = this.chosenSlot;
    this.broadcastHeartbeat();
  }

  private onNack(ballot: Ballot): void {
    const proposing =
      this.roleValue === "leader" || (this.roleValue === "candidate" && this.phase === "prepare");
    if (proposing && ballot > this.ballot) {
      this.noteHandedOver(ballot);
      this.becomeFollower();
      this.resetElectionTimer();
    }
  }

  private nack(to: number): void {
    this.outNow.push({ type: MessageType.Nack, from: this.id, to, ballot: this.promised });
  }

  private promise(ballot: Ballot): void {
    assert(ballot > this.promised, "promise must rise");
    this.promised = ballot;
    this.persistPromised = ballot;
  }

  private becomeFollower(): void {
    if (this.roleValue === "leader") {
      this.endTransfer();
      this.clearLeaderReads(); // our own are asked again of the next leader (retryReads)
      this.inFlight.clear();
      this.queue.length = 0;
      this.queueHead = 0;
      this.leaderId = 0;
      this.changeQueued = null;
      this.deferredVotes = false;
    }
    this.roleValue = "follower";
    this.ballot = BALLOT_NONE;
    this.recovered.clear();
  }

  /**
   * A message from the leader of `ballot` (>= our promise). Adopt it: raise the promise, step down
   * if we were campaigning or leading with less, and restart the election timer.
   */
  private followLeader(from: number, ballot: Ballot): void {
    this.noteHandedOver(ballot);
    // A joiner promises nothing: it may yet recover, and a recovery adopts its promise from the
    // answers (a promise of ours below the chosen entries it learns would not hold on restart).
    if (ballot > this.promised && !this.joining) this.promise(ballot);
    if (this.roleValue !== "follower") this.becomeFollower();
    if (this.leaderBallot !== ballot) {
      this.leaderBallot = ballot;
      this.leaderCommitSlot = 0;
    }
    this.leaderId = from;
    this.leaderHeardTick = this.now;
    this.electionElapsed = 0;
  }

  // ---- phase 2, acceptor side -----------------------------------------------------------------

  /** A protected hook so a test can plant an acceptor that takes stale ballots. */
  protected acceptable(ballot: Ballot): boolean {
    return ballot >= this.promised;
  }

  /** A slot close enough to our chosen prefix to hold (see counts.droppedFarSlots). */
  private withinReach(slot: Slot): boolean {
    return slot <= this.chosenSlot + this.config.slotsAheadMax;
  }

  /**
   * Every entry of a vote list within reach, measured from the snapshot the same message brings
   * when it is ahead of us (a snapshot is chosen state); else the list is refused whole (counted).
   */
  private entriesWithinReach(
    entries: readonly { readonly slot: Slot }[],
    snapshot: Snapshot | null,
  ): boolean {
    const base = Math.max(this.chosenSlot, snapshot?.slot ?? 0);
    for (const entry of entries) {
      if (entry.slot > base + this.config.slotsAheadMax) {
        this.counts.droppedFarSlots++;
        return false;
      }
    }
    return true;
  }

  private onAccept(m: Accept): void {
    if (!this.withinReach(m.slot)) {
      this.counts.droppedFarSlots++;
      return;
    }
    if (!this.acceptable(m.ballot)) return this.nack(m.from);
    this.followLeader(m.from, m.ballot);
    if (this.joining) {
      // A joiner votes for nothing until it caught up (finishJoining): it may be a replica that
      // ran before under this id and lost its votes. It learns the log from catch-up (Chosen,
      // the snapshot) like any replica behind.
      this.learnCommit(m.commitSlot);
      return;
    }
    if (m.slot > this.log.compactedSlot) {
      const held = this.log.get(m.slot);
      if (held === undefined || (!held.chosen && held.ballot !== m.ballot)) {
        this.log.set(m.slot, { ballot: m.ballot, batch: m.batch, chosen: false });
        this.persistAccepted.push({ slot: m.slot, ballot: m.ballot, batch: m.batch });
      }
    }
    this.learnCommit(m.commitSlot);
    const reply: Accepted = {
      type: MessageType.Accepted,
      from: this.id,
      to: m.from,
      ballot: m.ballot,
      slot: m.slot,
      chosenSlot: this.chosenSlot,
    };
    this.outAfter.push(reply);
  }

  private onHeartbeat(m: Heartbeat): void {
    if (!this.acceptable(m.ballot)) return this.nack(m.from);
    this.followLeader(m.from, m.ballot);
    this.learnCommit(m.commitSlot);
    this.replyHeartbeat(m.from, m.ballot, m.readRound);
  }

  private replyHeartbeat(to: number, ballot: Ballot, readRound = 0): void {
    const reply: HeartbeatReply = {
      type: MessageType.HeartbeatReply,
      from: this.id,
      to,
      ballot,
      chosenSlot: this.chosenSlot,
      readRound,
    };
    // A read round's echo reveals only our promise: when this Ready persists no new promise, it
    // need not wait for the votes being persisted (a follower's fsync would delay every read).
    if (readRound > 0 && this.persistPromised === null) this.outNow.push(reply);
    else this.outAfter.push(reply);
  }

  private onChosen(m: Chosen): void {
    if (!this.acceptable(m.ballot)) return this.nack(m.from);
    this.followLeader(m.from, m.ballot);
    for (const entry of m.entries) {
      if (this.withinReach(entry.slot)) this.learnChosen(entry.slot, entry.batch, m.ballot);
      else this.counts.droppedFarSlots++;
    }
    this.learnCommit(m.commitSlot);
    this.replyHeartbeat(m.from, m.ballot);
  }

  private onInstallSnapshot(m: InstallSnapshot): void {
    if (!this.acceptable(m.ballot)) return this.nack(m.from);
    this.followLeader(m.from, m.ballot);
    if (m.snapshot.slot > this.chosenSlot) this.installSnapshot(m.snapshot);
    this.advanceChosen();
    this.replyHeartbeat(m.from, m.ballot);
  }

  private installSnapshot(snapshot: Snapshot): void {
    assert(snapshot.slot > this.chosenSlot, "snapshot behind the chosen prefix");
    if (snapshot.membership !== undefined && snapshot.membership.length > 0) {
      this.members.replace(snapshot.membership);
      this.refreshPeers();
    }
    this.log.compact(snapshot.slot);
    this.snapshot = snapshot;
    this.chosenSlot = snapshot.slot;
    this.appliedSlot = snapshot.slot;
    this.install = snapshot;
    this.persistSnapshot = snapshot;
    this.persistChosenSlot = true;
    this.finishJoining();
  }

  // ---- learning -------------------------------------------------------------------------------

  /**
   * `batch` is chosen in `slot`. Recorded as a vote under `ballot`, which is at least the ballot it
   * was chosen in; that is safe, since every proposal above that ballot carries the same batch.
   */
  private learnChosen(slot: Slot, batch: Batch, ballot: Ballot): void {
    if (slot <= this.log.compactedSlot) return;
    const held = this.log.get(slot);
    if (held?.chosen === true) return;
    this.log.set(slot, { ballot, batch, chosen: true });
    this.persistAccepted.push({ slot, ballot, batch });
    const flight = this.inFlight.get(slot);
    if (flight !== undefined) this.inFlight.delete(slot);
  }

  private learnCommit(commitSlot: Slot): void {
    if (commitSlot > this.leaderCommitSlot) this.leaderCommitSlot = commitSlot;
    this.advanceChosen();
    if (this.joining) this.finishJoining(); // caught up already, and now told so
  }

  /**
   * A follower's vote is known chosen when the current leader says its slot is committed and the
   * vote is in that leader's ballot: a leader proposes one batch per slot per ballot.
   * Protected: a test plants a follower that skips the ballot check.
   */
  protected committedByLeader(slot: Slot, entry: LogEntry): boolean {
    return (
      this.roleValue !== "leader" &&
      entry.ballot === this.leaderBallot &&
      slot <= this.leaderCommitSlot
    );
  }

  private advanceChosen(): void {
    const start = this.chosenSlot;
    for (;;) {
      const slot = this.chosenSlot + 1;
      const entry = this.log.get(slot);
      if (entry === undefined) break;
      if (!entry.chosen) {
        if (!this.committedByLeader(slot, entry)) break;
        entry.chosen = true;
      }
      this.chosenSlot = slot;
      if (entry.batch.change !== undefined) this.applyChange(slot, entry.batch.change);
    }
    if (this.chosenSlot !== start) {
      this.persistChosenSlot = true;
      if (this.joining) this.finishJoining();
      if (this.deferredVotes && this.roleValue === "leader") this.decideDeferred();
      if (this.roleValue === "leader") this.releaseReads(); // reads waiting for their index
    }
  }

  // ---- leader ---------------------------------------------------------------------------------

  private tickLeader(): void {
    if (!this.quorumActive()) {
      this.becomeFollower(); // check-quorum: a leader cut off from a majority steps down
      this.resetElectionTimer();
      return;
    }
    const latest = this.members.latest();
    if (
      latest !== null &&
      !isVoter(latest.members, this.id) &&
      this.chosenSlot >= latest.effectiveFrom &&
      !this.votesIn(this.id) // our own promotion may be among the votes we re-proposed
    ) {
      // Our removal governs a chosen slot (the no-op fill proposes one, once a majority of the new
      // voters hold everything before it: handedOver), so every replica that knows that slot
      // knows we vote no more: hand over to a voter, or step down once the voters had an
      // election timeout to answer us and none is there to take over.
      if (this.transferTarget === 0 && !this.transferLeadership().started) {
        if (this.now - this.leaderSinceTick >= this.config.electionTicks) {
          this.becomeFollower();
          return;
        }
      }
    }
    this.heartbeatElapsed++;
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) this.broadcastHeartbeat();
    this.retransmit();
    if (this.transferTarget !== 0) this.tickTransfer();
  }

  private quorumActive(): boolean {
    let active = 1 << this.id;
    for (const peer of this.peerIds) {
      if (this.now - this.peers[peer]!.heardTick < this.config.electionTicks) active |= 1 << peer;
    }
    return this.quorumOfEach(active, this.governingNext(this.nextSlot));
  }

  private broadcastHeartbeat(): void {
    this.heartbeatElapsed = 0;
    for (const peer of this.peerIds) {
      const progress = this.peers[peer]!;
      if (progress.replied && progress.chosenSlot < this.commitMark) {
        // Nothing landed for a retransmit interval: what we sent was lost, start again from the peer.
        if (this.now - progress.progressTick >= this.config.retransmitTicks) {
          progress.catchupSlot = progress.chosenSlot;
          progress.progressTick = this.now;
        }
        this.sendCatchup(peer);
      }
      this.outNow.push(this.heartbeatTo(peer));
    }
    this.commitMark = this.chosenSlot;
    this.commitSent = this.chosenSlot;
  }

  /** Resend Accepts not yet voted for. Protected: a test plants a leader that never does. */
  protected retransmit(): void {
    for (const [slot, flight] of this.inFlight) {
      if (this.now - flight.sentTick < this.config.retransmitTicks) continue;
      flight.sentTick = this.now;
      const batch = this.log.get(slot)!.batch;
      for (const peer of this.peerIds) {
        if ((flight.votes & (1 << peer)) === 0) {
          this.sendAccept(peer, slot, batch);
          this.counts.retransmittedAccepts++;
        }
      }
    }
  }

  /**
   * Send a peer that fell behind what it lacks: the snapshot if it is behind our compacted prefix,
   * else chosen entries, keeping up to CATCHUP_PIPELINE messages in flight.
   */
  private sendCatchup(peer: number): void {
    const progress = this.peers[peer]!;
    if (progress.catchupSlot < progress.chosenSlot) progress.catchupSlot = progress.chosenSlot;
    if (progress.chosenSlot < this.log.compactedSlot) {
      if (progress.catchupSlot >= this.log.compactedSlot) return; // snapshot already on its way
      assert(this.snapshot !== null, "compacted without a snapshot");
      const message: InstallSnapshot = {
        type: MessageType.InstallSnapshot,
        from: this.id,
        to: peer,
        ballot: this.ballot,
        snapshot: this.snapshot,
      };
      this.outNow.push(message);
      progress.catchupSlot = this.snapshot.slot;
      return;
    }
    const limit = progress.chosenSlot + CATCHUP_PIPELINE * this.config.catchupEntriesMax;
    while (progress.catchupSlot < this.chosenSlot && progress.catchupSlot < limit) {
      const from = progress.catchupSlot + 1;
      const cut = this.chosenPrefixCut(from);
      const entries: ChosenEntry[] = [];
      for (let slot = from; slot <= cut; slot++)
        entries.push({ slot, batch: this.log.get(slot)!.batch });
      const message: Chosen = {
        type: MessageType.Chosen,
        from: this.id,
        to: peer,
        ballot: this.ballot,
        entries,
        commitSlot: this.chosenSlot,
      };
      this.outNow.push(message);
      progress.catchupSlot = cut;
    }
  }

  /** A peer's reply reports its chosen prefix; true when that changed what we must send it. */
  protected peerHeard(peer: number, chosenSlot: Slot): boolean {
    const progress = this.peers[peer]!;
    progress.heardTick = this.now;
    progress.replied = true;
    if (chosenSlot < progress.chosenSlot) {
      // Less than it told us before: it restarted and lost an unsynced chosen-slot hint, or lost
      // its state and recovered, and a record that only rises would never resend what it lacks.
      // Or an old reply came late: believe it only if the peer keeps saying so for a retransmit
      // interval, so one reordered reply does not make us resend entries (or a snapshot).
      if (progress.lowSinceTick < 0) progress.lowSinceTick = this.now;
      if (this.now - progress.lowSinceTick < this.config.retransmitTicks) return false;
      progress.lowSinceTick = -1;
      progress.chosenSlot = chosenSlot;
      progress.catchupSlot = Math.min(progress.catchupSlot, chosenSlot);
      progress.progressTick = this.now;
      return true;
    }
    progress.lowSinceTick = -1;
    if (chosenSlot <= progress.chosenSlot) return false;
    progress.chosenSlot = chosenSlot;
    progress.progressTick = this.now;
    return true;
  }

  private onAccepted(m: Accepted): void {
    if (this.roleValue !== "leader" || m.ballot !== this.ballot) return;
    this.peerHeard(m.from, m.chosenSlot);
    this.peers[m.from]!.voted = true;
    this.recordVote(m.slot, m.from);
    if (this.transferTarget !== 0) this.advanceTransfer();
  }

  private onHeartbeatReply(m: HeartbeatReply): void {
    if (this.roleValue !== "leader" || m.ballot !== this.ballot) return;
    const peer = this.peers[m.from]!;
    if (m.readRound > peer.readRound && m.readRound <= this.readRoundSent) {
      peer.readRound = m.readRound;
      this.releaseReads();
    }
    const progressed = this.peerHeard(m.from, m.chosenSlot);
    // Catching up over several messages: send the next part as soon as the last one landed.
    if (progressed && m.chosenSlot < this.commitMark) this.sendCatchup(m.from);
    if (this.transferTarget !== 0) this.advanceTransfer();
  }

  private recordVote(slot: Slot, voter: number): void {
    const flight = this.inFlight.get(slot);
    if (flight === undefined) return;
    flight.votes |= 1 << voter;
    if (!this.decidable(slot, flight)) return;
    this.inFlight.delete(slot);
    this.log.get(slot)!.chosen = true;
    this.advanceChosen();
  }

  /**
   * A quorum of config(slot)'s voters voted for our proposal. Counted only once slot - lag is in
   * our chosen prefix, so that config(slot) is known rather than projected from proposals of ours
   * that may yet lose (Phase 1 re-proposes beyond that point; see membership.ts).
   */
  protected decidable(slot: Slot, flight: InFlight): boolean {
    if (slot > this.chosenSlot + this.config.membershipLag) {
      this.deferredVotes = true;
      return false;
    }
    const config = this.members.at(slot);
    return config !== null && this.quorumOf(flight.votes, config.members);
  }

  /** The latest configuration chosen (for a planted bug that counts votes by it). */
  protected get latestMembers(): readonly Member[] {
    return this.members.latest()?.members ?? [];
  }

  /** The chosen prefix grew: count the votes that waited for it. */
  private decideDeferred(): void {
    this.deferredVotes = false;
    let decided = false;
    for (const [slot, flight] of this.inFlight) {
      if (!this.decidable(slot, flight)) continue;
      this.inFlight.delete(slot);
      this.log.get(slot)!.chosen = true;
      decided = true;
    }
    if (decided) this.advanceChosen();
  }

  /**
   * The next slot may be proposed: we lead, hand over to no one, the window has room, and every
   * slot <= nextSlot - lag is chosen, so config(nextSlot) is known (membership.ts).
   */
  private canProposeSlot(): boolean {
    return (
      this.roleValue === "leader" &&
      this.transferTarget === 0 && // handing over: commands wait (see the transfer section)
      this.inFlight.size < this.config.windowSlots &&
      this.nextSlot <= this.chosenSlot + this.config.membershipLag &&
      this.handedOver(this.nextSlot)
    );
  }

  /**
   * A configuration begins to govern (we propose the first slot it governs) only once a majority
   * of its voters hold every slot the previous one governed: they reported a chosen prefix of at
   * least effectiveFrom - 1. Without it, the only replicas that know the change is chosen may be
   * the old voters; if they leave (removed, shut down) or merely stop campaigning (they know they
   * are no voters now), the new voters would never learn they are voters, nor the slots the old
   * configuration decided, and nobody would lead again. With it, the old replicas may go as soon
   * as the change governs. Liveness only: the new voters must vote for the new slots anyway.
   */
  private handedOver(slot: Slot): boolean {
    const config = this.members.at(slot);
    if (config === null || config.slot <= this.handedOverSlot) return true;
    const need = config.effectiveFrom - 1;
    let holders = 0;
    for (const m of config.members) {
      if (!m.voter) continue;
      const held = m.id === this.id ? this.chosenSlot : this.peerChosen(m.id);
      if (held >= need) holders |= 1 << m.id;
    }
    if (!this.quorumOf(holders, config.members)) return false;
    this.handedOverSlot = config.slot;
    return true;
  }

  /** The chosen prefix a peer reported in this leadership (0 before it replied). */
  private peerChosen(id: number): Slot {
    const progress = this.peers[id]!;
    return progress.replied ? progress.chosenSlot : 0;
  }

  /**
   * A chosen change that governs no slot we proposed yet, with no commands to carry us there:
   * no-ops fill the gap up to and including the first slot it governs, so a change takes effect
   * within lag slots however idle the cluster, and a chosen slot shows every replica that it does.
   */
  private fillWanted(): boolean {
    const latest = this.members.latest();
    return (
      latest !== null &&
      latest.slot > 0 && // the bootstrap configuration governs from slot 1 without help
      latest.effectiveFrom >= this.nextSlot &&
      this.queueHead >= this.queue.length
    );
  }

  private canFormBatch(): boolean {
    if (!this.canProposeSlot()) return false;
    if (this.changeQueued !== null || this.fillWanted()) return true;
    if (this.queueHead >= this.queue.length) return false;
    if (!this.config.adaptiveBatching || this.inFlight.size === 0) return true;
    // A slot is in flight: start another only with a batch as big as the last one. Under load
    // this lets batches grow until one round's arrivals fill a slot (fewer rounds, each one's
    // sends, fsyncs and wake-ups shared by more requests); with nothing in flight a request goes
    // at once, so a lone client waits for nothing.
    const queued = this.queue.length - this.queueHead;
    return queued >= Math.min(this.lastBatchCommands, this.config.batchCommandsMax);
  }

  /** Everything queued goes out now, one batch per slot, as far as the window allows. */
  private formBatches(): void {
    while (this.canFormBatch()) {
      if (this.changeQueued !== null) {
        const change = this.changeQueued;
        this.changeQueued = null;
        this.proposeInSlot(this.nextSlot++, { stampMs: this.queueStampMs, commands: [], change });
        continue;
      }
      if (this.fillWanted()) {
        this.proposeInSlot(this.nextSlot++, NOOP);
        continue;
      }
      const commands: Uint8Array[] = [];
      let bytes = 0;
      while (this.queueHead < this.queue.length && commands.length < this.config.batchCommandsMax) {
        const command = this.queue[this.queueHead]!;
        if (commands.length > 0 && bytes + command.byteLength > this.config.batchBytesMax) break;
        commands.push(command);
        bytes += command.byteLength;
        this.queueHead++;
      }
      this.lastBatchCommands = commands.length;
      this.proposeInSlot(this.nextSlot++, { stampMs: this.queueStampMs, commands });
    }
    // Adaptive batching leaves commands queued behind a slot in flight: compact, not only when empty.
    this.queueHead = compactFront(this.queue, this.queueHead);
  }

  /** Phase 2a: vote for our own proposal (counted once durable) and send it to every peer. */
  private proposeInSlot(slot: Slot, batch: Batch): void {
    assert(this.roleValue === "leader" && this.promised === this.ballot, "only a leader proposes");
    assert(slot > this.chosenSlot, "proposing into the chosen prefix");
    this.log.set(slot, { ballot: this.ballot, batch, chosen: false });
    this.persistAccepted.push({ slot, ballot: this.ballot, batch });
    this.selfVotes.push(slot, this.ballot);
    this.inFlight.set(slot, { votes: 0, sentTick: this.now });
    for (const peer of this.peerIds) this.sendAccept(peer, slot, batch);
    this.commitSent = this.chosenSlot;
  }

  /**
   * Tell followers at once that the commit point moved, if no Accept or heartbeat carried it yet.
   * The runtime calls this when a chosen batch holds a request a follower is waiting to answer:
   * without it, that follower would learn the commit only with the next Accept or heartbeat.
   * Safe at any time (it is a heartbeat); not automatic, since it doubles the messages per slot.
   */
  announceCommit(): void {
    if (this.roleValue !== "leader" || this.chosenSlot <= this.commitSent) return;
    for (const peer of this.peerIds) this.outNow.push(this.heartbeatTo(peer));
    this.commitSent = this.chosenSlot;
  }

  private heartbeatTo(peer: number): Heartbeat {
    return {
      type: MessageType.Heartbeat,
      from: this.id,
      to: peer,
      ballot: this.ballot,
      commitSlot: this.chosenSlot,
      readRound: this.readRoundSent,
    };
  }

  private sendAccept(peer: number, slot: Slot, batch: Batch): void {
    const accept: Accept = {
      type: MessageType.Accept,
      from: this.id,
      to: peer,
      ballot: this.ballot,
      slot,
      batch,
      commitSlot: this.chosenSlot,
    };
    this.outNow.push(accept);
  }

  // ---- leadership transfer --------------------------------------------------------------------
  //
  // An operator (or a leader about to stop) hands leadership to one follower without making
  // clients wait for an election timeout, after Raft's leadership transfer (Raft thesis §3.10):
  //
  // 1. The leader stops forming new batches (commands queue, bounded by proposalQueueMax; when
  //    leadership moves, every origin sends its waiting requests to the new leader, as after any
  //    leader change) and waits until nothing it proposed is in flight and the target reported a
  //    chosen prefix at least ours: the target then holds every value this leader proposed, so its
  //    Phase 1 has nothing to learn from others and completes in one round trip.
  // 2. It sends TimeoutNow (naming the target) to every peer, and again every retransmitTicks
  //    while it still leads. The target, if it still follows this leader under the ballot it
  //    promised, starts Phase 1 at once with a higher ballot, skipping pre-vote. Every other
  //    follower of that leader, and the leader itself, stop refusing the target's Prepare for
  //    the leader's sake (leaseHeld) for one election timeout: the leader asked for it.
  // 3. The leader promises the target's ballot like any acceptor and steps down ("completed").
  //
  // Safety is Phase 1's, as in any election: TimeoutNow only changes who campaigns and when, and
  // the leases it lifts are a liveness rule (a replica that was cut off must not depose a live
  // leader), never a safety one. Liveness: a transfer that has not completed one election timeout
  // after it began is given up ("timed out") and the leader forms batches again, so no state
  // leaves the leader silent for good; a target that is recovering, lagging or down simply never
  // gets TimeoutNow, or never campaigns. A TimeoutNow from a deposed leader, or one that arrives
  // after we promised a higher ballot, is ignored.

  /**
   * Hand leadership to `target`, or to the most caught-up peer heard within an election timeout
   * (the highest chosen prefix reported to us; the lowest id among equals). Only a leader can.
   */
  transferLeadership(target?: number): TransferResult {
    if (this.roleValue !== "leader") return { started: false, reason: "not-leader" };
    if (target !== undefined) {
      const valid =
        Number.isSafeInteger(target) &&
        target !== this.id &&
        isVoter(this.members.latest()?.members ?? null, target);
      if (!valid) return { started: false, reason: "bad-target" };
    }
    const to = target ?? this.mostCaughtUpPeer();
    if (to === 0) return { started: false, reason: "no-target" };
    if (to === this.transferTarget) return { started: true, target: to };
    if (this.transferTarget !== 0) this.counts.transfersAborted++; // replaced by this one
    this.clearTransfer();
    this.transferTarget = to;
    this.transferStartTick = this.now;
    this.counts.transfersStarted++;
    this.advanceTransfer();
    return { started: true, target: to };
  }

  /**
   * The voter (of the latest configuration) that reported the highest chosen prefix, among those
   * heard within electionTicks.
   */
  private mostCaughtUpPeer(): number {
    let best = 0;
    const voters = this.members.latest()?.members ?? null;
    for (const peer of this.peerIds) {
      if (!isVoter(voters, peer)) continue;
      const progress = this.peers[peer]!;
      if (!progress.replied || this.now - progress.heardTick >= this.config.electionTicks) continue;
      if (best === 0 || progress.chosenSlot > this.peers[best]!.chosenSlot) best = peer;
    }
    return best;
  }

  private tickTransfer(): void {
    if (this.now - this.transferStartTick >= this.config.electionTicks) {
      this.counts.transfersTimedOut++;
      this.clearTransfer(); // lead on: the next ready() forms batches again
      return;
    }
    this.advanceTransfer();
  }

  /** Send TimeoutNow once the target holds all we proposed; until then help it get there. */
  private advanceTransfer(): void {
    assert(this.roleValue === "leader", "only a leader transfers");
    if (this.inFlight.size > 0) return; // the last batches are still being decided
    const progress = this.peers[this.transferTarget]!;
    if (!progress.replied || progress.chosenSlot < this.chosenSlot) {
      // Tell the target our commit point now rather than at the next heartbeat: its reply says
      // whether it holds everything. Catch-up, if it lacks more, goes as for any slow follower.
      if (this.transferCommitPushed !== this.chosenSlot) {
        this.transferCommitPushed = this.chosenSlot;
        if (progress.replied) this.sendCatchup(this.transferTarget);
        this.outNow.push(this.heartbeatTo(this.transferTarget));
      }
      return;
    }
    if (this.now - this.transferSentTick < this.config.retransmitTicks) return;
    this.transferSentTick = this.now;
    for (const peer of this.peerIds) {
      const message: TimeoutNow = {
        type: MessageType.TimeoutNow,
        from: this.id,
        to: peer,
        ballot: this.ballot,
        target: this.transferTarget,
      };
      this.outNow.push(message);
    }
  }

  private clearTransfer(): void {
    this.transferTarget = 0;
    this.transferSentTick = Number.NEGATIVE_INFINITY;
    this.transferCommitPushed = -1;
  }

  /**
   * We meet `ballot`, higher than ours, of our transfer's target (its Prepare, its Accept, or a
   * Nack carrying a promise to it): the transfer completed, whichever message says so first.
   */
  private noteHandedOver(ballot: Ballot): void {
    if (this.roleValue !== "leader" || this.transferTarget === 0) return;
    if (ballot <= this.ballot || ballotReplica(ballot) !== this.transferTarget) return;
    this.counts.transfersCompleted++;
    this.clearTransfer();
  }

  /** We stop leading: a transfer still under way ends here. */
  private endTransfer(): void {
    if (this.transferTarget !== 0) this.counts.transfersAborted++;
    this.clearTransfer();
  }

  /** Our leader (or we, leading) asked that `candidate` not be refused for our leader's sake. */
  private transferReleases(candidate: number): boolean {
    if (this.roleValue === "leader")
      return candidate === this.transferTarget && this.transferSentTick > Number.NEGATIVE_INFINITY;
    return (
      candidate === this.transferReleasedTo &&
      this.leaderBallot === this.transferReleasedBallot &&
      this.now - this.transferReleasedTick < this.config.electionTicks
    );
  }

  /** Only from the leader we follow, under the ballot we promised: anything else is stale. */
  private onTimeoutNow(m: TimeoutNow): void {
    if (this.roleValue !== "follower") return;
    if (m.from !== this.leaderId || m.ballot !== this.leaderBallot || m.ballot !== this.promised)
      return;
    if (m.target !== this.id) {
      this.transferReleasedTo = m.target;
      this.transferReleasedTick = this.now;
      this.transferReleasedBallot = m.ballot; // === leaderBallot, checked above
      return;
    }
    this.counts.transferCampaigns++;
    this.campaignNow();
  }

  /**
   * Campaign at once: Phase 1 with a ballot above every round we know, no pre-vote (our leader
   * asked; its followers were told not to refuse us). Protected: a test plants one that skips
   * Phase 1.
   */
  protected campaignNow(): void {
    this.becomeFollower();
    this.leaderId = 0;
    this.beginPhase1();
    this.transferCampaignBallot = this.ballot; // Phase 1 just began: it cannot have ended yet
  }

  // ---- reads ----------------------------------------------------------------------------------
  //
  // A linearizable read without a log entry (ReadIndex, Raft thesis §6.4). A read must see every
  // write acknowledged before it arrived, i.e. every slot chosen before then. The leader gives it
  // an index, the higher of its chosen prefix and the top slot its Phase 1 found: a slot chosen
  // under an earlier ballot is at most that top (Phase 1 saw a vote for it), and one chosen under
  // ours is counted by us alone, so no replica can have learned it before our chosen prefix
  // covers it. That holds only while we are still the leader, so the leader then sends a read
  // round (a heartbeat numbered `readRound`) and waits until a majority, itself included, echoed
  // that round under its ballot: each of them still promised our ballot after the read arrived,
  // so no higher ballot had a majority of promises then, and no other leader could have chosen
  // anything we do not know. Reads arriving while a round is out wait for the next round, so one
  // round serves every read that waits for it. The runtime then serves the read once its applied
  // slot reaches the index (Ready.reads).
  //
  // A follower's read is asked of the leader (ReadIndex) and answered with the index once
  // confirmed (ReadIndexReply); the follower serves it from its own state machine at that index.
  // Answers carry a per-incarnation nonce, so a late answer to a previous incarnation's read with
  // the same seq is ignored. A read with no answer is asked again every retransmitTicks, of the
  // leader known then (or registered locally once we lead).

  /**
   * Ask for a read index for the caller's read `ctx`: it comes back as {ctx, index} in a later
   * Ready.reads, on any role (a follower asks the leader). Bounded by proposalQueueMax.
   */
  read(ctx: number): ReadResult {
    if (this.readsAsked.size >= this.config.proposalQueueMax) return "queue-full";
    if (this.readNonce === 0) this.readNonce = 1 + this.config.prng.nextInt(0xfffffffe);
    const seq = this.readSeqNext++;
    this.readsAsked.set(seq, { ctx, askedTick: this.now, registeredIn: BALLOT_NONE });
    this.readSeqByCtx.set(ctx, seq);
    this.askRead(seq);
    return "queued";
  }

  /** The caller gave up on read `ctx` (its client had an answer): stop asking for its index. */
  cancelRead(ctx: number): void {
    const seq = this.readSeqByCtx.get(ctx);
    if (seq === undefined) return;
    this.readSeqByCtx.delete(ctx);
    this.readsAsked.delete(seq);
  }

  private askRead(seq: number): void {
    if (this.roleValue === "leader") {
      const read = this.readsAsked.get(seq)!;
      // Registered once per leadership: a round that is not confirmed yet will be. One refused
      // for a full queue is tried again at a later tick.
      if (read.registeredIn === this.ballot) return;
      if (this.registerRead(this.id, this.readNonce, seq)) read.registeredIn = this.ballot;
      return;
    }
    if (this.roleValue === "recovering" || this.leaderId === 0) return; // asked again at a tick
    const ask: ReadIndex = {
      type: MessageType.ReadIndex,
      from: this.id,
      to: this.leaderId,
      ballot: this.promised,
      nonce: this.readNonce,
      seq,
    };
    this.outNow.push(ask);
  }

  private retryReads(): void {
    for (const [seq, read] of this.readsAsked) {
      if (this.now - read.askedTick < this.config.retransmitTicks) continue;
      read.askedTick = this.now;
      this.askRead(seq);
    }
  }

  private onReadIndex(m: ReadIndex): void {
    if (this.roleValue === "leader") this.registerRead(m.from, m.nonce, m.seq);
  }

  private onReadIndexReply(m: ReadIndexReply): void {
    if (m.nonce !== this.readNonce) return;
    this.readAnswered(m.seq, m.index);
  }

  private readAnswered(seq: number, index: Slot): void {
    const read = this.readsAsked.get(seq);
    if (read === undefined) return; // answered already (an answer to a retry, or a duplicate)
    this.readsAsked.delete(seq);
    this.readSeqByCtx.delete(read.ctx);
    this.readsOut.push({ ctx: read.ctx, index });
  }

  /** False when readsMax wait already (counted; the asker asks again later). */
  private registerRead(from: number, nonce: number, seq: number): boolean {
    if (this.leaderReads.length - this.leaderReadsHead >= this.config.proposalQueueMax) {
      this.counts.droppedReads++;
      return false;
    }
    this.leaderReads.push({
      from,
      nonce,
      seq,
      index: this.readIndexFloor(),
      round: this.readRoundSent + 1,
    });
    this.readRoundWanted = true;
    return true;
  }

  /** The index a read arriving now must wait for. Protected: a test plants one without the floor. */
  protected readIndexFloor(): Slot {
    return Math.max(this.chosenSlot, this.readFloor);
  }

  /** One read round for every read registered since the last: a heartbeat to each peer. */
  private sendReadRound(): void {
    this.readRoundWanted = false;
    if (this.roleValue !== "leader") return;
    this.readRoundSent++;
    for (const peer of this.peerIds) this.outNow.push(this.heartbeatTo(peer));
    this.releaseReads(); // a one-replica cluster is its own majority
  }

  /**
   * The highest read round a majority of voters, this leader included when it votes, has echoed
   * under our ballot, in each configuration that governs a slot above our chosen prefix up to
   * what we could decide next: a rival leader that chose a slot we do not know needed a majority
   * of that slot's configuration to promise it (the first such slot lies there, and its
   * configuration is fixed by our chosen prefix; reads wait for their index to be chosen here). Protected: a test plants a leader that takes every round
   * as confirmed at once.
   */
  protected readRoundConfirmed(): number {
    let confirmed = Number.POSITIVE_INFINITY;
    for (const config of this.liveConfigs(this.chosenSlot + 1)) {
      const rounds: number[] = [];
      for (const m of config.members) {
        if (m.voter)
          rounds.push(m.id === this.id ? this.readRoundSent : this.peers[m.id]!.readRound);
      }
      rounds.sort((a, b) => b - a);
      confirmed = Math.min(confirmed, rounds[this.quorumSize(rounds.length) - 1] ?? 0);
    }
    return confirmed === Number.POSITIVE_INFINITY ? 0 : confirmed;
  }

  /** The last read round sent (for a planted bug). */
  protected get lastReadRound(): number {
    return this.readRoundSent;
  }

  private releaseReads(): void {
    if (this.leaderReadsHead >= this.leaderReads.length) return;
    const confirmed = this.readRoundConfirmed();
    while (this.leaderReadsHead < this.leaderReads.length) {
      const read = this.leaderReads[this.leaderReadsHead]!;
      // Released only once its index is in our chosen prefix: then the configurations the round
      // is checked against are those a rival's first chosen slot beyond it needed (indexes rise
      // in registration order).
      if (read.round > confirmed || read.index > this.chosenSlot) break;
      this.leaderReadsHead++;
      if (read.from === this.id) {
        if (read.nonce === this.readNonce) this.readAnswered(read.seq, read.index);
        continue;
      }
      const reply: ReadIndexReply = {
        type: MessageType.ReadIndexReply,
        from: this.id,
        to: read.from,
        ballot: this.ballot,
        nonce: read.nonce,
        seq: read.seq,
        index: read.index,
      };
      this.outNow.push(reply);
    }
    // Under steady reads the next round's reads are nearly always waiting: never "all released".
    this.leaderReadsHead = compactFront(this.leaderReads, this.leaderReadsHead);
  }

  private clearLeaderReads(): void {
    this.leaderReads.length = 0;
    this.leaderReadsHead = 0;
    this.readRoundWanted = false;
  }

  // ---- durability -----------------------------------------------------------------------------

  private takePersist(): PersistBatch | null {
    if (
      this.persistPromised === null &&
      this.persistAccepted.length === 0 &&
      this.persistSnapshot === null &&
      !this.persistChosenSlot &&
      !this.persistRecovered &&
      !this.persistRecovering
    ) {
      return null;
    }
    const batch: PersistBatch = {
      promised: this.persistPromised,
      accepted: this.persistAccepted,
      snapshot: this.persistSnapshot,
      chosenSlot: this.persistChosenSlot ? this.chosenSlot : null,
      ...(this.persistRecovered ? { recovered: true } : {}),
      ...(this.persistRecovering ? { recovering: true } : {}),
    };
    this.persistRecovered = false;
    this.persistRecovering = false;
    this.persistPromised = null;
    this.persistAccepted = [];
    this.persistSnapshot = null;
    this.persistChosenSlot = false;
    return batch;
  }

  /** Rebuild from durable state after a crash: a follower that re-applies its chosen prefix. */
  private restore(durable: DurableState): void {
    this.promised = durable.promised;
    this.roundMax = ballotRound(durable.promised);
    if (durable.snapshot !== null) {
      if (durable.snapshot.membership !== undefined && durable.snapshot.membership.length > 0)
        this.members.replace(durable.snapshot.membership);
      this.log.compact(durable.snapshot.slot);
      this.snapshot = durable.snapshot;
      this.chosenSlot = durable.snapshot.slot;
      this.appliedSlot = durable.snapshot.slot;
      this.install = durable.snapshot;
    }
    for (const vote of durable.accepted) {
      if (vote.slot <= this.log.compactedSlot) continue;
      assert(
        vote.ballot <= this.promised || this.promised === BALLOT_NONE,
        "vote above the promise",
      );
      this.log.set(vote.slot, {
        ballot: vote.ballot,
        batch: vote.batch,
        chosen: vote.slot <= durable.chosenSlot,
      });
      this.roundMax = Math.max(this.roundMax, ballotRound(vote.ballot));
    }
    for (let slot = this.chosenSlot + 1; slot <= durable.chosenSlot; slot++) {
      const entry = this.log.get(slot);
      assert(entry !== undefined, "durable chosen prefix has a hole");
      this.chosenSlot = slot;
      if (entry.batch.change !== undefined) this.applyChange(slot, entry.batch.change);
    }
  }
}
