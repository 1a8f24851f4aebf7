import { assert, type Batch, type Slot, type Snapshot } from "../core/index.ts";

/** FNV-1a, folded over bytes: cheap, deterministic, good enough to tell histories apart. */
export function fnv1a(hash: number, bytes: Uint8Array): number {
  let h = hash;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

const SLOT_BYTES = new Uint8Array(8);
const SLOT_VIEW = new DataView(SLOT_BYTES.buffer);

/** History hash after applying `batch` in `slot` on top of `previous`. */
export function chainHash(previous: number, slot: Slot, batch: Batch): number {
  SLOT_VIEW.setFloat64(0, slot, true);
  let h = fnv1a(previous, SLOT_BYTES);
  for (const command of batch.commands) h = fnv1a(h, command);
  return h;
}

export const EMPTY_HASH = 2166136261;

/**
 * The simulated application: it remembers only a hash of everything applied, so two replicas
 * agree on their whole history exactly when their hashes at the same slot agree.
 */
export class SimStateMachine {
  appliedSlot: Slot = 0;
  hash = EMPTY_HASH;

  apply(slot: Slot, batch: Batch): void {
    assert(
      slot === this.appliedSlot + 1,
      `state machine applied slot ${slot} after ${this.appliedSlot}`,
    );
    this.hash = chainHash(this.hash, slot, batch);
    this.appliedSlot = slot;
  }

  takeSnapshot(): Snapshot {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, this.hash, true);
    return { slot: this.appliedSlot, data };
  }

  install(snapshot: Snapshot): void {
    this.appliedSlot = snapshot.slot;
    this.hash = new DataView(snapshot.data.buffer, snapshot.data.byteOffset).getUint32(0, true);
  }
}
