import type { Ballot } from "./ballot.ts";
import type { AcceptedEntry, ChosenEntry, Message, Slot, Snapshot } from "./types.ts";

/** Acceptor state that must be on stable storage before `Ready.messages` are sent. */
export interface PersistBatch {
  /** New promised ballot, or null when unchanged. */
  readonly promised: Ballot | null;
  /** Votes cast (or chosen values learned) since the last batch, in the order made. */
  readonly accepted: readonly AcceptedEntry[];
  /** A snapshot that replaces every slot up to its slot (installed or compacted), or null. */
  readonly snapshot: Snapshot | null;
  /** Highest contiguous chosen slot, a recovery hint; null when unchanged. Written after `accepted`. */
  readonly chosenSlot: Slot | null;
  /**
   * This batch completes a recovery (Replica's recovery section): once it is durable, the
   * replica's state dominates what it forgot, and the runtime may drop its durable "recovering"
   * marker. Until then a restart must recover again, whatever it finds on disk.
   */
  readonly recovered?: boolean;
  /**
   * The replica entered recovery after its start (it joined knowing no configuration, and the
   * one it learned names it a voter: a replica of that id ran before and its votes are lost).
   * The runtime makes its durable "recovering" marker durable BEFORE this batch, so that a crash
   * from here on restarts it recovering, whatever it finds on disk.
   */
  readonly recovering?: boolean;
}

// A replica that joins with no state (CoreOptions.members null) is, for the runtime, recovering
// until a batch says `recovered`: the runtime sets its durable marker before it starts such a
// replica, so that a crash while it joins restarts it recovering (Replica.finishJoining).

/**
 * Everything the core wants done, as data (etcd-raft's Ready). The caller, in this order:
 * 1. sends `messagesNow` (they do not depend on `persist`);
 * 2. makes `persist` durable;
 * 3. sends `messages`;
 * 4. installs `snapshot` into the state machine, then applies `chosen` in slot order;
 * 5. calls `advance()`.
 */
export interface Ready {
  readonly persist: PersistBatch | null;
  /** Leader traffic that needs no new durable state: may go out before or during the persist. */
  readonly messagesNow: readonly Message[];
  /** Replies that reveal promises or votes: send only AFTER `persist` is durable. */
  readonly messages: readonly Message[];
  /** Replace the state machine with this image before applying `chosen`. */
  readonly snapshot: Snapshot | null;
  /** Newly chosen entries, contiguous, in slot order. Apply each exactly once. */
  readonly chosen: readonly ChosenEntry[];
  /**
   * Reads asked with Replica.read() that now have an index: serve each from the state machine
   * once it has applied `index` (at once when it already has), not before.
   */
  readonly reads: readonly ReadState[];
}

/** A read asked with Replica.read(ctx) may be served from the state as of slot `index`. */
export interface ReadState {
  readonly ctx: number;
  readonly index: Slot;
}

/** What a caller gives the core after a crash: exactly what it made durable from PersistBatches. */
export interface DurableState {
  readonly promised: Ballot;
  /** Latest vote per slot above `snapshot`'s slot. */
  readonly accepted: readonly AcceptedEntry[];
  readonly snapshot: Snapshot | null;
  readonly chosenSlot: Slot;
}
