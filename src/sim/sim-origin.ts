import { assert, type Replica } from "../core/index.ts";
import {
  expiredRequestError,
  type PendingRequest,
  RequestTable,
} from "../runtime/request-table.ts";
import { LOG_HEADER_BYTES } from "../runtime/thread-contracts.ts";
import { readLogHeader, writeLogHeader } from "./log-command.ts";

/**
 * Transport channels, as in src/runtime/consensus-node.ts (not imported: that module pulls in the
 * rings, the WAL and the metrics).
 */
export const CHANNEL_CORE = 0;
/** A follower's client request, sent to the leader to propose (the bytes of one log command). */
export const CHANNEL_FORWARD = 1;
/** The leader did not propose a forward (not leader, queue full): the command's header back. */
export const CHANNEL_FORWARD_REFUSED = 2;

/** How a request ended at its origin, as its client sees it. */
export type RequestOutcome =
  | { readonly kind: "ok"; readonly slot: number }
  | { readonly kind: "error"; readonly reason: "no-leader" | "timeout"; readonly text: string };

/** What an origin did, for the run summary. */
export interface OriginCounters {
  forwarded: number;
  refused: number;
  resent: number;
  expiredParked: number;
}

/** What an origin needs from the simulated world. */
export interface SimOriginIo {
  /** Send on a side channel (forward, refusal) through the lossy network. */
  send(to: number, channel: number, bytes: Uint8Array): void;
  /** The client's answer (the reply router). */
  answer(request: PendingRequest, outcome: RequestOutcome): void;
  trace?: (line: string) => void;
}

export interface SimOriginOptions {
  readonly id: number;
  /** This process start: requests of another incarnation are nobody's here. */
  readonly incarnation: number;
  /** --max-pending. */
  readonly pendingRequestsMax: number;
  /** --request-timeout-ms, in ticks. */
  readonly requestTimeoutTicks: number;
  /** RESEND_AFTER_MS, in ticks. */
  readonly resendAfterTicks: number;
  /**
   * Planted bug: the expiry error is decided by the request's state now ("waiting") instead of
   * whether it ever left, so a forward refused after an earlier copy was proposed is answered
   * "not executed" (the behaviour before everSent existed).
   */
  readonly clusterdownAfterSend: boolean;
}

/**
 * What the consensus worker does around its core for client requests (src/runtime/consensus-node.ts:
 * onRequestRecord, dispatch, resend, onForward, onForwardRefused, noticeLeaderChange,
 * expireRequests, onOwnReply), with the runtime's own RequestTable and expiry error, in ticks.
 * Each method mirrors the runtime's method of the same name; keep them in step.
 */
export class SimOrigin {
  readonly id: number;
  readonly incarnation: number;
  private readonly core: Replica;
  private readonly io: SimOriginIo;
  private readonly options: SimOriginOptions;
  readonly requests: RequestTable;
  /** Leader this origin last noticed (consensus-node's knownLeader field). */
  private knownLeader = 0;
  /** Counters for the run summary. */
  forwarded = 0;
  resent = 0;
  refused = 0;
  /**
   * Requests that expired while parked: refused by the replica this origin still takes for the
   * leader, so never sent again (dispatch skips refusedBy, resend only looks at sent ones).
   */
  expiredParked = 0;

  constructor(core: Replica, io: SimOriginIo, options: SimOriginOptions) {
    assert(options.resendAfterTicks >= 1, "resend interval");
    this.id = options.id;
    this.incarnation = options.incarnation;
    this.core = core;
    this.io = io;
    this.options = options;
    this.requests = new RequestTable(options.pendingRequestsMax, options.requestTimeoutTicks);
  }

  /**
   * A client request arrives (onRequestRecord): null when the table is full (BUSY, nothing kept);
   * else it is kept, its header filled, and dispatched.
   */
  submit(connId: number, seq: number, command: Uint8Array, now: number): PendingRequest | null {
    if (this.requests.full) return null;
    const request = this.requests.add(0, connId, seq, 1, command, now);
    writeLogHeader(command, {
      origin: this.id,
      incarnation: this.incarnation,
      requestId: request.requestId,
      floor: this.requests.floor(),
    });
    this.dispatch(request, now);
    return request;
  }

  /** Propose at the leader, forward from a follower, or keep waiting while no leader is known. */
  private dispatch(request: PendingRequest, now: number): void {
    const command = request.command;
    if (command === null) return;
    const role = this.core.role;
    if (role === "leader") {
      const result = this.core.propose(command, now);
      if (result === "queue-full") return;
      if (result === "queued") {
        this.requests.markSent(request, true);
        request.sentMs = now;
      }
      return;
    }
    const leader = this.core.knownLeader;
    if (leader !== 0 && role === "follower" && leader !== request.refusedBy) {
      this.io.send(leader, CHANNEL_FORWARD, command);
      this.requests.markSent(request, true);
      request.sentMs = now;
      this.forwarded++;
    }
  }

  /** Send again what was proposed or forwarded but not applied (leader change, lost forward). */
  private resend(request: PendingRequest, now: number): void {
    const command = request.command;
    if (command === null) return;
    const leader = this.core.knownLeader;
    if (leader === this.id) {
      if (this.core.propose(command, now) !== "queued") return;
    } else if (leader !== 0 && this.core.role === "follower") {
      this.io.send(leader, CHANNEL_FORWARD, command);
    } else {
      return;
    }
    request.sentMs = now;
    this.resent++;
  }

  /** A follower's client request: propose it if we lead, else refuse it so its origin sends it on. */
  onForward(from: number, command: Uint8Array, now: number): void {
    if (readLogHeader(command) === null) return; // forward-malformed
    if (this.core.role !== "leader" || this.core.propose(command, now) !== "queued") {
      this.io.send(from, CHANNEL_FORWARD_REFUSED, command.subarray(0, LOG_HEADER_BYTES));
    }
  }

  /** Our forward was not proposed by `from`: wait for (another) leader and send it again. */
  onForwardRefused(from: number, header: Uint8Array, now: number): void {
    if (header.byteLength !== LOG_HEADER_BYTES) return;
    const decoded = readLogHeader(header);
    if (decoded === null) return;
    if (decoded.origin !== this.id || decoded.incarnation !== this.incarnation) return;
    const request = this.requests.get(decoded.requestId);
    if (request === undefined || request.state !== "sent" || request.command === null) return;
    this.requests.markWaiting(request, from);
    this.refused++;
    this.io.trace?.(`replica ${this.id}: request ${request.requestId} refused by ${from}`);
    this.dispatch(request, now);
  }

  /** Release requests that waited for a leader; send again what an old leader took. */
  noticeLeaderChange(now: number): void {
    const leader = this.core.knownLeader;
    if (leader !== this.knownLeader) {
      for (const request of this.requests.waiting()) request.refusedBy = 0;
      if (leader !== 0) for (const request of this.requests.sent()) this.resend(request, now);
      this.knownLeader = leader;
    }
    if (leader !== 0) for (const request of this.requests.waiting()) this.dispatch(request, now);
  }

  /** The origin applied its own request (onOwnReply): answer the client if it still waits. */
  onOwnReply(requestId: number, slot: number): void {
    const request = this.requests.take(requestId);
    if (request !== undefined) this.io.answer(request, { kind: "ok", slot });
  }

  /** Resend what waits too long, answer what passed its deadline (expireRequests). */
  expireRequests(now: number): void {
    for (const request of this.requests.sent()) {
      if (now - request.takenMs < this.options.resendAfterTicks) break;
      if (now - request.sentMs >= this.options.resendAfterTicks) this.resend(request, now);
    }
    for (const request of this.requests.expire(now)) {
      const refusedBy = request.refusedBy;
      if (request.state === "waiting" && refusedBy !== 0 && refusedBy === this.core.knownLeader)
        this.expiredParked++;
      const sent = this.options.clusterdownAfterSend
        ? { everSent: request.state !== "waiting" }
        : request;
      const expired = expiredRequestError(sent, this.options.requestTimeoutTicks, this.core.role);
      this.io.answer(request, { kind: "error", reason: expired.reason, text: expired.text });
    }
  }
}
