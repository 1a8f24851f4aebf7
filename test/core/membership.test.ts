import { describe, expect, it } from "vitest";
import {
  type Member,
  type MembershipChange,
  MembershipHistory,
  MessageType,
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
