/**
 * The embedded store's connections (kv-session.ts) and the commands that act on them: SELECT,
 * MULTI EXEC DISCARD WATCH UNWATCH, the blocking pops (kv-blocking.ts), Pub/Sub (kv-pubsub.ts),
 * CLIENT, HELLO (RESP3), RESET. Everything here happens as the log is applied, so every replica
 * holds the same sessions and gives the same answers; only the origin replica of a connection
 * hands its answers to a client.
 *
 * - A transaction is queued in the session and runs whole at EXEC's place in the log: nothing
 *   runs between its commands, on any replica.
 * - WATCH marks a key; any later write command that names the key (its spec's keys), FLUSHALL,
 *   FLUSHDB and SWAPDB make EXEC fail, as does a watched key that was live and has expired. A
 *   write that names a key without changing it (SADD of a present member) fails the EXEC too,
 *   where Redis would not notice: never a lost update, now and then a retry more.
 * - A blocking command with nothing to serve blocks its session on its keys; after every command
 *   (after EXEC as a whole) the sessions blocked on keys that a write named are run again in the
 *   order they blocked, so the same client gets the same element on every replica. A blocked
 *   command times out when a batch stamped at or after its deadline (the leader's clock) is
 *   applied, or when its origin replica's timer puts an unblock event in the log first: an idle
 *   cluster stamps no batches, so the origin's timer is what ends a timeout there.
 * - A blocked command is served only while its origin replica is heard from: every log command
 *   of an origin's live run renews its lease, and an origin with clients blocked here puts its
 *   run in the log again every lease / 5 (the close of connection 0, which never exists). A
 *   blocked command whose origin was not heard from for the lease (--block-lease-ms: crashed, or
 *   cut off from the leader) ends with an UNBLOCKED error at the first batch past it, instead of
 *   taking an element for a client that may be gone (a crashed replica's clients would have
 *   taken one element each, however late it came). Before the lease runs out they still may.
 */
import { BLOCK_LEASE_MS_DEFAULT, REQUEST_REPLY_BYTES_MAX } from "../limits.ts";
import { blockFamily, blockTimeoutMs, rerunFor, timeoutReply } from "./kv-blocking.ts";
import { arityFits, commandKeys, findCommand } from "./kv-command-table.ts";
import { DATABASES } from "./kv-databases.ts";
import { PubSub } from "./kv-pubsub.ts";
import { ERR_WRONGPASS, parseHello, REDIS_VERSION_CLAIMED } from "./kv-server.ts";
import { type BlockedCommand, dbKey, KvSession, type RunningRequest } from "./kv-session.ts";
import {
  BLOCKED,
  ERR_NOT_INTEGER,
  type ExecContext,
  isReply,
  latin1,
  parseLong,
  upper,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import { ERR_OOM, type KvStore, unknownCommand } from "./kv-store.ts";
import { xreadResolveIds } from "./kv-streams.ts";
import { LeaseRenewal } from "./lease-renewal.ts";
import { type ConnectionRef, connectionKey, type ReplySink } from "./replicated-app.ts";
import {
  array,
  bulk,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_ARRAY,
  NULL_BULK,
  OK,
  PONG,
  simpleString,
} from "./resp.ts";
import { toResp3 } from "./resp3.ts";

/** What the sessions need from the replica around them. */
export interface SessionHooks {
  /** A Pub/Sub message for a client of this replica. */
  push(connection: ConnectionRef, bytes: Uint8Array): void;
  /** Put an unblock event for this replica's connection in the log (its client's timeout). */
  proposeUnblock(connection: ConnectionRef, block: number): void;
  /** Whether the connection's client is this replica's (this process's). */
  isLocal(connection: ConnectionRef): boolean;
  /** Put this replica's run in the log again: the lease of its blocked clients. */
  renewLease(): void;
}

const REPLY_TOO_LARGE = Buffer.from(
  `-ERR replies to this pipelined request exceed ${REQUEST_REPLY_BYTES_MAX / 1024 / 1024} MiB; send fewer commands at once\r\n`,
);
const ERR_EXEC_ABORT = errorReply("EXECABORT Transaction discarded because of previous errors.");
/** Queued commands of one transaction, bytes: a transaction is state on every replica. */
export const MULTI_QUEUE_BYTES_MAX = 16 * 1024 * 1024;
/** Queued commands of every open transaction together (they ride in every snapshot). */
export const MULTI_QUEUE_TOTAL_BYTES_MAX = 128 * 1024 * 1024;
/** Incarnations of an origin remembered as retired (a late request of one runs detached). */
const RETIRED_KEPT = 16;
/** Closed connections are remembered this long (log time), pruned every CLOSED_PRUNE_EVERY closes. */
const CLOSED_KEPT_MS = 60 * 60 * 1000;
const CLOSED_PRUNE_EVERY = 256;
/** setTimeout's longest delay. */
const TIMER_MS_MAX = 2 ** 31 - 1;

/** Commands that run at once inside MULTI instead of being queued. */
const NOT_QUEUED = new Set(["exec", "discard", "multi", "watch", "quit", "reset"]);
/** What a RESP2 connection in Pub/Sub mode may send (Redis's rule). */
const SUBSCRIBED_ALLOWED = new Set([
  "subscribe",
  "ssubscribe",
  "unsubscribe",
  "sunsubscribe",
  "psubscribe",
  "punsubscribe",
  "ping",
  "quit",
  "reset",
]);
/** Writes without key arguments that still touch every watched key (of their databases). */
const TOUCHES_DATABASES = new Set(["flushall", "flushdb", "swapdb"]);

export class KvSessions {
  private readonly sessions = new Map<string, KvSession>();
  private nextId = 1;
  /**
   * origin → its live incarnation, when that one's first request was taken (older ones retire),
   * and the log time of its last command (its blocked clients' lease).
   */
  private readonly origins = new Map<
    number,
    { incarnation: number; sinceMs: number; heardMs: number }
  >();
  private readonly retired = new Map<number, number[]>();
  /** Closed connections → log time of their close, oldest first (pruned after CLOSED_KEPT_MS). */
  private readonly closed = new Map<string, number>();
  private closesSincePrune = 0;
  /** Bytes queued by every open transaction (bounded by MULTI_QUEUE_TOTAL_BYTES_MAX). */
  private queuedBytes = 0;
  readonly pubsub = new PubSub();
  /** dbKey → sessions watching it. */
  private readonly watchers = new Map<string, Set<KvSession>>();
  /** dbKey → sessions blocked on it, in the order they blocked. */
  private readonly waiting = new Map<string, KvSession[]>();
  private readonly blocked = new Set<KvSession>();
  /** Keys with blocked sessions that a write named since they were last served. */
  private ready: string[] = [];
  private readonly readySet = new Set<string>();
  private serving = false;
  private readonly store: () => KvStore;
  private readonly context: ExecContext;
  private readonly hooks: SessionHooks;
  /** --block-lease-ms: how long a blocked command outlives the last word from its origin. */
  private readonly leaseMs: number;
  /** Renews the lease while this replica has clients blocked (armed by block()). */
  private readonly renewal: LeaseRenewal;

  constructor(
    store: () => KvStore,
    context: ExecContext,
    hooks: SessionHooks,
    leaseMs: number = BLOCK_LEASE_MS_DEFAULT,
  ) {
    this.store = store;
    this.context = context;
    this.hooks = hooks;
    this.leaseMs = leaseMs;
    this.renewal = new LeaseRenewal(
      leaseMs,
      () => [...this.blocked].some((session) => hooks.isLocal(session.connection)),
      () => hooks.renewLease(),
    );
  }

  get size(): number {
    return this.sessions.size;
  }

  get blockedCount(): number {
    return this.blocked.size;
  }

  /** The session of a connection, if it has one. */
  get(connection: ConnectionRef): KvSession | undefined {
    return this.sessions.get(connectionKey(connection));
  }

  /** Every session, oldest first (CLIENT LIST, snapshots). */
  all(): IterableIterator<KvSession> {
    return this.sessions.values();
  }

  /** A write command named these keys of database `db` (KvStore.onWrite). */
  onWrite(db: number, keys: readonly Buffer[]): void {
    if (this.watchers.size === 0 && this.waiting.size === 0) return; // the usual case
    for (const key of keys) this.touch(dbKey(db, latin1(key)));
  }

  /** A write named this key: its watchers' EXEC fails, its blocked clients are tried again. */
  private touch(dk: string): void {
    this.dirty(dk);
    this.wake(dk);
  }

  private dirty(dk: string): void {
    const watching = this.watchers.get(dk);
    if (watching !== undefined) for (const session of watching) session.watchDirty = true;
  }

  private wake(dk: string): void {
    if (this.waiting.has(dk) && !this.readySet.has(dk)) {
      this.readySet.add(dk);
      this.ready.push(dk);
    }
  }

  /** A connection event or request from the log; `takenMs`: when its origin took it. */
  apply(
    connection: ConnectionRef,
    event: "data" | "close" | "unblock",
    commands: Buffer[][],
    sink: ReplySink,
    takenMs: number = this.context.nowMs,
  ): void {
    const nowMs = this.context.nowMs;
    const key = connectionKey(connection);
    // A late request of a retired incarnation, or of a connection whose close came first (a
    // close and a request still in flight travel apart), runs detached: its client is gone.
    const admitted = this.admitIncarnation(connection, takenMs);
    if (admitted) {
      // When the origin took it, not when it is applied: a dead replica's copy chosen late (a new
      // leader's Phase 1 recovers it) must not renew its lease. Capped by the log's clock.
      const origin = this.origins.get(connection.origin)!;
      origin.heardMs = Math.max(origin.heardMs, Math.min(nowMs, takenMs));
    }
    const live = admitted && !this.closed.has(key);
    if (event === "close") {
      const session = this.sessions.get(key);
      if (session !== undefined) this.close(session);
      // Connection 0 never exists: its close is the origin announcing its run (at start, and
      // to renew its lease), not a connection to remember.
      if (connection.connId !== 0) this.rememberClosed(key, nowMs);
      return;
    }
    if (event === "unblock") {
      const session = this.sessions.get(key);
      const number = Number(latin1(commands[0]?.[0] ?? Buffer.alloc(0)));
      if (session?.blocked != null && session.blocked.number === number) this.timeOut(session);
      this.serveReady();
      return;
    }
    // A connection is kept only once it holds state (SELECT, MULTI, WATCH, SUBSCRIBE, HELLO,
    // CLIENT, a blocked command): the client port logs the close of exactly those (their
    // commands are "session" or blocking ones), so plain connections cost no log entry to close.
    const kept = live ? this.sessions.get(key) : undefined;
    // A request while the connection's command is still blocked: the client gave up on that one
    // (its request timed out here, and it sent the next): it must not take an element later.
    if (kept?.blocked != null) this.unblock(kept);
    const session = kept ?? new KvSession(connection, key, 0, nowMs);
    this.run(session, { commands, next: 0, parts: [], bytes: 0, sink }, !live);
    if (!live) this.forget(session);
    else if (kept === undefined && session.hasState) {
      if (session.id === 0) session.id = this.nextId++;
      this.sessions.set(key, session);
    }
    this.serveReady();
  }

  /**
   * Whether a connection's incarnation is its origin's live one. Incarnations are random, so a
   * new one is told from a late copy of an older one by when its request was taken: after the
   * live one's first request (the origin restarted: its old sessions go), or before (detached).
   */
  private admitIncarnation(connection: ConnectionRef, takenMs: number): boolean {
    const { origin, incarnation } = connection;
    const current = this.origins.get(origin);
    if (current?.incarnation === incarnation) return true;
    if (this.retired.get(origin)?.includes(incarnation)) return false;
    if (current !== undefined && takenMs < current.sinceMs) {
      this.retire(origin, incarnation);
      return false;
    }
    if (current !== undefined) {
      // The origin restarted: its old connections are gone (their closes were never logged).
      this.retire(origin, current.incarnation);
      for (const session of [...this.sessions.values()])
        if (
          session.connection.origin === origin &&
          session.connection.incarnation === current.incarnation
        )
          this.close(session);
    }
    this.origins.set(origin, {
      incarnation,
      sinceMs: takenMs,
      heardMs: Math.min(this.context.nowMs, takenMs),
    });
    return true;
  }

  private retire(origin: number, incarnation: number): void {
    const list = this.retired.get(origin) ?? [];
    list.push(incarnation);
    if (list.length > RETIRED_KEPT) list.shift();
    this.retired.set(origin, list);
  }

  /** A closed connection, remembered for CLOSED_KEPT_MS of log time (late requests of it). */
  private rememberClosed(key: string, nowMs: number): void {
    this.closed.delete(key); // a close applied twice (a retried copy) moves to the end: close order
    this.closed.set(key, nowMs);
    if (++this.closesSincePrune < CLOSED_PRUNE_EVERY) return;
    this.closesSincePrune = 0;
    for (const [closedKey, at] of this.closed) {
      if (nowMs - at <= CLOSED_KEPT_MS) break; // insertion order is close order
      this.closed.delete(closedKey);
    }
  }

  /** A detached session's run is over: nothing it did to its own state may stay. */
  private forget(session: KvSession): void {
    this.endMulti(session);
    if (session.blocked !== null) this.unblock(session);
    this.unwatch(session);
    this.pubsub.drop(session);
  }

  private close(session: KvSession): void {
    this.endMulti(session);
    if (session.blocked !== null) this.unblock(session);
    this.unwatch(session);
    this.pubsub.drop(session);
    this.sessions.delete(session.key);
  }

  /** Runs a request's commands from `request.next` on; stops at one that blocks. */
  private run(session: KvSession, request: RunningRequest, detached: boolean): void {
    session.running = request;
    while (request.next < request.commands.length) {
      const args = request.commands[request.next]!;
      const reply = this.execute(session, args, false);
      if (reply === BLOCKED) {
        if (detached) {
          this.addPart(
            request,
            this.out(session, args, timeoutReply(latin1(args[0]!).toLowerCase())),
          );
          request.next++;
          continue;
        }
        this.block(session, args, request);
        return;
      }
      request.next++;
      this.addPart(request, reply);
      this.serveReady();
    }
    session.running = null;
    const sink = request.sink;
    if (sink !== null) {
      const parts = request.parts;
      sink(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
  }

  private addPart(request: RunningRequest, reply: Buffer): void {
    if (request.sink === null) return; // nobody reads it: keep nothing
    // Every command still runs; only the reply is replaced once the request's total is too big.
    if (request.bytes + reply.byteLength > REQUEST_REPLY_BYTES_MAX) {
      request.parts.push(REPLY_TOO_LARGE);
      return;
    }
    request.bytes += reply.byteLength;
    request.parts.push(reply);
  }

  /** The reply in the session's protocol. */
  private out(session: KvSession, args: readonly Buffer[], reply: Buffer): Buffer {
    return session.resp === 3 ? toResp3(args, reply) : reply;
  }

  /**
   * One command of a session: its reply, or BLOCKED (a blocking command with nothing to serve,
   * outside a transaction). `inExec`: run by EXEC (never queued, never blocks).
   */
  private execute(session: KvSession, args: Buffer[], inExec: boolean): Buffer {
    const spec = findCommand(args[0]!);
    const inMulti = session.multi !== null && !inExec;
    session.lastMs = this.context.nowMs;
    if (spec === undefined) {
      if (inMulti) session.multiFailed = true;
      return unknownCommand(args);
    }
    session.lastCommand = spec.name;
    if (!arityFits(spec, args)) {
      if (inMulti) session.multiFailed = true;
      return wrongArity(spec.name);
    }
    const name = spec.name;
    if (!inExec && session.resp === 2 && session.subscribed && !SUBSCRIBED_ALLOWED.has(name))
      return errorReply(
        `ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
      );
    if (inMulti && !NOT_QUEUED.has(name)) {
      // Over --max-memory a command that adds data is refused when queued, as in Redis.
      if (spec.flags?.includes("denyoom") === true && this.store().isOverMemory()) {
        session.multiFailed = true;
        return ERR_OOM;
      }
      return this.queue(session, args);
    }
    switch (name) {
      case "multi":
        if (session.multi !== null) return errorReply("ERR MULTI calls can not be nested");
        session.multi = [];
        return OK;
      case "exec":
        return this.exec(session);
      case "discard":
        if (session.multi === null) return errorReply("ERR DISCARD without MULTI");
        this.endMulti(session);
        this.unwatch(session);
        return OK;
      case "watch":
        if (session.multi !== null) return errorReply("ERR WATCH inside MULTI is not allowed");
        this.watch(session, args);
        return OK;
      case "unwatch":
        this.unwatch(session);
        return OK;
      case "select":
        return this.select(session, args);
      case "subscribe":
        return this.pubsub.subscribe(session, args.slice(1));
      case "psubscribe":
        return this.pubsub.psubscribe(session, args.slice(1));
      case "unsubscribe":
        return this.pubsub.unsubscribe(session, args.slice(1));
      case "punsubscribe":
        return this.pubsub.punsubscribe(session, args.slice(1));
      case "publish":
        return integer(this.publish(args[1]!, args[2]!));
      case "pubsub":
        return this.out(session, args, this.pubsub.pubsubCommand(args));
      case "ping":
        if (session.resp === 2 && session.subscribed)
          return array([bulk("pong"), args.length === 2 ? bulk(args[1]!) : bulk("")]);
        return args.length === 2 ? bulk(args[1]!) : PONG;
      case "hello":
        return this.hello(session, args);
      case "client":
        return this.out(session, args, this.client(session, args));
      case "reset":
        this.reset(session);
        return simpleString("RESET");
      case "quit":
        return OK;
    }
    const reply = this.store().execute(args, this.context, session.db, spec);
    if (reply === BLOCKED) {
      if (inExec) return this.out(session, args, timeoutReply(name));
      return BLOCKED;
    }
    if (spec.kind === "write") this.afterWrite(name, args, session.db);
    return this.out(session, args, reply);
  }

  /** Writes whose effect reaches past their key arguments. */
  private afterWrite(name: string, args: readonly Buffer[], db: number): void {
    if (TOUCHES_DATABASES.has(name)) {
      const dbs =
        name === "flushall"
          ? null
          : name === "flushdb"
            ? [db]
            : [Number(latin1(args[1]!)), Number(latin1(args[2]!))];
      const inDbs = (dk: string) =>
        dbs === null || dbs.includes(Number(dk.slice(0, dk.indexOf("\u0000"))));
      for (const dk of this.watchers.keys()) if (inDbs(dk)) this.dirty(dk);
      // In `waiting`'s order, which a snapshot keeps: the same clients served on every replica.
      if (name === "swapdb") for (const dk of this.waiting.keys()) if (inDbs(dk)) this.wake(dk);
    } else if (name === "move" || name === "copy") {
      // The key arrived in another database (MOVE k db, COPY s d DB n): its watchers and
      // blocked clients there learn of it as if the write had run there.
      const target = this.targetDb(name, args, db);
      if (target !== null) this.touch(dbKey(target, latin1(args[name === "move" ? 1 : 2]!)));
    }
  }

  /** The database MOVE or COPY … DB wrote into, or null (a malformed call: nothing ran). */
  private targetDb(name: string, args: readonly Buffer[], db: number): number | null {
    if (name === "move") return parseLong(args[2]!);
    for (let i = 3; i + 1 < args.length; i++)
      if (upper(args[i]!) === "DB") return parseLong(args[i + 1]!);
    return db;
  }

  private queue(session: KvSession, args: Buffer[]): Buffer {
    let size = 0;
    for (const arg of args) size += arg.byteLength + 16;
    if (
      session.multiBytes + size > MULTI_QUEUE_BYTES_MAX ||
      this.queuedBytes + size > MULTI_QUEUE_TOTAL_BYTES_MAX
    ) {
      session.multiFailed = true;
      return errorReply(
        `ERR transaction too large: its queued commands would pass ${MULTI_QUEUE_BYTES_MAX} bytes, or all open transactions ${MULTI_QUEUE_TOTAL_BYTES_MAX}; send smaller transactions`,
      );
    }
    session.multi!.push(args.map((arg) => Buffer.from(arg)));
    session.multiBytes += size;
    this.queuedBytes += size;
    return QUEUED;
  }

  private endMulti(session: KvSession): void {
    this.queuedBytes -= session.multiBytes;
    session.multi = null;
    session.multiBytes = 0;
    session.multiFailed = false;
  }

  private exec(session: KvSession): Buffer {
    const queued = session.multi;
    if (queued === null) return errorReply("ERR EXEC without MULTI");
    const failed = session.multiFailed;
    this.endMulti(session);
    const watchFailed = this.watchFailed(session);
    this.unwatch(session);
    if (failed) return ERR_EXEC_ABORT;
    if (watchFailed) return session.resp === 3 ? RESP3_NULL : NULL_ARRAY;
    const replies: Buffer[] = [];
    for (const args of queued) replies.push(this.execute(session, args, true));
    return array(replies);
  }

  private watch(session: KvSession, args: readonly Buffer[]): void {
    for (let i = 1; i < args.length; i++) {
      const key = latin1(args[i]!);
      if (session.watched.some((w) => w.db === session.db && w.key === key)) continue;
      session.watched.push({ db: session.db, key, existed: this.isLive(session.db, key) });
      const dk = dbKey(session.db, key);
      let set = this.watchers.get(dk);
      if (set === undefined) {
        set = new Set();
        this.watchers.set(dk, set);
      }
      set.add(session);
    }
  }

  private unwatch(session: KvSession): void {
    for (const watched of session.watched) {
      const dk = dbKey(watched.db, watched.key);
      const set = this.watchers.get(dk);
      if (set === undefined) continue;
      set.delete(session);
      if (set.size === 0) this.watchers.delete(dk);
    }
    session.watched = [];
    session.watchDirty = false;
  }

  /** A watched key was written, or was live at WATCH and has expired or gone since. */
  private watchFailed(session: KvSession): boolean {
    if (session.watchDirty) return true;
    for (const watched of session.watched)
      if (watched.existed && !this.isLive(watched.db, watched.key)) return true;
    return false;
  }

  /** Whether `key` holds a live value now (without collecting it). */
  private isLive(db: number, key: string): boolean {
    const entry = this.store().database(db).entries.get(key);
    return entry !== undefined && !(this.store().clockMs > entry.expiresAtMs);
  }

  private select(session: KvSession, args: readonly Buffer[]): Buffer {
    const index = parseLong(args[1]!);
    if (index === null || index > 2 ** 31 - 1 || index < -(2 ** 31)) return ERR_NOT_INTEGER;
    if (index < 0 || index >= DATABASES) return errorReply("ERR DB index is out of range");
    session.db = index;
    return OK;
  }

  private publish(channel: Buffer, message: Buffer): number {
    return this.pubsub.publish(channel, message, (session, bytes) => {
      if (!this.hooks.isLocal(session.connection)) return;
      // A message to a client whose request is still being answered goes among its replies,
      // in order, not ahead of those already computed (RESP3: SUBSCRIBE then PUBLISH in one go).
      const running = session.running;
      if (running !== null && running.sink !== null) this.addPart(running, bytes);
      else this.hooks.push(session.connection, bytes);
    });
  }

  private hello(session: KvSession, args: readonly Buffer[]): Buffer {
    const request = parseHello(args);
    if (isReply(request)) return request;
    if (request.auth !== null && latin1(request.auth.username) !== "default") return ERR_WRONGPASS;
    if (request.protover !== null) session.resp = request.protover as 2 | 3;
    if (request.setname !== null) session.name = Buffer.from(request.setname);
    const fields: Buffer[] = [
      bulk("server"),
      bulk("redis"),
      bulk("version"),
      bulk(REDIS_VERSION_CLAIMED),
      bulk("proto"),
      integer(session.resp),
      bulk("id"),
      integer(this.idOf(session)),
      bulk("mode"),
      bulk("standalone"),
      bulk("role"),
      bulk("master"),
      bulk("modules"),
      EMPTY_ARRAY,
    ];
    // RESP3: a map of the seven fields.
    return session.resp === 3 ? Buffer.concat([Buffer.from("%7\r\n"), ...fields]) : array(fields);
  }

  private reset(session: KvSession): void {
    this.endMulti(session);
    this.unwatch(session);
    this.pubsub.drop(session);
    session.db = 0;
    session.resp = 2;
    session.name = null;
  }

  private client(session: KvSession, args: readonly Buffer[]): Buffer {
    const sub = upper(args[1]!);
    switch (sub) {
      case "ID":
        return args.length === 2 ? integer(this.idOf(session)) : wrongArity("client|id");
      case "GETNAME":
        if (args.length !== 2) return wrongArity("client|getname");
        return session.name === null ? this.nullBulk(session) : bulk(session.name);
      case "SETNAME": {
        if (args.length !== 3) return wrongArity("client|setname");
        const name = args[2]!;
        for (const c of name)
          if (c < 0x21 || c > 0x7e)
            return errorReply(
              "ERR Client names cannot contain spaces, newlines or special characters.",
            );
        session.name = name.length === 0 ? null : Buffer.from(name);
        return OK;
      }
      case "SETINFO":
        // Redis 7.2's; clients of 7.2 send it at connect and ignore the answer.
        return args.length === 4 ? OK : wrongArity("client|setinfo");
      case "INFO":
        if (args.length !== 2) return wrongArity("client|info");
        this.idOf(session);
        return bulk(this.clientLine(session));
      case "LIST":
        this.idOf(session); // the caller is listed too (it is kept from now on)
        return this.clientList(args, session);
      case "UNBLOCK":
        return this.clientUnblock(args);
      case "NO-EVICT":
      case "NO-TOUCH":
        return args.length === 3 ? OK : wrongArity(`client|${sub.toLowerCase()}`);
      case "GETREDIR":
        return integer(-1);
      case "HELP":
        return array(CLIENT_HELP.map((line) => simpleString(line)));
      case "KILL":
      case "PAUSE":
      case "UNPAUSE":
      case "REPLY":
      case "TRACKING":
      case "TRACKINGINFO":
      case "CACHING":
        return errorReply(
          `ERR CLIENT ${sub} is not supported by apus-smr (clients are spread over the replicas; a replica can only close its own)`,
        );
      default:
        return errorReply(`ERR unknown subcommand '${latin1(args[1]!)}'. Try CLIENT HELP.`);
    }
  }

  /** The session's CLIENT ID, numbered now if it has none yet (it is then kept). */
  private idOf(session: KvSession): number {
    if (session.id === 0) session.id = this.nextId++;
    return session.id;
  }

  private nullBulk(session: KvSession): Buffer {
    return session.resp === 3 ? RESP3_NULL : NULL_BULK;
  }

  /** One CLIENT LIST line, with the fields redis-server 7.0 prints. */
  private clientLine(session: KvSession): string {
    const now = this.context.nowMs;
    const c = session.connection;
    const flags =
      session.blocked !== null
        ? "b"
        : session.multi !== null
          ? "x"
          : session.subscribed
            ? "P"
            : "N";
    return (
      `id=${session.id} addr=replica-${c.origin}:${c.worker}.${c.connId} laddr=replica-${c.origin}:0 ` +
      `fd=-1 name=${session.name === null ? "" : latin1(session.name)} ` +
      `age=${Math.max(0, Math.floor((now - session.createdMs) / 1000))} ` +
      `idle=${Math.max(0, Math.floor((now - session.lastMs) / 1000))} flags=${flags} db=${session.db} ` +
      `sub=${session.channels.size} psub=${session.patterns.size} ssub=0 ` +
      `multi=${session.multi === null ? -1 : session.multi.length} qbuf=0 qbuf-free=0 argv-mem=0 ` +
      `multi-mem=${session.multiBytes} rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r ` +
      `cmd=${session.lastCommand === "" ? "NULL" : session.lastCommand} user=default redir=-1 resp=${session.resp}\n`
    );
  }

  /** CLIENT LIST [TYPE normal|pubsub|master|replica] [ID id …]: the clients of every replica. */
  private clientList(args: readonly Buffer[], caller: KvSession): Buffer {
    let type: string | null = null;
    let ids: Set<number> | null = null;
    for (let i = 2; i < args.length; i++) {
      const option = upper(args[i]!);
      if (option === "TYPE" && i + 1 < args.length) {
        type = latin1(args[++i]!).toLowerCase();
        if (!["normal", "pubsub", "master", "replica", "slave"].includes(type))
          return errorReply(`ERR Unknown client type '${latin1(args[i]!)}'`);
      } else if (option === "ID" && i + 1 < args.length) {
        ids = new Set();
        for (i++; i < args.length; i++) {
          const id = parseLong(args[i]!);
          if (id === null || id <= 0) return errorReply("ERR Invalid client ID");
          ids.add(id);
        }
      } else return errorReply("ERR syntax error");
    }
    let text = "";
    const listed = this.sessions.has(caller.key)
      ? [...this.sessions.values()]
      : [...this.sessions.values(), caller];
    for (const session of listed) {
      if (ids !== null && !ids.has(session.id)) continue;
      if (type === "pubsub" && !session.subscribed) continue;
      if (type === "normal" && session.subscribed) continue;
      if (type === "master" || type === "replica" || type === "slave") continue;
      text += this.clientLine(session);
    }
    return bulk(text);
  }

  /** CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 when it unblocked that client. */
  private clientUnblock(args: readonly Buffer[]): Buffer {
    if (args.length > 4) return errorReply("ERR syntax error");
    const id = parseLong(args[2]!);
    if (id === null) return ERR_NOT_INTEGER;
    let asError = false;
    if (args.length === 4) {
      const how = upper(args[3]!);
      if (how === "ERROR") asError = true;
      else if (how !== "TIMEOUT")
        return errorReply("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    }
    for (const session of this.blocked) {
      if (session.id !== id) continue;
      if (asError) this.endBlocked(session, UNBLOCKED_BY_CLIENT);
      else this.timeOut(session);
      return integer(1);
    }
    return integer(0);
  }

  /** Blocks a session on its command's keys until a write names one, or it times out. */
  private block(session: KvSession, args: Buffer[], request: RunningRequest): void {
    const timeout = blockTimeoutMs(args);
    const timeoutMs = typeof timeout === "number" && timeout > 0 ? timeout : 0;
    const keys: string[] = [];
    for (const key of commandKeys(args)) {
      const dk = dbKey(session.db, latin1(key));
      if (!keys.includes(dk)) keys.push(dk);
    }
    // XREAD … $ means "after the last entry now": run again, it must not mean a later last one.
    const rerun = isNamed(args[0]!, "xread")
      ? xreadResolveIds(this.store().database(session.db), args, this.context.nowMs)
      : args;
    const blocked: BlockedCommand = {
      args: rerun.map((arg) => Buffer.from(arg)),
      db: session.db,
      keys,
      deadlineMs: timeoutMs === 0 ? Number.POSITIVE_INFINITY : this.context.nowMs + timeoutMs,
      number: ++session.blocks,
      request,
    };
    session.blocked = blocked;
    this.blocked.add(session);
    for (const dk of keys) {
      const queue = this.waiting.get(dk);
      if (queue === undefined) this.waiting.set(dk, [session]);
      else queue.push(session);
    }
    this.armTimer(session);
    if (this.hooks.isLocal(session.connection)) this.renewal.arm();
  }

  /** When the lease of a blocked session runs out: leaseMs after the last word from its origin. */
  private leaseEndMs(session: KvSession): number {
    const origin = this.origins.get(session.connection.origin);
    if (origin === undefined || origin.incarnation !== session.connection.incarnation)
      return Number.POSITIVE_INFINITY; // a retired run's sessions are closed already
    return origin.heardMs + this.leaseMs;
  }

  /**
   * The origin keeps its client's timeout: an unblock event goes in the log when it runs out (at
   * once when nobody here waits for the reply).
   */
  private armTimer(session: KvSession): void {
    const blocked = session.blocked!;
    if (!this.hooks.isLocal(session.connection)) return;
    // A command of this replica's client with nobody to answer here: the replica gave up on its
    // request before it was chosen (--request-timeout-ms; the client had its error and went on),
    // or installed a snapshot that skipped it. End it on every replica before it takes an element.
    if (blocked.request.sink === null) {
      this.hooks.proposeUnblock(session.connection, blocked.number);
      return;
    }
    if (blocked.deadlineMs === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(TIMER_MS_MAX, Math.max(0, blocked.deadlineMs - this.context.nowMs));
    const number = blocked.number;
    session.timer = setTimeout(() => {
      session.timer = null;
      if (session.blocked?.number === number) this.hooks.proposeUnblock(session.connection, number);
    }, delay);
    session.timer.unref?.();
  }

  private unblock(session: KvSession): void {
    const blocked = session.blocked!;
    for (const dk of blocked.keys) {
      const queue = this.waiting.get(dk);
      if (queue === undefined) continue;
      const at = queue.indexOf(session);
      if (at >= 0) queue.splice(at, 1);
      if (queue.length === 0) this.waiting.delete(dk);
    }
    session.blocked = null;
    this.blocked.delete(session);
    if (session.timer !== null) {
      clearTimeout(session.timer);
      session.timer = null;
    }
  }

  /** The blocked command gets its timeout reply; the rest of its request runs. */
  private timeOut(session: KvSession): void {
    const blocked = session.blocked!;
    this.unblock(session);
    blocked.request.next++;
    const name = latin1(blocked.args[0]!).toLowerCase();
    this.addPart(blocked.request, this.out(session, blocked.args, timeoutReply(name)));
    this.run(session, blocked.request, false);
  }

  /** The blocked command gets `reply` (an error); the rest of its request runs. */
  private endBlocked(session: KvSession, reply: Buffer): void {
    const blocked = session.blocked!;
    this.unblock(session);
    blocked.request.next++;
    this.addPart(blocked.request, reply);
    this.run(session, blocked.request, false);
  }

  /**
   * The blocked command's origin was not heard from for the lease: its client may be gone, so
   * neither it nor the rest of its request runs (as for a client that disconnected); a client
   * still there gets UNBLOCKED, and an error for each command after it, so it reads one reply a
   * command.
   */
  private abandon(session: KvSession): void {
    const blocked = session.blocked!;
    const request = blocked.request;
    this.unblock(session);
    this.addPart(request, this.leaseError());
    for (let i = request.next + 1; i < request.commands.length; i++) this.addPart(request, NOT_RUN);
    request.next = request.commands.length;
    this.run(session, request, false);
  }

  /** The UNBLOCKED error of a command whose origin's lease ran out. */
  private leaseError(): Buffer {
    return errorReply(
      `UNBLOCKED apus: this client's replica was not heard from in the log for over ${this.leaseMs} ms (--block-lease-ms; it crashed or was cut off), so its blocked command ended rather than take an element for a client that may be gone; send it again`,
    );
  }

  /**
   * Runs again the commands blocked on keys that writes named, in the order they blocked, each
   * served from the key that became ready. Once one of a family (list pops, sorted-set pops)
   * finds the key empty or of another type, the rest of that family waiting on it are skipped.
   */
  private serveReady(): void {
    if (this.serving) return;
    this.serving = true;
    try {
      while (this.ready.length > 0) {
        const dk = this.ready.shift()!;
        this.readySet.delete(dk);
        const queue = this.waiting.get(dk);
        if (queue === undefined) continue;
        const key = Buffer.from(dk.slice(dk.indexOf("\u0000") + 1), "latin1");
        const exhausted = new Set<string>();
        for (const session of [...queue]) {
          const blocked = session.blocked;
          if (blocked === null || !blocked.keys.includes(dk)) continue;
          if (this.context.nowMs >= this.leaseEndMs(session)) {
            this.abandon(session);
            continue;
          }
          const name = latin1(blocked.args[0]!).toLowerCase();
          const family = blockFamily(name);
          if (exhausted.has(family)) continue;
          const args = rerunFor(blocked.args, key);
          const reply = this.store().execute(args, this.context, blocked.db);
          // The key now holds another type: Redis keeps such a client blocked, so do we.
          if (reply === BLOCKED || reply.equals(WRONGTYPE)) {
            if (family !== "stream") exhausted.add(family);
            continue;
          }
          this.unblock(session);
          blocked.request.next++;
          this.addPart(blocked.request, this.out(session, args, reply));
          this.run(session, blocked.request, false);
        }
      }
    } finally {
      this.serving = false;
    }
  }

  /**
   * A batch ended at log time `nowMs`: blocked commands whose deadline passed time out, and those
   * whose origin's lease ran out end with an error.
   */
  endBatch(nowMs: number): void {
    if (this.blocked.size === 0) return;
    // By when each ends, then client id: an order every replica has, restored from a snapshot or not.
    const due: { session: KvSession; endMs: number; lapsed: boolean }[] = [];
    for (const session of this.blocked) {
      const leaseEndMs = this.leaseEndMs(session);
      const endMs = Math.min(session.blocked!.deadlineMs, leaseEndMs);
      if (nowMs >= endMs) due.push({ session, endMs, lapsed: endMs === leaseEndMs });
    }
    due.sort((a, b) => a.endMs - b.endMs || a.session.id - b.session.id);
    for (const { session, lapsed } of due) {
      if (session.blocked === null) continue;
      if (lapsed) this.abandon(session);
      else this.timeOut(session);
    }
    this.serveReady();
  }

  /** The whole state, as plain data (kv-session-snapshot.ts encodes it). */
  exportState(): SessionsState {
    const ids = new Map<KvSession, number>();
    const sessions: SessionState[] = [];
    for (const session of this.sessions.values()) {
      ids.set(session, session.id);
      const c = session.connection;
      const blocked = session.blocked;
      sessions.push({
        origin: c.origin,
        incarnation: c.incarnation,
        worker: c.worker,
        connId: c.connId,
        id: session.id,
        createdMs: session.createdMs,
        lastMs: session.lastMs,
        lastCommand: session.lastCommand,
        db: session.db,
        resp: session.resp,
        name: session.name === null ? null : latin1(session.name),
        multi: session.multi === null ? null : session.multi.map(toBase64),
        multiBytes: session.multiBytes,
        multiFailed: session.multiFailed,
        watched: session.watched.map((w) => [w.db, w.key, w.existed] as const),
        watchDirty: session.watchDirty,
        channels: [...session.channels],
        patterns: [...session.patterns],
        blocks: session.blocks,
        blocked:
          blocked === null
            ? null
            : {
                args: toBase64(blocked.args),
                db: blocked.db,
                keys: [...blocked.keys],
                deadlineMs:
                  blocked.deadlineMs === Number.POSITIVE_INFINITY ? -1 : blocked.deadlineMs,
                number: blocked.number,
                commands: blocked.request.commands.map(toBase64),
                next: blocked.request.next,
              },
      });
    }
    return {
      nextId: this.nextId,
      origins: [...this.origins].map(
        ([origin, o]) => [origin, o.incarnation, o.sinceMs, o.heardMs] as const,
      ),
      retired: [...this.retired],
      closed: [...this.closed],
      closesSincePrune: this.closesSincePrune,
      sessions,
      waiting: [...this.waiting].map(([dk, queue]) => [dk, queue.map((s) => s.id)] as const),
    };
  }

  /** Replaces the whole state with one exportState gave (a snapshot being installed). */
  importState(state: SessionsState): void {
    // This replica's own clients blocked here: their replies are still owed (by this replica,
    // and no other), so a command still blocked in the snapshot keeps its client's request.
    const owed = new Map<string, BlockedCommand>();
    for (const session of this.sessions.values()) {
      if (session.timer !== null) clearTimeout(session.timer);
      if (session.blocked !== null && session.blocked.request.sink !== null)
        owed.set(session.key, session.blocked);
    }
    this.sessions.clear();
    this.watchers.clear();
    this.waiting.clear();
    this.blocked.clear();
    this.ready = [];
    this.readySet.clear();
    this.origins.clear();
    this.retired.clear();
    this.pubsub.clear();
    this.nextId = state.nextId;
    this.queuedBytes = 0;
    // A snapshot of an older version has no heardMs: the lease counts from the snapshot's place
    // in the log (its log clock).
    const clockMs = this.store().clockMs;
    for (const [origin, incarnation, sinceMs, heardMs = clockMs] of state.origins)
      this.origins.set(origin, { incarnation, sinceMs, heardMs });
    this.closed.clear();
    for (const [key, at] of state.closed ?? []) this.closed.set(key, at);
    this.closesSincePrune = state.closesSincePrune ?? 0;
    for (const [origin, list] of state.retired) this.retired.set(origin, [...list]);
    const byId = new Map<number, KvSession>();
    for (const saved of state.sessions) {
      const connection = {
        origin: saved.origin,
        incarnation: saved.incarnation,
        worker: saved.worker,
        connId: saved.connId,
      };
      const key = connectionKey(connection);
      const session = new KvSession(connection, key, saved.id, saved.createdMs);
      session.lastMs = saved.lastMs;
      session.lastCommand = saved.lastCommand;
      session.db = saved.db;
      session.resp = saved.resp;
      session.name = saved.name === null ? null : Buffer.from(saved.name, "latin1");
      session.multi = saved.multi === null ? null : saved.multi.map(fromBase64);
      session.multiBytes = saved.multiBytes;
      this.queuedBytes += saved.multiBytes;
      session.multiFailed = saved.multiFailed;
      session.blocks = saved.blocks;
      this.sessions.set(key, session);
      byId.set(session.id, session);
      for (const [db, watchedKey, existed] of saved.watched) {
        session.watched.push({ db, key: watchedKey, existed });
        const dk = dbKey(db, watchedKey);
        let set = this.watchers.get(dk);
        if (set === undefined) {
          set = new Set();
          this.watchers.set(dk, set);
        }
        set.add(session);
      }
      session.watchDirty = saved.watchDirty;
      const toBuffers = (names: readonly string[]) => names.map((n) => Buffer.from(n, "latin1"));
      if (saved.channels.length > 0) this.pubsub.subscribe(session, toBuffers(saved.channels));
      if (saved.patterns.length > 0) this.pubsub.psubscribe(session, toBuffers(saved.patterns));
      const blocked = saved.blocked;
      if (blocked !== null) {
        session.blocked = {
          args: fromBase64(blocked.args),
          db: blocked.db,
          keys: [...blocked.keys],
          deadlineMs: blocked.deadlineMs < 0 ? Number.POSITIVE_INFINITY : blocked.deadlineMs,
          number: blocked.number,
          request: {
            commands: blocked.commands.map(fromBase64),
            next: blocked.next,
            parts: [],
            bytes: 0,
            sink: null,
          },
        };
        const mine = owed.get(key);
        if (mine !== undefined && mine.number === blocked.number) {
          session.blocked = { ...session.blocked, request: mine.request };
          owed.delete(key);
        }
        session.running = session.blocked.request;
        this.blocked.add(session);
        this.armTimer(session);
      }
    }
    // Served or timed out in the history the snapshot skipped: the answer went nowhere.
    for (const lost of owed.values())
      lost.request.sink?.(
        errorReply(
          "ERR apus: this replica installed a snapshot while the command was blocked here; whether it was served is unknown: check and retry",
        ),
      );
    for (const [dk, ids] of state.waiting) {
      const queue = ids.map((id) => byId.get(id)).filter((session) => session?.blocked != null);
      if (queue.length > 0) this.waiting.set(dk, queue as KvSession[]);
    }
    if ([...this.blocked].some((session) => this.hooks.isLocal(session.connection)))
      this.renewal.arm();
  }

  /**
   * Whether a request of this connection may be answered outside the log (a read index): not
   * while its session is in a transaction, in Pub/Sub mode or blocked.
   */
  allowsReads(connection: ConnectionRef): boolean {
    const session = this.sessions.get(connectionKey(connection));
    return (
      session === undefined ||
      (session.multi === null && !session.subscribed && session.blocked === null)
    );
  }

  /** The database and protocol a read of this connection runs with. */
  readContext(connection: ConnectionRef): { db: number; resp: 2 | 3 } {
    const session = this.sessions.get(connectionKey(connection));
    return { db: session?.db ?? 0, resp: session?.resp ?? 2 };
  }
}

/**
 * A session as plain data (exportState): names, keys and channels as latin1 strings, command
 * arguments as base64.
 */
export interface SessionState {
  readonly origin: number;
  readonly incarnation: number;
  readonly worker: number;
  readonly connId: number;
  readonly id: number;
  readonly createdMs: number;
  readonly lastMs: number;
  readonly lastCommand: string;
  readonly db: number;
  readonly resp: 2 | 3;
  readonly name: string | null;
  readonly multi: readonly (readonly string[])[] | null;
  readonly multiBytes: number;
  readonly multiFailed: boolean;
  readonly watched: readonly (readonly [number, string, boolean])[];
  readonly watchDirty: boolean;
  readonly channels: readonly string[];
  readonly patterns: readonly string[];
  readonly blocks: number;
  readonly blocked: {
    readonly args: readonly string[];
    readonly db: number;
    readonly keys: readonly string[];
    /** -1: never. */
    readonly deadlineMs: number;
    readonly number: number;
    readonly commands: readonly (readonly string[])[];
    readonly next: number;
  } | null;
}

export interface SessionsState {
  readonly nextId: number;
  /** origin, its live incarnation, when that one's first request was taken, when last heard. */
  readonly origins: readonly (readonly [number, number, number, number?])[];
  /** Closed connections and the log time of their close, oldest first. */
  readonly closed?: readonly (readonly [string, number])[];
  readonly closesSincePrune?: number;
  readonly retired: readonly (readonly [number, readonly number[]])[];
  readonly sessions: readonly SessionState[];
  /** Blocked sessions by key, in the order they blocked (by session id). */
  readonly waiting: readonly (readonly [string, readonly number[]])[];
}

/** A command's arguments in the exported state: base64 (JSON would escape control bytes 6×). */
function toBase64(args: readonly Buffer[]): string[] {
  return args.map((arg) => arg.toString("base64"));
}

function fromBase64(args: readonly string[]): Buffer[] {
  return args.map((arg) => Buffer.from(arg, "base64"));
}

/** Whether `arg` is the command name `lowerName` (ASCII, any case). */
function isNamed(arg: Buffer, lowerName: string): boolean {
  return arg.length === lowerName.length && latin1(arg).toLowerCase() === lowerName;
}

const QUEUED = simpleString("QUEUED");
const UNBLOCKED_BY_CLIENT = errorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK");
const NOT_RUN = errorReply(
  "ERR apus: not run: a blocking command before it in the same request was ended by its lease (--block-lease-ms)",
);
const RESP3_NULL = Buffer.from("_\r\n");

const CLIENT_HELP = [
  "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "ID",
  "    Return the ID of the current connection.",
  "INFO",
  "    Return information about the current client connection.",
  "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
  "    Return information about client connections (of every replica).",
  "GETNAME",
  "    Return the name of the current connection.",
  "SETNAME <name>",
  "    Assign the name <name> to the current connection.",
  "UNBLOCK <clientid> [TIMEOUT|ERROR]",
  "    Unblock the specified blocked client.",
  "HELP",
  "    Print this help.",
];
