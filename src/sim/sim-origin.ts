import type { Replica } from "../core/index.ts";
import {
  CHANNEL_CORE,
  CHANNEL_FORWARD,
  CHANNEL_FORWARD_REFUSED,
  RequestRouter,
  type RequestRouterIo,
  type RequestRouterOptions,
  type RouterEvent,
} from "../workers/consensus/request-router.ts";
import type { PendingRequest } from "../workers/consensus/request-table.ts";

export { CHANNEL_CORE, CHANNEL_FORWARD, CHANNEL_FORWARD_REFUSED };

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

/** The runtime's router with the expiry error of before the fix (planted bug). */
class ClusterdownAfterSend extends RequestRouter {
  protected override expiryError(request: PendingRequest) {
    const asIfNeverSent = Object.create(request) as PendingRequest;
    Object.defineProperty(asIfNeverSent, "everSent", { value: request.state !== "waiting" });
    return super.expiryError(asIfNeverSent);
  }
}

/**
 * One replica's client-request handling: the runtime's own RequestRouter (the code the consensus
 * worker runs), in ticks, with its side channels on the simulated network and its answers going
 * to the simulated clients. Only the counting is the simulator's.
 */
export class SimOrigin {
  readonly id: number;
  readonly incarnation: number;
  private readonly io: SimOriginIo;
  private readonly router: RequestRouter;
  /** The simulated clock, in ticks, as the router's ms. */
  private now = 0;
  forwarded = 0;
  resent = 0;
  refused = 0;
  /**
   * Requests that expired while parked: refused by the replica this origin still takes for the
   * leader. The router sends a parked request again after resendAfterTicks, so this stays rare.
   */
  expiredParked = 0;

  constructor(core: Replica, io: SimOriginIo, options: SimOriginOptions) {
    this.id = options.id;
    this.incarnation = options.incarnation;
    this.io = io;
    const routerIo: RequestRouterIo = {
      send: (to, channel, bytes) => io.send(to, channel, bytes),
      fail: (request, reason, text) => {
        if (
          request.state === "waiting" &&
          request.refusedBy !== 0 &&
          request.refusedBy === core.knownLeader
        )
          this.expiredParked++;
        io.answer(request, { kind: "error", reason, text });
      },
      count: (event) => this.count(event, io),
      nowMs: () => this.now,
      stampMs: () => this.now,
    };
    const routerOptions: RequestRouterOptions = {
      id: options.id,
      incarnation: options.incarnation,
      pendingRequestsMax: options.pendingRequestsMax,
      requestTimeoutMs: options.requestTimeoutTicks,
      resendAfterMs: options.resendAfterTicks,
    };
    this.router = options.clusterdownAfterSend
      ? new ClusterdownAfterSend(core, routerIo, routerOptions)
      : new RequestRouter(core, routerIo, routerOptions);
  }

  get requests() {
    return this.router.requests;
  }

  private count(event: RouterEvent, io: SimOriginIo): void {
    if (event === "forwarded") this.forwarded++;
    else if (event === "resent" || event === "unparked") this.resent++;
    else if (event === "refused") {
      this.refused++;
      io.trace?.(`replica ${this.id}: a forward was refused`);
    }
  }

  /** A client request arrives: null when the table is full (BUSY, nothing kept). */
  submit(connId: number, seq: number, command: Uint8Array, now: number): PendingRequest | null {
    this.now = now;
    return this.router.add(0, connId, seq, 1, command);
  }

  onForward(from: number, command: Uint8Array, now: number): void {
    this.now = now;
    this.router.onForward(from, command);
  }

  onForwardRefused(from: number, header: Uint8Array, now: number): void {
    this.now = now;
    this.router.onForwardRefused(from, header);
  }

  noticeLeaderChange(now: number): void {
    this.now = now;
    this.router.noticeLeaderChange();
  }

  /** The origin applied its own request: answer the client if it still waits. */
  onOwnReply(requestId: number, slot: number): void {
    const request = this.router.take(requestId);
    if (request !== undefined) this.io.answer(request, { kind: "ok", slot });
  }

  expireRequests(now: number): void {
    this.now = now;
    this.router.expire();
  }
}
