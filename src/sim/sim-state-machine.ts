import { assert, type Batch, type Slot, type Snapshot } from "../core/index.ts";
import { ClientSessions } from "../workers/consensus/client-sessions.ts";
import { type LogHeader, readLogHeader } from "./log-command.ts";

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

/** Snapshot layout: u32 history hash | u32 state hash | client sessions (ClientSessions.encode). */
const SNAPSHOT_SESSIONS = 8;

/** Called for each log command the state machine runs (not for the copies it skips). */
export type OnExecuted = (header: LogHeader, command: Uint8Array) => void;

/**
 * The simulated application. Like src/workers/consensus/state-machine.ts applyBatch it runs each client
 * request through the runtime's own ClientSessions, so a request chosen several times (its origin
 * sent it again) runs once; what runs is reported to the checker. It keeps two hashes: `hash` over
 * every chosen batch (the history, for the prefix check) and `stateHash` over what ran (two
 * replicas whose sessions disagree differ there). Sessions and both hashes travel in snapshots.
 */
export class SimStateMachine {
  appliedSlot: Slot = 0;
  hash = EMPTY_HASH;
  stateHash = EMPTY_HASH;
  private sessions = new ClientSessions();
  /** The log clock: the highest batch stamp applied (StateMachine.nowMs). */
  private nowMs = 0;
  /** Planted bug "no-sessions": every copy of a request runs. */
  private readonly noSessions: boolean;
  /** Copies skipped as already run or settled (StateMachine.duplicates). */
  duplicates = 0;
  /** Commands that are not client log commands (never expected). */
  malformed = 0;

  constructor(noSessions = false) {
    this.noSessions = noSessions;
  }

  apply(slot: Slot, batch: Batch, onExecuted?: OnExecuted): void {
    assert(
      slot === this.appliedSlot + 1,
      `state machine applied slot ${slot} after ${this.appliedSlot}`,
    );
    this.hash = chainHash(this.hash, slot, batch);
    this.appliedSlot = slot;
    this.nowMs = this.sessions.advanceClock(batch.stampMs);
    for (const command of batch.commands) {
      const header = readLogHeader(command);
      if (header === null) {
        this.malformed++;
        continue;
      }
      if (!this.admit(header)) {
        this.duplicates++;
        continue;
      }
      this.stateHash = fnv1a(this.stateHash, command);
      onExecuted?.(header, command);
    }
    this.sessions.expire(this.nowMs);
  }

  private admit(header: LogHeader): boolean {
    if (this.noSessions) return true;
    return this.sessions.admit(
      header.origin,
      header.incarnation,
      header.requestId,
      header.floor,
      this.nowMs,
      header.takenMs,
    );
  }

  takeSnapshot(): Snapshot {
    const sessions = this.sessions.encode();
    const data = new Uint8Array(SNAPSHOT_SESSIONS + sessions.byteLength);
    const view = new DataView(data.buffer);
    view.setUint32(0, this.hash, true);
    view.setUint32(4, this.stateHash, true);
    data.set(sessions, SNAPSHOT_SESSIONS);
    return { slot: this.appliedSlot, data };
  }

  install(snapshot: Snapshot): void {
    const data = snapshot.data;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.appliedSlot = snapshot.slot;
    this.hash = view.getUint32(0, true);
    this.stateHash = view.getUint32(4, true);
    this.sessions = ClientSessions.decode(data.subarray(SNAPSHOT_SESSIONS));
    this.nowMs = this.sessions.clockMs;
  }
}
