import { appendFile, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApusError } from "../../src/core/index.ts";
import { DurableImage } from "../../src/storage/index.ts";
import { RecordWriter } from "../../src/storage/wal-record.ts";
import { batch, openTestWal, plain, tempDir, vote } from "./helpers.ts";

const SEGMENT = "wal-0000000000000000.log";
/** RecordType.Sync: the first record of every group commit after a segment's first. */
const SYNC_TYPE = 6;

interface RecordAt {
  readonly offset: number;
  readonly end: number;
  readonly type: number;
}

/** Walk the length fields of an intact segment: u32 length | u32 crc | u8 type | body. */
function walk(bytes: Uint8Array): RecordAt[] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: RecordAt[] = [];
  for (let at = 0; at < view.byteLength; ) {
    const end = at + 8 + view.readUInt32LE(at);
    records.push({ offset: at, end, type: view[at + 8]! });
    at = end;
  }
  return records;
}

/** Where the last group commit's write began: the last sync record (or, without any, the last record). */
function lastCommitStart(records: readonly RecordAt[]): number {
  const syncs = records.filter((r) => r.type === SYNC_TYPE);
  return (syncs.at(-1) ?? records.at(-1)!).offset;
}

/** The fields of a record, as byte ranges relative to its start. */
function fields(record: RecordAt): [string, number, number][] {
  return [
    ["length", 0, 4],
    ["crc", 4, 8],
    ["type", 8, 9],
    ["body", 9, record.end - record.offset],
  ];
}

/**
 * Issue 7 §2: a torn tail can only be the end of the last segment that no completed fdatasync
 * covered, i.e. the last group commit's write. Damage to anything an intact later write proves
 * durable (a bad length field, two bad records in a row, a zeroed stretch) is refused with
 * ERR_WAL_CORRUPT naming the file and offset, never cut off as a torn tail: records that were
 * fsynced and acknowledged must not silently disappear.
 */
describe("WAL corruption is not a torn tail", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  const path = () => join(dir, SEGMENT);

  /**
   * Five fsynced group commits through the real API (promises, votes of one and several commands,
   * a chosen slot); `before` is the durable state before the last one.
   */
  async function writeFive(): Promise<{ whole: Buffer; before: unknown }> {
    const wal = await openTestWal(dir, { fsync: true });
    const image = new DurableImage();
    const batches = [
      batch({ promised: 257, accepted: [vote(1, 257, "set a 1")] }),
      batch({ accepted: [vote(2, 257, "set b 2", "set c 3")], chosenSlot: 1 }),
      batch({ accepted: [vote(3, 257, "x".repeat(40))] }),
      batch({ promised: 513, accepted: [vote(2, 513, "re-vote")], chosenSlot: 3 }),
      batch({ accepted: [vote(4, 513, "set d 4")] }),
    ];
    let before: unknown = null;
    for (const b of batches) {
      before = plain(image.read());
      wal.append(b);
      image.apply(b);
      await wal.flush();
    }
    await wal.close();
    return { whole: await readFile(path()), before };
  }

  async function expectRefused(offset: number, what: string): Promise<void> {
    const error = await openTestWal(dir).catch((e: unknown) => e);
    expect(error, what).toBeInstanceOf(ApusError);
    const { code, message } = error as ApusError;
    expect(code, what).toBe("ERR_WAL_CORRUPT");
    expect(message, what).toContain(`${path()}: bad WAL record at byte offset ${offset} (`);
    expect(message, what).toContain("--initial-cluster-state existing");
    expect(message, what).not.toMatch(/remove the data directory/i);
  }

  async function expectTorn(offset: number, state: unknown, what: string): Promise<void> {
    const warnings: string[] = [];
    const wal = await openTestWal(dir, {}, warnings);
    expect(plain(wal.recovered), what).toEqual(state);
    expect(wal.recoveryReport.torn?.offset, what).toBe(offset);
    expect(warnings, what).toHaveLength(1);
    expect(warnings[0], what).toContain(path());
    await wal.close();
    expect((await stat(path())).size, what).toBe(offset);
  }

  it("flips every byte of every field of every record: refused, or torn only in the last group commit", async () => {
    const { whole, before } = await writeFive();
    const records = walk(whole);
    const lastStart = lastCommitStart(records);
    expect(records.length).toBeGreaterThanOrEqual(10);
    expect(records.filter((r) => r.type === SYNC_TYPE)).toHaveLength(4);
    let refused = 0;
    let torn = 0;
    for (const [index, record] of records.entries()) {
      for (const [field, from, to] of fields(record)) {
        // 0x01 moves a length by one byte (into the next record); 0xff anywhere flips a whole byte.
        for (const mask of field === "length" ? [0x01, 0xff] : [0xff]) {
          for (let at = record.offset + from; at < record.offset + to; at++) {
            const damaged = Buffer.from(whole);
            damaged[at] = damaged[at]! ^ mask;
            await writeFile(path(), damaged);
            const what = `record ${index} at ${record.offset}, ${field} byte ${at} ^ ${mask}`;
            if (record.offset < lastStart) {
              await expectRefused(record.offset, what);
              refused++;
            } else {
              // Nothing later proves the last commit's fdatasync returned: a crash mid-write.
              await expectTorn(record.offset, before, what);
              torn++;
            }
          }
        }
      }
    }
    expect(refused).toBeGreaterThan(torn);
    expect(torn).toBeGreaterThan(0);
  });

  it("refuses two adjacent bad records in the middle, at the first one", async () => {
    const { whole } = await writeFive();
    const records = walk(whole);
    for (let k = 1; k + 2 < records.length - 2; k++) {
      const [first, second] = [records[k]!, records[k + 1]!];
      const damaged = Buffer.from(whole);
      damaged[first.offset + 3] = 0x7f; // length far past the end of the file
      damaged[second.end - 1] = damaged[second.end - 1]! ^ 0xff; // bad checksum
      await writeFile(path(), damaged);
      await expectRefused(first.offset, `records ${k} and ${k + 1}`);
    }
  });

  it("refuses a zeroed stretch in the middle (a lost sector), but not a zero-filled end", async () => {
    const { whole, before } = await writeFive();
    const records = walk(whole);
    const lastStart = lastCommitStart(records);
    const middle = records[3]!;
    const damaged = Buffer.from(whole);
    damaged.fill(0, middle.offset, middle.offset + 32);
    await writeFile(path(), damaged);
    await expectRefused(middle.offset, "zeroed middle");

    // The file grew but the last write never reached the disk: zeros over it, and past the end.
    const zeroedEnd = Buffer.from(whole);
    zeroedEnd.fill(0, lastStart);
    await writeFile(path(), zeroedEnd);
    await appendFile(path(), new Uint8Array(4096));
    await expectTorn(lastStart, before, "zeroed end");

    // Zeros preallocated after intact records: torn (nothing lost), and the WAL goes on.
    await writeFile(path(), whole);
    await appendFile(path(), new Uint8Array(8192));
    const wal = await openTestWal(dir, { fsync: true });
    expect(wal.recoveryReport.bytesTruncated).toBe(8192);
    wal.append(batch({ accepted: [vote(9, 513, "after the crash")] }));
    await wal.close();
    const reopened = await openTestWal(dir);
    expect(reopened.recovered.accepted.map((v) => v.slot)).toEqual([1, 2, 3, 4, 9]);
    expect(reopened.recoveryReport.torn).toBeNull();
    await reopened.close();
  });

  it("cuts the last record at every byte offset inside it: torn, the records before it kept", async () => {
    const { whole, before } = await writeFive();
    const records = walk(whole);
    const last = records.at(-1)!;
    for (let cut = last.offset + 1; cut < whole.byteLength; cut++) {
      await writeFile(path(), whole.subarray(0, cut));
      await expectTorn(last.offset, before, `cut at ${cut}`);
    }
  });

  it("treats a last group commit whose pages reached the disk out of order as torn", async () => {
    const wal = await openTestWal(dir, { fsync: true });
    const image = new DurableImage();
    const first = batch({ promised: 257, accepted: [vote(1, 257, "set a 1")] });
    wal.append(first);
    image.apply(first);
    await wal.flush();
    const before = plain(image.read());
    // One group commit of several records; the crash kept its later sectors but not its first.
    for (let slot = 2; slot <= 6; slot++) wal.append(batch({ accepted: [vote(slot, 257, "v")] }));
    await wal.close();
    const whole = await readFile(path());
    const records = walk(whole);
    const lastStart = lastCommitStart(records);
    expect(records.at(-1)!.offset).toBeGreaterThan(lastStart);
    const damaged = Buffer.from(whole);
    damaged.fill(0, lastStart, records.at(-3)!.offset);
    await writeFile(path(), damaged);
    await expectTorn(lastStart, before, "out of order");
  });

  it("refuses a bad length field in the middle that hides where the next record starts", async () => {
    // The case the old rule cut off as a torn tail, losing every acknowledged record after it.
    const { whole } = await writeFive();
    const records = walk(whole);
    const middle = records[2]!;
    const damaged = Buffer.from(whole);
    damaged.writeUInt32LE(0xffff_ffff, middle.offset);
    await writeFile(path(), damaged);
    await expectRefused(middle.offset, "length out of range");
    damaged.writeUInt32LE(whole.byteLength * 2, middle.offset);
    await writeFile(path(), damaged);
    await expectRefused(middle.offset, "length past the end of the file");
  });

  it("refuses an intact sync record that names another offset or segment", async () => {
    // Only a sync record at the offset it names, in its own segment, proves what lies before it.
    const { whole } = await writeFive();
    const sync = walk(whole).filter((r) => r.type === SYNC_TYPE)[1]!;
    for (const [firstSequence, syncedBytes] of [
      [0, sync.offset - 1],
      [0, sync.offset + 1],
      [1, sync.offset],
    ] as const) {
      const writer = new RecordWriter(sync.end - sync.offset);
      writer.sync({ firstSequence, syncedBytes });
      const damaged = Buffer.from(whole);
      damaged.set(writer.finish(), sync.offset);
      await writeFile(path(), damaged);
      await expectRefused(sync.offset, `sync ${firstSequence} ${syncedBytes}`);
    }
  });
});
