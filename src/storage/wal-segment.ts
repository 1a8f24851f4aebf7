import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { ApusError, assert, type Slot } from "../core/index.ts";
import { fsyncDir, ioError, segmentFileName, writeAll } from "./wal-files.ts";
import { decodeRecord, RecordType, type WalRecord } from "./wal-record.ts";

/** What reading one segment found. */
export interface SegmentScan {
  readonly recordCount: number;
  /** Bytes of whole, valid records from the start: where the file is cut when `torn`. */
  readonly validBytes: number;
  /** Highest slot voted in the segment (0 if none): the segment may go once a snapshot covers it. */
  readonly maxVoteSlot: Slot;
  /** The torn tail found (last segment only), or null. */
  readonly torn: { readonly offset: number; readonly reason: string } | null;
}

export function corruptRecord(path: string, offset: number, reason: string): ApusError {
  return new ApusError(
    "ERR_WAL_CORRUPT",
    `${path}: bad WAL record at byte offset ${offset} (${reason}); the log is damaged before its ` +
      "end, so this replica cannot trust what it promised. Remove the data directory to rejoin " +
      "as an empty replica; the others will catch it up (safe while a majority of replicas keep " +
      "their data)",
  );
}

/**
 * Decode every record of a segment, in order, handing each to `onRecord`.
 *
 * A crash in the middle of a write can leave the last segment ending in a partial record, a
 * record with a bad checksum, or zeros (the file grew before its data reached the disk): a torn
 * tail, reported and cut off by the caller. Only the last segment may have one, and only at its
 * end: a bad record followed by a valid one is damage, refused with ERR_WAL_CORRUPT. (A bad length
 * field hides where the next record starts; in the last segment it is taken for a torn tail.)
 */
export function scanSegment(
  path: string,
  bytes: Uint8Array,
  isLast: boolean,
  onRecord: (record: WalRecord, offset: number) => void,
): SegmentScan {
  let offset = 0;
  let recordCount = 0;
  let maxVoteSlot = 0;
  while (offset < bytes.byteLength) {
    const result = decodeRecord(bytes, offset);
    if (!result.ok) {
      const isTorn =
        isLast &&
        (result.claimedEnd === -1 ||
          result.claimedEnd === bytes.byteLength ||
          !decodeRecord(bytes, result.claimedEnd).ok);
      if (!isTorn) throw corruptRecord(path, offset, result.reason);
      return {
        recordCount,
        validBytes: offset,
        maxVoteSlot,
        torn: { offset, reason: result.reason },
      };
    }
    onRecord(result.record, offset);
    if (result.record.type === RecordType.Vote && result.record.vote.slot > maxVoteSlot) {
      maxVoteSlot = result.record.vote.slot;
    }
    recordCount++;
    offset = result.end;
  }
  return { recordCount, validBytes: offset, maxVoteSlot, torn: null };
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
  maxVoteSlot: Slot;

  private constructor(
    dir: string,
    firstSequence: number,
    handle: FileHandle | null,
    size: number,
    recordCount: number,
    maxVoteSlot: Slot,
  ) {
    this.dir = dir;
    this.firstSequence = firstSequence;
    this.name = segmentFileName(firstSequence);
    this.path = join(dir, this.name);
    this.handle = handle;
    this.size = size;
    this.recordCount = recordCount;
    this.maxVoteSlot = maxVoteSlot;
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
      scan.maxVoteSlot,
    );
  }

  /** Open the last segment found at recovery for appends, cutting off its torn tail if any. */
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
      if (fileBytes > scan.validBytes) {
        await handle.truncate(scan.validBytes);
        if (fsync) await handle.sync();
      }
      return new SegmentFile(
        dir,
        firstSequence,
        handle,
        scan.validBytes,
        scan.recordCount,
        scan.maxVoteSlot,
      );
    } catch (error) {
      throw ioError("reopening segment", path, error);
    }
  }

  get isOpen(): boolean {
    return this.handle !== null;
  }

  /** Append whole records at the end of the file (one writev, unless the kernel writes less). */
  async write(
    buffers: readonly Uint8Array[],
    byteCount: number,
    recordCount: number,
  ): Promise<void> {
    assert(this.handle !== null, "write to a closed segment");
    const written = await writeAll(this.handle, buffers, this.size);
    assert(written === byteCount, "segment write size mismatch");
    this.size += byteCount;
    this.recordCount += recordCount;
  }

  async datasync(): Promise<void> {
    assert(this.handle !== null, "sync of a closed segment");
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (handle !== null) await handle.close();
  }
}
