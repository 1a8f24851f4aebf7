/**
 * Bells: how the producer of a ring wakes its consumer. Two kinds share these interfaces, so the
 * ring's code (the client server, the consensus node's ring loop, the reply router) is the same
 * whichever runs:
 *
 *   - the doorbell (doorbell.ts): producer and consumer on different threads; Atomics over a
 *     SharedArrayBuffer, Atomics.waitAsync to park, an optional busy-poll;
 *   - the local bell (below): producer and consumer on one thread's event loop (`--workers 0`,
 *     clients served on the consensus thread); a promise, no Atomics, no spin.
 */
import { assert } from "../core/errors.ts";

/** The producer's end: call after the records are published. */
export interface BellRinger {
  ring(): void;
}

/** The consumer's end: exactly one per bell. */
export interface BellWaiter {
  /**
   * Resolve true once `hasWork()` is true, false once the waiter is closed. `hasWork` must be
   * cheap and side-effect free; it may be called several times per wait.
   */
  waitForWork(hasWork: () => boolean): Promise<boolean>;
  /** Stop waiting: a pending waitForWork resolves false, later ones return false at once. */
  close(): void;
  readonly closed: boolean;
}

export interface LocalBellOptions {
  /**
   * When a ring wakes the waiter: "microtask" (default) right after the producer's current
   * callback, on the same event-loop turn; "next-turn" in the check phase (setImmediate), after
   * every other I/O callback of this turn, so one wake-up takes all of the turn's records.
   */
  readonly wake?: "microtask" | "next-turn";
}

/**
 * A bell whose producer and consumer run on the same event loop. ring() resolves the consumer's
 * pending wait, so the consumer runs in a microtask right after the producer's current callback
 * (or, with `wake: "next-turn"`, in this turn's check phase). No thread sleeps, so there is
 * nothing to spin for and nothing to keep alive (the thread's sockets and timers do that).
 *
 * Single-threaded, so no handshake: hasWork() is checked before every park and after every wake,
 * and a ring() with nobody waiting is a no-op (the next waitForWork checks hasWork first).
 */
export class LocalBell implements BellRinger, BellWaiter {
  /** Resolves the pending wait; null when nobody waits. Invariant: non-null only inside waitForWork. */
  private wake: (() => void) | null = null;
  private isClosed = false;
  private readonly nextTurn: boolean;
  /** Times the consumer found no work and waited for a ring (a metric for tests and benchmarks). */
  parkCount = 0;

  constructor(options: LocalBellOptions = {}) {
    this.nextTurn = options.wake === "next-turn";
  }

  get closed(): boolean {
    return this.isClosed;
  }

  ring(): void {
    const wake = this.wake;
    if (wake === null) return;
    this.wake = null;
    if (this.nextTurn) setImmediate(wake);
    else wake();
  }

  async waitForWork(hasWork: () => boolean): Promise<boolean> {
    assert(this.wake === null, "one consumer per bell: waitForWork is already waiting");
    for (;;) {
      if (this.isClosed) return false;
      if (hasWork()) return true;
      this.parkCount++;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  close(): void {
    this.isClosed = true;
    this.ring();
  }
}
