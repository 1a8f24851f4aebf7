import { decodeCommands } from "../../app/command-codec.ts";
import { type ExecContext, KvStore } from "../../app/kv-store.ts";
import { ApusError } from "../../core/errors.ts";
import type { Batch, Snapshot } from "../../core/types.ts";
import { MIB, REQUEST_REPLY_BYTES_MAX } from "../../limits.ts";
import { LOG_HEADER_BYTES, readLogHeader } from "../log-command.ts";
import { ClientSessions } from "./client-sessions.ts";

const REPLY_TOO_LARGE = Buffer.from(
  `-ERR replies to this pipelined request exceed ${REQUEST_REPLY_BYTES_MAX / MIB} MiB; send fewer commands at once\r\n`,
);

/** Keys with a TTL examined per applied batch, so expired keys nobody reads do not pile up. */
const EXPIRE_SWEEP_KEYS = 20;

export interface StateMachineOptions {
  readonly replicaId: number;
  readonly incarnation: number;
  readonly valueBytesMax: number;
  readonly replyBytesMax: number;
  /** The INFO replication section (role, leader, ballot, commit and applied index). */
  readonly info: () => string;
}

/** One RESP error per command of a request, so a pipelining client gets every reply it waits for. */
export function errorReply(text: string, commandCount: number): Uint8Array {
  const one = Buffer.from(`-${text.replace(/[\r\n]/g, " ")}\r\n`, "latin1");
  const count = Math.max(1, commandCount);
  if (count === 1) return one;
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/**
 * The replicated state machine as the log sees it: applies chosen batches to the embedded store,
 * in slot order, on every replica. Time comes only from the batch's stamp (the leader's clock).
 * Only the replica (and incarnation) where a request arrived hands its reply back to a client.
 */
export class StateMachine {
  private store: KvStore;
  /** Which request ids already ran: a request sent twice (after a leader change) runs once. */
  private sessions = new ClientSessions();
  private readonly options: StateMachineOptions;
  private nowMs = 0;
  private readonly context: ExecContext;
  /** Log commands that failed to decode (never expected: they are our own encoding). */
  malformed = 0;
  /** Requests skipped because they already ran (an origin sent them again). */
  duplicates = 0;

  constructor(options: StateMachineOptions) {
    this.options = options;
    this.store = new KvStore({
      valueBytesMax: options.valueBytesMax,
      replyBytesMax: options.replyBytesMax,
    });
    const self = this;
    this.context = {
      get nowMs() {
        return self.nowMs;
      },
      info: (section: string) => (section === "replication" ? options.info() : ""),
    };
  }

  get keyCount(): number {
    return this.store.keyCount;
  }

  /** Snapshot layout: u32 sessionsLength | client sessions | the store's own snapshot. */
  install(snapshot: Snapshot): void {
    const data = snapshot.data;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const sessionsLength =
      data.byteLength >= 4 ? view.getUint32(0, true) : Number.POSITIVE_INFINITY;
    if (4 + sessionsLength > data.byteLength)
      throw new ApusError("ERR_WIRE_FIELD", "snapshot: truncated client sessions");
    this.sessions = ClientSessions.decode(data.subarray(4, 4 + sessionsLength));
    this.nowMs = this.sessions.clockMs; // the log clock of the replica that took the snapshot
    this.store = KvStore.restore(data.subarray(4 + sessionsLength), {
      valueBytesMax: this.options.valueBytesMax,
      replyBytesMax: this.options.replyBytesMax,
    });
  }

  snapshot(): Uint8Array {
    const sessions = this.sessions.encode();
    const store = this.store.snapshot();
    const data = new Uint8Array(4 + sessions.byteLength + store.byteLength);
    new DataView(data.buffer).setUint32(0, sessions.byteLength, true);
    data.set(sessions, 4);
    data.set(store, 4 + sessions.byteLength);
    return data;
  }

  /** Apply one chosen batch; `reply` gets the replies to this replica's own requests. */
  applyBatch(
    batch: Batch,
    reply: (requestId: number, bytes: Uint8Array | null) => void,
  ): { requests: number; commands: number; bytes: number; foreign: boolean } {
    // The clock never runs backwards for the store, even if a new leader's clock is behind.
    this.nowMs = this.sessions.advanceClock(batch.stampMs);
    let commands = 0;
    let bytes = 0;
    let foreign = false;
    for (const command of batch.commands) {
      bytes += command.byteLength;
      const header = readLogHeader(command);
      if (header === null) {
        this.malformed++;
        continue;
      }
      const mine =
        header.origin === this.options.replicaId && header.incarnation === this.options.incarnation;
      if (header.origin !== this.options.replicaId) foreign = true;
      const requestId = header.requestId;
      const admitted = this.sessions.admit(
        header.origin,
        header.incarnation,
        requestId,
        header.floor,
        this.nowMs,
        header.takenMs,
      );
      if (!admitted) {
        this.duplicates++; // already ran, or its origin gave up on it: its client has an answer
        continue;
      }
      const requests = decodeCommands(command, LOG_HEADER_BYTES);
      if (requests === null) {
        this.malformed++;
        if (mine) reply(requestId, null);
        continue;
      }
      commands += requests.length;
      if (mine) {
        const parts: Uint8Array[] = [];
        let replyBytes = 0;
        for (const args of requests) {
          const part = this.store.execute(args, this.context);
          // Every command still runs; only the reply is replaced once the request's total is too big.
          if (replyBytes + part.byteLength > REQUEST_REPLY_BYTES_MAX) {
            parts.push(REPLY_TOO_LARGE);
            continue;
          }
          replyBytes += part.byteLength;
          parts.push(part);
        }
        reply(requestId, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
      } else {
        for (const args of requests) this.store.execute(args, this.context);
      }
    }
    // Active expiry at the same log point on every replica, with the batch's time: deterministic.
    this.store.expireSweep(this.nowMs, EXPIRE_SWEEP_KEYS);
    this.sessions.expire(this.nowMs);
    return { requests: batch.commands.length, commands, bytes, foreign };
  }
}
