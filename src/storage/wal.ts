import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import {
  ApusError,
  assert,
  type Ballot,
  type DurableState,
  type PersistBatch,
  type Slot,
  type Snapshot,
} from "../core/index.ts";
import type { FsyncObserver, Storage, StorageStats } from "./storage.ts";
import { StorageError } from "./storage-errors.ts";
import { validateWalOptions, type WalOptions } from "./wal-config.ts";
import { fsyncDir, ioError, listDir, removeFiles, snapshotFileName } from "./wal-files.ts";
import { WalLock } from "./wal-lock.ts";
import { checkMeta } from "./wal-meta.ts";
import {
  RecordWriter,
  SEGMENT_HEADER_RECORD_SIZE,
  SYNC_RECORD_SIZE,
  U64_RECORD_SIZE,
  voteRecordSize,
} from "./wal-record.ts";
import { type RecoveryReport, recover } from "./wal-recovery.ts";
import { SegmentFile } from "./wal-segment.ts";
import { writeSnapshotFile } from "./wal-snapshot.ts";

export type { WalOptions } from "./wal-config.ts";
export type { RecoveryReport } from "./wal-recovery.ts";

/**
 * Open (creating if needed) the write-ahead log in `options.dir`: take the directory's lock, check
 * its identity (meta.json), and recover what was durable (`wal.recovered`).
 * Throws ApusError ERR_WAL_LOCKED, ERR_WAL_MISMATCH, ERR_WAL_CORRUPT, ERR_WAL_IO, ERR_INVALID_CONFIG.
 */
export async function openWal(options: WalOptions): Promise<Wal> {
  const settings = validateWalOptions(options);
  const { dir, fsync } = settings;
  try {
    // Make each directory this created durable in its parent, down to `dir` itself.
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined && fsync) {
      for (let child = resolve(dir); ; child = dirname(child)) {
        await fsyncDir(dirname(child));
        if (child === resolve(created)) break;
      }
    }
  } catch (error) {
    throw ioError("creating data directory", dir, error);
  }
  const lock = await WalLock.acquire(dir);
  try {
    const listing = await listDir(dir);
    const hasWalFiles = listing.segments.length + listing.snapshots.length > 0;
    await checkMeta(dir, settings, hasWalFiles, fsync);
    const recovered = await recover(dir, listing, fsync, settings.onWarning);
    return new Wal(
      settings,
      lock,
      recovered.state,
      recovered.report,
      recovered.segments,
      recovered.nextSequence,
    );
  } catch (error) {
    await lock.release();
    if (error instanceof ApusError) throw error;
    throw ioError("opening WAL in", dir, error);
  }
}

/** Batches appended since the last flush started: what the next group commit writes. */
interface Group {
  readonly buffers: Uint8Array[];
  byteCount: number;
  recordCount: number;
  voteSlotMax: Slot;
  /** The newest snapshot appended (it supersedes older ones in the same group). */
  snapshot: Snapshot | null;
  /** Promised ballot and chosen slot once the group is durable. */
  promised: Ballot;
  chosenSlot: Slot;
}

/**
 * The write-ahead log: segment files of checksummed records (wal-record.ts) plus snapshot files.
 * append() only encodes; flush() is the group commit: the newest pending snapshot file first
 * (so no record that follows it can be durable without it), then ONE write and ONE fdatasync of
 * every record appended since the previous flush (a snapshot's own record among them), behind a
 * segment header or a sync record (writeRecords), then the
 * deletion of what the snapshot covers.
 */
export class Wal implements Storage {
  readonly dir: string;
  readonly recovered: DurableState;
  /** What recovery read and what torn tail it cut off. */
  readonly recoveryReport: RecoveryReport;
  private readonly lock: WalLock;
  private readonly fsync: boolean;
  private readonly segmentBytesMax: number;
  private readonly onFsync: FsyncObserver | null;

  /** Oldest first; the last one is the one appended to. Invariant: only the last is open. */
  private readonly segments: SegmentFile[];
  /** Sequence number of the next record written. */
  private nextSequence: number;

  /** Encoded, not yet handed to a flush. */
  private pending: Group;
  /** State including everything appended (what encoding decisions are made against). */
  private appendedSnapshotSlot: Slot;
  /** State as of the last completed flush: what a new segment's header restates. */
  private durablePromised: Ballot;
  private durableChosenSlot: Slot;
  private durableSnapshotSlot: Slot;

  /** The group commit running now, if any. */
  private inFlight: Promise<void> | null = null;
  /** The next group commit, waiting for `inFlight`; every flush() made meanwhile shares it. */
  private queued: Promise<void> | null = null;
  /** Set by the first I/O error: every later flush fails with it (what is on disk is unknown). */
  private failure: StorageError | null = null;
  private closed = false;

  private flushCount = 0;
  private fsyncCount = 0;
  private bytesWritten = 0;
  private recordsWritten = 0;
  private snapshotsWritten = 0;
  private lastFsyncUs = 0;

  constructor(
    settings: {
      readonly dir: string;
      readonly fsync: boolean;
      readonly segmentBytesMax: number;
      readonly onFsync: FsyncObserver | null;
    },
    lock: WalLock,
    recovered: DurableState,
    recoveryReport: RecoveryReport,
    segments: SegmentFile[],
    nextSequence: number,
  ) {
    this.dir = settings.dir;
    this.lock = lock;
    this.recovered = recovered;
    this.recoveryReport = recoveryReport;
    this.fsync = settings.fsync;
    this.segmentBytesMax = settings.segmentBytesMax;
    this.onFsync = settings.onFsync;
    this.segments = segments;
    this.nextSequence = nextSequence;
    this.durablePromised = recovered.promised;
    this.durableChosenSlot = recovered.chosenSlot;
    this.durableSnapshotSlot = recovered.snapshot?.slot ?? 0;
    this.appendedSnapshotSlot = this.durableSnapshotSlot;
    this.pending = this.emptyGroup();
  }

  append(batch: PersistBatch): void {
    assert(!this.closed, "append to a closed WAL");
    if (this.failure !== null) throw this.failure;
    const group = this.pending;
    if (batch.snapshot !== null) {
      assert(batch.snapshot.slot >= this.appendedSnapshotSlot, "snapshot older than the last one");
      group.snapshot = batch.snapshot;
      this.appendedSnapshotSlot = batch.snapshot.slot;
      group.chosenSlot = Math.max(group.chosenSlot, batch.snapshot.slot);
    }
    // Votes a snapshot covers would be dropped at recovery anyway: not written at all.
    const votes = batch.accepted.filter((vote) => vote.slot > this.appendedSnapshotSlot);
    const writesChosen = batch.chosenSlot !== null && batch.chosenSlot > group.chosenSlot;
    let size = batch.promised !== null ? U64_RECORD_SIZE : 0;
    if (batch.snapshot !== null) size += U64_RECORD_SIZE;
    for (const vote of votes) size += voteRecordSize(vote.batch);
    if (writesChosen) size += U64_RECORD_SIZE;
    if (size === 0) return;

    const writer = new RecordWriter(size);
    if (batch.promised !== null) {
      writer.promised(batch.promised);
      group.promised = batch.promised;
    }
    if (batch.snapshot !== null) writer.snapshot(batch.snapshot.slot);
    for (const vote of votes) {
      writer.vote(vote);
      group.voteSlotMax = Math.max(group.voteSlotMax, vote.slot);
    }
    if (writesChosen && batch.chosenSlot !== null) {
      writer.chosenSlot(batch.chosenSlot);
      group.chosenSlot = batch.chosenSlot;
    }
    group.buffers.push(writer.finish());
    group.byteCount += size;
    group.recordCount += writer.recordCount;
  }

  flush(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (!this.hasPending()) return this.inFlight ?? Promise.resolve();
    if (this.inFlight === null) return this.startCommit();
    this.queued ??= this.inFlight.then(ignore, ignore).then(() => {
      this.queued = null;
      return this.startCommit();
    });
    return this.queued;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    let flushError: unknown = null;
    await this.flush().catch((error: unknown) => {
      flushError = error;
    });
    this.closed = true;
    for (const segment of this.segments) await segment.close();
    await this.lock.release();
    if (flushError !== null) throw flushError;
  }

  stats(): StorageStats {
    return {
      flushCount: this.flushCount,
      fsyncCount: this.fsyncCount,
      bytesWritten: this.bytesWritten,
      recordsWritten: this.recordsWritten,
      snapshotsWritten: this.snapshotsWritten,
      segmentCount: this.segments.length,
      lastFsyncUs: this.lastFsyncUs,
    };
  }

  private hasPending(): boolean {
    // A snapshot always brings its snapshot record, so records alone say whether work is pending.
    return this.pending.recordCount > 0;
  }

  private emptyGroup(): Group {
    const previous = this.pending as Group | undefined;
    return {
      buffers: [],
      byteCount: 0,
      recordCount: 0,
      voteSlotMax: 0,
      snapshot: null,
      promised: previous?.promised ?? this.durablePromised,
      chosenSlot: previous?.chosenSlot ?? this.durableChosenSlot,
    };
  }

  private startCommit(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    assert(this.inFlight === null, "two group commits at once");
    const group = this.pending;
    this.pending = this.emptyGroup();
    const commit = this.commit(group)
      .catch((error: unknown) => {
        this.failure =
          error instanceof StorageError && error.code === "ERR_WAL_IO"
            ? error
            : ioError("group commit in", this.dir, error);
        throw this.failure;
      })
      .finally(() => {
        this.inFlight = null;
      });
    this.inFlight = commit;
    return commit;
  }

  private async commit(group: Group): Promise<void> {
    if (group.snapshot !== null) {
      await writeSnapshotFile(this.dir, group.snapshot, this.fsync);
      this.snapshotsWritten++;
      this.durableSnapshotSlot = group.snapshot.slot;
    }
    assert(group.recordCount > 0, "empty group commit");
    await this.writeRecords(group);
    this.durablePromised = group.promised;
    this.durableChosenSlot = group.chosenSlot;
    if (group.snapshot !== null) await this.dropCovered(group.snapshot.slot);
  }

  /**
   * One write + one fdatasync, into a new segment if the current one is full. The write begins
   * with the segment header (a new segment) or a sync record (the segment's size, all of it
   * durable: the previous commit's fdatasync, or recovery's, returned before this one started),
   * so recovery can tell damage from a torn tail (scanSegment). Without fsync nothing is durable
   * across an OS crash; the sync records then only mark where each commit began.
   */
  private async writeRecords(group: Group): Promise<void> {
    let segment = this.segments.at(-1);
    let first: Uint8Array;
    if (segment === undefined || segment.size >= this.segmentBytesMax) {
      await segment?.close(); // already durable: its last write was fdatasynced
      segment = await SegmentFile.create(this.dir, this.nextSequence, this.fsync);
      this.segments.push(segment);
      first = this.segmentHeader();
    } else {
      assert(segment.size > 0, "open segment without its header");
      assert(segment.recordCount > 0, "open segment without records");
      first = syncRecord(segment.firstSequence, segment.size);
    }
    const buffers = [first, ...group.buffers];
    const byteCount = group.byteCount + first.byteLength;
    const recordCount = group.recordCount + 1;
    const startedMs = performance.now();
    await segment.write(buffers, byteCount, recordCount);
    if (this.fsync) {
      await segment.datasync();
      this.fsyncCount++;
    }
    const micros = Math.round((performance.now() - startedMs) * 1000);
    segment.voteSlotMax = Math.max(segment.voteSlotMax, group.voteSlotMax);
    this.nextSequence += recordCount;
    this.flushCount++;
    this.bytesWritten += byteCount;
    this.recordsWritten += recordCount;
    this.lastFsyncUs = micros;
    this.onFsync?.(micros, byteCount);
  }

  /** Restates, at a new segment's start, what the segments before it leave durable. */
  private segmentHeader(): Uint8Array {
    const writer = new RecordWriter(SEGMENT_HEADER_RECORD_SIZE);
    writer.segmentHeader({
      firstSequence: this.nextSequence,
      promised: this.durablePromised,
      chosenSlot: this.durableChosenSlot,
      snapshotSlot: this.durableSnapshotSlot,
    });
    return writer.finish();
  }

  /**
   * The snapshot through `snapshotSlot` is durable: delete older snapshots and every segment but
   * the current one whose votes it all covers. A segment holding a vote above the snapshot stays,
   * so no slot above it is lost; what deleted segments promised is restated by later headers.
   */
  private async dropCovered(snapshotSlot: Slot): Promise<void> {
    const current = this.segments.at(-1);
    const covered = this.segments.filter((s) => s !== current && s.voteSlotMax <= snapshotSlot);
    for (const segment of covered) this.segments.splice(this.segments.indexOf(segment), 1);
    const listing = await listDir(this.dir);
    const oldSnapshots = listing.snapshots.filter((s) => s.slot < snapshotSlot).map((s) => s.name);
    assert(!oldSnapshots.includes(snapshotFileName(snapshotSlot)), "deleting the new snapshot");
    await removeFiles(this.dir, [...covered.map((s) => s.name), ...oldSnapshots]);
  }
}

function syncRecord(firstSequence: number, syncedBytes: number): Uint8Array {
  const writer = new RecordWriter(SYNC_RECORD_SIZE);
  writer.sync({ firstSequence, syncedBytes });
  return writer.finish();
}

function ignore(): void {}
