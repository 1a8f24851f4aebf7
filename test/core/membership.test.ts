import { describe, expect, it } from "vitest";
import {
  type Member,
  type MembershipChange,
  MembershipHistory,
  type Message,
  MessageType,
  Replica,
  SeededPrng,
} from "../../src/core/index.ts";
import { Cluster } from "./harness.ts";

const LAG = 4;
const voters = (...ids: number[]): Member[] => ids.map((id) => ({ id, voter: true, address: "" }));
const learner = (id: number): Member => ({ id, voter: false, address: "" });

/** Push the leader through `slots` slots (commands, one per slot), delivered. */
function write(c: Cluster, leader: number, prefix: string, slots: number): void {
  for (let i = 0; i < slots; i++) {
    c.propose(leader, `${prefix}${i}`);
    c.deliver();
  }
}

/** Change the membership at `leader` and run until the change governs its next slot. */
function change(c: Cluster, leader: number, members: Member[]): void {
  const result = c.node(leader).changeMembership(members);
  if (!result.queued) throw new Error(`change refused: ${result.reason}`);
  for (let i = 0; i < 20; i++) {
    c.drain(leader);
    c.deliver();
    c.heartbeat();
    const { current, latest } = c.node(leader).membership();
    if (current !== null && current === latest) return;
  }
  throw new Error("the change did not come to govern");
}

describe("membership history (α: a change chosen in slot c governs from c + lag)", () => {
  const bootstrap = MembershipHistory.bootstrap(LAG, voters(1, 2, 3));
  const grow: MembershipChange = {
    base: 0,
    baseMembers: voters(1, 2, 3),
    members: [...voters(1, 2, 3), learner(4)],
  };

  it("a change governs lag slots after its own, not before", () => {
    const h = new MembershipHistory(LAG, bootstrap.all());
    expect(h.apply(10, grow)).toBe(true);
    expect(h.at(13)!.slot).toBe(0);
    expect(h.at(14)!.slot).toBe(10);
    expect(h.governing(12, 20).map((e) => e.slot)).toEqual([0, 10]);
  });

  it("a stale change (wrong base, or while another does not govern yet) is a no-op everywhere", () => {
    const h = new MembershipHistory(LAG, bootstrap.all());
    expect(h.apply(10, grow)).toBe(true);
    // Based on the bootstrap configuration, which is no longer the latest.
    expect(h.apply(20, grow)).toBe(false);
    // Based on slot 10, but in slot 12: the change of slot 10 governs only from 14.
    const next: MembershipChange = {
      base: 10,
      baseMembers: grow.members,
      members: voters(1, 2, 3, 4),
    };
    expect(h.apply(12, next)).toBe(false);
    expect(h.apply(14, next)).toBe(true);
    expect(h.latest()!.members).toEqual(voters(1, 2, 3, 4));
  });

  it("a replica that joined and learns the log from slot 1 meets the first change with base 0", () => {
    const joiner = MembershipHistory.bootstrap(LAG, null);
    expect(joiner.known).toBe(false);
    expect(joiner.apply(10, grow)).toBe(true);
    expect(joiner.at(5)!.members).toEqual(voters(1, 2, 3));
    expect(joiner.at(14)!.members).toEqual(grow.members);
  });
});

describe("membership change through the log", () => {
  it("a learner receives the log, votes uncounted, and never campaigns", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    write(c, 1, "a", 3);
    c.join(4);
    change(c, 1, [...voters(1, 2, 3), learner(4)]);
    write(c, 1, "b", 3);
    c.heartbeat();
    expect(c.applied[4]).toEqual(c.applied[1]);
    // Its votes do not count: with 2 and 3 down, nothing is chosen.
    c.crash(2);
    c.crash(3);
    const before = c.node(1).status().chosenSlot;
    c.propose(1, "lost");
    c.deliver();
    expect(c.node(1).status().chosenSlot).toBe(before);
    // And it never campaigns, however long it hears nothing.
    c.crash(1);
    c.tick(4, 200);
    expect(c.node(4).role).toBe("follower");
    expect(c.sent.some((m) => m.from === 4 && m.type === MessageType.Probe)).toBe(false);
  });

  it("a promoted learner's vote counts: 3 -> 4 voters, and two of the old ones may fail", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    c.join(4);
    change(c, 1, [...voters(1, 2, 3), learner(4)]);
    change(c, 1, voters(1, 2, 3, 4));
    expect(c.node(4).membership().latest!.members).toEqual(voters(1, 2, 3, 4));
    c.crash(3);
    const before = c.node(1).status().chosenSlot;
    c.propose(1, "with-4");
    c.deliver();
    expect(c.node(1).status().chosenSlot).toBe(before + 1); // 1, 2 and 4: a majority of four
    c.crash(2);
    c.propose(1, "two-of-four");
    c.deliver();
    expect(c.node(1).status().chosenSlot).toBe(before + 1); // 1 and 4 are not
  });

  it("a leader that removes itself hands over once the change governs, and stays out", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    write(c, 1, "a", 2);
    change(c, 1, voters(2, 3));
    for (let i = 0; i < 40 && c.node(1).role === "leader"; i++) c.heartbeat();
    expect(c.node(1).role).not.toBe("leader");
    for (let i = 0; i < 100; i++) c.heartbeat();
    const leader = [2, 3].find((id) => c.node(id).role === "leader");
    expect(leader).toBeDefined();
    write(c, leader!, "b", 2);
    c.heartbeat();
    expect(c.applied[2]).toEqual(c.applied[3]);
    expect(c.applied[2]).toContain("b1");
    expect(c.node(1).role).toBe("follower");
  });

  it("a removed replica that never heard of its removal cannot depose the leader", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    // 3 misses everything from here on: it does not learn its removal.
    const cut = (m: { from: number; to: number }) => m.to !== 3 && m.from !== 3;
    const result = c.node(1).changeMembership(voters(1, 2));
    expect(result.queued).toBe(true);
    for (let i = 0; i < 20; i++) {
      c.drain(1);
      for (const id of c.ids) c.tick(id);
      c.deliver(cut);
    }
    expect(c.node(1).membership().current!.members).toEqual(voters(1, 2));
    const ballot = c.node(1).status().ballot;
    // 3 times out again and again; its probes reach 1 and 2, who do not count it a voter.
    for (let i = 0; i < 300; i++) {
      for (const id of c.ids) c.tick(id);
      c.deliver((m) => m.to !== 3 || m.type === MessageType.ProbeReply);
    }
    expect(c.node(1).role).toBe("leader");
    expect(c.node(1).status().ballot).toBe(ballot);
    expect(c.sent.some((m) => m.from === 3 && m.type === MessageType.Probe)).toBe(true);
  });

  it("refuses a second change while one is pending, a stale base, a list without voters, and followers", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    c.join(4);
    expect(c.node(2).changeMembership(voters(1, 2)).queued).toBe(false);
    const first = c.node(1).changeMembership([...voters(1, 2, 3), learner(4)]);
    expect(first).toEqual({ queued: true, base: 0 });
    expect(c.node(1).changeMembership(voters(1, 2))).toMatchObject({ reason: "pending" });
    c.drain(1); // proposed, not yet chosen
    expect(c.node(1).changeMembership(voters(1, 2))).toMatchObject({ reason: "pending" });
    c.deliver();
    for (let i = 0; i < 10; i++) c.heartbeat();
    expect(c.node(1).changeMembership(voters(1, 2), 0)).toMatchObject({ reason: "stale-base" });
    expect(c.node(1).changeMembership([learner(1)])).toMatchObject({ reason: "invalid" });
    expect(c.node(1).changeMembership([...voters(1, 2, 3), learner(4)])).toMatchObject({
      reason: "unchanged",
    });
  });

  it("a snapshot carries the configuration to a replica that joins after compaction", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    change(c, 1, [...voters(1, 2, 3), learner(5)]);
    write(c, 1, "a", 3);
    const status = c.node(1).status();
    c.node(1).compact({ slot: status.appliedSlot, data: new Uint8Array([1]) });
    c.drain(1);
    c.join(5);
    for (let i = 0; i < 5; i++) c.heartbeat();
    expect(c.node(5).membership().latest!.members).toEqual([...voters(1, 2, 3), learner(5)]);
    expect(c.node(5).status().chosenSlot).toBe(c.node(1).status().chosenSlot);
  });

  it("a restart rebuilds the configuration from the durable log", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    c.join(4);
    change(c, 1, [...voters(1, 2, 3), learner(4)]);
    change(c, 1, voters(1, 2, 3, 4));
    c.crash(2);
    c.restart(2);
    expect(c.node(2).membership().latest!.members).toEqual(voters(1, 2, 3, 4));
    c.crash(4);
    c.restart(4);
    expect(c.node(4).membership().latest!.members).toEqual(voters(1, 2, 3, 4));
  });
});

/** Tick every live replica and deliver what `keep` lets through, `n` times. */
function run(c: Cluster, keep: (m: Message) => boolean, n = 1): void {
  for (let i = 0; i < n; i++) {
    for (const id of c.ids) c.tick(id);
    c.deliver(keep);
  }
}

describe("membership: what the review of the first version found (each failed before its fix)", () => {
  it("a leader that re-proposes a change it does not know chosen serves no stale read", () => {
    // Voters {1,2,3} are swapped for {4,5,6}; the old leader decides the swap and a slot after it
    // and tells only 6. Replica 1 then leads with the swap as a vote it re-proposes, while 6,
    // elected by the new voters, chooses W. A read at 1 must not be released below W.
    const lag = 2;
    const learner3 = (id: number): Member => ({ id, voter: false, address: "" });
    const c = new Cluster(3, { membershipLag: lag });
    let rule: (m: Message) => boolean = () => true;
    c.elect(3);
    c.join(4);
    c.join(5);
    c.join(6);
    c.node(3).changeMembership([...voters(1, 2, 3), learner3(4), learner3(5), learner3(6)]);
    c.drain(3);
    c.deliver();
    for (let i = 0; i < 10; i++) c.heartbeat();
    c.propose(3, "a");
    c.deliver();
    c.heartbeat();
    c.heartbeat();
    rule = (m) => m.from !== 1 && m.to !== 1;
    c.node(3).changeMembership([learner3(1), learner3(2), learner3(3), ...voters(4, 5, 6)]);
    c.node(3).propose(new TextEncoder().encode("x"));
    c.drain(3);
    c.deliver(
      (m) =>
        rule(m) && (m.from !== 3 || m.type === MessageType.Accept) && (m.to !== 3 || m.from === 2),
    );
    for (let i = 0; i < 3; i++) {
      c.tick(3, 5);
      c.deliver((m) => (m.from === 3 ? m.to === 6 : m.to === 3 && m.from === 6));
    }
    c.crash(3);
    rule = (m) =>
      !((m.from === 1 && m.to === 6) || (m.from === 6 && m.to === 1)) &&
      !(m.type === MessageType.Accepted && m.to === 1);
    c.elect(1, rule);
    const side = (id: number) => (id <= 3 ? 0 : 1);
    let dropAccepted = true;
    rule = (m) =>
      side(m.from) === side(m.to) &&
      !(dropAccepted && m.type === MessageType.Accepted && m.to === 1);
    c.elect(6, rule);
    run(c, rule, 10);
    c.propose(6, "W");
    run(c, rule, 10);
    const written = c.node(6).status().chosenSlot;
    expect(c.applied[6]).toContain("W");
    c.node(1).read(42);
    c.drain(1);
    run(c, rule, 2);
    dropAccepted = false;
    run(c, rule, 5);
    const read = c.reads[1]!.find((r) => r.ctx === 42);
    if (read !== undefined) expect(read.index).toBeGreaterThanOrEqual(written);
  });

  it("a replica that knows no configuration cannot be started recovering (it would ask nobody)", () => {
    expect(
      () =>
        new Replica({
          id: 4,
          replicaCount: 3,
          prng: new SeededPrng(1),
          members: null,
          recovering: true,
        }),
    ).toThrow(/recovering replica must know whom to ask/);
  });

  it("a lagging voter grants the probe of a voter it has never heard of, if the prober is ahead", () => {
    const lag = 2;
    const c = new Cluster(3, { membershipLag: lag });
    let rule: (m: Message) => boolean = () => true;
    c.elect(1);
    c.join(5);
    c.node(1).changeMembership([...voters(1, 2, 3), learner(5)]);
    run(c, rule, 20);
    rule = (m) => m.from !== 5 && m.to !== 5; // 5 misses that 6 is added
    c.join(6);
    expect(c.node(1).changeMembership([...voters(1, 2, 3), learner(5), learner(6)]).queued).toBe(
      true,
    );
    run(c, rule, 30);
    const swap = [learner(1), learner(2), learner(3), ...voters(5, 6)];
    expect(c.node(1).changeMembership(swap).queued).toBe(true);
    run(c, rule, 30);
    c.crash(1);
    c.crash(2);
    c.crash(3);
    rule = () => true;
    run(c, rule, 600);
    expect([5, 6].some((id) => c.node(id).role === "leader")).toBe(true);
  });

  it("a newly elected leader whose own promotion is among its re-proposed votes leads on", () => {
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    c.join(4);
    change(c, 1, [...voters(1, 2, 3), learner(4)]);
    for (let i = 0; i < 5; i++) c.heartbeat(); // 4 catches up: it votes from then on
    // 4's promotion reaches 4 and 2 as votes only; 1 crashes before anyone learns it chosen.
    c.node(1).changeMembership(voters(1, 2, 4));
    c.drain(1);
    c.deliver((m) => m.type === MessageType.Accept);
    c.crash(1);
    for (let i = 0; i < 300 && ![2, 3, 4].some((id) => c.node(id).role === "leader"); i++)
      c.heartbeat();
    expect([2, 3, 4].some((id) => c.node(id).role === "leader")).toBe(true);
    for (let i = 0; i < 60; i++) c.heartbeat();
    // The promotion is chosen, and a voter of the new configuration leads (3, no voter now,
    // hands over if it was elected) and commits.
    const leader = [2, 4].find((id) => c.node(id).role === "leader");
    expect(leader).toBeDefined();
    expect(c.node(leader!).membership().latest!.members).toEqual(voters(1, 2, 4));
    write(c, leader!, "after", 1);
    expect(c.applied[leader!]).toContain("after0");
  });

  it("a voter that lost its data and rejoins with --join recovers before it votes", () => {
    // Replace 3 by 4; X is chosen by 1 and 4 (2 misses it); 4 loses its disk and is started again
    // as it was first started (--join, empty); 1 goes down. 2 and 4 are a majority of {1,2,4}:
    // if 4 voted again with no memory, 2 could choose another batch where X was chosen.
    const c = new Cluster(3, { membershipLag: LAG });
    c.elect(1);
    c.propose(1, "a");
    c.deliver();
    c.join(4);
    change(c, 1, [...voters(1, 2, 3), learner(4)]);
    for (let i = 0; i < 5; i++) c.heartbeat();
    change(c, 1, voters(1, 2, 3, 4));
    change(c, 1, voters(1, 2, 4));
    c.crash(3);
    for (let i = 0; i < 3; i++) c.heartbeat();
    c.propose(1, "X");
    c.deliver((m) => m.to !== 2 && m.from !== 2);
    expect(c.applied[1]).toContain("X");
    c.crash(4);
    c.restart(4, { wiped: true }); // a joiner again: members null, not recovering
    c.crash(1);
    for (let i = 0; i < 400 && c.node(2).role !== "leader"; i++) {
      c.tick(2);
      c.tick(4);
      c.deliver();
    }
    // 4 votes for nothing while it knows no configuration: no leader is made of 2 and a 4 that
    // forgot. Once 1 is back, 4 learns the configuration, finds itself a voter, and recovers.
    expect(c.node(2).role).not.toBe("leader");
    c.restart(1);
    for (let i = 0; i < 400 && ![1, 2, 4].some((id) => c.node(id).role === "leader"); i++)
      c.heartbeat();
    for (let i = 0; i < 20; i++) c.heartbeat();
    expect(c.node(4).status().counters.joinedAsVoter).toBe(1);
    const slotOfX = c.appliedSlots[1]![c.applied[1]!.indexOf("X")]!;
    for (const id of [2, 4]) {
      const at = c.appliedSlots[id]!.indexOf(slotOfX);
      if (at >= 0) expect(c.applied[id]![at]).toBe("X");
    }
  });
});

describe("membership and snapshots taken in the background", () => {
  for (const tail of [0, 1024])
    it(`a snapshot that completes after two later changes still carries the configuration governing its slot (tail ${tail})`, () => {
      const c = new Cluster(3, { membershipLag: LAG, compactionTailSlots: tail });
      c.elect(1);
      write(c, 1, "a", 2);
      change(c, 1, [...voters(1, 2, 3), learner(4)]);
      write(c, 1, "b", 1);
      c.heartbeat();
      c.drain(2);
      // Replica 2 starts a snapshot here (the runtime serializes the store in the background)…
      const slot = c.node(2).status().appliedSlot;
      change(c, 1, voters(1, 2, 3));
      change(c, 1, [...voters(1, 2, 3), learner(5)]);
      write(c, 1, "c", 2);
      c.heartbeat();
      c.drain(2);
      // … and it completes only now, after both changes were applied above it.
      c.node(2).compact({ slot, data: new Uint8Array([1]) });
      c.drain(2);
      c.crash(2);
      c.restart(2);
      const restarted = c.node(2);
      expect(restarted.status().counters.membershipChangesIgnored).toBe(0);
      expect(restarted.membership().latest?.members).toEqual(
        c.node(1).membership().latest?.members,
      );
    });
});
