import {
  type CoreOptions,
  Replica as CoreReplica,
  type DurableState,
  type Replica,
  type Slot,
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
    default: // "forget-votes" is a disk bug, planted in SimStorage
      return (o, d) => new CoreReplica(o, d);
  }
}
