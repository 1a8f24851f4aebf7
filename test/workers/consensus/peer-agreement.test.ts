import { describe, expect, it } from "vitest";
import { parseReplicaArgs } from "../../../src/runtime/config.ts";
import {
  type AgreedSettings,
  agreedSettings,
  DISAGREEMENT_LOG_EVERY_MS,
  decodeHello,
  differences,
  encodeHello,
  HELLO_RESEND_MS,
  PeerAgreement,
} from "../../../src/workers/consensus/peer-agreement.ts";

const SETTINGS: AgreedSettings = { "max-value-bytes": "8388608", "cluster-id": "1" };

/** Replicas exchanging hellos through a queue, like a network that delivers everything. */
function exchange(nodes: PeerAgreement[], nowMs: number, rounds = 20): number {
  let delivered = 0;
  const queue: { from: number; to: number; payload: Uint8Array }[] = [];
  nodes.forEach((node, index) => {
    for (const hello of node.hellosToSend(nowMs)) queue.push({ from: index + 1, ...hello });
  });
  for (let i = 0; i < rounds * nodes.length && queue.length > 0; i++) {
    const { from, to, payload } = queue.shift()!;
    delivered++;
    const hello = decodeHello(payload);
    expect(hello).not.toBeNull();
    const { reply } = nodes[to - 1]!.receive(from, hello!, nowMs);
    if (reply !== null) queue.push({ from: to, to: from, payload: reply });
  }
  expect(queue).toEqual([]); // no endless bouncing
  return delivered;
}

describe("PeerAgreement", () => {
  it("lets a peer through only once its matching hello arrived", () => {
    const a = new PeerAgreement(1, 2, 101, SETTINGS);
    const b = new PeerAgreement(2, 2, 202, SETTINGS);
    expect(a.agreed(2)).toBe(false);
    expect(a.agreed(1)).toBe(true);
    exchange([a, b], 0);
    expect(a.agreed(2)).toBe(true);
    expect(b.agreed(1)).toBe(true);
    // Both know the other holds theirs: nothing is resent.
    expect(a.hellosToSend(10 * HELLO_RESEND_MS)).toEqual([]);
    expect(b.hellosToSend(10 * HELLO_RESEND_MS)).toEqual([]);
  });

  it("follows the membership: a member added later (a stable id) agrees; a removed one no longer passes", () => {
    const a = new PeerAgreement(1, [1, 2], 101, SETTINGS);
    const b = new PeerAgreement(2, [1, 2], 202, SETTINGS);
    exchange([a, b], 0);
    // Replica 7 joins knowing 1 and 2; 1 learns of 7 from the membership.
    const joiner = new PeerAgreement(7, [1, 2], 707, SETTINGS);
    expect(joiner.agreed(7)).toBe(true);
    const hello = decodeHello(joiner.hellosToSend(0).find((h) => h.to === 1)!.payload)!;
    expect(a.receive(7, hello, 0).reply).toBeNull(); // not a member of a's yet: ignored
    a.addPeer(7);
    const { reply } = a.receive(7, hello, 0);
    expect(a.agreed(7)).toBe(true);
    joiner.receive(1, decodeHello(reply!)!, 0);
    expect(joiner.agreed(1)).toBe(true);
    a.removePeer(7);
    expect(a.agreed(7)).toBe(false);
    expect(a.hellosToSend(10 * HELLO_RESEND_MS).some((h) => h.to === 7)).toBe(false);
    expect(a.agreed(2)).toBe(true);
  });

  it("refuses a peer whose settings differ, and stops sending once each holds the other's", () => {
    const a = new PeerAgreement(1, 2, 101, SETTINGS);
    const b = new PeerAgreement(2, 2, 202, { ...SETTINGS, "max-value-bytes": "1048576" });
    const delivered = exchange([a, b], 0);
    expect(delivered).toBeLessThanOrEqual(6); // both start at once: two hellos, two answers each
    expect(a.agreed(2)).toBe(false);
    expect(b.agreed(1)).toBe(false);
    expect(a.disagreeing()).toEqual([2]);
    expect(a.hellosToSend(10 * HELLO_RESEND_MS)).toEqual([]);
  });

  it("names the difference, and logs it again only after a while", () => {
    const a = new PeerAgreement(1, 2, 101, SETTINGS);
    const theirs = { ...SETTINGS, "max-value-bytes": "1048576" };
    const first = a.receive(2, { incarnation: 202, heard: 0, ask: true, settings: theirs }, 0);
    expect(first.event).toEqual({
      kind: "disagreed",
      peer: 2,
      differences: ["max-value-bytes: theirs 1048576, ours 8388608"],
    });
    expect(first.reply).not.toBeNull();
    const again = a.receive(
      2,
      { incarnation: 202, heard: 101, ask: false, settings: theirs },
      1000,
    );
    expect(again.event).toBeNull();
    const later = a.receive(
      2,
      { incarnation: 202, heard: 101, ask: false, settings: theirs },
      1000 + DISAGREEMENT_LOG_EVERY_MS,
    );
    expect(later.event?.kind).toBe("disagreed");
  });

  it("takes a restarted peer's new settings, in both directions", () => {
    const a = new PeerAgreement(1, 2, 101, SETTINGS);
    exchange([a, new PeerAgreement(2, 2, 202, SETTINGS)], 0);
    expect(a.agreed(2)).toBe(true);
    // Replica 2 restarts with another limit: refused.
    exchange([a, new PeerAgreement(2, 2, 203, { ...SETTINGS, "cluster-id": "5" })], 1);
    expect(a.agreed(2)).toBe(false);
    // And restarts again with the right one: let through.
    const fixed = new PeerAgreement(2, 2, 204, SETTINGS);
    exchange([a, fixed], 2);
    expect(a.agreed(2)).toBe(true);
    expect(fixed.agreed(1)).toBe(true);
  });

  it("stops for good when any one hello of the exchange is lost", () => {
    for (let lost = 0; lost < 3; lost++) {
      const nodes = [
        new PeerAgreement(1, 2, 101, SETTINGS),
        new PeerAgreement(2, 2, 202, SETTINGS),
      ];
      let now = 0;
      let sent = 0;
      const queue: { from: number; to: number; payload: Uint8Array }[] = [];
      for (let step = 0; step < 40; step++, now += HELLO_RESEND_MS) {
        nodes.forEach((node, index) => {
          for (const hello of node.hellosToSend(now)) queue.push({ from: index + 1, ...hello });
        });
        while (queue.length > 0) {
          const { from, to, payload } = queue.shift()!;
          if (sent++ === lost) continue; // the network loses this one
          const { reply } = nodes[to - 1]!.receive(from, decodeHello(payload)!, now);
          if (reply !== null) queue.push({ from: to, to: from, payload: reply });
        }
      }
      expect(nodes[0]!.agreed(2) && nodes[1]!.agreed(1)).toBe(true);
      expect(sent).toBeLessThanOrEqual(6); // nobody resends forever
    }
  });

  it("resends to a peer that has not answered, every HELLO_RESEND_MS", () => {
    const a = new PeerAgreement(1, 3, 101, SETTINGS);
    expect(a.hellosToSend(0).map((h) => h.to)).toEqual([2, 3]);
    expect(a.hellosToSend(HELLO_RESEND_MS - 1)).toEqual([]);
    a.receive(2, { incarnation: 202, heard: 101, ask: false, settings: SETTINGS }, 1);
    expect(a.hellosToSend(HELLO_RESEND_MS).map((h) => h.to)).toEqual([3]);
  });

  it("ignores hellos it cannot read, and an unknown sender", () => {
    expect(decodeHello(Buffer.from("not json"))).toBeNull();
    expect(
      decodeHello(Buffer.from('{"v":2,"incarnation":1,"heard":0,"ask":true,"settings":{}}')),
    ).toBeNull();
    expect(
      decodeHello(Buffer.from('{"v":1,"incarnation":1,"heard":0,"ask":true,"settings":{"a":1}}')),
    ).toBeNull();
    expect(decodeHello(Buffer.alloc(10_000, 0x20))).toBeNull();
    const hello = { incarnation: 5, heard: 0, ask: true, settings: SETTINGS };
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    const a = new PeerAgreement(1, 2, 101, SETTINGS);
    expect(a.receive(7, hello, 0)).toEqual({ reply: null, event: null });
  });

  it("differences covers settings only one side has", () => {
    expect(differences({ a: "1" }, { b: "2" })).toEqual([
      "a: theirs (absent), ours 1",
      "b: theirs 2, ours (absent)",
    ]);
  });

  it("agrees on --max-memory, which it names only when set (older replicas lack it)", () => {
    const config = (...extra: string[]) => {
      const parsed = parseReplicaArgs(["--id", "1", "--peers", "127.0.0.1:7001", ...extra]);
      if (parsed.action !== "run") throw new Error(parsed.action);
      return agreedSettings(parsed.config);
    };
    expect(config()["max-memory"]).toBeUndefined();
    expect(differences(config("--max-memory", "1g"), config())).toEqual([
      "max-memory: theirs (absent), ours 1073741824",
    ]);
    expect(differences(config("--max-memory", "1g"), config("--max-memory", "1024m"))).toEqual([]);
  });
});
