/**
 * The WAL record decoder and segment scan (src/storage/wal-record.ts decodeRecord,
 * src/storage/wal-segment.ts scanSegment), in memory: a segment's bytes mutated, with or without
 * the checksums recomputed, scanned as the last segment (torn tails allowed) or an older one.
 */
import fc from "fast-check";
import { StorageError } from "../../../src/storage/storage-errors.ts";
import {
  RecordType,
  RecordWriter,
  SEGMENT_HEADER_RECORD_SIZE,
  SYNC_RECORD_SIZE,
  U64_RECORD_SIZE,
  voteRecordSize,
  type WalRecord,
} from "../../../src/storage/wal-record.ts";
import { scanSegment } from "../../../src/storage/wal-segment.ts";
import { encodeSegment, fixChecksums, type SegmentSpec, walImageArb } from "../gen/wal-image.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, hex, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

/** A decoded record, encoded again. */
export function encodeRecord(record: WalRecord): Uint8Array {
  switch (record.type) {
    case RecordType.Promised: {
      const w = new RecordWriter(U64_RECORD_SIZE);
      w.promised(record.ballot);
      return w.finish();
    }
    case RecordType.ChosenSlot: {
      const w = new RecordWriter(U64_RECORD_SIZE);
      w.chosenSlot(record.slot);
      return w.finish();
    }
    case RecordType.Snapshot: {
      const w = new RecordWriter(U64_RECORD_SIZE);
      w.snapshot(record.slot);
      return w.finish();
    }
    case RecordType.SegmentHeader: {
      const w = new RecordWriter(SEGMENT_HEADER_RECORD_SIZE);
      w.segmentHeader(record.header);
      return w.finish();
    }
    case RecordType.Sync: {
      const w = new RecordWriter(SYNC_RECORD_SIZE);
      w.sync(record.sync);
      return w.finish();
    }
    case RecordType.Vote: {
      const w = new RecordWriter(voteRecordSize(record.vote.batch));
      w.vote(record.vote);
      return w.finish();
    }
  }
}

export function isCorruptError(error: unknown): boolean {
  return error instanceof StorageError && error.code === "ERR_WAL_CORRUPT";
}

const segmentArb: fc.Arbitrary<SegmentSpec> = walImageArb.map((image) => image.segments[0]!);

export const walSegmentTarget = syncTarget({
  name: "wal-segment",
  summary: [
    "scanSegment/decodeRecord over mutated segments (checksums recomputed or not), last or older",
    "throws only StorageError ERR_WAL_CORRUPT; an older segment is never cut, a torn tail only at the end",
    "every record handed on re-encodes to the bytes at its offset (canonical, nothing misread)",
    "valid segments give back exactly their records",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<SegmentSpec>(segmentArb, encodeSegment, 512),
    fixCrcs: fc.boolean(),
    isLast: fc.boolean(),
  }),
  check: ({ input, fixCrcs, isLast }) => {
    const bytes = fixCrcs ? fixChecksums(Buffer.from(input.bytes)) : input.bytes;
    const firstSequence = input.value?.firstSequence ?? bytes.length % 7;
    const seen: { record: WalRecord; offset: number }[] = [];
    const result = onlyDocumentedErrors(
      () =>
        scanSegment("segment", bytes, isLast, firstSequence, (record, offset) =>
          seen.push({ record, offset }),
        ),
      isCorruptError,
      "scanSegment",
    );
    let previousEnd = 0;
    for (const { record, offset } of seen) {
      check(offset === previousEnd, "records are handed on in order, back to back");
      const again = encodeRecord(record);
      const stored = bytes.subarray(offset, offset + again.byteLength);
      check(
        Buffer.compare(Buffer.from(again), stored) === 0,
        `record at ${offset} misread: ${hex(stored)}`,
      );
      previousEnd = offset + again.byteLength;
    }
    if (!result.ok) {
      tally(`${input.origin}: ERR_WAL_CORRUPT`);
      check(input.origin !== "valid", "a valid segment refused");
      return;
    }
    const scan = result.value;
    tally(`${input.origin}: ${scan.torn === null ? "clean" : "torn tail"}`);
    check(scan.recordCount === seen.length && scan.validBytes === previousEnd, "scan totals");
    check(isLast || scan.torn === null, "only the last segment has a torn tail");
    check(
      (scan.torn === null) === (scan.validBytes === bytes.length),
      "torn exactly when cut short",
    );
    if (input.value !== undefined) {
      check(
        scan.torn === null && seen.length === 1 + input.value.records.length,
        "valid round-trip",
      );
    }
  },
});
