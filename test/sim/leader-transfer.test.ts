import { describe, expect, it } from "vitest";
import { scenarioFromSeed } from "../../src/sim/scenario.ts";
import { formatFailure, runScenario } from "../../src/sim/simulator.ts";

/**
 * Leadership transfers mixed into every fault the simulator has (scenario.transferRate): the
 * invariants hold, and the runs really exercise the transfer's outcomes, not only its start.
 */
describe("leadership transfers in the simulator", () => {
  it("start, complete and time out across seeds, with every invariant holding", () => {
    const totals = { started: 0, completed: 0, timedOut: 0 };
    for (let seed = 1; seed <= 80; seed++) {
      const result = runScenario(scenarioFromSeed(seed));
      if (!result.ok) expect.fail(formatFailure(result));
      totals.started += result.transfers.started;
      totals.completed += result.transfers.completed;
      totals.timedOut += result.transfers.timedOut;
    }
    expect(totals.completed).toBeGreaterThan(0);
    expect(totals.timedOut).toBeGreaterThan(0);
    expect(totals.started).toBeGreaterThanOrEqual(totals.completed + totals.timedOut);
  });

  it("transfers complete with 3, 5, 7 and 9 replicas", () => {
    for (const replicas of [3, 5, 7, 9]) {
      let completed = 0;
      for (let seed = 1; seed <= 40 && completed === 0; seed++) {
        const s = scenarioFromSeed(seed, undefined, replicas);
        if (s.transferRate === 0) continue;
        const result = runScenario(s);
        if (!result.ok) expect.fail(formatFailure(result));
        completed += result.transfers.completed;
      }
      expect(completed, `N=${replicas}`).toBeGreaterThan(0);
    }
  });
});
