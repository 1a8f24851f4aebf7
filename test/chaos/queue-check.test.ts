/** The job-queue checker on hand-written histories of RPUSH, BLMOVE and the final LRANGEs. */
import { describe, expect, it } from "vitest";
import type { Operation } from "../../src/chaos/history.ts";
import { checkQueueKey } from "../../src/chaos/queue-check.ts";
import { enqueue, failedEnqueue, queueRead, take } from "./ops.ts";

/** The final reads of q0.1 and its processing list p0.1. */
function finals(queued: string[], processing: string[]): Operation[] {
  return [queueRead(queued, 100, 101, "q0.1"), queueRead(processing, 102, 103, "p0.1")];
}

function anomalies(ops: Operation[]): string {
  return checkQueueKey(ops, "q0.1")
    .anomalies.map((a) => a.message)
    .join("\n");
}

describe("job queue consistency", () => {
  it("accepts jobs taken once, the rest left, unknown outcomes either way", () => {
    const ops = [
      enqueue("a", 0, 1),
      enqueue("b", 0, 2),
      enqueue("c", 3, null), // unknown, took effect
      enqueue("d", 3, null), // unknown, never took effect
      take("a", 2, 4),
      take(null, 5, 6),
      take("x", 7, null), // unknown: its job (b) moved, the client never saw it
      ...finals(["c"], ["b", "a"]),
    ];
    expect(anomalies(ops)).toBe("");
  });

  it("reports a lost acknowledged job", () => {
    const ops = [enqueue("a", 0, 1), enqueue("b", 0, 1), take("a", 2, 3), ...finals([], ["a"])];
    expect(anomalies(ops)).toMatch(/1 acknowledged enqueue\(s\) lost: b/);
  });

  it("reports a job delivered twice", () => {
    const ops = [enqueue("a", 0, 1), take("a", 2, 3), take("a", 2, 4), ...finals([], ["a"])];
    expect(anomalies(ops)).toMatch(/job a was delivered twice/);
  });

  it("reports a job taken and still queued, or in both lists", () => {
    const ops = [enqueue("a", 0, 1), take("a", 2, 3), ...finals(["a"], ["a"])];
    expect(anomalies(ops)).toMatch(/job a is in the queue and processing 2 times/);
    expect(anomalies(ops)).toMatch(/job a was taken but is still in the queue/);
  });

  it("reports a taken job missing from processing", () => {
    const ops = [enqueue("a", 0, 1), enqueue("b", 0, 1), take("a", 2, 3), ...finals([], ["b"])];
    expect(anomalies(ops)).toMatch(/job a was taken but is not in processing/);
  });

  it("reports a job moved by no take, a refused enqueue's job, and a take before its enqueue", () => {
    expect(anomalies([enqueue("a", 0, 1), ...finals([], ["a"])])).toMatch(
      /job a is in processing but no take returned it/,
    );
    expect(anomalies([failedEnqueue("a", 0, 1), ...finals(["a"], [])])).toMatch(
      /job a is there but its enqueue was refused/,
    );
    expect(anomalies([take("a", 0, 1), enqueue("a", 2, 3), ...finals([], ["a"])])).toMatch(
      /a take returned job a before anything enqueued it/,
    );
  });

  it("says so when a final read is missing", () => {
    expect(anomalies([enqueue("a", 0, 1), queueRead(["a"], 10, 11, "q0.1")])).toMatch(
      /no final read of p0.1/,
    );
  });
});
