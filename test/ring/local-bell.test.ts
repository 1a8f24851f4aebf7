/**
 * The same-thread bell (--workers 0): ring() wakes the one waiter on the same event-loop turn,
 * a ring with nobody waiting is not lost (the next wait checks for work first), close() ends it.
 */
import { describe, expect, it } from "vitest";
import { LocalBell } from "../../src/ring/bell.ts";
import { createFrameRing, FrameRingReader, FrameRingWriter } from "../../src/ring/frame-ring.ts";

describe("LocalBell", () => {
  it("returns at once when there is work, without parking", async () => {
    const bell = new LocalBell();
    expect(await bell.waitForWork(() => true)).toBe(true);
    expect(bell.parkCount).toBe(0);
  });

  it("wakes the waiter within the same macrotask as the ring, before any setImmediate", async () => {
    const bell = new LocalBell();
    let work = false;
    const order: string[] = [];
    const waited = bell
      .waitForWork(() => work)
      .then((result) => {
        order.push("woken");
        return result;
      });
    await Promise.resolve();
    setImmediate(() => order.push("immediate"));
    work = true;
    bell.ring();
    expect(await waited).toBe(true);
    expect(order).toEqual(["woken"]);
    expect(bell.parkCount).toBe(1);
  });

  it("parks again after a ring that brought no work (its record was taken already)", async () => {
    const bell = new LocalBell();
    let work = false;
    const waited = bell.waitForWork(() => work);
    bell.ring(); // nothing there yet
    await new Promise((resolve) => setImmediate(resolve));
    work = true;
    bell.ring();
    expect(await waited).toBe(true);
    expect(bell.parkCount).toBe(2);
  });

  it("close() resolves a pending wait false, and later waits at once", async () => {
    const bell = new LocalBell();
    const waited = bell.waitForWork(() => false);
    bell.close();
    expect(await waited).toBe(false);
    expect(await bell.waitForWork(() => true)).toBe(false);
    expect(bell.closed).toBe(true);
  });

  it("carries ring records written and read on one thread, records in order", async () => {
    const bell = new LocalBell();
    const shared = createFrameRing(1024);
    const writer = new FrameRingWriter(shared);
    const reader = new FrameRingReader(shared);
    const seen: number[] = [];
    const consumer = (async () => {
      while (seen.length < 6) {
        if (!(await bell.waitForWork(() => reader.hasRecords))) return;
        reader.drain((record) => seen.push(record[0]!));
      }
    })();
    for (let i = 0; i < 6; i++) {
      expect(writer.tryWrite(Uint8Array.of(i))).toBe(true);
      bell.ring();
      if (i % 2 === 1) await new Promise((resolve) => setImmediate(resolve));
    }
    await consumer;
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe("LocalBell with wake: next-turn", () => {
  it("wakes the waiter in the check phase, after this turn's other callbacks", async () => {
    const bell = new LocalBell({ wake: "next-turn" });
    let work = false;
    const order: string[] = [];
    const waited = bell
      .waitForWork(() => work)
      .then((result) => {
        order.push("woken");
        return result;
      });
    await Promise.resolve();
    work = true;
    bell.ring();
    bell.ring(); // a second ring before the wake is a no-op
    queueMicrotask(() => order.push("microtask"));
    expect(await waited).toBe(true);
    expect(order).toEqual(["microtask", "woken"]);
  });
});
