/**
 * The embedded store as the runtime drives it (KvApp with its sessions), for tests: commands on
 * numbered connections of one replica, replies and Pub/Sub pushes collected per connection, the
 * log's clock moved by hand.
 */
import { encodeCommands } from "../../src/app/command-codec.ts";
import { KvApp } from "../../src/app/kv-app.ts";
import type { ConnectionRef } from "../../src/app/replicated-app.ts";

export class KvAppHarness {
  readonly app: KvApp;
  nowMs = 1_000_000;
  /** Replies and Pub/Sub pushes not yet taken, per connection (a blocked command's comes later). */
  private readonly replies = new Map<number, string[]>();
  /** Unblock events the sessions asked for (a blocked command's timeout at its origin). */
  readonly unblocks: { connId: number; block: number }[] = [];

  /** Lease renewals the sessions asked for (this replica has clients blocked). */
  renewals = 0;

  constructor(options: { origin?: number; incarnation?: number; blockLeaseMs?: number } = {}) {
    this.origin = options.origin ?? 1;
    this.incarnation = options.incarnation ?? 1;
    this.app = new KvApp({
      valueBytesMax: 8 * 1024 * 1024,
      replyBytesMax: 64 * 1024 * 1024,
      ...(options.blockLeaseMs === undefined ? {} : { blockLeaseMs: options.blockLeaseMs }),
      info: () => "role:master\r\n",
      hooks: {
        // Pushes join the connection's stream of replies, in the order a client would read them.
        push: (connection, bytes) => this.list(this.replies, connection.connId).push(latin1(bytes)),
        proposeUnblock: (connection, block) =>
          this.unblocks.push({ connId: connection.connId, block }),
        isLocal: (connection) =>
          connection.origin === this.origin && connection.incarnation === this.incarnation,
        renewLease: () => {
          this.renewals++;
        },
      },
    });
  }

  readonly origin: number;
  readonly incarnation: number;

  connection(connId: number): ConnectionRef {
    return { origin: this.origin, incarnation: this.incarnation, worker: 0, connId };
  }

  private list(map: Map<number, string[]>, connId: number): string[] {
    let list = map.get(connId);
    if (list === undefined) {
      list = [];
      map.set(connId, list);
    }
    return list;
  }

  /** Applies one request (pipelined commands) of connection `connId`, then ends the batch. */
  send(connId: number, ...commands: readonly string[][]): void {
    const body = encodeCommands(
      commands.map((args) => args.map((arg) => Buffer.from(arg, "latin1"))),
      0,
    );
    this.app.apply(
      {
        connection: this.connection(connId),
        event: "data",
        body,
        bodyOffset: 0,
        nowMs: this.nowMs,
      },
      (reply) => this.list(this.replies, connId).push(latin1(reply)),
    );
    this.app.endBatch(this.nowMs);
  }

  /** The reply of one command (or request); null when it blocked. */
  run(connId: number, ...args: string[]): string | null {
    this.send(connId, args);
    return this.take(connId);
  }

  /** The oldest reply of `connId` not taken yet, or null. */
  take(connId: number): string | null {
    return this.replies.get(connId)?.shift() ?? null;
  }

  /** Everything `connId` was sent and has not taken, in order (replies and pushes). */
  takeAll(connId: number): string {
    return this.replies.get(connId)?.splice(0).join("") ?? "";
  }

  /** A connection event from the log. */
  event(connId: number, event: "close" | "unblock", argument?: string): void {
    const body = encodeCommands(
      argument === undefined ? [] : [[Buffer.from(argument, "latin1")]],
      0,
    );
    this.app.apply(
      { connection: this.connection(connId), event, body, bodyOffset: 0, nowMs: this.nowMs },
      null,
    );
    this.app.endBatch(this.nowMs);
  }

  /** Moves the log's clock by `ms` and applies an empty batch there. */
  advance(ms: number): void {
    this.nowMs += ms;
    this.app.endBatch(this.nowMs);
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("latin1");
}
