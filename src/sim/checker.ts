import {
  type Batch,
  type ChosenEntry,
  formatBallot,
  type Member,
  type MembershipEntry,
  MembershipHistory,
  type Message,
  MessageType,
  type Slot,
} from "../core/index.ts";
import { type LogHeader, readLogHeader, requestKey } from "./log-command.ts";
import { chainHash, EMPTY_HASH, fnv1a } from "./sim-state-machine.ts";
import type { SimStorage } from "./sim-storage.ts";

export type ViolationKind =
  | "agreement"
  | "validity"
  | "integrity"
  | "prefix"
  | "durability"
  | "liveness"
  | "convergence"
  | "assertion"
  | "wire"
  | "membership"
  | "linearizability";

export class Violation extends Error {
  readonly kind: ViolationKind;
  readonly tick: number;
  constructor(kind: ViolationKind, tick: number, detail: string) {
    super(`${kind} violated at tick ${tick}: ${detail}`);
    this.kind = kind;
    this.tick = tick;
    this.name = "Violation";
  }
}

function sameBatch(a: Batch, b: Batch): boolean {
  if (a.stampMs !== b.stampMs || a.commands.length !== b.commands.length) return false;
  if (JSON.stringify(a.change) !== JSON.stringify(b.change)) return false;
  for (let i = 0; i < a.commands.length; i++) {
    const x = a.commands[i]!;
    const y = b.commands[i]!;
    if (x.byteLength !== y.byteLength) return false;
    for (let j = 0; j < x.byteLength; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/**
 * The safety and liveness oracle. It sees every chosen entry every replica hands out, every
 * application, every proposal and every acknowledgement, and every replica's disk.
 */
export class Checker {
  now = 0;
  /** The first batch any replica reported chosen for each slot. */
  private readonly chosen = new Map<Slot, Batch>();
  /** hashes[s] = history hash after slot s; computed forward as the chosen prefix grows. */
  private readonly hashes: number[] = [EMPTY_HASH];
  /** Requests origins took from clients: request key -> hash of the log command's bytes. */
  private readonly submitted = new Map<string, number>();
  /** Requests that ran: request key -> the slot they ran in (the same on every replica). */
  private readonly executedAt = new Map<string, Slot>();
  /** Per slot, the request keys that ran there, as the first replica to apply it reported. */
  private readonly executedInSlot = new Map<Slot, string>();
  /** Requests answered "not executed" (-CLUSTERDOWN): they must never run, before or after. */
  private readonly notExecuted = new Set<string>();
  /** Acknowledged requests: request key -> slot it ran in. */
  readonly acked = new Map<string, Slot>();
  /** Slots holding an acknowledged command -> one such command (for messages). */
  private readonly ackedSlots = new Map<Slot, string>();
  /** Acknowledged since the last durability check. */
  private readonly newlyAcked = new Set<Slot>();
  /** Highest slot any replica has applied so far: a write there may have been acknowledged. */
  appliedMax: Slot = 0;
  /** Reads asked and not yet given an index: ctx -> who asked, and appliedMax when they did. */
  private readonly reads = new Map<number, { replica: number; floor: Slot; tick: number }>();

  /** The true membership history, built from the chosen log in slot order. */
  readonly membership: MembershipHistory;
  /** Highest slot whose change (if any) `membership` has applied. */
  private membershipSlot: Slot = 0;

  constructor(replicaCount: number, membershipLag = 64) {
    const bootstrap: Member[] = Array.from({ length: replicaCount }, (_, i) => ({
      id: i + 1,
      voter: true,
      address: "",
    }));
    this.membership = MembershipHistory.bootstrap(membershipLag, bootstrap);
  }

  /** Apply the changes of the chosen slots known contiguously. */
  private advanceMembership(): void {
    for (;;) {
      const batch = this.chosen.get(this.membershipSlot + 1);
      if (batch === undefined) return;
      this.membershipSlot++;
      if (batch.change !== undefined) this.membership.apply(this.membershipSlot, batch.change);
    }
  }

  /** The configuration the chosen log has made latest (it may not govern yet). */
  latestMembers(): readonly Member[] {
    return this.membership.latest()!.members;
  }

  /**
   * Every replica computes the configurations from the chosen log alone: the latest change it
   * applied at chosen slot `appliedSlot` must be the one the log holds there.
   */
  checkMembership(replica: number, appliedSlot: Slot, latest: MembershipEntry | null): void {
    if (latest === null) return; // a joining replica that has learned no configuration yet
    let expected: MembershipEntry | null = null;
    for (const entry of this.membership.all()) if (entry.slot <= appliedSlot) expected = entry;
    if (expected === null) return; // trimmed: nothing to compare
    if (JSON.stringify(expected) !== JSON.stringify(latest)) {
      this.fail(
        "membership",
        `replica ${replica} at slot ${appliedSlot} holds configuration ${JSON.stringify(latest)}, the log makes ${JSON.stringify(expected)}`,
      );
    }
  }

  get chosenSlots(): number {
    return this.chosen.size;
  }

  fail(kind: ViolationKind, detail: string): never {
    throw new Violation(kind, this.now, detail);
  }

  /** An origin took a client request; its log command's bytes are final (header filled). */
  onSubmitted(header: LogHeader, command: Uint8Array): void {
    const key = requestKey(header);
    if (this.submitted.has(key)) this.fail("validity", `request ${key} taken twice by its origin`);
    this.submitted.set(key, fnv1a(EMPTY_HASH, command));
  }

  /** Agreement and validity, checked the moment any replica learns a slot. */
  onChosen(replica: number, entry: ChosenEntry): void {
    const first = this.chosen.get(entry.slot);
    if (first !== undefined) {
      if (!sameBatch(first, entry.batch)) {
        this.fail("agreement", `replica ${replica} chose a different batch in slot ${entry.slot}`);
      }
      return;
    }
    this.chosen.set(entry.slot, entry.batch);
    this.advanceMembership();
    // A request may be chosen several times (its origin sent it again): the sessions skip copies.
    for (const command of entry.batch.commands) {
      const header = readLogHeader(command);
      if (header === null)
        this.fail("validity", `slot ${entry.slot} holds a command that is not a client request`);
      const key = requestKey(header);
      const hash = this.submitted.get(key);
      if (hash === undefined)
        this.fail("validity", `slot ${entry.slot} holds request ${key}, never submitted`);
      if (hash !== fnv1a(EMPTY_HASH, command))
        this.fail("validity", `slot ${entry.slot} holds request ${key} with other bytes`);
    }
  }

  /**
   * Integrity: `replica` applied `slot` and ran these requests there. Each request runs at most
   * once in the history (a copy chosen later must be skipped), every replica runs the same ones
   * in the same slot, and none answered "not executed" ever runs. True for the slot's first report.
   */
  onExecuted(replica: number, slot: Slot, keys: readonly string[]): boolean {
    const joined = keys.join(" ");
    const first = this.executedInSlot.get(slot);
    if (first !== undefined) {
      if (first !== joined)
        this.fail(
          "integrity",
          `replica ${replica} ran [${joined}] in slot ${slot}, another replica ran [${first}]`,
        );
      return false;
    }
    this.executedInSlot.set(slot, joined);
    for (const key of keys) {
      const earlier = this.executedAt.get(key);
      // First report of this slot: an earlier run is in another slot, or earlier in this one.
      if (earlier !== undefined)
        this.fail("integrity", `request ${key} ran in slot ${earlier} and again in slot ${slot}`);
      if (this.notExecuted.has(key))
        this.fail(
          "integrity",
          `request ${key} was answered "not executed" (CLUSTERDOWN) but ran in slot ${slot}`,
        );
      this.executedAt.set(key, slot);
    }
    return true;
  }

  /** The origin answered -CLUSTERDOWN "not executed": the request must never run. */
  onNotExecuted(key: string): void {
    const slot = this.executedAt.get(key);
    if (slot !== undefined)
      this.fail(
        "integrity",
        `request ${key} was answered "not executed" (CLUSTERDOWN) but ran in slot ${slot}`,
      );
    this.notExecuted.add(key);
  }

  /**
   * At the end of a run: every acknowledged request ran exactly once, in the slot it was
   * acknowledged from, and no request answered "not executed" ran.
   */
  checkExecutions(): void {
    for (const [key, slot] of this.acked) {
      const ran = this.executedAt.get(key);
      if (ran !== slot)
        this.fail("integrity", `acknowledged request ${key} (slot ${slot}) ran in slot ${ran}`);
    }
    for (const key of this.notExecuted) this.onNotExecuted(key);
  }

  /** Prefix consistency: a replica's history after `slot` equals the one chosen history. */
  onApplied(replica: number, slot: Slot, hash: number): void {
    const expected = this.hashAt(slot);
    if (expected !== hash)
      this.fail("prefix", `replica ${replica} history differs at slot ${slot}`);
    if (slot > this.appliedMax) this.appliedMax = slot;
  }

  /** `replica` asked its core for a read index (Replica.read) under `ctx`. */
  onReadAsked(replica: number, ctx: number): void {
    this.reads.set(ctx, { replica, floor: this.appliedMax, tick: this.now });
  }

  /**
   * A core handed out a read index. Linearizable reads: the read must see every write that could
   * have been acknowledged before it was asked, i.e. every slot any replica had applied then.
   */
  onReadIndex(replica: number, ctx: number, index: Slot): void {
    const read = this.reads.get(ctx);
    if (read === undefined || read.replica !== replica)
      this.fail("integrity", `replica ${replica} handed out read ${ctx}, which it never asked`);
    this.reads.delete(ctx);
    if (index < read.floor)
      this.fail(
        "linearizability",
        `replica ${replica}'s read ${ctx} (asked at tick ${read.tick}) got index ${index}, but slot ${read.floor} was already applied then: a stale read`,
      );
  }

  /** A replica crashed: its pending reads die with it. */
  dropReads(replica: number): void {
    for (const [ctx, read] of this.reads) if (read.replica === replica) this.reads.delete(ctx);
  }

  /** Reads still waiting for an index, with the tick each was asked. */
  pendingReads(): { ctx: number; replica: number; tick: number }[] {
    return [...this.reads].map(([ctx, r]) => ({ ctx, replica: r.replica, tick: r.tick }));
  }

  private hashAt(slot: Slot): number | undefined {
    while (this.hashes.length <= slot) {
      const next = this.hashes.length;
      const batch = this.chosen.get(next);
      if (batch === undefined) return undefined;
      this.hashes.push(chainHash(this.hashes[next - 1]!, next, batch));
    }
    return this.hashes[slot];
  }

  /**
   * The Ready contract, checked on the wire: a Promise, an Accepted or an answer to a recovering
   * replica reveals a promise (and a vote) that must already be on the sender's disk, or a crash
   * right after would let it promise or vote again below what it told a candidate or leader.
   */
  onSent(message: Message, disk: SimStorage): void {
    switch (message.type) {
      case MessageType.Promise:
      case MessageType.Accepted:
        if (disk.promised < message.ballot)
          this.fail(
            "durability",
            `replica ${message.from} sent a ${message.type === MessageType.Promise ? "Promise" : "Accepted"} for ballot ${formatBallot(message.ballot)} with ${formatBallot(disk.promised)} on its disk`,
          );
        if (message.type === MessageType.Accepted)
          this.checkVoteOnDisk(message.from, message.slot, disk);
        break;
      case MessageType.RecoverReply:
        if (!message.recovering && disk.promised < message.ballot)
          this.fail(
            "durability",
            `replica ${message.from} told a recovering replica of promise ${formatBallot(message.ballot)} with ${formatBallot(disk.promised)} on its disk`,
          );
        break;
    }
  }

  private checkVoteOnDisk(replica: number, slot: Slot, disk: SimStorage): void {
    if (disk.snapshot !== null && disk.snapshot.slot >= slot) return;
    if (!disk.accepted.has(slot))
      this.fail(
        "durability",
        `replica ${replica} sent Accepted for slot ${slot} with no vote on its disk`,
      );
  }

  onAcked(key: string, slot: Slot): void {
    if (!this.chosen.has(slot))
      this.fail("durability", `request ${key} acknowledged from unchosen slot ${slot}`);
    if (this.executedAt.get(key) !== slot)
      this.fail("integrity", `request ${key} acknowledged from slot ${slot}, where it did not run`);
    if (this.acked.has(key)) this.fail("integrity", `request ${key} acknowledged twice`);
    this.acked.set(key, slot);
    this.ackedSlots.set(slot, key);
    this.newlyAcked.add(slot);
  }

  /**
   * Durability: every acknowledged command survives any crash, so it must sit on the disks of a
   * majority (as a vote for its chosen batch, or inside a snapshot covering its slot). Checked after
   * every step for the slots that were acknowledged or written since the last check (only a write
   * can take a vote away), and for all of them when `everything` is set.
   */
  checkDurability(disks: readonly SimStorage[], everything = false): void {
    const slots = new Set<Slot>(this.newlyAcked);
    this.newlyAcked.clear();
    for (const disk of disks) {
      for (const slot of disk.dirtySlots) if (this.ackedSlots.has(slot)) slots.add(slot);
      disk.dirtySlots.clear();
    }
    for (const slot of everything ? this.ackedSlots.keys() : slots)
      this.checkSlotDurable(disks, slot);
  }

  /**
   * A replica that lost its state (a wiped disk, memory durability) is excused until it recovers:
   * it may hold nothing meanwhile, so the rest must hold the slot on a majority less the excused.
   * Once it votes again (recovered, or a planted bug that skips recovery) it counts in full.
   */
  private checkSlotDurable(disks: readonly SimStorage[], slot: Slot): void {
    // The voters of the configuration that governed the slot chose it: a majority of their disks.
    const voters = new Set(
      (this.membership.at(slot)?.members ?? []).filter((m) => m.voter).map((m) => m.id),
    );
    const counted = disks.filter((_, i) => voters.has(i + 1));
    const excused = counted.filter((d) => d.amnesiac).length;
    const majority = Math.floor(counted.length / 2) + 1 - excused;
    const batch = this.chosen.get(slot)!;
    let holders = 0;
    for (const disk of counted) {
      if (disk.snapshot !== null && disk.snapshot.slot >= slot) holders++;
      else {
        const vote = disk.accepted.get(slot);
        if (vote !== undefined && sameBatch(vote.batch, batch)) holders++;
      }
    }
    if (holders < majority) {
      const key = this.ackedSlots.get(slot);
      this.fail(
        "durability",
        `acknowledged request ${key} (slot ${slot}) is on ${holders} disks, need ${majority}`,
      );
    }
  }
}
