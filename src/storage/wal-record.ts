import { crc32 } from "node:zlib";
import {
  type AcceptedEntry,
  assert,
  type Ballot,
  type Batch,
  decodeMembershipChange,
  encodeMembershipChange,
  type Slot,
} from "../core/index.ts";

/**
 * The WAL record codec. A segment file is a sequence of records, little-endian throughout:
 *
 *   record         u32 length | u32 crc32 | u8 type | body
 *                  length = 1 + body size (the bytes after the crc); crc32 (zlib) covers type + body
 *   u64            a safe integer as two u32 (low, high); high must be < 2^21
 *   1 promised     u64 ballot
 *   2 vote         u64 slot | u64 ballot | u64 stampMs | u32 commandCount
 *                  | commandCount × (u32 length | bytes) | [u32 length | membership change]
 *                  (the top bit of commandCount says a change follows, in the wire encoding)
 *   3 chosenSlot   u64 slot
 *   4 segmentHeader u64 firstSequence | u64 promised | u64 chosenSlot | u64 snapshotSlot
 *                  the first record of every segment: restates the durable promise, chosen slot
 *                  and snapshot slot as of the segment's start, so older segments can be deleted
 *   5 snapshot     u64 slot: snapshot-<slot>.bin was durable before this record was written.
 *                  Segments are deleted only after it is durable, so recovery can tell a missing
 *                  snapshot file (damage) from one never written.
 *   6 sync         u64 firstSequence | u64 syncedBytes
 *                  the first record of every group commit written to a segment that already holds
 *                  records: syncedBytes is the segment's size when that write began, every byte of
 *                  which an fdatasync had made durable; the record sits at byte offset syncedBytes
 *                  of the segment that firstSequence names. Found intact, it proves the bytes
 *                  before it durable, so recovery can tell damage from a torn tail (wal-segment.ts)
 *
 * Snapshot data is not in records: it lives in its own files (wal-snapshot.ts).
 * Decode checks every length against the bytes actually left before it allocates, and verifies
 * the crc before it trusts the body.
 */
export const RecordType = {
  Promised: 1,
  Vote: 2,
  ChosenSlot: 3,
  SegmentHeader: 4,
  Snapshot: 5,
  Sync: 6,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_HEADER_SIZE = 8;
const LENGTH_OFFSET = 0;
const CRC_OFFSET = 4;
const TYPE_OFFSET = 8;
const U32_SIZE = 4;
const U64_SIZE = 8;
const TWO_32 = 4294967296;
/** High word limit that keeps a u64 a safe integer (2^53 = 2^21 * 2^32). */
const HIGH_WORD_LIMIT = 2097152;
const VOTE_FIXED_SIZE = 3 * U64_SIZE + U32_SIZE;
const SEGMENT_HEADER_BODY_SIZE = 4 * U64_SIZE;
const SYNC_BODY_SIZE = 2 * U64_SIZE;

export const WAL_RECORD_LIMITS = {
  /** Largest record (type + body). Bounds what recovery allocates per record and one vote's batch. */
  recordBytesMax: 256 * 1024 * 1024,
  /** Commands in one vote. */
  voteCommandsMax: 1 << 20,
} as const;

export interface SegmentHeader {
  readonly firstSequence: number;
  readonly promised: Ballot;
  readonly chosenSlot: Slot;
  readonly snapshotSlot: Slot;
}

export type WalRecord =
  | { readonly type: typeof RecordType.Promised; readonly ballot: Ballot }
  | { readonly type: typeof RecordType.Vote; readonly vote: AcceptedEntry }
  | { readonly type: typeof RecordType.ChosenSlot; readonly slot: Slot }
  | { readonly type: typeof RecordType.SegmentHeader; readonly header: SegmentHeader }
  | { readonly type: typeof RecordType.Snapshot; readonly slot: Slot }
  | { readonly type: typeof RecordType.Sync; readonly sync: SyncMark };

/** What a sync record says: see RecordType.Sync. */
export interface SyncMark {
  readonly firstSequence: number;
  readonly syncedBytes: number;
}

// ---- encode -----------------------------------------------------------------------------------

export function voteRecordSize(batch: Batch): number {
  let size = RECORD_HEADER_SIZE + 1 + VOTE_FIXED_SIZE;
  for (const command of batch.commands) size += U32_SIZE + command.byteLength;
  if (batch.change !== undefined)
    size += U32_SIZE + encodeMembershipChange(batch.change).byteLength;
  return size;
}

/** In a vote's command count: a membership change follows the commands (rare: encoded twice). */
const CHANGE_FLAG = 0x80000000;

export const U64_RECORD_SIZE = RECORD_HEADER_SIZE + 1 + U64_SIZE;
export const SEGMENT_HEADER_RECORD_SIZE = RECORD_HEADER_SIZE + 1 + SEGMENT_HEADER_BODY_SIZE;
export const SYNC_RECORD_SIZE = RECORD_HEADER_SIZE + 1 + SYNC_BODY_SIZE;

/** Writes records into one preallocated buffer; `finish()` asserts it was filled exactly. */
export class RecordWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private offset = 0;
  /** Start of the record being written (its length and crc are filled in by `end`). */
  private recordStart = -1;
  recordCount = 0;

  constructor(size: number) {
    // Every byte is overwritten below (finish() checks), so an uninitialised buffer is safe.
    this.bytes = Buffer.allocUnsafe(size);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  promised(ballot: Ballot): void {
    this.begin(RecordType.Promised);
    this.u64(ballot);
    this.end();
  }

  chosenSlot(slot: Slot): void {
    this.begin(RecordType.ChosenSlot);
    this.u64(slot);
    this.end();
  }

  snapshot(slot: Slot): void {
    this.begin(RecordType.Snapshot);
    this.u64(slot);
    this.end();
  }

  segmentHeader(header: SegmentHeader): void {
    this.begin(RecordType.SegmentHeader);
    this.u64(header.firstSequence);
    this.u64(header.promised);
    this.u64(header.chosenSlot);
    this.u64(header.snapshotSlot);
    this.end();
  }

  sync(mark: SyncMark): void {
    this.begin(RecordType.Sync);
    this.u64(mark.firstSequence);
    this.u64(mark.syncedBytes);
    this.end();
  }

  vote(vote: AcceptedEntry): void {
    assert(
      vote.batch.commands.length <= WAL_RECORD_LIMITS.voteCommandsMax,
      "vote exceeds WAL_RECORD_LIMITS.voteCommandsMax",
    );
    this.begin(RecordType.Vote);
    this.u64(vote.slot);
    this.u64(vote.ballot);
    this.u64(vote.batch.stampMs);
    const change =
      vote.batch.change === undefined ? null : encodeMembershipChange(vote.batch.change);
    this.u32(vote.batch.commands.length | (change !== null ? CHANGE_FLAG : 0));
    for (const command of vote.batch.commands) {
      this.u32(command.byteLength);
      this.bytes.set(command, this.offset);
      this.offset += command.byteLength;
    }
    if (change !== null) {
      this.u32(change.byteLength);
      this.bytes.set(change, this.offset);
      this.offset += change.byteLength;
    }
    this.end();
  }

  finish(): Uint8Array {
    assert(this.recordStart === -1, "record left open");
    assert(this.offset === this.bytes.byteLength, "record buffer size mismatch");
    return this.bytes;
  }

  private begin(type: RecordType): void {
    assert(this.recordStart === -1, "record already open");
    this.recordStart = this.offset;
    this.offset += RECORD_HEADER_SIZE;
    this.view.setUint8(this.offset, type);
    this.offset += 1;
  }

  private end(): void {
    const start = this.recordStart;
    const length = this.offset - start - RECORD_HEADER_SIZE;
    assert(length <= WAL_RECORD_LIMITS.recordBytesMax, "record exceeds recordBytesMax");
    this.view.setUint32(start + LENGTH_OFFSET, length, true);
    const crc = crc32(this.bytes.subarray(start + TYPE_OFFSET, this.offset));
    this.view.setUint32(start + CRC_OFFSET, crc, true);
    this.recordStart = -1;
    this.recordCount++;
  }

  private u32(value: number): void {
    this.view.setUint32(this.offset, value, true);
    this.offset += U32_SIZE;
  }

  private u64(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, "u64 field is not a safe integer");
    this.view.setUint32(this.offset, value % TWO_32, true);
    this.view.setUint32(this.offset + U32_SIZE, Math.floor(value / TWO_32), true);
    this.offset += U64_SIZE;
  }
}

// ---- decode -----------------------------------------------------------------------------------

export type DecodeRecordResult =
  | { readonly ok: true; readonly record: WalRecord; readonly end: number }
  | {
      readonly ok: false;
      readonly reason: string;
      /**
       * Where the bad record claims to end, or -1 when that is unknown (header cut short, length
       * out of range) or past the end of the bytes: what torn-tail detection looks at.
       */
      readonly claimedEnd: number;
    };

/** Thrown only inside this module and turned into a DecodeRecordResult. */
class BodyError {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/**
 * Decode the record at `offset`. Never throws for bad bytes. Vote commands are views into a
 * private copy of the record body, so they do not pin `bytes` (a whole segment read at recovery).
 */
export function decodeRecord(bytes: Uint8Array, offset: number): DecodeRecordResult {
  const left = bytes.byteLength - offset;
  if (left < RECORD_HEADER_SIZE + 1) {
    return { ok: false, reason: `record header cut short (${left} bytes left)`, claimedEnd: -1 };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, left);
  const length = view.getUint32(LENGTH_OFFSET, true);
  if (length < 1 || length > WAL_RECORD_LIMITS.recordBytesMax) {
    return { ok: false, reason: `record length ${length} out of range`, claimedEnd: -1 };
  }
  const end = offset + RECORD_HEADER_SIZE + length;
  if (end > bytes.byteLength) {
    return {
      ok: false,
      reason: `record of ${length} bytes runs past the end of the file (${left - RECORD_HEADER_SIZE} left)`,
      claimedEnd: -1,
    };
  }
  const typeAndBody = bytes.subarray(offset + TYPE_OFFSET, end);
  const crc = view.getUint32(CRC_OFFSET, true);
  if (crc32(typeAndBody) !== crc) {
    return { ok: false, reason: "record checksum mismatch", claimedEnd: end };
  }
  try {
    return { ok: true, record: decodeBody(typeAndBody), end };
  } catch (error) {
    if (error instanceof BodyError) return { ok: false, reason: error.reason, claimedEnd: end };
    throw error;
  }
}

/**
 * Whether an intact sync record that belongs at `offset` of the segment starting at
 * `firstSequence` sits there: the fixed length, type and body first (cheap enough to try at every
 * byte offset of a segment), then the crc.
 */
export function isSyncRecordAt(bytes: Uint8Array, offset: number, firstSequence: number): boolean {
  if (offset < 0 || bytes.byteLength - offset < SYNC_RECORD_SIZE) return false;
  // Plain byte reads first: most offsets fail here, before a DataView is made.
  if (bytes[offset + TYPE_OFFSET] !== RecordType.Sync) return false;
  if (bytes[offset + LENGTH_OFFSET] !== 1 + SYNC_BODY_SIZE) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, SYNC_RECORD_SIZE);
  if (view.getUint32(LENGTH_OFFSET, true) !== 1 + SYNC_BODY_SIZE) return false;
  const bodyOffset = TYPE_OFFSET + 1;
  if (readU64(view, bodyOffset) !== firstSequence) return false;
  if (readU64(view, bodyOffset + U64_SIZE) !== offset) return false;
  const typeAndBody = bytes.subarray(offset + TYPE_OFFSET, offset + SYNC_RECORD_SIZE);
  return crc32(typeAndBody) === view.getUint32(CRC_OFFSET, true);
}

/** A u64 as two little-endian u32 (may be unsafe: only compared with safe integers). */
function readU64(view: DataView, at: number): number {
  return view.getUint32(at + U32_SIZE, true) * TWO_32 + view.getUint32(at, true);
}

function decodeBody(typeAndBody: Uint8Array): WalRecord {
  const type = typeAndBody[0];
  const r = new BodyReader(typeAndBody.subarray(1));
  let record: WalRecord;
  switch (type) {
    case RecordType.Promised:
      record = { type, ballot: r.u64("ballot") };
      break;
    case RecordType.ChosenSlot:
      record = { type, slot: r.u64("chosenSlot") };
      break;
    case RecordType.Snapshot:
      record = { type, slot: r.u64("snapshot slot") };
      break;
    case RecordType.SegmentHeader:
      record = {
        type,
        header: {
          firstSequence: r.u64("firstSequence"),
          promised: r.u64("promised"),
          chosenSlot: r.u64("chosenSlot"),
          snapshotSlot: r.u64("snapshotSlot"),
        },
      };
      break;
    case RecordType.Vote:
      record = { type, vote: decodeVote(r) };
      break;
    case RecordType.Sync:
      record = {
        type,
        sync: { firstSequence: r.u64("firstSequence"), syncedBytes: r.u64("syncedBytes") },
      };
      break;
    default:
      throw new BodyError(`unknown record type ${type}`);
  }
  if (r.remaining !== 0) throw new BodyError(`${r.remaining} bytes after the record body`);
  return record;
}

function decodeVote(r: BodyReader): AcceptedEntry {
  const slot = r.u64("slot");
  if (slot < 1) throw new BodyError("vote slot must be >= 1");
  const ballot = r.u64("ballot");
  const stampMs = r.u64("stampMs");
  const word = r.u32("command count");
  const hasChange = word >= CHANGE_FLAG;
  const count = hasChange ? word - CHANGE_FLAG : word;
  if (count > WAL_RECORD_LIMITS.voteCommandsMax || count * U32_SIZE > r.remaining) {
    throw new BodyError(`command count ${count} does not fit the record`);
  }
  r.copyRest();
  const commands: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) commands[i] = r.raw(r.u32("command length"), "command");
  if (!hasChange) return { slot, ballot, batch: { stampMs, commands } };
  const decoded = decodeMembershipChange(r.raw(r.u32("change length"), "membership change"));
  if (!decoded.ok) throw new BodyError(`membership change: ${decoded.reason}`);
  return { slot, ballot, batch: { stampMs, commands, change: decoded.change } };
}

class BodyReader {
  private bytes: Uint8Array;
  private view: DataView;
  private offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  /** Continue on a copy of what is left, so views handed out own their memory. */
  copyRest(): void {
    // new Uint8Array(view) copies; Buffer#slice would not.
    this.bytes = new Uint8Array(this.bytes.subarray(this.offset));
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.offset = 0;
  }

  u32(what: string): number {
    this.need(U32_SIZE, what);
    const value = this.view.getUint32(this.offset, true);
    this.offset += U32_SIZE;
    return value;
  }

  u64(what: string): number {
    this.need(U64_SIZE, what);
    const low = this.view.getUint32(this.offset, true);
    const high = this.view.getUint32(this.offset + U32_SIZE, true);
    if (high >= HIGH_WORD_LIMIT) throw new BodyError(`${what} is not a safe integer`);
    this.offset += U64_SIZE;
    return high * TWO_32 + low;
  }

  raw(length: number, what: string): Uint8Array {
    this.need(length, what);
    const data = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return data;
  }

  private need(size: number, what: string): void {
    if (size > this.remaining) {
      throw new BodyError(`${what} needs ${size} bytes, ${this.remaining} left in the record`);
    }
  }
}
