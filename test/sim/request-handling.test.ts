import { describe, expect, it } from "vitest";
import { Checker, Violation } from "../../src/sim/checker.ts";
import {
  logCommand,
  readLogHeader,
  requestKey,
  writeLogHeader,
} from "../../src/sim/log-command.ts";
import { scenarioFromSeed } from "../../src/sim/scenario.ts";
import { runScenario, type SimResult } from "../../src/sim/simulator.ts";

function violation(action: () => void): string {
  try {
    action();
  } catch (error) {
    if (error instanceof Violation) return error.kind;
    throw error;
  }
  return "none";
}

function checkerWith(...keys: string[]): Checker {
  const checker = new Checker(3);
  for (const key of keys) {
    const [origin, incarnation, requestId] = key.split("/").map(Number) as [number, number, number];
    const command = logCommand(new Uint8Array(8));
    writeLogHeader(command, { origin, incarnation, requestId, floor: 0, takenMs: 0 });
    checker.onSubmitted(readLogHeader(command)!, command);
  }
  return checker;
}

describe("the checker's rules for client requests", () => {
  it("the log header round-trips at the runtime's offsets", () => {
    const command = logCommand(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]));
    const header = { origin: 3, incarnation: 7, requestId: 42, floor: 40, takenMs: 1234.5 };
    writeLogHeader(command, header);
    expect(readLogHeader(command)).toEqual(header);
    expect(requestKey(readLogHeader(command)!)).toBe("3/7/42");
    expect(readLogHeader(new Uint8Array(8))).toBeNull();
  });

  it("a request runs at most once: a second run, even in the same slot, is an integrity violation", () => {
    const checker = checkerWith("1/1/1", "1/1/2");
    checker.onExecuted(1, 1, ["1/1/1"]);
    expect(checker.onExecuted(2, 1, ["1/1/1"])).toBe(false); // another replica, same slot: fine
    expect(violation(() => checker.onExecuted(1, 2, ["1/1/1"]))).toBe("integrity");
    expect(violation(() => checkerWith().onExecuted(1, 1, ["1/1/2", "1/1/2"]))).toBe("integrity");
  });

  it("every replica runs the same requests in a slot (their sessions agree)", () => {
    const checker = checkerWith();
    checker.onExecuted(1, 1, ["1/1/1", "2/1/1"]);
    expect(violation(() => checker.onExecuted(2, 1, ["1/1/1"]))).toBe("integrity");
  });

  it('a request answered "not executed" (CLUSTERDOWN) never runs, before or after the answer', () => {
    const after = checkerWith();
    after.onNotExecuted("1/1/1");
    expect(violation(() => after.onExecuted(1, 1, ["1/1/1"]))).toBe("integrity");
    const before = checkerWith();
    before.onExecuted(1, 1, ["1/1/1"]);
    expect(violation(() => before.onNotExecuted("1/1/1"))).toBe("integrity");
  });

  it("an operation retried as a new request after a timeout may run twice: not a violation", () => {
    const checker = checkerWith();
    checker.onExecuted(1, 1, ["1/1/1"]); // timed out at its origin, ran anyway
    checker.onExecuted(1, 2, ["2/1/1"]); // the same operation, sent again as a new request
    expect(violation(() => checker.checkExecutions())).toBe("none");
  });
});

describe("the seeds exercise the runtime's request handling", () => {
  it("forwards, refusals, resends, skipped copies and every kind of answer all occur", () => {
    const totals = new Map<string, number>();
    const counters = [
      "forwarded",
      "refused",
      "resent",
      "duplicates",
      "notExecuted",
      "timedOut",
      "busy",
      "lost",
    ] as const satisfies readonly (keyof SimResult)[];
    for (let seed = 1; seed <= 40; seed++) {
      const result = runScenario(scenarioFromSeed(seed));
      expect(result.ok).toBe(true);
      for (const name of counters) totals.set(name, (totals.get(name) ?? 0) + result[name]);
    }
    for (const name of counters) expect(totals.get(name), name).toBeGreaterThan(0);
  });
});
