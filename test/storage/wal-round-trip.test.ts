import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ballotOf, NOOP } from "../../src/core/index.ts";
import { DurableImage } from "../../src/storage/index.ts";
import { batch, openTestWal, plain, snapshot, tempDir, vote } from "./helpers.ts";

describe("WAL round trip", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("opens an empty directory as the empty state", async () => {
    const wal = await openTestWal(`${dir}/nested/data`, { fsync: true });
    expect(wal.recovered).toEqual({ promised: 0, accepted: [], snapshot: null, chosenSlot: 0 });
    expect(wal.recoveryReport).toMatchObject({
      segmentsRead: 0,
      recordsRead: 0,
      bytesTruncated: 0,
    });
    await wal.close();
  });

  it("recovers promises, votes (latest per slot), chosenSlot and the snapshot", async () => {
    const batches = [
      batch({ promised: ballotOf(1, 2) }),
      batch({ accepted: [vote(1, ballotOf(1, 2), "SET a 1", ""), vote(2, ballotOf(1, 2))] }),
      batch({ accepted: [{ slot: 3, ballot: ballotOf(1, 2), batch: NOOP }], chosenSlot: 1 }),
      batch({ promised: ballotOf(2, 3), accepted: [vote(2, ballotOf(2, 3), "re-vote")] }),
      batch({ snapshot: snapshot(1), chosenSlot: 2 }),
      batch({ accepted: [vote(1, ballotOf(2, 3), "below the snapshot: dropped")] }),
    ];
    const image = new DurableImage();
    const wal = await openTestWal(dir, { fsync: true });
    for (const b of batches) {
      wal.append(b);
      image.apply(b);
    }
    await wal.flush();
    await wal.close();

    const reopened = await openTestWal(dir);
    expect(plain(reopened.recovered)).toEqual(plain(image.read()));
    expect(reopened.recovered.accepted.map((v) => v.slot)).toEqual([2, 3]);
    expect(reopened.recovered.chosenSlot).toBe(2);
    await reopened.close();
  });

  it("hands out recovered commands that own their bytes (copies, not views of the segment)", async () => {
    const wal = await openTestWal(dir);
    wal.append(batch({ accepted: [vote(1, 257, "x".repeat(64)), vote(2, 257, "y")] }));
    await wal.close();
    const reopened = await openTestWal(dir);
    const [first, second] = reopened.recovered.accepted;
    const command = first?.batch.commands[0];
    expect(command && new TextDecoder().decode(command)).toBe("x".repeat(64));
    expect(command?.buffer).not.toBe(second?.batch.commands[0]?.buffer);
    expect(command?.buffer.byteLength).toBeLessThan(200); // one record's body, not the file
    await reopened.close();
  });

  it("keeps appending to the recovered segment across reopenings", async () => {
    const image = new DurableImage();
    for (let round = 0; round < 3; round++) {
      const wal = await openTestWal(dir);
      expect(plain(wal.recovered)).toEqual(plain(image.read()));
      const b = batch({
        promised: ballotOf(round + 1, 1),
        accepted: [vote(round + 1, ballotOf(round + 1, 1), "c")],
      });
      wal.append(b);
      image.apply(b);
      await wal.close();
      expect(wal.stats().segmentCount).toBe(1);
    }
  });

  it("counts what it writes", async () => {
    const seen: number[] = [];
    const wal = await openTestWal(dir, {
      fsync: true,
      onFsync: (_micros, bytes) => seen.push(bytes),
    });
    wal.append(batch({ promised: 257, accepted: [vote(1, 257, "a")], chosenSlot: 1 }));
    await wal.flush();
    const stats = wal.stats();
    expect(stats).toMatchObject({
      flushCount: 1,
      fsyncCount: 1,
      recordsWritten: 4,
      segmentCount: 1,
    });
    expect(seen).toEqual([stats.bytesWritten]);
    expect(stats.lastFsyncUs).toBeGreaterThanOrEqual(0);
    await wal.flush(); // nothing pending: no write, no fsync
    expect(wal.stats().fsyncCount).toBe(1);
    await wal.close();
  });
});
