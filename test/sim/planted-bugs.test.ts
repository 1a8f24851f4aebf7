import { describe, expect, it } from "vitest";
import type { ViolationKind } from "../../src/sim/checker.ts";
import { PLANTED_BUGS } from "../../src/sim/planted-bugs.ts";
import { scenarioFromSeed } from "../../src/sim/scenario.ts";
import { replayCommand, runScenario } from "../../src/sim/simulator.ts";

const SEEDS_MAX = 3000;

/** The checker is trusted only because it catches each of these planted bugs. */
describe("the checker catches planted bugs", () => {
  const caught = new Map<string, ViolationKind>();

  it.each(PLANTED_BUGS)("%s", (bug) => {
    for (let seed = 1; seed <= SEEDS_MAX; seed++) {
      const result = runScenario(scenarioFromSeed(seed, bug));
      if (result.ok) continue;
      caught.set(bug, result.violation!.kind);
      // The printed command replays the same failure.
      expect(replayCommand(result.scenario)).toContain(`--seed ${seed}`);
      expect(replayCommand(result.scenario)).toContain(`--bug ${bug}`);
      const again = runScenario(scenarioFromSeed(seed, bug, result.scenario.replicaCount));
      expect(again.violation?.message).toBe(result.violation!.message);
      return;
    }
    expect.fail(`planted bug ${bug} went unnoticed for ${SEEDS_MAX} seeds`);
  });

  it("between them they exercise the agreement, durability, liveness, integrity and read checks", () => {
    const kinds = new Set(caught.values());
    for (const kind of [
      "agreement",
      "durability",
      "liveness",
      "integrity",
      "linearizability",
    ] as const)
      expect(kinds).toContain(kind);
  });
});
