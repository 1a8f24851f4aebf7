import { assert } from "../core/errors.ts";
import { type AdmitResult, ReplayWindow, SEQUENCE_MAX } from "./replay-window.ts";

/**
 * One transport's replay state for every peer: what goes into the session fields of each frame
 * it sends (its own incarnation, a sequence number per receiver, and the receiver's incarnation
 * as last seen, the echo) and the check of those fields on each frame it receives.
 *
 * Why the echo: the replay window lives in memory, so a receiver that restarts forgets which
 * frames it saw; a recorder could then play it every frame of a sender's current incarnation
 * once more (the last REPLAY_WINDOW_SEQS of them pass the window of the receiver's new run). A
 * frame is only admitted if it echoes the receiver's current incarnation, which no frame
 * recorded before the receiver (re)started can do.
 *
 * How a sender learns the incarnation it echoes, both transports requiring the echo:
 *   - UDP: from that peer's authenticated frames (even ones it then drops); a receiver that
 *     drops a frame for a stale echo tells the sender its incarnation with a session frame
 *     (udp-transport.ts), so after a restart the two agree within a round trip.
 *   - TCP: from the connection handshake (tcp-handshake.ts), before the first frame: the REPLY
 *     carries the responder's incarnation, the PROOF the initiator's, each under a tag over the
 *     other side's fresh nonce (learn()). The dialing side seals every frame it writes on that
 *     connection with the responder's incarnation as echo: frames it queued for an earlier run
 *     of the peer are discarded, counted "stale-session", when the handshake shows a newer one
 *     (tcp-transport.ts). So a stale echo on a TCP connection is never the sender's own doing,
 *     only a recording injected into the stream (plain TCP has nothing else to stop an on-path
 *     host from writing into it): the frame is dropped, counted "stale-session", and the
 *     connection goes on.
 *
 * Why the echo on TCP rather than a frame key per connection (HKDF of the frame key and the
 * handshake's nonces, frames signed when written): one session rule and one frame format for
 * both transports, checked by the same code and fuzz target; frames are signed when sealed, and
 * signed again only if queued before the sender knew any run of the peer (echo 0, at its first
 * handshake), not every queued frame at every connection; and it closes the same hole. What neither would
 * change: a frame of the sender's current run that never reached the receiver (its connection
 * was cut) can be injected into a later connection of the same two runs while it is within the
 * replay window; it is delivered once, late, as a delayed UDP datagram would be.
 */
export interface PeerSessionsOptions {
  /** This replica, 1..peerCount. */
  readonly id: number;
  readonly peerCount: number;
  /** This run's incarnation: a safe integer >= 1 that grows across restarts. */
  readonly incarnation: number;
  /**
   * Drop frames whose echo is not our incarnation ("stale-session"). Both transports set it;
   * false is for tests that forge frames without knowing the receiver's incarnation.
   */
  readonly echoRequired: boolean;
}

export type SessionResult = AdmitResult | "stale-session";

export class PeerSessions {
  /** Ours: written into every frame we send. */
  readonly incarnation: number;
  readonly echoRequired: boolean;
  /** Receive side, index peer - 1. windows[p].incarnation is also what we echo to peer p. */
  private readonly windows: ReplayWindow[] = [];
  /** Send side, index peer - 1: the next sequence number of a frame to that peer. */
  private readonly nextSeqs: Float64Array;

  constructor(options: PeerSessionsOptions) {
    const { id, peerCount, incarnation } = options;
    assert(Number.isInteger(peerCount) && peerCount >= 1, "peerCount");
    assert(Number.isInteger(id) && id >= 1 && id <= peerCount, "id");
    assert(
      Number.isSafeInteger(incarnation) && incarnation >= 1,
      "incarnation is a safe integer >= 1",
    );
    this.incarnation = incarnation;
    this.echoRequired = options.echoRequired;
    for (let i = 0; i < peerCount; i++) this.windows.push(new ReplayWindow());
    this.nextSeqs = new Float64Array(peerCount);
  }

  /** The sequence number of the next frame to `to`, taken. */
  takeSeq(to: number): number {
    const seq = this.nextSeqs[to - 1]!;
    assert(seq < SEQUENCE_MAX, "sequence numbers exhausted");
    this.nextSeqs[to - 1] = seq + 1;
    return seq;
  }

  /** The incarnation of `to` we echo: the newest seen in its authenticated frames; 0: none yet. */
  echoFor(to: number): number {
    return this.windows[to - 1]!.incarnation;
  }

  /**
   * A peer's incarnation from a fresh, authenticated TCP handshake: a newer one is learned (it
   * will be echoed, and the peer's frames are numbered from 0 again), the same one changes
   * nothing, an older one is a "replay" (a run before one already seen: the transport refuses
   * the connection).
   */
  learn(peer: number, incarnation: number): SessionResult {
    assert(Number.isSafeInteger(incarnation) && incarnation >= 1, "incarnation");
    const window = this.windows[peer - 1]!;
    if (incarnation < window.incarnation) return "replay";
    if (incarnation > window.incarnation) window.reset(incarnation);
    return "ok";
  }

  /**
   * A session frame's fields: its incarnation (learned if newer, "replay" if older) and its echo,
   * but no place in the replay window: it delivers nothing, so a copy of one only repeats what
   * the receiver knows. A stale echo still makes it "stale-session", so the transport answers
   * with a session frame of its own and the sender learns our incarnation.
   */
  admitSession(from: number, incarnation: number, echo: number): SessionResult {
    const window = this.windows[from - 1]!;
    if (incarnation < window.incarnation) return "replay";
    if (incarnation > window.incarnation) window.reset(incarnation);
    if (this.echoRequired && echo !== this.incarnation) return "stale-session";
    return "ok";
  }

  /**
   * Check, and remember, the session fields of an authenticated frame from `from`. A newer
   * incarnation is learned (it will be echoed) even when the frame is then dropped.
   */
  admit(from: number, incarnation: number, seq: number, echo: number): SessionResult {
    const window = this.windows[from - 1]!;
    if (incarnation < window.incarnation) return "replay";
    if (incarnation > window.incarnation) window.reset(incarnation);
    if (this.echoRequired && echo !== this.incarnation) return "stale-session";
    return window.admit(incarnation, seq);
  }
}
