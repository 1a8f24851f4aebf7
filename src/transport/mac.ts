/**
 * HMAC-SHA256 (RFC 2104, FIPS 198-1) computed with two one-shot `crypto.hash` calls instead of a
 * `createHmac` object per frame. Same function, same bytes: the tag on the wire does not change.
 *
 * Why: every peer frame is signed once and verified once, and `createHmac(…).update(…).digest()`
 * builds a JS Hmac object and a native context per call. bench/mac.bench.ts, 200-byte frame, on
 * the 2-core dev machine: createHmac with a raw key ~13 µs, with a KeyObject (what frames used
 * before) ~2.05 µs median / ~2.5-3 µs mean, this ~1.75 µs / ~2.2-2.9 µs, one bare crypto.hash
 * ~0.9 µs (so two of them are the floor of any SHA-256 HMAC from JS). libsodium's keyed BLAKE2b
 * (sodium-native) is ~0.5 µs but a native dependency, a wire change, and slower than SHA-256
 * with SHA-NI from ~1.4 KiB up (60 vs 38 µs at 64 KiB); at ~1.2 µs a MAC apart it was not
 * taken.
 *
 * The construction, exactly as RFC 2104 §2 defines HMAC, with B = 64 (SHA-256's block) and
 * L = 32 (its output):
 *
 *   K0   = K                 if |K| <= B, else SHA-256(K)        (RFC 2104 §3, FIPS 198-1 step 2)
 *   K0  ‖= zero bytes up to B
 *   HMAC = SHA-256((K0 ⊕ opad) ‖ SHA-256((K0 ⊕ ipad) ‖ m)),  ipad = 0x36…, opad = 0x5c…
 *
 * Both padded keys are computed once per key; each call copies m behind K0 ⊕ ipad in a scratch
 * buffer owned by this object (one memcpy, no allocation) and writes the inner digest behind
 * K0 ⊕ opad in a second one, so the only allocation per call is the digest `crypto.hash`
 * returns. Security is HMAC-SHA256's: a PRF under the usual assumption on SHA-256's compression
 * function (Bellare, "New proofs for NMAC and HMAC", 2006), so the tag is unforgeable without
 * the key. Frames keep the first 128 bits (RFC 2104 §5 and NIST SP 800-107 allow truncation to
 * half the output and to no less than 80 bits): a forgery succeeds with probability 2^-128 per
 * try. Verification compares with `timingSafeEqual` (see FrameAuthenticator.verify), so the time
 * taken says nothing about how many bytes of a forged tag were right.
 *
 * Messages longer than MAC_ONE_SHOT_BYTES_MAX go through `createHmac` with a KeyObject made once
 * (the same function again): there the per-call overhead is small beside hashing the bytes, and
 * the scratch buffer stays bounded. The scratch buffers make an instance single-threaded and
 * not re-entrant: one per transport, used synchronously (a worker thread has its own).
 */
import { createHmac, createSecretKey, hash, type KeyObject } from "node:crypto";
import { assert } from "../core/errors.ts";

/** SHA-256's input block, B in RFC 2104. */
export const SHA256_BLOCK_BYTES = 64;
/** SHA-256's output, L in RFC 2104. */
export const SHA256_DIGEST_BYTES = 32;
/**
 * Longest message hashed one-shot through the scratch buffer (covers every UDP datagram);
 * longer ones use createHmac with a KeyObject. The scratch costs this much memory per instance;
 * at this size both ways cost the same (~38 µs, bench/mac.bench.ts 64 KiB row): hashing the
 * bytes dominates, not the per-call object.
 */
export const MAC_ONE_SHOT_BYTES_MAX = 64 * 1024;

const IPAD = 0x36;
const OPAD = 0x5c;

/** HMAC-SHA256 under one key; `digest` returns all 32 bytes, identical to createHmac's. */
export class HmacSha256 {
  /** K0 ⊕ ipad, then room for a message of up to MAC_ONE_SHOT_BYTES_MAX bytes. */
  private readonly inner: Buffer;
  /** K0 ⊕ opad, then the inner digest. Invariant: length = B + L. */
  private readonly outer: Buffer;
  /** The same key for createHmac, for messages too long for `inner`. */
  private readonly key: KeyObject;

  constructor(key: Uint8Array) {
    // RFC 2104 §3: a key longer than the block is hashed first; a shorter one is zero-padded.
    const k0 = Buffer.alloc(SHA256_BLOCK_BYTES);
    if (key.byteLength > SHA256_BLOCK_BYTES) k0.set(hash("sha256", key, "buffer"));
    else k0.set(key);
    this.inner = Buffer.allocUnsafe(SHA256_BLOCK_BYTES + MAC_ONE_SHOT_BYTES_MAX);
    this.outer = Buffer.allocUnsafe(SHA256_BLOCK_BYTES + SHA256_DIGEST_BYTES);
    for (let i = 0; i < SHA256_BLOCK_BYTES; i++) {
      this.inner[i] = k0[i]! ^ IPAD;
      this.outer[i] = k0[i]! ^ OPAD;
    }
    k0.fill(0);
    // createSecretKey refuses an empty key; HMAC allows one (K0 is then all zeros).
    this.key = createSecretKey(key.byteLength > 0 ? key : Buffer.alloc(SHA256_BLOCK_BYTES));
  }

  /** HMAC-SHA256(key, message), 32 bytes, in a new Buffer. */
  digest(message: Uint8Array): Buffer {
    if (message.byteLength > MAC_ONE_SHOT_BYTES_MAX)
      return createHmac("sha256", this.key).update(message).digest();
    const innerEnd = SHA256_BLOCK_BYTES + message.byteLength;
    this.inner.set(message, SHA256_BLOCK_BYTES);
    const innerDigest = hash("sha256", this.inner.subarray(0, innerEnd), "buffer");
    assert(innerDigest.byteLength === SHA256_DIGEST_BYTES);
    this.outer.set(innerDigest, SHA256_BLOCK_BYTES);
    return hash("sha256", this.outer, "buffer");
  }
}
