import type * as fs from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { batch, openTestWal, tempDir, vote } from "./helpers.ts";

/** When set, the WAL's synchronous fdatasync fails the way a dying disk does (EIO). */
const failing = vi.hoisted(() => ({ fdatasync: false }));

vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  return {
    ...real,
    fdatasyncSync: (fd: number) => {
      if (failing.fdatasync)
        throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5 });
      real.fdatasyncSync(fd);
    },
  };
});

describe("WAL synchronous group commit, failing", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(async () => {
    failing.fdatasync = false;
    await cleanup();
  });

  it("returns a rejected flush with ERR_WAL_IO (never throws), and every later flush and append fails", async () => {
    const wal = await openTestWal(dir, { fsync: true });
    wal.append(batch({ accepted: [vote(1, 257, "a")] }));
    await wal.flush(); // creates the segment
    failing.fdatasync = true;
    wal.append(batch({ accepted: [vote(2, 257, "b")] }));
    let flushing: Promise<void> | undefined;
    expect(() => {
      flushing = wal.flush();
    }).not.toThrow();
    await expect(flushing).rejects.toMatchObject({
      code: "ERR_WAL_IO",
      message: expect.stringMatching(/group commit in .* failed: EIO/),
    });
    failing.fdatasync = false; // what is on disk stays unknown: the WAL does not try again
    await expect(wal.flush()).rejects.toMatchObject({ code: "ERR_WAL_IO" });
    expect(() => wal.append(batch({ promised: 300 }))).toThrow(/EIO/);
    await expect(wal.close()).rejects.toMatchObject({ code: "ERR_WAL_IO" });
  });
});
