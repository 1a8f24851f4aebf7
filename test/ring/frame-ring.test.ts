import { describe, expect, it } from "vitest";
import { ApusError } from "../../src/core/errors.ts";
import { SeededPrng } from "../../src/core/prng.ts";
import {
  BELL_PARKED,
  BELL_SEQ,
  createDoorbell,
  createFrameRing,
  DoorbellRinger,
  DoorbellWaiter,
  FRAME_LENGTH_BYTES,
  FrameRingReader,
  FrameRingWriter,
} from "../../src/ring/index.ts";

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function pair(capacityBytes: number) {
  const shared = createFrameRing(capacityBytes);
  return { shared, writer: new FrameRingWriter(shared), reader: new FrameRingReader(shared) };
}

function readAll(reader: FrameRingReader, max?: number): number[][] {
  const records: number[][] = [];
  reader.drain((record) => records.push([...record]), max);
  return records;
}

function patterned(prng: SeededPrng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = prng.nextInt(256);
  return out;
}

describe("FrameRing in one thread", () => {
  it("carries header + body as one record, either part may be empty", () => {
    const { writer, reader } = pair(64);
    expect(writer.tryWrite(bytes(1, 2), bytes(3))).toBe(true);
    expect(writer.tryWrite(bytes(4))).toBe(true);
    expect(writer.tryWrite(new Uint8Array(0), bytes(5, 6))).toBe(true);
    expect(writer.tryWrite(new Uint8Array(0))).toBe(true);
    expect(reader.usedBytes).toBe(4 * FRAME_LENGTH_BYTES + 3 + 1 + 2 + 0);
    expect(readAll(reader)).toEqual([[1, 2, 3], [4], [5, 6], []]);
    expect(reader.usedBytes).toBe(0);
    expect(reader.hasRecords).toBe(false);
  });

  it("fills exactly to capacity, then refuses, then accepts after a drain", () => {
    const capacityBytes = 3 * (FRAME_LENGTH_BYTES + 10);
    const { writer, reader } = pair(capacityBytes);
    expect(writer.freeBytes).toBe(capacityBytes);
    for (let i = 0; i < 3; i++) expect(writer.tryWrite(new Uint8Array(10).fill(i))).toBe(true);
    expect(writer.freeBytes).toBe(0);
    expect(reader.usedBytes).toBe(capacityBytes);
    expect(writer.tryWrite(new Uint8Array(0))).toBe(false);
    expect(readAll(reader, 1)).toEqual([new Array(10).fill(0)]);
    expect(writer.freeBytes).toBe(FRAME_LENGTH_BYTES + 10);
    expect(writer.tryWrite(new Uint8Array(11))).toBe(false); // one byte short: nothing written
    expect(writer.tryWrite(new Uint8Array(7), new Uint8Array(3).fill(9))).toBe(true); // wraps
    expect(readAll(reader).map((r) => r[0])).toEqual([1, 2, 0]);
  });

  it("is all or nothing: a refused record leaves the ring as it was", () => {
    const { writer, reader } = pair(32);
    expect(writer.tryWrite(bytes(7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7))).toBe(true);
    const free = writer.freeBytes;
    expect(writer.tryWrite(new Uint8Array(free - FRAME_LENGTH_BYTES), bytes(1))).toBe(false);
    expect(writer.freeBytes).toBe(free);
    expect(readAll(reader)).toEqual([new Array(16).fill(7)]);
    expect(readAll(reader)).toEqual([]);
  });

  it("throws ERR_RING for a record that could never fit (capacity - 4)", () => {
    const { writer, reader } = pair(100);
    expect(writer.recordBytesMax).toBe(96);
    expect(writer.tryWrite(new Uint8Array(90), new Uint8Array(6))).toBe(true);
    readAll(reader);
    let error: unknown;
    try {
      writer.tryWrite(new Uint8Array(90), new Uint8Array(7));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ApusError);
    expect((error as ApusError).code).toBe("ERR_RING");
  });

  it("validates its capacity", () => {
    for (const bad of [0, 4, 1.5, Number.NaN, 2 ** 31]) {
      expect(() => createFrameRing(bad)).toThrow(/capacityBytes/);
    }
  });

  it("drain stops at max and resumes where it stopped", () => {
    const { writer, reader } = pair(256);
    for (let i = 0; i < 5; i++) writer.tryWrite(bytes(i));
    expect(readAll(reader, 2)).toEqual([[0], [1]]);
    expect(readAll(reader, 0)).toEqual([]);
    expect(readAll(reader)).toEqual([[2], [3], [4]]);
  });

  it("wraps around many times with records of random sizes, in order, unchanged", () => {
    const prng = new SeededPrng(42);
    const { writer, reader } = pair(1000);
    const expected: Uint8Array[] = [];
    let next = 0;
    let refusals = 0;
    let mismatches = 0;
    const check = (record: Uint8Array) => {
      const want = expected[next++];
      if (want === undefined || Buffer.compare(record, want) !== 0) mismatches++;
    };
    for (let round = 0; round < 20_000; round++) {
      if (prng.nextInt(3) > 0) {
        const header = patterned(prng, prng.nextInt(40));
        const body = patterned(prng, prng.nextInt(300));
        const free = writer.freeBytes;
        const fits = FRAME_LENGTH_BYTES + header.length + body.length <= free;
        expect(writer.tryWrite(header, body)).toBe(fits);
        if (fits) {
          const record = new Uint8Array(header.length + body.length);
          record.set(header);
          record.set(body, header.length);
          expected.push(record);
        } else {
          refusals++;
          expect(writer.freeBytes).toBe(free);
        }
      } else {
        reader.drain((record) => check(record), 1 + prng.nextInt(4));
      }
    }
    reader.drain((record) => check(record));
    expect(mismatches).toBe(0);
    expect(next).toBe(expected.length);
    expect(expected.length).toBeGreaterThan(5_000);
    expect(refusals).toBeGreaterThan(100); // the ring was full often
  });

  it("refuses to drain from inside its own callback", () => {
    const { writer, reader } = pair(64);
    writer.tryWrite(bytes(1));
    expect(() => reader.drain(() => reader.drain(() => {}))).toThrow(/own callback/);
  });
});

describe("Doorbell in one thread", () => {
  it("a ringer does nothing to SEQ while the consumer is awake", () => {
    const bell = createDoorbell();
    const view = new Int32Array(bell);
    new DoorbellRinger(bell).ring();
    expect(Atomics.load(view, BELL_SEQ)).toBe(0);
    Atomics.store(view, BELL_PARKED, 1);
    new DoorbellRinger(bell).ring();
    expect(Atomics.load(view, BELL_SEQ)).toBe(1);
  });

  it("answers at once when there is work, without parking", async () => {
    const waiter = new DoorbellWaiter(createDoorbell(), { spinUs: 0 });
    expect(await waiter.waitForWork(() => true)).toBe(true);
    expect(waiter.parkCount).toBe(0);
  });

  it("parks, then wakes on a write + notify from this thread's event loop", async () => {
    const bell = createDoorbell();
    const shared = createFrameRing(64, bell);
    const writer = new FrameRingWriter(shared);
    const reader = new FrameRingReader(shared);
    const waiter = new DoorbellWaiter(bell, { spinUs: 0 });
    setTimeout(() => {
      expect(Atomics.load(new Int32Array(bell), BELL_PARKED)).toBe(1);
      writer.tryWrite(bytes(9));
      writer.notify();
    }, 5);
    expect(await waiter.waitForWork(() => reader.hasRecords)).toBe(true);
    expect(waiter.parkCount).toBe(1);
    expect(Atomics.load(new Int32Array(bell), BELL_PARKED)).toBe(0);
    expect(readAll(reader)).toEqual([[9]]);
  });

  it("a record published just after the last check before waitAsync still wakes it (C3 race)", async () => {
    const bell = createDoorbell();
    const shared = createFrameRing(64, bell);
    const writer = new FrameRingWriter(shared);
    const reader = new FrameRingReader(shared);
    const waiter = new DoorbellWaiter(bell, { spinUs: 0 });
    let calls = 0;
    // Call 1 is the check on entry, call 2 the re-check after PARKED=1 (C3): the "producer"
    // publishes right after that check has looked, the latest moment a wake-up could be lost.
    const hasWork = () => {
      const has = reader.hasRecords;
      if (++calls === 2) {
        writer.tryWrite(bytes(1));
        writer.notify();
      }
      return has;
    };
    let lost = false;
    const watchdog = setTimeout(() => {
      lost = true;
      waiter.close();
    }, 2_000);
    const woke = await waiter.waitForWork(hasWork);
    clearTimeout(watchdog);
    expect(lost).toBe(false);
    expect(woke).toBe(true);
    expect(calls).toBe(3);
  });

  it("close() resolves a parked wait with false", async () => {
    const waiter = new DoorbellWaiter(createDoorbell(), { spinUs: 10 });
    setTimeout(() => waiter.close(), 5);
    expect(await waiter.waitForWork(() => false)).toBe(false);
    expect(await waiter.waitForWork(() => true)).toBe(false);
  });

  it("spins for about spinUs before parking, then parks", async () => {
    const waiter = new DoorbellWaiter(createDoorbell(), { spinUs: 200 });
    let polls = 0;
    const start = performance.now();
    setTimeout(() => waiter.close(), 5);
    await waiter.waitForWork(() => {
      polls++;
      return false;
    });
    expect(polls).toBeGreaterThan(10);
    expect(performance.now() - start).toBeGreaterThanOrEqual(0.2);
  });

  it("validates spinUs and the bell", () => {
    expect(() => new DoorbellWaiter(createDoorbell(), { spinUs: -1 })).toThrow(/spinUs/);
    expect(() => new DoorbellWaiter(createDoorbell(), { spinUs: 5_000 })).toThrow(/spinUs/);
    expect(() => new DoorbellRinger(new SharedArrayBuffer(4))).toThrow(/doorbell/);
  });
});
