import {
  type AcceptedEntry,
  type CoreOptions,
  Replica as CoreReplica,
  type DurableState,
  type Member,
  type PromiseMessage,
  popcount,
  type Replica,
  type Slot,
  voterMask,
} from "../core/index.ts";
import type { LogEntry } from "../core/log.ts";

/**
 * Deliberately broken replicas. The checker is trusted only because a test shows it catching each
 * of these; they are never used outside the simulator.
 */
export const PLANTED_BUGS = [
  "quorum-too-small",
  "skip-phase-1",
  "commit-any-ballot",
  "no-retransmit",
  "forget-votes",
  "adopt-first-vote",
  "promise-before-durable",
  "forget-promise",
  "amnesiac-votes",
  "clusterdown-after-send",
  "no-sessions",
  "no-recovery-marker",
  "read-without-round",
  "read-without-floor",
  "transfer-skip-phase-1",
  "membership-when-chosen",
  "count-learner-votes",
  "membership-trim-at-chosen",
] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

/** Quorum of floor(N/2): two disjoint "majorities" can choose different batches. */
class QuorumTooSmall extends CoreReplica {
  protected override quorumSize(): number {
    return Math.max(1, Math.floor(this.config.replicaCount / 2));
  }
}

/** A new leader proposes without Phase 1, so it never learns what may already be chosen. */
class SkipPhase1 extends CoreReplica {
  protected override beginPhase1(): void {
    super.beginPhase1();
    this.becomeLeader();
  }
}

/**
 * A transfer target that takes its leader's TimeoutNow as leave to lead at once, with a fresh
 * ballot but without Phase 1: it trusts that it holds everything, which a TimeoutNow delayed past
 * the transfer's end (the old leader led on and chose more) makes false.
 */
class TransferSkipPhase1 extends CoreReplica {
  protected override campaignNow(): void {
    super.campaignNow();
    this.becomeLeader();
  }
}

/**
 * A leader that counts the votes for every slot by the latest configuration chosen, as soon as
 * it is chosen, instead of by the configuration that governs the slot (lag slots later): a
 * leader that does not know the change yet counts the same slot by the old voters, and two
 * disjoint quorums decide it.
 */
class MembershipWhenChosen extends CoreReplica {
  protected override decidable(_slot: Slot, flight: { votes: number }): boolean {
    return this.quorumOf(flight.votes, this.latestMembers);
  }
}

/**
 * Configurations below the chosen slot dropped as soon as a change is applied: a snapshot handed
 * to the core late (the runtime's background serialization) then carries none for its slot.
 */
class MembershipTrimAtChosen extends CoreReplica {
  protected override membershipKeptFrom(): Slot {
    return this.status().chosenSlot;
  }
}

/** Votes (and promises) of learners counted towards the voters' majority. */
class CountLearnerVotes extends CoreReplica {
  protected override quorumOf(mask: number, members: readonly Member[]): boolean {
    let everyone = 0;
    for (const m of members) everyone |= 1 << m.id;
    return popcount(mask & everyone) >= this.quorumSize(popcount(voterMask(members)));
  }
}

/** A leader that serves reads without a read round: a deposed leader that has not noticed serves stale data. */
class ReadWithoutRound extends CoreReplica {
  protected override readRoundConfirmed(): number {
    return this.lastReadRound;
  }
}

/** A new leader gives reads its chosen prefix as index, not the top slot its Phase 1 found. */
class ReadWithoutFloor extends CoreReplica {
  protected override readIndexFloor(): Slot {
    return this.status().chosenSlot;
  }
}

/** A leader that never resends a lost Accept: safe, but not live under loss. */
class NoRetransmit extends CoreReplica {
  protected override retransmit(): void {}
}

/** A follower that takes any vote at or below the leader's commit point as chosen, whatever its ballot. */
class CommitAnyBallot extends CoreReplica {
  protected override committedByLeader(slot: Slot, _entry: LogEntry): boolean {
    return this.role !== "leader" && slot <= this.leaderCommitSlot;
  }
}

/** A candidate that adopts the first vote it hears per slot instead of the highest-ballot one. */
class AdoptFirstVote extends CoreReplica {
  private readonly firstHeard = new Set<string>();
  protected override mergeRecovered(vote: AcceptedEntry): void {
    // Only the first vote per slot per campaign reaches the real merge.
    const key = `${this.status().ballot}:${vote.slot}`;
    if (this.firstHeard.has(key)) return;
    this.firstHeard.add(key);
    super.mergeRecovered(vote);
  }
}

/** An acceptor that sends its Promise before the promise is durable: a crash then forgets it. */
class PromiseBeforeDurable extends CoreReplica {
  protected override sendPromise(promise: PromiseMessage): void {
    this.sendBeforePersist(promise);
  }
}

export function replicaFactory(
  bug: PlantedBug | undefined,
): (options: CoreOptions, durable?: DurableState) => Replica {
  switch (bug) {
    case "quorum-too-small":
      return (o, d) => new QuorumTooSmall(o, d);
    case "skip-phase-1":
      return (o, d) => new SkipPhase1(o, d);
    case "no-retransmit":
      return (o, d) => new NoRetransmit(o, d);
    case "commit-any-ballot":
      return (o, d) => new CommitAnyBallot(o, d);
    case "adopt-first-vote":
      return (o, d) => new AdoptFirstVote(o, d);
    case "promise-before-durable":
      return (o, d) => new PromiseBeforeDurable(o, d);
    case "read-without-round":
      return (o, d) => new ReadWithoutRound(o, d);
    case "read-without-floor":
      return (o, d) => new ReadWithoutFloor(o, d);
    case "transfer-skip-phase-1":
      return (o, d) => new TransferSkipPhase1(o, d);
    case "membership-when-chosen":
      return (o, d) => new MembershipWhenChosen(o, d);
    case "count-learner-votes":
      return (o, d) => new CountLearnerVotes(o, d);
    case "membership-trim-at-chosen":
      return (o, d) => new MembershipTrimAtChosen(o, d);
    // "forget-votes" and "forget-promise" are disk bugs, planted in SimStorage; "amnesiac-votes"
    // is a runtime bug (a wiped replica started without recovery), planted in the simulator, as is
    // "no-recovery-marker" (a recovery that crashed half-way is not resumed at the next start);
    // "clusterdown-after-send" (the expiry error decided by the request's state, not by whether
    // it ever left) is planted in SimOrigin, "no-sessions" (every copy runs) in SimStateMachine.
    default:
      return (o, d) => new CoreReplica(o, d);
  }
}
