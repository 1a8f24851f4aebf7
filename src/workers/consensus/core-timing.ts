import type { ReplicaConfig } from "../../runtime/config.ts";

/** How the millisecond settings map onto the core's ticks. */
export interface CoreTiming {
  readonly tickMs: number;
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  readonly retransmitTicks: number;
}

/** A tick of at most 10 ms keeps timeouts fine-grained; it costs one core.tick() per tick. */
const TICK_MS_MAX = 10;

export function coreTiming(
  config: Pick<ReplicaConfig, "heartbeatMs" | "electionTimeoutMs">,
): CoreTiming {
  const tickMs = Math.min(TICK_MS_MAX, config.heartbeatMs);
  const heartbeatTicks = Math.max(1, Math.round(config.heartbeatMs / tickMs));
  const electionTicks = Math.max(2 * heartbeatTicks, Math.round(config.electionTimeoutMs / tickMs));
  // Resend an unacknowledged Accept after two heartbeats: well past a round trip, well before an election.
  const retransmitTicks = Math.max(1, Math.min(2 * heartbeatTicks, electionTicks - 1));
  return { tickMs, heartbeatTicks, electionTicks, retransmitTicks };
}
