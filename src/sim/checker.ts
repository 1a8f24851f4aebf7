import {
  type Batch,
  type ChosenEntry,
  formatBallot,
  type Message,
  MessageType,
  type Slot,
} from "../core/index.ts";
import { chainHash, EMPTY_HASH } from "./sim-state-machine.ts";
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
  | "wire";

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

/** Commands are tagged with (client, sequence) in their first 8 bytes. */
export function commandKey(command: Uint8Array): string {
  if (command.byteLength < 8) return `raw:${command.byteLength}`;
  const view = new DataView(command.buffer, command.byteOffset, 8);
  return `${view.getUint32(0, true)}:${view.getUint32(4, true)}`;
}

function sameBatch(a: Batch, b: Batch): boolean {
  if (a.stampMs !== b.stampMs || a.commands.length !== b.commands.length) return false;
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
  private readonly replicaCount: number;
  /** The first batch any replica reported chosen for each slot. */
  private readonly chosen = new Map<Slot, Batch>();
  /** hashes[s] = history hash after slot s; computed forward as the chosen prefix grows. */
  private readonly hashes: number[] = [EMPTY_HASH];
  private readonly proposals = new Map<string, number>();
  private readonly appearances = new Map<string, number>();
  /** Acknowledged commands: key -> slot it was chosen in. */
  readonly acked = new Map<string, Slot>();
  /** Slots holding an acknowledged command -> one such command (for messages). */
  private readonly ackedSlots = new Map<Slot, string>();
  /** Acknowledged since the last durability check. */
  private readonly newlyAcked = new Set<Slot>();

  constructor(replicaCount: number) {
    this.replicaCount = replicaCount;
  }

  get chosenSlots(): number {
    return this.chosen.size;
  }

  fail(kind: ViolationKind, detail: string): never {
    throw new Violation(kind, this.now, detail);
  }

  onProposed(key: string): void {
    this.proposals.set(key, (this.proposals.get(key) ?? 0) + 1);
  }

  /** Agreement, validity and integrity, checked the moment any replica learns a slot. */
  onChosen(replica: number, entry: ChosenEntry): void {
    const first = this.chosen.get(entry.slot);
    if (first !== undefined) {
      if (!sameBatch(first, entry.batch)) {
        this.fail("agreement", `replica ${replica} chose a different batch in slot ${entry.slot}`);
      }
      return;
    }
    this.chosen.set(entry.slot, entry.batch);
    for (const command of entry.batch.commands) {
      const key = commandKey(command);
      const proposed = this.proposals.get(key) ?? 0;
      if (proposed === 0)
        this.fail("validity", `slot ${entry.slot} holds command ${key}, never proposed`);
      const seen = (this.appearances.get(key) ?? 0) + 1;
      if (seen > proposed) {
        this.fail(
          "integrity",
          `command ${key} chosen ${seen} times but proposed ${proposed} times`,
        );
      }
      this.appearances.set(key, seen);
    }
  }

  /** Prefix consistency: a replica's history after `slot` equals the one chosen history. */
  onApplied(replica: number, slot: Slot, hash: number): void {
    const expected = this.hashAt(slot);
    if (expected !== hash)
      this.fail("prefix", `replica ${replica} history differs at slot ${slot}`);
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
      this.fail("durability", `command ${key} acknowledged from unchosen slot ${slot}`);
    if (this.acked.has(key)) return;
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
    const excused = disks.filter((d) => d.amnesiac).length;
    const majority = Math.floor(this.replicaCount / 2) + 1 - excused;
    const batch = this.chosen.get(slot)!;
    let holders = 0;
    for (const disk of disks) {
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
        `acknowledged command ${key} (slot ${slot}) is on ${holders} disks, need ${majority}`,
      );
    }
  }
}
