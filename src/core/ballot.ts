import { assert } from "./errors.ts";

/**
 * A ballot `(round, replicaId)` packed into one safe integer: `round * BALLOT_IDS + replicaId`.
 * Numeric order equals the lexicographic order on (round, replicaId), so ballots compare with `<`
 * and cost nothing to copy. 0 is "no ballot" (round 0 is never used by a proposer).
 */
export type Ballot = number;

/** Replica ids are 1..BALLOT_IDS-1; the id space bounds the cluster size. */
export const BALLOT_IDS = 256;
export const BALLOT_NONE: Ballot = 0;
/** Largest round that keeps every ballot a safe integer. */
export const ROUND_MAX = Math.floor(Number.MAX_SAFE_INTEGER / BALLOT_IDS) - 1;

export function ballotOf(round: number, replicaId: number): Ballot {
  assert(
    Number.isSafeInteger(round) && round >= 1 && round <= ROUND_MAX,
    "ballot round out of range",
  );
  assert(Number.isInteger(replicaId) && replicaId >= 1 && replicaId < BALLOT_IDS, "bad replica id");
  return round * BALLOT_IDS + replicaId;
}

export function ballotRound(ballot: Ballot): number {
  return Math.floor(ballot / BALLOT_IDS);
}

export function ballotReplica(ballot: Ballot): number {
  return ballot % BALLOT_IDS;
}

export function formatBallot(ballot: Ballot): string {
  return ballot === BALLOT_NONE ? "-" : `${ballotRound(ballot)}.${ballotReplica(ballot)}`;
}
