import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApusError } from "../../src/core/index.ts";
import { batch, IDENTITY, openTestWal, tempDir, vote } from "./helpers.ts";

describe("WAL lock and identity", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("lets one WAL at a time open a directory, and releases it on close", async () => {
    const wal = await openTestWal(dir);
    const error = await openTestWal(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApusError);
    expect(error).toMatchObject({ code: "ERR_WAL_LOCKED" });
    expect((error as Error).message).toContain(`in use by pid ${process.pid}`);
    await wal.close();
    await (await openTestWal(dir)).close();
  });

  it("refuses a lock held by another live process", async () => {
    await (await openTestWal(dir)).close();
    await writeFile(join(dir, "LOCK"), `${process.ppid}\n`); // the test runner's parent: alive
    await expect(openTestWal(dir)).rejects.toMatchObject({ code: "ERR_WAL_LOCKED" });
  });

  it("takes over a lock left by a dead process, or by an earlier process with our pid", async () => {
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    await writeFile(join(dir, "LOCK"), `${dead}\n`);
    let wal = await openTestWal(dir);
    expect((await readFile(join(dir, "LOCK"), "utf8")).trim()).toBe(String(process.pid));
    await wal.close();
    // A container restarts the replica with the same pid: a LOCK with our pid we do not hold is stale.
    await writeFile(join(dir, "LOCK"), `${process.pid}\n`);
    wal = await openTestWal(dir);
    await wal.close();
    await writeFile(join(dir, "LOCK"), ""); // crashed between creating it and writing the pid
    await (await openTestWal(dir)).close();
  });

  it("refuses a directory created for another replica or cluster, naming the setting", async () => {
    const wal = await openTestWal(dir);
    wal.append(batch({ promised: 257, accepted: [vote(1, 257, "a")] }));
    await wal.close();
    expect(JSON.parse(await readFile(join(dir, "meta.json"), "utf8"))).toMatchObject(IDENTITY);
    const cases = [
      { replicaId: 2, text: "replicaId 1, but this replica was started with replicaId 2" },
      { clusterId: 8, text: "clusterId 7, but this replica was started with clusterId 8" },
    ];
    for (const { text, ...override } of cases) {
      const error = await openTestWal(dir, override).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "ERR_WAL_MISMATCH" });
      expect((error as Error).message).toContain(text);
      expect((error as Error).message).toContain("empty data directory");
    }
    // The replica count is no identity: the membership changes in the log (grow 3 -> 5).
    await (await openTestWal(dir, { replicaCount: 5 })).close();
    const again = await openTestWal(dir); // the refusals released the lock
    expect(again.recovered.promised).toBe(257);
    await again.close();
  });

  it("validates its options, naming the option", async () => {
    await expect(openTestWal(dir, { segmentBytesMax: 100 })).rejects.toMatchObject({
      code: "ERR_INVALID_CONFIG",
      message: expect.stringContaining("segmentBytesMax is 100"),
    });
    await expect(openTestWal(dir, { replicaId: 32 })).rejects.toMatchObject({
      code: "ERR_INVALID_CONFIG",
      message: expect.stringContaining("replicaId is 32; replica ids run from 1 to 31"),
    });
  });
});
