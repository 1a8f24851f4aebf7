import { appendFile, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApusError } from "../../src/core/index.ts";
import { DurableImage } from "../../src/storage/index.ts";
import { batch, openTestWal, plain, tempDir, vote } from "./helpers.ts";

const SEGMENT = "wal-0000000000000000.log";

/**
 * Torn tails (a crash in the middle of the last write) are cut off; damage anywhere else is
 * refused (ERR_WAL_CORRUPT), because skipping it could forget a promise or a vote. Every field of
 * every record, and bad length fields, in wal-corruption.test.ts.
 */
describe("WAL torn tail and corruption", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  /** Four flushes of one vote each; `before[i]` is what was durable before flush i. */
  async function writeFour(): Promise<{ before: unknown[] }> {
    const wal = await openTestWal(dir);
    const before: unknown[] = [];
    const image = new DurableImage();
    for (let slot = 1; slot <= 4; slot++) {
      before.push(plain(image.read()));
      const b = batch({ accepted: [vote(slot, 257, `command ${slot}`.repeat(slot))] });
      wal.append(b);
      image.apply(b);
      await wal.flush();
    }
    await wal.close();
    return { before };
  }

  async function recordOffsets(): Promise<number[]> {
    // Walk the length fields: u32 length | u32 crc | type+body(length).
    const bytes = await readFile(join(dir, SEGMENT));
    const offsets: number[] = [];
    for (let at = 0; at < bytes.byteLength; at += 8 + bytes.readUInt32LE(at)) offsets.push(at);
    return offsets;
  }

  it("cuts the last record off at every byte offset inside it, keeping every earlier record", async () => {
    const { before } = await writeFour();
    const offsets = await recordOffsets();
    expect(offsets).toHaveLength(8); // header + vote, then 3 × (sync record + vote)
    const whole = await readFile(join(dir, SEGMENT));
    const lastStart = offsets[7]!;
    const expected = before[3];
    for (let cut = lastStart + 1; cut < whole.byteLength; cut++) {
      await writeFile(join(dir, SEGMENT), whole.subarray(0, cut));
      const warnings: string[] = [];
      const wal = await openTestWal(dir, {}, warnings);
      expect(plain(wal.recovered)).toEqual(expected);
      expect(wal.recoveryReport.bytesTruncated).toBe(cut - lastStart);
      expect(wal.recoveryReport.torn?.offset).toBe(lastStart);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(SEGMENT);
      await wal.close();
      expect((await stat(join(dir, SEGMENT))).size).toBe(lastStart);
    }
  });

  it("appends after the cut, and recovers the new writes", async () => {
    await writeFour();
    const offsets = await recordOffsets();
    const whole = await readFile(join(dir, SEGMENT));
    await writeFile(join(dir, SEGMENT), whole.subarray(0, offsets.at(-1)! + 5));
    const wal = await openTestWal(dir);
    wal.append(batch({ accepted: [vote(9, 513, "after the crash")] }));
    await wal.close();
    const reopened = await openTestWal(dir);
    expect(reopened.recovered.accepted.map((v) => v.slot)).toEqual([1, 2, 3, 9]);
    expect(reopened.recoveryReport.bytesTruncated).toBe(0);
    await reopened.close();
  });

  it("treats a last record with a bad checksum, or a zero-filled tail, as torn", async () => {
    const { before } = await writeFour();
    const offsets = await recordOffsets();
    const whole = await readFile(join(dir, SEGMENT));
    const flipped = Buffer.from(whole);
    const last = offsets.at(-1)!;
    flipped[last + 12] = flipped[last + 12]! ^ 0x40;
    await writeFile(join(dir, SEGMENT), flipped);
    let wal = await openTestWal(dir);
    expect(plain(wal.recovered)).toEqual(before[3]);
    await wal.close();

    // The file grew but its data never reached the disk: zeros where records should be.
    await appendFile(join(dir, SEGMENT), new Uint8Array(4096));
    wal = await openTestWal(dir);
    expect(wal.recovered.accepted.map((v) => v.slot)).toEqual([1, 2, 3]);
    expect(wal.recoveryReport.bytesTruncated).toBe(4096);
    await wal.close();
  });

  it("refuses a flipped byte in a middle record, naming the file and the byte offset", async () => {
    await writeFour();
    const offsets = await recordOffsets();
    const whole = await readFile(join(dir, SEGMENT));
    // Every byte of the vote for slot 2 (record 3), its length field included.
    const [start, end] = [offsets[3]!, offsets[4]!];
    for (let at = start; at < end; at++) {
      const damaged = Buffer.from(whole);
      damaged[at] = damaged[at]! ^ 0x01;
      await writeFile(join(dir, SEGMENT), damaged);
      const error = await openTestWal(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApusError);
      expect((error as ApusError).code).toBe("ERR_WAL_CORRUPT");
      expect((error as ApusError).message).toContain(join(dir, SEGMENT));
      expect((error as ApusError).message).toContain(`byte offset ${start}`);
      expect((error as ApusError).message).toContain("--initial-cluster-state existing");
      expect((error as ApusError).message).not.toMatch(/remove the data directory/i);
    }
    // The refusal released the lock: the intact file opens again.
    await writeFile(join(dir, SEGMENT), whole);
    await (await openTestWal(dir)).close();
  });

  it("refuses any bad record in a segment that is not the last, even its last record", async () => {
    const wal = await openTestWal(dir, { segmentBytesMax: 4096 });
    for (let slot = 1; slot <= 20; slot++) {
      wal.append(batch({ accepted: [vote(slot, 257, "x".repeat(400))] }));
      await wal.flush();
    }
    await wal.close();
    expect(wal.stats().segmentCount).toBeGreaterThan(1);
    const bytes = await readFile(join(dir, SEGMENT));
    bytes[bytes.byteLength - 1] = bytes[bytes.byteLength - 1]! ^ 0xff;
    await writeFile(join(dir, SEGMENT), bytes);
    await expect(openTestWal(dir)).rejects.toMatchObject({ code: "ERR_WAL_CORRUPT" });
    await writeFile(join(dir, SEGMENT), bytes.subarray(0, bytes.byteLength - 3));
    await expect(openTestWal(dir)).rejects.toThrow(
      /wal-0000000000000000\.log: bad WAL record at byte offset/,
    );
  });
});
