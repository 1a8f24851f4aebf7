/**
 * Hash commands: HSET HMSET HSETNX HGET HMGET HDEL HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN
 * HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.
 *
 * Fields are kept in insertion order (a Map), which is also Redis's order for its small
 * (listpack) hashes, so HGETALL, HKEYS and HVALS of those match Redis. HRANDFIELD and HSCAN
 * differ by design, as their comments say.
 */

import { type CommandSpec, KEY_1, PAIRED_FROM_3, VALUE_AT_3 } from "./kv-command-spec.ts";
import { type Keyspace, KvHash } from "./kv-keyspace.ts";
import {
  EMPTY_SCAN,
  ERR_INVALID_CURSOR,
  parseScanCursor,
  parseScanOptions,
} from "./kv-scan-options.ts";
import {
  addInt64,
  checkReplySize,
  copyBytes,
  ERR_NOT_INTEGER,
  ERR_OVERFLOW,
  ERR_SYNTAX,
  type Handler,
  INT64_MAX,
  INT64_MIN,
  isReply,
  latin1,
  parseInt64,
  replyTooLarge,
  upper,
  valueTooLarge,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import {
  addLongDouble,
  formatLongDouble,
  type LongDouble,
  parseLongDouble,
} from "./long-double.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_BULK,
  OK,
  ONE,
  ZERO,
} from "./resp.ts";

const ERR_NOT_INTEGER_VALUE = errorReply("ERR hash value is not an integer");
const ERR_NOT_FLOAT = errorReply("ERR value is not a valid float");
const ERR_NOT_FLOAT_VALUE = errorReply("ERR hash value is not a float");
const ERR_NAN_OR_INFINITY = errorReply("ERR value is NaN or Infinity");
const ERR_WOULD_BE_INFINITY = errorReply("ERR increment would produce NaN or Infinity");
const ERR_RANDFIELD_RANGE = errorReply(
  "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
);
const ERR_OUT_OF_RANGE = errorReply("ERR value is out of range");
/** HSCAN of an absent key: cursor 0, nothing. */
/** Bytes of `$-1\r\n`. */
const NULL_BULK_SIZE = 5;

/** The hash at `key`, undefined when absent, or WRONGTYPE. */
function readHash(keyspace: Keyspace, key: string, now: number): KvHash | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvHash ? entry.value : WRONGTYPE;
}

/** The hash at `key`, created empty (and inserted) when absent; for a write about to add. */
function hashForWrite(keyspace: Keyspace, key: string, found: KvHash | undefined): KvHash {
  if (found !== undefined) return found;
  const hash = new KvHash();
  keyspace.insert(key, hash);
  return hash;
}

/** Sets field/value pairs from args[2..]; returns how many fields are new, or an error reply. */
function setFields(keyspace: Keyspace, args: readonly Buffer[], now: number): number | Buffer {
  for (let i = 3; i < args.length; i += 2) {
    if (args[i]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  const key = latin1(args[1]!);
  const found = readHash(keyspace, key, now);
  if (isReply(found)) return found;
  const fields = hashForWrite(keyspace, key, found).fields;
  let added = 0;
  for (let i = 2; i < args.length; i += 2) {
    const field = latin1(args[i]!);
    if (!fields.has(field)) added++;
    fields.set(field, copyBytes(args[i + 1]!));
  }
  return added;
}

export const hset: Handler = (keyspace, args, now) => {
  if (args.length % 2 !== 0) return wrongArity("hset");
  const added = setFields(keyspace, args, now);
  return isReply(added) ? added : integer(added);
};

export const hmset: Handler = (keyspace, args, now) => {
  if (args.length % 2 !== 0) return wrongArity("hmset");
  const added = setFields(keyspace, args, now);
  return isReply(added) ? added : OK;
};

export const hsetnx: Handler = (keyspace, args, now) => {
  if (args[3]!.length > keyspace.limits.valueBytesMax) {
    return valueTooLarge(keyspace.limits.valueBytesMax);
  }
  const key = latin1(args[1]!);
  const found = readHash(keyspace, key, now);
  if (isReply(found)) return found;
  const field = latin1(args[2]!);
  if (found?.fields.has(field)) return ZERO;
  hashForWrite(keyspace, key, found).fields.set(field, copyBytes(args[3]!));
  return ONE;
};

export const hget: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return NULL_BULK;
  if (isReply(hash)) return hash;
  const value = hash.fields.get(latin1(args[2]!));
  if (value === undefined) return NULL_BULK;
  return checkReplySize(keyspace, bulkSize(value.length)) ?? bulk(value);
};

export const hmget: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (isReply(hash)) return hash;
  const values: (Buffer | undefined)[] = new Array(args.length - 2);
  let size = arrayHeaderSize(values.length);
  for (let i = 2; i < args.length; i++) {
    const value = hash?.fields.get(latin1(args[i]!));
    values[i - 2] = value;
    size += value === undefined ? NULL_BULK_SIZE : bulkSize(value.length);
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(values.map((value) => (value === undefined ? NULL_BULK : bulk(value))));
};

export const hdel: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const hash = readHash(keyspace, key, now);
  if (hash === undefined) return ZERO;
  if (isReply(hash)) return hash;
  let deleted = 0;
  for (let i = 2; i < args.length; i++) if (hash.fields.delete(latin1(args[i]!))) deleted++;
  if (hash.fields.size === 0) keyspace.remove(key, keyspace.entries.get(key)!);
  return integer(deleted);
};

/** HGETALL, HKEYS, HVALS: every field and/or value, in insertion order. */
function listCommand(withFields: boolean, withValues: boolean): Handler {
  return (keyspace, args, now) => {
    const hash = readHash(keyspace, latin1(args[1]!), now);
    if (hash === undefined) return EMPTY_ARRAY;
    if (isReply(hash)) return hash;
    const perField = (withFields ? 1 : 0) + (withValues ? 1 : 0);
    let size = arrayHeaderSize(perField * hash.fields.size);
    for (const [field, value] of hash.fields) {
      if (withFields) size += bulkSize(field.length); // latin1: one char per byte
      if (withValues) size += bulkSize(value.length);
    }
    const refusal = checkReplySize(keyspace, size);
    if (refusal !== undefined) return refusal;
    const items: Buffer[] = [];
    for (const [field, value] of hash.fields) {
      if (withFields) items.push(bulk(field));
      if (withValues) items.push(bulk(value));
    }
    return array(items);
  };
}

export const hgetall = listCommand(true, true);
export const hkeys = listCommand(true, false);
export const hvals = listCommand(false, true);

export const hlen: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return ZERO;
  return isReply(hash) ? hash : integer(hash.fields.size);
};

export const hexists: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return ZERO;
  if (isReply(hash)) return hash;
  return hash.fields.has(latin1(args[2]!)) ? ONE : ZERO;
};

export const hstrlen: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return ZERO;
  if (isReply(hash)) return hash;
  return integer(hash.fields.get(latin1(args[2]!))?.length ?? 0);
};

/**
 * Stores `text` (a computed number) at `field` of the hash `found` at `key` (created if absent),
 * or refuses it over the value limit (a long double's digits can run to thousands of bytes).
 */
function storeNumber(
  keyspace: Keyspace,
  key: string,
  found: KvHash | undefined,
  field: string,
  text: string,
): Buffer | undefined {
  if (text.length > keyspace.limits.valueBytesMax) {
    return valueTooLarge(keyspace.limits.valueBytesMax);
  }
  hashForWrite(keyspace, key, found).fields.set(field, Buffer.from(text, "latin1"));
  return undefined;
}

export const hincrby: Handler = (keyspace, args, now) => {
  const increment = parseInt64(args[3]!);
  if (increment === null) return ERR_NOT_INTEGER;
  const key = latin1(args[1]!);
  const found = readHash(keyspace, key, now);
  if (isReply(found)) return found;
  const field = latin1(args[2]!);
  const stored = found?.fields.get(field);
  const current = stored === undefined ? 0 : parseInt64(stored);
  if (current === null) return ERR_NOT_INTEGER_VALUE;
  const sum = addInt64(current, increment);
  if (sum === null) return ERR_OVERFLOW;
  return storeNumber(keyspace, key, found, field, String(sum)) ?? integer(sum);
};

/**
 * HINCRBYFLOAT in Redis's long double (80-bit) arithmetic, formatted as Redis does
 * (long-double.ts): "10.5" + "0.1" is "10.6", 17 decimals at most, never an exponent.
 */
export const hincrbyfloat: Handler = (keyspace, args, now) => {
  const increment = parseLongDouble(latin1(args[3]!));
  if (increment === null) return ERR_NOT_FLOAT;
  if (increment.infinite) return ERR_NAN_OR_INFINITY;
  const key = latin1(args[1]!);
  const found = readHash(keyspace, key, now);
  if (isReply(found)) return found;
  const field = latin1(args[2]!);
  const stored = found?.fields.get(field);
  let current: LongDouble | null = null;
  if (stored !== undefined) {
    current = parseLongDouble(latin1(stored));
    if (current === null) return ERR_NOT_FLOAT_VALUE;
  }
  const sum = current === null ? increment : addLongDouble(current, increment);
  if (sum.infinite) return ERR_WOULD_BE_INFINITY;
  const text = formatLongDouble(sum);
  return storeNumber(keyspace, key, found, field, text) ?? bulk(text);
};

/** 32-bit FNV-1a of a latin1 string (HSCAN's cursors, HRANDFIELD's seed). */
function fnv1a(text: string, seed = 0x811c9dc5): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** mulberry32: a small PRNG of 32-bit state; numbers in [0, 1). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * The first `k` of a pseudo-random permutation of the `n` field positions (a partial
 * Fisher-Yates shuffle), seeded from the store's state: the log's clock, the next insertion
 * number, the key and the hash's size, which every replica shares at this command. Never
 * Math.random: all replicas, and a read served by any of them, must pick alike.
 */
function sampleIndexes(keyspace: Keyspace, key: string, n: number, k: number): Uint32Array {
  let seed = fnv1a(key);
  for (const word of [keyspace.clockMs, keyspace.nextSeq, n]) {
    seed = Math.imul(seed ^ (word % 2 ** 32), 0x9e3779b1) ^ Math.floor(word / 2 ** 32);
  }
  const random = prng(seed);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i));
    const swap = order[i]!;
    order[i] = order[j]!;
    order[j] = swap;
  }
  return order.subarray(0, k);
}

/** The refusal of a reply of `size` bytes (a bigint: a huge negative count), else undefined. */
function checkBigReplySize(keyspace: Keyspace, size: bigint): Buffer | undefined {
  const limit = keyspace.limits.replyBytesMax;
  if (size <= BigInt(limit)) return undefined;
  // replyTooLarge's message, with every digit of a size past 2^53.
  return size <= BigInt(Number.MAX_SAFE_INTEGER)
    ? replyTooLarge(Number(size), limit)
    : errorReply(`ERR reply too large (${size} bytes, limit ${limit} set by --max-reply-bytes)`);
}

/**
 * HRANDFIELD key [count [WITHVALUES]]. Not random, by design: every replica must pick the same
 * fields, so the picks come from a permutation seeded by the store's state (sampleIndexes).
 * count >= size gives the whole hash in insertion order (Redis: the whole hash); 0 < count <
 * size the first `count` of the permutation; count < 0 repeats the permutation until it has
 * |count| picks, so every field comes up |count| / size times, give or take one; no count, the
 * permutation's first field. Only the whole-hash answers can match Redis byte for byte.
 */
export const hrandfield: Handler = (keyspace, args, now) => {
  if (args.length === 2) {
    const key = latin1(args[1]!);
    const hash = readHash(keyspace, key, now);
    if (hash === undefined) return NULL_BULK;
    if (isReply(hash)) return hash;
    const field = nthField(hash, sampleIndexes(keyspace, key, hash.fields.size, 1)[0]!);
    return checkReplySize(keyspace, bulkSize(field.length)) ?? bulk(field);
  }
  const count = parseInt64(args[2]!);
  if (count === null) return ERR_NOT_INTEGER;
  if (count === INT64_MIN) return ERR_RANDFIELD_RANGE;
  if (args.length > 4 || (args.length === 4 && upper(args[3]!) !== "WITHVALUES")) {
    return ERR_SYNTAX;
  }
  const withValues = args.length === 4;
  // Redis bounds a count with WITHVALUES so that twice it stays an int64.
  if (withValues && (BigInt(count) > INT64_MAX / 2n || BigInt(count) < -(INT64_MAX / 2n))) {
    return ERR_OUT_OF_RANGE;
  }
  const key = latin1(args[1]!);
  const hash = readHash(keyspace, key, now);
  if (hash === undefined) return EMPTY_ARRAY;
  if (isReply(hash)) return hash;
  if (count === 0) return EMPTY_ARRAY;
  const entries = [...hash.fields];
  const n = entries.length;
  if (count > 0 && count >= n) return randomReply(keyspace, entries, null, 0n, withValues);
  const picks = count > 0 ? BigInt(count) : -BigInt(count);
  const order = sampleIndexes(keyspace, key, n, picks < BigInt(n) ? Number(picks) : n);
  return randomReply(keyspace, entries, order, picks, withValues);
};

function nthField(hash: KvHash, index: number): string {
  let i = 0;
  for (const field of hash.fields.keys()) if (i++ === index) return field;
  throw new RangeError(`field ${index} of ${hash.fields.size}`);
}

/**
 * HRANDFIELD's array: every entry in order (`order` null), or `picks` entries cycling through
 * `order`; sized (in bigints: a count may be near 2^63) and refused before it is built.
 */
function randomReply(
  keyspace: Keyspace,
  entries: readonly [string, Buffer][],
  order: Uint32Array | null,
  picks: bigint,
  withValues: boolean,
): Buffer {
  const positions = order ?? Uint32Array.from(entries.keys());
  const total = order === null ? BigInt(entries.length) : picks;
  const itemSizes = Array.from(positions, (i) => {
    const [field, value] = entries[i]!;
    return bulkSize(field.length) + (withValues ? bulkSize(value.length) : 0);
  });
  const cycle = BigInt(positions.length);
  const rest = Number(total % cycle);
  let cycleSize = 0;
  let restSize = 0;
  for (let i = 0; i < itemSizes.length; i++) {
    cycleSize += itemSizes[i]!;
    if (i < rest) restSize += itemSizes[i]!;
  }
  const items = withValues ? 2n * total : total;
  const size =
    BigInt(1 + String(items).length + 2) + (total / cycle) * BigInt(cycleSize) + BigInt(restSize);
  const refusal = checkBigReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const encoded = Array.from(positions, (i) => {
    const [field, value] = entries[i]!;
    return withValues ? [bulk(field), bulk(value)] : [bulk(field)];
  });
  const reply: Buffer[] = [];
  for (let i = 0; i < Number(total); i++) reply.push(...encoded[i % encoded.length]!);
  return array(reply);
}

/**
 * Hashes of at most this many fields come whole in one HSCAN reply with cursor 0, whatever the
 * cursor and COUNT, as Redis answers for its small (listpack-encoded, up to 128 fields) hashes.
 */
export const HSCAN_WHOLE_FIELDS_MAX = 128;
/** COUNT's cap (SCAN's too): bounds one reply's work. */
export const HSCAN_COUNT_MAX = 100_000;
/**
 * A full HSCAN of a large hash takes about this many calls at most, whatever COUNT says: each
 * call walks the hash's Map to its cursor (O(position)), so small steps would make a full scan
 * quadratic.
 */
export const HSCAN_CALLS_MAX = 64;

/**
 * Where a scan resumes: cursor 0 is the start; any other is (position << 32) | the 32-bit hash
 * of the field that was next at that position. Deleting fields moves the ones after them closer
 * to the start, so the field is looked for at its position and then anywhere before it; if it was
 * deleted (or moved to the end by a delete and re-add), the scan starts over: fields may come
 * twice, but none present throughout is missed. Every replica resumes alike (insertion order).
 */
function resumeAt(hash: KvHash, cursor: bigint): number {
  if (cursor === 0n) return 0;
  const position = Number(cursor >> 32n);
  const fieldHash = Number(cursor & 0xffffffffn);
  let i = 0;
  let firstMatch = -1;
  for (const field of hash.fields.keys()) {
    if (i > position) break;
    if (fnv1a(field) === fieldHash) {
      if (i === position) return i;
      if (firstMatch === -1) firstMatch = i;
    }
    i++;
  }
  return firstMatch === -1 ? 0 : firstMatch;
}

/**
 * HSCAN key cursor [MATCH pattern] [COUNT count]. Cursors are positions in insertion order, not
 * Redis's hash-table cursors (see resumeAt); a hash of at most HSCAN_WHOLE_FIELDS_MAX fields
 * comes whole, like Redis's small hashes; a larger one in steps of COUNT fields examined, or more
 * (HSCAN_CALLS_MAX).
 */
export const hscan: Handler = (keyspace, args, now) => {
  const cursor = parseScanCursor(args[2]!);
  if (cursor === null) return ERR_INVALID_CURSOR;
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return EMPTY_SCAN;
  if (isReply(hash)) return hash;
  const options = parseScanOptions(keyspace, args, 3, HSCAN_COUNT_MAX);
  if (isReply(options)) return options;
  const size = hash.fields.size;
  const whole = size <= HSCAN_WHOLE_FIELDS_MAX;
  const start = whole ? 0 : resumeAt(hash, cursor);
  const step = whole ? size : Math.max(options.count, Math.ceil(size / HSCAN_CALLS_MAX));
  const found: [string, Buffer][] = [];
  let i = 0;
  let next = "0";
  for (const [field, value] of hash.fields) {
    if (i >= start + step) {
      next = String((BigInt(i) << 32n) | BigInt(fnv1a(field)));
      break;
    }
    if (i++ >= start && (options.pattern === undefined || options.pattern.matches(field))) {
      found.push([field, value]);
    }
  }
  let replySize = arrayHeaderSize(2) + bulkSize(next.length) + arrayHeaderSize(2 * found.length);
  for (const [field, value] of found) replySize += bulkSize(field.length) + bulkSize(value.length);
  const refusal = checkReplySize(keyspace, replySize);
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = [];
  for (const [field, value] of found) items.push(bulk(field), bulk(value));
  return array([bulk(next), array(items)]);
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const HASH_COMMANDS: readonly CommandSpec[] = [
  {
    name: "hset",
    arity: -4,
    kind: "write",
    handler: hset,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: PAIRED_FROM_3,
  },
  {
    name: "hmset",
    arity: -4,
    kind: "write",
    handler: hmset,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: PAIRED_FROM_3,
  },
  {
    name: "hsetnx",
    arity: 4,
    kind: "write",
    handler: hsetnx,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUE_AT_3,
  },
  { name: "hget", arity: 3, kind: "read", handler: hget, flags: ["fast"], keys: KEY_1 },
  { name: "hmget", arity: -3, kind: "read", handler: hmget, flags: ["fast"], keys: KEY_1 },
  { name: "hdel", arity: -3, kind: "write", handler: hdel, flags: ["fast"], keys: KEY_1 },
  { name: "hgetall", arity: 2, kind: "read", handler: hgetall, keys: KEY_1 },
  {
    name: "hkeys",
    arity: 2,
    kind: "read",
    handler: hkeys,
    flags: ["sort_for_script"],
    keys: KEY_1,
  },
  {
    name: "hvals",
    arity: 2,
    kind: "read",
    handler: hvals,
    flags: ["sort_for_script"],
    keys: KEY_1,
  },
  { name: "hlen", arity: 2, kind: "read", handler: hlen, flags: ["fast"], keys: KEY_1 },
  { name: "hexists", arity: 3, kind: "read", handler: hexists, flags: ["fast"], keys: KEY_1 },
  { name: "hstrlen", arity: 3, kind: "read", handler: hstrlen, flags: ["fast"], keys: KEY_1 },
  {
    name: "hincrby",
    arity: 4,
    kind: "write",
    handler: hincrby,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  {
    name: "hincrbyfloat",
    arity: 4,
    kind: "write",
    handler: hincrbyfloat,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  {
    name: "hrandfield",
    arity: -2,
    kind: "read",
    handler: hrandfield,
    flags: ["random"],
    keys: KEY_1,
  },
  { name: "hscan", arity: -3, kind: "read", handler: hscan, flags: ["random"], keys: KEY_1 },
];
