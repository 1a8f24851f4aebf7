import type { DurableState, PersistBatch } from "../core/index.ts";
import { DurableImage } from "./durable-image.ts";
import { EMPTY_DURABLE_STATE, type Storage, type StorageStats } from "./storage.ts";

/**
 * `--durability memory`: batches are remembered in this process only, flush resolves at once, and
 * a restart begins empty. Safe only while a majority of replicas never crash at the same time:
 * a restarted replica has forgotten its promises and votes, which Paxos relies on.
 */
export class MemoryStorage implements Storage {
  readonly recovered: DurableState = EMPTY_DURABLE_STATE;
  /** What a disk would hold now; kept so `image()` can show it (tests, /status). */
  private readonly durable = new DurableImage();
  private appendCount = 0;
  private flushCount = 0;
  private closed = false;

  append(batch: PersistBatch): void {
    this.durable.apply(batch);
    this.appendCount++;
  }

  flush(): Promise<void> {
    if (this.appendCount > 0) this.flushCount++;
    this.appendCount = 0;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** The state a restart would recover if this were a disk (it is not: a restart begins empty). */
  image(): DurableState {
    return this.durable.read();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  stats(): StorageStats {
    return {
      flushCount: this.flushCount,
      fsyncCount: 0,
      bytesWritten: 0,
      recordsWritten: 0,
      snapshotsWritten: 0,
      segmentCount: 0,
      lastFsyncUs: 0,
    };
  }
}
