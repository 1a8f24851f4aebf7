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
  /** Planted bug: a disk that drops promises (a replica that forgets its promise on restart). */
  forgetPromises = false;
  /**
   * The replica's state was lost (a wiped disk, or memory durability after a crash) and it has not
   * recovered yet: the checker does not expect it to hold anything meanwhile.
   */
  amnesiac = false;
  /**
   * The runtime's durable "recovering" marker (src/storage/recovery-marker.ts): set before a
   * recovery persists anything, cleared once the batch that completes it is durable.
   */
  recoveryMarker = false;

  /** Nothing was ever persisted (what the runtime's hasNoDurableState sees). */
  get empty(): boolean {
    return (
      this.promised === 0 &&
      this.accepted.size === 0 &&
      this.snapshot === null &&
      this.chosenSlot === 0
    );
  }

  /** Appended, not yet flushed: lost in a crash (the WAL's buffered tail). */
  private unwritten: PersistBatch[] = [];

  /** Queue a batch, as Storage.append does. */
  append(batch: PersistBatch): void {
    this.unwritten.push(batch);
  }

  /** Everything appended is durable now, in order (one group commit). */
  flush(): void {
    const batches = this.unwritten;
    this.unwritten = [];
    for (const batch of batches) this.apply(batch);
  }

  /** A crash: what was only appended is gone. */
  loseUnwritten(): void {
    this.unwritten = [];
  }

  /** The disk is replaced (or the state was only in memory): nothing survives. */
  wipe(): void {
    this.unwritten = [];
    this.promised = 0;
    this.accepted.clear();
    this.snapshot = null;
    this.chosenSlot = 0;
    this.recoveryMarker = false;
    this.amnesiac = true;
  }

  /** append + flush, for hand-driven tests. */
  write(batch: PersistBatch): void {
    this.append(batch);
    this.flush();
  }

  private apply(batch: PersistBatch): void {
    if (batch.promised !== null && !this.forgetPromises) this.promised = batch.promised;
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
