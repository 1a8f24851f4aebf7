import type { Ballot } from "./ballot.ts";
import { assert } from "./errors.ts";
import type { Batch, Slot } from "./types.ts";

/** One slot as this replica knows it. */
export interface LogEntry {
  /** Ballot of the vote this replica holds for the slot (for a chosen entry learned by catch-up,
   * the ballot of the leader that told us, which is at least the ballot it was chosen in). */
  ballot: Ballot;
  batch: Batch;
  /** Known chosen. Invariant: a chosen entry's batch never changes. */
  chosen: boolean;
}

/**
 * Slot-indexed log above a compacted prefix. Slots `1..compactedSlot` live in a snapshot and are
 * gone from here; the array holds `compactedSlot+1 ..`, with holes as `undefined`.
 */
export class SlotLog {
  /** Highest slot folded into a snapshot. Invariant: every slot <= compactedSlot is chosen. */
  compactedSlot: Slot = 0;
  private entries: (LogEntry | undefined)[] = [];

  /** Highest slot with an entry, or compactedSlot when empty above it. */
  get lastSlot(): Slot {
    return this.compactedSlot + this.entries.length;
  }

  get(slot: Slot): LogEntry | undefined {
    return this.entries[slot - this.compactedSlot - 1];
  }

  set(slot: Slot, entry: LogEntry): void {
    assert(slot > this.compactedSlot, "write into compacted prefix");
    const index = slot - this.compactedSlot - 1;
    while (this.entries.length < index) this.entries.push(undefined);
    this.entries[index] = entry;
  }

  /** Forget every slot <= `slot` (it is now in a snapshot). */
  compact(slot: Slot): void {
    if (slot <= this.compactedSlot) return;
    const drop = Math.min(slot - this.compactedSlot, this.entries.length);
    this.entries.splice(0, drop);
    this.compactedSlot = slot;
  }
}
