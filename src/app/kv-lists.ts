/**
 * List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LMPOP LRANGE LLEN LINDEX LSET LREM LTRIM
 * LINSERT LPOS LMOVE RPOPLPUSH.
 *
 * The blocking variants (BLPOP BRPOP BLMPOP BLMOVE BRPOPLPUSH) are built on popFirst, mpopFirst
 * and moveElement: each serves the command now if it can, or says there is nothing to serve.
 */
import { assert } from "../core/errors.ts";
import {
  type CommandSpec,
  KEY_1,
  KEYS_1_2,
  numkeysKeySpec,
  VALUE_AT_3,
  VALUES_FROM_2,
} from "./kv-command-spec.ts";
import { type Keyspace, KvList } from "./kv-keyspace.ts";
import {
  checkReplySize,
  copyBytes,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  INT64_MIN,
  indexRange,
  isReply,
  latin1,
  parseInt64,
  parseLong,
  parseMpopArgs,
  upper,
  valueTooLarge,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_ARRAY,
  NULL_BULK,
  OK,
  ZERO,
} from "./resp.ts";

const ERR_NOT_POSITIVE = errorReply("ERR value is out of range, must be positive");
const ERR_NO_SUCH_KEY = errorReply("ERR no such key");
const ERR_INDEX_RANGE = errorReply("ERR index out of range");
const ERR_RANK_ZERO = errorReply(
  "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
);
const ERR_COUNT_NEGATIVE = errorReply("ERR COUNT can't be negative");
const ERR_MAXLEN_NEGATIVE = errorReply("ERR MAXLEN can't be negative");

/** The list at `key`, undefined when absent, or WRONGTYPE. */
function readList(keyspace: Keyspace, key: string, now: number): KvList | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvList ? entry.value : WRONGTYPE;
}

/** Removes `key` once its list is empty: an empty list is never left in the keyspace. */
function removeIfEmpty(keyspace: Keyspace, key: string, list: KvList): void {
  if (list.length === 0) keyspace.remove(key, keyspace.entries.get(key)!);
}

/** The refusal of the first of args[from..] over the value limit, else undefined. */
function oversizedValue(keyspace: Keyspace, args: readonly Buffer[], from: number) {
  for (let i = from; i < args.length; i++) {
    if (args[i]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  return undefined;
}

/** LEFT → true (the head), RIGHT → false, else null (Redis's getListPositionFromObjectOrReply). */
function parseEnd(arg: Buffer): boolean | null {
  const text = upper(arg);
  if (text === "LEFT") return true;
  return text === "RIGHT" ? false : null;
}

/** An index from the head (negative: from the tail) into a list of `length`, or -1 outside. */
function resolveIndex(index: number, length: number): number {
  const resolved = index < 0 ? length + index : index;
  return resolved >= 0 && resolved < length ? resolved : -1;
}

/** Bytes of `array(bulk(i) for i in items)` for the `n` items `at(0..n-1)`. */
function itemsReplySize(n: number, at: (i: number) => Buffer): number {
  let size = arrayHeaderSize(n);
  for (let i = 0; i < n; i++) size += bulkSize(at(i).length);
  return size;
}

function pushCommand(front: boolean, onlyIfExists: boolean): Handler {
  return (keyspace, args, now) => {
    const refused = oversizedValue(keyspace, args, 2);
    if (refused !== undefined) return refused;
    const key = latin1(args[1]!);
    let list = readList(keyspace, key, now);
    if (isReply(list)) return list;
    if (list === undefined) {
      if (onlyIfExists) return ZERO;
      list = new KvList();
      keyspace.insert(key, list);
    }
    for (let i = 2; i < args.length; i++) {
      if (front) list.pushFront(copyBytes(args[i]!));
      else list.pushBack(copyBytes(args[i]!));
    }
    return integer(list.length);
  };
}

export const lpush = pushCommand(true, false);
export const rpush = pushCommand(false, false);
export const lpushx = pushCommand(true, true);
export const rpushx = pushCommand(false, true);

/** LPOP/RPOP key [count]: Redis 7's popGenericCommand. */
function popCommand(name: string, front: boolean): Handler {
  return (keyspace, args, now) => {
    if (args.length > 3) return wrongArity(name);
    let count = -1;
    if (args.length === 3) {
      const parsed = parseLong(args[2]!);
      if (parsed === null || parsed < 0) return ERR_NOT_POSITIVE;
      count = parsed;
    }
    const key = latin1(args[1]!);
    const list = readList(keyspace, key, now);
    if (list === undefined) return count < 0 ? NULL_BULK : NULL_ARRAY;
    if (isReply(list)) return list;
    if (count === 0) return EMPTY_ARRAY;
    if (count < 0) {
      const refusal = checkReplySize(keyspace, bulkSize(endItem(list, front).length));
      if (refusal !== undefined) return refusal;
      const item = front ? list.popFront() : list.popBack();
      removeIfEmpty(keyspace, key, list);
      return bulk(item);
    }
    return popItems(keyspace, key, list, front, count);
  };
}

export const lpop = popCommand("lpop", true);
export const rpop = popCommand("rpop", false);

function endItem(list: KvList, front: boolean): Buffer {
  return list.at(front ? 0 : list.length - 1);
}

/**
 * Pops up to `count` items from one end of the non-empty `list` at `key` as an array reply,
 * totalled first: a refused pop removes nothing.
 */
function popItems(
  keyspace: Keyspace,
  key: string,
  list: KvList,
  front: boolean,
  count: number,
): Buffer {
  const n = Math.min(count, list.length);
  const size = itemsReplySize(n, (i) => list.at(front ? i : list.length - 1 - i));
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const popped: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++) popped[i] = bulk(front ? list.popFront() : list.popBack());
  removeIfEmpty(keyspace, key, list);
  return array(popped);
}

/**
 * The first list with items among `keys`, in order, as [key, list]; WRONGTYPE when a key met
 * before it holds another type (Redis checks each key in turn); undefined when none has items.
 */
function firstNonEmpty(
  keyspace: Keyspace,
  keys: readonly Buffer[],
  now: number,
): [string, KvList] | Buffer | undefined {
  for (const keyBytes of keys) {
    const key = latin1(keyBytes);
    const list = readList(keyspace, key, now);
    if (isReply(list)) return list;
    if (list !== undefined) return [key, list];
  }
  return undefined;
}

/**
 * BLPOP/BRPOP's serving step: pops one item from the head (`front`) or tail of the first list
 * with items among `keys` and returns the reply `*2 key item`; WRONGTYPE when a key met before
 * such a list holds another type; the reply-size refusal (nothing popped); or undefined when every
 * key is absent: nothing to serve, the caller blocks (or answers its timeout reply).
 */
export function popFirst(
  keyspace: Keyspace,
  keys: readonly Buffer[],
  front: boolean,
  now: number,
): Buffer | undefined {
  const found = firstNonEmpty(keyspace, keys, now);
  if (found === undefined || isReply(found)) return found;
  const [key, list] = found;
  const item = endItem(list, front);
  const size = arrayHeaderSize(2) + bulkSize(key.length) + bulkSize(item.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  if (front) list.popFront();
  else list.popBack();
  removeIfEmpty(keyspace, key, list);
  return array([bulk(key), bulk(item)]);
}

/**
 * LMPOP/BLMPOP's serving step: pops up to `count` (>= 1) items from one end of the first list
 * with items among `keys` and returns `*2 key *n items...`; WRONGTYPE, the reply-size refusal, or
 * undefined (nothing to serve) as popFirst.
 */
export function mpopFirst(
  keyspace: Keyspace,
  keys: readonly Buffer[],
  front: boolean,
  count: number,
  now: number,
): Buffer | undefined {
  assert(count >= 1, "mpopFirst count");
  const found = firstNonEmpty(keyspace, keys, now);
  if (found === undefined || isReply(found)) return found;
  const [key, list] = found;
  const n = Math.min(count, list.length);
  const items = itemsReplySize(n, (i) => list.at(front ? i : list.length - 1 - i));
  const refusal = checkReplySize(keyspace, arrayHeaderSize(2) + bulkSize(key.length) + items);
  if (refusal !== undefined) return refusal;
  return array([bulk(key), popItems(keyspace, key, list, front, n)]);
}

/**
 * LMOVE's (and RPOPLPUSH's, BLMOVE's, BRPOPLPUSH's) serving step: pops an item from the head
 * (`fromFront`) or tail of the list at `source` and pushes it onto the head (`toFront`) or tail
 * of the list at `destination` (created if absent; the same list rotates), returning the item's
 * bulk reply; WRONGTYPE when either key holds another type (nothing moved); the reply-size
 * refusal; or undefined when `source` is absent: nothing to serve.
 */
export function moveElement(
  keyspace: Keyspace,
  source: Buffer,
  destination: Buffer,
  fromFront: boolean,
  toFront: boolean,
  now: number,
): Buffer | undefined {
  const sourceKey = latin1(source);
  const from = readList(keyspace, sourceKey, now);
  if (from === undefined || isReply(from)) return from;
  const destinationKey = latin1(destination);
  let to = readList(keyspace, destinationKey, now);
  if (isReply(to)) return to;
  const item = endItem(from, fromFront);
  const refusal = checkReplySize(keyspace, bulkSize(item.length));
  if (refusal !== undefined) return refusal;
  if (fromFront) from.popFront();
  else from.popBack();
  if (to === undefined) {
    to = new KvList();
    keyspace.insert(destinationKey, to);
  }
  if (toFront) to.pushFront(item);
  else to.pushBack(item);
  // After the push: with source = destination the list is not empty any more.
  removeIfEmpty(keyspace, sourceKey, from);
  return bulk(item);
}

export const lmove: Handler = (keyspace, args, now) => {
  const fromFront = parseEnd(args[3]!);
  const toFront = parseEnd(args[4]!);
  if (fromFront === null || toFront === null) return ERR_SYNTAX;
  return moveElement(keyspace, args[1]!, args[2]!, fromFront, toFront, now) ?? NULL_BULK;
};

export const rpoplpush: Handler = (keyspace, args, now) =>
  moveElement(keyspace, args[1]!, args[2]!, false, true, now) ?? NULL_BULK;

/** LMPOP's (and BLMPOP's) parsed arguments after `numkeys` at args[numkeysAt]. */
export interface LmpopArgs {
  readonly keys: readonly Buffer[];
  readonly front: boolean;
  readonly count: number;
}

/** Parses `numkeys key... LEFT|RIGHT [COUNT count]`: BLMPOP passes 2 (its timeout is at 1). */
export function parseMpop(args: readonly Buffer[], numkeysAt: number): LmpopArgs | Buffer {
  const parsed = parseMpopArgs(args, numkeysAt, parseEnd);
  return isReply(parsed) ? parsed : { keys: parsed.keys, front: parsed.where, count: parsed.count };
}

export const lmpop: Handler = (keyspace, args, now) => {
  const parsed = parseMpop(args, 1);
  if (isReply(parsed)) return parsed;
  return mpopFirst(keyspace, parsed.keys, parsed.front, parsed.count, now) ?? NULL_ARRAY;
};

export const lrange: Handler = (keyspace, args, now) => {
  const start = parseLong(args[2]!);
  const stop = parseLong(args[3]!);
  if (start === null || stop === null) return ERR_NOT_INTEGER;
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return EMPTY_ARRAY;
  if (isReply(list)) return list;
  const range = indexRange(start, stop, list.length);
  if (range === undefined) return EMPTY_ARRAY;
  const [first, last] = range;
  const refusal = checkReplySize(
    keyspace,
    itemsReplySize(last - first + 1, (i) => list.at(first + i)),
  );
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = new Array(last - first + 1);
  for (let i = first; i <= last; i++) items[i - first] = bulk(list.at(i));
  return array(items);
};

export const llen: Handler = (keyspace, args, now) => {
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return ZERO;
  return isReply(list) ? list : integer(list.length);
};

export const lindex: Handler = (keyspace, args, now) => {
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return NULL_BULK;
  if (isReply(list)) return list;
  const index = parseLong(args[2]!);
  if (index === null) return ERR_NOT_INTEGER;
  const at = resolveIndex(index, list.length);
  if (at === -1) return NULL_BULK;
  const item = list.at(at);
  return checkReplySize(keyspace, bulkSize(item.length)) ?? bulk(item);
};

export const lset: Handler = (keyspace, args, now) => {
  const refused = oversizedValue(keyspace, args, 3);
  if (refused !== undefined) return refused;
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return ERR_NO_SUCH_KEY;
  if (isReply(list)) return list;
  const index = parseLong(args[2]!);
  if (index === null) return ERR_NOT_INTEGER;
  const at = resolveIndex(index, list.length);
  if (at === -1) return ERR_INDEX_RANGE;
  list.set(at, copyBytes(args[3]!));
  return OK;
};

export const lrem: Handler = (keyspace, args, now) => {
  const count = parseLong(args[2]!);
  if (count === null) return ERR_NOT_INTEGER;
  const key = latin1(args[1]!);
  const list = readList(keyspace, key, now);
  if (list === undefined) return ZERO;
  if (isReply(list)) return list;
  const removed = list.removeEqual(args[3]!, Math.abs(count), count < 0);
  removeIfEmpty(keyspace, key, list);
  return integer(removed);
};

export const ltrim: Handler = (keyspace, args, now) => {
  const start = parseLong(args[2]!);
  const stop = parseLong(args[3]!);
  if (start === null || stop === null) return ERR_NOT_INTEGER;
  const key = latin1(args[1]!);
  const list = readList(keyspace, key, now);
  if (list === undefined) return OK;
  if (isReply(list)) return list;
  const range = indexRange(start, stop, list.length);
  if (range === undefined) list.trim(0, 0);
  else list.trim(range[0], range[1] - range[0] + 1);
  removeIfEmpty(keyspace, key, list);
  return OK;
};

export const linsert: Handler = (keyspace, args, now) => {
  const refused = oversizedValue(keyspace, args, 4);
  if (refused !== undefined) return refused;
  const where = upper(args[2]!);
  if (where !== "BEFORE" && where !== "AFTER") return ERR_SYNTAX;
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return ZERO;
  if (isReply(list)) return list;
  const pivot = args[3]!;
  for (let i = 0; i < list.length; i++) {
    if (list.at(i).equals(pivot)) {
      list.insert(where === "BEFORE" ? i : i + 1, copyBytes(args[4]!));
      return integer(list.length);
    }
  }
  return integer(-1);
};

/** LPOS's options (Redis's lposCommand). */
interface LposOptions {
  /** Matches to skip before the first one reported (RANK's magnitude - 1). */
  readonly skip: number;
  /** Search from the tail (a negative RANK). */
  readonly fromTail: boolean;
  /** COUNT: -1 absent (one index or nil), 0 every match. */
  readonly count: number;
  /** MAXLEN: items compared at most, 0 for all. */
  readonly maxlen: number;
  /** RANK was INT64_MIN: Redis negates it into itself and reports every match, COUNT aside. */
  readonly rankOverflow: boolean;
}

function parseLposOptions(args: readonly Buffer[]): LposOptions | Buffer {
  let rank = 1;
  let rankOverflow = false;
  let count = -1;
  let maxlen = 0;
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]!);
    const hasValue = i + 1 < args.length;
    if (option === "RANK" && hasValue) {
      const parsed = parseInt64(args[++i]!);
      if (parsed === null) return ERR_NOT_INTEGER;
      if (parsed === 0) return ERR_RANK_ZERO;
      rankOverflow = parsed === INT64_MIN;
      rank = Number(parsed);
    } else if (option === "COUNT" && hasValue) {
      const parsed = parseLong(args[++i]!);
      if (parsed === null || parsed < 0) return ERR_COUNT_NEGATIVE;
      count = parsed;
    } else if (option === "MAXLEN" && hasValue) {
      const parsed = parseLong(args[++i]!);
      if (parsed === null || parsed < 0) return ERR_MAXLEN_NEGATIVE;
      maxlen = parsed;
    } else return ERR_SYNTAX;
  }
  return { skip: Math.abs(rank) - 1, fromTail: rank < 0, count, maxlen, rankOverflow };
}

export const lpos: Handler = (keyspace, args, now) => {
  const options = parseLposOptions(args);
  if (isReply(options)) return options;
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return options.count === -1 ? NULL_BULK : EMPTY_ARRAY;
  if (isReply(list)) return list;
  const { fromTail, count, maxlen, rankOverflow } = options;
  const skip = rankOverflow ? 0 : options.skip;
  const wanted = count === -1 ? 1 : count === 0 || rankOverflow ? Number.POSITIVE_INFINITY : count;
  const element = args[2]!;
  const length = list.length;
  const scanned = maxlen === 0 ? length : Math.min(maxlen, length);
  const found: number[] = [];
  let matches = 0;
  for (let step = 0; step < scanned && found.length < wanted; step++) {
    const index = fromTail ? length - 1 - step : step;
    if (list.at(index).equals(element) && ++matches > skip) found.push(index);
  }
  if (count === -1) return found.length === 0 ? NULL_BULK : integer(found[0]!);
  let size = arrayHeaderSize(found.length);
  for (const index of found) size += 3 + String(index).length;
  return checkReplySize(keyspace, size) ?? array(found.map((index) => integer(index)));
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const LIST_COMMANDS: readonly CommandSpec[] = [
  {
    name: "lpush",
    arity: -3,
    kind: "write",
    handler: lpush,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUES_FROM_2,
  },
  {
    name: "rpush",
    arity: -3,
    kind: "write",
    handler: rpush,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUES_FROM_2,
  },
  {
    name: "lpushx",
    arity: -3,
    kind: "write",
    handler: lpushx,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUES_FROM_2,
  },
  {
    name: "rpushx",
    arity: -3,
    kind: "write",
    handler: rpushx,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUES_FROM_2,
  },
  { name: "lpop", arity: -2, kind: "write", handler: lpop, flags: ["fast"], keys: KEY_1 },
  { name: "rpop", arity: -2, kind: "write", handler: rpop, flags: ["fast"], keys: KEY_1 },
  {
    name: "lmpop",
    arity: -4,
    kind: "write",
    handler: lmpop,
    keys: numkeysKeySpec(1, undefined, 1),
  },
  { name: "lrange", arity: 4, kind: "read", handler: lrange, keys: KEY_1 },
  { name: "llen", arity: 2, kind: "read", handler: llen, flags: ["fast"], keys: KEY_1 },
  { name: "lindex", arity: 3, kind: "read", handler: lindex, keys: KEY_1 },
  {
    name: "lset",
    arity: 4,
    kind: "write",
    handler: lset,
    flags: ["denyoom"],
    keys: KEY_1,
    values: VALUE_AT_3,
  },
  { name: "lrem", arity: 4, kind: "write", handler: lrem, keys: KEY_1 },
  { name: "ltrim", arity: 4, kind: "write", handler: ltrim, keys: KEY_1 },
  {
    name: "linsert",
    arity: 5,
    kind: "write",
    handler: linsert,
    flags: ["denyoom"],
    keys: KEY_1,
    values: { first: 4, step: 0 },
  },
  { name: "lpos", arity: -3, kind: "read", handler: lpos, keys: KEY_1 },
  { name: "lmove", arity: 5, kind: "write", handler: lmove, flags: ["denyoom"], keys: KEYS_1_2 },
  {
    name: "rpoplpush",
    arity: 3,
    kind: "write",
    handler: rpoplpush,
    flags: ["denyoom"],
    keys: KEYS_1_2,
  },
];
