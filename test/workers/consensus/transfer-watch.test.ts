import { describe, expect, it } from "vitest";
import {
  clampTransferWaitMs,
  transferEndOf,
} from "../../../src/workers/consensus/transfer-watch.ts";

/**
 * POST /leader/transfer and SIGTERM answer from what happened: the target leads or met us with
 * its higher ballot, not merely "this replica stepped down".
 */
describe("a leadership transfer's outcome", () => {
  const leading = { role: "leader", knownLeader: 1, transferTarget: 3, transfersCompleted: 4 };

  it("runs while we lead with the transfer under way", () => {
    expect(transferEndOf(leading, 3, 4)).toBeNull();
  });

  it("is transferred when the target leads, or the core counted it completed", () => {
    const follows3 = { role: "follower", knownLeader: 3, transferTarget: 0, transfersCompleted: 4 };
    expect(transferEndOf(follows3, 3, 4)).toBe("transferred");
    const metBallot = {
      role: "follower",
      knownLeader: 0,
      transferTarget: 0,
      transfersCompleted: 5,
    };
    expect(transferEndOf(metBallot, 3, 4)).toBe("transferred");
  });

  it("is deposed when we stopped leading otherwise: check-quorum, or a third replica", () => {
    const checkQuorum = {
      role: "follower",
      knownLeader: 0,
      transferTarget: 0,
      transfersCompleted: 4,
    };
    expect(transferEndOf(checkQuorum, 3, 4)).toBe("deposed");
    const third = { role: "follower", knownLeader: 2, transferTarget: 0, transfersCompleted: 4 };
    expect(transferEndOf(third, 3, 4)).toBe("deposed");
  });

  it("timed out when we still lead and the core gave up", () => {
    expect(transferEndOf({ ...leading, transferTarget: 0 }, 3, 4)).toBe("timed-out");
  });

  it("waits wait_ms clamped to [heartbeat, 2 x election timeout]", () => {
    const timing = { heartbeatMs: 50, electionTimeoutMs: 500 };
    expect(clampTransferWaitMs(null, timing)).toBe(1000);
    expect(clampTransferWaitMs(0, timing)).toBe(50);
    expect(clampTransferWaitMs(300, timing)).toBe(300);
    expect(clampTransferWaitMs(86_400_000, timing)).toBe(1000);
  });
});
