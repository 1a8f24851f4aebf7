import { assert } from "./errors.ts";
import type { Slot } from "./types.ts";

// ---- membership --------------------------------------------------------------------------------
//
// Who votes is decided in the log (Lamport's α reconfiguration, "Paxos Made Simple" §3 and
// "Reconfiguring a State Machine"). A change is a slot whose batch carries the new member list; a
// change chosen in slot c governs every slot from c + lag on, where lag (CoreConfig.membershipLag)
// is a cluster-wide constant. So the configuration of slot s, config(s), is a function of the
// chosen slots <= s - lag alone: every replica that knows that prefix computes the same one, and
// each slot is an ordinary Paxos instance whose acceptors are config(s)'s voters. The rules that
// make it so live in Replica:
//  - a leader proposes slot s only once every slot <= s - lag is chosen, so it knows config(s);
//  - a leader counts a vote for slot s only from a voter of config(s), and only while s - lag is in
//    its chosen prefix (Phase 1 may re-propose farther slots; they wait for the prefix);
//  - Phase 1 completes only with promises from a majority of every configuration that governs a
//    slot from its fromSlot up to the highest vote it found plus lag (computed from the votes it
//    will re-propose): any slot an earlier ballot can have chosen lies in that range.
// Because config(s) is fixed per slot, any change is safe, even a swap of several voters; the
// administrative commands still take one voter at a time (single-server steps), so that each step
// keeps a majority of the old voters in the new majority and one failed machine never stops a
// change halfway. Learners are full acceptors (they promise and vote, and receive the log) whose
// votes are never counted; a learner is promoted by a change that makes it a voter.
//
// The pitfalls this design has to meet, and where:
//  - "A configuration takes effect when logged, not when chosen" (Raft's rule) becomes "lag slots
//    after it is chosen": a leader that counted votes with a change it did not know to be chosen
//    could decide a slot with a quorum of a configuration that does not govern it.
//  - Two changes in flight: a change is valid only if it names, as its base, the configuration in
//    force when it is applied, and only once that configuration governs its slot. A stale change
//    (proposed by a deposed leader, or twice) is applied as a no-op on every replica alike.
//  - The leader may remove itself: it leads on until the change governs its next slot, then hands
//    over to the most caught-up voter (Replica.tickLeader).
//  - A removed replica must not disrupt: it never campaigns once it knows, and until then its
//    probes are refused by replicas that do not count it a voter.

/** Replica ids are 1..REPLICA_ID_MAX: votes and promises are tracked in 32-bit masks. */
export const REPLICA_ID_MAX = 31;
/** Longest member address, bytes of UTF-8 ("host:port"; a DNS name is at most 253). */
export const MEMBER_ADDRESS_BYTES_MAX = 1024;

/** One replica of a configuration. `address` is opaque to the core (the runtime dials it). */
export interface Member {
  readonly id: number;
  /** A voter's vote counts; a learner's does not (it receives the log and votes, uncounted). */
  readonly voter: boolean;
  readonly address: string;
}

/** The payload of a change slot: replace the configuration `base` by `members`. */
export interface MembershipChange {
  /** The slot of the change that made the configuration this one modifies; 0: the bootstrap one. */
  readonly base: Slot;
  /**
   * The members of that configuration, so that a replica that joined later and learns the log
   * from slot 1 (no snapshot yet) knows what governed the slots before this change.
   */
  readonly baseMembers: readonly Member[];
  readonly members: readonly Member[];
}

/** One configuration in the history: made by the change in `slot`, in force from `effectiveFrom`. */
export interface MembershipEntry {
  /** The change's slot; 0 for the bootstrap configuration. */
  readonly slot: Slot;
  readonly effectiveFrom: Slot;
  readonly members: readonly Member[];
}

export type MembersProblem = string | null;

/** Why a member list cannot be a configuration, or null when it can. */
export function membersProblem(members: readonly Member[]): MembersProblem {
  if (members.length === 0) return "no members";
  let voters = 0;
  let last = 0;
  for (const m of members) {
    if (!Number.isInteger(m.id) || m.id < 1 || m.id > REPLICA_ID_MAX)
      return `replica id ${m.id} is outside 1..${REPLICA_ID_MAX}`;
    if (m.id <= last) return "members must be sorted by id, each id once";
    last = m.id;
    if (new TextEncoder().encode(m.address).byteLength > MEMBER_ADDRESS_BYTES_MAX)
      return `replica ${m.id}'s address is longer than ${MEMBER_ADDRESS_BYTES_MAX} bytes`;
    if (m.voter) voters++;
  }
  if (voters === 0) return "no voters";
  return null;
}

/** The members sorted by id (the canonical order every replica keeps). */
export function sortedMembers(members: readonly Member[]): Member[] {
  return [...members].sort((a, b) => a.id - b.id);
}

/** A bit per voter id. */
export function voterMask(members: readonly Member[]): number {
  let mask = 0;
  for (const m of members) if (m.voter) mask |= 1 << m.id;
  return mask;
}

export function popcount(mask: number): number {
  let count = 0;
  for (let m = mask; m !== 0; m &= m - 1) count++;
  return count;
}

/** True when the ids in `mask` include a majority of `members`' voters. */
export function majorityOf(mask: number, members: readonly Member[]): boolean {
  const voters = voterMask(members);
  return 2 * popcount(mask & voters) > popcount(voters);
}

export function isVoter(members: readonly Member[] | null, id: number): boolean {
  return members?.some((m) => m.id === id && m.voter) ?? false;
}

export function isMember(members: readonly Member[] | null, id: number): boolean {
  return members?.some((m) => m.id === id) ?? false;
}

function sameMembers(a: readonly Member[], b: readonly Member[]): boolean {
  return (
    a.length === b.length &&
    a.every((m, i) => m.id === b[i]!.id && m.voter === b[i]!.voter && m.address === b[i]!.address)
  );
}

/**
 * The configurations that govern the slots above a point, from the chosen log: the last one in
 * force there and every later change. Pure and deterministic: every replica that applied the
 * same chosen prefix holds the same history.
 */
export class MembershipHistory {
  readonly lag: number;
  /** In slot order. Empty only on a replica that joined and has not learned a configuration. */
  private entries: MembershipEntry[];

  constructor(lag: number, entries: readonly MembershipEntry[]) {
    assert(Number.isSafeInteger(lag) && lag >= 1, "membership lag must be a positive integer");
    this.lag = lag;
    this.entries = [...entries];
  }

  /** The bootstrap history: `members` govern every slot from 1. */
  static bootstrap(lag: number, members: readonly Member[] | null): MembershipHistory {
    return new MembershipHistory(
      lag,
      members === null ? [] : [{ slot: 0, effectiveFrom: 1, members: sortedMembers(members) }],
    );
  }

  get known(): boolean {
    return this.entries.length > 0;
  }

  /** The configuration made by the latest chosen change (it may not govern any slot yet). */
  latest(): MembershipEntry | null {
    return this.entries[this.entries.length - 1] ?? null;
  }

  /** config(slot), or null when this replica does not know it (it joined after that slot). */
  at(slot: Slot): MembershipEntry | null {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i]!.effectiveFrom <= slot) return this.entries[i]!;
    }
    return null;
  }

  /** Every configuration that governs some slot in [from, to], oldest first. */
  governing(from: Slot, to: Slot): MembershipEntry[] {
    const out: MembershipEntry[] = [];
    const first = this.at(from);
    if (first !== null) out.push(first);
    for (const entry of this.entries) {
      if (entry.effectiveFrom > from && entry.effectiveFrom <= to) out.push(entry);
    }
    return out;
  }

  /**
   * Whether `change`, in `slot`, applies on top of what is known: it names the latest
   * configuration as its base, and that configuration governs `slot` already (one change at a
   * time). A replica that knows no configuration yet (it joined, and learns the log from slot 1
   * because no snapshot exists) meets the first change ever first: it is valid for the others
   * exactly when its base is the bootstrap configuration (slot 0), and so for this one.
   */
  valid(slot: Slot, change: MembershipChange): boolean {
    if (membersProblem(change.members) !== null) return false;
    const latest = this.latest();
    if (latest === null) return change.base === 0 && membersProblem(change.baseMembers) === null;
    return change.base === latest.slot && slot >= latest.effectiveFrom;
  }

  /**
   * The change chosen in `slot` (called in slot order as the chosen prefix grows). Returns whether
   * it applied; an invalid one is a no-op on every replica alike.
   */
  apply(slot: Slot, change: MembershipChange): boolean {
    const last = this.latest();
    assert(last === null || slot > last.slot, "membership changes applied out of order");
    if (!this.valid(slot, change)) return false;
    if (last === null) {
      // Joined late: what the change replaced governed everything before it, as far as we care.
      this.entries.push({ slot: change.base, effectiveFrom: 1, members: change.baseMembers });
    } else if (!sameMembers(last.members, change.baseMembers)) {
      // Our copy of the base disagrees with the one the change was made from (a replica that
      // lost its state and took its bootstrap from an edited --peers): the log says what it was.
      this.entries[this.entries.length - 1] = { ...last, members: change.baseMembers };
    }
    this.entries.push({ slot, effectiveFrom: slot + this.lag, members: change.members });
    return true;
  }

  /**
   * The history as of chosen slot `slot`, from the configuration that governs `slot` on: what a
   * snapshot through `slot` carries (at most that one and a change not governing yet).
   */
  asOf(slot: Slot): MembershipEntry[] {
    const known = this.entries.filter((e) => e.slot <= slot);
    let from = 0;
    for (let i = 0; i < known.length; i++) if (known[i]!.effectiveFrom <= slot) from = i;
    return known.slice(from);
  }

  /** Replace by a snapshot's history (installing it). */
  replace(entries: readonly MembershipEntry[]): void {
    if (entries.length > 0) this.entries = [...entries];
  }

  /** Drop configurations that govern no slot from `slot` on (all but the one in force there). */
  trimBelow(slot: Slot): void {
    let keepFrom = 0;
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i]!.effectiveFrom <= slot) keepFrom = i;
    }
    if (keepFrom > 0) this.entries = this.entries.slice(keepFrom);
  }

  all(): readonly MembershipEntry[] {
    return this.entries;
  }

  /** A change equal to the latest configuration changes nothing: the caller says so instead. */
  isLatest(members: readonly Member[]): boolean {
    const latest = this.latest();
    return latest !== null && sameMembers(latest.members, members);
  }
}
