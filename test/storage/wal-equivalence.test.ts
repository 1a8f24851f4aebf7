import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PersistBatch } from "../../src/core/index.ts";
import { SimStorage } from "../../src/sim/sim-storage.ts";
import { openTestWal, plain, tempDir } from "./helpers.ts";

/**
 * The WAL must recover exactly what the simulator's disk (SimStorage, the semantics the simulator
 * proves the protocol safe against) holds after the same PersistBatches: re-votes, votes at or
 * below a snapshot, promises going up and down, across segment rollovers, snapshot-driven segment
 * deletion, and reopenings.
 */
type Op =
  | {
      readonly kind: "batch";
      readonly promised: number | null;
      readonly votes: readonly { slot: number; ballot: number; commands: Uint8Array[] }[];
      /** Added to the last snapshot slot (snapshots never go backwards in the core). */
      readonly snapshotAdvance: number | null;
      readonly chosenSlot: number | null;
    }
  | { readonly kind: "flush" }
  | { readonly kind: "reopen" };

/** null 4 times out of 5. */
function rarely<T>(value: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: value });
}

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("batch" as const),
      promised: rarely(fc.integer({ min: 0, max: 5000 })),
      votes: fc.array(
        fc.record({
          slot: fc.integer({ min: 1, max: 60 }),
          ballot: fc.integer({ min: 1, max: 5000 }),
          commands: fc.array(fc.uint8Array({ maxLength: 300, size: "max" }), { maxLength: 4 }),
        }),
        { maxLength: 5 },
      ),
      snapshotAdvance: rarely(fc.integer({ min: 0, max: 12 })),
      chosenSlot: rarely(fc.integer({ min: 0, max: 70 })),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "reopen" as const }) },
);

const coverage = { segmentsRead: 0, snapshots: 0 };

async function check(ops: readonly Op[]): Promise<void> {
  const { dir, cleanup } = await tempDir();
  try {
    const sim = new SimStorage();
    let unflushed: PersistBatch[] = [];
    let snapshotSlot = 0;
    let wal = await openTestWal(dir, { segmentBytesMax: 4096 });
    const flushed = () => {
      for (const b of unflushed) sim.write(b);
      unflushed = [];
    };
    for (const o of ops) {
      if (o.kind === "batch") {
        let snapshot = null;
        if (o.snapshotAdvance !== null) {
          snapshotSlot = Math.max(1, snapshotSlot + o.snapshotAdvance);
          snapshot = { slot: snapshotSlot, data: new Uint8Array([snapshotSlot % 256, 1, 2]) };
        }
        const b: PersistBatch = {
          promised: o.promised,
          accepted: o.votes.map((v) => ({
            slot: v.slot,
            ballot: v.ballot,
            batch: { stampMs: v.ballot * 3, commands: v.commands },
          })),
          snapshot,
          chosenSlot: o.chosenSlot,
        };
        wal.append(b);
        unflushed.push(b);
      } else if (o.kind === "flush") {
        await wal.flush();
        flushed();
      } else {
        await wal.close(); // flushes what is pending
        flushed();
        wal = await openTestWal(dir, { segmentBytesMax: 4096 });
        expect(plain(wal.recovered)).toEqual(plain(sim.read()));
      }
    }
    await wal.close();
    flushed();
    const last = await openTestWal(dir, { segmentBytesMax: 4096 });
    coverage.segmentsRead = Math.max(coverage.segmentsRead, last.recoveryReport.segmentsRead);
    coverage.snapshots += last.recovered.snapshot === null ? 0 : 1;
    expect(plain(last.recovered)).toEqual(plain(sim.read()));
    expect(last.recoveryReport.bytesTruncated).toBe(0);
    await last.close();
  } finally {
    await cleanup();
  }
}

describe("WAL ≡ SimStorage", () => {
  it("recovers what SimStorage holds after the same random PersistBatch sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 80, size: "max" }), check),
      { numRuns: 150 },
    );
    // The runs did roll segments over and take snapshots (what deletion needs).
    expect(coverage.segmentsRead).toBeGreaterThan(3);
    expect(coverage.snapshots).toBeGreaterThan(20);
  });
});
