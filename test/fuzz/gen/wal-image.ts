/**
 * Valid WAL data directories in memory (src/storage/wal-record.ts, wal-snapshot.ts, wal-meta.ts):
 * segments of records, each behind its segment header and with sync records at their own offsets,
 * a snapshot file, and meta.json; plus `fixChecksums`, which recomputes every record's crc after
 * the bytes were mutated, so that edits of record bodies get past the checksum and reach the
 * body decoder (structure-aware mutation).
 */
import { crc32 } from "node:zlib";
import fc from "fast-check";
import type { AcceptedEntry, DurableState, Snapshot } from "../../../src/core/index.ts";
import {
  RecordWriter,
  SEGMENT_HEADER_RECORD_SIZE,
  SYNC_RECORD_SIZE,
  U64_RECORD_SIZE,
  voteRecordSize,
} from "../../../src/storage/wal-record.ts";

export type RecordSpec =
  | { readonly type: "promised"; readonly ballot: number }
  | { readonly type: "vote"; readonly vote: AcceptedEntry }
  | { readonly type: "chosen"; readonly slot: number }
  | { readonly type: "snapshot"; readonly slot: number }
  | { readonly type: "sync" };

export interface SegmentSpec {
  readonly firstSequence: number;
  /** What the segment header restates. */
  readonly promised: number;
  readonly chosenSlot: number;
  readonly snapshotSlot: number;
  /** The records after the header. */
  readonly records: readonly RecordSpec[];
}

export interface WalImage {
  readonly segments: readonly SegmentSpec[];
  readonly snapshot: Snapshot | null;
}

const small = fc.nat(40);
const slot = fc.integer({ min: 1, max: 40 });

const vote: fc.Arbitrary<AcceptedEntry> = fc.record({
  slot,
  ballot: small,
  batch: fc.record({
    stampMs: fc.nat(),
    commands: fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 3 }),
  }),
});

/** Records of a segment; `snapshotSlot` bounds the snapshot records (the file must reach them). */
function recordsArb(snapshotSlot: number): fc.Arbitrary<RecordSpec[]> {
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: vote.map((v): RecordSpec => ({ type: "vote", vote: v })) },
      { weight: 1, arbitrary: small.map((b): RecordSpec => ({ type: "promised", ballot: b })) },
      { weight: 1, arbitrary: small.map((s): RecordSpec => ({ type: "chosen", slot: s })) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 0, max: snapshotSlot })
          .map((s): RecordSpec => ({ type: "snapshot", slot: s })),
      },
      { weight: 1, arbitrary: fc.constant<RecordSpec>({ type: "sync" }) },
    ),
    { maxLength: 8 },
  );
}

export const walImageArb: fc.Arbitrary<WalImage> = fc
  .tuple(
    fc.option(fc.record({ slot, data: fc.uint8Array({ maxLength: 32 }) }), { nil: null }),
    fc.integer({ min: 1, max: 2 }),
    fc.nat(1000),
  )
  .chain(([snapshot, segmentCount, firstSequence]) => {
    const snapshotSlot = snapshot?.slot ?? 0;
    const header = fc.record({
      promised: small,
      chosenSlot: small,
      snapshotSlot: fc.integer({ min: 0, max: snapshotSlot }),
      records: recordsArb(snapshotSlot),
    });
    return fc.array(header, { minLength: segmentCount, maxLength: segmentCount }).map((specs) => {
      let sequence = firstSequence;
      const segments = specs.map((spec): SegmentSpec => {
        const segment = { ...spec, firstSequence: sequence };
        sequence += 1 + spec.records.length;
        return segment;
      });
      return { segments, snapshot };
    });
  });

function recordSize(spec: RecordSpec): number {
  if (spec.type === "vote") return voteRecordSize(spec.vote.batch);
  return spec.type === "sync" ? SYNC_RECORD_SIZE : U64_RECORD_SIZE;
}

/** The segment file's bytes: its header record, then each record; a sync names its own offset. */
export function encodeSegment(segment: SegmentSpec): Buffer {
  const parts: Uint8Array[] = [];
  const header = new RecordWriter(SEGMENT_HEADER_RECORD_SIZE);
  header.segmentHeader(segment);
  parts.push(header.finish());
  let offset = SEGMENT_HEADER_RECORD_SIZE;
  for (const spec of segment.records) {
    const writer = new RecordWriter(recordSize(spec));
    if (spec.type === "vote") writer.vote(spec.vote);
    else if (spec.type === "promised") writer.promised(spec.ballot);
    else if (spec.type === "chosen") writer.chosenSlot(spec.slot);
    else if (spec.type === "snapshot") writer.snapshot(spec.slot);
    else writer.sync({ firstSequence: segment.firstSequence, syncedBytes: offset });
    const bytes = writer.finish();
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  return Buffer.concat(parts);
}

/** A snapshot file's bytes (wal-snapshot.ts layout). */
export function encodeSnapshotFile(snapshot: Snapshot): Buffer {
  const header = Buffer.alloc(20);
  header.writeUInt32LE(0x314e5341, 0);
  header.writeUInt32LE(snapshot.slot % 2 ** 32, 8);
  header.writeUInt32LE(Math.floor(snapshot.slot / 2 ** 32), 12);
  header.writeUInt32LE(snapshot.data.byteLength, 16);
  header.writeUInt32LE(crc32(snapshot.data, crc32(header.subarray(8))), 4);
  return Buffer.concat([header, snapshot.data]);
}

/**
 * Recomputes the crc of each record found by walking the length fields from the start, as far as
 * they lead inside the bytes. Edits the bytes in place and returns them.
 */
export function fixChecksums(bytes: Buffer): Buffer {
  let offset = 0;
  while (offset + 9 <= bytes.length) {
    const length = bytes.readUInt32LE(offset);
    const end = offset + 8 + length;
    if (length < 1 || end > bytes.length) break;
    bytes.writeUInt32LE(crc32(bytes.subarray(offset + 8, end)), offset + 4);
    offset = end;
  }
  return bytes;
}

/** The state recovery must rebuild from a valid image (wal-recovery.ts Replay, restated). */
export function expectedState(image: WalImage): DurableState {
  const snapshotSlot = image.snapshot?.slot ?? 0;
  let promised = 0;
  let chosenSlot = 0;
  const votes = new Map<number, AcceptedEntry>();
  for (const segment of image.segments) {
    promised = segment.promised;
    chosenSlot = Math.max(chosenSlot, segment.chosenSlot);
    for (const spec of segment.records) {
      if (spec.type === "promised") promised = spec.ballot;
      if (spec.type === "chosen") chosenSlot = Math.max(chosenSlot, spec.slot);
      if (spec.type === "vote" && spec.vote.slot > snapshotSlot)
        votes.set(spec.vote.slot, spec.vote);
    }
  }
  return {
    promised,
    accepted: [...votes.values()].sort((a, b) => a.slot - b.slot),
    snapshot: image.snapshot,
    chosenSlot: Math.max(chosenSlot, snapshotSlot),
  };
}
