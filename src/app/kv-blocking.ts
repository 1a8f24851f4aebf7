/**
 * Blocking list and sorted-set pops: BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX
 * BZMPOP. Each
 * handler serves at once when it can, as its non-blocking twin; when every key it names is empty
 * it returns BLOCKED, and the session layer (kv-sessions.ts) blocks the client on those keys and
 * runs the same handler again when a later write names one of them — at that write's place in
 * the log, so every replica serves the same client the same element. Inside MULTI a BLOCKED
 * becomes the command's timeout reply at once, as in Redis.
 *
 * The timeout is checked first (Redis's order) and read by `blockTimeoutMs`, which the session
 * layer uses to set the deadline on the log's clock.
 */
import { type CommandSpec, KEYS_1_2, KEYS_BEFORE_LAST, numkeysKeySpec } from "./kv-command-spec.ts";
import { type Keyspace, KvList } from "./kv-keyspace.ts";
import { mpopFirst, parseMpop } from "./kv-lists.ts";
import {
  BLOCKED,
  ERR_SYNTAX,
  type Handler,
  isReply,
  latin1,
  upper,
  WRONGTYPE,
} from "./kv-shared.ts";
import { xreadBlockMs } from "./kv-streams.ts";
import { parseZmpop, zmpopFirst, zpopFirst } from "./kv-zsets.ts";
import { array, bulk, errorReply, NULL_ARRAY, NULL_BULK } from "./resp.ts";

const ERR_TIMEOUT_FLOAT = errorReply("ERR timeout is not a float or out of range");
const ERR_TIMEOUT_NEGATIVE = errorReply("ERR timeout is negative");
const ERR_TIMEOUT_RANGE = errorReply("ERR timeout is out of range");

/** The longest timeout, ms: beyond it Redis says "timeout is out of range". */
const TIMEOUT_MS_MAX = 2 ** 53;

/**
 * A timeout in seconds (a float, as Redis's strtold reads it) as ms; 0 = forever. Or the error
 * reply.
 */
export function parseTimeoutMs(arg: Buffer): number | Buffer {
  const text = latin1(arg);
  // strtold: no spaces, no empty, no hex floats Redis would refuse; "inf" is out of range.
  if (text === "" || /\s/.test(text) || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))
    return ERR_TIMEOUT_FLOAT;
  const seconds = Number(text);
  if (!Number.isFinite(seconds)) return ERR_TIMEOUT_FLOAT;
  const ms = Math.trunc(seconds * 1000);
  if (ms < 0) return ERR_TIMEOUT_NEGATIVE;
  if (ms > TIMEOUT_MS_MAX) return ERR_TIMEOUT_RANGE;
  return ms;
}

/**
 * A blocking command's timeout, ms (0: forever), or its error: the last argument, or the first
 * for BLMPOP and BZMPOP (`BLMPOP timeout numkeys key …`), BLOCK's for XREAD and XREADGROUP.
 */
export function blockTimeoutMs(args: readonly Buffer[]): number | Buffer {
  const name = latin1(args[0]!).toLowerCase();
  if (name === "blmpop" || name === "bzmpop") return parseTimeoutMs(args[1]!);
  if (name === "xread" || name === "xreadgroup") return xreadBlockMs(args);
  return parseTimeoutMs(args[args.length - 1]!);
}

/** Which blocked clients one ready key can serve: a family empties a key for all its members. */
export function blockFamily(name: string): "list" | "zset" | "stream" {
  if (name.startsWith("bz")) return "zset";
  if (name.startsWith("x")) return "stream";
  return "list";
}

/**
 * A blocked command to run again for one key that became ready: served from that key, as Redis
 * serves from the key that was signalled, not from the first of its keys that holds something.
 * XREAD and XREADGROUP serve every stream that has new entries; a move has one source.
 */
export function rerunFor(args: readonly Buffer[], key: Buffer): Buffer[] {
  const name = latin1(args[0]!).toLowerCase();
  switch (name) {
    case "blpop":
    case "brpop":
    case "bzpopmin":
    case "bzpopmax":
      return [args[0]!, key, args[args.length - 1]!];
    case "blmpop":
    case "bzmpop": {
      const numkeys = Number(latin1(args[2]!));
      return [args[0]!, args[1]!, Buffer.from("1"), key, ...args.slice(3 + numkeys)];
    }
    default:
      return [...args];
  }
}

/** The reply a blocking command gives when it times out (or would block inside MULTI). */
export function timeoutReply(name: string): Buffer {
  return name === "brpoplpush" || name === "blmove" ? NULL_BULK : NULL_ARRAY;
}

function listAt(keyspace: Keyspace, key: string, now: number): KvList | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvList ? entry.value : WRONGTYPE;
}

function popCommand(front: boolean): Handler {
  return (keyspace, args, now) => {
    const timeout = blockTimeoutMs(args);
    if (isReply(timeout)) return timeout;
    for (let i = 1; i < args.length - 1; i++) {
      const key = latin1(args[i]!);
      const list = listAt(keyspace, key, now);
      if (isReply(list)) return list;
      if (list === undefined || list.length === 0) continue;
      const value = front ? list.popFront() : list.popBack();
      if (list.length === 0) keyspace.remove(key, keyspace.entries.get(key)!);
      return array([bulk(args[i]!), bulk(value)]);
    }
    return BLOCKED;
  };
}

/** LMOVE's move, once: the element moved, or undefined when `src` is empty; or WRONGTYPE. */
function moveOnce(
  keyspace: Keyspace,
  src: string,
  dst: string,
  fromFront: boolean,
  toFront: boolean,
  now: number,
): Buffer | undefined {
  const from = listAt(keyspace, src, now);
  if (isReply(from)) return from;
  if (from === undefined || from.length === 0) return undefined;
  let to = listAt(keyspace, dst, now);
  if (isReply(to)) return to;
  const value = fromFront ? from.popFront() : from.popBack();
  if (to === undefined) {
    if (from.length === 0 && src === dst)
      to = from; // rotating a one-element list
    else {
      to = new KvList();
      keyspace.insert(dst, to);
    }
  }
  if (toFront) to.pushFront(value);
  else to.pushBack(value);
  if (from.length === 0) keyspace.remove(src, keyspace.entries.get(src)!);
  return bulk(value);
}

/** LEFT → true, RIGHT → false, else undefined. */
function side(arg: Buffer): boolean | undefined {
  const word = upper(arg);
  return word === "LEFT" ? true : word === "RIGHT" ? false : undefined;
}

const blmove: Handler = (keyspace, args, now) => {
  const from = side(args[3]!);
  const to = side(args[4]!);
  if (from === undefined || to === undefined) return ERR_SYNTAX;
  const timeout = blockTimeoutMs(args);
  if (isReply(timeout)) return timeout;
  return moveOnce(keyspace, latin1(args[1]!), latin1(args[2]!), from, to, now) ?? BLOCKED;
};

const brpoplpush: Handler = (keyspace, args, now) => {
  const timeout = blockTimeoutMs(args);
  if (isReply(timeout)) return timeout;
  return moveOnce(keyspace, latin1(args[1]!), latin1(args[2]!), false, true, now) ?? BLOCKED;
};

function zpopCommand(fromHigh: boolean): Handler {
  return (keyspace, args, now) => {
    const timeout = blockTimeoutMs(args);
    if (isReply(timeout)) return timeout;
    return zpopFirst(keyspace, args.slice(1, -1), fromHigh, now) ?? BLOCKED;
  };
}

const blmpop: Handler = (keyspace, args, now) => {
  const timeout = blockTimeoutMs(args);
  if (isReply(timeout)) return timeout;
  const parsed = parseMpop(args, 2);
  if (isReply(parsed)) return parsed;
  return mpopFirst(keyspace, parsed.keys, parsed.front, parsed.count, now) ?? BLOCKED;
};

const bzmpop: Handler = (keyspace, args, now) => {
  const timeout = blockTimeoutMs(args);
  if (isReply(timeout)) return timeout;
  const parsed = parseZmpop(args, 2);
  if (isReply(parsed)) return parsed;
  return zmpopFirst(keyspace, parsed.keys, parsed.fromHigh, parsed.count, now) ?? BLOCKED;
};

const BLOCKING = ["noscript", "blocking"] as const;

/** The blocking commands in the store's command table (kv-command-table.ts). */
export const BLOCKING_COMMANDS: readonly CommandSpec[] = [
  {
    name: "blpop",
    arity: -3,
    kind: "write",
    handler: popCommand(true),
    flags: BLOCKING,
    keys: KEYS_BEFORE_LAST,
  },
  {
    name: "brpop",
    arity: -3,
    kind: "write",
    handler: popCommand(false),
    flags: BLOCKING,
    keys: KEYS_BEFORE_LAST,
  },
  {
    name: "brpoplpush",
    arity: 4,
    kind: "write",
    handler: brpoplpush,
    flags: ["denyoom", ...BLOCKING],
    keys: KEYS_1_2,
  },
  {
    name: "blmove",
    arity: 6,
    kind: "write",
    handler: blmove,
    flags: ["denyoom", ...BLOCKING],
    keys: KEYS_1_2,
  },
  {
    name: "blmpop",
    arity: -5,
    kind: "write",
    handler: blmpop,
    flags: BLOCKING,
    keys: numkeysKeySpec(2, undefined, 1),
  },
  {
    name: "bzmpop",
    arity: -5,
    kind: "write",
    handler: bzmpop,
    flags: BLOCKING,
    keys: numkeysKeySpec(2, undefined, 1),
  },
  {
    name: "bzpopmin",
    arity: -3,
    kind: "write",
    handler: zpopCommand(false),
    flags: [...BLOCKING, "fast"],
    keys: KEYS_BEFORE_LAST,
  },
  {
    name: "bzpopmax",
    arity: -3,
    kind: "write",
    handler: zpopCommand(true),
    flags: [...BLOCKING, "fast"],
    keys: KEYS_BEFORE_LAST,
  },
];
