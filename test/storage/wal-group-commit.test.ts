import { rm } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableImage } from "../../src/storage/index.ts";
import { batch, openTestWal, plain, snapshot, tempDir, vote } from "./helpers.ts";

describe("WAL group commit", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("coalesces flush calls made while an fsync is in flight into one more fsync", async () => {
    const wal = await openTestWal(dir, { fsync: true });
    const image = new DurableImage();
    const flushes: (Promise<void> | undefined)[] = [];
    const callCount = 50;
    for (let i = 1; i <= callCount; i++) {
      const b = batch({ accepted: [vote(i, 257, `command ${i}`)] });
      wal.append(b);
      image.apply(b);
      // The first creates the segment (an asynchronous commit); the other 49 share the next one.
      flushes.push(wal.flush());
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

  it("commits into the open segment synchronously: flush returns undefined, durable at return", async () => {
    const wal = await openTestWal(dir, { fsync: true });
    const image = new DurableImage();
    const first = batch({ promised: 257, accepted: [vote(1, 257, "a")] });
    wal.append(first);
    image.apply(first);
    expect(wal.flush()).toBeInstanceOf(Promise); // the first commit creates the segment
    await wal.flush();
    for (let i = 2; i <= 4; i++) {
      const b = batch({ accepted: [vote(i, 257, `command ${i}`)], chosenSlot: i - 1 });
      wal.append(b);
      image.apply(b);
      expect(wal.flush()).toBeUndefined();
      expect(wal.stats()).toMatchObject({ flushCount: i, fsyncCount: i });
    }
    expect(wal.flush()).toBeUndefined(); // nothing pending
    expect(wal.stats().flushCount).toBe(4);
    await wal.close();
    const reopened = await openTestWal(dir);
    expect(plain(reopened.recovered)).toEqual(plain(image.read()));
    await reopened.close();
  });

  it("writes a snapshot or a new segment asynchronously, and a flush made meanwhile waits for the next commit", async () => {
    const wal = await openTestWal(dir, { segmentBytesMax: 4096 });
    wal.append(batch({ accepted: [vote(1, 257, "a")] }));
    await wal.flush();
    wal.append(batch({ snapshot: snapshot(1), chosenSlot: 1 }));
    const snapshotting = wal.flush();
    expect(snapshotting).toBeInstanceOf(Promise);
    wal.append(batch({ accepted: [vote(2, 257, "x".repeat(5000))] }));
    const next = wal.flush(); // shares the commit after the snapshot's
    expect(next).toBeInstanceOf(Promise);
    await next;
    expect(wal.stats()).toMatchObject({ snapshotsWritten: 1, flushCount: 3, segmentCount: 1 });
    wal.append(batch({ accepted: [vote(3, 257, "b")] }));
    const rollover = wal.flush(); // the segment is full: the next commit starts a new one
    expect(rollover).toBeInstanceOf(Promise);
    await rollover;
    expect(wal.stats()).toMatchObject({ flushCount: 4, segmentCount: 2 });
    await wal.close();
    const reopened = await openTestWal(dir);
    expect(reopened.recovered.accepted.map((v) => v.slot)).toEqual([2, 3]);
    expect(reopened.recovered.snapshot?.slot).toBe(1);
    await reopened.close();
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
