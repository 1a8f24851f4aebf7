import type { ReplicatedApp, ReplySink } from "../../app/replicated-app.ts";
import { ApusError } from "../../core/errors.ts";
import type { Batch, Snapshot } from "../../core/types.ts";
import { logBodyOffset, readConnectionPrefix, readLogHeader } from "../log-command.ts";
import { ClientSessions } from "./client-sessions.ts";

export interface StateMachineOptions {
  readonly replicaId: number;
  readonly incarnation: number;
}

/** One RESP error per command of a request, so a pipelining client gets every reply it waits for. */
export function errorReply(text: string, commandCount: number): Uint8Array {
  const one = Buffer.from(`-${text.replace(/[\r\n]/g, " ")}\r\n`, "latin1");
  const count = Math.max(1, commandCount);
  if (count === 1) return one;
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/**
 * The replicated state machine as the log sees it: reads each chosen log command's header, lets
 * the client sessions decide whether it runs (at most once per request id), and applies it to
 * the application (src/app/replicated-app.ts: the embedded store, or a program under --app), in
 * slot order, on every replica. Time comes only from the batch's stamp (the leader's clock).
 * Only the replica (and incarnation) where a request arrived claims its reply for a client.
 */
export class StateMachine {
  readonly app: ReplicatedApp;
  /** Which request ids already ran: a request sent twice (after a leader change) runs once. */
  private sessions = new ClientSessions();
  private readonly options: StateMachineOptions;
  private nowMs = 0;
  /** Log commands that failed to decode (never expected: they are our own encoding). */
  malformed = 0;
  /** Requests skipped because they already ran (an origin sent them again). */
  duplicates = 0;

  constructor(app: ReplicatedApp, options: StateMachineOptions) {
    this.app = app;
    this.options = options;
  }

  /** Snapshot layout: u32 sessionsLength | client sessions | the application's own snapshot. */
  install(snapshot: Snapshot): void {
    const data = snapshot.data;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const sessionsLength =
      data.byteLength >= 4 ? view.getUint32(0, true) : Number.POSITIVE_INFINITY;
    if (4 + sessionsLength > data.byteLength)
      throw new ApusError("ERR_WIRE_FIELD", "snapshot: truncated client sessions");
    this.sessions = ClientSessions.decode(data.subarray(4, 4 + sessionsLength));
    this.nowMs = this.sessions.clockMs; // the log clock of the replica that took the snapshot
    this.app.restore(data.subarray(4 + sessionsLength));
  }

  /** The sessions and the application's state, or null when the application cannot take one. */
  snapshot(): Uint8Array | null {
    const app = this.app.snapshot();
    if (app === null) return null;
    const sessions = this.sessions.encode();
    const data = new Uint8Array(4 + sessions.byteLength + app.byteLength);
    new DataView(data.buffer).setUint32(0, sessions.byteLength, true);
    data.set(sessions, 4);
    data.set(app, 4 + sessions.byteLength);
    return data;
  }

  /**
   * The sessions now and the application's checkpoint once it is ready (an app without snapshot()
   * but with checkpoint(): a program's copy), or null when the app has neither. The checkpoint
   * holds everything applied before this call, so the result belongs at the slot applied now.
   */
  snapshotLater(): Promise<Uint8Array | null> | null {
    if (this.app.checkpoint === undefined) return null;
    const sessions = this.sessions.encode();
    const prefix = new Uint8Array(4 + sessions.byteLength);
    new DataView(prefix.buffer).setUint32(0, sessions.byteLength, true);
    prefix.set(sessions, 4);
    return this.app.checkpoint(prefix); // the sessions' layout, then the app's image
  }

  /**
   * Apply one chosen batch. `claim(requestId)` is asked for the reply sink of each of this
   * replica's own requests that runs (null if nobody waits for it any more).
   */
  applyBatch(
    batch: Batch,
    claim: (requestId: number) => ReplySink,
  ): { requests: number; commands: number; bytes: number; foreign: boolean } {
    // The clock never runs backwards for the application, even if a new leader's clock is behind.
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
      const prefix = readConnectionPrefix(command);
      const event = prefix?.event ?? "data";
      // An event's request is claimed too (nobody waits for it), so it leaves the router now.
      const claimed = mine ? claim(requestId) : null;
      const sink = event === "data" ? claimed : null;
      const applied = this.app.apply(
        {
          connection: {
            origin: header.origin,
            incarnation: header.incarnation,
            worker: prefix?.worker ?? 0,
            connId: prefix?.connId ?? 0,
          },
          event,
          body: command,
          bodyOffset: logBodyOffset(command),
          nowMs: this.nowMs,
          takenMs: header.takenMs,
        },
        sink,
      );
      if (applied.malformed) {
        this.malformed++;
        sink?.(errorReply("ERR malformed request in the log", 1));
        continue;
      }
      commands += applied.commands;
    }
    this.app.endBatch(this.nowMs);
    this.sessions.expire(this.nowMs);
    return { requests: batch.commands.length, commands, bytes, foreign };
  }
}
