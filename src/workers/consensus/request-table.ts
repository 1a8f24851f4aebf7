import { assert } from "../../core/errors.ts";

/** A client request this replica received and has not answered yet. */
export interface PendingRequest {
  readonly requestId: number;
  readonly worker: number;
  readonly connId: number;
  readonly seq: number;
  readonly commandCount: number;
  /** The log command (header + commands), kept until it is proposed or forwarded. */
  command: Uint8Array | null;
  /** performance.now() when the request left its ring. */
  readonly takenMs: number;
  readonly deadlineMs: number;
  /** waiting: no leader known yet; sent: proposed here or forwarded to the leader. */
  state: "waiting" | "sent";
  /**
   * Proposed here or forwarded at least once. A refusal puts the request back to waiting, but an
   * earlier copy may still be chosen (a new leader's Phase 1 recovers what an old one proposed),
   * so once this is set the request can no longer be said "not executed".
   */
  everSent: boolean;
  /** The replica that last refused this forward (it did not lead), or 0. */
  refusedBy: number;
  /** performance.now() when it was last proposed or forwarded. */
  sentMs: number;
}

/**
 * Requests waiting for their log entry to be applied, keyed by request id. Ids grow and every
 * request gets the same timeout, so insertion order is deadline order: expiry looks only at the
 * front of the Map. Bounded by `pendingMax` (--max-pending).
 */
export class RequestTable {
  private readonly byId = new Map<number, PendingRequest>();
  private nextId = 1;
  /** Requests in state "waiting". Invariant: equals the count of such entries in byId. */
  private waitingCount = 0;
  private readonly pendingMax: number;
  private readonly timeoutMs: number;

  constructor(pendingMax: number, timeoutMs: number) {
    this.pendingMax = pendingMax;
    this.timeoutMs = timeoutMs;
    assert(pendingMax >= 1 && timeoutMs >= 1, "request table limits");
  }

  get size(): number {
    return this.byId.size;
  }

  get full(): boolean {
    return this.byId.size >= this.pendingMax;
  }

  add(
    worker: number,
    connId: number,
    seq: number,
    commandCount: number,
    command: Uint8Array,
    nowMs: number,
  ): PendingRequest {
    assert(!this.full, "request table is full");
    const request: PendingRequest = {
      requestId: this.nextId++,
      worker,
      connId,
      seq,
      commandCount,
      command,
      takenMs: nowMs,
      deadlineMs: nowMs + this.timeoutMs,
      state: "waiting",
      everSent: false,
      refusedBy: 0,
      sentMs: nowMs,
    };
    this.byId.set(request.requestId, request);
    this.waitingCount++;
    return request;
  }

  /** The request was proposed or forwarded: it now waits for its entry to be applied. */
  markSent(request: PendingRequest, keepCommand = false): void {
    assert(request.state === "waiting", "request sent twice");
    request.state = "sent";
    request.everSent = true;
    if (!keepCommand) request.command = null;
    this.waitingCount--;
  }

  /** The replica we forwarded to refused the request without proposing it: it waits again. */
  markWaiting(request: PendingRequest, refusedBy: number): void {
    assert(
      request.state === "sent" && request.command !== null,
      "only a kept forward can wait again",
    );
    request.state = "waiting";
    request.refusedBy = refusedBy;
    this.waitingCount++;
  }

  get(requestId: number): PendingRequest | undefined {
    return this.byId.get(requestId);
  }

  /**
   * Every id at or below this is settled here (answered, or failed with an error): the log
   * carries it so replicas can forget those ids (client-sessions.ts).
   */
  floor(): number {
    for (const request of this.byId.values()) return request.requestId - 1;
    return this.nextId - 1;
  }

  /** Requests proposed or forwarded and not applied yet, oldest first. */
  *sent(): IterableIterator<PendingRequest> {
    for (const request of this.byId.values()) if (request.state === "sent") yield request;
  }

  /** Remove and return the request with this id (its entry was applied), if it still waits. */
  take(requestId: number): PendingRequest | undefined {
    const request = this.byId.get(requestId);
    if (request !== undefined) this.remove(request);
    return request;
  }

  private remove(request: PendingRequest): void {
    this.byId.delete(request.requestId);
    if (request.state === "waiting") this.waitingCount--;
  }

  /** Remove and return every request whose deadline passed. */
  expire(nowMs: number): PendingRequest[] {
    const expired: PendingRequest[] = [];
    for (const request of this.byId.values()) {
      if (request.deadlineMs > nowMs) break;
      expired.push(request);
    }
    for (const request of expired) this.remove(request);
    return expired;
  }

  /** Requests still waiting for a leader, oldest first. */
  *waiting(): IterableIterator<PendingRequest> {
    if (this.waitingCount === 0) return; // the common case: never scan the whole table
    for (const request of this.byId.values()) if (request.state === "waiting") yield request;
  }

  /** Remove and return everything (shutdown). */
  drain(): PendingRequest[] {
    const all = [...this.byId.values()];
    this.byId.clear();
    this.waitingCount = 0;
    return all;
  }
}

/**
 * The error a request gets when its deadline passes. "Not executed" (-CLUSTERDOWN) only for one
 * that never left this replica; a copy that reached a possible leader, even one refused later,
 * may still be chosen by the next leader's Phase 1, so it gets -TIMEOUT "may or may not".
 */
export function expiredRequestError(
  request: Pick<PendingRequest, "everSent">,
  timeoutMs: number,
  role: string,
): { reason: "no-leader" | "timeout"; text: string } {
  if (request.everSent) {
    return {
      reason: "timeout",
      text: `TIMEOUT request not confirmed within ${timeoutMs} ms (--request-timeout-ms); it may or may not have been applied`,
    };
  }
  const waitedFor =
    role === "recovering"
      ? "this replica is still recovering its state from the other replicas"
      : "no leader elected";
  return {
    reason: "no-leader",
    text: `CLUSTERDOWN ${waitedFor} within ${timeoutMs} ms (--request-timeout-ms); the request was not executed`,
  };
}
