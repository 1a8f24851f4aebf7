import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  derivePeerKey,
  derivePeerKeys,
  PEER_KEY_BYTES,
  PEER_KEYS_SALT,
  peerKeyInfo,
} from "../../src/transport/peer-keys.ts";

const ascii = (text: string) => Buffer.from(text, "latin1");
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const SECRET_A = ascii("0123456789abcdef0123456789abcdef");
const SECRET_B = ascii("fedcba9876543210fedcba9876543210");

/** RFC 5869 §2.2-2.3 by hand with createHmac: extract, then one block of expand (L = 32). */
function hkdfByHand(ikm: Uint8Array, salt: string, info: string): string {
  const prk = createHmac("sha256", ascii(salt)).update(ikm).digest();
  const t1 = createHmac("sha256", prk)
    .update(Buffer.concat([ascii(info), Buffer.from([1])]))
    .digest();
  return t1.toString("hex");
}

describe("derivePeerKeys: HKDF-SHA256 per purpose (RFC 5869)", () => {
  it("matches known answers computed with `openssl kdf ... HKDF` (OpenSSL 3.0)", () => {
    // openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt key:0123456789abcdef0123456789abcdef \
    //   -kdfopt salt:apus-smr/peer-keys/v1 -kdfopt info:apus-smr/v1/frames/cluster=7 HKDF
    expect(hex(derivePeerKey(SECRET_A, "frames", 7))).toBe(
      "52dbb5c45685fda64bf0975752263f778cc73115eb907be596c60a7cfc6b0c03",
    );
    expect(hex(derivePeerKey(SECRET_A, "handshake", 7))).toBe(
      "01bcfa5b173b5542c3f517a43dbd2602f504d791d1deb73189d7649d939173df",
    );
    expect(hex(derivePeerKey(SECRET_B, "frames", 7))).toBe(
      "0b4e3944622c0a1c7bd3ef3153e92c54237f150e04455aa603a21026979fc355",
    );
  });

  it("matches HKDF written out with HMAC (extract then expand), for both purposes and other ids", () => {
    for (const clusterId of [0, 1, 7, 0xffff_ffff]) {
      for (const purpose of ["frames", "handshake"] as const) {
        expect(hex(derivePeerKey(SECRET_A, purpose, clusterId))).toBe(
          hkdfByHand(SECRET_A, PEER_KEYS_SALT, peerKeyInfo(purpose, clusterId)),
        );
      }
    }
  });

  it("gives one key per secret, the signing (first) secret's at index 0", () => {
    const keys = derivePeerKeys([SECRET_B, SECRET_A], 7);
    expect(keys.frames.map(hex)).toEqual([
      hex(derivePeerKey(SECRET_B, "frames", 7)),
      hex(derivePeerKey(SECRET_A, "frames", 7)),
    ]);
    expect(keys.handshake.map(hex)).toEqual([
      hex(derivePeerKey(SECRET_B, "handshake", 7)),
      hex(derivePeerKey(SECRET_A, "handshake", 7)),
    ]);
    for (const key of [...keys.frames, ...keys.handshake])
      expect(key.byteLength).toBe(PEER_KEY_BYTES);
  });

  it("separates purposes, clusters and the raw secret", () => {
    const keys = derivePeerKeys([SECRET_A], 7);
    const other = derivePeerKeys([SECRET_A], 8);
    const all = [
      keys.frames[0]!,
      keys.handshake[0]!,
      other.frames[0]!,
      other.handshake[0]!,
      SECRET_A,
    ];
    expect(new Set(all.map(hex)).size).toBe(all.length);
  });

  it("refuses no secret, three secrets and a short one (validated at the edge; here it asserts)", () => {
    expect(() => derivePeerKeys([], 1)).toThrow(/peer secrets/);
    expect(() => derivePeerKeys([SECRET_A, SECRET_B, SECRET_A], 1)).toThrow(/peer secrets/);
    expect(() => derivePeerKeys([ascii("short")], 1)).toThrow(/SECRET_BYTES_MIN/);
    expect(() => derivePeerKeys([SECRET_A], -1)).toThrow(/clusterId/);
  });
});
