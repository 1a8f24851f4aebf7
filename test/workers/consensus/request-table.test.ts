import { describe, expect, it } from "vitest";
import { expiredRequestError, RequestTable } from "../../../src/workers/consensus/request-table.ts";

describe("the pending-request table", () => {
  it("hands out growing ids, expires in deadline order, and tracks what still waits for a leader", () => {
    const table = new RequestTable(3, 100);
    const a = table.add(0, 1, 1, 1, new Uint8Array(1), 0);
    const b = table.add(0, 2, 1, 1, new Uint8Array(1), 10);
    expect(b.requestId).toBeGreaterThan(a.requestId);
    expect([...table.waiting()]).toEqual([a, b]);
    table.markSent(a);
    expect(a.command).toBeNull();
    expect([...table.waiting()]).toEqual([b]);
    expect(table.expire(105).map((r) => r.requestId)).toEqual([a.requestId]);
    expect(table.take(b.requestId)).toBe(b);
    expect(table.take(b.requestId)).toBeUndefined();
    expect([...table.waiting()]).toEqual([]);
    expect(table.size).toBe(0);
  });

  it("keeps a forwarded request's bytes so a refusal can send it again", () => {
    const table = new RequestTable(4, 100);
    const r = table.add(0, 1, 1, 1, new Uint8Array([7]), 0);
    table.markSent(r, true);
    expect([...table.waiting()]).toEqual([]);
    table.markWaiting(r, 2);
    expect(r.refusedBy).toBe(2);
    expect(r.command).toEqual(new Uint8Array([7]));
    expect([...table.waiting()]).toEqual([r]);
    expect(table.get(r.requestId)).toBe(r);
    table.markSent(r);
    expect(() => table.markWaiting(r, 3)).toThrow(/kept forward/);
  });

  it("is bounded", () => {
    const table = new RequestTable(2, 100);
    table.add(0, 1, 1, 1, new Uint8Array(1), 0);
    table.add(0, 2, 1, 1, new Uint8Array(1), 0);
    expect(table.full).toBe(true);
    expect(() => table.add(0, 3, 1, 1, new Uint8Array(1), 0)).toThrow(/full/);
  });

  it("says 'not executed' only for a request that never reached a possible leader", () => {
    const table = new RequestTable(4, 100);
    const never = table.add(0, 1, 1, 1, new Uint8Array([1]), 0);
    expect(expiredRequestError(never, 100, "follower").text).toMatch(/^CLUSTERDOWN .*not executed/);
    expect(expiredRequestError(never, 100, "recovering").text).toMatch(/still recovering/);
    // Forwarded to a leader, then refused by the next one and waiting again: the first copy may
    // still be recovered by a later Phase 1 and run, so a retry after "not executed" would run twice.
    const refused = table.add(0, 2, 1, 1, new Uint8Array([2]), 0);
    table.markSent(refused, true);
    table.markWaiting(refused, 3);
    expect(refused.state).toBe("waiting");
    const error = expiredRequestError(refused, 100, "follower");
    expect(error.reason).toBe("timeout");
    expect(error.text).toMatch(/^TIMEOUT .*may or may not have been applied/);
  });
});
