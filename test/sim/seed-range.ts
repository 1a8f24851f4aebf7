import { expect } from "vitest";
import { scenarioFromSeed } from "../../src/sim/scenario.ts";
import { formatFailure, runScenario } from "../../src/sim/simulator.ts";

/** Run seeds [from, from+count) and fail with the replay command of the first bad one. */
export function expectSeedsPass(from: number, count: number, replicaCount?: number): void {
  for (let seed = from; seed < from + count; seed++) {
    const result = runScenario(scenarioFromSeed(seed, undefined, replicaCount));
    if (!result.ok) expect.fail(formatFailure(result));
  }
}

/** Seeds per `it`, so the reporter shows progress through a long range. */
export const CHUNK = 100;

export function chunks(from: number, count: number): number[] {
  const starts: number[] = [];
  for (let start = from; start < from + count; start += CHUNK) starts.push(start);
  return starts;
}
