import { describe, expect, it } from "vitest";
import { MessageType } from "../../src/core/index.ts";
import { Cluster, text } from "./harness.ts";

/**
 * Issue 7 §1: "replica 1 leads, SET x 1 is chosen in slot 1 by replicas 1 and 3 and acknowledged;
 * replica 3 restarts empty; replica 1 crashes; replicas 2 and 3 elect 2". Only one replica is
 * ever down, yet an amnesiac replica 3 lets replica 2 choose something else in slot 1.
 */
function chooseOnOneAndThree(): Cluster {
  const c = new Cluster(3);
  c.elect(1);
  c.propose(1, "SET x 1");
  c.deliver((m) => m.to !== 2); // replica 2 hears nothing of slot 1
  expect(c.applied[1]).toEqual(["SET x 1"]); // chosen and acknowledged by the leader
  return c;
}

describe("a replica that lost its state (issue 7 §1)", () => {
  it("without recovery it votes at once, and an acknowledged write is lost (the bug recovery prevents)", () => {
    const c = chooseOnOneAndThree();
    c.crash(3);
    c.restart(3, { wiped: true, recovering: false });
    c.crash(1);
    c.elect(2);
    c.propose(2, "SET x 2");
    c.deliver();
    c.heartbeat();
    expect(c.applied[2]![0]).not.toBe("SET x 1"); // slot 1 was chosen twice, differently
  });

  it("recovering, it learns the vote from every other replica before it votes, and nothing is lost", () => {
    const c = chooseOnOneAndThree();
    c.crash(3);
    c.restart(3, { wiped: true, recovering: true });
    expect(c.node(3).role).toBe("recovering");
    c.deliver(); // Recover to 1 and 2, their answers back
    expect(c.node(3).role).toBe("follower");
    expect(c.node(3).recoveries).toBe(1);
    expect(
      c.disks[3]!.accepted.get(1)?.batch.commands.map((b) => new TextDecoder().decode(b)),
    ).toEqual(["SET x 1"]);
    c.crash(1);
    c.elect(2);
    c.propose(2, "SET x 2");
    c.deliver();
    c.heartbeat();
    expect(c.applied[2]).toEqual(["SET x 1", "SET x 2"]);
    expect(c.applied[3]).toEqual(["SET x 1", "SET x 2"]);
  });

  it("promises, accepts and grants nothing while recovering, and waits for every other replica", () => {
    const c = chooseOnOneAndThree();
    c.crash(2);
    c.crash(3);
    const sentBefore = c.sent.length;
    c.restart(3, { wiped: true, recovering: true });
    for (let i = 0; i < 50; i++) {
      c.tick(1);
      c.tick(3);
      c.deliver();
    }
    // Replica 1 answered, replica 2 is down: a majority (1 and 3) is not enough to recover.
    expect(c.node(3).role).toBe("recovering");
    const fromThree = c.sent.slice(sentBefore).filter((m) => m.from === 3);
    expect(fromThree.some((m) => m.type === MessageType.Recover)).toBe(true);
    expect(fromThree.some((m) => m.type === MessageType.Promise)).toBe(false);
    expect(fromThree.some((m) => m.type === MessageType.Accepted)).toBe(false);
    expect(fromThree.some((m) => m.type === MessageType.ProbeReply && m.granted)).toBe(false);
    expect(c.disks[3]!.promised).toBe(0);
    c.restart(2);
    for (let i = 0; i < 40 && c.node(3).role === "recovering"; i++) {
      c.tick(3);
      c.deliver();
    }
    expect(c.node(3).role).toBe("follower");
    expect(c.disks[3]!.promised).toBe(c.node(1).status().promised);
  });

  it("two replicas recovering at once wait for each other: with a majority's state lost, stalling is safe", () => {
    const c = chooseOnOneAndThree();
    c.crash(2);
    c.crash(3);
    c.restart(2, { wiped: true, recovering: true });
    c.restart(3, { wiped: true, recovering: true });
    for (let i = 0; i < 30; i++) {
      for (const id of [1, 2, 3]) c.tick(id);
      c.deliver();
    }
    expect(c.node(2).role).toBe("recovering");
    expect(c.node(3).role).toBe("recovering");
  });

  it("recovers in several rounds when answers are cut at the catch-up limit", () => {
    const c = new Cluster(3, { catchupEntriesMax: 2 });
    c.elect(1);
    for (let i = 1; i <= 7; i++) {
      c.propose(1, `w${i}`);
      c.deliver();
    }
    c.heartbeat();
    c.crash(3);
    c.restart(3, { wiped: true, recovering: true });
    c.deliver();
    expect(c.node(3).role).toBe("follower");
    expect(c.node(3).status().chosenSlot).toBe(7);
    expect(c.applied[3]).toEqual(["w1", "w2", "w3", "w4", "w5", "w6", "w7"]);
  });

  it("recovers from peers that compacted far beyond slotsAheadMax (reach counts from their snapshot)", () => {
    // No tail: the peers' answers carry their snapshot (with one, the entries below it instead).
    const c = new Cluster(3, {
      slotsAheadMax: 8,
      catchupEntriesMax: 4,
      windowSlots: 4,
      compactionTailSlots: 0,
    });
    c.elect(1);
    for (let i = 1; i <= 20; i++) {
      c.propose(1, `w${i}`);
      c.deliver();
    }
    c.heartbeat();
    for (const id of [1, 2]) c.node(id).compact({ slot: 15, data: new Uint8Array([15]) });
    c.drain(1);
    c.drain(2);
    c.crash(3);
    c.restart(3, { wiped: true, recovering: true });
    for (let i = 0; i < 40 && c.node(3).role === "recovering"; i++) {
      c.tick(3);
      c.deliver();
    }
    expect(c.node(3).role).toBe("follower");
    expect(c.node(3).status().chosenSlot).toBe(20);
    expect(c.node(3).status().counters.droppedFarSlots).toBe(0);
  });

  it("ignores an answer to another recovery (nonce) and a single replica recovers at once", () => {
    const c = chooseOnOneAndThree();
    c.crash(3);
    c.restart(3, { wiped: true, recovering: true });
    const asks = c.inbox.filter((m) => m.type === MessageType.Recover);
    expect(asks).toHaveLength(2);
    c.node(3).step({
      type: MessageType.RecoverReply,
      from: 1,
      to: 3,
      ballot: 0,
      nonce: (asks[0] as { nonce: number }).nonce ^ 1,
      fromSlot: 1,
      chosenSlot: 0,
      entries: [],
      more: false,
      snapshot: null,
      recovering: false,
    });
    expect(c.node(3).role).toBe("recovering");
    const alone = new Cluster(1);
    alone.restart(1, { wiped: true, recovering: true });
    expect(alone.node(1).role).toBe("follower");
  });
});

describe("peer messages that would cost memory or stall a follower (issue 7 §3)", () => {
  it("drops an Accept for a slot far beyond the chosen prefix and counts it, without filling the log gap", () => {
    const c = new Cluster(3);
    c.elect(1);
    const ballot = c.node(1).status().ballot;
    c.node(2).step({
      type: MessageType.Accept,
      from: 1,
      to: 2,
      ballot,
      slot: 200_000_000,
      commitSlot: 0,
      batch: { stampMs: 0, commands: [text("x")] },
    });
    expect(c.node(2).status().counters.droppedFarSlots).toBe(1);
    expect(c.node(2).status().lastSlot).toBe(0);
  });

  it("a leader lowers its record of a follower that reports less than before, and resends what it lacks", () => {
    const c = new Cluster(3);
    c.elect(1);
    for (let i = 1; i <= 4; i++) {
      c.propose(1, `w${i}`);
      c.deliver();
    }
    c.heartbeat();
    c.heartbeat();
    expect(
      c
        .node(1)
        .status()
        .peers.find((p) => p.id === 2)!.chosenSlot,
    ).toBe(4);
    // Replica 2 restarted and lost an unsynced chosen-slot hint: it now reports slot 1.
    const ballot = c.node(1).status().ballot;
    const low = {
      type: MessageType.HeartbeatReply,
      from: 2,
      to: 1,
      ballot,
      chosenSlot: 1,
      readRound: 0,
    } as const;
    c.node(1).step(low);
    // One low report may be an old reply that came late: not believed yet.
    expect(
      c
        .node(1)
        .status()
        .peers.find((p) => p.id === 2)!.chosenSlot,
    ).toBe(4);
    c.inbox = [];
    c.tick(1, 2); // a retransmit interval later, the peer still says so
    c.inbox = [];
    c.node(1).step(low);
    c.drain(1);
    expect(
      c
        .node(1)
        .status()
        .peers.find((p) => p.id === 2)!.chosenSlot,
    ).toBe(1);
    const catchup = c.inbox.filter((m) => m.type === MessageType.Chosen && m.to === 2);
    expect(catchup.length).toBeGreaterThan(0);
    expect(catchup[0]!.type === MessageType.Chosen && catchup[0]!.entries[0]!.slot).toBe(2);
  });
});
