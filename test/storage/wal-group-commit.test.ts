import { rm } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableImage } from "../../src/storage/index.ts";
import { batch, openTestWal, plain, tempDir, vote } from "./helpers.ts";

describe("WAL group commit", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("coalesces flush calls made while an fsync is in flight into one more fsync", async () => {
    const wal = await openTestWal(dir, { fsync: true });
    const image = new DurableImage();
    const flushes: Promise<void>[] = [];
    const callCount = 50;
    for (let i = 1; i <= callCount; i++) {
      const b = batch({ accepted: [vote(i, 257, `command ${i}`)] });
      wal.append(b);
      image.apply(b);
      flushes.push(wal.flush()); // the first starts a commit; the other 49 share the next one
    }
    await Promise.all(flushes);
    expect(wal.stats().fsyncCount).toBe(2);
    expect(wal.stats().fsyncCount).toBeLessThan(callCount);
    // + the segment header (first commit) and the sync record that starts the second
    expect(wal.stats().recordsWritten).toBe(callCount + 2);
    await wal.close();
    const reopened = await openTestWal(dir);
    expect(plain(reopened.recovered)).toEqual(plain(image.read()));
    await reopened.close();
  });

  it("resolves a flush only after the batches appended before it are written", async () => {
    const wal = await openTestWal(dir, { fsync: true });
    wal.append(batch({ accepted: [vote(1, 257, "a")] }));
    const first = wal.flush();
    wal.append(batch({ accepted: [vote(2, 257, "b")] })); // after `first` started: not covered by it
    await first;
    expect(wal.stats().recordsWritten).toBe(2); // the segment header + vote 1
    await wal.flush();
    expect(wal.stats().recordsWritten).toBe(4); // + a sync record + vote 2
    await wal.close();
  });

  it("fails the flush and every later one with ERR_WAL_IO when the disk write fails", async () => {
    const wal = await openTestWal(dir, { segmentBytesMax: 4096 });
    wal.append(batch({ accepted: [vote(1, 257, "x".repeat(5000))] }));
    await wal.flush();
    await rm(dir, { recursive: true }); // the next rollover cannot create its segment
    wal.append(batch({ accepted: [vote(2, 257, "y")] }));
    await expect(wal.flush()).rejects.toMatchObject({ code: "ERR_WAL_IO" });
    await expect(wal.flush()).rejects.toMatchObject({ code: "ERR_WAL_IO" });
    expect(() => wal.append(batch({ promised: 1 }))).toThrow(/segment/);
    await expect(wal.close()).rejects.toMatchObject({ code: "ERR_WAL_IO" });
  });
});
