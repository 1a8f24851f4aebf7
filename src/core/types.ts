import type { Ballot } from "./ballot.ts";
import type { MembershipChange, MembershipEntry } from "./membership.ts";

/** A log position. Slots start at 1; 0 means "none" (before the first slot). */
export type Slot = number;

/**
 * What one slot decides: a batch of client commands, stamped with the proposing leader's clock
 * (the state machine's only notion of time). A batch with no commands is a no-op, used to fill
 * holes found in Phase 1.
 */
export interface Batch {
  /** Leader's wall clock in ms when it formed the batch; opaque to the core. */
  readonly stampMs: number;
  readonly commands: readonly Uint8Array[];
  /**
   * A membership change (see membership.ts). A batch that carries one carries no commands; the
   * state machine sees it as a no-op.
   */
  readonly change?: MembershipChange;
}

export const NOOP: Batch = Object.freeze({
  stampMs: 0,
  commands: Object.freeze([]) as readonly Uint8Array[],
});

/** An acceptor's vote: `batch` accepted in `slot` under `ballot`. */
export interface AcceptedEntry {
  readonly slot: Slot;
  readonly ballot: Ballot;
  readonly batch: Batch;
}

/** A decided slot, handed to the state machine in slot order. */
export interface ChosenEntry {
  readonly slot: Slot;
  readonly batch: Batch;
}

/** The state machine's image of every slot up to `slot`. The core treats `data` as opaque. */
export interface Snapshot {
  readonly slot: Slot;
  readonly data: Uint8Array;
  /**
   * The membership history as of `slot` (MembershipHistory.asOf), attached by the core; absent
   * in a snapshot the caller hands to compact(), and on a replica that knows no configuration.
   */
  readonly membership?: readonly MembershipEntry[];
}

export const MessageType = {
  Prepare: 1,
  Promise: 2,
  Nack: 3,
  Accept: 4,
  Accepted: 5,
  Heartbeat: 6,
  HeartbeatReply: 7,
  Chosen: 8,
  InstallSnapshot: 9,
  Probe: 10,
  ProbeReply: 11,
  Recover: 12,
  RecoverReply: 13,
  ReadIndex: 14,
  ReadIndexReply: 15,
  TimeoutNow: 16,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

interface Envelope {
  readonly from: number;
  readonly to: number;
  /** The sender's ballot: the one it leads or campaigns with, or its promise when replying. */
  readonly ballot: Ballot;
}

/** Phase 1a: "promise not to accept below `ballot`; tell me what you accepted from `fromSlot`". */
export interface Prepare extends Envelope {
  readonly type: typeof MessageType.Prepare;
  readonly fromSlot: Slot;
}

/**
 * Phase 1b. `entries` are the acceptor's votes for slots >= the Prepare's fromSlot, in slot order;
 * those at or below `chosenSlot` are known chosen. `more` says the list was cut at the message
 * limit: the candidate must prepare again from where it stopped. `snapshot` is sent when the
 * candidate is behind the acceptor's compacted prefix.
 */
export interface PromiseMessage extends Envelope {
  readonly type: typeof MessageType.Promise;
  /** The Prepare's fromSlot this answers (a promise to an older Prepare is ignored). */
  readonly fromSlot: Slot;
  readonly chosenSlot: Slot;
  readonly entries: readonly AcceptedEntry[];
  readonly more: boolean;
  readonly snapshot: Snapshot | null;
}

/** "I have promised `ballot`, higher than yours": a stale proposer steps down. */
export interface Nack extends Envelope {
  readonly type: typeof MessageType.Nack;
}

/** Phase 2a, with the leader's commit point piggybacked. */
export interface Accept extends Envelope {
  readonly type: typeof MessageType.Accept;
  readonly slot: Slot;
  readonly batch: Batch;
  /** Every slot <= commitSlot is chosen (as the leader knows it). */
  readonly commitSlot: Slot;
}

/** Phase 2b. Carries the acceptor's chosen prefix so the leader can track its progress. */
export interface Accepted extends Envelope {
  readonly type: typeof MessageType.Accepted;
  readonly slot: Slot;
  readonly chosenSlot: Slot;
}

/**
 * Also the leader's read round: a follower echoes `readRound` in its reply, and a reply with the
 * leader's ballot that echoes round r says "I still promised your ballot after you sent round r"
 * (see Replica's read section).
 */
export interface Heartbeat extends Envelope {
  readonly type: typeof MessageType.Heartbeat;
  readonly commitSlot: Slot;
  readonly readRound: number;
}

export interface HeartbeatReply extends Envelope {
  readonly type: typeof MessageType.HeartbeatReply;
  readonly chosenSlot: Slot;
  /** The readRound of the Heartbeat answered (0 when answering a catch-up message). */
  readonly readRound: number;
}

/**
 * A follower asks the leader for a read index on behalf of one of its reads. `nonce` is fresh per
 * incarnation of the asking replica (an answer to an earlier incarnation is never taken for a new
 * one) and `seq` numbers the reads of this incarnation.
 */
export interface ReadIndex extends Envelope {
  readonly type: typeof MessageType.ReadIndex;
  readonly nonce: number;
  readonly seq: number;
}

/** The leader confirmed its leadership after the ReadIndex arrived: reads may see slot `index`. */
export interface ReadIndexReply extends Envelope {
  readonly type: typeof MessageType.ReadIndexReply;
  readonly nonce: number;
  readonly seq: number;
  readonly index: Slot;
}

/** Catch-up: chosen values for a follower that missed them (contiguous, in slot order). */
export interface Chosen extends Envelope {
  readonly type: typeof MessageType.Chosen;
  readonly entries: readonly ChosenEntry[];
  readonly commitSlot: Slot;
}

/** Catch-up for a follower behind the leader's compacted prefix. */
export interface InstallSnapshot extends Envelope {
  readonly type: typeof MessageType.InstallSnapshot;
  readonly snapshot: Snapshot;
}

/**
 * Pre-vote: "would you promise `ballot`?" A replica that timed out asks before it raises its
 * promise, so a partitioned replica cannot return with a high ballot and depose a live leader.
 * Nothing is persisted for a probe.
 */
export interface Probe extends Envelope {
  readonly type: typeof MessageType.Probe;
  /**
   * The prober's chosen prefix. A replica refuses a prober outside its configurations only when
   * it is at least as far along: one that lags may simply not know the prober's membership yet.
   */
  readonly chosenSlot: Slot;
}

export interface ProbeReply extends Envelope {
  readonly type: typeof MessageType.ProbeReply;
  readonly granted: boolean;
}

/**
 * "I lost my durable state: tell me what you promised and accepted from `fromSlot`." Sent by a
 * recovering replica (see Replica's recovery section) to every other replica. `nonce` is fresh
 * per recovery, so an answer to an earlier incarnation's question is never taken for a new one.
 * The ballot in the header is 0: a recovering replica campaigns for nothing.
 */
export interface Recover extends Envelope {
  readonly type: typeof MessageType.Recover;
  readonly nonce: number;
  readonly fromSlot: Slot;
}

/**
 * The answer to Recover, shaped like a Promise that promises nothing: `ballot` is the answering
 * replica's own promise, `entries` its votes from `fromSlot` (those at or below `chosenSlot` known
 * chosen), cut and flagged `more` like a Promise. `recovering` says the answering replica has no
 * state to give either; it does not count.
 */
export interface RecoverReply extends Envelope {
  readonly type: typeof MessageType.RecoverReply;
  readonly nonce: number;
  readonly fromSlot: Slot;
  readonly chosenSlot: Slot;
  readonly entries: readonly AcceptedEntry[];
  readonly more: boolean;
  readonly snapshot: Snapshot | null;
  readonly recovering: boolean;
}

/**
 * Leadership transfer: the leader of `ballot` hands over to `target`. Sent to every peer once the
 * target holds everything the leader proposed. The target (if it still follows that leader under
 * that ballot) starts Phase 1 at once, skipping pre-vote; every other follower of that leader stops
 * refusing the target's Prepare on the leader's behalf (the stickiness rule) for an election
 * timeout. Safety is Phase 1's, as in any election: the message only changes who campaigns when.
 */
export interface TimeoutNow extends Envelope {
  readonly type: typeof MessageType.TimeoutNow;
  readonly target: number;
}

export type Message =
  | TimeoutNow
  | Recover
  | RecoverReply
  | Prepare
  | PromiseMessage
  | Nack
  | Accept
  | Accepted
  | Heartbeat
  | HeartbeatReply
  | Chosen
  | InstallSnapshot
  | Probe
  | ProbeReply
  | ReadIndex
  | ReadIndexReply;
