import { SeededPrng } from "../core/index.ts";
import type { PlantedBug } from "./planted-bugs.ts";
import type { NetworkFaults } from "./sim-network.ts";

/** Everything one simulated run does, derived from its seed alone so that a seed replays it. */
export interface Scenario {
  readonly seed: number;
  readonly replicaCount: number;
  /** Ticks with faults on; then faults stop, partitions heal and crashed replicas restart. */
  readonly faultTicks: number;
  readonly faults: NetworkFaults;
  /** Per-tick probability that one running replica crashes (0: no crashes). */
  readonly crashRate: number;
  /** Per-tick probability that the network splits in two (0: no partitions). */
  readonly partitionRate: number;
  /** Per-ready probability that a crash strikes after messagesNow but before the persist. */
  readonly tornPersistRate: number;
  /**
   * Targeted crash points: per Ready that persists a promise, the chance of a crash before that
   * persist; per Ready whose chosen-slot hint was deferred, the chance of a crash right after its
   * heartbeat replies left (the hint is then lost).
   */
  readonly crashPointRate: number;
  /** fsync: disks survive crashes. memory: every crash loses the replica's state (no disk). */
  readonly durability: "fsync" | "memory";
  /** Per-tick probability that one replica's disk is wiped (replaced) as it crashes. */
  readonly wipeRate: number;
  /** Per-tick probability that two replicas time out at once and campaign against each other. */
  readonly duelRate: number;
  /** Chance that a message deciding a race (Promise, Accepted, RecoverReply) is held back longer. */
  readonly raceDelayRate: number;
  readonly clients: number;
  /** An origin answers a request not applied within this many ticks (--request-timeout-ms). */
  readonly requestTimeoutTicks: number;
  /** An origin sends a request again that is not applied this long after it left (RESEND_AFTER_MS). */
  readonly resendAfterTicks: number;
  /** Requests an origin keeps at once (--max-pending); beyond it a client is answered BUSY. */
  readonly pendingRequestsMax: number;
  /** Commands a leader queues (the core's proposalQueueMax): a small one refuses forwards. */
  readonly proposalQueueMax: number;
  readonly electionTicks: number;
  readonly windowSlots: number;
  readonly catchupEntriesMax: number;
  /** Take a snapshot and compact every this many applied slots (0: never). */
  readonly compactEverySlots: number;
  /** Chosen slots kept below each snapshot (the core's compactionTailSlots). */
  readonly compactionTailSlots: number;
  /** Per replica per tick, the chance that it is asked for a linearizable read (Replica.read). */
  readonly readRate: number;
  /**
   * Per tick, the chance that one replica stalls (a GC pause, SIGSTOP) for up to 3 election
   * timeouts: it neither ticks nor receives meanwhile, and wakes believing what it believed.
   */
  readonly pauseRate: number;
  /**
   * Per tick, the chance that the leader is asked to transfer leadership (Replica.transferLeadership):
   * to the most caught-up follower, to a random peer, or to the most lagging one.
   */
  readonly transferRate: number;
  /**
   * Per tick, the chance that the leader is asked to change the membership (Replica.changeMembership):
   * add a spare as learner, promote, demote or remove one, or (one time in four) replace the
   * voters by an arbitrary set at once, which the α rule must make as safe as a single step.
   */
  readonly membershipRate: number;
  /** Replicas beyond replicaCount that start outside the configuration (joining, members null). */
  readonly spareReplicas: number;
  /** Slots between a change being chosen and governing (CoreConfig.membershipLag). */
  readonly membershipLag: number;
  /** The leader's batching (CoreConfig.adaptiveBatching): even seeds adaptive, odd eager. */
  readonly adaptiveBatching: boolean;
  readonly bug: PlantedBug | undefined;
}

/**
 * After faults stop, every client operation must be acknowledged within this many ticks.
 * Budget: an election (timeout < 2E, probe and prepare round trips), catch-up of a restarted
 * replica, with slack for split votes at N=9; then a request that can no longer be answered (its
 * origin learnt its slot from a snapshot) times out and its client sends it again.
 */
export function livenessTicksMax(s: Scenario): number {
  return (
    40 * s.electionTicks +
    4 * s.faults.delayTicksMax * s.replicaCount +
    s.requestTimeoutTicks +
    s.resendAfterTicks
  );
}

const CLUSTER_SIZES = [1, 3, 3, 3, 5, 5, 5, 7, 7, 9, 9] as const;

/** First seed of the membership profile (see scenarioFromSeed). */
export const MEMBERSHIP_SEEDS_FROM = 200_000;

function pick<T>(prng: SeededPrng, options: readonly T[]): T {
  return options[prng.nextInt(options.length)]!;
}

export function scenarioFromSeed(seed: number, bug?: PlantedBug, replicaCount?: number): Scenario {
  const prng = new SeededPrng(seed ^ 0x5eed);
  // Membership draws come from their own stream, so every earlier draw keeps its value.
  const membershipPrng = new SeededPrng(seed ^ 0x3e3b);
  // Seeds MEMBERSHIP_SEEDS_FROM.. are the membership profile: every run changes membership often
  // and has spare replicas to add (test/sim/membership.test.ts), and a seed still replays alone.
  const membershipProfile = seed >= MEMBERSHIP_SEEDS_FROM && seed < MEMBERSHIP_SEEDS_FROM + 100_000;
  const drawnRate = pick(membershipPrng, [0, 0.005, 0.02, 0.05]);
  const membershipRate = membershipProfile ? 0.05 : drawnRate;
  const drawnSpares = membershipRate === 0 ? 0 : pick(membershipPrng, [0, 1, 2]);
  const spareReplicas = membershipProfile ? 2 : drawnSpares;
  // A short lag puts change boundaries among the slots in flight (and, at 1, stops pipelining).
  const membershipLag = membershipRate === 0 ? 64 : pick(membershipPrng, [1, 2, 4, 8, 64]);
  const drawn = pick(prng, CLUSTER_SIZES); // always drawn, so an override changes nothing else
  const n = replicaCount ?? drawn;
  const electionTicks = 10;
  const delayTicksMax = pick(prng, [1, 2, 3, 5]);
  return {
    seed,
    replicaCount: n,
    faultTicks: 300 + prng.nextInt(400),
    faults: {
      dropRate: pick(prng, [0, 0.02, 0.1, 0.25]),
      duplicateRate: pick(prng, [0, 0.02, 0.1]),
      delayTicksMin: 1,
      delayTicksMax,
      lateRate: pick(prng, [0, 0, 0.01, 0.05]),
      lateTicksMax: 4 * electionTicks,
    },
    crashRate: pick(prng, [0, 0.005, 0.02]),
    partitionRate: pick(prng, [0, 0.005, 0.02]),
    tornPersistRate: pick(prng, [0, 0.002]),
    crashPointRate: pick(prng, [0, 0.02, 0.1]),
    durability: pick(prng, ["fsync", "fsync", "fsync", "memory"] as const),
    wipeRate: pick(prng, [0, 0, 0.002, 0.005]),
    duelRate: pick(prng, [0, 0.01, 0.03]),
    raceDelayRate: pick(prng, [0, 0.05, 0.2]),
    clients: 1 + prng.nextInt(6),
    electionTicks,
    windowSlots: pick(prng, [1, 4, 32]),
    catchupEntriesMax: pick(prng, [1, 4, 64]),
    compactEverySlots: pick(prng, [0, 8, 64]),
    // Drawn last, so the draws above are those of earlier versions.
    requestTimeoutTicks: pick(prng, [3, 6, 10, 20]) * electionTicks,
    resendAfterTicks: pick(prng, [1, 2, 4]) * electionTicks,
    pendingRequestsMax: pick(prng, [2, 8, 1000]),
    proposalQueueMax: pick(prng, [1, 4, 64 * 1024]),
    readRate: pick(prng, [0, 0.05, 0.2]),
    pauseRate: pick(prng, [0, 0.005, 0.02]),
    // Drawn last too: the runs of seeds without transfers stay as they were.
    transferRate: pick(prng, [0, 0.005, 0.02, 0.05]),
    // Drawn after all the others: a tail below each snapshot (none: every laggard gets it).
    compactionTailSlots: pick(prng, [0, 4, 32]),
    membershipRate,
    spareReplicas,
    membershipLag,
    adaptiveBatching: seed % 2 === 0,
    bug,
  };
}

export function describeScenario(s: Scenario): string {
  const f = s.faults;
  return (
    `seed=${s.seed} N=${s.replicaCount} ticks=${s.faultTicks} drop=${f.dropRate} dup=${f.duplicateRate} ` +
    `delay=${f.delayTicksMin}-${f.delayTicksMax} late=${f.lateRate} crash=${s.crashRate} partition=${s.partitionRate} ` +
    `torn=${s.tornPersistRate} crashpoint=${s.crashPointRate} durability=${s.durability} wipe=${s.wipeRate} ` +
    `duel=${s.duelRate} racedelay=${s.raceDelayRate} clients=${s.clients} window=${s.windowSlots} catchup=${s.catchupEntriesMax} ` +
    `compact=${s.compactEverySlots} tail=${s.compactionTailSlots} timeout=${s.requestTimeoutTicks} resend=${s.resendAfterTicks} ` +
    `pending=${s.pendingRequestsMax} queue=${s.proposalQueueMax} reads=${s.readRate} pause=${s.pauseRate} transfer=${s.transferRate} membership=${s.membershipRate} spares=${s.spareReplicas} lag=${s.membershipLag} batching=${s.adaptiveBatching ? "adaptive" : "eager"}${s.bug ? ` bug=${s.bug}` : ""}`
  );
}
