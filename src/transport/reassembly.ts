import { assert } from "../core/errors.ts";
import { chunkBytes, type FragmentHeader } from "./frame.ts";
import type { DropReason } from "./transport.ts";

/**
 * Partial messages a peer may have in flight at once. A new one beyond this evicts the oldest
 * (counted "reassembly"). With messageBytesMax = 16 MiB this bounds reassembly memory at
 * 4 × 16 MiB per peer.
 */
export const REASSEMBLY_PARTIALS_PER_PEER_MAX = 4;
/** A partial message not completed within this is dropped (counted "reassembly"). */
export const REASSEMBLY_TIMEOUT_MS = 2000;
/** How often the UDP transport sweeps for timed-out partial messages. */
export const REASSEMBLY_SWEEP_MS = 250;

interface Partial {
  readonly channel: number;
  readonly messageLength: number;
  readonly fragmentCount: number;
  readonly chunkSize: number;
  /** received[i] = 1 once fragment i is copied in. Invariant: receivedCount = sum(received). */
  readonly received: Uint8Array;
  receivedCount: number;
  readonly buffer: Buffer;
  readonly deadlineMs: number;
}

export type ReassemblyResult =
  | { readonly kind: "complete"; readonly channel: number; readonly payload: Buffer }
  | { readonly kind: "partial" }
  | { readonly kind: "drop"; readonly reason: DropReason };

const PARTIAL: ReassemblyResult = { kind: "partial" };

/**
 * Reassembles fragmented messages per peer. Time is passed in (nowMs), so tests drive it.
 * Fragments reach here authenticated and checked by readFragment, so messageLength is already
 * known to be <= messageBytesMax and consistent with the fragment's own size.
 */
export class Reassembler {
  /** Per peer (index from-1): partial messages by messageId, in arrival (= age) order. */
  private readonly partials: Map<number, Partial>[] = [];

  private readonly onEvict: (from: number) => void;
  private readonly timeoutMs: number;
  private readonly partialsPerPeerMax: number;

  constructor(
    peerCount: number,
    onEvict: (from: number) => void,
    timeoutMs = REASSEMBLY_TIMEOUT_MS,
    partialsPerPeerMax = REASSEMBLY_PARTIALS_PER_PEER_MAX,
  ) {
    assert(peerCount >= 1);
    assert(partialsPerPeerMax >= 1);
    assert(timeoutMs > 0);
    this.onEvict = onEvict;
    this.timeoutMs = timeoutMs;
    this.partialsPerPeerMax = partialsPerPeerMax;
    for (let i = 0; i < peerCount; i++) this.partials.push(new Map());
  }

  add(from: number, fragment: FragmentHeader, nowMs: number): ReassemblyResult {
    const partials = this.partials[from - 1];
    assert(partials !== undefined, "fragment from a peer outside the cluster");
    let partial = partials.get(fragment.messageId);
    if (partial === undefined) {
      this.makeRoom(from, partials);
      partial = newPartial(fragment, nowMs + this.timeoutMs);
      partials.set(fragment.messageId, partial);
    } else if (!sameMessage(partial, fragment)) {
      return { kind: "drop", reason: "malformed" };
    }
    if (partial.received[fragment.fragmentIndex] === 1) return PARTIAL; // duplicate
    partial.buffer.set(fragment.chunk, fragment.fragmentIndex * partial.chunkSize);
    partial.received[fragment.fragmentIndex] = 1;
    partial.receivedCount++;
    if (partial.receivedCount < partial.fragmentCount) return PARTIAL;
    partials.delete(fragment.messageId);
    return { kind: "complete", channel: partial.channel, payload: partial.buffer };
  }

  /**
   * `from` restarted (its frames carry a newer incarnation): its partial messages are of its old
   * run, and its new run numbers messages from 0 again, so a fragment of the new run must not
   * complete an old partial of the same id. Dropped and counted, like a timeout.
   */
  forgetPeer(from: number): void {
    const partials = this.partials[from - 1];
    assert(partials !== undefined, "a peer outside the cluster");
    for (const messageId of [...partials.keys()]) {
      partials.delete(messageId);
      this.onEvict(from);
    }
  }

  /** Drop partial messages whose deadline has passed. */
  sweep(nowMs: number): void {
    this.partials.forEach((partials, index) => {
      for (const [messageId, partial] of partials) {
        if (partial.deadlineMs > nowMs) continue;
        partials.delete(messageId);
        this.onEvict(index + 1);
      }
    });
  }

  /** Partial messages held, over all peers. */
  get partialCount(): number {
    let count = 0;
    for (const partials of this.partials) count += partials.size;
    return count;
  }

  private makeRoom(from: number, partials: Map<number, Partial>): void {
    while (partials.size >= this.partialsPerPeerMax) {
      const oldest = partials.keys().next();
      assert(oldest.done !== true);
      partials.delete(oldest.value);
      this.onEvict(from);
    }
  }
}

function newPartial(fragment: FragmentHeader, deadlineMs: number): Partial {
  return {
    channel: fragment.channel,
    messageLength: fragment.messageLength,
    fragmentCount: fragment.fragmentCount,
    chunkSize: chunkBytes(fragment.messageLength, fragment.fragmentCount),
    received: new Uint8Array(fragment.fragmentCount),
    receivedCount: 0,
    buffer: Buffer.allocUnsafe(fragment.messageLength),
    deadlineMs,
  };
}

function sameMessage(partial: Partial, fragment: FragmentHeader): boolean {
  return (
    partial.channel === fragment.channel &&
    partial.messageLength === fragment.messageLength &&
    partial.fragmentCount === fragment.fragmentCount
  );
}
