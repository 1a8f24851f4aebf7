/**
 * Keyspace commands: DEL UNLINK EXISTS TOUCH (P)EXPIRE(AT) (P)EXPIRETIME TTL PTTL PERSIST KEYS
 * SCAN DBSIZE FLUSH* TYPE RENAME RENAMENX COPY MOVE SWAPDB RANDOMKEY, and OBJECT (kv-object.ts).
 * COPY, MOVE and SWAPDB reach the other databases through `context.databases`.
 */

import { GlobPattern } from "./glob.ts";
import { ALWAYS, type CommandSpec, KEY_1, KEYS_1_2, KEYS_FROM_1 } from "./kv-command-spec.ts";
import {
  isStringValue,
  Keyspace,
  KvHash,
  KvList,
  KvSet,
  type KvValue,
  KvZset,
  NO_EXPIRY,
  typeOf,
} from "./kv-keyspace.ts";
import { object, objectKeys } from "./kv-object.ts";
import { parseScanOptions, patternTooLong } from "./kv-scan-options.ts";
import {
  checkReplySize,
  copyBytes,
  type Databases,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type ExecContext,
  expiryMs,
  type Handler,
  invalidExpire,
  isReply,
  latin1,
  parseInt64,
  parseLong,
  upper,
} from "./kv-shared.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkArray,
  bulkSize,
  errorReply,
  integer,
  NULL_BULK,
  OK,
  ONE,
  simpleString,
  ZERO,
} from "./resp.ts";

export const del: Handler = (keyspace, args, now) => {
  let deleted = 0;
  for (let i = 1; i < args.length; i++) {
    const key = latin1(args[i]!);
    const entry = keyspace.lookup(key, now);
    if (entry !== undefined) {
      keyspace.remove(key, entry);
      deleted++;
    }
  }
  return integer(deleted);
};

export const exists: Handler = (keyspace, args, now) => {
  let found = 0;
  for (let i = 1; i < args.length; i++) {
    if (keyspace.lookup(latin1(args[i]!), now) !== undefined) found++;
  }
  return integer(found);
};

const EXPIRE_NX = 1;
const EXPIRE_XX = 2;
const EXPIRE_GT = 4;
const EXPIRE_LT = 8;

/** Redis's parseExtendedExpireArgumentsOrReply. */
function parseExpireFlags(args: readonly Buffer[]): number | Buffer {
  let flags = 0;
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]!);
    if (option === "NX") flags |= EXPIRE_NX;
    else if (option === "XX") flags |= EXPIRE_XX;
    else if (option === "GT") flags |= EXPIRE_GT;
    else if (option === "LT") flags |= EXPIRE_LT;
    else return errorReply(`ERR Unsupported option ${latin1(args[i]!)}`);
  }
  if (flags & EXPIRE_NX && flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT)) {
    return errorReply("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (flags & EXPIRE_GT && flags & EXPIRE_LT) {
    return errorReply("ERR GT and LT options at the same time are not compatible");
  }
  return flags;
}

/** Whether the NX/XX/GT/LT conditions let `when` replace `current` (NO_EXPIRY = none). */
function expireAllowed(flags: number, current: number, when: number): boolean {
  if (flags & EXPIRE_NX && current !== NO_EXPIRY) return false;
  if (flags & EXPIRE_XX && current === NO_EXPIRY) return false;
  if (flags & EXPIRE_GT && (current === NO_EXPIRY || when <= current)) return false;
  if (flags & EXPIRE_LT && current !== NO_EXPIRY && when >= current) return false;
  return true;
}

/** EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: Redis's expireGenericCommand. */
function expireCommand(name: string, unitMs: number, relative: boolean): Handler {
  return (keyspace, args, now) => {
    const flags = parseExpireFlags(args);
    if (isReply(flags)) return flags;
    const value = parseInt64(args[2]!);
    if (value === null) return ERR_NOT_INTEGER;
    const when = expiryMs(value, unitMs, relative ? now : 0);
    if (when === null) return invalidExpire(name);
    const key = latin1(args[1]!);
    const entry = keyspace.lookup(key, now);
    if (entry === undefined) return ZERO;
    if (!expireAllowed(flags, entry.expiresAtMs, when)) return ZERO;
    if (when <= now) keyspace.remove(key, entry);
    else keyspace.setExpiry(key, entry, when);
    return ONE;
  };
}

export const expire = expireCommand("expire", 1000, true);
export const pexpire = expireCommand("pexpire", 1, true);
export const expireat = expireCommand("expireat", 1000, false);
export const pexpireat = expireCommand("pexpireat", 1, false);

function ttlCommand(unitMs: number): Handler {
  return (keyspace, args, now) => {
    const entry = keyspace.lookup(latin1(args[1]!), now);
    if (entry === undefined) return integer(-2);
    if (entry.expiresAtMs === NO_EXPIRY) return integer(-1);
    const ttlMs = Math.max(0, entry.expiresAtMs - now);
    return integer(unitMs === 1 ? ttlMs : Math.floor((ttlMs + 500) / 1000));
  };
}

export const ttl = ttlCommand(1000);
export const pttl = ttlCommand(1);

export const persist: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  if (entry === undefined || entry.expiresAtMs === NO_EXPIRY) return ZERO;
  keyspace.setExpiry(key, entry, NO_EXPIRY);
  return ONE;
};

/** Bytes of the RESP array of bulk strings of `keys`. */
function keysReplySize(keys: readonly string[]): number {
  let size = arrayHeaderSize(keys.length);
  for (const key of keys) size += bulkSize(key.length); // latin1: one char per byte
  return size;
}

export const keys: Handler = (keyspace, args, now) => {
  const refused = patternTooLong(keyspace, args[1]!);
  if (refused !== undefined) return refused;
  const pattern = new GlobPattern(latin1(args[1]!));
  const found: string[] = [];
  for (const [key, entry] of keyspace.entries) {
    if (Keyspace.isLive(entry, now) && (pattern.matchesAll || pattern.matches(key))) {
      found.push(key);
    }
  }
  return checkReplySize(keyspace, keysReplySize(found)) ?? bulkArray(found);
};

/** Most entries one SCAN call may examine, whatever COUNT asks: bounds the reply's cost. */
export const SCAN_COUNT_MAX = 100_000;

export const scan: Handler = (keyspace, args, now) => {
  const cursorText = latin1(args[1]!);
  const cursor = /^[0-9]{1,15}$/.test(cursorText) ? Number(cursorText) : -1;
  if (cursor < 0) return errorReply("ERR invalid cursor");
  const options = parseScanOptions(keyspace, args, 2, SCAN_COUNT_MAX, true);
  if (isReply(options)) return options;
  const { pattern, type } = options;
  const step = keyspace.scan(
    cursor,
    options.count,
    now,
    (key, entry) =>
      (pattern === undefined || pattern.matches(key)) &&
      (type === undefined || typeOf(entry.value) === type),
  );
  const nextCursor = String(step.cursor);
  const size = arrayHeaderSize(2) + bulkSize(nextCursor.length) + keysReplySize(step.keys);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array([bulk(nextCursor), bulkArray(step.keys)]);
};

export const dbsize: Handler = (keyspace, _args, now) => integer(keyspace.liveCount(now));

/** FLUSHALL (every database) and FLUSHDB (this one) [ASYNC | SYNC]: both free at once here. */
function flushCommand(everyDatabase: boolean): Handler {
  return (keyspace, args, _now, context) => {
    if (args.length > 2) return ERR_SYNTAX;
    const mode = args[1] === undefined ? "SYNC" : upper(args[1]);
    if (mode !== "SYNC" && mode !== "ASYNC") return ERR_SYNTAX;
    const databases = databasesOf(keyspace, context);
    if (!everyDatabase) keyspace.clear();
    else for (let i = 0; i < databases.count; i++) databases.get(i).clear();
    return simpleString("OK");
  };
}

export const flushall = flushCommand(true);
export const flushdb = flushCommand(false);

export const type: Handler = (keyspace, args, now) => {
  const entry = keyspace.lookup(latin1(args[1]!), now);
  return simpleString(entry === undefined ? "none" : typeOf(entry.value));
};

/** UNLINK: DEL (the store frees nothing in the background: a removed value is just dropped). */
export const unlink: Handler = del;

/** TOUCH: the store keeps no access times, so it only counts the keys that exist, as EXISTS. */
export const touch: Handler = exists;

/** EXPIRETIME, PEXPIRETIME: the absolute expiry, -1 without one, -2 for a missing key. */
function expiretimeCommand(unitMs: number): Handler {
  return (keyspace, args, now) => {
    const entry = keyspace.lookup(latin1(args[1]!), now);
    if (entry === undefined) return integer(-2);
    if (entry.expiresAtMs === NO_EXPIRY) return integer(-1);
    // Redis rounds seconds half up; expiries past 2^53 ms are not exact here (stored as numbers).
    const at = entry.expiresAtMs;
    return integer(unitMs === 1 ? at : Math.floor((at + 500) / 1000));
  };
}

export const expiretime = expiretimeCommand(1000);
export const pexpiretime = expiretimeCommand(1);

const ERR_NO_SUCH_KEY = errorReply("ERR no such key");
const ERR_SAME_OBJECT = errorReply("ERR source and destination objects are the same");
const ERR_DB_RANGE = errorReply("ERR DB index is out of range");
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * A database index as Redis's getIntFromObjectOrReply reads it: an int, else
 * `message` (SWAPDB's) or Redis's usual errors. Range against the store's databases is checked
 * by the caller.
 */
function parseDbIndex(bytes: Buffer, message?: string): number | Buffer {
  const value = parseLong(bytes);
  if (value === null) return message === undefined ? ERR_NOT_INTEGER : errorReply(message);
  if (value < INT32_MIN || value > INT32_MAX) {
    return errorReply(
      message ?? `ERR value is out of range, value must between ${INT32_MIN} and ${INT32_MAX}`,
    );
  }
  return value;
}

/**
 * The store's databases as `context` names them, or this one database alone where it names none
 * (a store without SELECT): then every other index is out of range, as in a redis-server started
 * with `databases 1`.
 */
function databasesOf(keyspace: Keyspace, context: ExecContext): Databases {
  return (
    context.databases ?? {
      count: 1,
      current: 0,
      get: () => keyspace,
      swap: () => {},
    }
  );
}

/** RENAME, RENAMENX: the entry moves to a new key (a new insertion number), with its TTL. */
function renameCommand(nx: boolean): Handler {
  return (keyspace, args, now) => {
    const source = latin1(args[1]!);
    const destination = latin1(args[2]!);
    const entry = keyspace.lookup(source, now);
    if (entry === undefined) return ERR_NO_SUCH_KEY;
    if (source === destination) return nx ? ZERO : OK;
    const existing = keyspace.lookup(destination, now);
    if (existing !== undefined) {
      if (nx) return ZERO;
      keyspace.remove(destination, existing);
    }
    // A new entry, never the old object under a new name (kv-snapshot-job.ts relies on it).
    keyspace.remove(source, entry);
    keyspace.insert(destination, entry.value, entry.expiresAtMs);
    return nx ? ONE : OK;
  };
}

export const rename = renameCommand(false);
export const renamenx = renameCommand(true);

/** A deep copy of a value (COPY): the two keys must never share anything that changes. */
export function cloneValue(value: KvValue): KvValue {
  if (isStringValue(value)) return copyBytes(value);
  if (value instanceof KvList) {
    const list = new KvList();
    for (let i = 0; i < value.length; i++) list.pushBack(copyBytes(value.at(i)));
    return list;
  }
  if (value instanceof KvHash) {
    const hash = new KvHash();
    for (const [field, fieldValue] of value.fields) hash.fields.set(field, copyBytes(fieldValue));
    return hash;
  }
  if (value instanceof KvSet) {
    const set = new KvSet();
    for (const member of value.members) set.members.add(member);
    return set;
  }
  if (value instanceof KvZset) {
    const zset = new KvZset();
    for (const item of value.items) zset.appendSorted(item.member, item.score);
    return zset;
  }
  return value.clone();
}

/** COPY source destination [DB index] [REPLACE]: Redis's copyCommand, its checks in its order. */
export const copy: Handler = (keyspace, args, now, context) => {
  const databases = databasesOf(keyspace, context);
  let targetIndex = databases.current;
  let replace = false;
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]!);
    if (option === "REPLACE") replace = true;
    else if (option === "DB" && i + 1 < args.length) {
      const index = parseDbIndex(args[++i]!);
      if (isReply(index)) return index;
      if (index < 0 || index >= databases.count) return ERR_DB_RANGE;
      targetIndex = index;
    } else return ERR_SYNTAX;
  }
  const source = latin1(args[1]!);
  const destination = latin1(args[2]!);
  if (targetIndex === databases.current && source === destination) return ERR_SAME_OBJECT;
  const entry = keyspace.lookup(source, now);
  if (entry === undefined) return ZERO;
  const target = targetIndex === databases.current ? keyspace : databases.get(targetIndex);
  const existing = target.lookup(destination, now);
  if (existing !== undefined) {
    if (!replace) return ZERO;
    target.remove(destination, existing);
  }
  target.insert(destination, cloneValue(entry.value), entry.expiresAtMs);
  return ONE;
};

/** MOVE key db: to another database, unless the key exists there. */
export const move: Handler = (keyspace, args, now, context) => {
  const databases = databasesOf(keyspace, context);
  const index = parseDbIndex(args[2]!);
  if (isReply(index)) return index;
  if (index < 0 || index >= databases.count) return ERR_DB_RANGE;
  if (index === databases.current) return ERR_SAME_OBJECT;
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return ZERO;
  const target = databases.get(index);
  if (target.lookup(key, now) !== undefined) return ZERO;
  keyspace.remove(key, entry);
  target.insert(key, entry.value, entry.expiresAtMs);
  return ONE;
};

/** SWAPDB index1 index2. */
export const swapdb: Handler = (keyspace, args, _now, context) => {
  const databases = databasesOf(keyspace, context);
  const first = parseDbIndex(args[1]!, "ERR invalid first DB index");
  if (isReply(first)) return first;
  const second = parseDbIndex(args[2]!, "ERR invalid second DB index");
  if (isReply(second)) return second;
  if (first < 0 || first >= databases.count || second < 0 || second >= databases.count) {
    return ERR_DB_RANGE;
  }
  if (first !== second) databases.swap(first, second);
  return OK;
};

/** Live keys RANDOMKEY looks at per step of its walk. */
const RANDOMKEY_SCAN_COUNT = 16;

/** A 32-bit hash of some numbers (up to 2^53 each): RANDOMKEY's seed. */
function mixSeed(words: readonly number[]): number {
  let hash = 0x9e3779b9;
  for (const word of words) {
    hash = Math.imul(hash ^ (word >>> 0), 0x85ebca6b);
    hash = Math.imul(hash ^ Math.floor(word / 2 ** 32) ^ (hash >>> 13), 0xc2b2ae35);
    hash ^= hash >>> 16;
  }
  return hash >>> 0;
}

/**
 * RANDOMKEY: not random, by design (every replica, and a read served by any of them, must pick
 * the same key). A point among the insertion numbers is chosen from the store's state (the log's
 * clock, the next insertion number, the key count), and the answer is the first live key inserted
 * at or after it, wrapping around: the same key until the store changes, and keys after a long
 * run of deleted ones are likelier. Never an expired key; nothing is collected (it is a read).
 */
export const randomkey: Handler = (keyspace, _args, now) => {
  if (keyspace.liveCount(now) === 0) return NULL_BULK;
  const oldest = keyspace.entries.values().next().value!.seq;
  const span = keyspace.nextSeq - oldest;
  const seed = mixSeed([keyspace.clockMs, keyspace.nextSeq, keyspace.entries.size]);
  let cursor = oldest + (seed % span);
  let found: string | undefined;
  const take = (key: string): boolean => {
    found ??= key;
    return false;
  };
  // Ends: a live key exists, and from the start (cursor 0) the walk reaches every key.
  while (found === undefined)
    cursor = keyspace.scan(cursor, RANDOMKEY_SCAN_COUNT, now, take).cursor;
  return checkReplySize(keyspace, bulkSize(found.length)) ?? bulk(found);
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const KEY_COMMANDS: readonly CommandSpec[] = [
  { name: "del", arity: -2, kind: "write", handler: del, keys: KEYS_FROM_1 },
  { name: "exists", arity: -2, kind: "read", handler: exists, flags: ["fast"], keys: KEYS_FROM_1 },
  { name: "expire", arity: -3, kind: "write", handler: expire, flags: ["fast"], keys: KEY_1 },
  { name: "pexpire", arity: -3, kind: "write", handler: pexpire, flags: ["fast"], keys: KEY_1 },
  { name: "expireat", arity: -3, kind: "write", handler: expireat, flags: ["fast"], keys: KEY_1 },
  { name: "pexpireat", arity: -3, kind: "write", handler: pexpireat, flags: ["fast"], keys: KEY_1 },
  { name: "ttl", arity: 2, kind: "read", handler: ttl, flags: ["fast"], keys: KEY_1 },
  { name: "pttl", arity: 2, kind: "read", handler: pttl, flags: ["fast"], keys: KEY_1 },
  { name: "persist", arity: 2, kind: "write", handler: persist, flags: ["fast"], keys: KEY_1 },
  { name: "keys", arity: 2, kind: "read", handler: keys, flags: ["sort_for_script"] },
  { name: "scan", arity: -2, kind: "read", handler: scan },
  { name: "dbsize", arity: 1, kind: "read", handler: dbsize, flags: ["fast"] },
  { name: "flushall", arity: -1, kind: "write", handler: flushall, admin: ALWAYS },
  { name: "flushdb", arity: -1, kind: "write", handler: flushdb, admin: ALWAYS },
  { name: "type", arity: 2, kind: "read", handler: type, flags: ["fast"], keys: KEY_1 },
  { name: "unlink", arity: -2, kind: "write", handler: unlink, flags: ["fast"], keys: KEYS_FROM_1 },
  { name: "touch", arity: -2, kind: "read", handler: touch, flags: ["fast"], keys: KEYS_FROM_1 },
  { name: "expiretime", arity: 2, kind: "read", handler: expiretime, flags: ["fast"], keys: KEY_1 },
  {
    name: "pexpiretime",
    arity: 2,
    kind: "read",
    handler: pexpiretime,
    flags: ["fast"],
    keys: KEY_1,
  },
  { name: "rename", arity: 3, kind: "write", handler: rename, keys: KEYS_1_2 },
  { name: "renamenx", arity: 3, kind: "write", handler: renamenx, flags: ["fast"], keys: KEYS_1_2 },
  { name: "copy", arity: -3, kind: "write", handler: copy, flags: ["denyoom"], keys: KEYS_1_2 },
  { name: "move", arity: 3, kind: "write", handler: move, flags: ["fast"], keys: KEY_1 },
  // Both databases change whole: administering the store, as FLUSHALL.
  { name: "swapdb", arity: 3, kind: "write", handler: swapdb, flags: ["fast"], admin: ALWAYS },
  { name: "randomkey", arity: 1, kind: "read", handler: randomkey },
  {
    name: "object",
    arity: -2,
    kind: "read",
    handler: object,
    keys: { find: objectKeys, legacy: { first: 0, last: 0, step: 0 } },
  },
];
