import { createHash } from "node:crypto";
import { BLOCK_LEASE_MS_DEFAULT } from "../../limits.ts";
import { decodeCommands } from "../command-codec.ts";
import { LeaseRenewal } from "../lease-renewal.ts";
import {
  type AppliedRequest,
  type AppRequest,
  type ConnectionRef,
  connectionKey,
  type ReplicatedApp,
  type ReplySink,
} from "../replicated-app.ts";
import { type CutRequest, isCodecError, type ProgramCodec } from "./codec.ts";
import {
  type CopyCheckpoint,
  type CopyLoopState,
  decodeCheckpoint,
  encodeCheckpoint,
} from "./copy-checkpoint.ts";
import { CopyConnection } from "./copy-connection.ts";
import { memcacheDivergentOutput, memcacheKeys } from "./memcache-codec.ts";
import { withoutTimeout } from "./redis-blocking.ts";
import { lowerName, type RedisCommandTable } from "./redis-command-table.ts";
import {
  classify,
  REFUSED_IN_MULTI,
  type RedisCommandClass,
  rewriteWithTime,
} from "./redis-policy.ts";
import { respRequest } from "./resp-codec.ts";

/**
 * Applied steps between two output digests, which every replica reports for comparison (output
 * checking, src/workers/consensus/output-check.ts): a divergence is found at most this many steps
 * after it shows in a reply.
 */
export const DIGEST_EVERY_STEPS = 100;
/** Output digests kept. */
export const DIGESTS_KEPT = 8;
/** A command the copy has not answered after this long is reported (the apply loop waits). */
export const APPLY_STALL_WARN_MS = 5_000;

/** Steps the loop sends to the copy together at most (commands that commute). */
export const CONCURRENT_STEPS_MAX = 64;
/**
 * Commands that always go alone: they change how the loop reads the connection's later replies
 * (transactions, subscriptions, RESP3) or act on the connection itself.
 */
const ALONE = new Set([
  "auth",
  "multi",
  "exec",
  "discard",
  "reset",
  "watch",
  "unwatch",
  "hello",
  "select",
  "client",
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "quit",
]);

/**
 * Commands that leave state on their connection, which a checkpoint (the program's own files)
 * cannot keep: a connection that sent one blocks checkpoints until it closes (or RESETs). CLIENT
 * only for the subcommands whose state a later reply shows (SETINFO only feeds CLIENT LIST).
 */
const CONNECTION_STATE = new Set(["select", "watch", "auth", "hello", "readonly"]);
const CLIENT_STATE = new Set(["setname", "tracking", "no-evict", "no-touch", "reply"]);

function leavesConnectionState(name: string, args: readonly Buffer[] | undefined): boolean {
  if (CONNECTION_STATE.has(name)) return true;
  if (name !== "client") return false;
  const sub = args?.[0]?.toString("latin1").toLowerCase();
  return sub !== undefined && CLIENT_STATE.has(sub);
}

/** A step that is no client's: the loop's own barriers. */
const BARRIER = {
  connection: { origin: 0, incarnation: 0, worker: 0, connId: 0 },
  key: "",
  nowMs: 0,
  request: null,
  index: 0,
  reply: null,
} as const;

/** The reply of a command pipelined after a blocked command whose lease ran out (endLapsed). */
const NOT_RUN = Buffer.from(
  "-ERR apus: not run: a blocking command before it in the same request was ended by its lease (--block-lease-ms)\r\n",
);

/** Closed connections are remembered this long (log time), pruned every CLOSED_PRUNE_EVERY closes. */
export const CLOSED_KEPT_MS = 60 * 60 * 1000;
const CLOSED_PRUNE_EVERY = 1024;

/** setTimeout's longest delay; a longer blocking timeout (24.8 days) is cut to it. */
const TIMER_MS_MAX = 2 ** 31 - 1;

/** Commands that run at once inside MULTI and end it (RESET discards it too). */
const ENDS_MULTI = new Set(["exec", "discard", "reset"]);

/** Pause between two probes of a blocking command that has neither answered nor blocked yet. */
const PROBE_RETRY_MS = 1;

export interface ProgramAppHooks {
  /** Output the copy sent unasked (Pub/Sub) for a client connection. */
  push(connection: ConnectionRef, bytes: Uint8Array): void;
  /** Put an "unblock" event for this connection in the log (its client's timeout ran out). */
  /** `block` numbers the connection's blocked command, so a late event cannot hit a later one. */
  proposeUnblock(connection: ConnectionRef, block: number): void;
  /** Whether a connection's client is this replica's (it keeps that client's timeouts). */
  isLocal(connection: ConnectionRef): boolean;
  /** Put this replica's run in the log again: the lease of its blocked clients. */
  renewLease(): void;
  /** The copy cannot be trusted or reached any more: the replica must stop. */
  fatal(error: Error): void;
  /** A digest of all output so far, every DIGEST_EVERY_STEPS steps (for output checking). */
  digest(steps: number, digest: string): void;
  /** The copy has not answered one command for APPLY_STALL_WARN_MS: everything waits behind it. */
  stalled(connection: ConnectionRef, command: string): void;
  /** With --checkpoint: run the hook against the copy and return the files it leaves in {dir}. */
  checkpointFiles?(): Promise<ReadonlyMap<string, Uint8Array>>;
  /** With --checkpoint: restart the copy from these files (stop, empty {dir}, write, start). */
  restoreFiles?(files: ReadonlyMap<string, Uint8Array>): Promise<void>;
}

export interface ProgramAppOptions {
  readonly codec: ProgramCodec;
  readonly host: string;
  readonly port: number;
  /**
   * The copy's command table (redis-server): turns on the Redis policy — refusals, the log's time
   * stamp in relative expiries and TIME, blocking commands. null for other programs.
   */
  readonly redisTable: RedisCommandTable | null;
  readonly hooks: ProgramAppHooks;
  /** --block-lease-ms; absent: BLOCK_LEASE_MS_DEFAULT. */
  readonly blockLeaseMs?: number;
  /** The program's process for /status (pid, state, exits), from its supervisor. */
  readonly describeProgram?: () => unknown;
}

/** The replies of one request (its pipelined commands), put together in order. */
class RequestReply {
  private readonly parts: (Uint8Array | undefined)[];
  private remaining: number;
  private readonly sink: (reply: Uint8Array) => void;

  constructor(commands: number, sink: (reply: Uint8Array) => void) {
    this.parts = new Array(commands);
    this.remaining = commands;
    this.sink = sink;
  }

  complete(index: number, bytes: Uint8Array): void {
    this.parts[index] = bytes;
    if (--this.remaining > 0) return;
    const parts = this.parts as Uint8Array[];
    this.sink(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }
}

/** One unit of the apply loop: a command of a request, or a connection event. */
interface Step {
  readonly connection: ConnectionRef;
  readonly key: string;
  /** Also the loop's own barriers: take a checkpoint here, or restore one here. */
  readonly event: "data" | "close" | "unblock" | "checkpoint" | "restore";
  /** checkpoint: where the result goes; restore: what to restore. */
  readonly checkpointDone?: (data: Uint8Array | null) => void;
  readonly checkpointLoop?: CopyLoopState;
  /** unblock: which of the connection's blocked commands (Copy.blocks when it blocked). */
  readonly block?: number;
  readonly restoreFrom?: CopyCheckpoint;
  readonly nowMs: number;
  /** When the origin took the request (the log header's, origin's clock); absent: nowMs. */
  readonly takenMs?: number;
  /** data: which applied request it belongs to (the same number for a request's commands). */
  readonly requestNo?: number;
  /** data: the command as the codec cut it, its index in its request, and where replies go. */
  readonly request: CutRequest | null;
  readonly index: number;
  readonly reply: RequestReply | null;
}

/** A command the loop may send beside others (concurrentWith). */
interface Concurrent {
  readonly step: Step;
  readonly copy: Copy;
  readonly keys: readonly Buffer[] | "all";
  readonly divergent: boolean;
}

/** Whether two commands' keys may overlap ("all": anything). */
function sharesKeys(a: readonly Buffer[] | "all", b: readonly Buffer[] | "all"): boolean {
  if (a === "all" || b === "all") return true;
  if (a.length === 0 || b.length === 0) return false;
  const names = new Set(a.map((key) => key.toString("latin1")));
  return b.some((key) => names.has(key.toString("latin1")));
}

/** A client connection's loopback connection and its state in the apply loop. */
interface Copy {
  readonly connection: ConnectionRef;
  readonly link: CopyConnection;
  /**
   * A blocking command waits in the copy (BLPOP on an empty list): its step, and its replies to
   * come. They are taken (hashed, relayed) only where the loop finds it woken, never when they
   * happen to arrive, so the digest sees every command in the same order on every copy.
   */
  blocked: {
    readonly step: Step;
    readonly replies: Promise<Uint8Array[]>;
    readonly divergent: boolean;
  } | null;
  /** Steps that arrived while blocked: they run, in order, right where it is unblocked. */
  readonly parked: Step[];
  /** Inside MULTI (Redis): commands are queued, not run; `multiDivergent`: EXEC's reply is replica-specific. */
  inMulti: boolean;
  /** It sent a command that leaves state on its connection (SELECT, WATCH, AUTH, …): no checkpoint while open. */
  stateful: boolean;
  multiDivergent: boolean;
  /** The client's timeout of the blocked command, at its origin. */
  unblockTimer: NodeJS.Timeout | null;
  /** Commands of this connection that blocked so far (the same count on every copy). */
  blocks: number;
}

/**
 * A copy of an unmodified server program as the replicated application (`--app`). Every
 * replica, the leader too, sends each chosen request to its own copy, over one loopback
 * connection per client connection, in log order, one command at a time: a command goes out only
 * once the one before it (on any connection) was answered, so the copy sees the same
 * interleaving everywhere. The origin's copy's reply goes to the client; every copy's reply is
 * hashed into a digest of all output, in log order (output checking compares them).
 *
 * A blocking command (Redis's BLPOP …) is sent with its timeout taken out (redis-blocking.ts);
 * the loop asks the copy (`CLIENT LIST ID`) until the command either answered or is blocked, then
 * goes on; later commands of that connection wait beside it. After every command while something
 * is blocked, the loop asks which blocked commands it woke, collects their replies and runs what
 * waited behind them, before the next command: the wake-up happens at the same log position on
 * every copy.
 */
export class ProgramApp implements ReplicatedApp {
  readonly kind = "program";
  private readonly options: ProgramAppOptions;
  private readonly copies = new Map<string, Copy>();
  /**
   * Connections closed in the log (of origins' current incarnations), and origin incarnations
   * retired by a restart: a late entry of either is dropped.
   */
  private readonly closed = new Map<string, number>();
  private readonly retired = new Set<string>();
  /** Every connection seen, by origin: an origin that restarted (new incarnation) closes its old ones. */
  private readonly incarnations = new Map<number, number>();
  private readonly keysByOrigin = new Map<number, Set<string>>();
  private readonly queue: Step[] = [];
  private head = 0;
  private running = false;
  private control: CopyConnection | null = null;
  private readonly blocked = new Set<Copy>();
  /**
   * "origin.incarnation" → log time of that run's latest step the loop took: the lease of its
   * blocked commands (as the embedded store's, kv-sessions.ts). Loop-side, in log order: the same
   * on every copy. A replica that starts from a checkpoint has none, but a command only blocks
   * at a step of its own run, which sets it.
   */
  private readonly heardMs = new Map<string, number>();
  /** Requests applied so far: numbers a request's steps alike (Step.requestNo). */
  private requestsApplied = 0;
  private readonly leaseMs: number;
  /** Renews the lease while this replica has clients blocked. */
  private readonly renewal: LeaseRenewal;
  /** The output digest so far: each step's output chained onto the one before (SHA-256). */
  private chain: Buffer = Buffer.alloc(32);
  private readonly digests: { steps: number; digest: string }[] = [];
  private stepsDone = 0;
  private failed = false;
  /** The step the loop waits on, since when, and whether that wait was reported. */
  private current: { readonly step: Step; readonly sinceMs: number; reported: boolean } | null =
    null;
  private readonly stallTimer: NodeJS.Timeout;

  constructor(options: ProgramAppOptions) {
    this.options = options;
    this.leaseMs = options.blockLeaseMs ?? BLOCK_LEASE_MS_DEFAULT;
    this.renewal = new LeaseRenewal(
      this.leaseMs,
      () => [...this.blocked].some((copy) => options.hooks.isLocal(copy.connection)),
      () => options.hooks.renewLease(),
    );
    if (options.hooks.checkpointFiles !== undefined) {
      this.checkpoint = (prefix = new Uint8Array(0)) =>
        new Promise<Uint8Array | null>((resolve) => {
          // The apply side runs ahead of the loop: its state is taken now, at the barrier's
          // position in the log, not when the loop reaches the barrier.
          const loop = this.loopState();
          this.enqueue({
            ...BARRIER,
            event: "checkpoint",
            checkpointDone: resolve,
            checkpointLoop: loop,
          });
        }).then((data) => (data === null ? null : Buffer.concat([prefix, data])));
    }
    this.stallTimer = setInterval(() => this.watchForStall(), 1000);
    this.stallTimer.unref();
  }

  apply(request: AppRequest, reply: ReplySink): AppliedRequest {
    const { connection, nowMs } = request;
    const takenMs = request.takenMs ?? nowMs;
    const key = connectionKey(connection);
    this.closeEarlierIncarnation(connection, nowMs);
    // A request of a connection already closed, or of an origin process that has since restarted,
    // chosen late (an old leader's vote recovered by a new one): its client is gone and never got
    // an answer. It is dropped, the same way on every replica, rather than reopening a connection
    // nobody would close.
    if (
      this.closed.has(key) ||
      this.retired.has(`${connection.origin}.${connection.incarnation}`)
    ) {
      return { commands: 0, malformed: false };
    }
    if (request.event !== "data") {
      // An unblock event names the blocked command it is for (its number on the connection).
      const named = decodeCommands(request.body, request.bodyOffset)?.[0]?.[0];
      this.enqueue({
        connection,
        key,
        event: request.event,
        nowMs,
        takenMs,
        request: null,
        index: 0,
        reply: null,
        block: named === undefined ? 0 : Number(named.toString("latin1")),
      });
      // Connection 0 never exists: its close is the origin's run in the log (its lease renewal).
      if (request.event === "close" && connection.connId !== 0) {
        this.keysByOrigin.get(connection.origin)?.delete(key);
        this.closed.set(key, nowMs);
        if (this.closed.size % CLOSED_PRUNE_EVERY === 0) this.pruneClosed(nowMs);
      }
      return { commands: 0, malformed: false };
    }
    const commands = decodeCommands(request.body, request.bodyOffset);
    if (commands === null) return { commands: 0, malformed: true };
    let origin = this.keysByOrigin.get(connection.origin);
    if (origin === undefined) {
      origin = new Set();
      this.keysByOrigin.set(connection.origin, origin);
    }
    origin.add(key);
    const cut = commands.map((args) => this.cut(args));
    if (cut.some((c) => c === null)) return { commands: 0, malformed: true };
    const replies = reply === null ? null : new RequestReply(cut.length, reply);
    const requestNo = ++this.requestsApplied;
    cut.forEach((request, index) => {
      this.enqueue({
        connection,
        key,
        event: "data",
        nowMs,
        takenMs,
        requestNo,
        request,
        index,
        reply: replies,
      });
    });
    return { commands: cut.length, malformed: false };
  }

  /** The codec's view of one command: RESP args as a multibulk; other protocols' bytes re-cut. */
  /**
   * The codec's view of one logged command: RESP args as a multibulk; another protocol's request
   * bytes (one whole request, as the connection worker cut it) cut again by a fresh cutter. Its
   * bytes are already canonical: a quiet memcached request carries its `mn` fence, which the
   * second cut fences once more; only the first request is taken, so the logged fence is dropped.
   */
  private cut(args: readonly Buffer[]): CutRequest | null {
    if (this.options.codec.name === "resp") return args.length > 0 ? respRequest(args) : null;
    if (args.length !== 1) return null;
    const cutter = this.options.codec.requests();
    cutter.push(args[0]!);
    const request = cutter.next();
    if (request === null || isCodecError(request)) return null;
    return request;
  }

  /**
   * Forget connections closed more than CLOSED_KEPT_MS of log time ago: a request of theirs that
   * late was given up at its origin long before (its --request-timeout-ms is at most 10 min).
   */
  private pruneClosed(nowMs: number): void {
    for (const [key, atMs] of this.closed)
      if (atMs < nowMs - CLOSED_KEPT_MS) this.closed.delete(key);
  }

  /** An origin's new incarnation (it restarted): its earlier clients are gone; close them here. */
  private closeEarlierIncarnation(connection: ConnectionRef, nowMs: number): void {
    const known = this.incarnations.get(connection.origin);
    if (known === undefined || known === connection.incarnation) {
      this.incarnations.set(connection.origin, connection.incarnation);
      return;
    }
    // Incarnations are random, not ordered: one seen before is a late entry of a retired one.
    if (this.retired.has(`${connection.origin}.${connection.incarnation}`)) return;
    this.retired.add(`${connection.origin}.${known}`);
    this.incarnations.set(connection.origin, connection.incarnation);
    for (const closed of [...this.closed.keys()])
      if (closed.startsWith(`${connection.origin}.${known}.`)) this.closed.delete(closed);
    const keys = this.keysByOrigin.get(connection.origin);
    if (keys === undefined) return;
    for (const key of [...keys]) {
      const [origin, incarnation, worker, connId] = key.split(".").map(Number);
      if (incarnation === connection.incarnation) continue;
      const old = { origin: origin!, incarnation: incarnation!, worker: worker!, connId: connId! };
      this.enqueue({
        connection: old,
        key,
        event: "close",
        nowMs,
        request: null,
        index: 0,
        reply: null,
      });
      keys.delete(key);
    }
  }

  endBatch(): void {}

  /** A copy's state cannot be read out: the runtime keeps the whole log (no compaction). */
  /** A copy's state is never read out synchronously: see checkpoint(). */
  snapshot(): null {
    return null;
  }

  /**
   * With a checkpoint hook (--checkpoint): a barrier in the apply loop at the current end of the
   * log; when the loop reaches it, and no open connection holds state a checkpoint cannot keep,
   * the hook runs and the files it leaves, with the loop's own state, are the checkpoint.
   */
  readonly checkpoint?: (prefix?: Uint8Array) => Promise<Uint8Array | null>;

  /** Install a checkpoint (a replica behind the leader's compaction, or restarting from one). */
  restore(data: Uint8Array): void {
    const checkpoint = decodeCheckpoint(data);
    // Apply-side state, so later entries are judged as on a replica that saw the whole log.
    this.incarnations.clear();
    for (const [origin, incarnation] of checkpoint.loop.incarnations)
      this.incarnations.set(origin, incarnation);
    this.retired.clear();
    for (const r of checkpoint.loop.retired) this.retired.add(r);
    this.closed.clear();
    for (const [key, atMs] of checkpoint.loop.closed) this.closed.set(key, atMs);
    this.keysByOrigin.clear();
    for (const [origin, keys] of checkpoint.loop.keysByOrigin)
      this.keysByOrigin.set(origin, new Set(keys));
    this.enqueue({ ...BARRIER, event: "restore", restoreFrom: checkpoint });
  }

  keyCount(): null {
    return null;
  }

  describe(): Record<string, unknown> {
    return {
      kind: this.kind,
      protocol: this.options.codec.name,
      policy: this.options.redisTable === null ? "none" : "redis",
      program: this.options.describeProgram?.() ?? null,
      port: this.options.port,
      appliedSteps: this.stepsDone,
      queuedSteps: this.queue.length - this.head,
      connections: this.copies.size,
      blocked: this.blocked.size,
      digests: this.digests.slice(),
    };
  }

  /** Stop the loop and close the loopback connections (the copy itself is stopped by its owner). */
  close(): void {
    clearInterval(this.stallTimer);
    this.renewal.stop();
    this.failed = true;
    for (const copy of this.copies.values()) copy.link.close();
    this.control?.close();
  }

  // ---- the apply loop ----------------------------------------------------------------------

  private enqueue(step: Step): void {
    this.queue.push(step);
    if (this.running || this.failed) return;
    this.running = true;
    this.drive().then(
      () => {
        this.running = false;
      },
      (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))),
    );
  }

  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.options.hooks.fatal(error);
  }

  private take(): Step {
    const step = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as Step; // let it be collected
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return step;
  }

  private async drive(): Promise<void> {
    while (this.head < this.queue.length && !this.failed) {
      const step = this.take();
      this.current = { step, sinceMs: performance.now(), reported: false };
      this.hear(step);
      if (step.event === "data" && this.blocked.size > 0) await this.endLapsed(step.nowMs);
      const batch = this.concurrentWith(step);
      if (batch === null) await this.run(step);
      else {
        await this.runTogether(batch);
        for (const together of batch) this.hear(together.step);
      }
      if (this.blocked.size > 0) await this.wakeUnblocked();
      this.current = null;
    }
  }

  /** The loop waits for the copy: say so when it waits long, since every client waits behind it. */
  private watchForStall(): void {
    const current = this.current;
    if (current === null || current.reported) return;
    if (performance.now() - current.sinceMs < APPLY_STALL_WARN_MS) return;
    current.reported = true;
    const { step } = current;
    this.options.hooks.stalled(step.connection, step.request?.name ?? step.event);
  }

  /**
   * Commands that may go to the copy together with `first` (null when it must go alone): the
   * steps right after it in the log, up to CONCURRENT_STEPS_MAX, as long as each commutes with
   * every other connection's command among them (disjoint keys: the Redis policy's key table, or
   * memcached's key arguments) or follows its own connection's (a connection's commands reach the
   * copy in order anyway). Their replies are taken in log order. Only while nothing is blocked:
   * where a woken command's waiting steps run must not depend on how many steps were queued.
   */
  private concurrentWith(first: Step): Concurrent[] | null {
    if (this.blocked.size > 0) return null;
    const head = this.concurrentCandidate(first);
    if (head === null) return null;
    const batch = [head];
    while (batch.length < CONCURRENT_STEPS_MAX && this.head < this.queue.length) {
      const next = this.concurrentCandidate(this.queue[this.head]!);
      if (next === null) break;
      const conflicts = batch.some(
        (member) => member.copy !== next.copy && sharesKeys(member.keys, next.keys),
      );
      if (conflicts) break;
      batch.push(next);
      this.take();
    }
    return batch.length > 1 ? batch : null;
  }

  /** A step that may run beside others: a plain command on an open, idle connection. */
  private concurrentCandidate(step: Step): Concurrent | null {
    if (step.event !== "data" || step.request?.args === undefined) return null;
    const copy = this.copies.get(step.key);
    if (copy === undefined || copy.blocked !== null || copy.inMulti) return null;
    const request = step.request;
    if (this.options.codec.name === "memcache") {
      const keys = memcacheKeys(request);
      if (keys === "all") return null;
      return { step, copy, keys, divergent: memcacheDivergentOutput(request) };
    }
    const table = this.options.redisTable;
    if (table === null || ALONE.has(request.name)) return null;
    const cls = classify(table, [Buffer.from(request.name), ...request.args!]);
    if (cls.policy.kind !== "replicate" || cls.blocking) return null;
    return { step, copy, keys: cls.keys, divergent: cls.policy.divergentOutput };
  }

  /** Send a batch (concurrentWith) at once; take the replies in log order. */
  private async runTogether(batch: readonly Concurrent[]): Promise<void> {
    const answers = batch.map(({ step, copy }) => copy.link.send(step.request!));
    for (let i = 0; i < batch.length; i++) {
      const { step, divergent } = batch[i]!;
      this.finish(step, await answers[i]!, divergent);
    }
  }

  private async run(step: Step): Promise<void> {
    if (step.event === "checkpoint") {
      step.checkpointDone!(await this.takeCheckpoint(step.checkpointLoop!));
      return;
    }
    if (step.event === "restore") {
      await this.restoreCheckpoint(step.restoreFrom!);
      return;
    }
    const existing = this.copies.get(step.key);
    if (step.event === "close") {
      if (existing === undefined) return;
      this.copies.delete(step.key);
      this.blocked.delete(existing);
      if (existing.unblockTimer !== null) clearTimeout(existing.unblockTimer);
      existing.link.close();
      return;
    }
    if (step.event === "unblock") {
      // Answered meanwhile, gone, or another blocked command now (the event was for an earlier one).
      if (existing?.blocked == null || existing.blocks !== step.block) return;
      // Answers the blocked command exactly as its timeout would, at this log position everywhere.
      await this.command(["CLIENT", "UNBLOCK", String(existing.link.clientId), "TIMEOUT"]);
      await this.release(existing);
      return;
    }
    const copy = existing ?? (await this.open(step.connection, step.key));
    if (copy.blocked !== null) {
      copy.parked.push(step);
      return;
    }
    await this.execute(copy, step);
  }

  private async open(connection: ConnectionRef, key: string): Promise<Copy> {
    const link = await this.connect(connection);
    const copy: Copy = {
      connection,
      link,
      blocked: null,
      parked: [],
      inMulti: false,
      multiDivergent: false,
      stateful: false,
      unblockTimer: null,
      blocks: 0,
    };
    this.copies.set(key, copy);
    if (this.options.redisTable !== null) link.clientId = await this.clientIdOf(link);
    return copy;
  }

  /** A loopback connection to the copy, for a client connection (or null: the loop's own). */
  private connect(connection: ConnectionRef | null): Promise<CopyConnection> {
    return CopyConnection.open(this.options.port, this.options.host, this.options.codec, {
      onPush: (bytes) => {
        if (connection !== null) this.options.hooks.push(connection, bytes);
      },
      onBroken: (error) =>
        this.fail(
          new Error(`the program broke its protocol on a loopback connection: ${error.message}`),
        ),
    });
  }

  private async clientIdOf(link: CopyConnection): Promise<number> {
    const [reply] = await link.send(respRequest([Buffer.from("CLIENT"), Buffer.from("ID")]));
    const text = Buffer.from(reply ?? []).toString("latin1");
    const match = /^:(\d+)\r\n$/.exec(text);
    if (match === null) throw new Error(`CLIENT ID answered ${JSON.stringify(text)}`);
    return Number(match[1]);
  }

  /** A command of the apply loop's own, on its control connection (RESP programs). */
  private async command(words: readonly string[]): Promise<Uint8Array> {
    if (this.control === null) this.control = await this.connect(null);
    const [reply] = await this.control.send(respRequest(words.map((w) => Buffer.from(w))));
    return reply ?? new Uint8Array(0);
  }

  private async execute(copy: Copy, step: Step): Promise<void> {
    let request = step.request!;
    let divergent = this.options.codec.name === "memcache" && memcacheDivergentOutput(request);
    let timeoutMs = 0;
    let blocking = false;
    const table = this.options.redisTable;
    if (table !== null && request.args !== undefined) {
      const args = [Buffer.from(request.name), ...request.args];
      const cls: RedisCommandClass = classify(table, args);
      if (cls.policy.kind === "refuse") {
        // Inside MULTI, a command Redis rejects when it is queued makes EXEC fail (EXECABORT):
        // the copy is sent one it rejects so, and the client gets the refusal's reason.
        if (copy.inMulti) await copy.link.send(respRequest([REFUSED_IN_MULTI]));
        this.finish(step, [Buffer.from(cls.policy.error, "latin1")], false);
        return;
      }
      if (cls.policy.kind === "replicate") divergent = cls.policy.divergentOutput;
      let sent: readonly Buffer[] = args;
      const name = request.name;
      if (copy.inMulti && !ENDS_MULTI.has(name)) {
        // Queued, not run: TIME goes as it is (its reply belongs in EXEC's), nothing blocks, and
        // EXEC's reply is as replica-specific as the most specific command it holds.
        if (divergent || name === "time") copy.multiDivergent = true;
        if (cls.policy.kind === "rewrite" && name !== "time") {
          const rewritten = rewriteWithTime(args, Math.floor(step.nowMs));
          if (rewritten.kind === "command") sent = rewritten.args;
        }
        request = sent !== args ? respRequest(sent) : request;
        this.finish(step, await copy.link.send(request), divergent);
        return;
      }
      if (name === "exec" || name === "discard") divergent = copy.multiDivergent;
      if (cls.policy.kind === "rewrite") {
        const rewritten = rewriteWithTime(args, Math.floor(step.nowMs));
        if (rewritten.kind === "reply") {
          this.finish(step, [rewritten.reply], false);
          return;
        }
        sent = rewritten.args;
      }
      if (cls.blocking) {
        blocking = true;
        const unbounded = withoutTimeout(lowerName(args[0]!), sent);
        sent = unbounded.args;
        timeoutMs = unbounded.timeoutMs;
      }
      request = this.withReplyCount(copy, sent !== args ? respRequest(sent) : request);
    }
    const answered = copy.link.send(request);
    if (!blocking) {
      const replies = await answered;
      this.followTransaction(copy, request, replies);
      this.finish(step, replies, divergent);
      return;
    }
    let done = false;
    const replies = answered.then((r) => {
      done = true;
      return r;
    });
    if (await this.blocksWithoutAnswer(copy, () => done)) {
      copy.blocked = { step, replies, divergent };
      copy.blocks++;
      this.blocked.add(copy);
      const local = this.options.hooks.isLocal(copy.connection);
      if (local) this.renewal.arm();
      // This replica's client, with nobody to answer here: the replica gave up on the request
      // before it was chosen (the client had its error). End it everywhere before it takes data.
      if (local && step.reply === null)
        this.options.hooks.proposeUnblock(copy.connection, copy.blocks);
      else if (timeoutMs > 0 && local) {
        const blockedAt = copy.blocked;
        copy.unblockTimer = setTimeout(
          () => {
            copy.unblockTimer = null;
            if (copy.blocked === blockedAt)
              this.options.hooks.proposeUnblock(copy.connection, copy.blocks);
          },
          Math.min(timeoutMs, TIMER_MS_MAX),
        );
        copy.unblockTimer.unref();
      }
      return;
    }
    this.finish(step, await replies, divergent);
  }

  /** A step of a connection is word from its origin's run (the loop's order: every copy agrees). */
  private hear(step: Step): void {
    if (step.event === "checkpoint" || step.event === "restore") return;
    const run = `${step.connection.origin}.${step.connection.incarnation}`;
    // When the origin took it (capped by the log's clock): a dead replica's copy chosen late
    // must not renew its lease.
    const heard = Math.min(step.nowMs, step.takenMs ?? step.nowMs);
    this.heardMs.set(run, Math.max(this.heardMs.get(run) ?? heard, heard));
  }

  /**
   * Before a command that may serve them: blocked commands whose origin has not been heard from
   * for the lease (it crashed, or is cut off) end with the program's UNBLOCKED error instead of
   * taking data for a client that may be gone; in the order they blocked.
   */
  private async endLapsed(nowMs: number): Promise<void> {
    for (const copy of [...this.blocked]) {
      const { origin, incarnation } = copy.connection;
      const heard = this.heardMs.get(`${origin}.${incarnation}`);
      if (heard === undefined || nowMs < heard + this.leaseMs || copy.blocked === null) continue;
      await this.command(["CLIENT", "UNBLOCK", String(copy.link.clientId), "ERROR"]);
      // The commands pipelined after it in the same request are not run: its client may be gone.
      await this.release(copy, copy.blocked.step.requestNo);
    }
  }

  /** At a checkpoint barrier: the checkpoint, or null when an open connection holds state. */
  /** What the apply side knows of connections, for a checkpoint (copied: it changes on). */
  private loopState(): CopyLoopState {
    return {
      incarnations: [...this.incarnations],
      retired: [...this.retired],
      closed: [...this.closed],
      keysByOrigin: [...this.keysByOrigin].map(([origin, keys]) => [origin, [...keys]]),
    };
  }

  private async takeCheckpoint(loop: CopyLoopState): Promise<Uint8Array | null> {
    for (const copy of this.copies.values())
      if (copy.stateful || copy.blocked !== null || copy.inMulti || copy.link.subscribed)
        return null;
    const files = await this.options.hooks.checkpointFiles!();
    return encodeCheckpoint({
      steps: this.stepsDone,
      chain: this.chain,
      loop,
      files,
    });
  }

  /** At a restore barrier: every loopback connection goes, the copy restarts from the files. */
  private async restoreCheckpoint(checkpoint: CopyCheckpoint): Promise<void> {
    // Whatever waits in the old copy is answered now: its client must not wait for ever.
    const gone = Buffer.from("-ERR the replica restarted its copy from a checkpoint; retry\r\n");
    for (const copy of this.copies.values()) {
      if (copy.blocked !== null) copy.blocked.step.reply?.complete(copy.blocked.step.index, gone);
      for (const parked of copy.parked) parked.reply?.complete(parked.index, gone);
      if (copy.unblockTimer !== null) clearTimeout(copy.unblockTimer);
      copy.link.close();
    }
    this.copies.clear();
    this.blocked.clear();
    this.control?.close();
    this.control = null;
    const restore = this.options.hooks.restoreFiles;
    if (restore === undefined)
      throw new Error(
        "this replica received a checkpoint of the program's copy but has no --checkpoint: start every replica with the same --app and --checkpoint",
      );
    await restore(checkpoint.files);
    this.stepsDone = checkpoint.steps;
    this.chain = Buffer.from(checkpoint.chain);
  }

  /** MULTI opens a transaction on this connection (when the copy said +OK); EXEC/DISCARD end it. */
  private followTransaction(copy: Copy, request: CutRequest, replies: readonly Uint8Array[]): void {
    const name = request.name;
    if (name === "reset") copy.stateful = false;
    else if (leavesConnectionState(name, request.args)) copy.stateful = true;
    if (name === "multi" && replies[0]?.[0] === 0x2b /* + */) {
      copy.inMulti = true;
      copy.multiDivergent = false;
    } else if (ENDS_MULTI.has(name)) {
      copy.inMulti = false;
    }
    // RESET also ends every subscription of the connection.
    if (name === "reset") {
      copy.link.channels.clear();
      copy.link.patterns.clear();
      copy.link.shardChannels.clear();
    }
  }

  /** Bare UNSUBSCRIBE/PUNSUBSCRIBE answer once per current subscription (at least once). */
  private withReplyCount(copy: Copy, request: CutRequest): CutRequest {
    if ((request.args?.length ?? 0) > 0) return request;
    if (request.name === "unsubscribe")
      return { ...request, replies: Math.max(1, copy.link.channels.size) };
    if (request.name === "punsubscribe")
      return { ...request, replies: Math.max(1, copy.link.patterns.size) };
    if (request.name === "sunsubscribe")
      return { ...request, replies: Math.max(1, copy.link.shardChannels.size) };
    return request;
  }

  /** Ask the copy until the command answered (false) or is blocked waiting (true). */
  private async blocksWithoutAnswer(copy: Copy, answered: () => boolean): Promise<boolean> {
    for (;;) {
      if (answered()) return false;
      const flags = await this.clientFlags([copy.link.clientId]);
      if (answered()) return false;
      if (flags.get(copy.link.clientId)?.includes("b") === true) return true;
      await new Promise((resolve) => setTimeout(resolve, PROBE_RETRY_MS));
    }
  }

  /** `flags=` of each client id, from `CLIENT LIST ID …`. */
  private async clientFlags(ids: readonly number[]): Promise<Map<number, string>> {
    const reply = Buffer.from(await this.command(["CLIENT", "LIST", "ID", ...ids.map(String)]));
    const flags = new Map<number, string>();
    for (const line of reply.toString("latin1").split("\n")) {
      const id = /(?:^|\s)id=(\d+)/.exec(line);
      const f = /(?:^|\s)flags=(\S*)/.exec(line);
      if (id !== null && f !== null) flags.set(Number(id[1]), f[1]!);
    }
    return flags;
  }

  /**
   * After a command, while something is blocked: which blocked commands did it wake? Collect
   * their replies and run what waited behind them, before the next command of the log.
   */
  private async wakeUnblocked(): Promise<void> {
    for (;;) {
      const blocked = [...this.blocked];
      if (blocked.length === 0) return;
      const flags = await this.clientFlags(blocked.map((c) => c.link.clientId));
      const woken = blocked.filter((c) => !(flags.get(c.link.clientId)?.includes("b") ?? false));
      if (woken.length === 0) return;
      for (const copy of woken) await this.release(copy);
    }
  }

  /**
   * A blocked command was woken: take its replies, then run the steps that waited behind it,
   * except those of request `abandoned` (its blocked command's lease ran out), which answer an error.
   */
  private async release(copy: Copy, abandoned?: number): Promise<void> {
    const blocked = copy.blocked;
    if (blocked === null) return;
    if (copy.unblockTimer !== null) clearTimeout(copy.unblockTimer);
    copy.unblockTimer = null;
    this.finish(blocked.step, await blocked.replies, blocked.divergent);
    copy.blocked = null;
    this.blocked.delete(copy);
    while (copy.parked.length > 0 && copy.blocked === null && !this.failed) {
      const step = copy.parked.shift()!;
      if (abandoned !== undefined && step.requestNo === abandoned)
        this.finish(step, [NOT_RUN], false);
      else await this.execute(copy, step);
    }
  }

  /** A command's replies are in: hash them (unless replica-specific), hand them to the request. */
  private finish(step: Step, replies: readonly Uint8Array[], divergent: boolean): void {
    const bytes = replies.length === 1 ? replies[0]! : Buffer.concat(replies);
    this.stepsDone++;
    // Unframed output (--protocol raw) is cut where reads happened to end, differently on each
    // copy: it cannot be compared, so raw mode has no output checking.
    if (!this.options.codec.framesReplies) {
      step.reply?.complete(step.index, bytes);
      return;
    }
    this.chain = createHash("sha256")
      .update(this.chain)
      .update(step.key)
      .update(divergent ? "\0divergent" : bytes)
      .digest();
    if (this.stepsDone % DIGEST_EVERY_STEPS === 0) {
      const digest = this.chain.toString("hex", 0, 8);
      this.digests.push({ steps: this.stepsDone, digest });
      if (this.digests.length > DIGESTS_KEPT) this.digests.shift();
      this.options.hooks.digest(this.stepsDone, digest);
    }
    step.reply?.complete(step.index, bytes);
  }
}
