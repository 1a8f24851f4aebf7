/**
 * The nemesis: on a schedule drawn from a seeded PRNG, it injects a fault (now and then two at
 * once), holds it, and repairs it. Network faults (nftables, by address): a symmetric partition into a minority
 * and a majority, a one-way partition, the leader isolated, random packet loss. Process faults:
 * kill -9 of one replica, of the leader, of a majority, of all (fsync only: with
 * --durability memory losing a majority at once loses data by design, so there two faults held
 * together never both take replicas down, and none does while a replica is still recovering),
 * SIGSTOP of one replica or
 * of the leader (SIGCONT later), and a restart (kill -9, start again at once).
 *
 * Same seed, same sequence of fault kinds, targets and timings; which replica leads at the time
 * depends on the run, so "the leader" is looked up (GET /status) when the fault is injected.
 */
import { SeededPrng } from "../core/prng.ts";
import type { ChaosCluster } from "./chaos-cluster.ts";
import type { History } from "./history.ts";
import type { NetFaults } from "./net-faults.ts";

export const FAULT_KINDS = [
  "partition-halves",
  "partition-one-way",
  "isolate-leader",
  "loss",
  "kill-one",
  "kill-leader",
  "kill-majority",
  "kill-all",
  "pause-one",
  "pause-leader",
  "restart-one",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const NETWORK_FAULTS: ReadonlySet<FaultKind> = new Set([
  "partition-halves",
  "partition-one-way",
  "isolate-leader",
  "loss",
]);
/** Relative frequency of each fault: the drastic ones rarer. */
const WEIGHTS: Readonly<Record<FaultKind, number>> = {
  "partition-halves": 3,
  "partition-one-way": 2,
  "isolate-leader": 3,
  loss: 2,
  "kill-one": 2,
  "kill-leader": 3,
  "kill-majority": 1,
  "kill-all": 1,
  "pause-one": 2,
  "pause-leader": 2,
  "restart-one": 2,
};

/** Faults after which a replica restarts with nothing (in memory mode). */
const LOSES_MEMORY: ReadonlySet<FaultKind> = new Set([
  "kill-one",
  "kill-leader",
  "kill-majority",
  "kill-all",
  "restart-one",
]);

/** How often a second fault is injected while the first is held (percent). */
const COMBINE_PERCENT = 30;

/** Faults that lose data when replicas keep nothing on disk. */
const NEEDS_DISK: ReadonlySet<FaultKind> = new Set(["kill-majority", "kill-all"]);

export interface NemesisOptions {
  readonly seed: number;
  readonly durability: "fsync" | "memory";
  /** Quiet time between two faults, [min, max] ms. */
  readonly quietMs: readonly [number, number];
  /** How long a fault is held, [min, max] ms. */
  readonly holdMs: readonly [number, number];
  /** Packet loss percent, [min, max]. */
  readonly lossPercent: readonly [number, number];
}

/** Undoes one fault. */
type Repair = () => Promise<void> | void;

export class Nemesis {
  readonly counts = new Map<FaultKind, number>();
  /** What is injected right now, for the progress line. */
  current = "none";
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly prng: SeededPrng;
  /** The faults this run may inject, each repeated by its weight. */
  private readonly kinds: readonly FaultKind[];
  private readonly cluster: ChaosCluster;
  private readonly net: NetFaults | null;
  private readonly history: History;
  private readonly options: NemesisOptions;

  constructor(
    cluster: ChaosCluster,
    net: NetFaults | null,
    history: History,
    options: NemesisOptions,
  ) {
    this.cluster = cluster;
    this.net = net;
    this.history = history;
    this.options = options;
    this.prng = new SeededPrng(options.seed);
    this.kinds = FAULT_KINDS.filter(
      (kind) =>
        (net !== null || !NETWORK_FAULTS.has(kind)) &&
        (options.durability === "fsync" || !NEEDS_DISK.has(kind)),
    ).flatMap((kind) => Array<FaultKind>(WEIGHTS[kind]).fill(kind));
  }

  get total(): number {
    let sum = 0;
    for (const count of this.counts.values()) sum += count;
    return sum;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stop injecting; the fault held now stays until `heal`. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Repair everything: the network whole, every replica running. */
  heal(): void {
    this.net?.heal();
    this.cluster.healProcesses();
    this.current = "none";
    this.history.note("heal: network whole, every replica running");
  }

  private async run(): Promise<void> {
    while (this.running) {
      await this.pause(this.between(this.options.quietMs));
      if (!this.running) return;
      let first = this.kinds[this.prng.nextInt(this.kinds.length)]!;
      if (LOSES_MEMORY.has(first) && !(await this.mayLoseMemory())) {
        const kept = this.kinds.filter((k) => !LOSES_MEMORY.has(k));
        first = kept[this.prng.nextInt(kept.length)]!;
      }
      const holdMs = this.between(this.options.holdMs);
      const kinds = [first];
      if (this.prng.nextInt(100) < COMBINE_PERCENT) {
        const safe = LOSES_MEMORY.has(first) || (await this.mayLoseMemory());
        const seconds = this.kinds.filter(
          (k) => this.combinable(first, k) && (safe || !LOSES_MEMORY.has(k)),
        );
        if (seconds.length > 0) kinds.push(seconds[this.prng.nextInt(seconds.length)]!);
      }
      const repairs: Repair[] = [];
      const texts: string[] = [];
      for (const kind of kinds) {
        repairs.push(await this.inject(kind));
        texts.push(this.current);
        this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
      }
      this.current = texts.join(" + ");
      await this.pause(holdMs);
      if (!this.running) return; // heal() repairs it
      for (const repair of repairs.reverse()) await repair();
      this.current = "none";
    }
  }

  /**
   * With --durability memory, whether a replica may lose its memory now: only when every replica
   * is running and none is still recovering (two replicas without state at once are a majority
   * of three without it: by design the cluster then waits forever rather than risk a vote).
   */
  private async mayLoseMemory(): Promise<boolean> {
    if (this.options.durability === "fsync") return true;
    const statuses = await Promise.all(this.cluster.ids.map((id) => this.cluster.status(id)));
    return statuses.every((s) => s !== null && s.role !== "recovering");
  }

  /**
   * Whether `second` may be held together with `first`: not the same fault twice, and with
   * --durability memory never two that take replicas down (a majority without its memory loses
   * data by design).
   */
  private combinable(first: FaultKind, second: FaultKind): boolean {
    if (first === second) return false;
    if (this.options.durability === "fsync") return true;
    return !(LOSES_MEMORY.has(first) && LOSES_MEMORY.has(second));
  }

  private between([min, max]: readonly [number, number]): number {
    return min + this.prng.nextInt(max - min + 1);
  }

  /** Sleep, or less when stopped. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** A replica id drawn from the PRNG among `ids`. */
  private pick(ids: readonly number[]): number {
    return ids[this.prng.nextInt(ids.length)]!;
  }

  /** `count` distinct ids drawn from `ids`. */
  private pickMany(ids: readonly number[], count: number): number[] {
    const pool = [...ids];
    const chosen: number[] = [];
    while (chosen.length < count && pool.length > 0)
      chosen.push(pool.splice(this.prng.nextInt(pool.length), 1)[0]!);
    return chosen;
  }

  private async leaderOrAny(): Promise<number> {
    const pick = this.pick(this.cluster.ids); // drawn even when unused: the schedule stays seeded
    return (await this.cluster.leader()) ?? pick;
  }

  private note(text: string): void {
    this.current = text;
    this.history.note(text);
  }

  private async inject(kind: FaultKind): Promise<Repair> {
    const ids = this.cluster.ids;
    const host = (id: number) => this.cluster.host(id);
    const healNet: Repair = () => {
      this.net!.heal();
      this.history.note(`repair ${kind}: network whole`);
    };
    switch (kind) {
      case "partition-halves": {
        const minority = this.pickMany(ids, this.cluster.majority - 1 || 1);
        const rest = ids.filter((id) => !minority.includes(id));
        this.net!.partition(minority.map(host), rest.map(host));
        this.note(`partition {${minority}} | {${rest}}`);
        return healNet;
      }
      case "partition-one-way": {
        const from = this.pickMany(ids, 1 + this.prng.nextInt(this.cluster.majority - 1 || 1));
        const to = ids.filter((id) => !from.includes(id));
        this.net!.drop(from.map(host), to.map(host));
        this.note(`one-way partition: {${from}} -/-> {${to}}`);
        return healNet;
      }
      case "isolate-leader": {
        const leader = await this.leaderOrAny();
        const rest = ids.filter((id) => id !== leader);
        this.net!.partition([host(leader)], rest.map(host));
        this.note(`isolate leader ${leader}`);
        return healNet;
      }
      case "loss": {
        const percent = this.between(this.options.lossPercent);
        this.net!.loss(percent);
        this.note(`loss ${percent}% of peer packets`);
        return healNet;
      }
      case "kill-one":
        return this.kill(kind, [this.pick(ids)]);
      case "kill-leader":
        return this.kill(kind, [await this.leaderOrAny()]);
      case "kill-majority":
        return this.kill(kind, this.pickMany(ids, this.cluster.majority));
      case "kill-all":
        return this.kill(kind, ids);
      case "pause-one":
        return this.stopProcess(kind, this.pick(ids));
      case "pause-leader":
        return this.stopProcess(kind, await this.leaderOrAny());
      case "restart-one": {
        const id = this.pick(ids);
        await this.cluster.kill(id);
        this.cluster.start(id);
        this.note(`restart ${id} (kill -9, start)`);
        return () => {};
      }
    }
  }

  private async kill(kind: FaultKind, victims: readonly number[]): Promise<Repair> {
    await Promise.all(victims.map((id) => this.cluster.kill(id)));
    this.note(`${kind}: kill -9 {${victims}}`);
    return () => {
      for (const id of victims) if (this.cluster.state(id) === "dead") this.cluster.start(id);
      this.history.note(`repair ${kind}: start {${victims}}`);
    };
  }

  private stopProcess(kind: FaultKind, id: number): Repair {
    this.cluster.pause(id);
    this.note(`${kind}: SIGSTOP ${id}`);
    return () => {
      this.cluster.resume(id);
      this.history.note(`repair ${kind}: SIGCONT ${id}`);
    };
  }
}
