import { describe, expect, it } from "vitest";
import { transferVerdict } from "../../src/cli/leader-transfer-report.ts";

/** `apus leader transfer` succeeds only when the target leads after, whatever the leader said. */
describe("apus leader transfer: the verdict", () => {
  const answer = { outcome: "transferred", target: 3, elapsedMs: 40 };

  it("exits 0 when the target leads after", () => {
    const verdict = transferVerdict(1, answer, 3);
    expect(verdict.code).toBe(0);
    expect(verdict.text).toBe("replica 1 handed leadership to replica 3 in 40 ms; replica 3 leads");
    expect(verdict.json).toMatchObject({ ok: true, from: 1, target: 3, leaderAfter: 3 });
  });

  it("exits 1 when another replica leads after, or none is known to", () => {
    const other = transferVerdict(1, answer, 2);
    expect(other.code).toBe(1);
    expect(other.text).toMatch(/but replica 2 leads, not 3$/);
    expect(other.json).toMatchObject({ ok: false, leaderAfter: 2 });
    const none = transferVerdict(1, answer, 0);
    expect(none.code).toBe(1);
    expect(none.text).toMatch(/no replica is known to lead yet$/);
    expect(transferVerdict(1, { outcome: "transferred" }, 1).code).toBe(1);
  });
});
