import { assert } from "../core/errors.ts";
import { type AdmitResult, ReplayWindow, SEQUENCE_MAX } from "./replay-window.ts";

/**
 * One transport's replay state for every peer: what goes into the session fields of each frame
 * it sends (its own incarnation, a sequence number per receiver, and the receiver's incarnation
 * as last seen, the echo) and the check of those fields on each frame it receives.
 *
 * Why the echo: the replay window lives in memory, so a receiver that restarts forgets which
 * frames it saw; a recorder could then play it every frame of a sender's current incarnation
 * once more. A frame is only admitted if it echoes the receiver's current incarnation, which
 * no frame recorded before the receiver (re)started can do. A sender learns a peer's
 * incarnation from that peer's authenticated frames (even ones it then drops), and a receiver
 * that drops a frame for a stale echo tells the sender its incarnation with a session frame
 * (udp-transport.ts), so after a restart the two agree within a round trip.
 *
 * The TCP transport does not require the echo (`echoRequired` false): it does not send session
 * frames, and it closes a connection on any dropped frame; its connection handshake is what
 * binds a connection to the receiver's current run.
 */
export interface PeerSessionsOptions {
  /** This replica, 1..peerCount. */
  readonly id: number;
  readonly peerCount: number;
  /** This run's incarnation: a safe integer >= 1 that grows across restarts. */
  readonly incarnation: number;
  /** Drop frames whose echo is not our incarnation ("stale-session"). */
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
   * Check, and remember, the session fields of an authenticated frame from `from`. A newer
   * incarnation is learned (it will be echoed) even when the frame is then dropped.
   */
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

  admit(from: number, incarnation: number, seq: number, echo: number): SessionResult {
    const window = this.windows[from - 1]!;
    if (incarnation < window.incarnation) return "replay";
    if (incarnation > window.incarnation) window.reset(incarnation);
    if (this.echoRequired && echo !== this.incarnation) return "stale-session";
    return window.admit(incarnation, seq);
  }
}
