import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  REPLAY_WINDOW_BITS,
  REPLAY_WINDOW_SEQS,
  ReplayWindow,
  SEQUENCE_MAX,
} from "../../src/transport/replay-window.ts";

/** admit() of each seq in turn, in incarnation 1. */
const run = (window: ReplayWindow, seqs: readonly number[]) => seqs.map((s) => window.admit(1, s));

describe("ReplayWindow (RFC 4303 §3.4.3 / RFC 6479 sliding window, per sender incarnation)", () => {
  it("admits sequence numbers in order, each once", () => {
    const window = new ReplayWindow();
    expect(run(window, [0, 1, 2, 3])).toEqual(["ok", "ok", "ok", "ok"]);
    expect(run(window, [0, 3])).toEqual(["replay", "replay"]);
  });

  it("admits reordered numbers inside the window once; a duplicate is a replay", () => {
    const window = new ReplayWindow();
    expect(run(window, [5, 2, 9, 0, 7, 2, 9, 1])).toEqual([
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      "replay",
      "replay",
      "ok",
    ]);
  });

  it("admits down to REPLAY_WINDOW_SEQS - 1 behind the highest; further behind is a replay", () => {
    const window = new ReplayWindow();
    const highest = 100_000;
    expect(window.admit(1, highest)).toBe("ok");
    expect(window.admit(1, highest - REPLAY_WINDOW_SEQS + 1)).toBe("ok");
    expect(window.admit(1, highest - REPLAY_WINDOW_SEQS)).toBe("replay");
    expect(window.admit(1, 0)).toBe("replay"); // far below
    expect(REPLAY_WINDOW_SEQS).toBeGreaterThanOrEqual(1024); // IPsec's large windows; UDP reorders
    expect(REPLAY_WINDOW_SEQS).toBe(REPLAY_WINDOW_BITS - 32);
  });

  it("a jump larger than the window clears it: old bits do not alias new numbers", () => {
    const window = new ReplayWindow();
    expect(run(window, [0, 1, 2])).toEqual(["ok", "ok", "ok"]);
    // Same bit positions, REPLAY_WINDOW_BITS further on (a ring index collision if not cleared).
    expect(
      run(window, [REPLAY_WINDOW_BITS, REPLAY_WINDOW_BITS + 1, REPLAY_WINDOW_BITS + 2]),
    ).toEqual(["ok", "ok", "ok"]);
    expect(run(window, [10 * REPLAY_WINDOW_BITS + 1, 10 * REPLAY_WINDOW_BITS])).toEqual([
      "ok",
      "ok",
    ]);
    expect(window.admit(1, REPLAY_WINDOW_BITS + 1)).toBe("replay"); // now far below
  });

  it("works at the top of the range (no 32-bit shifts): near 2^53 and across 2^32", () => {
    const window = new ReplayWindow();
    const top = SEQUENCE_MAX;
    expect(run(window, [top - 40, top - 3, top, top - 1])).toEqual(["ok", "ok", "ok", "ok"]);
    expect(run(window, [top - 3, top])).toEqual(["replay", "replay"]);
    const across = new ReplayWindow();
    const u32 = 2 ** 32;
    expect(run(across, [u32 - 2, u32 + 1, u32 - 1, u32])).toEqual(["ok", "ok", "ok", "ok"]);
    expect(run(across, [u32 - 2, u32 - 1, u32, u32 + 1])).toEqual([
      "replay",
      "replay",
      "replay",
      "replay",
    ]);
  });

  it("an older incarnation is a replay; a newer one resets the window (the sender restarted)", () => {
    const window = new ReplayWindow();
    expect(window.admit(5, 100)).toBe("ok");
    expect(window.admit(4, 1_000_000)).toBe("replay");
    expect(window.admit(6, 0)).toBe("ok");
    expect(window.admit(6, 100)).toBe("ok"); // seen in incarnation 5, new in 6
    expect(window.admit(5, 101)).toBe("replay");
    expect(window.incarnation).toBe(6);
  });

  it("matches a set of everything seen, for any order of arrivals within reach", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 * REPLAY_WINDOW_BITS }), { maxLength: 400 }),
        (seqs) => {
          const window = new ReplayWindow();
          const seen = new Set<number>();
          let highest = -1;
          for (const seq of seqs) {
            const expected =
              seen.has(seq) || (seq <= highest && highest - seq >= REPLAY_WINDOW_SEQS)
                ? "replay"
                : "ok";
            expect(window.admit(1, seq)).toBe(expected);
            if (expected === "ok") {
              seen.add(seq);
              highest = Math.max(highest, seq);
            }
          }
        },
      ),
    );
  });
});
