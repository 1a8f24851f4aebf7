/** The list checker on hand-written histories of RPUSH (unique values) and LRANGE 0 -1. */
import { describe, expect, it } from "vitest";
import type { Operation } from "../../src/chaos/history.ts";
import { checkListKey } from "../../src/chaos/list-check.ts";
import { append, failedAppend, listRead } from "./ops.ts";

function anomalies(ops: Operation[]): string[] {
  return checkListKey(ops, "l").anomalies.map((a) => a.message);
}

describe("list append consistency", () => {
  it("accepts appends seen in one order, reads prefixes of the final list", () => {
    const ops = [
      append("a", 0, 1),
      listRead(["a"], 2, 3),
      append("b", 4, 10),
      append("c", 4, 10),
      listRead(["a", "c"], 5, 6),
      append("d", 11, null), // unknown, never took effect
      append("e", 11, null), // unknown, took effect
      listRead(["a", "c", "b", "e"], 100, 101),
    ];
    expect(anomalies(ops)).toEqual([]);
  });

  it("reports a lost acknowledged append", () => {
    const ops = [append("a", 0, 1), append("b", 2, 3), listRead(["a"], 10, 11)];
    expect(anomalies(ops).join("\n")).toMatch(/1 acknowledged append\(s\) lost.*: b/);
  });

  it("lets a read concurrent with the final read be longer than it", () => {
    const ops = [
      append("a", 0, 1),
      append("b", 2, null),
      listRead(["a", "b"], 3, 20),
      listRead(["a"], 10, 11),
    ];
    expect(anomalies(ops)).toEqual([]);
  });

  it("does not call an append lost when it was acknowledged after the last read began", () => {
    const ops = [append("a", 0, 1), listRead(["a"], 2, 5), append("b", 3, 4)];
    expect(anomalies(ops)).toEqual([]);
  });

  it("reports a read holding a value twice, even one longer than the final read", () => {
    const ops = [append("a", 0, 1), listRead(["a", "a"], 2, 20), listRead(["a"], 10, 11)];
    expect(anomalies(ops).join("\n")).toMatch(/holds a value twice/);
  });

  it("reports a value appended twice", () => {
    const ops = [append("a", 0, 1), append("b", 2, 3), listRead(["a", "b", "a"], 10, 11)];
    expect(anomalies(ops).join("\n")).toMatch(/a appears twice/);
  });

  it("reports a read that is not a prefix of the final list (reordered)", () => {
    const ops = [
      append("a", 0, 5),
      append("b", 0, 5),
      listRead(["b", "a"], 6, 7),
      listRead(["a", "b"], 10, 11),
    ];
    expect(anomalies(ops).join("\n")).toMatch(/not a prefix/);
  });

  it("reports a value that was never appended, and one whose append failed", () => {
    expect(anomalies([append("a", 0, 1), listRead(["a", "x"], 2, 3)]).join("\n")).toMatch(
      /x \(at 1\) was never appended/,
    );
    expect(anomalies([failedAppend("a", 0, 1), listRead(["a"], 2, 3)]).join("\n")).toMatch(
      /its append failed/,
    );
  });

  it("reports a stale read that misses an append acknowledged before it began", () => {
    const ops = [
      append("a", 0, 1),
      append("b", 2, 3),
      listRead(["a"], 4, 5),
      listRead(["a", "b"], 10, 11),
    ];
    expect(anomalies(ops).join("\n")).toMatch(/misses b.*stale read/);
  });

  it("reports reads that go backwards", () => {
    const ops = [
      append("a", 0, 1),
      append("b", 2, null),
      listRead(["a", "b"], 3, 4),
      listRead(["a"], 5, 6),
      listRead(["a", "b"], 10, 11),
    ];
    expect(anomalies(ops).join("\n")).toMatch(/saw less/);
  });

  it("reports appends ordered against real time", () => {
    const ops = [append("a", 0, 1), append("b", 2, 3), listRead(["b", "a"], 10, 11)];
    expect(anomalies(ops).join("\n")).toMatch(/b comes before a/);
  });

  it("reports a value seen before its append was invoked", () => {
    const ops = [listRead(["a"], 0, 1), append("a", 2, null), listRead(["a"], 10, 11)];
    expect(anomalies(ops).join("\n")).toMatch(/before its append was invoked/);
  });

  it("reports acknowledged appends when no read of the list ever succeeded", () => {
    expect(anomalies([append("a", 0, 1)]).join("\n")).toMatch(/no successful read/);
  });
});
