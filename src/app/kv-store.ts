/**
 * The embedded Redis-protocol key-value store: the default replicated state machine. Every
 * replica executes the same commands in the same order and must produce the same replies and
 * state, so nothing here reads a clock, draws a random number or depends on anything but the
 * commands and `context.nowMs` (the leader's timestamp on the log batch).
 */
import { ApusError, assert } from "../core/errors.ts";
import { REPLY_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_DEFAULT } from "../limits.ts";
import { type CommandSpec, keyIndexes } from "./kv-command-spec.ts";
import { arityFits, findCommand, toBuffer } from "./kv-command-table.ts";
import { KvDatabases, type KvSnapshotJob } from "./kv-databases.ts";
import type { Keyspace } from "./kv-keyspace.ts";
import type { ServerSettings } from "./kv-server.ts";
import { BLOCKED, type ExecContext, latin1, wrongArity } from "./kv-shared.ts";
import { errorReply } from "./resp.ts";

export type { ExecContext } from "./kv-shared.ts";

export interface KvStoreOptions {
  /**
   * Largest string value, hash value, list element, set or sorted-set member, bytes (SET, APPEND,
   * HSET, LPUSH, SADD, ZADD…); larger ones get an error reply. Default 8 MiB (the CLI's
   * --max-value-bytes).
   */
  readonly valueBytesMax: number;
  /**
   * Largest reply, bytes, of a command whose reply is built from stored data (GET, MGET, GETSET,
   * SET … GET, HGET, HGETALL, LPOP/RPOP with a count, LRANGE, SMEMBERS, SPOP, SRANDMEMBER,
   * ZRANGE and its variants, ZMSCORE, ZPOPMIN/ZPOPMAX, KEYS, SCAN). The command
   * totals the reply's RESP encoding before building it and answers `-ERR reply too large (N
   * bytes, limit M set by --max-reply-bytes)` instead, changing nothing, when it would pass this:
   * a small request (MGET of one big key many times) must not make every replica allocate without
   * bound. Depends only on the state and the command, so all replicas refuse alike. Default
   * REPLY_BYTES_MAX_DEFAULT (64 MiB).
   */
  readonly replyBytesMax: number;
  /**
   * Longest glob pattern (KEYS, SCAN MATCH), bytes; a longer one gets `-ERR pattern too long (N
   * bytes, limit M)` before it is compiled. Default PATTERN_BYTES_MAX_DEFAULT (4096).
   */
  readonly patternBytesMax: number;
  /**
   * --max-memory: once `usedBytes` (the store's own accounting of its keys and values, not the
   * process's heap) is over this, a command flagged `denyoom` (one that may add data: SET, LPUSH,
   * HSET, …) gets Redis's -OOM before it runs; reads and removals still work. No eviction. 0: no
   * limit (the default). usedBytes is the same on every replica, so all refuse the same commands.
   */
  readonly memoryBytesMax: number;
  /** What the runtime reports for CONFIG GET and INFO (port, maxclients, …); absent: nothing. */
  readonly server?: ServerSettings;
}

/** Defaults of `valueBytesMax` (8 MiB) and `replyBytesMax` (64 MiB): see src/limits.ts. */
export { REPLY_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_DEFAULT };
/** Default `patternBytesMax`: 4096 bytes, far beyond any real KEYS/SCAN pattern. */
export const PATTERN_BYTES_MAX_DEFAULT = 4096;

export const KV_STORE_DEFAULTS: KvStoreOptions = Object.freeze({
  valueBytesMax: VALUE_BYTES_MAX_DEFAULT,
  replyBytesMax: REPLY_BYTES_MAX_DEFAULT,
  patternBytesMax: PATTERN_BYTES_MAX_DEFAULT,
  memoryBytesMax: 0,
});

export type { CommandKind } from "./kv-command-spec.ts";
export {
  commandKeys,
  commandKind,
  hasValueOver,
  isAdminCommand,
  isReadOnlyRequest,
} from "./kv-command-table.ts";

/** Redis 7's reply to an unknown command: the name and up to 128 characters of arguments. */
/** The first byte of an error reply. */
const MINUS = 0x2d;

export function unknownCommand(args: readonly Buffer[]): Buffer {
  let quoted = "";
  for (let i = 1; i < args.length && quoted.length < 128; i++) {
    quoted += `'${latin1(args[i]!).slice(0, 128 - quoted.length)}' `;
  }
  const name = latin1(args[0]!).slice(0, 128);
  return errorReply(`ERR unknown command '${name}', with args beginning with: ${quoted}`);
}

/** Redis's refusal of a denyoom command over maxmemory (--max-memory). */
export const ERR_OOM = errorReply("OOM command not allowed when used memory > 'maxmemory'.");

function validateOptions(options: KvStoreOptions): void {
  if (!Number.isSafeInteger(options.memoryBytesMax) || options.memoryBytesMax < 0)
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `invalid memoryBytesMax: ${options.memoryBytesMax}; use a whole number of bytes, 0 for no limit`,
    );
  for (const name of ["valueBytesMax", "replyBytesMax", "patternBytesMax"] as const) {
    const value = options[name];
    if (!Number.isSafeInteger(value) || value < 1 || value > 2 ** 31 - 1) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        `invalid ${name}: ${value}; use an integer from 1 to ${2 ** 31 - 1}`,
      );
    }
  }
}

export class KvStore {
  private readonly databases: KvDatabases;
  /** --max-memory (KvStoreOptions.memoryBytesMax); 0: no limit. */
  private readonly memoryBytesMax: number;
  /** What CONFIG GET and INFO report: the runtime's settings and memoryBytesMax. */
  private readonly server: ServerSettings;
  /** The log's clock as the store last saw it: every database's clock follows it. */
  private clock = 0;

  constructor(options: Partial<KvStoreOptions> = {}, databases?: KvDatabases) {
    const full = { ...KV_STORE_DEFAULTS, ...options };
    validateOptions(full);
    this.memoryBytesMax = full.memoryBytesMax;
    this.server = { ...full.server, memoryBytesMax: full.memoryBytesMax };
    this.databases = databases ?? new KvDatabases(full);
    for (const keyspace of this.databases.dbs) this.clock = Math.max(this.clock, keyspace.clockMs);
    // Every database's clock follows the store's (advanceClock), and seeds its random picks: a
    // database the snapshot left out (it never held a key) must not restore with clock 0.
    for (const keyspace of this.databases.dbs) keyspace.advanceClock(this.clock);
  }

  /** Database `index` (0–15), as SELECT reaches it. */
  database(index: number): Keyspace {
    return this.databases.dbs[index]!;
  }

  /** The log's clock as the store last saw it (ms), and whether any key has a TTL. */
  get clockMs(): number {
    return this.clock;
  }
  get hasExpiringKeys(): boolean {
    for (const keyspace of this.databases.dbs) if (keyspace.volatile.size > 0) return true;
    return false;
  }

  /** Keys held in all databases, including expired ones not yet collected (see `expireSweep`). */
  get keyCount(): number {
    let count = 0;
    for (const keyspace of this.databases.dbs) count += keyspace.entries.size;
    return count;
  }

  /** Moves every database's clock to `nowMs` (never back); returns the clock. */
  private advanceClock(nowMs: number): number {
    if (nowMs > this.clock) {
      this.clock = nowMs;
      for (const keyspace of this.databases.dbs) keyspace.advanceClock(nowMs);
    }
    return this.clock;
  }

  /** The command's context: the caller's, with the databases seen from database `db`. */
  private contextFor(context: ExecContext, db: number): ExecContext {
    return {
      nowMs: context.nowMs,
      info: context.info,
      databases: this.databases.views[db]!,
      server: this.server,
    };
  }

  /**
   * Executes one command (`args[0]` is its name, any case) in database `db` and returns its RESP2
   * reply. Never throws on bad input: every operating error is an error reply. The returned
   * Buffer may be a shared constant: never write into it. Arguments are copied before being
   * stored. `found`: the spec of args[0], when the caller has it.
   */
  execute(args: readonly Uint8Array[], context: ExecContext, db = 0, found?: CommandSpec): Buffer {
    const now = this.advanceClock(context.nowMs);
    if (args.length === 0) return errorReply("ERR empty command");
    const buffers = args.every((arg) => arg instanceof Buffer)
      ? (args as readonly Buffer[])
      : args.map(toBuffer);
    // `found`: the caller looked the command up already (the session layer does).
    const spec = found ?? findCommand(buffers[0]!);
    if (spec === undefined) return unknownCommand(buffers);
    if (!arityFits(spec, buffers)) return wrongArity(spec.name);
    // Redis checks maxmemory after the arity, before the command runs (processCommand).
    if (this.isOverMemory() && spec.flags?.includes("denyoom")) return ERR_OOM;
    const reply = spec.handler(this.databases.dbs[db]!, buffers, now, this.contextFor(context, db));
    // A blocking command that blocked, or a write refused with an error, changed nothing (and
    // must not wake blocked clients, or one blocked on a key of another type would loop).
    if (spec.kind === "write" && reply !== BLOCKED && reply[0] !== MINUS)
      this.afterWrite(spec, buffers, db);
    return reply;
  }

  /**
   * Told after every write command, with its database and the keys its spec names (whether or
   * not it changed them): the session layer's WATCH and blocked clients (kv-sessions.ts).
   */
  onWrite: ((db: number, keys: readonly Buffer[]) => void) | null = null;

  /** Whether --max-memory is set and the store's data takes more than it. */
  isOverMemory(): boolean {
    return this.memoryBytesMax > 0 && this.usedBytes > this.memoryBytesMax;
  }

  /** Bytes the store's data takes, summed over the databases (kv-keyspace.ts entryBytes). */
  get usedBytes(): number {
    let used = 0;
    for (const keyspace of this.databases.dbs) used += keyspace.usedBytes;
    return used;
  }

  /** After a write: its keys' memory counts brought up to date, and onWrite told. */
  private afterWrite(spec: CommandSpec, args: readonly Buffer[], db: number): void {
    if (spec.keys === undefined) return;
    const keyspace = this.databases.dbs[db]!;
    const keys: Buffer[] = [];
    for (const index of keyIndexes(spec, args)) {
      const key = args[index]!;
      keys.push(key);
      keyspace.account(latin1(key));
    }
    this.onWrite?.(db, keys);
  }

  /**
   * Executes a command of a read-only request (isReadOnlyRequest) in database `db` without
   * changing the store, at the log's clock (the last applied batch's stamp): an expired key is
   * treated as gone but not deleted. Never a machine's own clock: a read that saw a key expire by
   * this machine's time while a later write, stamped by a leader whose clock is behind, still
   * found it alive would not be linearizable (the key would vanish and come back).
   */
  executeRead(args: readonly Uint8Array[], context: ExecContext, db = 0): Buffer {
    const buffers = args.every((arg) => arg instanceof Buffer)
      ? (args as readonly Buffer[])
      : args.map(toBuffer);
    const spec = args.length > 0 ? findCommand(buffers[0]!) : undefined;
    assert(
      spec !== undefined && spec.kind !== "write" && spec.kind !== "session",
      "executeRead of a write",
    );
    const keyspace = this.databases.dbs[db]!;
    const now = this.clock;
    const keysBefore = this.keyCount;
    for (const each of this.databases.dbs) each.collecting = false;
    try {
      return spec.handler(keyspace, buffers, now, this.contextFor(context, db));
    } finally {
      for (const each of this.databases.dbs) each.collecting = true;
      assert(this.keyCount === keysBefore, `read ${spec.name} changed the keyspace`);
    }
  }

  /**
   * Active expiry: in each database, deletes expired keys among up to `examineMax` keys with a
   * TTL, cycling through them on repeated calls; returns how many it deleted. Deterministic when
   * called at the same points of the log on every replica (e.g. after each applied entry, with
   * that entry's nowMs).
   */
  expireSweep(nowMs: number, examineMax: number): number {
    assert(Number.isSafeInteger(examineMax) && examineMax >= 0);
    const now = this.advanceClock(nowMs);
    let deleted = 0;
    for (const keyspace of this.databases.dbs)
      if (keyspace.volatile.size > 0) deleted += keyspace.expireSweep(now, examineMax);
    return deleted;
  }

  /** The whole state, checksummed; equal stores give equal bytes. */
  snapshot(): Uint8Array {
    return this.databases.snapshot();
  }

  /**
   * `prefix` and then the same bytes as snapshot() now, taken a piece at a time (step()) while
   * this store goes on executing commands. One at a time.
   */
  beginSnapshot(prefix?: Uint8Array): KvSnapshotJob {
    return this.databases.beginSnapshot(prefix);
  }

  /** A store from `snapshot()` bytes; throws ApusError ERR_WIRE_FIELD/ERR_WIRE_VERSION if bad. */
  static restore(bytes: Uint8Array, options: Partial<KvStoreOptions> = {}): KvStore {
    const full = { ...KV_STORE_DEFAULTS, ...options };
    validateOptions(full);
    return new KvStore(full, KvDatabases.restore(bytes, full));
  }
}
