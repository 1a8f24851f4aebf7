import { describe, expect, it } from "vitest";
import {
  decodeDigestReport,
  encodeDigestReport,
  OutputCheck,
} from "../../../src/workers/consensus/output-check.ts";

describe("output checking", () => {
  it("names the replica whose digest differs once a majority agrees, whatever the arrival order", () => {
    const check = new OutputCheck(3);
    expect(check.report(3, 100, "bad")).toEqual([]);
    expect(check.report(1, 100, "good")).toEqual([]);
    expect(check.report(2, 100, "good")).toEqual([
      { replica: 3, steps: 100, digest: "bad", majorityDigest: "good" },
    ]);
    // A late report for a settled step count is judged at once.
    const five = new OutputCheck(5);
    for (const id of [1, 2, 3]) five.report(id, 200, "x");
    expect(five.report(4, 200, "x")).toEqual([]);
    expect(five.report(5, 200, "y")).toEqual([
      { replica: 5, steps: 200, digest: "y", majorityDigest: "x" },
    ]);
    expect(five.found).toHaveLength(1);
  });

  it("counts a report sent again once (a diverged replica repeats its last one before it stops)", () => {
    const check = new OutputCheck(3);
    check.report(1, 100, "good");
    check.report(2, 100, "good");
    expect(check.report(3, 100, "bad")).toHaveLength(1);
    expect(check.report(3, 100, "bad")).toEqual([]);
    expect(check.report(2, 100, "good")).toEqual([]);
    expect(check.found).toHaveLength(1);
  });

  it("judges nothing without a majority (three different digests of five)", () => {
    const check = new OutputCheck(5);
    expect(check.report(1, 100, "a")).toEqual([]);
    expect(check.report(2, 100, "b")).toEqual([]);
    expect(check.report(3, 100, "c")).toEqual([]);
    expect(check.found).toEqual([]);
  });

  it("keeps bounded memory for step counts nobody completes", () => {
    const check = new OutputCheck(3);
    for (let steps = 1; steps <= 10_000; steps++) check.report(1, steps, "a");
    expect(check.report(2, 10_000, "a")).toEqual([]);
    expect(check.report(3, 10_000, "b")).toHaveLength(1);
  });

  it("reads back a report and refuses malformed ones", () => {
    expect(decodeDigestReport(encodeDigestReport(1200, "0123abcd"))).toEqual({
      steps: 1200,
      digest: "0123abcd",
    });
    expect(decodeDigestReport(new Uint8Array(8))).toBeNull();
    expect(decodeDigestReport(encodeDigestReport(-1, "ab"))).toBeNull();
    expect(decodeDigestReport(encodeDigestReport(5, "not hex!"))).toBeNull();
  });
});
