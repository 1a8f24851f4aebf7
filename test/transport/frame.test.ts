import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import {
  checkRecords,
  FLAG_FRAGMENT,
  FLAG_SESSION,
  FRAGMENT_HEADER_BYTES,
  FRAME_BYTES_MIN,
  FRAME_OVERHEAD_BYTES,
  FRAME_VERSION,
  FrameAuthenticator,
  FrameBuilder,
  type FrameContext,
  FrameReader,
  forEachRecord,
  HEADER_BYTES,
  OFFSET_ECHO,
  OFFSET_INCARNATION,
  OFFSET_SEQ,
  openFrame,
  Reassembler,
  readFragment,
  sealFragments,
  sealSession,
  sealSingle,
  TAG_BYTES,
  writeHeader,
  writeSessionFields,
} from "../../src/transport/index.ts";
import { MAC_ONE_SHOT_BYTES_MAX } from "../../src/transport/mac.ts";
import { derivePeerKey } from "../../src/transport/peer-keys.ts";
import { CLUSTER_ID, frameContext, pattern, SECRET, string, text } from "./helpers.ts";

const header = { flags: 0, clusterId: CLUSTER_ID, from: 1, to: 2 };
const FRAME_KEY = derivePeerKey(SECRET, "frames", CLUSTER_ID);
/** Replica 1 seals; replica 2 opens. Fresh per test: both keep replay state. */
let sender: FrameContext;
let context: FrameContext;
beforeEach(() => {
  sender = frameContext(1);
  context = frameContext(2);
});

function records(frame: Buffer): string[] {
  const opened = openFrame(frame, context);
  if (!opened.ok) throw new Error(`dropped: ${opened.reason}`);
  expect(checkRecords(opened.frame.body, context.messageBytesMax)).toBeNull();
  const out: string[] = [];
  forEachRecord(opened.frame.body, (channel, payload) => out.push(`${channel}:${string(payload)}`));
  return out;
}

/** A signed frame around an arbitrary body (to test what happens after authentication). */
function signedFrame(body: Uint8Array, fields = header): Buffer {
  const frame = Buffer.alloc(FRAME_OVERHEAD_BYTES + body.byteLength);
  writeHeader(frame, fields, sender.sessions);
  frame.set(body, HEADER_BYTES);
  sender.authenticator.sign(frame);
  return frame;
}

/** Why openFrame drops `frame`, or "ok". */
function reason(frame: Buffer, at: FrameContext = context): string {
  const opened = openFrame(frame, at);
  return opened.ok ? "ok" : opened.reason;
}

describe("frame: coalesced records", () => {
  it("FrameBuilder coalesces records into one signed frame that openFrame accepts", () => {
    const builder = new FrameBuilder(1000, 0, header);
    builder.append(0, text("prepare"));
    builder.append(1, text("client"));
    builder.append(0, new Uint8Array(0));
    expect(records(builder.seal(sender))).toEqual(["0:prepare", "1:client", "0:"]);
    expect(builder.empty).toBe(true);
  });

  it("the HMAC matches node's createHmac under the derived frame key (not the secret), truncated to 16 bytes", async () => {
    const { createHmac } = await import("node:crypto");
    const frame = sealSingle(sender, header, 0, 0, text("abc"));
    const expected = createHmac("sha256", FRAME_KEY)
      .update(frame.subarray(0, frame.byteLength - TAG_BYTES))
      .digest()
      .subarray(0, TAG_BYTES);
    expect(frame.subarray(frame.byteLength - TAG_BYTES).equals(expected)).toBe(true);
  });

  it("every single-bit flip anywhere in a frame makes it dropped, never delivered", () => {
    const frame = sealSingle(sender, header, 0, 1, text("hello"));
    for (let byte = 0; byte < frame.byteLength; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(frame);
        copy[byte]! ^= 1 << bit;
        const opened = openFrame(copy, context);
        expect(opened.ok).toBe(false);
      }
    }
  });

  it("the tag matches createHmac for payloads of every size, past the one-shot limit too", async () => {
    const { createHmac } = await import("node:crypto");
    for (const size of [0, 1, 100, 1400, MAC_ONE_SHOT_BYTES_MAX, MAC_ONE_SHOT_BYTES_MAX + 100]) {
      const frame = sealSingle(sender, header, 0, 0, pattern(size, size & 0xff));
      const end = frame.byteLength - TAG_BYTES;
      const expected = createHmac("sha256", FRAME_KEY).update(frame.subarray(0, end)).digest();
      expect(frame.subarray(end).equals(expected.subarray(0, TAG_BYTES))).toBe(true);
    }
  });

  it("tampering is dropped as auth: a tag moved from another frame, a cut or grown frame, a large frame's flipped bit", () => {
    const a = sealSingle(sender, header, 0, 1, text("accept slot 7"));
    const b = sealSingle(sender, header, 0, 1, text("accept slot 8"));
    const transplanted = Buffer.from(a);
    b.copy(transplanted, a.byteLength - TAG_BYTES, b.byteLength - TAG_BYTES);
    expect(reason(transplanted)).toBe("auth");
    expect(reason(a.subarray(0, a.byteLength - 1))).toBe("auth");
    expect(reason(Buffer.concat([a, Buffer.of(0)]))).toBe("auth");
    // Beyond MAC_ONE_SHOT_BYTES_MAX the tag comes from createHmac: the same checks hold.
    const large = sealSingle(sender, header, 0, 1, pattern(MAC_ONE_SHOT_BYTES_MAX + 10, 3));
    expect(reason(large)).toBe("ok");
    for (const at of [HEADER_BYTES + 5, large.byteLength >> 1, large.byteLength - 1]) {
      const copy = Buffer.from(large);
      copy[at]! ^= 0x40;
      expect(reason(copy)).toBe("auth");
    }
  });

  it("checks run in order: length, magic, version, cluster, then the tag, then flags and from/to, then the session fields", () => {
    const good = sealSingle(sender, header, 0, 0, text("x"));
    expect(reason(good)).toBe("ok");
    expect(reason(good.subarray(0, FRAME_BYTES_MIN - 1))).toBe("malformed");
    const oldVersion = Buffer.from(good);
    oldVersion.writeUInt8(FRAME_VERSION - 1, 2);
    expect(reason(oldVersion)).toBe("malformed");
    expect(reason(sealSingle(sender, { ...header, clusterId: 7 }, 0, 0, text("x")))).toBe(
      "cluster",
    );
    // Another secret, and the raw secret used as the frame key: both fail the tag.
    const other = frameContext(1, { secrets: [text("other-secret-123456")] });
    expect(reason(sealSingle(other, header, 0, 0, text("x")))).toBe("auth");
    const raw = { ...sender, authenticator: new FrameAuthenticator([SECRET]) };
    expect(reason(sealSingle(raw, header, 0, 0, text("x")))).toBe("auth");
    expect(reason(sealSingle(sender, { ...header, from: 0 }, 0, 0, text("x")))).toBe(
      "unknown-peer",
    );
    // Ids are stable up to REPLICA_ID_MAX (a member may join with any): 31 is taken, 32 is not.
    expect(reason(sealSingle(sender, { ...header, from: 31 }, 0, 0, text("x")))).toBe("ok");
    expect(reason(sealSingle(sender, { ...header, from: 32 }, 0, 0, text("x")))).toBe(
      "unknown-peer",
    );
    expect(reason(sealSingle(sender, { ...header, to: 3 }, 0, 0, text("x")))).toBe("unknown-peer");
    expect(reason(signedFrame(new Uint8Array(5), { ...header, flags: 0x80 }))).toBe("malformed");
    expect(
      reason(signedFrame(new Uint8Array(5), { ...header, flags: FLAG_FRAGMENT | FLAG_SESSION })),
    ).toBe("malformed");
    expect(reason(signedFrame(new Uint8Array(5), { ...header, flags: FLAG_SESSION }))).toBe(
      "malformed",
    ); // a session frame has no body
    expect(reason(good)).toBe("replay"); // the same frame again
  });

  it("an authenticated body whose records do not parse is rejected whole", () => {
    const bad = (body: number[]) => {
      const opened = openFrame(signedFrame(Uint8Array.from(body)), context);
      expect(opened.ok).toBe(true);
      if (!opened.ok) return "";
      return checkRecords(opened.frame.body, context.messageBytesMax);
    };
    expect(bad([0, 1, 0, 0, 0, 65, 0])).toBe("malformed"); // trailing partial record header
    expect(bad([0, 9, 0, 0, 0, 65])).toBe("malformed"); // length beyond the body
    expect(bad([0, 0xff, 0xff, 0xff, 0xff])).toBe("oversize"); // claims 4 GiB
  });

  it("openFrame never throws on arbitrary bytes and never accepts an unsigned frame", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, plausible) => {
        const frame = Buffer.from(bytes);
        if (plausible && frame.byteLength >= HEADER_BYTES) {
          // Give it a valid fixed header so that the tag check is what stops it.
          writeHeader(frame, header, sender.sessions);
        }
        expect(openFrame(frame, context).ok).toBe(false);
      }),
    );
  });
});

describe("frame: session fields (incarnation, seq, echo) and replays", () => {
  /** `frame` with its session fields replaced, signed again with the sender's key. */
  const restamp = (frame: Buffer, incarnation: number, seq: number, echo: number) => {
    const copy = Buffer.from(frame);
    writeSessionFields(copy, incarnation, seq, echo);
    sender.authenticator.sign(copy);
    return copy;
  };
  const u64 = (frame: Buffer, offset: number) =>
    frame.readUInt32LE(offset + 4) * 2 ** 32 + frame.readUInt32LE(offset);

  it("stamps our incarnation, a seq per receiver from 0, and the receiver's incarnation as echo", () => {
    const to2 = [0, 1, 2].map(() => sealSingle(sender, header, 0, 0, text("x")));
    const to3 = sealSingle(sender, { ...header, to: 3 }, 0, 0, text("x"));
    expect(to2.map((f) => u64(f, OFFSET_SEQ))).toEqual([0, 1, 2]);
    expect(u64(to3, OFFSET_SEQ)).toBe(0);
    expect(u64(to2[0]!, OFFSET_INCARNATION)).toBe(sender.sessions.incarnation);
    expect(u64(to2[0]!, OFFSET_ECHO)).toBe(0); // nothing heard from 2 yet
    // Once replica 1 has opened a frame of replica 2, it echoes 2's incarnation.
    const back = sealSingle(context, { ...header, from: 2, to: 1 }, 0, 0, text("y"));
    expect(reason(back, sender)).toBe("ok");
    expect(u64(sealSingle(sender, header, 0, 0, text("z")), OFFSET_ECHO)).toBe(
      context.sessions.incarnation,
    );
  });

  it("drops a frame seen before, reordered ones admitted once each", () => {
    const frames = [0, 1, 2, 3].map((i) => sealSingle(sender, header, 0, 0, text(`m${i}`)));
    expect([3, 1, 0, 2].map((i) => reason(frames[i]!))).toEqual(["ok", "ok", "ok", "ok"]);
    expect([0, 1, 2, 3].map((i) => reason(frames[i]!))).toEqual([
      "replay",
      "replay",
      "replay",
      "replay",
    ]);
  });

  it("drops an older incarnation; a newer one resets the window", () => {
    const first = sealSingle(sender, header, 0, 0, text("x"));
    const incarnation = sender.sessions.incarnation;
    expect(reason(first)).toBe("ok");
    expect(reason(restamp(first, incarnation - 1, 99, 0))).toBe("replay");
    expect(reason(restamp(first, incarnation + 1, 0, 0))).toBe("ok"); // restarted: seq 0 again
    expect(reason(restamp(first, incarnation, 5, 0))).toBe("replay"); // the old run, now stale
  });

  it("a session frame takes no seq and no place in the window: sent ahead of queued frames, it pushes none out", () => {
    const queued = [0, 1, 2].map(() => sealSingle(sender, header, 0, 0, text("q")));
    const session = sealSession(sender, header);
    expect(u64(session, OFFSET_SEQ)).toBe(0);
    expect(u64(sealSingle(sender, header, 0, 0, text("next")), OFFSET_SEQ)).toBe(3);
    expect(reason(session)).toBe("ok");
    expect(reason(session)).toBe("ok"); // a copy repeats only an incarnation the receiver knows
    expect(queued.map((f) => reason(f))).toEqual(["ok", "ok", "ok"]);
    // A session frame of an older run is still a replay.
    const incarnation = sender.sessions.incarnation;
    expect(reason(restamp(queued[0]!, incarnation + 1, 0, 0))).toBe("ok");
    expect(reason(session)).toBe("replay");
  });

  it("the window is only touched after the tag verified: a forged frame cannot burn a seq", () => {
    const frame = sealSingle(sender, header, 0, 0, text("x"));
    const forged = Buffer.from(frame);
    forged[HEADER_BYTES]! ^= 1; // same session fields, bad tag
    expect(reason(forged)).toBe("auth");
    expect(reason(frame)).toBe("ok");
  });

  it("session fields that are not safe integers, or incarnation 0, are malformed", () => {
    const frame = sealSingle(sender, header, 0, 0, text("x"));
    const bad = (offset: number, high: number, low = 0) => {
      const copy = Buffer.from(frame);
      copy.writeUInt32LE(low, offset);
      copy.writeUInt32LE(high, offset + 4);
      sender.authenticator.sign(copy);
      return reason(copy);
    };
    expect(bad(OFFSET_SEQ, 2 ** 21)).toBe("malformed");
    expect(bad(OFFSET_ECHO, 0xffff_ffff)).toBe("malformed");
    expect(bad(OFFSET_INCARNATION, 0, 0)).toBe("malformed");
    expect(bad(OFFSET_SEQ, 2 ** 21 - 1, 0xffff_ffff)).toBe("ok"); // 2^53 - 1 is safe
  });

  it("with the echo required, a frame that does not echo our incarnation is 'stale-session', and teaches its sender's", () => {
    const receiver = frameContext(2, { echoRequired: true });
    const early = sealSingle(sender, header, 0, 0, text("before 1 knew 2"));
    const refused = openFrame(early, receiver);
    expect(refused).toEqual({ ok: false, reason: "stale-session", from: 1, session: false });
    expect(receiver.sessions.echoFor(1)).toBe(sender.sessions.incarnation);
    // 2 answers with a session frame; 1 admits it and learns 2's incarnation.
    const answer = sealSession(receiver, { ...header, from: 2, to: 1 });
    expect(answer.byteLength).toBe(FRAME_OVERHEAD_BYTES);
    const opened = openFrame(answer, sender);
    expect(opened.ok && opened.frame.session).toBe(true);
    expect(reason(sealSingle(sender, header, 0, 0, text("now")), receiver)).toBe("ok");
    // A frame recorded before 2 restarted echoes 2's old incarnation: dropped.
    const restarted = frameContext(2, { echoRequired: true });
    expect(reason(sealSingle(sender, header, 0, 0, text("old echo")), restarted)).toBe(
      "stale-session",
    );
  });

  it("key roll: frames signed with the second key are admitted and counted; a receiver without that key drops them", () => {
    const oldSecret = SECRET;
    const newSecret = text("the-new-cluster-secret-0123456789");
    const rolled = frameContext(2, { secrets: [newSecret, oldSecret] });
    const newOnly = frameContext(2, { secrets: [newSecret] });
    // Replica 1 still runs with the old key only; then it restarts with [new, old].
    const oldSigner = frameContext(1, { secrets: [oldSecret] });
    const newSigner = frameContext(1, { secrets: [newSecret, oldSecret] });
    expect(reason(sealSingle(oldSigner, header, 0, 0, text("old")), rolled)).toBe("ok");
    expect(rolled.secondKeyFrames).toEqual([1]);
    expect(rolled.counters.framesSecondKey).toBe(1);
    expect(reason(sealSingle(newSigner, header, 0, 0, text("new")), rolled)).toBe("ok");
    expect(rolled.secondKeyFrames).toEqual([1]);
    expect(reason(sealSingle(oldSigner, header, 0, 0, text("old")), newOnly)).toBe("auth");
    // The old-only side drops what the new key signs.
    expect(reason(sealSingle(newSigner, header, 0, 0, text("new")), frameContext(2))).toBe("auth");
  });
});

describe("frame: fragments", () => {
  it("sealFragments splits so that readFragment and the reassembler rebuild the message", () => {
    const message = pattern(10_000, 5);
    const frames = sealFragments(sender, header, 1400, 1, 42, message);
    expect(frames.length).toBe(
      Math.ceil(10_000 / (1400 - FRAME_OVERHEAD_BYTES - FRAGMENT_HEADER_BYTES)),
    );
    for (const frame of frames) expect(frame.byteLength).toBeLessThanOrEqual(1400);
    const reassembler = new Reassembler(3, () => {
      throw new Error("no eviction expected");
    });
    let result: ReturnType<Reassembler["add"]> | undefined;
    for (const frame of frames.reverse()) {
      const opened = openFrame(frame, context);
      if (!opened.ok) throw new Error(opened.reason);
      expect(opened.frame.fragment).toBe(true);
      const fragment = readFragment(opened.frame.body, context.messageBytesMax);
      if (typeof fragment === "string") throw new Error(fragment);
      result = reassembler.add(1, fragment, 0);
    }
    expect(result?.kind).toBe("complete");
    if (result?.kind === "complete") {
      expect(result.channel).toBe(1);
      expect(Buffer.from(message).equals(result.payload)).toBe(true);
    }
    expect(reassembler.partialCount).toBe(0);
  });

  it("readFragment checks claimed lengths and geometry before anything is allocated", () => {
    const body = (
      channel: number,
      id: number,
      index: number,
      count: number,
      length: number,
      chunk: number,
    ) => {
      const b = Buffer.alloc(FRAGMENT_HEADER_BYTES + chunk);
      b.writeUInt8(channel, 0);
      b.writeUInt32LE(id, 1);
      b.writeUInt16LE(index, 5);
      b.writeUInt16LE(count, 7);
      b.writeUInt32LE(length, 9);
      return b;
    };
    const max = 1000;
    expect(typeof readFragment(body(0, 1, 0, 2, 100, 50), max)).toBe("object");
    expect(readFragment(body(0, 1, 0, 2, 0xffff_ffff, 50), max)).toBe("oversize");
    expect(readFragment(body(0, 1, 2, 2, 100, 50), max)).toBe("malformed"); // index >= count
    expect(readFragment(body(0, 1, 0, 0, 100, 50), max)).toBe("malformed"); // count 0
    expect(readFragment(body(0, 1, 0, 2, 100, 49), max)).toBe("malformed"); // wrong chunk size
    expect(readFragment(body(0, 1, 1, 3, 2, 1), max)).toBe("malformed"); // more fragments than bytes
    expect(readFragment(Buffer.alloc(FRAGMENT_HEADER_BYTES), max)).toBe("malformed"); // no chunk
  });
});

describe("Reassembler limits", () => {
  const fragment = (id: number, index: number, count: number, length: number) => {
    const size = Math.ceil(length / count);
    const chunkLength = Math.min(size, length - index * size);
    return {
      channel: 0,
      messageId: id,
      fragmentIndex: index,
      fragmentCount: count,
      messageLength: length,
      chunk: Buffer.alloc(chunkLength, index),
    };
  };

  it("forgets a restarted peer's partials: its new run's message of the same id does not complete an old one", () => {
    const evicted: number[] = [];
    const reassembler = new Reassembler(3, (from) => evicted.push(from), 2000, 4);
    expect(reassembler.add(2, fragment(0, 0, 2, 10), 0).kind).toBe("partial");
    expect(reassembler.add(3, fragment(0, 0, 2, 10), 0).kind).toBe("partial");
    reassembler.forgetPeer(2);
    expect(evicted).toEqual([2]);
    expect(reassembler.add(2, fragment(0, 1, 2, 10), 1).kind).toBe("partial"); // not complete
    expect(reassembler.add(3, fragment(0, 1, 2, 10), 1).kind).toBe("complete"); // 3 untouched
  });

  it("drops a partial message after its timeout, counted once", () => {
    const evicted: number[] = [];
    const reassembler = new Reassembler(3, (from) => evicted.push(from), 2000, 4);
    expect(reassembler.add(2, fragment(7, 0, 2, 10), 1000).kind).toBe("partial");
    reassembler.sweep(2999);
    expect(evicted).toEqual([]);
    reassembler.sweep(3000);
    expect(evicted).toEqual([2]);
    expect(reassembler.partialCount).toBe(0);
    // A late fragment starts a new partial, which times out in its turn.
    expect(reassembler.add(2, fragment(7, 1, 2, 10), 3001).kind).toBe("partial");
  });

  it("evicts the oldest partial of a peer beyond the per-peer limit; other peers unaffected", () => {
    const evicted: number[] = [];
    const reassembler = new Reassembler(3, (from) => evicted.push(from), 2000, 2);
    reassembler.add(1, fragment(1, 0, 2, 10), 0);
    reassembler.add(1, fragment(2, 0, 2, 10), 0);
    reassembler.add(3, fragment(1, 0, 2, 10), 0);
    expect(evicted).toEqual([]);
    reassembler.add(1, fragment(3, 0, 2, 10), 0); // evicts message 1 of peer 1
    expect(evicted).toEqual([1]);
    expect(reassembler.add(1, fragment(1, 1, 2, 10), 0).kind).toBe("partial"); // evicted: restarts
    expect(reassembler.add(3, fragment(1, 1, 2, 10), 0).kind).toBe("complete");
    expect(reassembler.add(1, fragment(3, 1, 2, 10), 0).kind).toBe("complete");
  });

  it("ignores duplicate fragments and drops fragments inconsistent with their message", () => {
    const reassembler = new Reassembler(1, () => {}, 2000, 4);
    expect(reassembler.add(1, fragment(5, 0, 3, 30), 0).kind).toBe("partial");
    expect(reassembler.add(1, fragment(5, 0, 3, 30), 0).kind).toBe("partial");
    expect(reassembler.add(1, fragment(5, 1, 3, 31), 0)).toEqual({
      kind: "drop",
      reason: "malformed",
    });
    expect(reassembler.add(1, fragment(5, 1, 3, 30), 0).kind).toBe("partial");
    const done = reassembler.add(1, fragment(5, 2, 3, 30), 0);
    expect(done.kind).toBe("complete");
    if (done.kind === "complete") {
      expect([...done.payload]).toEqual([
        ...Array(10).fill(0),
        ...Array(10).fill(1),
        ...Array(10).fill(2),
      ]);
    }
  });
});

describe("FrameReader (TCP stream)", () => {
  it("reassembles frames fed one byte at a time and several per chunk", () => {
    const frames = [
      sealSingle(sender, header, 4, 0, text("one")),
      sealSingle(sender, header, 4, 1, pattern(5000, 1)),
      sealSingle(sender, header, 4, 0, text("three")),
    ];
    const stream = Buffer.concat(frames);
    const reader = new FrameReader(1 << 20);
    const out: Buffer[] = [];
    for (let i = 0; i < stream.byteLength; i++) {
      reader.push(stream.subarray(i, i + 1));
      for (let f = reader.next(); f !== null; f = reader.next()) {
        if (typeof f === "string") throw new Error(f);
        out.push(f);
      }
    }
    expect(out.map((f, i) => f.equals(frames[i]!.subarray(4)))).toEqual([true, true, true]);
    const whole = new FrameReader(1 << 20);
    whole.push(stream);
    const all = [whole.next(), whole.next(), whole.next(), whole.next()];
    expect(all.slice(0, 3).every((f) => Buffer.isBuffer(f))).toBe(true);
    expect(all[3]).toBeNull();
  });

  it("rejects claimed lengths out of range before waiting for the bytes", () => {
    const claim = (length: number) => {
      const reader = new FrameReader(1000);
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32LE(length, 0);
      reader.push(prefix);
      return reader.next();
    };
    expect(claim(1001)).toBe("oversize");
    expect(claim(0xffff_ffff)).toBe("oversize");
    expect(claim(FRAME_BYTES_MIN - 1)).toBe("malformed");
    expect(claim(1000)).toBeNull(); // plausible: waits for the bytes
  });
});
