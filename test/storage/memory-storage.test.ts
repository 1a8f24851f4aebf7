import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/storage/index.ts";
import { batch, snapshot, vote } from "./helpers.ts";

describe("MemoryStorage (--durability memory)", () => {
  it("starts empty, remembers appends, and flushes at once", async () => {
    const storage = new MemoryStorage();
    expect(storage.recovered).toEqual({ promised: 0, accepted: [], snapshot: null, chosenSlot: 0 });
    storage.append(batch({ promised: 257, accepted: [vote(1, 257, "a"), vote(2, 257, "b")] }));
    storage.append(batch({ snapshot: snapshot(1), chosenSlot: 2 }));
    await storage.flush();
    expect(storage.image()).toMatchObject({ promised: 257, chosenSlot: 2, snapshot: { slot: 1 } });
    expect(storage.image().accepted.map((v) => v.slot)).toEqual([2]);
    expect(storage.stats()).toMatchObject({ flushCount: 1, fsyncCount: 0, bytesWritten: 0 });
    await storage.close();
    expect(new MemoryStorage().recovered.accepted).toEqual([]); // a restart begins empty
  });
});
