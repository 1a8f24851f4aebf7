import type { AcceptedEntry, DurableState, PersistBatch, Slot, Snapshot } from "../core/index.ts";

/**
 * A replica's disk in the simulator: survives crashes. It holds only what the core handed out in
 * PersistBatches the driver completed, applied atomically and in order, as a WAL would.
 */
export class SimStorage {
  promised = 0;
  readonly accepted = new Map<Slot, AcceptedEntry>();
  snapshot: Snapshot | null = null;
  chosenSlot: Slot = 0;
  /** Slots whose vote was written since the checker last looked (it re-checks durability there). */
  readonly dirtySlots = new Set<Slot>();
  /** Planted bug for the checker test: a disk that silently drops votes. */
  forgetVotes = false;

  /** Batches the runtime appended without waiting for them: written with the next write(). */
  private unwritten: PersistBatch[] = [];

  writeLater(batch: PersistBatch): void {
    this.unwritten.push(batch);
  }

  /** A crash: what was only appended is gone. */
  loseUnwritten(): void {
    this.unwritten = [];
  }

  write(batch: PersistBatch): void {
    for (const earlier of this.unwritten) this.apply(earlier);
    this.unwritten = [];
    this.apply(batch);
  }

  private apply(batch: PersistBatch): void {
    if (batch.promised !== null) this.promised = batch.promised;
    if (batch.snapshot !== null) {
      this.snapshot = batch.snapshot;
      for (const slot of this.accepted.keys())
        if (slot <= batch.snapshot.slot) this.accepted.delete(slot);
      if (this.chosenSlot < batch.snapshot.slot) this.chosenSlot = batch.snapshot.slot;
    }
    for (const vote of batch.accepted) {
      if (this.forgetVotes) break;
      if (this.snapshot === null || vote.slot > this.snapshot.slot) {
        this.accepted.set(vote.slot, vote);
        this.dirtySlots.add(vote.slot);
      }
    }
    if (batch.chosenSlot !== null && batch.chosenSlot > this.chosenSlot)
      this.chosenSlot = batch.chosenSlot;
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
