import { describe, expect, it } from "vitest";
import { ballotOf, type Message, MessageType, type TimeoutNow } from "../../src/core/index.ts";
import { Cluster, text } from "./harness.ts";

/**
 * Leadership transfer (Raft thesis §3.10, carried over to Multi-Paxos): the leader stops forming
 * batches, waits until the target holds everything it proposed, then sends TimeoutNow; the target
 * runs Phase 1 at once with a higher ballot. See Replica's transfer section.
 */

const counters = (c: Cluster, id: number) => c.node(id).status().counters;
const timeoutNows = (c: Cluster) => c.sent.filter((m) => m.type === MessageType.TimeoutNow);

describe("leadership transfer", () => {
  it("hands leadership to the named follower with no election timeout, losing nothing", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    c.elect(1);
    c.propose(1, "a", "b");
    c.deliver();
    c.propose(1, "c");
    c.deliver();
    expect(c.node(1).transferLeadership(2)).toEqual({ started: true, target: 2 });
    c.drain(1);
    c.deliver(); // no tick anywhere: no timer decides this
    expect(c.node(2).role).toBe("leader");
    expect(c.node(1).role).toBe("follower");
    expect(c.node(2).status().ballot).toBeGreaterThan(c.node(1).status().ballot);
    expect(counters(c, 1).transfersStarted).toBe(1);
    expect(counters(c, 1).transfersCompleted).toBe(1);
    expect(counters(c, 2).transferCampaigns).toBe(1);
    c.propose(2, "d");
    c.deliver();
    c.heartbeat();
    for (const id of [1, 2, 3]) expect(c.applied[id]).toEqual(["a", "b", "c", "d"]);
  });

  it("without a target, picks the follower that reported the highest chosen prefix", () => {
    const c = new Cluster(3);
    c.elect(1);
    for (let i = 0; i < 3; i++) {
      c.propose(1, `x${i}`);
      c.deliver((m) => m.type === MessageType.Heartbeat || (m.to !== 3 && m.from !== 3));
    }
    c.heartbeat();
    expect(c.node(1).transferLeadership()).toEqual({ started: true, target: 2 });
  });

  it("refuses when not leading, for a bad target, and when no peer answers", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    expect(c.node(1).transferLeadership()).toEqual({ started: false, reason: "not-leader" });
    c.elect(1);
    for (const bad of [0, 1, 4, 1.5])
      expect(c.node(1).transferLeadership(bad)).toEqual({ started: false, reason: "bad-target" });
    const alone = new Cluster(1);
    alone.elect(1);
    expect(alone.node(1).transferLeadership()).toEqual({ started: false, reason: "no-target" });
  });

  it("commands wait during the transfer, and a transfer to a dead target times out and leads on", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    c.elect(1);
    c.crash(2);
    expect(c.node(1).transferLeadership(2).started).toBe(true);
    expect(c.node(1).propose(text("w"))).toBe("queued");
    c.drain(1);
    const accepts = () => c.inbox.filter((m) => m.type === MessageType.Accept).length;
    expect(accepts()).toBe(0); // not proposed while handing over
    c.deliver();
    // The transfer gives up after one election timeout; 3 keeps the leader in office meanwhile.
    for (let i = 0; i < 10; i++) {
      c.tick(1);
      c.deliver();
    }
    expect(counters(c, 1).transfersTimedOut).toBe(1);
    expect(c.node(1).role).toBe("leader");
    expect(c.node(1).status().transferTarget).toBe(0);
    c.deliver();
    c.heartbeat();
    expect(c.applied[1]).toEqual(["w"]);
    expect(c.applied[3]).toEqual(["w"]);
  });

  it("waits for a lagging target to catch up, then hands over", () => {
    const c = new Cluster(3, { catchupEntriesMax: 2, electionTicks: 20 });
    c.elect(1);
    for (let i = 0; i < 6; i++) {
      c.propose(1, `c${i}`);
      c.deliver((m) => m.to !== 3 && m.from !== 3); // 3 is cut off
    }
    expect(c.node(1).transferLeadership(3)).toEqual({ started: true, target: 3 });
    c.drain(1);
    for (let i = 0; i < 15 && c.node(3).role !== "leader"; i++) {
      c.tick(1);
      c.deliver();
    }
    expect(c.node(3).role).toBe("leader");
    expect(counters(c, 1).transfersCompleted).toBe(1);
    c.heartbeat();
    for (const id of [1, 2, 3]) expect(c.applied[id]).toEqual(["c0", "c1", "c2", "c3", "c4", "c5"]);
  });

  it("a transfer to a recovering replica times out and the leader leads on", () => {
    const c = new Cluster(5, { electionTicks: 10 });
    c.elect(1);
    c.propose(1, "a");
    c.deliver();
    c.crash(5); // 2 cannot finish recovering without an answer from 5
    c.crash(2);
    c.restart(2, { wiped: true, recovering: true });
    c.deliver();
    expect(c.node(2).role).toBe("recovering");
    expect(c.node(1).transferLeadership(2).started).toBe(true);
    for (let i = 0; i < 10; i++) {
      for (const id of [1, 2, 3, 4]) c.tick(id);
      c.deliver();
    }
    expect(counters(c, 1).transfersTimedOut).toBe(1);
    expect(c.node(1).role).toBe("leader");
    expect(c.node(2).role).toBe("recovering");
    c.propose(1, "b");
    c.deliver();
    c.heartbeat();
    expect(c.applied[3]).toEqual(["a", "b"]);
  });

  it("the other followers stop refusing the target for their leader's sake (N=5, no promise from the old leader)", () => {
    const c = new Cluster(5, { electionTicks: 10 });
    c.elect(1);
    c.propose(1, "a");
    c.deliver();
    c.node(1).transferLeadership(2);
    c.drain(1);
    // The old leader's promise never arrives: 2 needs two of 3, 4, 5, who heard 1 a moment ago.
    c.deliver((m) => !(m.type === MessageType.Promise && m.from === 1));
    expect(c.node(2).role).toBe("leader");
  });

  it("a follower that met the target's Prepare before its leader's TimeoutNow promises when the candidate asks again (N=5)", () => {
    const c = new Cluster(5, { electionTicks: 10, retransmitTicks: 2 });
    c.elect(1);
    c.propose(1, "a");
    c.deliver();
    c.node(1).transferLeadership(2);
    c.drain(1);
    // Only the target's TimeoutNow arrives now; 3, 4 and 5 meet 2's Prepare while they still
    // protect 1 and drop it. The old leader's promise is lost, so 2 needs two of 3, 4, 5.
    const late: Message[] = [];
    const noPromiseFrom1 = (m: Message) => !(m.type === MessageType.Promise && m.from === 1);
    c.deliver((m) => {
      if (m.type !== MessageType.TimeoutNow || m.to === 2) return noPromiseFrom1(m);
      late.push(m);
      return false;
    });
    expect(late.length).toBe(3);
    expect(c.node(2).role).toBe("candidate");
    c.inbox.push(...late); // the TimeoutNow reaches them after all
    c.deliver(noPromiseFrom1);
    // Within one retransmit interval, far short of an election timeout, 2 asks again and wins.
    c.tick(2, 2);
    c.deliver(noPromiseFrom1);
    expect(c.node(2).role).toBe("leader");
    c.propose(2, "b");
    c.deliver();
    c.heartbeat();
    for (const id of [2, 3, 4, 5]) expect(c.applied[id]).toEqual(["a", "b"]);
  });

  it("a release lifts the stickiness owed to the leader that granted it, not to a later leader (N=5)", () => {
    const c = new Cluster(5, { electionTicks: 10 });
    c.elect(1);
    c.propose(1, "a");
    c.deliver();
    // 1 hands over to 2, but only 3 hears of it: 3 no longer protects 1 against 2.
    c.node(1).transferLeadership(2);
    c.drain(1);
    c.deliver((m) => m.type !== MessageType.TimeoutNow || m.to === 3);
    expect(c.node(2).role).toBe("follower");
    // 1 hands over to 4 instead; 3 does not hear of that one, and follows 4 once it leads.
    c.node(1).transferLeadership(4);
    c.drain(1);
    c.deliver((m) => m.type !== MessageType.TimeoutNow || m.to !== 3);
    expect(c.node(4).role).toBe("leader");
    c.heartbeat();
    expect(c.node(3).knownLeader).toBe(4);
    // Within the release's election timeout on 3's clock, 2 campaigns: 3 owes 4 its stickiness.
    const promised = c.node(3).status().promised;
    const prepare: Message = {
      type: MessageType.Prepare,
      from: 2,
      to: 3,
      ballot: ballotOf(99, 2),
      fromSlot: 1,
    };
    c.node(3).step(prepare);
    c.drain(3);
    expect(c.node(3).status().promised).toBe(promised);
    expect(c.inbox.filter((m) => m.type === MessageType.Promise && m.from === 3)).toEqual([]);
  });

  it("a TimeoutNow from a deposed leader, or from a replica we do not follow, is ignored", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    c.elect(1);
    const oldBallot = c.node(1).status().ballot;
    c.elect(2, (m) => m.to !== 1 && m.from !== 1); // 1 is cut off meanwhile
    c.inbox = [];
    c.heartbeat();
    const promised = c.node(3).status().promised;
    const stale: TimeoutNow = {
      type: MessageType.TimeoutNow,
      from: 1,
      to: 3,
      ballot: oldBallot,
      target: 3,
    };
    c.node(3).step(stale);
    c.drain(3);
    expect(c.node(3).role).toBe("follower");
    expect(c.node(3).status().promised).toBe(promised);
    // A replica we do not follow cannot start us either, even with a fresh ballot of its own.
    const fresh: Message = { ...stale, ballot: ballotOf(99, 1) };
    c.node(3).step(fresh);
    expect(c.node(3).role).toBe("follower");
    expect(counters(c, 3).transferCampaigns).toBe(0);
  });

  it("a TimeoutNow that comes back after the target already campaigned starts nothing more", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    c.elect(1);
    c.node(1).transferLeadership(3);
    c.drain(1);
    c.deliver();
    expect(c.node(3).role).toBe("leader");
    const ballot = c.node(3).status().ballot;
    for (const m of timeoutNows(c)) if (m.to === 3) c.node(3).step(m); // a late duplicate
    c.drain(3);
    expect(c.node(3).role).toBe("leader");
    expect(c.node(3).status().ballot).toBe(ballot);
  });

  it("a leader stepping down mid-transfer ends it (counted aborted), and the new leader is not stuck", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    c.elect(1);
    c.crash(2);
    c.node(1).transferLeadership(2);
    c.node(1).step({ type: MessageType.Nack, from: 3, to: 1, ballot: ballotOf(50, 3) });
    expect(c.node(1).role).toBe("follower");
    expect(c.node(1).status().transferTarget).toBe(0);
    expect(counters(c, 1).transfersAborted).toBe(1);
  });
});
