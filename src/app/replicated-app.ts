/**
 * The application a replica replicates, as the runtime sees it. Every replica applies the same
 * chosen requests to its own instance, in log order; only the replica where a request arrived
 * hands the reply to its client. Two implementations:
 * - the embedded Redis-protocol store (src/app/kv-app.ts), which answers at once;
 * - a copy of an unmodified server program (src/app/program/program-app.ts, `--app`), which
 *   answers when the program does, so a reply may come long after apply() returns (BLPOP).
 * Neither the core nor the runtime knows which one runs. At-most-once (a request an origin sent
 * twice runs once) is the runtime's job (src/workers/consensus/client-sessions.ts), before apply().
 */

/** A client connection, named the same on every replica: where it arrived, and its number there. */
export interface ConnectionRef {
  /** The replica the client is connected to, and that replica's process incarnation. */
  readonly origin: number;
  readonly incarnation: number;
  /** The connection worker of that replica, and the connection's id in it. */
  readonly worker: number;
  readonly connId: number;
}

export function connectionKey(c: ConnectionRef): string {
  return `${c.origin}.${c.incarnation}.${c.worker}.${c.connId}`;
}

/** One chosen client request, after the runtime admitted it (it had not run before). */
export interface AppRequest {
  /**
   * The client's connection: "data" carries its next requests, "close" says it went away,
   * "unblock" that the timeout of its blocked command ran out at its origin. Both apps keep
   * per-connection state (the store's sessions, a program's connections).
   */
  readonly connection: ConnectionRef;
  readonly event: "data" | "close" | "unblock";
  /** The request's commands in the command-codec encoding (src/app/command-codec.ts). */
  readonly body: Uint8Array;
  readonly bodyOffset: number;
  /** The log's clock (the leader's stamp of the batch, never running backwards). */
  readonly nowMs: number;
  /**
   * When the request reached its origin, by the origin's wall clock (the log header's); absent
   * in tests. Orders an origin's incarnations: a late copy from an older run was taken before
   * the newer run's first request.
   */
  readonly takenMs?: number;
}

/**
 * Where this replica's reply goes, or null when the client is another replica's. The app calls
 * it exactly once per "data" request of this replica, now or later (never for "close").
 */
export type ReplySink = ((reply: Uint8Array) => void) | null;

export interface AppliedRequest {
  /** Commands the request held. */
  readonly commands: number;
  /** The body could not be decoded (never expected: the runtime encoded it). */
  readonly malformed: boolean;
}

export interface ReplicatedApp {
  /** "embedded" or "program": for /status and logs. */
  readonly kind: string;
  /** Apply one request, in log order. A program may answer later; the order of input holds. */
  apply(request: AppRequest, reply: ReplySink): AppliedRequest;
  /** A batch ended at log time `nowMs` (the store sweeps expired keys here, deterministically). */
  endBatch(nowMs: number): void;
  /**
   * The state as of everything applied, or null when this app cannot take one (a program without
   * a checkpoint hook): the runtime then keeps the whole log and never compacts it.
   */
  snapshot(): Uint8Array | null;
  /**
   * For an app whose state can only be captured asynchronously (a program's checkpoint hook):
   * the state as of everything applied when this is called, when it is ready; null when it cannot
   * be taken now (the runtime tries again later). Absent: only snapshot() exists. The result
   * begins with `prefix` (the runtime's own header), so that a large image is laid out once.
   */
  checkpoint?(prefix?: Uint8Array): Promise<Uint8Array | null>;
  /** Replace the state with a snapshot's (a replica that fell behind the leader's compaction). */
  restore(data: Uint8Array): void;
  /**
   * Answer a read-only request from the state as it is, changing nothing (linearizable reads
   * served at a read index, without the log). `commands` are the request's decoded commands.
   * Returns null when the request is not read-only for this app (it then goes through the log).
   * Absent: every request goes through the log (a program's copy, for now).
   */
  read?(commands: readonly (readonly Uint8Array[])[], connection: ConnectionRef): Uint8Array | null;
  /** Whether read() would answer this request of `connection` (checked when it arrives). */
  readOnly?(commands: readonly (readonly Uint8Array[])[], connection: ConnectionRef): boolean;
  /** Keys held, where the app can tell (the embedded store); null otherwise. */
  keyCount(): number | null;
  /** What /status shows under "app". */
  describe(): Record<string, unknown>;
}
