import type { FrameRingShared } from "../ring/frame-ring.ts";
import type { ShmFabricShared } from "../transport/shm-transport.ts";
import type { ReplicaConfig } from "./config.ts";

/**
 * Everything that crosses a thread boundary, in one file (piscina's types.ts habit): the
 * workerData of each thread, its start-up message and the binary layout of ring records. The data path is rings of
 * SharedArrayBuffer only; comlink carries control calls (stats, drain, shutdown).
 */

/** One connection worker's pair of rings to the consensus worker. */
export interface WorkerRings {
  /** Connection worker → consensus worker: client requests. */
  readonly requests: FrameRingShared;
  /** Consensus worker → connection worker: replies. */
  readonly replies: FrameRingShared;
  /** The connection worker's doorbell: the consensus worker rings it after writing replies. */
  readonly workerBell: SharedArrayBuffer;
}

export interface ConsensusWorkerData {
  readonly config: ReplicaConfig;
  /** Random per process start: tells this run's requests from an earlier run's in the log. */
  readonly incarnation: number;
  /**
   * This run in every peer frame (src/runtime/peer-incarnation.ts): unlike `incarnation`, it grows
   * across restarts, so peers tell this run's frames from replays of an earlier run's.
   */
  readonly peerIncarnation: number;
  /** The cluster secrets, the signing one first (a second one during a key roll). */
  readonly secrets: readonly Uint8Array[];
  /** One pair per connection worker; empty with --workers 0. */
  readonly rings: readonly WorkerRings[];
  /** The consensus worker's doorbell, rung by every connection worker after writing requests. */
  readonly consensusBell: SharedArrayBuffer;
  /**
   * --workers 0: the rings of the client server that runs on the consensus thread itself (same
   * records, rung by same-thread bells instead of doorbells); null when connection workers serve
   * the clients. Invariant: non-null iff `rings` is empty.
   */
  readonly inThreadRings: Pick<WorkerRings, "requests" | "replies"> | null;
  /** The rings joining the replica threads of this process; set iff config.transport is "shm". */
  readonly shmFabric: ShmFabricShared | null;
}

export interface ConnectionWorkerData {
  readonly config: ReplicaConfig;
  readonly workerIndex: number;
  readonly rings: WorkerRings;
  readonly consensusBell: SharedArrayBuffer;
  /** Clients this worker may hold (its share of --max-clients). */
  readonly clientsMax: number;
  /** Listen with reusePort (several workers on one port); false on a Node without it. */
  readonly reusePort: boolean;
}

/** The threads the runtime starts (src/runtime/replica-runner.ts), by entry name, with their data. */
export interface WorkerDataByName {
  readonly "consensus-worker": ConsensusWorkerData;
  readonly "connection-worker": ConnectionWorkerData;
}

export type WorkerName = keyof WorkerDataByName;

/** The one message a worker posts to the main thread: it started, or why it could not. */
export type StartupMessage =
  | { readonly ready: true }
  | { readonly ready: false; readonly error: string; readonly code: string | undefined };

/** A worker's own workerData, typed by its name: the one place the structured clone is cast. */
export function workerDataOf<Name extends WorkerName>(
  _name: Name,
  data: unknown,
): WorkerDataByName[Name] {
  return data as WorkerDataByName[Name];
}

/**
 * Request record (connection worker → consensus worker):
 *   u32 connId | u32 seq | LOG_HEADER_BYTES zero bytes (log-command.ts) | command-codec body
 * The consensus worker copies everything after the first REQUEST_PREFIX_BYTES into a new buffer,
 * fills the log header, and proposes that buffer as one log command: the bytes the connection
 * worker encoded are the bytes that are replicated.
 */
export const REQUEST_CONN_ID = 0;
export const REQUEST_SEQ = 4;
export const REQUEST_PREFIX_BYTES = 8;
/**
 * A request record of this seq carries a connection event, not a client request (program mode,
 * --app): "close" when a client went away, so the program's copies see the connection close too
 * (its subscriptions, blocked pops, MULTI). Nobody waits for its reply: a reply record of this seq
 * is dropped by the connection worker. Client requests' seqs wrap before reaching it.
 */
export const REQUEST_SEQ_EVENT = 0xffff_ffff;

// The log command header (LOG_*) lives in src/workers/log-command.ts.

/**
 * Reply record (consensus worker → connection worker):
 *   u32 connId | u32 seq | u8 flags | 3 bytes zero | reply bytes (RESP)
 * A reply larger than a ring record is cut into several records; the last has REPLY_FINAL.
 */
export const REPLY_CONN_ID = 0;
export const REPLY_SEQ = 4;
export const REPLY_FLAGS = 8;
export const REPLY_HEADER_BYTES = 12;
export const REPLY_FINAL = 1;
/**
 * A reply record of this seq is output the client did not ask for just now (a program's Pub/Sub
 * message): the connection worker writes it at once, whatever request is in flight.
 */
export const PUSH_SEQ = 0;

/** Control calls the main thread makes on the consensus worker (over comlink). */
export interface ConsensusControl {
  status(): ReplicaStatus;
  metricsJson(): Promise<unknown[]>;
  latency(reset: boolean): LatencySummary;
  /** Requests received here and not answered yet. */
  pendingRequests(): number;
  /** Stop taking requests, fail what waits, flush the WAL, close sockets. */
  shutdown(): Promise<void>;
  /**
   * Hand leadership to `target` (null: the most caught-up follower) and wait up to `waitMs`
   * (null: 2 x the election timeout) for this replica to step down.
   */
  transferLeadership(target: number | null, waitMs: number | null): Promise<LeaderTransferOutcome>;
  /** The configuration as this replica knows it (GET /members). */
  members(): MembersView;
  /**
   * A membership change (POST /members), at the leader: one at a time; answers once it is
   * chosen and governs (each step of a replace), or why not (MemberChangeOutcome).
   */
  changeMembers(request: MemberChangeRequest): Promise<MemberChangeOutcome>;
  /**
   * With --workers 0 the consensus worker serves clients itself: these answer for its in-thread
   * client server what ConnectionControl's calls answer for a connection worker. Without it they
   * do nothing ([] for the metrics).
   */
  clientMetricsJson(): Promise<unknown[]>;
  stopAcceptingClients(): Promise<void>;
  shutdownClients(): Promise<void>;
}

/**
 * What a leadership transfer came to, from what happened rather than from our stepping down:
 * - transferred: the target leads, or met this replica with its higher ballot (the core counted
 *   the transfer completed); `leader` is who this replica follows now, 0 while none is known.
 * - deposed: this replica stopped leading, but not to the target (check-quorum, or a third
 *   replica's higher ballot).
 * - timed-out: still leading; the target did not take over (the core gives up after one election
 *   timeout and leads on), or the wait ended first.
 * - busy: a transfer to another target (`target`) is under way; none began.
 * - not-leader, bad-target, no-target: none began (this replica does not lead; the target is no
 *   peer; no peer answered within an election timeout).
 */
export interface LeaderTransferOutcome {
  readonly outcome:
    | "transferred"
    | "deposed"
    | "timed-out"
    | "busy"
    | "not-leader"
    | "bad-target"
    | "no-target";
  /** The replica asked (this one). */
  readonly from: number;
  /** The replica handed to; 0 when none was chosen. */
  readonly target: number;
  /** The leader this replica knows at the end, itself included; 0: none known. */
  readonly leader: number;
  readonly elapsedMs: number;
  /** The wait used: wait_ms clamped to [heartbeat, 2 x election timeout]. */
  readonly waitMs: number;
}

/** One replica of a configuration, as /members and /status show it. */
export interface MemberView {
  readonly id: number;
  readonly role: "voter" | "learner";
  /** Its peer (transport) address, host:port. */
  readonly address: string;
  /** On the leader: the highest slot it reported chosen, and how far it trails ours. */
  readonly chosenSlot?: number;
  readonly lagSlots?: number;
  /** On the leader: ms since it last answered (null for the leader itself). */
  readonly lastHeardMsAgo?: number | null;
}

/** One configuration: made by the change in `slot` (0: the bootstrap one), governing from `effectiveFrom`. */
export interface ConfigurationView {
  readonly slot: number;
  readonly effectiveFrom: number;
  readonly members: readonly MemberView[];
}

/** GET /members: what this replica knows of the membership. */
export interface MembersView {
  readonly id: number;
  readonly role: ReplicaStatus["role"];
  readonly leader: number | null;
  /** The leader's peer address, when known (where to send a change). */
  readonly leaderAddress: string | null;
  readonly commitIndex: number;
  /** Governs this replica's next slot; null while a joining replica has learned none. */
  readonly current: ConfigurationView | null;
  /** The last chosen change (the same as current once it governs). */
  readonly latest: ConfigurationView | null;
  /** Whether a change is chosen and not yet governing, or queued at this leader. */
  readonly changing: boolean;
  /** This replica is in no configuration it holds: removed (or never added, when it joined). */
  readonly removed: boolean;
  /** --promote-lag-slots: a learner further behind than this is not promoted. */
  readonly promoteLagSlots: number;
}

/**
 * POST /members. add: `id` joins as a learner at `address`; promote: learner `id` becomes a
 * voter; remove: `id` leaves; replace: `id` leaves for `newId` at `address` (add, wait until it
 * caught up, promote, remove). waitMs bounds each step (null: the default).
 */
export interface MemberChangeRequest {
  readonly op: "add" | "promote" | "remove" | "replace";
  readonly id: number;
  readonly address?: string;
  readonly newId?: number;
  readonly waitMs?: number | null;
}

/** One step of a change, done or not. */
export interface MemberChangeStep {
  readonly step: "add" | "catch-up" | "promote" | "remove";
  readonly id: number;
  readonly ok: boolean;
  /** The slot of the change, and the first slot it governs (steps that change the configuration). */
  readonly slot?: number;
  readonly effectiveFrom?: number;
  readonly lagSlots?: number;
  readonly elapsedMs: number;
}

/**
 * What a change came to. done: every step chosen and governing. Otherwise why not:
 * not-leader (ask `leader`), busy (another change is under way), invalid (the request names no
 * such member, an id taken, a bad address, the last voter: `detail` says), lagging (a learner
 * too far behind to promote), timed-out (a step did not finish within waitMs; the steps done
 * stay done), stopping.
 */
export interface MemberChangeOutcome {
  readonly outcome:
    | "done"
    | "not-leader"
    | "busy"
    | "invalid"
    | "lagging"
    | "timed-out"
    | "stopping";
  readonly detail: string;
  readonly leader: number | null;
  readonly leaderAddress: string | null;
  readonly steps: readonly MemberChangeStep[];
  /** The configuration at the end, as this replica knows it. */
  readonly members: MembersView;
  readonly elapsedMs: number;
}

export interface ConnectionControl {
  metricsJson(): Promise<unknown[]>;
  /** Stop listening; close idle clients. */
  stopAccepting(): Promise<void>;
  /** Close every client connection. */
  shutdown(): Promise<void>;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

export interface PeerStatus {
  readonly id: number;
  readonly address: string;
  readonly chosenSlot: number;
  readonly lastHeardMsAgo: number | null;
}

/** /status, as JSON. */
export interface ReplicaStatus {
  readonly id: number;
  readonly role: "leader" | "follower" | "candidate" | "recovering";
  readonly leader: number | null;
  readonly ballot: string;
  readonly promised: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastSlot: number;
  readonly inFlightSlots: number;
  /** As leader: the replica leadership is being handed to (present only during a transfer). */
  readonly transferringTo?: number;
  readonly pendingRequests: number;
  readonly keys: number;
  /** The replicated application: the embedded store, or the program under --app and its state. */
  readonly app: Record<string, unknown>;
  readonly durability: "fsync" | "memory";
  readonly transport: "udp" | "tcp" | "shm";
  readonly workers: number;
  readonly uptimeMs: number;
  readonly peers: readonly PeerStatus[];
  /** The configuration: what governs the next slot, the last chosen change, and whether one runs. */
  readonly members?: Pick<MembersView, "current" | "latest" | "changing" | "removed">;
  /** Snapshot transfers in progress on the snapshot stream (present only while there are some). */
  readonly snapshotTransfers?: readonly SnapshotTransferStatus[];
}

/** One snapshot transfer on the snapshot stream, as /status shows it. */
export interface SnapshotTransferStatus {
  /** "out": this replica sends it to `peer`; "in": it receives it from `peer`. */
  readonly direction: "out" | "in";
  readonly peer: number;
  /** The snapshot's slot. */
  readonly slot: number;
  /** Bytes the receiver holds (at the sender: as last acknowledged). */
  readonly doneBytes: number;
  readonly totalBytes: number;
}
