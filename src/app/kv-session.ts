/**
 * One client connection's state in the embedded store, the same on every replica: its database,
 * protocol, name, transaction, watched keys, subscriptions and blocked command. Connections are
 * named alike on every replica (ConnectionRef: origin replica, its incarnation, worker, id), their
 * commands and their close arrive through the log, so every replica holds the same sessions and
 * a snapshot carries them (kv-session-snapshot.ts). Only the origin replica has a client to
 * answer: `sink` and `timer` are its alone and never part of the state.
 */
import type { ConnectionRef, ReplySink } from "./replicated-app.ts";

/** A request (pipelined commands) being run for a session: where it is, and its replies so far. */
export interface RunningRequest {
  readonly commands: Buffer[][];
  /** The next command to run. */
  next: number;
  /** Replies of the commands run so far, in order. */
  readonly parts: Buffer[];
  /** Bytes in `parts`. */
  bytes: number;
  /** Where the whole reply goes once every command ran (the origin's client), else null. */
  readonly sink: ReplySink;
}

/** A blocking command waiting for one of its keys (BLPOP on empty lists). */
export interface BlockedCommand {
  readonly args: Buffer[];
  /** The database it runs in (its session's when it blocked). */
  readonly db: number;
  /** Its keys as `dbKey` strings, in argument order. */
  readonly keys: readonly string[];
  /** Log time it times out at; +Infinity: never (timeout 0). */
  readonly deadlineMs: number;
  /** The connection's how-manieth blocked command: an unblock event names the one it is for. */
  readonly number: number;
  /** The request it belongs to; the commands after it run once it is served. */
  readonly request: RunningRequest;
}

/** A watched key: its database and name, and whether it was live when WATCH ran. */
export interface WatchedKey {
  readonly db: number;
  readonly key: string;
  readonly existed: boolean;
}

export class KvSession {
  readonly connection: ConnectionRef;
  /** connectionKey(connection). */
  readonly key: string;
  /** CLIENT ID: numbered in log order, the same on every replica; 0 until asked or kept. */
  id: number;
  /** Log time the session began (its first command). */
  readonly createdMs: number;
  db = 0;
  resp: 2 | 3 = 2;
  name: Buffer | null = null;
  /** Log time of its last command (CLIENT LIST idle=). */
  lastMs: number;
  /** Its last command's name (CLIENT LIST cmd=). */
  lastCommand = "";
  /** Commands queued since MULTI; null outside MULTI. */
  multi: Buffer[][] | null = null;
  /** Bytes of the queued commands (bounded). */
  multiBytes = 0;
  /** A command was refused while queuing: EXEC answers EXECABORT. */
  multiFailed = false;
  watched: WatchedKey[] = [];
  /** A watched key was written since WATCH: EXEC answers a null array. */
  watchDirty = false;
  /** Subscribed channels and patterns, in subscription order. */
  readonly channels = new Set<string>();
  readonly patterns = new Set<string>();
  blocked: BlockedCommand | null = null;
  /** The request being run (until its reply is complete; through a block too), or null. */
  running: RunningRequest | null = null;
  /** How many of its commands blocked so far. */
  blocks = 0;
  /** The origin's timer that puts an unblock event in the log at the client's timeout. */
  timer: NodeJS.Timeout | null = null;

  constructor(connection: ConnectionRef, key: string, id: number, nowMs: number) {
    this.connection = connection;
    this.key = key;
    this.id = id;
    this.createdMs = nowMs;
    this.lastMs = nowMs;
  }

  /** Whether it is in Pub/Sub mode (RESP2 then allows only the subscription commands). */
  get subscribed(): boolean {
    return this.channels.size + this.patterns.size > 0;
  }

  get subscriptionCount(): number {
    return this.channels.size + this.patterns.size;
  }

  /**
   * Whether it holds anything a later command or the snapshot must know: a connection that only
   * ever sent plain commands is not kept (its close need not reach the log).
   */
  get hasState(): boolean {
    return (
      this.id !== 0 ||
      this.db !== 0 ||
      this.resp !== 2 ||
      this.name !== null ||
      this.multi !== null ||
      this.watched.length > 0 ||
      this.subscribed ||
      this.blocked !== null
    );
  }
}

/** A key of a database as one string (watch and blocking tables). */
export function dbKey(db: number, key: string): string {
  return `${db}\u0000${key}`;
}
