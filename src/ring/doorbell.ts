/**
 * Doorbell: how a producer wakes a consumer thread that has gone idle, without ever blocking the
 * consumer's event loop (it also serves sockets and timers, so `Atomics.wait` is not an option).
 *
 * One doorbell belongs to one consumer thread and is shared by every ring that thread reads (the
 * consensus worker reads one ring per connection worker: all of them ring the same bell).
 *
 * Layout: an Int32Array of BELL_INT32_COUNT over a SharedArrayBuffer.
 *   BELL_SEQ    written by producers only (Atomics.add), read by the consumer (its wait value).
 *   BELL_PARKED written by the consumer only (1 = about to wait or waiting, 0 = awake), read by
 *               producers to decide whether a notify is needed.
 *
 * Handshake (all operations are sequentially consistent Atomics, so the store-then-load pairs
 * below cannot both miss each other, as in Dekker's algorithm):
 *
 *   consumer (DoorbellWaiter.park)            producer (after publishing a record)
 *   C1 store PARKED = 1                       P1 publish the record (ringbuf.js stores its write
 *   C2 seen = load SEQ                           index with Atomics.store)
 *   C3 hasWork()? -> store PARKED = 0, run    P2 load PARKED; if 0 stop here (the consumer is
 *   C4 waitAsync(SEQ, seen)                      awake and will see the record)
 *   C5 woken: store PARKED = 0, hasWork()?    P3 add SEQ += 1
 *                                             P4 notify(SEQ) (wakes the waitAsync of C4)
 *
 *   - P2 reads 0: then P2 precedes C1, so P1 precedes C3 and the consumer finds the record at C3.
 *   - P2 reads 1 and P3 precedes C2: P1 precedes C3 too, the consumer finds the record at C3.
 *   - P2 reads 1 and P3 follows C2: SEQ != seen, so C4 either returns "not-equal" at once or is
 *     already registered when P4 notifies it (the value check and the registration of a waiter are
 *     atomic with respect to notify). No wake-up is lost.
 *
 * Unlike a bell that always bumps SEQ, a producer whose consumer is awake pays one plain atomic
 * load of a cache line that nobody writes (no read-modify-write, no line bouncing between several
 * producers). PARKED can be stale at 1 while the woken consumer has not run yet: producers then
 * notify a bell with no waiter, which costs a little and is harmless.
 */
import { ApusError, assert } from "../core/errors.ts";
import { RING_SPIN_US_MAX } from "../limits.ts";
import type { BellRinger, BellWaiter } from "./bell.ts";
import { RingError } from "./ring-errors.ts";

/** Int32 index of the ring counter; producers add, the consumer waits on it. */
export const BELL_SEQ = 0;
/** Int32 index of the parked flag; the consumer writes it, producers read it. */
export const BELL_PARKED = 1;
/** Int32 slots in a doorbell. */
export const BELL_INT32_COUNT = 2;
/** Bytes of a doorbell SharedArrayBuffer. */
export const BELL_BYTES = BELL_INT32_COUNT * Int32Array.BYTES_PER_ELEMENT;

/**
 * Default busy-poll before parking, in microseconds. Measured on the 2-core VM, Node 24
 * (bench/ring.bench.ts, medians of 3 runs, 64 B ping-pong between two threads): always parking
 * (spin 0, waitAsync) costs 55 µs p50 / 94 µs p99 per round trip; spin 20: 1.2 / 7.6 µs;
 * spin 50: 1.2 / 2.8 µs (4 KiB: 62 / 93, 11 / 38, 9.5 / 18 µs). A miss costs at most this much
 * CPU and event-loop time per idle transition, which bounds what spinning can take from other
 * threads on a machine with few cores.
 */
export const SPIN_US_DEFAULT = 50;
/** Upper bound of the busy-poll (src/limits.ts): longer would starve the consumer's own event loop. */
export const SPIN_US_MAX = RING_SPIN_US_MAX;

/**
 * `Atomics.waitAsync` (Node >= 16) is in lib ES2024; the project compiles against ES2023, so its
 * type is spelled here.
 */
type WaitAsyncResult =
  | { readonly async: false; readonly value: "not-equal" | "timed-out" }
  | { readonly async: true; readonly value: Promise<"ok" | "timed-out"> };
const waitAsync = (
  Atomics as unknown as {
    waitAsync: (array: Int32Array, index: number, value: number) => WaitAsyncResult;
  }
).waitAsync;

export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(BELL_BYTES);
}

function bellView(bell: SharedArrayBuffer): Int32Array {
  if (!(bell instanceof SharedArrayBuffer) || bell.byteLength !== BELL_BYTES) {
    throw new RingError(
      "ERR_RING",
      `a doorbell is a SharedArrayBuffer of ${BELL_BYTES} bytes made by createDoorbell()`,
    );
  }
  return new Int32Array(bell);
}

/** The producer's end. Any number of producers (threads) may ring one bell. */
export class DoorbellRinger implements BellRinger {
  private readonly bell: Int32Array;

  constructor(bell: SharedArrayBuffer) {
    this.bell = bellView(bell);
  }

  /** Wake the consumer if it is parked. Call after the records are published (P1 before P2). */
  ring(): void {
    // P2: a plain load while the consumer is awake; the common case on a busy replica.
    if (Atomics.load(this.bell, BELL_PARKED) === 0) return;
    // P3 then P4: the consumer may already be registered in waitAsync on the old SEQ.
    Atomics.add(this.bell, BELL_SEQ, 1);
    Atomics.notify(this.bell, BELL_SEQ);
  }
}

export interface DoorbellWaiterOptions {
  /** Busy-poll this long before parking, in microseconds; 0 parks at once. */
  readonly spinUs?: number;
  /**
   * Keep the thread alive while parked (default true), as a blocking wait would. Measured: in
   * Node 24 a pending Atomics.waitAsync holds no reference, so a worker with nothing else on its
   * event loop exits while parked. Costs a ref()/unref() of one timer per park.
   */
  readonly keepAlive?: boolean;
}

/** Period of the keep-alive timer; it never needs to fire. */
const KEEP_ALIVE_INTERVAL_MS = 2 ** 30;

/**
 * The consumer's end: exactly one per bell, in the consumer thread. Never blocks the thread: it
 * polls for at most `spinUs`, then parks on `Atomics.waitAsync`, so sockets and timers of the
 * same event loop keep running while it waits.
 */
export class DoorbellWaiter implements BellWaiter {
  private readonly bell: Int32Array;
  private readonly spinMs: number;
  /** True while a waitForWork call is in progress. Invariant: at most one at a time. */
  private waiting = false;
  private isClosed = false;
  /** Referenced only while parked; null without keepAlive or once closed. */
  private keepAlive: NodeJS.Timeout | null = null;
  /** Waits answered by the busy-poll (no sleep). */
  spinHitCount = 0;
  /** Times the consumer parked on waitAsync and was woken. */
  parkCount = 0;

  constructor(bell: SharedArrayBuffer, options: DoorbellWaiterOptions = {}) {
    const spinUs = options.spinUs ?? SPIN_US_DEFAULT;
    if (!Number.isFinite(spinUs) || spinUs < 0 || spinUs > SPIN_US_MAX) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        `invalid spinUs ${spinUs}: use 0 (park at once) to ${SPIN_US_MAX}`,
      );
    }
    this.bell = bellView(bell);
    this.spinMs = spinUs / 1000;
    if (options.keepAlive ?? true) {
      this.keepAlive = setInterval(() => {}, KEEP_ALIVE_INTERVAL_MS);
      this.keepAlive.unref();
    }
    Atomics.store(this.bell, BELL_PARKED, 0);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Resolve true once `hasWork()` is true, false once the waiter is closed. `hasWork` must be cheap
   * and side-effect free (e.g. "any of my rings has bytes"); it is called many times while polling.
   */
  async waitForWork(hasWork: () => boolean): Promise<boolean> {
    assert(!this.waiting, "one consumer per doorbell: waitForWork is already waiting");
    if (this.isClosed) return false;
    if (hasWork()) return true;
    if (this.spin(hasWork)) {
      this.spinHitCount++;
      return true;
    }
    this.waiting = true;
    this.keepAlive?.ref();
    try {
      return await this.park(hasWork);
    } finally {
      this.keepAlive?.unref();
      this.waiting = false;
    }
  }

  /** Stop waiting: a pending waitForWork resolves false, later ones return false at once. */
  close(): void {
    this.isClosed = true;
    if (this.keepAlive !== null) clearInterval(this.keepAlive);
    this.keepAlive = null;
    // Wakes our own pending waitAsync (if any) whatever the value of SEQ.
    Atomics.notify(this.bell, BELL_SEQ);
  }

  /** Bounded busy-poll: holds the event loop for at most spinUs. */
  private spin(hasWork: () => boolean): boolean {
    if (this.spinMs === 0) return false;
    const deadline = performance.now() + this.spinMs;
    do {
      if (hasWork()) return true;
    } while (performance.now() < deadline);
    return false;
  }

  private async park(hasWork: () => boolean): Promise<boolean> {
    for (;;) {
      if (this.isClosed) return false;
      Atomics.store(this.bell, BELL_PARKED, 1); // C1
      const seen = Atomics.load(this.bell, BELL_SEQ); // C2
      if (hasWork()) {
        // C3: a record published before C1 was seen by its producer as "awake": take it now.
        Atomics.store(this.bell, BELL_PARKED, 0);
        return true;
      }
      const wait = waitAsync(this.bell, BELL_SEQ, seen); // C4
      if (wait.async) await wait.value;
      Atomics.store(this.bell, BELL_PARKED, 0); // C5
      this.parkCount++;
      if (hasWork()) return true;
      // Woken by close(), or by a ring whose record we already took at C3 of a previous round.
    }
  }
}
