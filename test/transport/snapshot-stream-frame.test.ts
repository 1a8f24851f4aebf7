/**
 * The snapshot stream's frames (src/transport/snapshot-stream-frame.ts): what one side seals the
 * other opens, in order; forged, truncated, replayed, reordered and misshapen frames are refused
 * with the reason the file's comment names, before anything is trusted.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { LENGTH_PREFIX_BYTES } from "../../src/transport/frame.ts";
import { FrameReader } from "../../src/transport/frame-reader.ts";
import {
  chunkFrameBytes,
  DoneOutcome,
  deriveStreamKeys,
  STREAM_FRAME_BYTES_MIN,
  STREAM_HEADER_BYTES,
  STREAM_OFFSET_SEQ,
  STREAM_OFFSET_TYPE,
  STREAM_OFFSET_VERSION,
  STREAM_TAG_BYTES,
  type StreamFrame,
  StreamFrameType,
  StreamOpener,
  StreamSealer,
  sha256Pieces,
} from "../../src/transport/snapshot-stream-frame.ts";

const KEYS = deriveStreamKeys(randomBytes(32), randomBytes(32), Buffer.alloc(32));
const CHUNK_MAX = 64 * 1024;

function pair(): { sealer: StreamSealer; opener: StreamOpener } {
  return {
    sealer: new StreamSealer(KEYS.initiator),
    opener: new StreamOpener(KEYS.initiator, CHUNK_MAX),
  };
}

/** A sealed frame without its length prefix (what FrameReader hands over). */
function body(sealed: Buffer): Buffer {
  return sealed.subarray(LENGTH_PREFIX_BYTES);
}

/** Sign `frame` (prefix included) again under `key`, as a holder of the key could. */
function resign(sealed: Buffer, key: Uint8Array): Buffer {
  const end = sealed.byteLength - STREAM_TAG_BYTES;
  const tag = createHmac("sha256", key).update(sealed.subarray(0, end)).digest();
  tag.copy(sealed, end, 0, STREAM_TAG_BYTES);
  return sealed;
}

describe("snapshot stream frames", () => {
  it("opens what the other side sealed, every type, in order", () => {
    const { sealer, opener } = pair();
    const digest = randomBytes(32);
    const data = randomBytes(1000);
    const frames = [
      sealer.offer(42, 123_456_789_012, digest, Buffer.from("the head")),
      sealer.resume(77),
      sealer.chunk(2 ** 40, data),
      sealer.ack(5),
      sealer.done(DoneOutcome.DigestMismatch),
    ];
    const opened = frames.map((frame) => opener.open(body(frame)) as StreamFrame);
    expect(opened[0]).toEqual({
      type: StreamFrameType.Offer,
      slot: 42,
      totalBytes: 123_456_789_012,
      digest,
      head: Buffer.from("the head"),
    });
    expect(opened[1]).toEqual({ type: StreamFrameType.Resume, offset: 77 });
    expect(opened[2]).toMatchObject({ type: StreamFrameType.Chunk, offset: 2 ** 40 });
    expect((opened[2] as { data: Buffer }).data.equals(data)).toBe(true);
    expect(opened[3]).toEqual({ type: StreamFrameType.Ack, offset: 5 });
    expect(opened[4]).toEqual({ type: StreamFrameType.Done, outcome: DoneOutcome.DigestMismatch });
  });

  it("refuses a frame whose tag does not verify: any flipped bit, another key, the other direction", () => {
    const { sealer } = pair();
    const frame = sealer.chunk(0, randomBytes(300));
    for (const at of [4, STREAM_OFFSET_SEQ + 4, LENGTH_PREFIX_BYTES + 30, frame.byteLength - 1]) {
      const forged = Buffer.from(frame);
      forged[at]! ^= 0x01;
      // Flipping the version or the type is "malformed" or "auth"; never accepted.
      expect(new StreamOpener(KEYS.initiator, CHUNK_MAX).open(body(forged))).toMatch(
        /^(auth|malformed)$/,
      );
    }
    expect(new StreamOpener(KEYS.responder, CHUNK_MAX).open(body(frame))).toBe("auth");
    const other = deriveStreamKeys(randomBytes(32), randomBytes(32), Buffer.alloc(32));
    expect(new StreamOpener(other.initiator, CHUNK_MAX).open(body(frame))).toBe("auth");
  });

  it("refuses a replayed, skipped or reordered frame (seq under the tag)", () => {
    const { sealer, opener } = pair();
    const first = sealer.ack(1);
    const second = sealer.ack(2);
    const third = sealer.ack(3);
    expect(opener.open(body(first))).toEqual({ type: StreamFrameType.Ack, offset: 1 });
    expect(opener.open(body(first))).toBe("replay");
    expect(opener.open(body(third))).toBe("replay");
    expect(opener.open(body(second))).toEqual({ type: StreamFrameType.Ack, offset: 2 });
  });

  it("refuses truncated frames, wrong versions, unknown types and bodies of the wrong length", () => {
    const { sealer } = pair();
    const offer = sealer.offer(1, 10, randomBytes(32), Buffer.alloc(0));
    const fresh = () => new StreamOpener(KEYS.initiator, CHUNK_MAX);
    // Cut short: the tag no longer covers what it did.
    expect(fresh().open(body(offer).subarray(0, body(offer).byteLength - 1))).toBe("auth");
    expect(fresh().open(Buffer.alloc(STREAM_FRAME_BYTES_MIN - 1))).toBe("malformed");
    const version = Buffer.from(offer);
    version[LENGTH_PREFIX_BYTES + STREAM_OFFSET_VERSION] = 9;
    expect(fresh().open(body(resign(version, KEYS.initiator)))).toBe("malformed");
    const type = Buffer.from(offer);
    type[LENGTH_PREFIX_BYTES + STREAM_OFFSET_TYPE] = 99;
    expect(fresh().open(body(resign(type, KEYS.initiator)))).toBe("malformed");
    // An OFFER's type on an ACK's body (8 bytes): the wrong length for an OFFER.
    const ack = new StreamSealer(KEYS.initiator).ack(3);
    ack[LENGTH_PREFIX_BYTES + STREAM_OFFSET_TYPE] = StreamFrameType.Offer;
    expect(fresh().open(body(resign(ack, KEYS.initiator)))).toBe("malformed");
    // A total of 0 bytes, or an offset that is not a safe integer.
    const zero = new StreamSealer(KEYS.initiator).offer(1, 10, randomBytes(32), Buffer.alloc(0));
    zero.fill(
      0,
      LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES + 8,
      LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES + 16,
    );
    expect(fresh().open(body(resign(zero, KEYS.initiator)))).toBe("malformed");
    const huge = new StreamSealer(KEYS.initiator).resume(0);
    huge.fill(
      0xff,
      LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES,
      LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES + 8,
    );
    expect(fresh().open(body(resign(huge, KEYS.initiator)))).toBe("malformed");
    const done = new StreamSealer(KEYS.initiator).done(DoneOutcome.Delivered);
    done[LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES] = 4;
    expect(fresh().open(body(resign(done, KEYS.initiator)))).toBe("malformed");
  });

  it("refuses an OFFER whose head length disagrees with its body, or is too long", () => {
    const fresh = () => new StreamOpener(KEYS.initiator, CHUNK_MAX);
    const offer = new StreamSealer(KEYS.initiator).offer(1, 10, randomBytes(32), Buffer.alloc(5));
    const at = LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES + 8 + 8 + 32;
    for (const claimed of [4, 6, 65, 0xffff]) {
      const forged = Buffer.from(offer);
      forged.writeUInt16LE(claimed, at);
      expect(fresh().open(body(resign(forged, KEYS.initiator)))).toBe("malformed");
    }
    expect(fresh().open(body(offer))).toMatchObject({ head: Buffer.alloc(5) });
  });

  it("refuses a chunk larger than the receiver reads, and a frame beyond its limit", () => {
    const sealer = new StreamSealer(KEYS.initiator);
    const opener = new StreamOpener(KEYS.initiator, 1024);
    expect(opener.open(body(sealer.chunk(0, randomBytes(1025))))).toBe("oversize");
    expect(opener.frameBytesMax).toBe(chunkFrameBytes(1024));
    // The sender's side reads no chunks at all.
    expect(
      new StreamOpener(KEYS.initiator, 0).open(
        body(new StreamSealer(KEYS.initiator).chunk(0, randomBytes(10))),
      ),
    ).toBe("oversize");
  });

  it("cuts a stream of frames in any chunking, and refuses a length prefix out of bounds before waiting", () => {
    const { sealer, opener } = pair();
    const frames = [
      sealer.offer(3, 5000, randomBytes(32), Buffer.alloc(0)),
      sealer.chunk(0, randomBytes(5000)),
    ];
    const stream = Buffer.concat(frames);
    const reader = new FrameReader(opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    const got: StreamFrame[] = [];
    for (let at = 0; at < stream.byteLength; at += 7) {
      reader.push(stream.subarray(at, at + 7));
      for (;;) {
        const next = reader.next();
        if (next === null) break;
        expect(typeof next).not.toBe("string");
        got.push(opener.open(next as Buffer) as StreamFrame);
      }
    }
    expect(got.map((f) => f.type)).toEqual([StreamFrameType.Offer, StreamFrameType.Chunk]);
    const bad = new FrameReader(opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32LE(opener.frameBytesMax + 1);
    bad.push(prefix);
    expect(bad.next()).toBe("oversize");
    const small = new FrameReader(opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    prefix.writeUInt32LE(STREAM_FRAME_BYTES_MIN - 1);
    small.push(prefix);
    expect(small.next()).toBe("malformed");
  });

  it("digests in pieces what one SHA-256 of the whole gives", async () => {
    const a = randomBytes(100_000);
    const b = randomBytes(3);
    const whole = createHash("sha256").update(a).update(b).digest();
    expect((await sha256Pieces([a, b])).equals(whole)).toBe(true);
  });

  it("derives two different keys per connection, bound to the transcript and the channel", () => {
    const key = randomBytes(32);
    const transcript = randomBytes(32);
    const one = deriveStreamKeys(key, transcript, Buffer.alloc(32));
    expect(Buffer.from(one.initiator).equals(Buffer.from(one.responder))).toBe(false);
    const again = deriveStreamKeys(key, transcript, Buffer.alloc(32));
    expect(Buffer.from(again.initiator).equals(Buffer.from(one.initiator))).toBe(true);
    const otherTranscript = deriveStreamKeys(key, randomBytes(32), Buffer.alloc(32));
    expect(Buffer.from(otherTranscript.initiator).equals(Buffer.from(one.initiator))).toBe(false);
    const otherBinding = deriveStreamKeys(key, transcript, Buffer.alloc(32, 1));
    expect(Buffer.from(otherBinding.initiator).equals(Buffer.from(one.initiator))).toBe(false);
  });
});
