import type { ReadState } from "../../core/ready.ts";
import type { ReadResult } from "../../core/replica.ts";
import type { Slot } from "../../core/types.ts";

/** What the read server needs from the consensus worker around it. */
export interface ReadServerIo {
  /** Ask the core for a read index (Replica.read). */
  askIndex(ctx: number): ReadResult;
  /** Stop asking for the index of `ctx` (Replica.cancelRead). */
  cancelIndex(ctx: number): void;
  /** Answer a read-only request from the state machine as it is now (ReplicatedApp.read). */
  serve(
    commands: readonly (readonly Uint8Array[])[],
    worker: number,
    connId: number,
  ): Uint8Array | null;
  reply(worker: number, connId: number, seq: number, reply: Uint8Array): void;
  /** Monotonic time, ms. */
  nowMs(): number;
  count(outcome: "served" | "timeout"): void;
}

export interface ReadServerOptions {
  /** Reads that may wait at once (--max-pending, as for writes). */
  readonly pendingReadsMax: number;
  /** --request-timeout-ms: a read with no index by then is answered with an error. */
  readonly requestTimeoutMs: number;
  /**
   * A read whose index is not applied this long after it was given is asked for a new one. An
   * index can name a slot that no leader will fill until the next write: the top slot a deposed
   * leader's Phase 1 found, holding a vote the next leader never saw. Any index confirmed after
   * the read arrived is as good, and a leader's own gives a slot it fills.
   */
  readonly reaskAfterMs: number;
}

interface PendingRead {
  ctx: number;
  readonly worker: number;
  readonly connId: number;
  readonly seq: number;
  readonly commands: readonly (readonly Uint8Array[])[];
  readonly arrivedMs: number;
  /** The read index once the core gave it, else -1; and when it came. */
  index: Slot;
  indexedMs: number;
}

/**
 * Read-only requests served without the log (ReadIndex; the protocol side is Replica's read
 * section): a read waits for the index the core hands out in Ready.reads, then for the state
 * machine to apply that slot, and is answered from this replica's own state. The reply goes
 * through the same rings as a write's. A connection has one request in flight at a time (its
 * pipelined commands travel together, client-server.ts), and a request holding any write goes
 * through the log whole, so a client still sees its own writes in order.
 */
export class ReadServer {
  private readonly io: ReadServerIo;
  private readonly options: ReadServerOptions;
  /** Reads by ctx, in arrival order: waiting for an index, or for the apply to reach it. */
  private readonly pending = new Map<number, PendingRead>();
  /** Reads with an index the state machine has not applied yet. */
  private parked: PendingRead[] = [];
  private nextCtx = 1;

  constructor(io: ReadServerIo, options: ReadServerOptions) {
    this.io = io;
    this.options = options;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Take a read-only request; false when too many wait (the caller answers BUSY). */
  add(
    worker: number,
    connId: number,
    seq: number,
    commands: readonly (readonly Uint8Array[])[],
  ): boolean {
    if (this.pending.size >= this.options.pendingReadsMax) return false;
    const ctx = this.nextCtx++;
    if (this.io.askIndex(ctx) !== "queued") return false;
    this.pending.set(ctx, {
      ctx,
      worker,
      connId,
      seq,
      commands,
      arrivedMs: this.io.nowMs(),
      index: -1,
      indexedMs: 0,
    });
    return true;
  }

  /**
   * The core handed out read indexes; the state machine has applied `appliedSlot`. Returns how
   * many reads were answered.
   */
  onIndexes(reads: readonly ReadState[], appliedSlot: Slot): number {
    let served = 0;
    for (const state of reads) {
      const read = this.pending.get(state.ctx);
      if (read === undefined) continue; // timed out meanwhile
      read.index = state.index;
      read.indexedMs = this.io.nowMs();
      if (state.index <= appliedSlot) {
        this.serve(read);
        served++;
      } else this.parked.push(read);
    }
    return served;
  }

  /** The state machine applied up to `appliedSlot`: serve the reads that waited for it. */
  onApplied(appliedSlot: Slot): number {
    if (this.parked.length === 0) return 0;
    const still: PendingRead[] = [];
    let served = 0;
    for (const read of this.parked) {
      if (read.index > appliedSlot) still.push(read);
      else if (this.pending.has(read.ctx)) {
        this.serve(read);
        served++;
      }
    }
    this.parked = still;
    return served;
  }

  private serve(read: PendingRead): void {
    this.pending.delete(read.ctx);
    const reply = this.io.serve(read.commands, read.worker, read.connId);
    this.io.reply(read.worker, read.connId, read.seq, reply ?? NOT_READ_ONLY);
    this.io.count("served");
  }

  /**
   * Answer the reads that waited past --request-timeout-ms (nothing ran for them), and ask again
   * for the index of reads parked too long on one (see reaskAfterMs).
   */
  expire(): void {
    const now = this.io.nowMs();
    const timeout = this.options.requestTimeoutMs;
    let expired = false;
    for (const read of this.parked) {
      if (now - read.indexedMs < this.options.reaskAfterMs || now - read.arrivedMs >= timeout)
        continue;
      const ctx = this.nextCtx++;
      if (this.io.askIndex(ctx) !== "queued") continue;
      this.pending.delete(read.ctx);
      read.ctx = ctx;
      read.index = -1;
      this.pending.set(ctx, read);
      expired = true; // no longer parked: filtered out below
    }
    for (const [ctx, read] of this.pending) {
      if (now - read.arrivedMs < timeout) continue;
      this.pending.delete(ctx);
      this.io.cancelIndex(ctx);
      expired = true;
      this.io.count("timeout");
      const why =
        read.index < 0
          ? "no leader confirmed a read index (no leader reachable from this replica)"
          : `this replica has not applied slot ${read.index} yet`;
      this.io.reply(
        read.worker,
        read.connId,
        read.seq,
        repeat(
          `TIMEOUT apus: read not answered within ${timeout} ms: ${why}; it changed nothing, retry`,
          read.commands.length,
        ),
      );
    }
    if (expired)
      this.parked = this.parked.filter((read) => read.index >= 0 && this.pending.has(read.ctx));
  }

  /** Answer every waiting read with `text` (shutdown). */
  drain(text: string): void {
    for (const [ctx, read] of this.pending) {
      this.io.cancelIndex(ctx);
      this.io.reply(read.worker, read.connId, read.seq, repeat(text, read.commands.length));
    }
    this.pending.clear();
    this.parked = [];
  }
}

/** Never expected: a request the app called read-only at arrival but not when served. */
const NOT_READ_ONLY = Buffer.from("-ERR apus: read request not served; retry\r\n");

function repeat(text: string, count: number): Uint8Array {
  const one = Buffer.from(`-${text}\r\n`, "latin1");
  return count <= 1 ? one : Buffer.concat(Array.from({ length: count }, () => one));
}
