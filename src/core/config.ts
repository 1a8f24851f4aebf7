import {
  BATCH_BYTES_MAX_DEFAULT,
  BATCH_COMMANDS_MAX_DEFAULT,
  COMPACTION_TAIL_BYTES_DEFAULT,
  COMPACTION_TAIL_SLOTS_DEFAULT,
  MEMBERSHIP_LAG_SLOTS,
  REPLICA_COUNT_MAX,
  WINDOW_SLOTS_DEFAULT,
} from "../limits.ts";
import { BALLOT_IDS } from "./ballot.ts";
import { ApusError } from "./errors.ts";
import { type Member, membersProblem, REPLICA_ID_MAX, sortedMembers } from "./membership.ts";
import type { Prng } from "./prng.ts";

export { REPLICA_COUNT_MAX };

export interface CoreConfig {
  /** This replica's id, 1..REPLICA_ID_MAX; a stable identity, not a position. */
  readonly id: number;
  /** Voters of the bootstrap configuration when `members` is not given: ids 1..replicaCount. */
  readonly replicaCount: number;
  /** Slots between a membership change being chosen and governing (see membership.ts). */
  readonly membershipLag: number;
  /** Election timeout lower bound; the actual timeout is drawn from [electionTicks, 2*electionTicks). */
  readonly electionTicks: number;
  /** A leader sends a heartbeat every heartbeatTicks. Must be well below electionTicks. */
  readonly heartbeatTicks: number;
  /** An unacknowledged Accept is resent after this many ticks. */
  readonly retransmitTicks: number;
  /** Slots a leader may have in flight (proposed, not yet chosen). */
  readonly windowSlots: number;
  /** Commands per slot. */
  readonly batchCommandsMax: number;
  /**
   * Batching that grows with load: while a slot is in flight, the next one starts only once as
   * many commands wait as the last slot carried (or batchCommandsMax); when nothing is in flight
   * it starts at once. False: every pump proposes what waits, as the window allows.
   */
  readonly adaptiveBatching: boolean;
  /** Command bytes per slot (a single larger command still gets a slot of its own). */
  readonly batchBytesMax: number;
  /** Commands a leader queues while the window is full; propose() refuses beyond it. */
  readonly proposalQueueMax: number;
  /** Chosen entries per catch-up message (Chosen, or the chosen part of a Promise). */
  readonly catchupEntriesMax: number;
  /** Command bytes per catch-up message. */
  readonly catchupBytesMax: number;
  /**
   * Slots beyond our chosen prefix that a peer's message may name. Farther ones are dropped and
   * counted: the log would fill the gap entry by entry at the sender's say-so.
   */
  readonly slotsAheadMax: number;
  /**
   * Chosen slots kept below a new snapshot by compact() (0: none), so a peer a little behind is
   * sent entries, not the snapshot; at most compactionTailBytes of commands.
   */
  readonly compactionTailSlots: number;
  readonly compactionTailBytes: number;
  readonly prng: Prng;
}

export type CoreOptions = Pick<CoreConfig, "id" | "replicaCount" | "prng"> &
  Partial<CoreConfig> & {
    /**
     * Start without durable state that may vote: recover from every other replica first (memory
     * durability after a restart, a wiped data directory). See Replica's recovery section.
     */
    readonly recovering?: boolean;
    /**
     * The bootstrap configuration: what governs slot 1 on, until the log changes it. Absent: ids
     * 1..replicaCount, all voters. null: this replica joins an existing cluster and knows no
     * configuration; it learns one from the log or a snapshot, and never campaigns before.
     */
    readonly members?: readonly Member[] | null;
  };

export const CORE_DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  retransmitTicks: 2,
  windowSlots: WINDOW_SLOTS_DEFAULT,
  batchCommandsMax: BATCH_COMMANDS_MAX_DEFAULT,
  batchBytesMax: BATCH_BYTES_MAX_DEFAULT,
  adaptiveBatching: true,
  proposalQueueMax: 64 * 1024,
  catchupEntriesMax: 64,
  catchupBytesMax: 1024 * 1024,
  slotsAheadMax: 1 << 20,
  membershipLag: MEMBERSHIP_LAG_SLOTS,
  compactionTailSlots: COMPACTION_TAIL_SLOTS_DEFAULT,
  compactionTailBytes: COMPACTION_TAIL_BYTES_DEFAULT,
} as const;

function positiveInt(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ApusError("ERR_INVALID_CONFIG", `${name} must be a positive integer, got ${value}`);
  }
}

/** Fill defaults and check every setting and the relations between them, naming the setting. */
export function resolveCoreConfig(options: CoreOptions): CoreConfig {
  const { recovering: _recovering, members, ...settings } = options;
  const config: CoreConfig = { ...CORE_DEFAULTS, ...settings };
  for (const [name, value] of Object.entries(config)) {
    if (name === "compactionTailSlots" || name === "compactionTailBytes") {
      if (!Number.isSafeInteger(value) || (value as number) < 0)
        throw new ApusError("ERR_INVALID_CONFIG", `${name} must be an integer >= 0, got ${value}`);
    } else if (name !== "prng" && name !== "adaptiveBatching") positiveInt(name, value as number);
  }
  if (config.replicaCount > REPLICA_COUNT_MAX || config.replicaCount >= BALLOT_IDS) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `replicaCount is ${config.replicaCount}; at most ${REPLICA_COUNT_MAX} replicas are supported`,
    );
  }
  if (members !== undefined) {
    if (config.id > REPLICA_ID_MAX) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        `id is ${config.id}; replica ids run from 1 to ${REPLICA_ID_MAX}`,
      );
    }
    const problem = members === null ? null : membersProblem(sortedMembers(members));
    if (problem !== null)
      throw new ApusError("ERR_INVALID_CONFIG", `bootstrap members: ${problem}`);
    if (members === null && options.recovering === true)
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        "a recovering replica must know whom to ask: give it the members it knows (the cluster's --peers), not members: null",
      );
  } else if (config.id > config.replicaCount) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `id is ${config.id} but there are ${config.replicaCount} replicas; ids run from 1 to ${config.replicaCount}`,
    );
  }
  if (config.catchupEntriesMax + config.windowSlots > config.slotsAheadMax) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `slotsAheadMax (${config.slotsAheadMax}) must be at least catchupEntriesMax + windowSlots (${config.catchupEntriesMax + config.windowSlots}): an answer carries that many entries past the asker's prefix, and one reaching farther is dropped whole`,
    );
  }
  if (config.heartbeatTicks * 2 > config.electionTicks) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `heartbeatTicks (${config.heartbeatTicks}) must be at most half of electionTicks (${config.electionTicks}), or followers time out between heartbeats`,
    );
  }
  return config;
}
