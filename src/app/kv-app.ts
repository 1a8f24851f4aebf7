import { MIB, REQUEST_REPLY_BYTES_MAX } from "../limits.ts";
import { decodeCommands } from "./command-codec.ts";
import { type ExecContext, isReadOnlyRequest, KvStore, type KvStoreOptions } from "./kv-store.ts";
import type { AppliedRequest, AppRequest, ReplicatedApp, ReplySink } from "./replicated-app.ts";

const REPLY_TOO_LARGE = Buffer.from(
  `-ERR replies to this pipelined request exceed ${REQUEST_REPLY_BYTES_MAX / MIB} MiB; send fewer commands at once\r\n`,
);

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
  /** What CONFIG GET and INFO report of the replica (KvStoreOptions.server). */
  readonly server?: KvStoreOptions["server"];
  /** The INFO replication section (role, leader, ballot, commit and applied index). */
  readonly info: () => string;
}

/**
 * The embedded Redis-protocol store as the replicated application: runs each request's commands
 * at once and answers synchronously. Time comes only from the log (the batch's stamp), so every
 * replica expires the same keys at the same log position.
 */
export class KvApp implements ReplicatedApp {
  readonly kind = "embedded";
  private store: KvStore;
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
      info: (section: string) => (section === "replication" ? options.info() : ""),
    };
  }

  private storeOptions() {
    const { valueBytesMax, replyBytesMax, memoryBytesMax = 0, server = {} } = this.options;
    return { valueBytesMax, replyBytesMax, memoryBytesMax, server };
  }

  apply(request: AppRequest, reply: ReplySink): AppliedRequest {
    this.nowMs = request.nowMs;
    if (request.event !== "data") return { commands: 0, malformed: false };
    const commands = decodeCommands(request.body, request.bodyOffset);
    if (commands === null) return { commands: 0, malformed: true };
    if (reply === null) {
      for (const args of commands) this.store.execute(args, this.context);
      return { commands: commands.length, malformed: false };
    }
    const parts: Uint8Array[] = [];
    let replyBytes = 0;
    for (const args of commands) {
      const part = this.store.execute(args, this.context);
      // Every command still runs; only the reply is replaced once the request's total is too big.
      if (replyBytes + part.byteLength > REQUEST_REPLY_BYTES_MAX) {
        parts.push(REPLY_TOO_LARGE);
        continue;
      }
      replyBytes += part.byteLength;
      parts.push(part);
    }
    reply(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    return { commands: commands.length, malformed: false };
  }

  /**
   * Whether a request can be answered at a read index now: every command only reads, and the
   * log's clock is fresh or no key has a TTL. Reads run at the log's clock (KvStore.executeRead),
   * which moves only with writes: while none come, a key whose TTL ran out would stay readable.
   * So when the log's clock is more than READ_CLOCK_LAG_MS behind this machine's and some key
   * can expire, the read goes through the log like a write and gets a fresh stamp (as every
   * read did before read indexes).
   */
  readOnly(commands: readonly (readonly Uint8Array[])[]): boolean {
    if (!isReadOnlyRequest(commands)) return false;
    return !this.store.hasExpiringKeys || Date.now() - this.store.clockMs <= READ_CLOCK_LAG_MS;
  }

  read(commands: readonly (readonly Uint8Array[])[]): Uint8Array | null {
    if (!isReadOnlyRequest(commands)) return null;
    const parts: Uint8Array[] = [];
    let replyBytes = 0;
    for (const args of commands) {
      const part = this.store.executeRead(args, this.context);
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
  }

  snapshot(): Uint8Array {
    return this.store.snapshot();
  }

  /**
   * The same image, taken a few milliseconds at a time between the event loop's other work, while
   * the store goes on applying the log (kv-snapshot-job.ts): the runtime takes this one, so a large
   * store never stops the consensus thread for longer than a step.
   */
  checkpoint(prefix?: Uint8Array): Promise<Uint8Array | null> {
    const job = this.store.beginSnapshot(prefix);
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
    this.store = KvStore.restore(data, this.storeOptions());
  }

  keyCount(): number {
    return this.store.keyCount;
  }

  describe(): Record<string, unknown> {
    return { kind: this.kind, keys: this.store.keyCount };
  }
}
