/**
 * How the runtime tells what a leadership transfer came to (ConsensusNode.transferLeadership),
 * from what the core shows rather than from "this replica stepped down": a check-quorum step-down
 * or a third replica deposing the leader is no transfer.
 */

/** How a transfer under way ended. */
export type TransferEnd = "transferred" | "deposed" | "timed-out";

/** The transfer watch's own bound, in election timeouts (the core ends one within one). */
export const TRANSFER_WATCH_TIMEOUTS_MAX = 4;

/** What the watch reads of the core at each poll. */
export interface TransferView {
  readonly role: string;
  /** The leader the core knows, itself when leading; 0: none. */
  readonly knownLeader: number;
  /** The core's transfer under way, 0: none. */
  readonly transferTarget: number;
  /** The core's count of transfers completed (it met its target's higher ballot). */
  readonly transfersCompleted: number;
}

/**
 * The end of the transfer to `to` begun when the core's completed count was `completedBefore`,
 * or null while it runs: transferred when the target is the known leader or the count moved (the
 * target met us with its higher ballot: it campaigns with our blessing, and may not be heard as
 * leader yet); deposed when we stopped leading without either; timed-out when we still lead and
 * the core dropped the transfer (it gives up after one election timeout).
 */
export function transferEndOf(
  view: TransferView,
  to: number,
  completedBefore: number,
): TransferEnd | null {
  if (view.knownLeader === to) return "transferred";
  if (view.role !== "leader") {
    return view.transfersCompleted > completedBefore ? "transferred" : "deposed";
  }
  if (view.transferTarget !== to) return "timed-out";
  return null;
}

/**
 * The wait of POST /leader/transfer?wait_ms=, clamped to [heartbeat, 2 x election timeout]: less
 * than a heartbeat cannot see a transfer through, and the core gives up after one election
 * timeout, so more only waits for nothing. Null (absent): the upper end.
 */
export function clampTransferWaitMs(
  waitMs: number | null,
  timing: { readonly heartbeatMs: number; readonly electionTimeoutMs: number },
): number {
  const most = 2 * timing.electionTimeoutMs;
  if (waitMs === null) return most;
  return Math.min(most, Math.max(timing.heartbeatMs, waitMs));
}
