import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ballotOf } from "../../src/core/index.ts";
import { DurableImage } from "../../src/storage/index.ts";
import { batch, openTestWal, plain, snapshot, tempDir, vote } from "./helpers.ts";

const segments = async (dir: string) =>
  (await readdir(dir)).filter((n) => n.startsWith("wal-")).sort();
const snapshots = async (dir: string) =>
  (await readdir(dir)).filter((n) => n.startsWith("snapshot-")).sort();

describe("WAL segments and snapshots", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("rolls segments over, and after a snapshot deletes only those whose votes it covers", async () => {
    const wal = await openTestWal(dir, { segmentBytesMax: 4096 });
    const image = new DurableImage();
    const write = async (fields: Parameters<typeof batch>[0]) => {
      const b = batch(fields);
      wal.append(b);
      image.apply(b);
      await wal.flush();
    };
    // Segment 1 holds a vote far above what the snapshot will cover: it must survive.
    await write({ promised: ballotOf(1, 1), accepted: [vote(100, ballotOf(1, 1), "far ahead")] });
    for (let slot = 1; slot <= 30; slot++) {
      // The last promise is made in a middle segment, which the snapshot deletes.
      await write({
        promised: slot === 12 ? ballotOf(2, 1) : null,
        accepted: [vote(slot, ballotOf(1, 1), "v".repeat(500))],
        chosenSlot: slot - 1,
      });
    }
    const before = await segments(dir);
    expect(before.length).toBeGreaterThanOrEqual(4);
    expect(before[0]).toBe("wal-0000000000000000.log");

    await write({ snapshot: snapshot(25) });
    const after = await segments(dir);
    expect(after[0]).toBe(before[0]); // slot 100 lives there
    expect(after.at(-1)).toBe(before.at(-1)); // the current segment is kept
    expect(after.length).toBeLessThan(before.length);
    expect(wal.stats().segmentCount).toBe(after.length);
    await wal.close();

    let reopened = await openTestWal(dir, { segmentBytesMax: 4096 });
    expect(plain(reopened.recovered)).toEqual(plain(image.read()));
    expect(reopened.recovered.promised).toBe(ballotOf(2, 1)); // restated by a later header
    expect(reopened.recovered.accepted.map((v) => v.slot)).toEqual([26, 27, 28, 29, 30, 100]);
    await reopened.close();

    // A snapshot past slot 100 frees the first segment too; only the newest snapshot file stays.
    reopened = await openTestWal(dir, { segmentBytesMax: 4096 });
    const b = batch({ snapshot: snapshot(101), accepted: [vote(102, ballotOf(2, 1), "new")] });
    reopened.append(b);
    image.apply(b);
    await reopened.close();
    expect(await segments(dir)).toEqual([after.at(-1)]);
    expect(await snapshots(dir)).toEqual(["snapshot-0000000000000101.bin"]);
    const last = await openTestWal(dir);
    expect(plain(last.recovered)).toEqual(plain(image.read()));
    expect(last.recovered.chosenSlot).toBe(101);
    await last.close();
  });

  it("recovers a snapshot that came with no other record", async () => {
    const wal = await openTestWal(dir);
    wal.append(batch({ snapshot: snapshot(7, "image") }));
    await wal.close();
    expect(await snapshots(dir)).toEqual(["snapshot-0000000000000007.bin"]);
    const reopened = await openTestWal(dir);
    expect(plain(reopened.recovered)).toEqual(
      plain({ promised: 0, accepted: [], snapshot: snapshot(7, "image"), chosenSlot: 7 }),
    );
    await reopened.close();
  });

  it("removes leftovers of a crash: temp files and older snapshots", async () => {
    const wal = await openTestWal(dir);
    wal.append(batch({ snapshot: snapshot(5), accepted: [vote(6, 257, "a")] }));
    await wal.close();
    await writeFile(join(dir, "snapshot-0000000000000003.bin"), "older, not yet deleted");
    await writeFile(join(dir, "snapshot-0000000000000009.bin.tmp"), "half written");
    const reopened = await openTestWal(dir);
    expect(reopened.recovered.snapshot?.slot).toBe(5);
    expect(await snapshots(dir)).toEqual(["snapshot-0000000000000005.bin"]);
    await reopened.close();
  });

  it("refuses to start when the snapshot that segments were deleted for is missing", async () => {
    const wal = await openTestWal(dir, { segmentBytesMax: 4096 });
    for (let slot = 1; slot <= 12; slot++) {
      wal.append(
        batch({
          accepted: [vote(slot, 257, "v".repeat(600))],
          snapshot: slot === 10 ? snapshot(9) : null,
        }),
      );
      await wal.flush();
    }
    await wal.close();
    await rm(join(dir, "snapshot-0000000000000009.bin"));
    await expect(openTestWal(dir)).rejects.toMatchObject({
      code: "ERR_WAL_CORRUPT",
      message: expect.stringMatching(/records a snapshot of slot 9.*missing/),
    });
  });

  it("refuses a damaged snapshot file", async () => {
    const wal = await openTestWal(dir);
    wal.append(batch({ snapshot: snapshot(4, "some state") }));
    await wal.close();
    await writeFile(
      join(dir, "snapshot-0000000000000004.bin"),
      "garbage that is long enough to parse",
    );
    await expect(openTestWal(dir)).rejects.toMatchObject({ code: "ERR_WAL_CORRUPT" });
  });
});
