/**
 * The Redis command policy of transparent mode: what a replica does with each client command so
 * that every copy of redis-server, fed the same log in the same order, stays identical.
 *
 * `classify(table, args)` answers, per command: its keys (`keysOf`, redis-command-table.ts),
 * whether it may block (the apply loop must not wait for its reply), and a policy:
 *
 * - `replicate`: sent to every copy as is. `divergentOutput: true` when the reply may differ
 *   between copies although the state does not (output checking must not hash it).
 * - `rewrite`: a relative time becomes an absolute one taken from the log command's time stamp
 *   (`rewriteWithTime(args, nowMs)`); the reply stays byte for byte the one the original command
 *   would give.
 * - `refuse`: answered with `error` by the replica; no copy sees it.
 *
 * | command                                            | policy                                                        |
 * | -------------------------------------------------- | ------------------------------------------------------------- |
 * | EXPIRE k s, PEXPIRE k ms [NX\|XX\|GT\|LT]          | rewrite → PEXPIREAT k now+ms [flag]                           |
 * | SETEX k s v, PSETEX k ms v                         | rewrite → SET k v PXAT now+ms                                 |
 * | SET k v … EX s \| PX ms …                          | rewrite → SET k v … PXAT now+ms (every EX/PX pair dropped; Redis keeps the last) |
 * | GETEX k EX s \| PX ms                              | rewrite → GETEX k PXAT now+ms                                 |
 * | RESTORE k ttl payload … (ttl > 0, no ABSTTL)       | rewrite → RESTORE k now+ttl payload ABSTTL …                  |
 * | XADD k … * field value …                           | rewrite → XADD k … now-* field value … (an auto sequence at the leader's ms) |
 * | TIME                                               | rewrite → answered `*2 sec usec` from nowMs by the replica (inside MULTI the caller must send it as is: its reply belongs in EXEC's) |
 * |  (a value Redis rejects: not an integer, ≤ 0 where it must be > 0, too large) | sent as is: every copy gives the same error |
 * |  (now+ms beyond 2^63-1)                            | sent with a value that gives Redis's own overflow error on every copy (EXPIRE k 2^63-1, SET … PXAT 0, SETEX k 0 v, RESTORE … 1 ABSTTL) |
 * | RANDOMKEY, SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER, ACL GENPASS | refuse: random result |
 * | EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, SCRIPT *, FUNCTION * | refuse: scripts are not replicated yet |
 * | CONFIG SET/REWRITE/RESETSTAT, SHUTDOWN, SAVE, BGSAVE, BGREWRITEAOF | refuse: per-copy administration |
 * | REPLICAOF, SLAVEOF, FAILOVER, SYNC, PSYNC, REPLCONF  | refuse: apus, not Redis replication, keeps the copies equal   |
 * | CLUSTER *, ASKING, READONLY, READWRITE, RESTORE-ASKING, MIGRATE | refuse: no Redis Cluster, no other server             |
 * | MONITOR | refuse: replies outside the one-reply-per-command order |
 * | SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, (P\|S)UNSUBSCRIBE | replicate: confirmations counted, messages relayed as pushes |
 * | CLIENT KILL/PAUSE/UNPAUSE/UNBLOCK/NO-EVICT/REPLY/TRACKING/CACHING | refuse: acts on the copy's loopback connections or the reply count |
 * | DEBUG (all but DIGEST, DIGEST-VALUE), PFDEBUG, PFSELFTEST, SWAPDB, MODULE * | refuse               |
 * | ACL SETUSER/DELUSER/LOAD/SAVE                      | refuse: users belong to each copy's configuration              |
 * | XCLAIM, XAUTOCLAIM with min-idle-time > 0          | refuse: idle time is measured on each copy's clock            |
 * | any other command flagged `admin`                  | refuse (a newer Redis's admin commands stay out until listed)  |
 * | INFO, LASTSAVE, ROLE, LOLWUT, DBSIZE, CONFIG GET, CLIENT ID/INFO/LIST, HELLO, MEMORY USAGE/STATS/DOCTOR/MALLOC-STATS, OBJECT *, COMMAND *, LATENCY *, SLOWLOG *, ACL LOG, DEBUG DIGEST, DEBUG DIGEST-VALUE, XINFO STREAM … FULL, WAITAOF | replicate, divergentOutput |
 * | SORT/SORT_RO … BY pattern-without-* and no STORE   | replicate, divergentOutput (a set's order is its hash order)  |
 * | tip nondeterministic_output or nondeterministic_output_order (TTL, PTTL, DUMP, SCAN, HSCAN, SSCAN, ZSCAN, KEYS, SMEMBERS, HGETALL, XPENDING, …) | replicate, divergentOutput |
 * | XADD (explicit ID), XTRIM, XCLAIM/XAUTOCLAIM (min-idle-time 0) | replicate (tipped, but deterministic on equal copies)  |
 * | a command the table does not know                  | replicate (every copy answers the same unknown-command error), keys "all" |
 * | everything else                                    | replicate                                                     |
 *
 * Blocking: the `blocking` flag (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN/MAX, BLMPOP, BZMPOP),
 * XREAD/XREADGROUP only with BLOCK, and WAIT, WAITAOF. Inside MULTI nothing blocks: the caller,
 * which tracks MULTI per connection, knows.
 */
import { assert } from "../../core/errors.ts";
import {
  arityFits,
  cString,
  INT64_MAX,
  keysOf,
  lookupCommand,
  lowerName,
  parseInteger,
  parseSort,
  type RedisCommandSpec,
  type RedisCommandTable,
} from "./redis-command-table.ts";

export type TimeRewriteKind =
  | "expire"
  | "pexpire"
  | "setex"
  | "psetex"
  | "set"
  | "getex"
  | "restore"
  | "xadd"
  | "time";

export type Policy =
  | { readonly kind: "replicate"; readonly divergentOutput: boolean }
  | { readonly kind: "rewrite"; readonly rewrite: TimeRewriteKind }
  | { readonly kind: "refuse"; readonly error: string };

export interface RedisCommandClass {
  /** The table's name (`set`, `client|kill`), or the lower-case name of an unknown command. */
  readonly name: string;
  /** Keys touched, or "all": commutes with nothing. */
  readonly keys: readonly Buffer[] | "all";
  /** May wait for another client's command: the apply loop must not wait for the reply. */
  readonly blocking: boolean;
  readonly policy: Policy;
}

/** What `rewriteWithTime` gives: the command to send to every copy, or the reply itself. */
export type TimeRewrite =
  | { readonly kind: "command"; readonly args: readonly Buffer[] }
  | { readonly kind: "reply"; readonly reply: Buffer };

const REPLICATE: Policy = Object.freeze({ kind: "replicate", divergentOutput: false });
const DIVERGENT: Policy = Object.freeze({ kind: "replicate", divergentOutput: true });

type Rule = "replicate" | "divergent" | { readonly refuse: string };

const RANDOM = "its result is random, so it would differ between copies";
const SCRIPTS =
  "scripts are not replicated yet (a script may read the clock or random numbers); send the commands it would run, inside MULTI/EXEC if they must be atomic";
const ADMIN = "it administers one copy of redis-server; connect to that copy directly";
const CONFIG =
  "every copy has its own configuration; change redis.conf on every replica and restart the copies";
const PERSISTENCE =
  "apus's log is what makes writes durable; connect to a copy directly for a local snapshot";
const REPLICATION = "apus, not Redis replication, keeps the copies identical";
const CLUSTER = "Redis Cluster is not supported behind apus";
const OUT_OF_BAND = "it sends replies outside the one-reply-per-command order the log keeps";
const LOOPBACK = "it acts on the copy's connections, which belong to apus, not to your clients";

/** Rules by table name; a container's rule (`script`) covers its subcommands. */
const RULES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ["randomkey", { refuse: `${RANDOM}; use SCAN` }],
  ["spop", { refuse: `${RANDOM}; read members with SSCAN or SMEMBERS and SREM the one you pick` }],
  [
    "srandmember",
    { refuse: `${RANDOM}; read members with SSCAN or SMEMBERS and pick in the client` },
  ],
  ["hrandfield", { refuse: `${RANDOM}; read fields with HSCAN or HGETALL and pick in the client` }],
  [
    "zrandmember",
    { refuse: `${RANDOM}; read members with ZRANGE or ZSCAN and pick in the client` },
  ],
  ["acl|genpass", { refuse: `${RANDOM}; generate the password in the client` }],
  ...["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "script", "function"].map(
    (name): [string, Rule] => [name, { refuse: SCRIPTS }],
  ),
  ["config|set", { refuse: CONFIG }],
  ["config|rewrite", { refuse: CONFIG }],
  ["config|resetstat", { refuse: ADMIN }],
  ["config|get", "divergent"],
  ["shutdown", { refuse: "apus starts and stops the copies; stop the replica instead" }],
  ["save", { refuse: PERSISTENCE }],
  ["bgsave", { refuse: PERSISTENCE }],
  ["bgrewriteaof", { refuse: PERSISTENCE }],
  ...["replicaof", "slaveof", "failover", "sync", "psync", "replconf"].map(
    (name): [string, Rule] => [name, { refuse: REPLICATION }],
  ),
  ...["cluster", "asking", "readonly", "readwrite", "restore-asking"].map(
    (name): [string, Rule] => [name, { refuse: CLUSTER }],
  ),
  ["migrate", { refuse: "it moves keys to a server outside apus, once from every copy" }],
  ["monitor", { refuse: OUT_OF_BAND }],
  ...["wait", "waitaof"].map((name): [string, Rule] => [
    name,
    {
      refuse:
        "apus answers a write only once a majority of replicas logged it, so it is already replicated; and each copy would wait on its own clock",
    },
  ]),
  // SUBSCRIBE and its family are replicated: the apply loop counts their confirmations and relays
  // the messages PUBLISH sends as output the client did not ask for (program-app.ts).
  ["client|kill", { refuse: LOOPBACK }],
  ["client|pause", { refuse: LOOPBACK }],
  ["client|unpause", { refuse: LOOPBACK }],
  ["client|unblock", { refuse: LOOPBACK }],
  ["client|no-evict", { refuse: LOOPBACK }],
  ["client|reply", { refuse: "apus needs exactly one reply per command" }],
  ["client|tracking", { refuse: OUT_OF_BAND }],
  ["client|caching", { refuse: OUT_OF_BAND }],
  ["client|id", "divergent"],
  ["client|info", "divergent"],
  ["client|list", "divergent"],
  ["pfdebug", { refuse: ADMIN }],
  ["pfselftest", { refuse: ADMIN }],
  [
    "swapdb",
    { refuse: "it swaps databases under every connection at once; COPY or RENAME keys instead" },
  ],
  ["module", { refuse: "load modules with loadmodule in every copy's configuration" }],
  [
    "acl|setuser",
    { refuse: "users belong to each copy's configuration; edit every copy's ACL file" },
  ],
  [
    "acl|deluser",
    { refuse: "users belong to each copy's configuration; edit every copy's ACL file" },
  ],
  ["acl|load", { refuse: ADMIN }],
  ["acl|save", { refuse: ADMIN }],
  ["acl|log", "divergent"],
  ["acl|getuser", "replicate"],
  ["acl|list", "replicate"],
  ["acl|users", "replicate"],
  ["acl|dryrun", "replicate"],
  ["info", "divergent"],
  ["lastsave", "divergent"],
  ["role", "divergent"],
  ["lolwut", "divergent"],
  ["dbsize", "divergent"],
  ["waitaof", "divergent"],
  ["memory|usage", "divergent"],
  ["memory|stats", "divergent"],
  ["memory|doctor", "divergent"],
  ["memory|malloc-stats", "divergent"],
  ["object", "divergent"],
  ["command", "divergent"],
  ["latency", "divergent"],
  ["slowlog", "divergent"],
  ["xadd", "replicate"],
  ["xtrim", "replicate"],
  ["xclaim", "replicate"],
  ["xautoclaim", "replicate"],
]);

/** Commands whose relative time `rewriteWithTime` turns absolute, by table name. */
const REWRITTEN: ReadonlyMap<string, TimeRewriteKind> = new Map<string, TimeRewriteKind>([
  ["expire", "expire"],
  ["pexpire", "pexpire"],
  ["setex", "setex"],
  ["psetex", "psetex"],
  ["set", "set"],
  ["getex", "getex"],
  ["restore", "restore"],
  ["xadd", "xadd"],
  ["time", "time"],
]);

const BLOCKING_NAMES = new Set(["wait", "waitaof"]);

/** Keys, blocking and policy of one client command (`args[0]` is its name). */
export function classify(table: RedisCommandTable, args: readonly Buffer[]): RedisCommandClass {
  assert(args.length > 0, "a command has at least its name");
  const keys = keysOf(table, args);
  const spec = lookupCommand(table, args);
  if (spec === null) return { name: lowerName(args[0]!), keys, blocking: false, policy: REPLICATE };
  return { name: spec.name, keys, blocking: isBlocking(spec, args), policy: policyOf(spec, args) };
}

function policyOf(spec: RedisCommandSpec, args: readonly Buffer[]): Policy {
  const container = spec.name.includes("|") ? spec.name.slice(0, spec.name.indexOf("|")) : null;
  const rule = RULES.get(spec.name) ?? (container === null ? undefined : RULES.get(container));
  if (typeof rule === "object") return refusal(spec, args, rule.refuse);
  if (!arityFits(spec.arity, args.length)) return REPLICATE; // the same arity error everywhere
  const special = policyByArguments(spec, args);
  if (special !== null) return special;
  if (rule === "replicate") return REPLICATE;
  if (rule === "divergent") return DIVERGENT;
  if (spec.flags.has("admin")) return refusal(spec, args, ADMIN);
  const tipped =
    spec.tips.has("nondeterministic_output") || spec.tips.has("nondeterministic_output_order");
  return tipped ? DIVERGENT : REPLICATE;
}

/** Policies that depend on the arguments, or null to follow the rules by name. */
function policyByArguments(spec: RedisCommandSpec, args: readonly Buffer[]): Policy | null {
  const rewrite = REWRITTEN.get(spec.name);
  if (rewrite !== undefined && planTimeRewrite(rewrite, args) !== null) {
    return { kind: "rewrite", rewrite };
  }
  switch (spec.name) {
    case "debug": {
      const sub = cString(args[1]!);
      if (sub === "digest" || sub === "digest-value") return DIVERGENT;
      return refusal(spec, args, `${ADMIN} (only DEBUG DIGEST and DEBUG DIGEST-VALUE are allowed)`);
    }
    case "hello":
      // RESP3 too: the loop cuts RESP3 replies and tells pushes (`>`) from answers.
      return DIVERGENT; // its reply carries the copy's connection id
    case "xclaim":
    case "xautoclaim": {
      const minIdleMs = parseInteger(args[4]!);
      if (minIdleMs === null || minIdleMs <= 0n) return null;
      return refusal(
        spec,
        args,
        "min-idle-time is measured on each copy's clock, so copies could claim different entries; pass min-idle-time 0 and choose the entries from XPENDING",
      );
    }
    case "sort":
    case "sort_ro": {
      const parse = parseSort(args, spec.name === "sort");
      return parse.dontSort && parse.store === null ? DIVERGENT : null;
    }
    case "xinfo|stream":
      return args.slice(3).some((arg) => cString(arg) === "full") ? DIVERGENT : null;
    default:
      return null;
  }
}

function refusal(spec: RedisCommandSpec, args: readonly Buffer[], reason: string): Policy {
  let display = spec.name.toUpperCase().replace("|", " ");
  if (spec.subcommands.length > 0 && args.length >= 2) {
    display = `${display} ${args[1]!.toString("latin1").toUpperCase()}`;
  }
  const message = `ERR ${display} is refused in replicated mode: ${reason}`.replace(/[\r\n]/g, " ");
  return { kind: "refuse", error: `-${message}\r\n` };
}

function isBlocking(spec: RedisCommandSpec, args: readonly Buffer[]): boolean {
  if (BLOCKING_NAMES.has(spec.name)) return true;
  if (!spec.flags.has("blocking")) return false;
  if (spec.name === "xread" || spec.name === "xreadgroup") {
    return readHasBlock(args, spec.name === "xreadgroup");
  }
  return true;
}

/** Redis's option loop of `xreadCommand`: whether BLOCK comes before STREAMS. */
function readHasBlock(args: readonly Buffer[], group: boolean): boolean {
  for (let i = 1; i < args.length; i++) {
    const option = cString(args[i]!);
    const more = args.length - 1 - i;
    if (option === "block" && more > 0) return true;
    if (option === "count" && more > 0) i++;
    else if (option === "group" && group && more >= 2) i += 2;
    else if (option === "noack" && group) continue;
    else break; // STREAMS, or a syntax error
  }
  return false;
}

/**
 * True only when `a` and `b` may be sent to a copy concurrently: both have explicit key lists,
 * disjoint, and neither blocks. The caller must also keep serial (a) a command inside MULTI and
 * (b) every command on a key that a pending blocking command waits on: the write that wakes it
 * runs that command too, which may touch its other keys (BLMOVE's destination).
 */
export function commutes(a: RedisCommandClass, b: RedisCommandClass): boolean {
  if (a.blocking || b.blocking) return false;
  if (a.keys === "all" || b.keys === "all") return false;
  const [small, large] = a.keys.length <= b.keys.length ? [a.keys, b.keys] : [b.keys, a.keys];
  if (small.length === 0) return true;
  const names = new Set(small.map((key) => key.toString("latin1")));
  return !large.some((key) => names.has(key.toString("latin1")));
}

// ---------------------------------------------------------------------------------------------
// Time rewrites. Every branch mirrors the Redis 7.0 parse of the command, so that a command Redis
// would reject is left as is (it gives the same error on every copy) and only a valid relative
// time is replaced.

type Plan = (nowMs: number) => TimeRewrite;

const LLONG_MAX_TEXT = Buffer.from(INT64_MAX.toString(), "latin1");
const ZERO_TEXT = Buffer.from("0", "latin1");

/**
 * `args` with its relative time made absolute from `nowMs` (the log command's time stamp, the
 * same on every replica), or TIME's reply. A command with nothing to rewrite comes back as is.
 */
export function rewriteWithTime(args: readonly Buffer[], nowMs: number): TimeRewrite {
  assert(Number.isSafeInteger(nowMs) && nowMs >= 0, `bad nowMs ${nowMs}`);
  assert(args.length > 0, "a command has at least its name");
  const kind = REWRITTEN.get(lowerName(args[0]!));
  const plan = kind === undefined ? null : planTimeRewrite(kind, args);
  return plan === null ? { kind: "command", args } : plan(nowMs);
}

function planTimeRewrite(kind: TimeRewriteKind, args: readonly Buffer[]): Plan | null {
  switch (kind) {
    case "expire":
    case "pexpire":
      return planExpire(args, kind === "expire" ? 1000n : 1n);
    case "setex":
    case "psetex":
      return planSetex(args, kind === "setex" ? 1000n : 1n);
    case "set":
      return planSetOptions(args, 3, true);
    case "getex":
      return planSetOptions(args, 2, false);
    case "restore":
      return planRestore(args);
    case "xadd":
      return planXadd(args);
    case "time":
      return args.length === 1 ? (nowMs) => ({ kind: "reply", reply: timeReply(nowMs) }) : null;
  }
}

/** `*2 $sec $usec`, TIME's reply, from a millisecond time stamp. */
export function timeReply(nowMs: number): Buffer {
  const sec = String(Math.floor(nowMs / 1000));
  const usec = String((nowMs % 1000) * 1000);
  return Buffer.from(`*2\r\n$${sec.length}\r\n${sec}\r\n$${usec.length}\r\n${usec}\r\n`, "latin1");
}

/** EXPIRE/PEXPIRE key time [flags] → PEXPIREAT key abs [flags] (`expireGenericCommand`). */
function planExpire(args: readonly Buffer[], unitMs: bigint): Plan | null {
  if (args.length < 3) return null;
  const value = parseInteger(args[2]!);
  if (value === null) return null;
  if (unitMs === 1000n && (value > INT64_MAX / 1000n || value < -INT64_MAX / 1000n)) return null;
  return (nowMs) => {
    const at = value * unitMs + BigInt(nowMs);
    if (at > INT64_MAX) return command([args[0]!, args[1]!, LLONG_MAX_TEXT, ...args.slice(3)]);
    return command([text("PEXPIREAT"), args[1]!, text(at.toString()), ...args.slice(3)]);
  };
}

/** SETEX/PSETEX key time value → SET key value PXAT abs (`getExpireMillisecondsOrReply`). */
function planSetex(args: readonly Buffer[], unitMs: bigint): Plan | null {
  if (args.length !== 4) return null;
  const ms = validRelative(args[2]!, unitMs);
  if (ms === null) return null;
  return (nowMs) => {
    const at = ms + BigInt(nowMs);
    if (at > INT64_MAX) return command([args[0]!, args[1]!, ZERO_TEXT, args[3]!]);
    return command([text("SET"), args[1]!, args[3]!, text("PXAT"), text(at.toString())]);
  };
}

/** A relative SET/SETEX/GETEX time Redis accepts, in ms, or null (it answers an error). */
function validRelative(arg: Buffer, unitMs: bigint): bigint | null {
  const value = parseInteger(arg);
  if (value === null || value <= 0n) return null;
  if (unitMs === 1000n && value > INT64_MAX / 1000n) return null;
  return value * unitMs;
}

const NX = 1;
const XX = 2;
const EX = 4;
const PX = 8;
const KEEPTTL = 16;
const GET = 32;
const EXAT = 64;
const PXAT = 128;
const PERSIST = 256;

/**
 * SET (options from index 3) and GETEX (from 2): Redis's `parseExtendedStringArgumentsOrReply`.
 * EX and PX may repeat (the last wins) but never mix; every EX/PX pair is dropped and one
 * `PXAT abs` appended. On overflow `PXAT 0` gives the same "invalid expire time" error.
 */
function planSetOptions(args: readonly Buffer[], from: number, isSet: boolean): Plan | null {
  if (args.length < from) return null;
  let flags = 0;
  let expire: Buffer | null = null;
  const kept: Buffer[] = [];
  for (let j = from; j < args.length; j++) {
    const option = cString(args[j]!);
    const hasNext = j < args.length - 1;
    const timeSet = KEEPTTL | PERSIST;
    if (option === "nx" && !(flags & XX) && isSet) flags |= NX;
    else if (option === "xx" && !(flags & NX) && isSet) flags |= XX;
    else if (option === "get" && isSet) flags |= GET;
    else if (option === "keepttl" && !(flags & (PERSIST | EX | EXAT | PX | PXAT)) && isSet) {
      flags |= KEEPTTL;
    } else if (option === "persist" && !isSet && !(flags & (EX | EXAT | PX | PXAT | KEEPTTL))) {
      flags |= PERSIST;
    } else if (option === "ex" && !(flags & (timeSet | EXAT | PX | PXAT)) && hasNext) {
      flags |= EX;
      expire = args[++j]!;
      continue;
    } else if (option === "px" && !(flags & (timeSet | EX | EXAT | PXAT)) && hasNext) {
      flags |= PX;
      expire = args[++j]!;
      continue;
    } else if (option === "exat" && !(flags & (timeSet | EX | PX | PXAT)) && hasNext) {
      flags |= EXAT;
      kept.push(args[j]!, args[++j]!);
      continue;
    } else if (option === "pxat" && !(flags & (timeSet | EX | EXAT | PX)) && hasNext) {
      flags |= PXAT;
      kept.push(args[j]!, args[++j]!);
      continue;
    } else {
      return null; // syntax error, the same on every copy
    }
    kept.push(args[j]!);
  }
  if (expire === null) return null;
  const ms = validRelative(expire, flags & EX ? 1000n : 1n);
  if (ms === null) return null;
  const head = args.slice(0, from);
  return (nowMs) => {
    const at = ms + BigInt(nowMs);
    const value = at > INT64_MAX ? ZERO_TEXT : text(at.toString());
    return command([...head, ...kept, text("PXAT"), value]);
  };
}

/**
 * RESTORE key ttl payload [options] with ttl > 0 and no ABSTTL → RESTORE key now+ttl payload
 * ABSTTL [options]. ABSTTL goes right after the payload so an option error reads the same. On
 * overflow Redis's sum wraps negative and the key counts as already expired: ttl 1 ABSTTL does
 * the same.
 */
function planRestore(args: readonly Buffer[]): Plan | null {
  if (args.length < 4) return null;
  if (args.slice(4).some((arg) => cString(arg) === "absttl")) return null;
  const ttl = parseInteger(args[2]!);
  if (ttl === null || ttl <= 0n) return null;
  return (nowMs) => {
    const at = ttl + BigInt(nowMs);
    const value = at > INT64_MAX ? text("1") : text(at.toString());
    return command([args[0]!, args[1]!, value, args[3]!, text("ABSTTL"), ...args.slice(4)]);
  };
}

/**
 * XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] * … → the ID `now-*`
 * (Redis's `streamParseAddOrTrimArgsOrReply` finds the ID). Redis gives `now-0`, or the top
 * entry's ms with the next sequence when the top entry has the same ms, as `*` does; but when
 * the stream's top ID is ahead of the leader's clock, `*` would give top+1 and `now-*` fails
 * ("equal or smaller than the target stream top item").
 */
function planXadd(args: readonly Buffer[]): Plan | null {
  for (let i = 2; i < args.length; i++) {
    const option = cString(args[i]!);
    const more = args.length - 1 - i;
    if (option === "*") {
      const at = i;
      return (nowMs) => {
        const rewritten = [...args];
        rewritten[at] = text(`${nowMs}-*`);
        return command(rewritten);
      };
    }
    if ((option === "maxlen" || option === "minid") && more > 0) {
      const next = cString(args[i + 1]!);
      if (more >= 2 && (next === "~" || next === "=")) i++;
      i++;
    } else if (option === "limit" && more > 0) {
      i++;
    } else if (option !== "nomkstream") {
      return null; // an explicit ID, or a syntax error
    }
  }
  return null;
}

function command(args: Buffer[]): TimeRewrite {
  return { kind: "command", args };
}

function text(value: string): Buffer {
  return Buffer.from(value, "latin1");
}

/**
 * Sent to the copy in place of a command refused inside MULTI (by this policy in program-app.ts,
 * or by the client port's gate, src/workers/client-multi.ts): redis-server rejects an unknown
 * command when it is queued, which makes EXEC fail with EXECABORT, as the refused command would.
 */
export const REFUSED_IN_MULTI = Buffer.from("apus-refused-in-multi");
