import { describe, expect, it } from "vitest";
import {
  ApusError,
  ballotOf,
  type Message,
  MessageType,
  NOOP,
  Replica,
  SeededPrng,
} from "../../src/core/index.ts";
import { Cluster, text } from "./harness.ts";

const isType = (type: number) => (m: Message) => m.type === type;

describe("a single replica", () => {
  it("elects itself and commits alone (N=1, quorum 1)", () => {
    const c = new Cluster(1);
    c.elect(1);
    c.propose(1, "a", "b");
    expect(c.applied[1]).toEqual(["a", "b"]);
    expect(c.node(1).status().chosenSlot).toBe(1); // both commands in one batch, one slot
  });

  it("refuses proposals when not leader, and when its queue is full", () => {
    const c = new Cluster(3, { proposalQueueMax: 2, windowSlots: 1 });
    expect(c.node(1).propose(text("x"))).toBe("not-leader");
    c.elect(1);
    c.propose(1, "a"); // takes the one window slot
    expect(c.node(1).propose(text("b"))).toBe("queued");
    expect(c.node(1).propose(text("c"))).toBe("queued");
    expect(c.node(1).propose(text("d"))).toBe("queue-full");
  });
});

describe("three replicas", () => {
  it("commit on every replica in the same order; followers learn the commit point", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "x=1");
    c.deliver();
    c.propose(1, "y=2");
    c.deliver();
    expect(c.applied[1]).toEqual(["x=1", "y=2"]);
    c.heartbeat(); // carries commitSlot to followers
    expect(c.applied[2]).toEqual(["x=1", "y=2"]);
    expect(c.applied[3]).toEqual(["x=1", "y=2"]);
  });

  it("batches everything queued while the window is full into the next slot", () => {
    const c = new Cluster(3, { windowSlots: 1 });
    c.elect(1);
    c.propose(1, "a");
    c.propose(1, "b", "c", "d"); // window full: queued
    expect(c.node(1).status().queuedCommands).toBe(3);
    c.deliver(); // slot 1 chosen, then b,c,d go out as one batch in slot 2
    c.deliver();
    expect(c.applied[1]).toEqual(["a", "b", "c", "d"]);
    expect(c.appliedSlots[1]).toEqual([1, 2]);
  });

  it("sends a vote only after the persist that records it (Ready contract)", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "v");
    const leaderReady = c.readies[1]!.at(-1)!;
    // The leader's Accepts need no new durable state: they go out at once, beside the persist.
    expect(leaderReady.messagesNow.filter(isType(MessageType.Accept))).toHaveLength(2);
    expect(leaderReady.persist?.accepted.map((e) => e.slot)).toEqual([1]);
    c.deliver((m) => m.type === MessageType.Accept);
    const follower = c.readies[2]!.at(-1)!;
    expect(follower.persist?.accepted).toHaveLength(1);
    expect(follower.messagesNow.filter(isType(MessageType.Accepted))).toHaveLength(0);
    expect(follower.messages.filter(isType(MessageType.Accepted))).toHaveLength(1);
  });

  it("does not count the leader's own vote before its persist is confirmed", () => {
    const c = new Cluster(3);
    c.elect(1);
    const leader = c.node(1);
    leader.propose(text("v"));
    leader.ready(); // handed out, not yet advanced: the leader's vote is not durable
    // No follower votes either: nothing may be chosen.
    expect(leader.status().chosenSlot).toBe(0);
    leader.advance();
    expect(leader.status().chosenSlot).toBe(0); // 1 of 3 votes
  });

  it("survives loss: unacknowledged Accepts are resent", () => {
    const c = new Cluster(3, { retransmitTicks: 2 });
    c.elect(1);
    c.propose(1, "lost-once");
    c.deliver((m) => m.type !== MessageType.Accept); // every Accept lost
    expect(c.applied[1]).toEqual([]);
    c.tick(1, 2);
    c.deliver();
    expect(c.applied[1]).toEqual(["lost-once"]);
  });

  it("brings a follower that missed slots up to date with Chosen catch-up", () => {
    const c = new Cluster(3, { catchupEntriesMax: 2 });
    c.elect(1);
    for (const cmd of ["a", "b", "c", "d", "e"]) {
      c.propose(1, cmd);
      c.deliver((m) => m.to !== 3 && m.from !== 3); // replica 3 is cut off
    }
    expect(c.applied[3]).toEqual([]);
    for (let i = 0; i < 6; i++) c.heartbeat();
    expect(c.applied[3]).toEqual(["a", "b", "c", "d", "e"]);
    expect(c.sent.some((m) => m.type === MessageType.Chosen && m.to === 3)).toBe(true);
  });

  it("brings a follower behind the compacted prefix forward from a snapshot", () => {
    const c = new Cluster(3, { compactionTailSlots: 0 });
    c.elect(1);
    for (const cmd of ["a", "b", "c"]) {
      c.propose(1, cmd);
      c.deliver((m) => m.to !== 3 && m.from !== 3);
    }
    c.node(1).compact({ slot: 3, data: text("state-after-3") });
    c.drain(1);
    expect(c.node(1).status().compactedSlot).toBe(3);
    c.propose(1, "d");
    c.deliver();
    for (let i = 0; i < 4; i++) c.heartbeat();
    expect(c.applied[3]).toEqual(["<snapshot 3>", "d"]);
    expect(c.sent.some((m) => m.type === MessageType.InstallSnapshot && m.to === 3)).toBe(true);
  });

  it("keeps a tail of entries below the snapshot: a follower behind by less gets them, not the snapshot", () => {
    const c = new Cluster(3, { compactionTailSlots: 2 });
    c.elect(1);
    for (const cmd of ["a", "b", "c", "d"]) {
      c.propose(1, cmd);
      // Replica 3 misses the last two slots only.
      c.deliver((m) => (cmd === "c" || cmd === "d" ? m.to !== 3 && m.from !== 3 : true));
    }
    c.node(1).compact({ slot: 4, data: text("state-after-4") });
    c.drain(1);
    expect(c.node(1).status().snapshotSlot).toBe(4);
    expect(c.node(1).status().compactedSlot).toBe(2); // slots 3 and 4 kept
    c.propose(1, "e");
    c.deliver();
    for (let i = 0; i < 4; i++) c.heartbeat();
    expect(c.applied[3]).toEqual(["a", "b", "c", "d", "e"]);
    expect(c.sent.some((m) => m.type === MessageType.InstallSnapshot)).toBe(false);
    // The same snapshot again, or an older one (a background job finishing late), changes
    // nothing; a later one moves the tail up with it.
    c.node(1).compact({ slot: 4, data: text("state-after-4") });
    c.node(1).compact({ slot: 3, data: text("state-after-3") });
    expect(c.node(1).status()).toMatchObject({ compactedSlot: 2, snapshotSlot: 4 });
    c.node(1).compact({ slot: 5, data: text("state-after-5") });
    expect(c.node(1).status()).toMatchObject({ compactedSlot: 3, snapshotSlot: 5 });
  });

  it("bounds the tail by bytes too: a follower behind a tail of large commands gets the snapshot", () => {
    const c = new Cluster(3, { compactionTailSlots: 8, compactionTailBytes: 10 });
    c.elect(1);
    for (const cmd of ["a", "b", "cccccccccc", "dddddddddd"]) {
      c.propose(1, cmd);
      c.deliver((m) => (cmd.length > 1 ? m.to !== 3 && m.from !== 3 : true));
    }
    c.node(1).compact({ slot: 4, data: text("state-after-4") });
    c.drain(1);
    expect(c.node(1).status().compactedSlot).toBe(3); // only slot 4 fits in 10 bytes
    c.propose(1, "e");
    c.deliver();
    for (let i = 0; i < 4; i++) c.heartbeat();
    expect(c.applied[3]).toEqual(["<snapshot 4>", "e"]); // the harness restarts its list there
    expect(c.sent.some((m) => m.type === MessageType.InstallSnapshot && m.to === 3)).toBe(true);
  });

  it("a restarted replica recovers its promise and votes from disk, and re-applies its chosen prefix", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.propose(1, "a", "b");
    c.deliver();
    c.heartbeat();
    const before = c.node(2).status();
    c.crash(2);
    c.restart(2);
    const after = c.node(2).status();
    expect(after.promised).toBe(before.promised);
    expect(after.chosenSlot).toBe(before.chosenSlot);
    expect(c.applied[2]).toEqual(["a", "b"]);
    expect(after.role).toBe("follower");
  });
});

describe("leader change (Phase 1)", () => {
  it("a new leader adopts the highest-ballot vote and fills holes with no-ops (Paxos Made Simple §2.2, §3)", () => {
    const c = new Cluster(3);
    c.elect(1);
    // Slot 1 reaches replica 2 only; slot 2 reaches nobody; slot 3 reaches replica 2 only.
    c.propose(1, "one");
    c.deliver((m) => m.type === MessageType.Accept && m.to === 2);
    c.node(1).propose(text("two"));
    c.node(1).ready();
    c.node(1).advance();
    c.inbox = [];
    c.propose(1, "three");
    c.deliver((m) => m.type === MessageType.Accept && m.to === 2);
    c.crash(1);
    c.elect(2);
    c.deliver();
    c.heartbeat();
    expect(c.applied[2]).toEqual(["one", "three"]); // slot 2 became a no-op
    expect(c.appliedSlots[2]).toEqual([1, 2, 3]);
    expect(c.applied[3]).toEqual(["one", "three"]);
  });

  it("a chosen value survives the leader's crash: the next leader learns it in Phase 1", () => {
    const c = new Cluster(5);
    c.elect(1);
    c.propose(1, "keep");
    c.deliver((m) => m.to === 1 || m.to === 2 || m.to === 3); // 4 and 5 see nothing
    expect(c.applied[1]).toEqual(["keep"]);
    c.crash(1);
    c.elect(5);
    c.heartbeat();
    for (const id of [2, 3, 4, 5]) expect(c.applied[id]).toEqual(["keep"]);
  });

  it("a replica that heard a live leader ignores a higher Prepare, and a rejoining replica cannot depose it", () => {
    const c = new Cluster(3);
    c.elect(1);
    // Replica 3 is cut off and times out again and again: it only probes, never raises its ballot.
    for (let i = 0; i < 200; i++) {
      c.tick(3);
      c.inbox = c.inbox.filter((m) => m.from !== 3);
    }
    expect(c.node(3).status().promised).toBe(c.node(1).status().ballot);
    // It rejoins and probes; replica 2 heard the leader recently and refuses.
    c.tick(1);
    c.tick(2);
    for (let i = 0; i < 40 && c.node(3).role !== "follower"; i++) {
      c.tick(3);
      c.tick(1);
      c.deliver();
    }
    expect(c.node(1).role).toBe("leader");
    expect(c.node(3).role).toBe("follower");
  });

  it("a direct higher Prepare is ignored while the acceptor hears a live leader (check-quorum lease)", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.heartbeat();
    const leaderBallot = c.node(1).status().ballot;
    c.node(2).step({
      type: MessageType.Prepare,
      from: 3,
      to: 2,
      ballot: ballotOf(99, 3),
      fromSlot: 1,
    });
    c.drain(2);
    expect(c.node(2).status().promised).toBe(leaderBallot);
  });

  it("a leader cut off from the majority steps down after the election timeout", () => {
    const c = new Cluster(3, { electionTicks: 10 });
    c.elect(1);
    c.tick(1, 10); // no replies reach it
    expect(c.node(1).role).toBe("follower");
  });

  it("an Accept below the promise is refused with a Nack, and a Nack deposes a stale leader", () => {
    const c = new Cluster(3);
    c.elect(1);
    const oldBallot = c.node(1).status().ballot;
    c.elect(2, (m) => m.to !== 1 && m.from !== 1); // 1 is cut off meanwhile
    c.inbox = [];
    const stale = {
      type: MessageType.Accept,
      from: 1,
      to: 3,
      ballot: oldBallot,
      slot: 9,
      batch: NOOP,
      commitSlot: 0,
    } as const;
    c.node(3).step(stale);
    c.drain(3);
    const nack = c.inbox.find((m) => m.type === MessageType.Nack && m.to === 1);
    expect(nack?.ballot).toBe(c.node(2).status().ballot);
    // A leader that receives such a Nack steps down at once.
    const fresh = new Cluster(3);
    fresh.elect(1);
    fresh.node(1).step({ type: MessageType.Nack, from: 3, to: 1, ballot: ballotOf(50, 2) });
    expect(fresh.node(1).role).toBe("follower");
  });

  it("a candidate far behind prepares again while promises are cut at the catch-up limit", () => {
    const c = new Cluster(3, { catchupEntriesMax: 2 });
    c.elect(1);
    for (let i = 0; i < 7; i++) {
      c.propose(1, `c${i}`);
      c.deliver((m) => m.to !== 3 && m.from !== 3);
    }
    c.heartbeat(); // 2 learns the commit point; 3 saw nothing
    c.inbox = [];
    c.crash(1);
    // 3 campaigns; 2's promises come in pieces of 2 chosen entries, each one a new Prepare.
    c.elect(3);
    const prepares = c.sent.filter((m) => m.type === MessageType.Prepare && m.from === 3);
    expect(prepares.length).toBeGreaterThanOrEqual(4);
    c.heartbeat();
    expect(c.applied[3]).toEqual(["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
  });
});

describe("configuration", () => {
  const prng = new SeededPrng(1);
  it("names the setting that is wrong", () => {
    expect(() => new Replica({ id: 4, replicaCount: 3, prng })).toThrow(
      /id is 4 but there are 3 replicas/,
    );
    expect(() => new Replica({ id: 1, replicaCount: 3, prng, windowSlots: 0 })).toThrow(
      /windowSlots/,
    );
    expect(
      () => new Replica({ id: 1, replicaCount: 3, prng, electionTicks: 4, heartbeatTicks: 3 }),
    ).toThrow(/heartbeatTicks/);
    expect(() => new Replica({ id: 1, replicaCount: 40, prng })).toThrow(/at most 31/);
    try {
      new Replica({ id: 0, replicaCount: 3, prng });
    } catch (error) {
      expect(error).toBeInstanceOf(ApusError);
      expect((error as ApusError).code).toBe("ERR_INVALID_CONFIG");
    }
  });

  it("asserts the Ready protocol: no second ready() before advance()", () => {
    const c = new Cluster(1);
    c.elect(1);
    c.node(1).propose(text("x"));
    c.node(1).ready();
    expect(() => c.node(1).ready()).toThrow(/advance/);
  });
});

describe("hostile or misaddressed messages", () => {
  it("drops a message whose ballot belongs to another replica, or that is not for us", () => {
    const c = new Cluster(3);
    c.elect(1);
    const node = c.node(2);
    const before = node.status();
    // Replica 3 claims to lead with replica 1's ballot.
    node.step({
      type: MessageType.Heartbeat,
      from: 3,
      to: 2,
      ballot: ballotOf(90, 1),
      commitSlot: 0,
      readRound: 0,
    });
    node.step({
      type: MessageType.Heartbeat,
      from: 1,
      to: 3,
      ballot: ballotOf(90, 1),
      commitSlot: 0,
      readRound: 0,
    });
    // An id beyond every possible replica (ids outside our configurations are accepted: a
    // replica that joined after us may lead before we learn of it).
    node.step({
      type: MessageType.Heartbeat,
      from: 32,
      to: 2,
      ballot: ballotOf(90, 32),
      commitSlot: 0,
      readRound: 0,
    });
    expect(node.status().counters.droppedMessages).toBe(3);
    expect(node.status().promised).toBe(before.promised);
  });
});
