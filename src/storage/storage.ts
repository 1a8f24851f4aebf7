import type { DurableState, PersistBatch } from "../core/index.ts";

/**
 * Where the runtime makes the core's PersistBatches durable before it sends the replies that
 * reveal them (src/core/ready.ts). Two implementations: the WAL (`openWal`, real disks) and
 * `MemoryStorage` (`--durability memory`: nothing survives a restart).
 */
export interface Storage {
  /** What was durable at open: pass to `new Replica(options, recovered)`. */
  readonly recovered: DurableState;
  /** Queue one PersistBatch, in order. Not durable until a flush() that started after it resolves. */
  append(batch: PersistBatch): void;
  /**
   * Make everything appended so far durable. One write + one fdatasync covers every batch appended
   * since the last flush started (group commit). Returns undefined when everything appended is
   * durable at return (the WAL's common, synchronous commit; memory), or a Promise while a commit
   * runs; a call made while a commit is in flight waits for the next one, which covers everything
   * appended meanwhile. An I/O error is a rejected Promise with StorageError("ERR_WAL_IO") (never a
   * throw), and so is every later call: a replica that cannot persist must stop.
   */
  flush(): Promise<void> | undefined;
  /** Flush what is pending, then release the files (and the data directory's lock). */
  close(): Promise<void>;
  stats(): StorageStats;
}

/** Cumulative counters since open. */
export interface StorageStats {
  /** Group commits that wrote something (each one write, plus one fdatasync when fsync is on). */
  readonly flushCount: number;
  /** fdatasync calls on WAL segments (0 with `fsync: false` and in memory). */
  readonly fsyncCount: number;
  /** Bytes written to WAL segments (snapshot files not included). */
  readonly bytesWritten: number;
  /** WAL records written (segment headers included). */
  readonly recordsWritten: number;
  /** Snapshot files written. */
  readonly snapshotsWritten: number;
  /** WAL segment files that exist now. */
  readonly segmentCount: number;
  /** Duration of the last group commit's write + fdatasync, in µs. */
  readonly lastFsyncUs: number;
}

/**
 * Called after every group commit with its write + fdatasync time in µs and its size in bytes:
 * the hook for a latency histogram (the storage keeps no distribution itself).
 */
export type FsyncObserver = (micros: number, bytes: number) => void;

export const EMPTY_DURABLE_STATE: DurableState = Object.freeze({
  promised: 0,
  accepted: Object.freeze([]),
  snapshot: null,
  chosenSlot: 0,
});
