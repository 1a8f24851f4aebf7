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
 *
 * The common group commit (no snapshot, room in the open segment) runs synchronously on the
 * calling thread, the consensus thread, and flush() returns undefined: durable at return. Only a
 * commit that writes a snapshot file or starts a new segment goes through the async path (a
 * Promise), and a flush() made while that one runs shares the next commit, as before.
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

  /**
   * undefined: everything appended is durable now (a synchronous group commit, or nothing was
   * pending). A Promise: a commit that writes a snapshot file or rolls the segment over, or the one
   * after the commit in flight, which covers everything appended meanwhile. A failed commit returns
   * a rejected Promise (never throws), and so does every later call.
   */
  flush(): Promise<void> | undefined {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (!this.hasPending()) return this.inFlight ?? undefined;
    if (this.inFlight === null) {
      return this.pending.snapshot === null && !this.needsNewSegment()
        ? this.commitSync()
        : this.startCommit();
    }
    this.queued ??= this.inFlight.then(ignore, ignore).then(() => {
      this.queued = null;
      return this.startCommit();
    });
    return this.queued;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    let flushError: unknown = null;
    try {
      await this.flush();
    } catch (error) {
      flushError = error;
    }
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

  /**
   * The next commit starts a new segment (asynchronously: creating one fsyncs the directory): there
   * is none, the last is full, or recovery left it closed (it removed an empty one after it).
   */
  private needsNewSegment(): boolean {
    const segment = this.segments.at(-1);
    return segment === undefined || !segment.isOpen || segment.size >= this.segmentBytesMax;
  }

  /** A group commit of records only, into the open segment, on this thread. */
  private commitSync(): Promise<void> | undefined {
    assert(this.inFlight === null, "two group commits at once");
    const group = this.pending;
    assert(group.snapshot === null, "a snapshot commit is asynchronous");
    this.pending = this.emptyGroup();
    try {
      this.writeRecords(group);
    } catch (error) {
      return Promise.reject(this.fail(error));
    }
    this.durablePromised = group.promised;
    this.durableChosenSlot = group.chosenSlot;
    return undefined;
  }

  /** The first I/O error: what is on disk is unknown from here on, so every later flush fails. */
  private fail(error: unknown): StorageError {
    this.failure =
      error instanceof StorageError && error.code === "ERR_WAL_IO"
        ? error
        : ioError("group commit in", this.dir, error);
    return this.failure;
  }

  private startCommit(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    assert(this.inFlight === null, "two group commits at once");
    const group = this.pending;
    this.pending = this.emptyGroup();
    const commit = this.commit(group)
      .catch((error: unknown) => {
        throw this.fail(error);
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
    if (this.needsNewSegment()) await this.startSegment();
    this.writeRecords(group);
    this.durablePromised = group.promised;
    this.durableChosenSlot = group.chosenSlot;
    if (group.snapshot !== null) await this.dropCovered(group.snapshot.slot);
  }

  /** Close the full segment (already durable: its last write was fdatasynced) and create the next. */
  private async startSegment(): Promise<void> {
    await this.segments.at(-1)?.close();
    this.segments.push(await SegmentFile.create(this.dir, this.nextSequence, this.fsync));
  }

  /**
   * One write + one fdatasync into the open segment. The write begins with the segment header (a
   * new, empty segment) or a sync record (the segment's size, all of it durable: the previous
   * commit's fdatasync, or recovery's, returned before this one started), so recovery can tell
   * damage from a torn tail (scanSegment). Without fsync nothing is durable across an OS crash; the
   * sync records then only mark where each commit began.
   *
   * Synchronous (writevSync + fdatasyncSync on the consensus thread), not two libuv pool hops:
   * each hop wakes a pool thread and then the event loop, and on 2 cores that CPU is the latency.
   * Measured on the 2-core machine (bench/results/wal-path-2026-11-29.md, bench/wal-path.ts): one
   * 100 B commit costs 137 µs wall and 58 µs CPU this way, 200-224 µs and 125-144 µs through the
   * pool; a 3-replica cluster under redis-benchmark SET spends 1,105 instead of 1,383 µs of CPU
   * per request at 1 connection and 134 instead of 153 at 24 (medians of 4 alternating runs).
   * One pool hop (an O_DSYNC writev, the shape a WAL writer thread would have: one hand-off, one
   * completion wake-up) measured 1,188 and 140: in between, so neither was kept. The thread is
   * blocked for the fdatasync, but nothing it could do meanwhile would be sent before the persist
   * is durable anyway, and what arrives meanwhile joins the next, bigger group commit.
   */
  private writeRecords(group: Group): void {
    const segment = this.segments.at(-1);
    assert(segment !== undefined, "group commit without a segment");
    assert(segment.isOpen, "group commit into a closed segment");
    assert(segment.size < this.segmentBytesMax, "group commit into a full segment");
    let first: Uint8Array;
    if (segment.size === 0) {
      assert(segment.recordCount === 0, "records in an empty segment");
      first = this.segmentHeader();
    } else {
      assert(segment.recordCount > 0, "open segment without records");
      first = syncRecord(segment.firstSequence, segment.size);
    }
    const buffers = [first, ...group.buffers];
    const byteCount = group.byteCount + first.byteLength;
    const recordCount = group.recordCount + 1;
    const startedMs = performance.now();
    segment.writeSync(buffers, byteCount, recordCount);
    if (this.fsync) {
      segment.datasyncSync();
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
