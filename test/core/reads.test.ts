import { describe, expect, it } from "vitest";
import { ballotOf, type Message, MessageType } from "../../src/core/index.ts";
import { Cluster } from "./harness.ts";

const isType = (type: number) => (m: Message) => m.type === type;

describe("linearizable reads (ReadIndex)", () => {
  it("a leader's read waits for a read round a majority echoed, then gets the chosen prefix", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "a", "b");
    c.deliver();
    const chosen = c.node(1).status().chosenSlot;
    expect(c.node(1).read(7)).toBe("queued");
    c.drain(1);
    expect(c.reads[1]).toEqual([]); // the round is out, nobody answered yet
    const round = c.inbox.filter(isType(MessageType.Heartbeat));
    expect(round.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(round.every((m) => m.type === MessageType.Heartbeat && m.readRound === 1)).toBe(true);
    // Only replica 2 answers: with the leader, a majority of three.
    c.deliver((m) => m.to !== 3 && m.from !== 3);
    expect(c.reads[1]).toEqual([{ ctx: 7, index: chosen }]);
  });

  it("one round serves every read that waited for it", () => {
    const c = new Cluster(5);
    c.elect(1);
    for (let ctx = 1; ctx <= 10; ctx++) c.node(1).read(ctx);
    c.drain(1);
    expect(c.inbox.filter(isType(MessageType.Heartbeat))).toHaveLength(4);
    c.deliver();
    expect(c.reads[1]!.map((r) => r.ctx)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("a leader cut off from the majority serves no read, and steps down", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "x");
    c.deliver();
    c.node(1).read(1);
    c.drain(1);
    c.deliver((m) => m.from !== 1 && m.to !== 1); // replica 1 is partitioned away
    expect(c.reads[1]).toEqual([]);
    // Replica 2 takes over and writes; replica 1 still believes it leads.
    const apart = (m: Message) => m.from !== 1 && m.to !== 1;
    // Replica 1's clock stands still (a long pause): only 2 and 3 tick.
    for (let i = 0; i < 200 && c.node(2).role !== "leader"; i++) {
      c.tick(2);
      c.tick(3);
      c.deliver((m) => apart(m) && !(m.from === 3 && m.type === MessageType.Probe));
    }
    expect(c.node(2).role).toBe("leader");
    c.propose(2, "y");
    c.deliver(apart);
    expect(c.node(1).role).toBe("leader");
    c.node(1).read(2);
    c.drain(1);
    // The partition heals: replica 1's read round meets the new ballot and is refused.
    c.deliver();
    expect(c.reads[1]).toEqual([]);
    expect(c.node(1).role).toBe("follower");
    // Asked again of the new leader, both reads get an index that covers "y".
    c.heartbeat(); // replica 1 learns who leads now
    c.tick(1, 3);
    c.deliver();
    expect(c.reads[1]!.map((r) => r.ctx).sort()).toEqual([1, 2]);
    for (const read of c.reads[1]!) expect(read.index).toBe(c.node(2).status().chosenSlot);
  });

  it("a follower asks the leader and gets an index once the leader confirmed it", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "a");
    c.deliver();
    expect(c.node(3).read(42)).toBe("queued");
    c.drain(3);
    const ask = c.inbox.find(isType(MessageType.ReadIndex));
    expect(ask).toMatchObject({ from: 3, to: 1 });
    c.deliver();
    expect(c.reads[3]).toEqual([{ ctx: 42, index: c.node(1).status().chosenSlot }]);
  });

  it("ignores an answer meant for another incarnation or a read never asked", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.node(2).read(5);
    c.drain(2);
    const ask = c.inbox.find(isType(MessageType.ReadIndex));
    if (ask?.type !== MessageType.ReadIndex) throw new Error("no ReadIndex sent");
    c.inbox = [];
    const answer = {
      type: MessageType.ReadIndexReply,
      from: 1,
      to: 2,
      ballot: c.node(1).status().ballot,
      seq: ask.seq,
      index: 0,
    } as const;
    c.node(2).step({ ...answer, nonce: ask.nonce ^ 1 }); // another incarnation's nonce
    c.node(2).step({ ...answer, nonce: ask.nonce, seq: ask.seq + 1 }); // never asked
    c.drain(2);
    expect(c.reads[2]).toEqual([]);
    // A reply must carry its sender's own ballot.
    c.node(2).step({ ...answer, nonce: ask.nonce, ballot: ballotOf(9, 3) });
    c.drain(2);
    expect(c.reads[2]).toEqual([]);
    c.node(2).step({ ...answer, nonce: ask.nonce });
    c.drain(2);
    expect(c.reads[2]).toEqual([{ ctx: 5, index: 0 }]);
  });

  it("a new leader's read index covers what Phase 1 found, even before it is chosen again", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "a", "b");
    c.deliver();
    c.propose(1, "c");
    // Slot 2 reaches replica 2 only; replica 1 crashes before anyone learns it is chosen.
    c.deliver((m) => m.type === MessageType.Accept && m.to === 2);
    c.crash(1);
    c.elect(2);
    const status = c.node(2).status();
    c.node(2).read(1);
    c.drain(2);
    c.deliver((m) => m.type !== MessageType.Accepted); // re-proposals not yet chosen again
    expect(c.reads[2]![0]!.index).toBeGreaterThanOrEqual(2);
    expect(status.lastSlot).toBeGreaterThanOrEqual(2);
  });

  it("a single replica confirms its own reads", () => {
    const c = new Cluster(1);
    c.elect(1);
    c.propose(1, "a");
    c.node(1).read(3);
    c.drain(1);
    expect(c.reads[1]).toEqual([{ ctx: 3, index: 1 }]);
  });

  it("forgets a cancelled read: it is not asked again and its late index is dropped", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.node(2).read(5);
    c.drain(2);
    c.inbox = []; // the ask is lost
    c.node(2).cancelRead(5);
    expect(c.node(2).status().pendingReads).toBe(0);
    c.tick(2, 5);
    expect(c.inbox.filter(isType(MessageType.ReadIndex))).toEqual([]);
  });

  it("bounds the reads it waits for", () => {
    const c = new Cluster(3, { proposalQueueMax: 2 });
    c.elect(1);
    expect(c.node(1).read(1)).toBe("queued");
    expect(c.node(1).read(2)).toBe("queued");
    expect(c.node(1).read(3)).toBe("queue-full");
  });
});
