import { describe, expect, it } from "vitest";
import { type Message, MessageType } from "../../src/core/index.ts";
import { Cluster, text } from "./harness.ts";

const accepts = (c: Cluster) =>
  c.inbox.filter((m: Message) => m.type === MessageType.Accept && m.to === 2);

describe("batching that grows with load (adaptiveBatching)", () => {
  it("with a slot in flight, waits for a batch as big as the last one; with none, goes at once", () => {
    const c = new Cluster(3);
    c.elect(1);
    c.inbox = [];
    c.propose(1, "a", "b", "c"); // nothing in flight: one slot of 3 at once
    expect(accepts(c).map((m) => m.type === MessageType.Accept && m.batch.commands.length)).toEqual(
      [3],
    );
    c.propose(1, "d", "e"); // the slot of 3 is in flight: 2 wait
    expect(accepts(c)).toHaveLength(1);
    c.propose(1, "f"); // 3 wait: as many as the last slot carried, so they go
    expect(accepts(c)).toHaveLength(2);
    c.propose(1, "g");
    c.deliver(); // both slots chosen: nothing in flight, "g" goes alone
    expect(c.applied[1]).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
  });

  it("eager batching proposes whatever waits as the window allows", () => {
    const c = new Cluster(3, { adaptiveBatching: false });
    c.elect(1);
    c.inbox = [];
    c.propose(1, "a", "b", "c");
    c.propose(1, "d");
    expect(accepts(c)).toHaveLength(2);
  });

  it("never waits for more than batchCommandsMax", () => {
    const c = new Cluster(3, { batchCommandsMax: 2 });
    c.elect(1);
    c.inbox = [];
    c.propose(1, "a", "b", "c"); // a slot of 2; "c" waits behind it until "d" makes 2
    c.propose(1, "d");
    expect(accepts(c).map((m) => m.type === MessageType.Accept && m.batch.commands.length)).toEqual(
      [2, 2],
    );
    expect(c.node(1).propose(text("e"))).toBe("queued");
  });
});
