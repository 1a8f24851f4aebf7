import { ApusError } from "../core/errors.ts";
import { MIB, REQUEST_REPLY_BYTES_MAX } from "../limits.ts";
import { decodeCommands } from "./command-codec.ts";
import { decodeSessions, encodeSessions } from "./kv-session-snapshot.ts";
import { KvSessions, type SessionHooks } from "./kv-sessions.ts";
import { type ExecContext, isReadOnlyRequest, KvStore, type KvStoreOptions } from "./kv-store.ts";
import type {
  AppliedRequest,
  AppRequest,
  ConnectionRef,
  ReplicatedApp,
  ReplySink,
} from "./replicated-app.ts";
import { toResp3 } from "./resp3.ts";

const REPLY_TOO_LARGE = Buffer.from(
  `-ERR replies to this pipelined request exceed ${REQUEST_REPLY_BYTES_MAX / MIB} MiB; send fewer commands at once\r\n`,
);

/** Sessions without a replica around them (tests): no clients of their own. */
const NO_HOOKS: SessionHooks = {
  push: () => {},
  proposeUnblock: () => {},
  isLocal: () => false,
  renewLease: () => {},
};

/**
 * How far the log's clock may lag this machine's before a read goes through the log, when some
 * key has a TTL (KvApp.readOnly): the error a read may make about an expiry, at most.
 */
const READ_CLOCK_LAG_MS = 50;

/** Keys with a TTL examined per applied batch, so expired keys nobody reads do not pile up. */
const EXPIRE_SWEEP_KEYS = 20;
/**
 * Longest piece of a background snapshot, ms: the consensus thread then turns to its sockets and
 * timers (a heartbeat every 50 ms by default) before the next piece.
 */
const SNAPSHOT_STEP_MS = 5;

export interface KvAppOptions {
  readonly valueBytesMax: number;
  readonly replyBytesMax: number;
  /** --max-memory (KvStoreOptions.memoryBytesMax); absent: no limit. */
  readonly memoryBytesMax?: number;
  /** --block-lease-ms (KvSessions); absent: BLOCK_LEASE_MS_DEFAULT. */
  readonly blockLeaseMs?: number;
  /** What CONFIG GET and INFO report of the replica (KvStoreOptions.server). */
  readonly server?: KvStoreOptions["server"];
  /** The INFO replication section (role, leader, ballot, commit and applied index). */
  readonly info: () => string;
  /** Pub/Sub pushes and blocking timeouts of this replica's clients; absent: none (tests). */
  readonly hooks?: SessionHooks;
}

/**
 * The embedded Redis-protocol store as the replicated application: runs each request's commands
 * at once, through its connection's session (kv-sessions.ts: database, transaction, watched
 * keys, subscriptions, blocked command), and answers synchronously unless a command blocks.
 * Time comes only from the log (the batch's stamp), so every replica expires the same keys and
 * times out the same blocked commands at the same log position.
 */
export class KvApp implements ReplicatedApp {
  readonly kind = "embedded";
  private store: KvStore;
  private readonly sessions: KvSessions;
  private readonly options: KvAppOptions;
  private nowMs = 0;
  private readonly context: ExecContext;

  constructor(options: KvAppOptions) {
    this.options = options;
    this.store = new KvStore(this.storeOptions());
    const self = this;
    this.context = {
      get nowMs() {
        return self.nowMs;
      },
      info: (section: string) => this.info(section),
    };
    this.sessions = new KvSessions(
      () => this.store,
      this.context,
      options.hooks ?? NO_HOOKS,
      options.blockLeaseMs,
    );
    this.watchStore();
  }

  /** INFO's sections the store does not own: replication from the runtime, clients from here. */
  private info(section: string): string {
    if (section === "replication") return this.options.info();
    // The replica's connection count lives in its connection workers (/metrics:
    // apus_client_connections); the store knows the sessions it keeps, on every replica.
    if (section === "clients")
      return `blocked_clients:${this.sessions.blockedCount}\r\napus_sessions:${this.sessions.size}\r\n`;
    return "";
  }

  private watchStore(): void {
    this.store.onWrite = (db, keys) => this.sessions.onWrite(db, keys);
  }

  private storeOptions() {
    const { valueBytesMax, replyBytesMax, memoryBytesMax = 0, server = {} } = this.options;
    return { valueBytesMax, replyBytesMax, memoryBytesMax, server };
  }

  apply(request: AppRequest, reply: ReplySink): AppliedRequest {
    this.nowMs = request.nowMs;
    const commands =
      request.event === "close" ? [] : decodeCommands(request.body, request.bodyOffset);
    if (commands === null) return { commands: 0, malformed: true };
    this.sessions.apply(
      request.connection,
      request.event,
      commands,
      request.event === "data" ? reply : null,
      request.takenMs ?? request.nowMs,
    );
    return { commands: request.event === "data" ? commands.length : 0, malformed: false };
  }

  /**
   * Whether a request can be answered at a read index now: every command only reads, its
   * connection is not in a transaction, in Pub/Sub mode or blocked, and the log's clock is fresh
   * or no key has a TTL. Reads run at the log's clock (KvStore.executeRead), which moves only with
   * writes: while none come, a key whose TTL ran out would stay readable. So when the log's clock
   * is more than READ_CLOCK_LAG_MS behind this machine's and some key can expire, the read goes
   * through the log like a write and gets a fresh stamp (as every read did before read indexes).
   */
  readOnly(commands: readonly (readonly Uint8Array[])[], connection?: ConnectionRef): boolean {
    if (!isReadOnlyRequest(commands)) return false;
    if (connection !== undefined && !this.sessions.allowsReads(connection)) return false;
    return !this.store.hasExpiringKeys || Date.now() - this.store.clockMs <= READ_CLOCK_LAG_MS;
  }

  read(
    commands: readonly (readonly Uint8Array[])[],
    connection?: ConnectionRef,
  ): Uint8Array | null {
    if (!isReadOnlyRequest(commands)) return null;
    if (connection !== undefined && !this.sessions.allowsReads(connection)) return null;
    const { db, resp } =
      connection === undefined ? { db: 0, resp: 2 } : this.sessions.readContext(connection);
    const parts: Uint8Array[] = [];
    let replyBytes = 0;
    for (const args of commands) {
      let part = this.store.executeRead(args, this.context, db);
      if (resp === 3) part = toResp3(args as readonly Buffer[], part);
      if (replyBytes + part.byteLength > REQUEST_REPLY_BYTES_MAX) {
        parts.push(REPLY_TOO_LARGE);
        continue;
      }
      replyBytes += part.byteLength;
      parts.push(part);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  endBatch(nowMs: number): void {
    this.nowMs = nowMs;
    // Active expiry at the same log point on every replica, with the batch's time: deterministic.
    this.store.expireSweep(nowMs, EXPIRE_SWEEP_KEYS);
    this.sessions.endBatch(nowMs);
  }

  snapshot(): Uint8Array {
    const sessions = encodeSessions(this.sessions.exportState());
    const store = this.store.snapshot();
    return Buffer.concat([sessions, store]);
  }

  /**
   * The same image, taken a few milliseconds at a time between the event loop's other work, while
   * the store goes on applying the log (kv-snapshot-job.ts): the runtime takes this one, so a large
   * store never stops the consensus thread for longer than a step. The sessions are small and
   * taken at once, at the same instant.
   */
  checkpoint(prefix?: Uint8Array): Promise<Uint8Array | null> {
    const sessions = encodeSessions(this.sessions.exportState());
    const head = prefix === undefined ? sessions : Buffer.concat([prefix, sessions]);
    const job = this.store.beginSnapshot(head);
    return new Promise((resolve, reject) => {
      const run = (): void => {
        try {
          if (job.step(SNAPSHOT_STEP_MS)) resolve(job.bytes);
          else setImmediate(run);
        } catch (error) {
          reject(error);
        }
      };
      run();
    });
  }

  restore(data: Uint8Array): void {
    const { state, rest } = decodeSessions(data);
    this.store = KvStore.restore(rest, this.storeOptions());
    this.watchStore();
    try {
      this.sessions.importState(
        state ?? { nextId: 1, origins: [], retired: [], sessions: [], waiting: [] },
      );
    } catch (error) {
      // Well-formed JSON of the wrong shape (never written by a replica of this version).
      throw new ApusError(
        "ERR_WIRE_FIELD",
        `store snapshot is corrupt: sessions: ${String(error)}`,
      );
    }
  }

  keyCount(): number {
    return this.store.keyCount;
  }

  describe(): Record<string, unknown> {
    return { kind: this.kind, keys: this.store.keyCount, sessions: this.sessions.size };
  }
}
