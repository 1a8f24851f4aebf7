import { describe, expect, it } from "vitest";
import type { ReadResult } from "../../../src/core/replica.ts";
import { ReadServer } from "../../../src/workers/consensus/read-server.ts";

function harness(
  options: { pendingReadsMax?: number; queue?: ReadResult; reaskAfterMs?: number } = {},
) {
  const asked: number[] = [];
  const cancelled: number[] = [];
  const replies: { connId: number; seq: number; text: string }[] = [];
  const counts: string[] = [];
  let now = 0;
  const server = new ReadServer(
    {
      askIndex: (ctx) => {
        asked.push(ctx);
        return options.queue ?? "queued";
      },
      cancelIndex: (ctx) => cancelled.push(ctx),
      serve: (commands) => Buffer.from(`+${commands.length}\r\n`),
      reply: (_worker, connId, seq, reply) =>
        replies.push({ connId, seq, text: Buffer.from(reply).toString("latin1") }),
      nowMs: () => now,
      count: (outcome) => counts.push(outcome),
    },
    {
      pendingReadsMax: options.pendingReadsMax ?? 10,
      requestTimeoutMs: 100,
      reaskAfterMs: options.reaskAfterMs ?? 1000,
    },
  );
  return {
    server,
    asked,
    cancelled,
    replies,
    counts,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const get = [[Buffer.from("GET"), Buffer.from("k")]];

describe("ReadServer", () => {
  it("answers a read only once its index is applied", () => {
    const h = harness();
    expect(h.server.add(0, 7, 1, get)).toBe(true);
    expect(h.server.add(0, 8, 1, get)).toBe(true);
    expect(h.asked).toEqual([1, 2]);
    h.server.onIndexes([{ ctx: 1, index: 5 }], 5); // applied already
    expect(h.replies.map((r) => r.connId)).toEqual([7]);
    h.server.onIndexes([{ ctx: 2, index: 9 }], 5);
    expect(h.replies).toHaveLength(1);
    expect(h.server.onApplied(8)).toBe(0);
    expect(h.server.onApplied(9)).toBe(1);
    expect(h.replies.map((r) => r.connId)).toEqual([7, 8]);
    expect(h.server.size).toBe(0);
  });

  it("times out reads with no index, or not applied, and ignores their late index", () => {
    const h = harness();
    h.server.add(0, 1, 1, get);
    h.advance(50);
    h.server.add(0, 2, 1, get);
    h.server.onIndexes([{ ctx: 2, index: 10 }], 3);
    h.advance(60);
    h.server.expire();
    expect(h.replies.map((r) => r.connId)).toEqual([1]);
    expect(h.replies[0]!.text).toMatch(/^-TIMEOUT .*no leader confirmed a read index/);
    h.advance(60);
    h.server.expire();
    expect(h.replies[1]!.text).toMatch(/has not applied slot 10 yet/);
    h.server.onIndexes([{ ctx: 1, index: 1 }], 20);
    expect(h.server.onApplied(20)).toBe(0);
    expect(h.replies).toHaveLength(2);
    expect(h.counts).toEqual(["timeout", "timeout"]);
    expect(h.cancelled).toEqual([1, 2]); // the core stops asking for them
  });

  it("asks again for the index of a read parked on one that is not applied for long", () => {
    const h = harness({ reaskAfterMs: 30 });
    h.server.add(0, 1, 1, get);
    h.server.onIndexes([{ ctx: 1, index: 9 }], 3); // a slot no leader may fill soon
    h.advance(20);
    h.server.expire();
    expect(h.asked).toEqual([1]);
    h.advance(20);
    h.server.expire();
    expect(h.asked).toEqual([1, 2]); // asked again under a new ctx
    h.server.onIndexes([{ ctx: 1, index: 9 }], 3); // a late answer for the old ctx: ignored
    h.server.onIndexes([{ ctx: 2, index: 3 }], 3);
    expect(h.replies.map((r) => r.connId)).toEqual([1]);
    expect(h.server.onApplied(9)).toBe(0); // not answered twice
  });

  it("refuses beyond its bound or when the core's queue is full", () => {
    const h = harness({ pendingReadsMax: 1 });
    expect(h.server.add(0, 1, 1, get)).toBe(true);
    expect(h.server.add(0, 2, 1, get)).toBe(false);
    expect(harness({ queue: "queue-full" }).server.add(0, 1, 1, get)).toBe(false);
  });

  it("answers every waiting read at shutdown, one error per pipelined command", () => {
    const h = harness();
    h.server.add(0, 1, 1, [...get, ...get]);
    h.server.drain("SHUTDOWN bye");
    expect(h.replies[0]!.text).toBe("-SHUTDOWN bye\r\n-SHUTDOWN bye\r\n");
  });
});
