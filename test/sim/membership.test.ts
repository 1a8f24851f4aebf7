import { describe, expect, it } from "vitest";
import { MEMBERSHIP_SEEDS_FROM, scenarioFromSeed } from "../../src/sim/scenario.ts";
import { formatFailure, runScenario } from "../../src/sim/simulator.ts";

// The membership profile: the leader is asked for a change every ~20 ticks (add a spare as
// learner, promote, demote, remove, or an arbitrary set of voters at once), with lags from 1 to
// 64 slots, under every fault of the mixed profile. The invariants are the usual ones plus
// "every replica holds the configuration the chosen log makes" and durability counted on the
// voters of each slot's own configuration.
describe("membership changes under faults", () => {
  it.each([3, 5, 7])("N=%i: 150 seeds of the membership profile", (n) => {
    let changes = 0;
    for (
      let seed = MEMBERSHIP_SEEDS_FROM + n * 1000;
      seed < MEMBERSHIP_SEEDS_FROM + n * 1000 + 150;
      seed++
    ) {
      const result = runScenario(scenarioFromSeed(seed, undefined, n));
      if (!result.ok) expect.fail(formatFailure(result));
      changes += result.membershipChanges;
    }
    expect(changes).toBeGreaterThan(300);
  });

  // Seeds that once failed (liveness: new voters that never learned they vote, probes refused by
  // lagging voters, a promoted leader handing over at once), kept as regression runs.
  it.each([200557, 202338, 203535, 204274, 204336, 204642, 206903])("seed %i", (seed) => {
    const result = runScenario(scenarioFromSeed(seed));
    if (!result.ok) expect.fail(formatFailure(result));
  });
});
