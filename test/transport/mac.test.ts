import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HmacSha256, MAC_ONE_SHOT_BYTES_MAX, SHA256_BLOCK_BYTES } from "../../src/transport/mac.ts";

const reference = (key: Uint8Array, message: Uint8Array) =>
  createHmac("sha256", key).update(message).digest();

const hex = (text: string) => Buffer.from(text, "hex");
const ascii = (text: string) => Buffer.from(text, "latin1");

describe("HmacSha256: the same function as createHmac('sha256')", () => {
  it("matches the RFC 4231 test vectors (cases 1, 2, 6, 7: short keys and keys longer than a block)", () => {
    const aa131 = Buffer.alloc(131, 0xaa);
    const cases: [Uint8Array, Uint8Array, string][] = [
      [
        Buffer.alloc(20, 0x0b),
        ascii("Hi There"),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      ],
      [
        ascii("Jefe"),
        ascii("what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      ],
      [
        aa131,
        ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      ],
      [
        aa131,
        ascii(
          "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
        ),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
      ],
    ];
    for (const [key, message, tag] of cases) {
      expect(new HmacSha256(key).digest(message).toString("hex")).toBe(tag);
      expect(reference(key, message).toString("hex")).toBe(tag);
    }
  });

  it("equals createHmac for random keys (0 … 200 bytes, across the 64-byte block) and messages (empty too)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 3000 }), { minLength: 1, maxLength: 4 }),
        (key, messages) => {
          const hmac = new HmacSha256(key);
          // Several messages through one instance: the reused scratch must not leak between calls.
          for (const message of messages)
            expect(hmac.digest(message).equals(reference(key, message))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("equals createHmac at the edges: key lengths 0, 63, 64, 65, 128 and message lengths at the one-shot limit", () => {
    const sizes = [
      0,
      1,
      SHA256_BLOCK_BYTES - 1,
      SHA256_BLOCK_BYTES,
      SHA256_BLOCK_BYTES + 1,
      MAC_ONE_SHOT_BYTES_MAX - 1,
      MAC_ONE_SHOT_BYTES_MAX,
      MAC_ONE_SHOT_BYTES_MAX + 1, // createHmac fallback
      3 * MAC_ONE_SHOT_BYTES_MAX,
    ];
    for (const keyBytes of [0, 1, 63, 64, 65, 128]) {
      const key = Buffer.alloc(keyBytes);
      for (let i = 0; i < keyBytes; i++) key[i] = (i * 31 + keyBytes) & 0xff;
      const hmac = new HmacSha256(key);
      for (const size of sizes) {
        const message = Buffer.alloc(size);
        for (let i = 0; i < size; i++) message[i] = (i * 7 + size) & 0xff;
        expect(hmac.digest(message).equals(reference(key, message))).toBe(true);
      }
      // A short message after a long one: nothing of the long one's bytes may count.
      expect(hmac.digest(ascii("x")).equals(reference(key, ascii("x")))).toBe(true);
    }
  });

  it("keys that differ only past the block size, once hashed, give different tags (RFC 2104 §3)", () => {
    const a = Buffer.alloc(100, 1);
    const b = Buffer.from(a);
    b[99] = 2;
    const message = ascii("m");
    expect(new HmacSha256(a).digest(message).equals(new HmacSha256(b).digest(message))).toBe(false);
  });

  it("does not keep a view of the caller's key: changing the key afterwards changes nothing", () => {
    const key = hex("00112233445566778899aabbccddeeff");
    const hmac = new HmacSha256(key);
    const before = hmac.digest(ascii("m"));
    key.fill(0);
    expect(hmac.digest(ascii("m")).equals(before)).toBe(true);
  });
});
