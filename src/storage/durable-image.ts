import type { AcceptedEntry, DurableState, PersistBatch, Slot, Snapshot } from "../core/index.ts";

/**
 * What a replica's disk holds after a sequence of PersistBatches, applied in order. The reference
 * semantics every Storage reproduces (the same rules as the simulator's SimStorage): the last
 * promise wins; a snapshot drops every vote at or below its slot and raises chosenSlot to it;
 * votes at or below the snapshot are ignored; the latest vote per slot wins; chosenSlot only rises.
 */
export class DurableImage {
  private promised = 0;
  /** Invariant: every key > snapshot.slot (when there is a snapshot). */
  private readonly accepted = new Map<Slot, AcceptedEntry>();
  private snapshot: Snapshot | null = null;
  /** Invariant: chosenSlot >= snapshot.slot. */
  private chosenSlot: Slot = 0;

  apply(batch: PersistBatch): void {
    if (batch.promised !== null) this.promised = batch.promised;
    if (batch.snapshot !== null) {
      const snapshotSlot = batch.snapshot.slot;
      this.snapshot = batch.snapshot;
      for (const slot of this.accepted.keys()) if (slot <= snapshotSlot) this.accepted.delete(slot);
      if (this.chosenSlot < snapshotSlot) this.chosenSlot = snapshotSlot;
    }
    for (const vote of batch.accepted) {
      if (this.snapshot === null || vote.slot > this.snapshot.slot)
        this.accepted.set(vote.slot, vote);
    }
    if (batch.chosenSlot !== null && batch.chosenSlot > this.chosenSlot) {
      this.chosenSlot = batch.chosenSlot;
    }
  }

  read(): DurableState {
    const accepted = [...this.accepted.values()].sort((a, b) => a.slot - b.slot);
    return {
      promised: this.promised,
      accepted,
      snapshot: this.snapshot,
      chosenSlot: this.chosenSlot,
    };
  }
}
