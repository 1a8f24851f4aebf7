import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { AcceptedEntry, Ballot, DurableState, Slot, Snapshot } from "../core/index.ts";
import { StorageError } from "./storage-errors.ts";
import { DAMAGED_DATA_ADVICE, type DirListing, ioError, removeFiles } from "./wal-files.ts";
import { RecordType, type SyncMark, type WalRecord } from "./wal-record.ts";
import { corruptRecord, SegmentFile, type SegmentScan, scanSegment } from "./wal-segment.ts";
import { readSnapshotFile } from "./wal-snapshot.ts";

/** What recovery read and repaired: shown at start-up and in /status. */
export interface RecoveryReport {
  readonly snapshotSlot: Slot;
  readonly segmentsRead: number;
  readonly recordsRead: number;
  /** Bytes of torn tail cut off the last segment (0 when it ended cleanly). */
  readonly bytesTruncated: number;
  /** The segment whose torn tail was cut and where, or null. */
  readonly torn: { readonly file: string; readonly offset: number; readonly reason: string } | null;
}

export interface Recovered {
  readonly state: DurableState;
  /** Surviving segments, oldest first; the last one is open for appends. May be empty. */
  readonly segments: SegmentFile[];
  /** Sequence number of the next record to write. */
  readonly nextSequence: number;
  readonly report: RecoveryReport;
}

/** The durable state, rebuilt one record at a time with the same rules as DurableImage. */
class Replay {
  promised: Ballot = 0;
  chosenSlot: Slot = 0;
  /** Invariant: every key > snapshotSlot. */
  readonly votes = new Map<Slot, AcceptedEntry>();
  readonly snapshot: Snapshot | null;

  constructor(snapshot: Snapshot | null) {
    this.snapshot = snapshot;
  }

  get snapshotSlot(): Slot {
    return this.snapshot === null ? 0 : this.snapshot.slot;
  }

  apply(record: WalRecord): void {
    switch (record.type) {
      case RecordType.Promised:
        this.promised = record.ballot;
        break;
      case RecordType.Vote:
        if (record.vote.slot > this.snapshotSlot) this.votes.set(record.vote.slot, record.vote);
        break;
      case RecordType.ChosenSlot:
        this.chosenSlot = Math.max(this.chosenSlot, record.slot);
        break;
      case RecordType.Snapshot:
        break; // checked against the snapshot file by checkSnapshotSlot
      case RecordType.Sync:
        break; // checked against its offset by checkSync; says nothing about the state
      case RecordType.SegmentHeader:
        // Restates what earlier (possibly deleted) segments left: later in the log, so it wins.
        this.promised = record.header.promised;
        this.chosenSlot = Math.max(this.chosenSlot, record.header.chosenSlot);
        break;
    }
  }

  state(): DurableState {
    return {
      promised: this.promised,
      accepted: [...this.votes.values()].sort((a, b) => a.slot - b.slot),
      snapshot: this.snapshot,
      chosenSlot: Math.max(this.chosenSlot, this.snapshotSlot),
    };
  }
}

/**
 * Rebuild the durable state from the newest snapshot and every segment, in order. Cuts a torn
 * tail off the last segment (calling `warn`); refuses damage, which a torn tail can never be
 * (scanSegment says which is which), with ERR_WAL_CORRUPT.
 */
export async function recover(
  dir: string,
  listing: DirListing,
  fsync: boolean,
  warn: (message: string) => void,
): Promise<Recovered> {
  await removeFiles(dir, listing.temps); // a write a crash interrupted before its rename
  const replay = new Replay(await readNewestSnapshot(dir, listing));
  const segments: SegmentFile[] = [];
  let nextSequence = 0;
  let recordsRead = 0;
  let torn: RecoveryReport["torn"] = null;
  let bytesTruncated = 0;

  for (const [index, entry] of listing.segments.entries()) {
    const isLast = index === listing.segments.length - 1;
    const path = join(dir, entry.name);
    const bytes = await readFile(path).catch((error: unknown) => {
      throw ioError("reading segment", path, error);
    });
    if (entry.firstSequence < nextSequence) {
      throw corruptRecord(
        path,
        0,
        `starts at sequence ${entry.firstSequence}, inside the previous segment`,
      );
    }
    const scan = scanOne(path, bytes, isLast, entry.firstSequence, replay);
    recordsRead += scan.recordCount;
    if (scan.torn !== null) {
      torn = { file: path, ...scan.torn };
      bytesTruncated = bytes.byteLength - scan.validBytes;
      warn(
        `${path}: cut a torn tail of ${bytesTruncated} bytes at offset ${scan.torn.offset} ` +
          `(${scan.torn.reason}): a write interrupted by a crash, never acknowledged`,
      );
    }
    if (scan.recordCount === 0) {
      // Created, then a crash before its first write was durable: nothing in it was acknowledged.
      if (!isLast) throw corruptRecord(path, 0, "empty segment before the last");
      await removeFiles(dir, [entry.name]);
      nextSequence = entry.firstSequence;
      continue;
    }
    segments.push(
      isLast
        ? await SegmentFile.reopen(dir, entry.firstSequence, scan, bytes.byteLength, fsync)
        : SegmentFile.closed(dir, entry.firstSequence, scan),
    );
    nextSequence = entry.firstSequence + scan.recordCount;
  }
  const report: RecoveryReport = {
    snapshotSlot: replay.snapshotSlot,
    segmentsRead: listing.segments.length,
    recordsRead,
    bytesTruncated,
    torn,
  };
  return { state: replay.state(), segments, nextSequence, report };
}

function scanOne(
  path: string,
  bytes: Uint8Array,
  isLast: boolean,
  firstSequence: number,
  replay: Replay,
): SegmentScan {
  let recordIndex = 0;
  return scanSegment(path, bytes, isLast, firstSequence, (record, offset) => {
    const isHeader = record.type === RecordType.SegmentHeader;
    if (isHeader !== (recordIndex === 0)) {
      throw corruptRecord(
        path,
        offset,
        isHeader ? "segment header inside a segment" : "no segment header",
      );
    }
    if (isHeader) {
      checkHeader(path, offset, record.header.firstSequence, firstSequence);
      checkSnapshotSlot(path, record.header.snapshotSlot, replay.snapshotSlot);
    }
    if (record.type === RecordType.Snapshot)
      checkSnapshotSlot(path, record.slot, replay.snapshotSlot);
    if (record.type === RecordType.Sync) checkSync(path, offset, record.sync, firstSequence);
    replay.apply(record);
    recordIndex++;
  });
}

function checkHeader(
  path: string,
  offset: number,
  headerSequence: number,
  nameSequence: number,
): void {
  if (headerSequence !== nameSequence) {
    throw corruptRecord(
      path,
      offset,
      `header says sequence ${headerSequence}, the file name ${nameSequence}`,
    );
  }
}

/** A sync record must name its own segment and offset (what recovery searches for after damage). */
function checkSync(path: string, offset: number, sync: SyncMark, firstSequence: number): void {
  if (sync.firstSequence !== firstSequence || sync.syncedBytes !== offset) {
    throw corruptRecord(
      path,
      offset,
      `sync record says segment ${sync.firstSequence} offset ${sync.syncedBytes}, but it is at ` +
        `offset ${offset} of segment ${firstSequence}`,
    );
  }
}

/** The log says a snapshot through `loggedSlot` was durable: the newest snapshot file must reach it. */
function checkSnapshotSlot(path: string, loggedSlot: Slot, snapshotSlot: Slot): void {
  if (loggedSlot <= snapshotSlot) return;
  // Segments may have been deleted on the strength of that snapshot: without it, votes are lost.
  throw new StorageError(
    "ERR_WAL_CORRUPT",
    `${path} records a snapshot of slot ${loggedSlot}, but the newest snapshot file holds slot ` +
      `${snapshotSlot}: the snapshot file is missing. Restore it if you have it; otherwise ` +
      DAMAGED_DATA_ADVICE,
  );
}

async function readNewestSnapshot(dir: string, listing: DirListing): Promise<Snapshot | null> {
  const newest = listing.snapshots.at(-1);
  if (newest === undefined) return null;
  const snapshot = await readSnapshotFile(dir, newest.name, newest.slot);
  // Older ones are left by a crash between writing the newest and deleting them.
  await removeFiles(
    dir,
    listing.snapshots.slice(0, -1).map((s) => s.name),
  );
  return snapshot;
}
