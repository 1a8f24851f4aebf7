/**
 * Only an error that proves the command did not run is a definite failure; any doubt is an
 * unknown outcome (the checkers then let the command take effect at any time, or never).
 */
import { describe, expect, it } from "vitest";
import { errorOutcome } from "../../src/chaos/error-outcome.ts";

const cases: [string, "fail" | "unknown"][] = [
  [
    "CLUSTERDOWN no leader elected within 2000 ms (--request-timeout-ms); the request was not executed",
    "fail",
  ],
  ["Stream isn't writeable and enableOfflineQueue options is false", "fail"],
  [
    "TIMEOUT request not confirmed within 2000 ms (--request-timeout-ms); it may or may not have been applied",
    "unknown",
  ],
  ["SHUTDOWN replica is shutting down; the request may or may not have been applied", "unknown"],
  ["SHUTDOWN replica is shutting down", "unknown"],
  ["Command timed out", "unknown"],
  ["Connection is closed.", "unknown"],
  ["Reached the max retries per request limit (which is 0).", "unknown"],
  ["ERR max number of clients reached", "unknown"],
  ["may or may not have been applied; it was not executed twice", "unknown"],
];

describe("what an error says about whether the command ran", () => {
  for (const [text, outcome] of cases)
    it(`${outcome}: ${text}`, () => {
      expect(errorOutcome(new Error(text)).outcome).toBe(outcome);
    });
});
