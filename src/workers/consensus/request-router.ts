import { assert } from "../../core/errors.ts";
import type { ProposeResult, Role } from "../../core/replica.ts";
import { LOG_HEADER_BYTES, readLogHeader, writeLogHeader } from "../log-command.ts";
import { expiredRequestError, type PendingRequest, RequestTable } from "./request-table.ts";

/** Transport channels. */
export const CHANNEL_CORE = 0;
/** A follower's client request, sent to the leader to propose (the bytes of one log command). */
export const CHANNEL_FORWARD = 1;
/**
 * The leader's answer to a forward it did NOT propose (it no longer leads, or its queue is full):
 * the first LOG_HEADER_BYTES of the command. Since nothing was proposed, the origin may send the
 * request again to whoever leads next without any risk of running it twice.
 */
export const CHANNEL_FORWARD_REFUSED = 2;
/** A replica's digest of its program copy's output (output checking, output-check.ts). */
export const CHANNEL_OUTPUT_DIGEST = 3;
/** A replica's settings that must agree (peer-agreement.ts): every other channel waits for it. */
export const CHANNEL_AGREEMENT = 4;

/** A request proposed or forwarded this long ago and not applied is sent again (lost forward). */
export const RESEND_AFTER_MS = 1000;

/** What the router needs of the core: only the leader proposes, followers name the leader. */
export interface RouterCore {
  readonly role: Role;
  readonly knownLeader: number;
  propose(command: Uint8Array, stampMs: number): ProposeResult;
}

/** Things the router did, for the runtime's metrics and the simulator's summary. */
export type RouterEvent =
  | "proposed"
  | "forwarded"
  | "resent"
  | "refused"
  | "unparked"
  | "forward-malformed"
  | "forward-not-leader"
  | "forward-queue-full"
  | "forward-refusal-malformed";

export interface RequestRouterIo {
  /** Send on a side channel (forward, refusal) to a peer. */
  send(to: number, channel: number, bytes: Uint8Array): void;
  /** The request failed at its deadline: answer its client with this error. */
  fail(request: PendingRequest, reason: "no-leader" | "timeout", text: string): void;
  count(event: RouterEvent): void;
  /** Monotonic time, ms: deadlines and resends. */
  nowMs(): number;
  /** The leader's wall clock, ms: stamped on what it proposes (the store's only clock). */
  stampMs(): number;
}

export interface RequestRouterOptions {
  readonly id: number;
  /** This process start: requests of another incarnation are nobody's here. */
  readonly incarnation: number;
  /** --max-pending. */
  readonly pendingRequestsMax: number;
  /** --request-timeout-ms. */
  readonly requestTimeoutMs: number;
  readonly resendAfterMs: number;
}

/**
 * Client requests between their arrival at this replica and their answer: proposed here when we
 * lead, forwarded to the leader otherwise, sent again after a leader change, a refusal or a lost
 * forward, and failed at their deadline with an error that says whether they may have run.
 * No sockets or clocks of its own: the consensus worker and the simulator both run this code.
 */
export class RequestRouter {
  readonly requests: RequestTable;
  private readonly core: RouterCore;
  private readonly io: RequestRouterIo;
  private readonly options: RequestRouterOptions;
  /** The leader the requests were last routed to. */
  private knownLeader = 0;

  constructor(core: RouterCore, io: RequestRouterIo, options: RequestRouterOptions) {
    assert(options.resendAfterMs >= 1, "resend interval");
    this.core = core;
    this.io = io;
    this.options = options;
    this.requests = new RequestTable(options.pendingRequestsMax, options.requestTimeoutMs);
  }

  /**
   * A client request: `command` is its log command with a zeroed header, kept (and proposed) as
   * is. Null when --max-pending requests already wait (the caller answers -BUSY).
   */
  add(
    worker: number,
    connId: number,
    seq: number,
    commandCount: number,
    command: Uint8Array,
  ): PendingRequest | null {
    if (this.requests.full) return null;
    const request = this.requests.add(worker, connId, seq, commandCount, command, this.io.nowMs());
    // Never written again once proposed: the core keeps this very buffer for retransmits.
    writeLogHeader(command, {
      origin: this.options.id,
      incarnation: this.options.incarnation,
      requestId: request.requestId,
      floor: this.requests.floor(),
      takenMs: this.io.stampMs(),
    });
    this.dispatch(request);
    return request;
  }

  /** The origin applied its own request: the request, if it still waits for its answer. */
  take(requestId: number): PendingRequest | undefined {
    return this.requests.take(requestId);
  }

  /** Propose at the leader, forward from a follower, or keep waiting while no leader is known. */
  private dispatch(request: PendingRequest): void {
    const command = request.command;
    if (command === null) return;
    const role = this.core.role;
    if (role === "leader") {
      const result = this.core.propose(command, this.io.stampMs());
      if (result === "queue-full") return; // stays waiting; retried when the queue drains or times out
      if (result === "queued") {
        // The bytes stay with the request: after a leader change it is sent again.
        this.requests.markSent(request, true);
        request.sentMs = this.io.nowMs();
        this.io.count("proposed");
      }
      return;
    }
    const leader = this.core.knownLeader;
    // Not back to a replica that just refused it while we still take it for the leader.
    if (leader !== 0 && role === "follower" && leader !== request.refusedBy) {
      this.io.send(leader, CHANNEL_FORWARD, command);
      // The bytes stay with the request: a refusal or a leader change sends them again.
      this.requests.markSent(request, true);
      request.sentMs = this.io.nowMs();
      this.io.count("forwarded");
    }
  }

  /**
   * Send a request again that was proposed or forwarded but not applied: after a leader change
   * (the old leader's copy may never be chosen) or when a forward may have been lost. Safe: the
   * client sessions of the state machine run each request id once, whichever copy comes first.
   */
  private resend(request: PendingRequest): void {
    const command = request.command;
    if (command === null) return;
    const leader = this.core.knownLeader;
    if (leader === this.options.id) {
      if (this.core.propose(command, this.io.stampMs()) !== "queued") return;
    } else if (leader !== 0 && this.core.role === "follower") {
      this.io.send(leader, CHANNEL_FORWARD, command);
    } else {
      return;
    }
    request.sentMs = this.io.nowMs();
    this.io.count("resent");
  }

  /** A follower's client request: propose it if we lead, else refuse it so its origin sends it on. */
  onForward(from: number, command: Uint8Array): void {
    if (readLogHeader(command) === null) {
      this.io.count("forward-malformed");
      return;
    }
    if (this.core.role !== "leader") {
      this.io.count("forward-not-leader");
      this.io.send(from, CHANNEL_FORWARD_REFUSED, command.subarray(0, LOG_HEADER_BYTES));
      return;
    }
    if (this.core.propose(command, this.io.stampMs()) !== "queued") {
      this.io.count("forward-queue-full");
      this.io.send(from, CHANNEL_FORWARD_REFUSED, command.subarray(0, LOG_HEADER_BYTES));
      return;
    }
    this.io.count("proposed");
  }

  /** Our forward was not proposed by `from`: wait for (another) leader and send it again. */
  onForwardRefused(from: number, header: Uint8Array): void {
    const decoded = header.byteLength === LOG_HEADER_BYTES ? readLogHeader(header) : null;
    if (decoded === null) {
      this.io.count("forward-refusal-malformed");
      return;
    }
    if (decoded.origin !== this.options.id || decoded.incarnation !== this.options.incarnation)
      return; // an earlier run's request: nobody waits for it
    const request = this.requests.get(decoded.requestId);
    if (request === undefined || request.state !== "sent" || request.command === null) return;
    this.requests.markWaiting(request, from);
    this.io.count("refused");
    this.dispatch(request);
  }

  /** Release requests that waited for a leader; send again what an old leader took. */
  noticeLeaderChange(): void {
    const leader = this.core.knownLeader;
    if (leader !== this.knownLeader) {
      // A refusal was about the old leader; a new one may take the request.
      for (const request of this.requests.waiting()) request.refusedBy = 0;
      // What the old leader took may never be chosen: the new one gets it too.
      if (leader !== 0) for (const request of this.requests.sent()) this.resend(request);
      this.knownLeader = leader;
    }
    if (leader !== 0) for (const request of this.requests.waiting()) this.dispatch(request);
  }

  /**
   * Run every EXPIRE_INTERVAL: send again what waits too long (a lost forward, or a refusal by a
   * leader that still leads: re-elected under the same id, or its queue was full), and fail what
   * passed its deadline.
   */
  expire(): void {
    const now = this.io.nowMs();
    const resendAfter = this.options.resendAfterMs;
    // Fail what passed its deadline first: nothing is sent just before it is answered.
    for (const request of this.requests.expire(now)) {
      const expired = this.expiryError(request);
      this.io.fail(request, expired.reason, expired.text);
    }
    for (const request of this.requests.sent()) {
      if (now - request.takenMs < resendAfter) break; // ids are in arrival order: the rest are younger
      if (now - request.sentMs >= resendAfter) this.resend(request);
    }
    // A refusal parks a request until the leader changes; if it does not, try the leader again.
    for (const request of this.requests.waiting()) {
      if (request.refusedBy === 0 || now - request.sentMs < resendAfter) continue;
      request.refusedBy = 0;
      this.io.count("unparked");
      this.dispatch(request);
    }
  }

  /** The error a request gets at its deadline. Protected: the simulator plants a wrong one. */
  protected expiryError(request: PendingRequest): ReturnType<typeof expiredRequestError> {
    return expiredRequestError(request, this.options.requestTimeoutMs, this.core.role);
  }

  /** Remove and return every request (shutdown). */
  drain(): PendingRequest[] {
    return this.requests.drain();
  }
}
