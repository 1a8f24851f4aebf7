import { describe, expect, it } from "vitest";
import { scenarioFromSeed } from "../../src/sim/scenario.ts";
import { formatFailure, runScenario, type TransferCounters } from "../../src/sim/simulator.ts";

/**
 * Leadership transfers mixed into every fault the simulator has (scenario.transferRate): the
 * invariants hold, and the runs really exercise the transfer's outcomes, not only its start. A
 * transfer succeeds when its target wins with the ballot its TimeoutNow campaign drew
 * (campaignsWon); "completed" alone also counts a campaign the target began on its own timeout.
 */
describe("leadership transfers in the simulator", () => {
  it("start, complete and time out across seeds; TimeoutNow campaigns win, with every invariant holding", () => {
    const totals: TransferCounters = {
      started: 0,
      completed: 0,
      timedOut: 0,
      campaigns: 0,
      campaignsWon: 0,
    };
    for (let seed = 1; seed <= 80; seed++) {
      const result = runScenario(scenarioFromSeed(seed));
      if (!result.ok) expect.fail(formatFailure(result));
      for (const key of Object.keys(totals) as (keyof TransferCounters)[])
        totals[key] += result.transfers[key];
    }
    const failed = totals.campaigns - totals.campaignsWon;
    console.log(
      `seeds 1-80: ${totals.campaigns} TimeoutNow campaigns, ${failed} failed their first Phase 1`,
    );
    expect(totals.completed).toBeGreaterThan(0);
    expect(totals.timedOut).toBeGreaterThan(0);
    expect(totals.started).toBeGreaterThanOrEqual(totals.completed + totals.timedOut);
    expect(totals.campaigns).toBeGreaterThan(0);
    expect(totals.campaignsWon).toBeGreaterThan(0);
    // What is left fails for the drawn faults (crashes, stalls, partitions, duels, a transfer
    // replaced by the next); a target that waits an election timeout for a refused Prepare
    // failed 20-27% of campaigns before Phase 1 asked again (resendPrepares). Since then 14.5-17.5%
    // (seeds 1-80 and 81-240, over the builds of 2026-11-30: any change to what the runs send
    // moves it a little), so the bound sits between.
    expect(failed / totals.campaigns).toBeLessThan(0.19);
  });

  it("TimeoutNow campaigns win with 3, 5, 7 and 9 replicas", () => {
    for (const replicas of [3, 5, 7, 9]) {
      let won = 0;
      for (let seed = 1; seed <= 40 && won === 0; seed++) {
        const s = scenarioFromSeed(seed, undefined, replicas);
        if (s.transferRate === 0) continue;
        const result = runScenario(s);
        if (!result.ok) expect.fail(formatFailure(result));
        won += result.transfers.campaignsWon;
      }
      expect(won, `N=${replicas}`).toBeGreaterThan(0);
    }
  });
});
