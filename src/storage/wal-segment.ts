import { fdatasyncSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { assert, type Slot } from "../core/index.ts";
import { StorageError } from "./storage-errors.ts";
import {
  DAMAGED_DATA_ADVICE,
  fsyncDir,
  ioError,
  segmentFileName,
  writeAllSync,
} from "./wal-files.ts";
import {
  decodeRecord,
  isSyncRecordAt,
  RecordType,
  SYNC_RECORD_SIZE,
  type WalRecord,
} from "./wal-record.ts";

/** What reading one segment found. */
export interface SegmentScan {
  readonly recordCount: number;
  /** Bytes of whole, valid records from the start: where the file is cut when `torn`. */
  readonly validBytes: number;
  /** Highest slot voted in the segment (0 if none): the segment may go once a snapshot covers it. */
  readonly voteSlotMax: Slot;
  /** The torn tail found (last segment only), or null. */
  readonly torn: { readonly offset: number; readonly reason: string } | null;
}

export function corruptRecord(path: string, offset: number, reason: string): StorageError {
  return new StorageError(
    "ERR_WAL_CORRUPT",
    `${path}: bad WAL record at byte offset ${offset} (${reason}); the log is damaged where it ` +
      `was durable, so records this replica acknowledged may be lost: ${DAMAGED_DATA_ADVICE}`,
  );
}

/**
 * Decode every record of a segment, in order, handing each to `onRecord`.
 *
 * Torn tail or damage? A crash in the middle of a group commit can leave the last segment ending
 * in a partial record, records with bad checksums, or zeros (the file grew before its data reached
 * the disk), and, since the pages and sectors of one write may reach the disk in any order, intact
 * records among them. Such a torn tail was never acknowledged and is reported and cut off by the
 * caller. But a torn write can only touch bytes after the last completed fdatasync:
 *   - group commits never overlap: each writes at the end of the segment only after the previous
 *     one's fdatasync returned (Wal.inFlight), and recovery syncs the last segment before the
 *     first append (SegmentFile.reopen);
 *   - once fdatasync returns, every byte written to the file before it is on stable storage, so a
 *     crash can alter only what was written after it: the one write in flight, which lies wholly
 *     at or after the size the segment had when that write began.
 * Every group commit to a segment that already holds records begins with a sync record naming that
 * size, which is also its own offset (wal-record.ts). So a bad record at offset X is damage, not a
 * torn tail, when an intact sync record lies beyond X: the write that carried it began only after
 * the bytes at X were durable. Two adjacent bad records, or a bad length field that hides where the
 * next record starts, change nothing: the search for a sync record goes byte by byte to the end of
 * the file. Zeros never look like a record, so a zero-filled end is torn (or empty).
 * What no record after it proves durable, the last group commit, is the one stretch whose damage
 * reads as a torn tail: the log cannot tell it from a crash before that commit's fdatasync returned.
 * In a segment that is not the last, nothing can be torn (a segment is closed only after its last
 * write was fdatasynced), so any bad record is damage.
 */
export function scanSegment(
  path: string,
  bytes: Uint8Array,
  isLast: boolean,
  firstSequence: number,
  onRecord: (record: WalRecord, offset: number) => void,
): SegmentScan {
  let offset = 0;
  let recordCount = 0;
  let voteSlotMax = 0;
  while (offset < bytes.byteLength) {
    const result = decodeRecord(bytes, offset);
    if (!result.ok) {
      if (!isLast) throw corruptRecord(path, offset, result.reason);
      const syncOffset = findSyncRecord(bytes, offset + 1, firstSequence);
      if (syncOffset !== -1) {
        throw corruptRecord(
          path,
          offset,
          `${result.reason}; the intact sync record at byte offset ${syncOffset} shows it was ` +
            "durable, so this is not a torn tail",
        );
      }
      return {
        recordCount,
        validBytes: offset,
        voteSlotMax,
        torn: { offset, reason: result.reason },
      };
    }
    onRecord(result.record, offset);
    if (result.record.type === RecordType.Vote && result.record.vote.slot > voteSlotMax) {
      voteSlotMax = result.record.vote.slot;
    }
    recordCount++;
    offset = result.end;
  }
  return { recordCount, validBytes: offset, voteSlotMax, torn: null };
}

/** Offset of the first intact sync record of this segment at or after `from`, or -1. */
function findSyncRecord(bytes: Uint8Array, from: number, firstSequence: number): number {
  // Every byte offset, not only where records should start: a bad length field hides those.
  // Linear in the segment's size: a candidate is checked against fixed fields before its crc.
  for (let offset = from; offset + SYNC_RECORD_SIZE <= bytes.byteLength; offset++) {
    if (isSyncRecordAt(bytes, offset, firstSequence)) return offset;
  }
  return -1;
}

/**
 * A segment file. Only the newest one is open for appends; older ones are kept as plain
 * descriptions until a snapshot lets them be deleted.
 * Invariant: size is the file's length and every byte of it is a whole record.
 */
export class SegmentFile {
  readonly dir: string;
  readonly firstSequence: number;
  readonly name: string;
  readonly path: string;
  /** Open for appends (the newest segment) or null. */
  private handle: FileHandle | null;
  /** Bytes in the file. */
  size: number;
  recordCount: number;
  /** Highest slot voted in this segment: it may be deleted once a snapshot reaches it. */
  voteSlotMax: Slot;

  private constructor(
    dir: string,
    firstSequence: number,
    handle: FileHandle | null,
    size: number,
    recordCount: number,
    voteSlotMax: Slot,
  ) {
    this.dir = dir;
    this.firstSequence = firstSequence;
    this.name = segmentFileName(firstSequence);
    this.path = join(dir, this.name);
    this.handle = handle;
    this.size = size;
    this.recordCount = recordCount;
    this.voteSlotMax = voteSlotMax;
  }

  /** A new, empty segment; the directory is fsynced so the file itself survives a crash. */
  static async create(dir: string, firstSequence: number, fsync: boolean): Promise<SegmentFile> {
    const path = join(dir, segmentFileName(firstSequence));
    try {
      const handle = await open(path, "wx");
      if (fsync) await fsyncDir(dir);
      return new SegmentFile(dir, firstSequence, handle, 0, 0, 0);
    } catch (error) {
      throw ioError("creating segment", path, error);
    }
  }

  /** A segment found at recovery, not open (older than the one appended to). */
  static closed(dir: string, firstSequence: number, scan: SegmentScan): SegmentFile {
    return new SegmentFile(
      dir,
      firstSequence,
      null,
      scan.validBytes,
      scan.recordCount,
      scan.voteSlotMax,
    );
  }

  /**
   * Open the last segment found at recovery for appends, cutting off its torn tail if any. With
   * fsync, what is kept is synced before anything is appended, whether or not it was cut: after
   * a crash of the process alone, the records of its last, unacknowledged group commit may still be
   * only in the page cache. Recovery hands them on as durable state, and the next group commit's
   * sync record claims them durable (scanSegment), so they must be.
   */
  static async reopen(
    dir: string,
    firstSequence: number,
    scan: SegmentScan,
    fileBytes: number,
    fsync: boolean,
  ): Promise<SegmentFile> {
    const path = join(dir, segmentFileName(firstSequence));
    try {
      const handle = await open(path, "r+");
      if (fileBytes > scan.validBytes) await handle.truncate(scan.validBytes);
      if (fsync) await handle.sync(); // the new size too, not only the data: sync, not datasync
      return new SegmentFile(
        dir,
        firstSequence,
        handle,
        scan.validBytes,
        scan.recordCount,
        scan.voteSlotMax,
      );
    } catch (error) {
      throw ioError("reopening segment", path, error);
    }
  }

  get isOpen(): boolean {
    return this.handle !== null;
  }

  /**
   * Append whole records at the end of the file (one writev, unless the kernel writes less), on
   * the calling thread: see Wal.writeRecords for why the group commit's write is synchronous.
   */
  writeSync(buffers: readonly Uint8Array[], byteCount: number, recordCount: number): void {
    assert(this.handle !== null, "write to a closed segment");
    const written = writeAllSync(this.handle.fd, buffers, this.size);
    assert(written === byteCount, "segment write size mismatch");
    this.size += byteCount;
    this.recordCount += recordCount;
  }

  /** fdatasync on the calling thread: every byte written before it is on stable storage. */
  datasyncSync(): void {
    assert(this.handle !== null, "sync of a closed segment");
    fdatasyncSync(this.handle.fd);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (handle !== null) await handle.close();
  }
}
