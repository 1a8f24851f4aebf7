import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableImage } from "../../src/storage/index.ts";
import { crashBatch, openTestWal, plain, tempDir } from "./helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/crash-child.ts", import.meta.url));

describe("WAL after a real crash (SIGKILL, no close)", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it("recovers every flushed batch, takes over the dead process's lock, and goes on", async () => {
    const child = spawnSync(process.execPath, [CHILD, dir, "12", "3"], { encoding: "utf8" });
    expect(child.signal, child.stderr).toBe("SIGKILL");
    const deadPid = Number((await readFile(join(dir, "LOCK"), "utf8")).trim());
    expect(deadPid).toBe(child.pid);

    const image = new DurableImage();
    for (let i = 0; i < 12; i++) image.apply(crashBatch(i));
    const wal = await openTestWal(dir);
    expect(plain(wal.recovered)).toEqual(plain(image.read()));
    expect(Number((await readFile(join(dir, "LOCK"), "utf8")).trim())).toBe(process.pid);

    wal.append(crashBatch(12));
    image.apply(crashBatch(12));
    await wal.close();
    const reopened = await openTestWal(dir);
    expect(plain(reopened.recovered)).toEqual(plain(image.read()));
    await reopened.close();
  });
});
