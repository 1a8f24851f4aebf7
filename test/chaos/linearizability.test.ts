/**
 * The linearizability checker on hand-written register histories (Herlihy & Wing's definition:
 * each operation takes effect at one instant between its invocation and its response; an
 * operation with an unknown outcome at any instant after its invocation, or never).
 */
import { describe, expect, it } from "vitest";
import type { Operation } from "../../src/chaos/history.ts";
import { checkLinearizable, type TimedOp } from "../../src/chaos/linearizability.ts";
import {
  checkRegisterKey,
  type RegisterOp,
  registerModel,
} from "../../src/chaos/register-check.ts";
import { failedWrite, read, unknownRead, write } from "./ops.ts";

function verdict(ops: Operation[]): boolean {
  const result = checkRegisterKey(ops, "k");
  expect(result.undecided).toBeNull();
  return result.anomaly === null;
}

describe("register linearizability", () => {
  it("accepts a sequential history", () => {
    expect(verdict([read(null, 0, 1), write("a", 2, 3), read("a", 4, 5), write("b", 6, 7)])).toBe(
      true,
    );
  });

  it("accepts a read concurrent with a write returning either value", () => {
    const before = [write("a", 0, 1), write("b", 2, 10)];
    expect(verdict([...before, read("a", 3, 4)])).toBe(true);
    expect(verdict([...before, read("b", 3, 4)])).toBe(true);
  });

  it("rejects a stale read: the write was acknowledged before the read began", () => {
    expect(verdict([write("a", 0, 1), write("b", 2, 3), read("a", 4, 5)])).toBe(false);
  });

  it("rejects reads that go back in time (new then old, not overlapping)", () => {
    expect(verdict([write("a", 0, 1), write("b", 2, 20), read("b", 3, 4), read("a", 5, 6)])).toBe(
      false,
    );
  });

  it("rejects a lost write: an acknowledged write, then a later read of nil", () => {
    expect(verdict([write("a", 0, 1), read(null, 2, 3)])).toBe(false);
  });

  it("rejects a read of a value nobody wrote", () => {
    expect(verdict([write("a", 0, 1), read("z", 2, 3)])).toBe(false);
  });

  it("lets an unknown write take effect late, long after its invocation", () => {
    expect(verdict([write("a", 0, null), read(null, 5, 6), read("a", 100, 101)])).toBe(true);
  });

  it("lets an unknown write never take effect", () => {
    expect(verdict([write("a", 0, 1), write("b", 2, null), read("a", 50, 51)])).toBe(true);
  });

  it("still orders an unknown write: it cannot be seen before it was invoked", () => {
    expect(verdict([read("b", 0, 1), write("b", 2, null)])).toBe(false);
  });

  it("rejects an unknown write seen, then undone (a read after returns the older value)", () => {
    expect(verdict([write("a", 0, 1), write("b", 2, null), read("b", 3, 4), read("a", 5, 6)])).toBe(
      false,
    );
  });

  it("rejects a read of a write whose failure proved it did not run", () => {
    expect(verdict([write("a", 0, 1), failedWrite("b", 2, 3), read("b", 4, 5)])).toBe(false);
  });

  it("ignores reads that never returned", () => {
    expect(verdict([write("a", 0, 1), unknownRead(2), read("a", 3, 4)])).toBe(true);
  });

  it("finds the one order among many concurrent writes", () => {
    // Five concurrent writes; reads during them pin an order c, a, e; the last read sees d.
    const ops = [
      write("a", 0, 50),
      write("b", 0, 50),
      write("c", 0, 50),
      write("d", 0, 50),
      write("e", 0, 50),
      read("c", 1, 2),
      read("a", 3, 4),
      read("e", 5, 6),
      read("d", 60, 61),
    ];
    expect(verdict(ops)).toBe(true);
    // ...but c cannot be seen again after a and e replaced it and each was read.
    expect(verdict([...ops.slice(0, 8), read("c", 7, 8)])).toBe(false);
  });

  it("rejects two clients that see two writes in opposite orders", () => {
    const ops = [
      write("a", 0, 10),
      write("b", 0, 10),
      read("a", 1, 2),
      read("b", 3, 4),
      read("a", 5, 6),
    ];
    expect(verdict(ops)).toBe(false);
  });

  it("points at the operations around the failure", () => {
    const ops = [write("a", 0, 1), write("b", 2, 3), read("a", 4, 5), write("c", 100, 101)];
    const result = checkRegisterKey(ops, "k");
    expect(result.anomaly).not.toBeNull();
    const ids = result.anomaly!.window.map((op) => op.id);
    expect(ids).toContain(ops[2]!.id); // the stale read
    expect(ids).not.toContain(ops[3]!.id); // far later: not in the window
    expect(result.anomaly!.message).toMatch(/not linearizable/);
  });

  it("the search alone (no pruning) places writes that never returned anywhere after their call", () => {
    const timed = (op: Operation, returnMs: number): TimedOp<RegisterOp> => ({
      op:
        op.kind === "write"
          ? { kind: "write", value: op.value!, source: op }
          : { kind: "read", value: op.result as string | null, source: op },
      callMs: op.invokeMs,
      returnMs,
    });
    const w1 = write("a", 0, 1);
    const w2 = write("b", 2, null);
    const early = read("a", 3, 4);
    const late = read("b", 10, 11);
    const ok = [timed(w1, 1), timed(w2, Infinity), timed(early, 4), timed(late, 11)];
    expect(checkLinearizable(registerModel, ok).linearizable).toBe(true);
    const undone = [...ok, timed(read("a", 12, 13), 13)];
    expect(checkLinearizable(registerModel, undone).linearizable).toBe(false);
  });

  it("gives up, undecided, past its step limit", () => {
    const ops: TimedOp<RegisterOp>[] = [];
    for (let i = 0; i < 30; i++) {
      const source = write(`v${i}`, 0, 100);
      ops.push({ op: { kind: "write", value: `v${i}`, source }, callMs: 0, returnMs: 100 });
    }
    const source = read("zz", 0, 100);
    ops.push({ op: { kind: "read", value: "zz", source }, callMs: 0, returnMs: 100 });
    const result = checkLinearizable(registerModel, ops, 1000);
    expect(result.linearizable).toBe("unknown");
  });

  it("checks a long sequential history quickly (memoization)", () => {
    const ops: Operation[] = [];
    for (let i = 0; i < 2000; i++) {
      ops.push(write(`w${i}`, i * 10, i * 10 + 8));
      ops.push(read(`w${i}`, i * 10 + 9, i * 10 + 9.5));
    }
    // Ten writes with unknown outcome concurrent with everything.
    for (let i = 0; i < 10; i++) ops.push(write(`u${i}`, 5, null));
    expect(verdict(ops)).toBe(true);
  });
});
