import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeMessage,
  encodedSize,
  encodeMessage,
  HEADER_SIZE,
  type Message,
  MessageType,
  WIRE_VERSION,
} from "../../src/core/index.ts";
import { messageArb } from "../fuzz/gen/wire-messages.ts";

/** Every message type, with numbers biased to the edges the decoder checks (shared with the fuzz target). */
const message = messageArb;

describe("wire format", () => {
  it("round-trips every message type exactly", () => {
    fc.assert(
      fc.property(message, (m) => {
        const encoded = encodeMessage(m);
        expect(encoded.byteLength).toBe(encodedSize(m));
        const decoded = decodeMessage(encoded);
        expect(decoded.ok).toBe(true);
        if (decoded.ok) expect(decoded.message).toEqual(m);
      }),
      { numRuns: 2000 },
    );
  });

  it("decodes from a view at any offset inside a larger buffer", () => {
    fc.assert(
      fc.property(message, fc.integer({ min: 0, max: 13 }), (m, offset) => {
        const encoded = encodeMessage(m);
        const big = new Uint8Array(offset + encoded.byteLength + 5);
        big.set(encoded, offset);
        const decoded = decodeMessage(big.subarray(offset, offset + encoded.byteLength));
        expect(decoded.ok && decoded.message).toEqual(m);
      }),
    );
  });

  it("rejects every truncation of a valid message with a typed error", () => {
    fc.assert(
      fc.property(message, (m) => {
        const encoded = encodeMessage(m);
        for (let cut = 0; cut < encoded.byteLength; cut++) {
          const decoded = decodeMessage(encoded.subarray(0, cut));
          expect(decoded.ok).toBe(false);
          if (!decoded.ok) expect(decoded.code).toMatch(/^ERR_WIRE_/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on random bytes, and never on a valid header followed by junk", () => {
    const header = fc
      .tuple(fc.integer({ min: 1, max: 16 }), fc.uint8Array({ maxLength: 200 }))
      .map(([type, rest]) => {
        const out = new Uint8Array(HEADER_SIZE + rest.byteLength);
        out.set([WIRE_VERSION, type, 1, 2], 0);
        out.set(rest, HEADER_SIZE);
        return out;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), header), (input) => {
        const decoded = decodeMessage(input);
        if (!decoded.ok) expect(decoded.code).toMatch(/^ERR_WIRE_/);
      }),
      { numRuns: 20_000 },
    );
  });

  it("rejects flipped bytes or decodes them to a well-formed message", () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, where, flip) => {
        const encoded = encodeMessage(m);
        encoded[where % encoded.byteLength]! ^= flip;
        const decoded = decodeMessage(encoded);
        if (decoded.ok) expect(encodeMessage(decoded.message)).toEqual(encoded);
      }),
      { numRuns: 3000 },
    );
  });

  it("does not allocate by a hostile count: a huge command count in a tiny packet is refused", () => {
    const m: Message = {
      type: MessageType.Accept,
      from: 1,
      to: 2,
      ballot: 257,
      slot: 1,
      commitSlot: 0,
      batch: { stampMs: 0, commands: [] },
    };
    const encoded = encodeMessage(m);
    const view = new DataView(encoded.buffer);
    view.setUint32(encoded.byteLength - 4, 0xffffffff, true); // command count
    const decoded = decodeMessage(encoded);
    expect(decoded).toMatchObject({ ok: false, code: "ERR_WIRE_LIMIT" });
    view.setUint32(encoded.byteLength - 4, 1000, true); // within the limit, but 4000 bytes missing
    expect(decodeMessage(encoded)).toMatchObject({ ok: false, code: "ERR_WIRE_TRUNCATED" });
  });

  it("names what is wrong: version, type, ids, trailing bytes, unsafe integers", () => {
    const good = encodeMessage({
      type: MessageType.Heartbeat,
      from: 1,
      to: 2,
      ballot: 257,
      commitSlot: 3,
      readRound: 0,
    });
    const mutate = (at: number, value: number) => {
      const copy = good.slice();
      copy[at] = value;
      return decodeMessage(copy);
    };
    expect(mutate(0, 9)).toMatchObject({ ok: false, code: "ERR_WIRE_VERSION" });
    expect(mutate(1, 200)).toMatchObject({ ok: false, code: "ERR_WIRE_TYPE" });
    expect(mutate(2, 0)).toMatchObject({ ok: false, code: "ERR_WIRE_FIELD" });
    expect(mutate(HEADER_SIZE + 7, 0xff)).toMatchObject({ ok: false, code: "ERR_WIRE_FIELD" });
    const longer = new Uint8Array(good.byteLength + 1);
    longer.set(good);
    expect(decodeMessage(longer)).toMatchObject({ ok: false, code: "ERR_WIRE_TRAILING" });
  });
});
