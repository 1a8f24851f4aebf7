/**
 * The embedded Redis-protocol key-value store: the default replicated state machine. Every
 * replica executes the same commands in the same order and must produce the same replies and
 * state, so nothing here reads a clock, draws a random number or depends on anything but the
 * commands and `context.nowMs` (the leader's timestamp on the log batch).
 */
import { ApusError, assert } from "../core/errors.ts";
import { REPLY_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_DEFAULT } from "../limits.ts";
import * as hashes from "./kv-hashes.ts";
import * as keys from "./kv-keys.ts";
import { Keyspace } from "./kv-keyspace.ts";
import * as lists from "./kv-lists.ts";
import * as server from "./kv-server.ts";
import * as sets from "./kv-sets.ts";
import { type ExecContext, type Handler, latin1, upper, wrongArity } from "./kv-shared.ts";
import { readSnapshot, writeSnapshot } from "./kv-snapshot.ts";
import { SnapshotJob } from "./kv-snapshot-job.ts";
import * as strings from "./kv-strings.ts";
import * as zsets from "./kv-zsets.ts";
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
}

/** Defaults of `valueBytesMax` (8 MiB) and `replyBytesMax` (64 MiB): see src/limits.ts. */
export { REPLY_BYTES_MAX_DEFAULT, VALUE_BYTES_MAX_DEFAULT };
/** Default `patternBytesMax`: 4096 bytes, far beyond any real KEYS/SCAN pattern. */
export const PATTERN_BYTES_MAX_DEFAULT = 4096;

export const KV_STORE_DEFAULTS: KvStoreOptions = Object.freeze({
  valueBytesMax: VALUE_BYTES_MAX_DEFAULT,
  replyBytesMax: REPLY_BYTES_MAX_DEFAULT,
  patternBytesMax: PATTERN_BYTES_MAX_DEFAULT,
});

/**
 * How the runtime should treat a command: "write" changes state (replicate it); "read" only reads
 * (replicate it too for linearizable reads, or serve it from the leader); "connection" touches
 * only the connection or server metadata (may be answered locally without replication).
 */
export type CommandKind = "write" | "read" | "connection";

interface CommandSpec {
  /** Lowercase, as Redis prints it in errors. */
  readonly name: string;
  /** Redis's arity: n > 0 exactly n args (name included); n < 0 at least -n. */
  readonly arity: number;
  readonly kind: CommandKind;
  readonly handler: Handler;
  /**
   * Whether this call administers the whole store (FLUSHALL, CONFIG SET) rather than reading or
   * writing keys; absent: never. Client roles (src/workers/client-rights.ts) read it.
   */
  readonly admin?: (args: readonly Buffer[]) => boolean;
  /**
   * Which arguments are values: those the handler refuses with `value too large` when longer
   * than `valueBytesMax`; absent: none (keys, fields, patterns, options are not values). The
   * client port refuses an oversized one before proposing the command (hasValueOver).
   */
  readonly values?: ValueArgs;
}

/**
 * Value positions: args[first], args[first + step], … to the last argument; step 0: args[first]
 * alone. Step 2: values paired with the argument before each (MSET's key, HSET's field, ZADD's
 * score), pairs from args[first - 1] to the end.
 */
interface ValueArgs {
  /** A function where options come before the values (ZADD). */
  readonly first: number | ((args: readonly Buffer[]) => number);
  readonly step: 0 | 1 | 2;
}

const VALUE_AT_2: ValueArgs = { first: 2, step: 0 };
const VALUE_AT_3: ValueArgs = { first: 3, step: 0 };
const VALUES_FROM_2: ValueArgs = { first: 2, step: 1 };
const PAIRED_FROM_2: ValueArgs = { first: 2, step: 2 };
const PAIRED_FROM_3: ValueArgs = { first: 3, step: 2 };

/** ZADD's options, which come before its score-member pairs (kv-zsets.ts zaddGeneric). */
const ZADD_OPTIONS = new Set(["NX", "XX", "CH", "INCR", "GT", "LT"]);
const ZADD_MEMBERS: ValueArgs = {
  first: (args) => {
    let at = 2;
    while (at < args.length && ZADD_OPTIONS.has(upper(args[at]!))) at++;
    return at + 1;
  },
  step: 2,
};

const ALWAYS = () => true;

const SPECS: readonly CommandSpec[] = [
  { name: "get", arity: 2, kind: "read", handler: strings.get },
  { name: "set", arity: -3, kind: "write", handler: strings.set, values: VALUE_AT_2 },
  { name: "getset", arity: 3, kind: "write", handler: strings.getset, values: VALUE_AT_2 },
  { name: "mget", arity: -2, kind: "read", handler: strings.mget },
  { name: "mset", arity: -3, kind: "write", handler: strings.mset, values: PAIRED_FROM_2 },
  { name: "incr", arity: 2, kind: "write", handler: strings.incr },
  { name: "incrby", arity: 3, kind: "write", handler: strings.incrby },
  { name: "decr", arity: 2, kind: "write", handler: strings.decr },
  { name: "decrby", arity: 3, kind: "write", handler: strings.decrby },
  { name: "append", arity: 3, kind: "write", handler: strings.append, values: VALUE_AT_2 },
  { name: "strlen", arity: 2, kind: "read", handler: strings.strlen },
  { name: "del", arity: -2, kind: "write", handler: keys.del },
  { name: "exists", arity: -2, kind: "read", handler: keys.exists },
  { name: "expire", arity: -3, kind: "write", handler: keys.expire },
  { name: "pexpire", arity: -3, kind: "write", handler: keys.pexpire },
  { name: "expireat", arity: -3, kind: "write", handler: keys.expireat },
  { name: "pexpireat", arity: -3, kind: "write", handler: keys.pexpireat },
  { name: "ttl", arity: 2, kind: "read", handler: keys.ttl },
  { name: "pttl", arity: 2, kind: "read", handler: keys.pttl },
  { name: "persist", arity: 2, kind: "write", handler: keys.persist },
  { name: "keys", arity: 2, kind: "read", handler: keys.keys },
  { name: "scan", arity: -2, kind: "read", handler: keys.scan },
  { name: "dbsize", arity: 1, kind: "read", handler: keys.dbsize },
  { name: "flushall", arity: -1, kind: "write", handler: keys.flushall, admin: ALWAYS },
  { name: "flushdb", arity: -1, kind: "write", handler: keys.flushdb, admin: ALWAYS },
  { name: "type", arity: 2, kind: "read", handler: keys.type },
  { name: "hset", arity: -4, kind: "write", handler: hashes.hset, values: PAIRED_FROM_3 },
  { name: "hmset", arity: -4, kind: "write", handler: hashes.hmset, values: PAIRED_FROM_3 },
  { name: "hget", arity: 3, kind: "read", handler: hashes.hget },
  { name: "hdel", arity: -3, kind: "write", handler: hashes.hdel },
  { name: "hgetall", arity: 2, kind: "read", handler: hashes.hgetall },
  { name: "hlen", arity: 2, kind: "read", handler: hashes.hlen },
  { name: "hexists", arity: 3, kind: "read", handler: hashes.hexists },
  { name: "lpush", arity: -3, kind: "write", handler: lists.lpush, values: VALUES_FROM_2 },
  { name: "rpush", arity: -3, kind: "write", handler: lists.rpush, values: VALUES_FROM_2 },
  { name: "lpop", arity: -2, kind: "write", handler: lists.lpop },
  { name: "rpop", arity: -2, kind: "write", handler: lists.rpop },
  { name: "lrange", arity: 4, kind: "read", handler: lists.lrange },
  { name: "llen", arity: 2, kind: "read", handler: lists.llen },
  { name: "sadd", arity: -3, kind: "write", handler: sets.sadd, values: VALUES_FROM_2 },
  { name: "srem", arity: -3, kind: "write", handler: sets.srem },
  { name: "smembers", arity: 2, kind: "read", handler: sets.smembers },
  { name: "scard", arity: 2, kind: "read", handler: sets.scard },
  { name: "sismember", arity: 3, kind: "read", handler: sets.sismember },
  { name: "spop", arity: -2, kind: "write", handler: sets.spop },
  { name: "srandmember", arity: -2, kind: "read", handler: sets.srandmember },
  { name: "zadd", arity: -4, kind: "write", handler: zsets.zadd, values: ZADD_MEMBERS },
  { name: "zincrby", arity: 4, kind: "write", handler: zsets.zincrby, values: VALUE_AT_3 },
  { name: "zscore", arity: 3, kind: "read", handler: zsets.zscore },
  { name: "zmscore", arity: -3, kind: "read", handler: zsets.zmscore },
  { name: "zrem", arity: -3, kind: "write", handler: zsets.zrem },
  { name: "zcard", arity: 2, kind: "read", handler: zsets.zcard },
  { name: "zcount", arity: 4, kind: "read", handler: zsets.zcount },
  { name: "zrange", arity: -4, kind: "read", handler: zsets.zrange },
  { name: "zrevrange", arity: -4, kind: "read", handler: zsets.zrevrange },
  { name: "zrangebyscore", arity: -4, kind: "read", handler: zsets.zrangebyscore },
  { name: "zrevrangebyscore", arity: -4, kind: "read", handler: zsets.zrevrangebyscore },
  { name: "zrangebylex", arity: -4, kind: "read", handler: zsets.zrangebylex },
  { name: "zrevrangebylex", arity: -4, kind: "read", handler: zsets.zrevrangebylex },
  { name: "zrank", arity: 3, kind: "read", handler: zsets.zrank },
  { name: "zrevrank", arity: 3, kind: "read", handler: zsets.zrevrank },
  { name: "zpopmin", arity: -2, kind: "write", handler: zsets.zpopmin },
  { name: "zpopmax", arity: -2, kind: "write", handler: zsets.zpopmax },
  { name: "ping", arity: -1, kind: "connection", handler: server.ping },
  { name: "echo", arity: 2, kind: "connection", handler: server.echo },
  { name: "select", arity: 2, kind: "connection", handler: server.select },
  { name: "info", arity: -1, kind: "read", handler: server.info },
  {
    name: "config",
    arity: -2,
    kind: "connection",
    handler: server.config,
    admin: server.configIsAdmin,
  },
  { name: "client", arity: -2, kind: "connection", handler: server.client },
  { name: "hello", arity: -1, kind: "connection", handler: server.hello },
  { name: "quit", arity: -1, kind: "connection", handler: server.quit },
];

const ALL_SPECS: readonly CommandSpec[] = [
  ...SPECS,
  {
    name: "command",
    arity: -1,
    kind: "connection",
    handler: server.commandHandler(SPECS.length + 1),
  },
];

/** Lowercase and uppercase names → spec, so the usual spellings need no case conversion. */
const COMMANDS = new Map<string, CommandSpec>();
for (const spec of ALL_SPECS) {
  assert(!COMMANDS.has(spec.name), `command ${spec.name} listed twice`);
  COMMANDS.set(spec.name, spec);
  COMMANDS.set(spec.name.toUpperCase(), spec);
}

function findCommand(name: Uint8Array): CommandSpec | undefined {
  const text = latin1(toBuffer(name));
  return COMMANDS.get(text) ?? COMMANDS.get(text.toLowerCase());
}

/** The kind of the command named `name` (any case), or undefined for an unknown command. */
export function commandKind(name: Uint8Array): CommandKind | undefined {
  return findCommand(name)?.kind;
}

/** Whether the command `args` administers the store (the spec's `admin`); false if unknown. */
export function isAdminCommand(args: readonly Uint8Array[]): boolean {
  const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
  return spec?.admin?.(args.map(toBuffer)) ?? false;
}

/**
 * Whether `args` carries a value (the spec's `values`) longer than `valueBytesMax`: the store
 * would answer `value too large` and change nothing, so the client port may refuse the command
 * before proposing it. False for an unknown command, a wrong arity or unpaired values: the store
 * answers those with its own error. A command malformed in some other way too (a SET option the
 * store rejects) and carrying an oversized value gets `value too large` rather than that error.
 */
export function hasValueOver(args: readonly Uint8Array[], valueBytesMax: number): boolean {
  const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
  const values = spec?.values;
  if (spec === undefined || values === undefined) return false;
  if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return false;
  const buffers = args.every((arg) => arg instanceof Buffer)
    ? (args as readonly Buffer[])
    : args.map(toBuffer);
  const first = typeof values.first === "number" ? values.first : values.first(buffers);
  if (values.step === 0) return first < args.length && args[first]!.byteLength > valueBytesMax;
  // Pairs from args[first - 1]: an incomplete pair is the store's error to give.
  if (values.step === 2 && (args.length - first + 1) % 2 !== 0) return false;
  for (let i = first; i < args.length; i += values.step) {
    if (args[i]!.byteLength > valueBytesMax) return true;
  }
  return false;
}

/**
 * Whether every command of a request leaves the store as it is, so that a replica may answer it
 * from its own state at a read index instead of through the log. Unknown commands and wrong
 * arities go through the log, which answers them with the usual error.
 */
export function isReadOnlyRequest(commands: readonly (readonly Uint8Array[])[]): boolean {
  if (commands.length === 0) return false;
  for (const args of commands) {
    const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
    if (spec === undefined || spec.kind === "write") return false;
    if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return false;
  }
  return true;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return bytes instanceof Buffer
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Redis 7's reply to an unknown command: the name and up to 128 characters of arguments. */
function unknownCommand(args: readonly Buffer[]): Buffer {
  let quoted = "";
  for (let i = 1; i < args.length && quoted.length < 128; i++) {
    quoted += `'${latin1(args[i]!).slice(0, 128 - quoted.length)}' `;
  }
  const name = latin1(args[0]!).slice(0, 128);
  return errorReply(`ERR unknown command '${name}', with args beginning with: ${quoted}`);
}

function validateOptions(options: KvStoreOptions): void {
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
  private readonly keyspace: Keyspace;

  constructor(options: Partial<KvStoreOptions> = {}, keyspace?: Keyspace) {
    const full = { ...KV_STORE_DEFAULTS, ...options };
    validateOptions(full);
    this.keyspace = keyspace ?? new Keyspace(full);
  }

  /** The log's clock as the store last saw it (ms), and whether any key has a TTL. */
  get clockMs(): number {
    return this.keyspace.clockMs;
  }
  get hasExpiringKeys(): boolean {
    return this.keyspace.volatile.size > 0;
  }

  /** Keys held, including expired ones not yet collected (see `expireSweep`). */
  get keyCount(): number {
    return this.keyspace.entries.size;
  }

  /**
   * Executes one command (`args[0]` is its name, any case) and returns its RESP2 reply. Never
   * throws on bad input: every operating error is an error reply. The returned Buffer may be a
   * shared constant: never write into it. Arguments are copied before being stored.
   */
  execute(args: readonly Uint8Array[], context: ExecContext): Buffer {
    const now = this.keyspace.advanceClock(context.nowMs);
    if (args.length === 0) return errorReply("ERR empty command");
    const buffers = args.every((arg) => arg instanceof Buffer)
      ? (args as readonly Buffer[])
      : args.map(toBuffer);
    const spec = findCommand(buffers[0]!);
    if (spec === undefined) return unknownCommand(buffers);
    const arity = spec.arity;
    if (arity > 0 ? buffers.length !== arity : buffers.length < -arity)
      return wrongArity(spec.name);
    return spec.handler(this.keyspace, buffers, now, context);
  }

  /**
   * Executes a command of a read-only request (isReadOnlyRequest) without changing the store, at
   * the log's clock (the last applied batch's stamp): an expired key is treated as gone but not
   * deleted. Never a machine's own clock: a read that saw a key expire by this machine's time
   * while a later write, stamped by a leader whose clock is behind, still found it alive would
   * not be linearizable (the key would vanish and come back).
   */
  executeRead(args: readonly Uint8Array[], context: ExecContext): Buffer {
    const buffers = args.every((arg) => arg instanceof Buffer)
      ? (args as readonly Buffer[])
      : args.map(toBuffer);
    const spec = args.length > 0 ? findCommand(buffers[0]!) : undefined;
    assert(spec !== undefined && spec.kind !== "write", "executeRead of a write");
    const now = this.keyspace.clockMs;
    const keysBefore = this.keyspace.entries.size;
    this.keyspace.collecting = false;
    try {
      return spec.handler(this.keyspace, buffers, now, context);
    } finally {
      this.keyspace.collecting = true;
      assert(this.keyspace.entries.size === keysBefore, `read ${spec.name} changed the keyspace`);
    }
  }

  /**
   * Active expiry: deletes expired keys among up to `examineMax` keys with a TTL, cycling through
   * them on repeated calls; returns how many it deleted. Deterministic when called at the same
   * points of the log on every replica (e.g. after each applied entry, with that entry's nowMs).
   */
  expireSweep(nowMs: number, examineMax: number): number {
    assert(Number.isSafeInteger(examineMax) && examineMax >= 0);
    return this.keyspace.expireSweep(this.keyspace.advanceClock(nowMs), examineMax);
  }

  /** The whole state, checksummed; equal stores give equal bytes. */
  snapshot(): Uint8Array {
    return writeSnapshot(this.keyspace);
  }

  /**
   * `prefix` and then the same bytes as snapshot() now, taken a piece at a time (SnapshotJob.step)
   * while this store goes on executing commands. One at a time.
   */
  beginSnapshot(prefix?: Uint8Array): SnapshotJob {
    return new SnapshotJob(this.keyspace, prefix);
  }

  /** A store from `snapshot()` bytes; throws ApusError ERR_WIRE_FIELD/ERR_WIRE_VERSION if bad. */
  static restore(bytes: Uint8Array, options: Partial<KvStoreOptions> = {}): KvStore {
    const full = { ...KV_STORE_DEFAULTS, ...options };
    validateOptions(full);
    return new KvStore(full, readSnapshot(bytes, full));
  }
}
