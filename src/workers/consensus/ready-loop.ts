import {
  type Message,
  MessageType,
  type PersistBatch,
  type Ready,
  type Replica,
} from "../../core/index.ts";

/**
 * What the Ready loop needs from the world around the core. The consensus worker implements it
 * with sockets, the WAL and the state machine; the simulator with its network, disks and checker,
 * so the simulator checks this very loop, not a copy of it.
 */
export interface ReadyLoopIo {
  send(messages: readonly Message[]): void;
  /** Install `ready.snapshot`, then apply `ready.chosen` in slot order (and answer clients). */
  apply(ready: Ready): void;
  /** Queue a persist batch, in order; not durable until a flush() started after it completes. */
  append(persist: PersistBatch): void;
  /**
   * Make everything appended durable. A Promise while the disk works (the next Ready waits for
   * it: group commit), or undefined when it is durable at return (the simulator's disks).
   */
  flush(): Promise<void> | undefined;
  /** The core advanced past `ready`, whose persist is durable (its role or leader may have changed). */
  advanced(ready: Ready): void;
  /** A flush failed: the replica cannot persist and must stop. */
  fatal(error: unknown): void;
}

export interface ReadyLoopOptions {
  /** false with --durability memory: nothing is appended or flushed. */
  readonly durable: boolean;
}

/**
 * A persist that only moves the chosen-slot hint, with at most heartbeat replies waiting on it, is
 * written with the next group commit instead of its own fsync. The hint only speeds up recovery;
 * a follower that reported more than it kept after a crash reports less after restart, and the
 * leader then lowers its record of that follower and resends what it lacks (Replica.peerHeard).
 */
export function deferrable(persist: PersistBatch, ready: Ready): boolean {
  return (
    persist.promised === null &&
    persist.accepted.length === 0 &&
    persist.snapshot === null &&
    persist.recovered !== true &&
    ready.messages.every((m) => m.type === MessageType.HeartbeatReply)
  );
}

/**
 * Hands out everything the core has ready, in the order src/core/ready.ts asks, with two
 * departures that are safe and on the hot path:
 * - `chosen` is applied as soon as it is handed out, before `persist` is durable. A slot is chosen
 *   only once a majority's votes are durable (the leader counts its own after advance()), so
 *   applying it needs nothing from this replica's disk; a crash re-learns it.
 * - a persist that is only a chosen-slot hint is not flushed on its own (see deferrable()).
 * One persist at a time: what the core produces while a flush runs waits for the next ready(),
 * so one fsync covers it all (group commit).
 */
export class ReadyLoop {
  private readonly core: Replica;
  private readonly io: ReadyLoopIo;
  private readonly durable: boolean;
  /** A flush is in flight; the next ready() waits for it. */
  private persisting = false;
  private stopped = false;
  /** Called when a flush completes and more may be ready (the runtime schedules a pump). */
  onFlushed: () => void = () => {};

  constructor(core: Replica, io: ReadyLoopIo, options: ReadyLoopOptions) {
    this.core = core;
    this.io = io;
    this.durable = options.durable;
  }

  get busy(): boolean {
    return this.persisting;
  }

  /** No more Ready handling (shutdown, or a simulated crash between two steps of a Ready). */
  stop(): void {
    this.stopped = true;
  }

  pump(): void {
    while (!this.stopped && !this.persisting && this.core.hasReady()) {
      const ready = this.core.ready();
      this.io.send(ready.messagesNow);
      this.io.apply(ready);
      if (this.stopped) return;
      const persist = ready.persist;
      if (persist === null || !this.durable) {
        this.complete(ready);
        continue;
      }
      this.io.append(persist);
      if (this.stopped) return;
      if (deferrable(persist, ready)) {
        this.complete(ready);
        continue;
      }
      const flushing = this.io.flush();
      if (this.stopped) return;
      if (flushing === undefined) {
        this.complete(ready);
        continue;
      }
      this.persisting = true;
      flushing.then(
        () => {
          this.persisting = false;
          if (this.stopped) return;
          this.complete(ready);
          this.onFlushed();
        },
        (error: unknown) => this.io.fatal(error),
      );
      return;
    }
  }

  /** The persist of `ready` is durable: release the replies that reveal it, then advance. */
  private complete(ready: Ready): void {
    this.io.send(ready.messages);
    this.core.advance();
    this.io.advanced(ready);
  }
}
