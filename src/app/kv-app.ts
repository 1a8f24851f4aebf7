import { MIB, REQUEST_REPLY_BYTES_MAX } from "../limits.ts";
import { decodeCommands } from "./command-codec.ts";
import { type ExecContext, isReadOnlyRequest, KvStore } from "./kv-store.ts";
import type { AppliedRequest, AppRequest, ReplicatedApp, ReplySink } from "./replicated-app.ts";

const REPLY_TOO_LARGE = Buffer.from(
  `-ERR replies to this pipelined request exceed ${REQUEST_REPLY_BYTES_MAX / MIB} MiB; send fewer commands at once\r\n`,
);

/** Keys with a TTL examined per applied batch, so expired keys nobody reads do not pile up. */
const EXPIRE_SWEEP_KEYS = 20;

export interface KvAppOptions {
  readonly valueBytesMax: number;
  readonly replyBytesMax: number;
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
    return { valueBytesMax: this.options.valueBytesMax, replyBytesMax: this.options.replyBytesMax };
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
   * A read-only request at this replica's read index. Its clock is the later of the log's and this
   * machine's (Date.now()): a key whose TTL ran out is gone for reads even while no write moves
   * the log's clock, and never earlier than the log says. Writes keep the log's clock alone.
   */
  readOnly(commands: readonly (readonly Uint8Array[])[]): boolean {
    return isReadOnlyRequest(commands);
  }

  read(commands: readonly (readonly Uint8Array[])[]): Uint8Array | null {
    if (!isReadOnlyRequest(commands)) return null;
    const nowMs = Date.now();
    const parts: Uint8Array[] = [];
    let replyBytes = 0;
    for (const args of commands) {
      const part = this.store.executeRead(args, nowMs, this.context);
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
