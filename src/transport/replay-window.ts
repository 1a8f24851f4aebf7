import { assert } from "../core/errors.ts";

/**
 * The anti-replay state of frames from one peer: the highest sender incarnation seen and a
 * sliding window over its sequence numbers, as in IPsec (RFC 4303 §3.4.3, RFC 6479) and
 * WireGuard (`counter_validate` in noise.c): a bitmap of REPLAY_WINDOW_BITS bits in 32-bit words
 * used as a ring, so advancing the window clears only the words it passes over and a check is a
 * few arithmetic operations and one bit test, with nothing allocated.
 *
 * A frame is admitted when its incarnation is the newest seen and its sequence number is above
 * the window or inside it and not yet seen. An older incarnation, a sequence number at or below
 * `highest - REPLAY_WINDOW_SEQS`, or one already seen is a replay. A newer incarnation resets
 * the window: the sender restarted and numbers its frames from 0 again.
 *
 * Only authenticated frames may reach admit(): an attacker who could move the window could make
 * a peer's genuine frames look old.
 *
 * Sequence numbers are safe integers (u64 on the wire, below 2^53), so a sender never wraps: at
 * 10^7 frames per second it would take 28 years. Word and bit indexes use division, not shifts,
 * because JavaScript's shift operators cut to 32 bits.
 */

/** Bits of the bitmap; a multiple of 32. 1 KiB per peer. */
export const REPLAY_WINDOW_BITS = 8192;
const WORD_BITS = 32;
const WORDS = REPLAY_WINDOW_BITS / WORD_BITS;
/**
 * How far behind the highest sequence number a frame may arrive and still be admitted: a frame
 * `REPLAY_WINDOW_SEQS` or more behind is a replay even if it was only reordered. One word less
 * than the bitmap, since the word holding `highest` is partly ahead of it.
 */
export const REPLAY_WINDOW_SEQS = REPLAY_WINDOW_BITS - WORD_BITS;
/** Largest sequence number and incarnation: both must be exact in a double. */
export const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;

assert(REPLAY_WINDOW_BITS % WORD_BITS === 0 && WORDS >= 2, "window is whole words, at least 2");

export type AdmitResult = "ok" | "replay";

export class ReplayWindow {
  /**
   * The sender's newest incarnation seen; 0 before any frame (senders' incarnations are >= 1).
   * Invariant: never decreases.
   */
  incarnation = 0;
  /** Highest sequence number admitted in `incarnation`; -1 when none yet. */
  private highest = -1;
  /**
   * Bit (seq mod 32) of word (floor(seq / 32) mod WORDS) is set iff seq was admitted, for every
   * seq in (highest - REPLAY_WINDOW_SEQS, highest]. Words ahead of highest's word are zero.
   */
  private readonly words = new Uint32Array(WORDS);

  /** Admit (and remember) frame `seq` of `incarnation`, or say it is a replay. */
  admit(incarnation: number, seq: number): AdmitResult {
    assert(Number.isSafeInteger(incarnation) && incarnation >= 1, "incarnation");
    assert(Number.isSafeInteger(seq) && seq >= 0, "sequence number");
    if (incarnation < this.incarnation) return "replay";
    if (incarnation > this.incarnation) this.reset(incarnation);
    if (seq > this.highest) {
      this.advanceTo(seq);
    } else if (this.highest - seq >= REPLAY_WINDOW_SEQS) {
      return "replay";
    }
    const word = Math.floor(seq / WORD_BITS) % WORDS;
    const bit = 1 << (seq % WORD_BITS);
    if ((this.words[word]! & bit) !== 0) return "replay";
    this.words[word] = this.words[word]! | bit;
    return "ok";
  }

  /**
   * Take a newer incarnation without admitting a frame (the sender restarted): sequence numbers
   * start over.
   */
  reset(incarnation: number): void {
    assert(incarnation > this.incarnation, "incarnations only grow");
    this.incarnation = incarnation;
    this.highest = -1;
    this.words.fill(0);
  }

  /** Move `highest` up to `seq`, clearing the words the window slides past (at most all). */
  private advanceTo(seq: number): void {
    const currentWord = Math.floor(this.highest / WORD_BITS); // -1 when empty
    const newWord = Math.floor(seq / WORD_BITS);
    const clear = Math.min(newWord - currentWord, WORDS);
    for (let i = 1; i <= clear; i++) this.words[(currentWord + i) % WORDS] = 0;
    this.highest = seq;
  }
}
