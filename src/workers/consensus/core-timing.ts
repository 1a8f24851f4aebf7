import type { ReplicaConfig } from "../../runtime/config.ts";

/** How the millisecond settings map onto the core's ticks. */
export interface CoreTiming {
  readonly tickMs: number;
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  readonly retransmitTicks: number;
}

/**
 * Ticks per heartbeat interval, and the longest tick. Every tick wakes the consensus thread
 * (a timer, core.tick(), a pump) even when nothing happens: with a 10 ms tick an idle cluster of
 * three burnt 4.9 % of a core in its consensus threads; with two ticks per heartbeat (25 ms at
 * the default 50 ms) 3.4–4.1 % (/proc per thread, 20 s, alternating runs). Timeouts stay within a
 * tick of what is set: the election timeout is drawn from [E, 2E) in ticks.
 */
const TICKS_PER_HEARTBEAT = 2;
const TICK_MS_MAX = 25;

export function coreTiming(
  config: Pick<ReplicaConfig, "heartbeatMs" | "electionTimeoutMs">,
): CoreTiming {
  const tickMs = Math.max(
    1,
    Math.min(TICK_MS_MAX, Math.round(config.heartbeatMs / TICKS_PER_HEARTBEAT)),
  );
  const heartbeatTicks = Math.max(1, Math.round(config.heartbeatMs / tickMs));
  const electionTicks = Math.max(2 * heartbeatTicks, Math.round(config.electionTimeoutMs / tickMs));
  // Resend an unacknowledged Accept after two heartbeats: well past a round trip, well before an election.
  const retransmitTicks = Math.max(1, Math.min(2 * heartbeatTicks, electionTicks - 1));
  return { tickMs, heartbeatTicks, electionTicks, retransmitTicks };
}
