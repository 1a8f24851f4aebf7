import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ClientSessions,
  SESSION_IDLE_MS,
  SESSION_NEW_MAX_AGE_MS,
} from "../../../src/workers/consensus/client-sessions.ts";

describe("client sessions: each request id runs once", () => {
  it("runs a request the first time and skips every copy after, and anything at or below the floor", () => {
    const s = new ClientSessions();
    expect(s.admit(1, 7, 5, 4, 0)).toBe(true);
    expect(s.admit(1, 7, 5, 4, 0)).toBe(false); // the copy sent again after a leader change
    expect(s.admit(1, 8, 5, 4, 0)).toBe(true); // another incarnation is another session
    expect(s.admit(1, 7, 9, 8, 0)).toBe(true); // floor 8: ids <= 8 are settled at the origin
    expect(s.admit(1, 7, 6, 4, 0)).toBe(false); // a late copy of a request its origin gave up on
  });

  it("under any interleaving of copies, runs exactly the ids that appear, once each", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 200 }), (order) => {
        // Each appearance is a copy of request `id`; the origin's floor only rises past ids it
        // has seen applied (what the runtime guarantees), so no first copy is ever below it.
        const s = new ClientSessions();
        const ran = new Map<number, number>();
        const seen = new Set<number>();
        let floor = 0;
        for (const id of order) {
          if (s.admit(3, 1, id, floor, 0)) ran.set(id, (ran.get(id) ?? 0) + 1);
          seen.add(id);
          while (seen.has(floor + 1)) floor++;
        }
        for (const [, count] of ran) expect(count).toBe(1);
        for (const id of seen) if (!ran.has(id)) expect(id).toBeLessThanOrEqual(floor);
      }),
    );
  });

  it("survives a snapshot and forgets idle sessions by log time only", () => {
    const s = new ClientSessions();
    s.admit(1, 1, 10, 5, 1000);
    s.admit(2, 9, 3, 0, 2000);
    const copy = ClientSessions.decode(s.encode());
    expect(copy.admit(1, 1, 10, 5, 3000)).toBe(false);
    expect(copy.admit(2, 9, 4, 0, 3000)).toBe(true);
    expect(
      Buffer.from(copy.encode()).equals(Buffer.from(ClientSessions.decode(copy.encode()).encode())),
    ).toBe(true);
    copy.expire(3000 + SESSION_IDLE_MS + 1);
    expect(copy.size).toBe(0);
    expect(() => ClientSessions.decode(new Uint8Array(3))).toThrow(/truncated/);
  });

  it("never runs a late copy of a request whose session was forgotten (a vote recovered an hour later)", () => {
    const s = new ClientSessions();
    // Request 5 of origin 1 runs at log time 1000; an old leader also holds a copy of it, stamped
    // 1000, on its disk. The cluster then goes quiet for that origin, and its session is dropped.
    expect(s.admit(1, 7, 5, 4, 1000)).toBe(true);
    const later = 1000 + SESSION_IDLE_MS + 1;
    s.admit(2, 3, 1, 0, later); // other traffic moves the log clock on
    s.expire(later);
    expect(s.size).toBe(1);
    // The old leader's copy is recovered by a Phase 1 and chosen: it must not run a second time.
    expect(s.admit(1, 7, 5, 4, later, 1000)).toBe(false);
    expect(s.staleCopies).toBe(1);
    // A new incarnation's fresh request opens a session as always.
    expect(s.admit(1, 8, 1, 0, later, later)).toBe(true);
    // A young batch of an unknown session is a first copy: it runs.
    expect(s.admit(4, 1, 1, 0, later, later - SESSION_NEW_MAX_AGE_MS + 1)).toBe(true);
  });
});
