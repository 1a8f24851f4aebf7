import { describe, expect, it } from "vitest";
import { scenarioFromSeed } from "../../src/sim/scenario.ts";
import { runScenario } from "../../src/sim/simulator.ts";

describe("the simulator is deterministic", () => {
  it("the same seed gives the same run, message for message", () => {
    for (const seed of [7, 42, 1234]) {
      const first: string[] = [];
      const second: string[] = [];
      const a = runScenario(scenarioFromSeed(seed), (line) => first.push(line));
      const b = runScenario(scenarioFromSeed(seed), (line) => second.push(line));
      expect(a.ok).toBe(true);
      expect(first.length).toBeGreaterThan(100);
      expect(second).toEqual(first);
      expect(b.chosenSlots).toBe(a.chosenSlots);
    }
  });

  it("different seeds give different runs", () => {
    const a = runScenario(scenarioFromSeed(1));
    const b = runScenario(scenarioFromSeed(2));
    expect([a.packetsSent, a.chosenSlots]).not.toEqual([b.packetsSent, b.chosenSlots]);
  });
});
