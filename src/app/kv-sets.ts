/**
 * Set commands: SADD SREM SMEMBERS SCARD SISMEMBER SMISMEMBER SPOP SRANDMEMBER SMOVE SINTER
 * SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SINTERCARD SSCAN.
 *
 * SPOP and SRANDMEMBER are deterministic, not random: every replica executes them and must pick
 * the same members, so they take members in the set's insertion order (which every replica shares,
 * and snapshots keep), oldest first. SPOP removes the oldest members; SRANDMEMBER with a positive
 * count returns the oldest `count` distinct members, and with a negative count cycles through the
 * members oldest first, repeating them, until it has |count|. Clients must not rely on the choice
 * being random or fair.
 *
 * Reply order: Redis answers in its hash table's order, except for sets it encodes as an intset
 * (at most 512 members, all integers), which come sorted. We answer in insertion order (SINTER:
 * the order of the smallest input; SUNION: of first appearance), except that a reply of at most
 * INTSET_ENTRIES_MAX members that are all integers as Redis's intset takes them is sorted
 * numerically, as Redis's would be (intsetOrder: SMEMBERS, SINTER, SUNION, SDIFF, SSCAN,
 * SRANDMEMBER with a count of at least the set's size). Redis's order also depends on a set's
 * history (a set that once held a non-integer stays a hash table); ours on its members only.
 */
import {
  type CommandSpec,
  KEY_1,
  KEYS_1_2,
  KEYS_FROM_1,
  numkeysKeySpec,
  VALUES_FROM_2,
} from "./kv-command-spec.ts";
import { SCAN_COUNT_MAX } from "./kv-keys.ts";
import { type Keyspace, KvSet } from "./kv-keyspace.ts";
import {
  EMPTY_SCAN,
  ERR_INVALID_CURSOR,
  parseScanCursor,
  parseScanOptions,
} from "./kv-scan-options.ts";
import {
  checkReplySize,
  ERR_NOT_INTEGER,
  ERR_NUMKEYS,
  ERR_SYNTAX,
  type Handler,
  INT64_MAX,
  INT64_MIN,
  isReply,
  latin1,
  parseInt64,
  parseLong,
  upper,
  valueTooLarge,
  WRONGTYPE,
} from "./kv-shared.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_BULK,
  ONE,
  ZERO,
} from "./resp.ts";

const ERR_NOT_POSITIVE = errorReply("ERR value is out of range, must be positive");
const ERR_NUMKEYS_OVER_ARGS = errorReply("ERR Number of keys can't be greater than number of args");
const ERR_LIMIT_NEGATIVE = errorReply("ERR LIMIT can't be negative");
/** Bytes of `:0\r\n` or `:1\r\n`. */
const SMALL_INTEGER_SIZE = 4;

/** Redis's set-max-intset-entries: larger sets of integers are hash tables there, unsorted. */
export const INTSET_ENTRIES_MAX = 512;
/** A full SSCAN/ZSCAN of a large collection takes about this many calls at most (see sscan). */
export const SCAN_CALLS_MAX = 64;

/** The set at `key`, undefined when absent, or WRONGTYPE. */
function readSet(keyspace: Keyspace, key: string, now: number): KvSet | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvSet ? entry.value : WRONGTYPE;
}

function removeIfEmpty(keyspace: Keyspace, key: string, set: KvSet): void {
  if (set.members.size === 0) keyspace.remove(key, keyspace.entries.get(key)!);
}

/**
 * The value of `member` if Redis's intset would hold it (its string2ll: canonical int64, no '+',
 * no leading zeros, no "-0"), else null. A number below 10^15, a bigint beyond.
 */
function intsetValue(member: string): number | bigint | null {
  const n = member.length;
  if (n === 0 || n > 20) return null;
  if (n === 1 && member === "0") return 0;
  const start = member.charCodeAt(0) === 45 ? 1 : 0;
  if (start === n) return null;
  const first = member.charCodeAt(start);
  if (first < 49 || first > 57) return null;
  for (let i = start + 1; i < n; i++) {
    const c = member.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  if (n - start <= 15) return Number(member);
  const big = BigInt(member);
  return big > INT64_MAX || big < INT64_MIN ? null : big;
}

/**
 * `members` sorted numerically when Redis would hold them as an intset (at most
 * INTSET_ENTRIES_MAX, all integers), as Redis replies for those; else undefined.
 */
function intsetSorted(members: readonly string[]): string[] | undefined {
  if (members.length > INTSET_ENTRIES_MAX) return undefined;
  const values: { member: string; value: number | bigint }[] = [];
  for (const member of members) {
    const value = intsetValue(member);
    if (value === null) return undefined;
    values.push({ member, value });
  }
  // Numbers and bigints compare with < and > across types.
  values.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return values.map((v) => v.member);
}

/** `members` in Redis's reply order where that is known: see the file comment. */
function intsetOrder(members: readonly string[]): readonly string[] {
  return intsetSorted(members) ?? members;
}

export const sadd: Handler = (keyspace, args, now) => {
  for (let i = 2; i < args.length; i++) {
    if (args[i]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  const key = latin1(args[1]!);
  let set = readSet(keyspace, key, now);
  if (isReply(set)) return set;
  if (set === undefined) {
    set = new KvSet();
    keyspace.insert(key, set);
  }
  const before = set.members.size;
  for (let i = 2; i < args.length; i++) set.members.add(latin1(args[i]!));
  return integer(set.members.size - before);
};

export const srem: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const set = readSet(keyspace, key, now);
  if (set === undefined) return ZERO;
  if (isReply(set)) return set;
  let removed = 0;
  for (let i = 2; i < args.length; i++) if (set.members.delete(latin1(args[i]!))) removed++;
  removeIfEmpty(keyspace, key, set);
  return integer(removed);
};

/** SMEMBERS key: insertion order, or sorted for an intset's worth of integers (file comment). */
export const smembers: Handler = (keyspace, args, now) => {
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (set === undefined) return EMPTY_ARRAY;
  if (isReply(set)) return set;
  return membersReply(keyspace, intsetOrder([...set.members]));
};

export const scard: Handler = (keyspace, args, now) => {
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (set === undefined) return ZERO;
  return isReply(set) ? set : integer(set.members.size);
};

export const sismember: Handler = (keyspace, args, now) => {
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (set === undefined) return ZERO;
  if (isReply(set)) return set;
  return set.members.has(latin1(args[2]!)) ? ONE : ZERO;
};

/** SMISMEMBER key member [member ...]: 1 or 0 for each; all 0 for a missing key. */
export const smismember: Handler = (keyspace, args, now) => {
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (isReply(set)) return set;
  const count = args.length - 2;
  const refusal = checkReplySize(keyspace, arrayHeaderSize(count) + count * SMALL_INTEGER_SIZE);
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = [];
  for (let i = 2; i < args.length; i++) {
    items.push(set?.members.has(latin1(args[i]!)) ? ONE : ZERO);
  }
  return array(items);
};

/** The first `n` members in insertion order (n <= size). */
function oldest(set: KvSet, n: number): string[] {
  const out: string[] = [];
  if (n === 0) return out;
  for (const member of set.members) {
    out.push(member);
    if (out.length === n) break;
  }
  return out;
}

function memberReply(keyspace: Keyspace, member: string): Buffer {
  return checkReplySize(keyspace, bulkSize(member.length)) ?? bulk(member);
}

function membersReply(keyspace: Keyspace, members: readonly string[]): Buffer {
  let size = arrayHeaderSize(members.length);
  for (const member of members) size += bulkSize(member.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(members.map((member) => bulk(member)));
}

/** SPOP key [count]: removes and returns the oldest member(s); see the file comment. */
export const spop: Handler = (keyspace, args, now) => {
  if (args.length > 3) return ERR_SYNTAX;
  let count = -1;
  if (args.length === 3) {
    const parsed = parseLong(args[2]!);
    if (parsed === null || parsed < 0) return ERR_NOT_POSITIVE;
    count = parsed;
  }
  const key = latin1(args[1]!);
  const set = readSet(keyspace, key, now);
  if (set === undefined) return count < 0 ? NULL_BULK : EMPTY_ARRAY;
  if (isReply(set)) return set;
  if (count === 0) return EMPTY_ARRAY;
  const members = oldest(set, count < 0 ? 1 : Math.min(count, set.members.size));
  // Sized before removing anything: a refused SPOP changes nothing.
  const reply = count < 0 ? memberReply(keyspace, members[0]!) : membersReply(keyspace, members);
  if (reply[0] === 45) return reply;
  for (const member of members) set.members.delete(member);
  removeIfEmpty(keyspace, key, set);
  return reply;
};

/** SRANDMEMBER key [count]: the oldest member(s), or with count < 0, members cycled in order. */
export const srandmember: Handler = (keyspace, args, now) => {
  if (args.length > 3) return ERR_SYNTAX;
  let count: number | undefined;
  if (args.length === 3) {
    const parsed = parseInt64(args[2]!);
    if (parsed === null) return ERR_NOT_INTEGER;
    if (parsed === INT64_MIN) {
      return errorReply(
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
      );
    }
    count = Number(parsed);
  }
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (set === undefined) return count === undefined ? NULL_BULK : EMPTY_ARRAY;
  if (isReply(set)) return set;
  if (count === undefined) return memberReply(keyspace, oldest(set, 1)[0]!);
  if (count === 0) return EMPTY_ARRAY;
  const size = set.members.size;
  // The whole set, in SMEMBERS's order (Redis answers it as SUNION of the one set).
  if (count >= size) return membersReply(keyspace, intsetOrder(oldest(set, size)));
  if (count > 0) return membersReply(keyspace, oldest(set, count));
  // Repeats allowed: item i is the (i mod size)-th oldest member. Sized in closed form first,
  // so a huge count is refused without iterating it.
  const total = -count;
  const all = oldest(set, size);
  const rounds = Math.floor(total / size);
  const partial = total - rounds * size;
  let roundBytes = 0;
  let partialBytes = 0;
  for (let i = 0; i < size; i++) {
    const bytes = bulkSize(all[i]!.length);
    roundBytes += bytes;
    if (i < partial) partialBytes += bytes;
  }
  const refusal = checkReplySize(
    keyspace,
    arrayHeaderSize(total) + rounds * roundBytes + partialBytes,
  );
  if (refusal !== undefined) return refusal;
  const encoded = all.map((member) => bulk(member));
  const items: Buffer[] = new Array(total);
  for (let i = 0; i < total; i++) items[i] = encoded[i % size]!;
  return array(items);
};

/**
 * SMOVE source destination member. As Redis: a missing source is 0 before the destination's type
 * is looked at; the same key is a membership test. No value check: the member moved is already
 * stored.
 */
export const smove: Handler = (keyspace, args, now) => {
  const sourceKey = latin1(args[1]!);
  const destinationKey = latin1(args[2]!);
  const source = readSet(keyspace, sourceKey, now);
  const destination = readSet(keyspace, destinationKey, now);
  if (source === undefined) return ZERO;
  if (isReply(source)) return source;
  if (isReply(destination)) return destination;
  const member = latin1(args[3]!);
  if (source === destination) return source.members.has(member) ? ONE : ZERO;
  if (!source.members.delete(member)) return ZERO;
  removeIfEmpty(keyspace, sourceKey, source);
  let target = destination;
  if (target === undefined) {
    target = new KvSet();
    keyspace.insert(destinationKey, target);
  }
  target.members.add(member);
  return ONE;
};

/**
 * The sets at args[from..to), undefined for a missing key; WRONGTYPE if any key holds another
 * type (Redis looks at every key before answering, even after a missing one).
 */
function readSets(
  keyspace: Keyspace,
  args: readonly Buffer[],
  from: number,
  to: number,
  now: number,
): (KvSet | undefined)[] | Buffer {
  const sets: (KvSet | undefined)[] = [];
  for (let i = from; i < to; i++) {
    const set = readSet(keyspace, latin1(args[i]!), now);
    if (isReply(set)) return set;
    sets.push(set);
  }
  return sets;
}

/**
 * The members in every one of `sets`, in the order of the smallest (the first of the smallest,
 * as Redis's stable sort by size picks it); at most `limit` of them when limit > 0. Empty when
 * any set is missing.
 */
function intersection(sets: readonly (KvSet | undefined)[], limit: number): string[] {
  const found: string[] = [];
  if (sets.some((set) => set === undefined)) return found;
  const bySize = (sets as readonly KvSet[]).slice().sort((a, b) => a.members.size - b.members.size);
  const smallest = bySize[0]!;
  for (const member of smallest.members) {
    let inAll = true;
    for (let j = 1; j < bySize.length && inAll; j++) inAll = bySize[j]!.members.has(member);
    if (!inAll) continue;
    found.push(member);
    if (limit > 0 && found.length >= limit) break;
  }
  return found;
}

/** The members of any of `sets`, in order of first appearance. */
function union(sets: readonly (KvSet | undefined)[]): string[] {
  const found = new Set<string>();
  for (const set of sets)
    if (set !== undefined) for (const member of set.members) found.add(member);
  return [...found];
}

/** The members of the first set in none of the others, in the first set's order. */
function difference(sets: readonly (KvSet | undefined)[]): string[] {
  const found: string[] = [];
  const first = sets[0];
  if (first === undefined) return found;
  for (const member of first.members) {
    if (!sets.some((set, j) => j > 0 && set !== undefined && set.members.has(member))) {
      found.push(member);
    }
  }
  return found;
}

type SetOperation = (sets: readonly (KvSet | undefined)[]) => string[];
const INTERSECTION: SetOperation = (sets) => intersection(sets, 0);

/**
 * Stores `members` as a new set at `key` (replacing whatever was there, TTL cleared), or deletes
 * `key` when there are none: an empty set is never kept. Replies with the count.
 */
function storeSet(keyspace: Keyspace, key: string, members: readonly string[], now: number) {
  if (members.length === 0) {
    const entry = keyspace.lookup(key, now);
    if (entry !== undefined) keyspace.remove(key, entry);
    return ZERO;
  }
  const set = new KvSet();
  for (const member of members) set.members.add(member);
  keyspace.set(key, set, now);
  return integer(set.members.size);
}

/** SINTER, SUNION, SDIFF key [key ...]. */
function setOperationCommand(operation: SetOperation): Handler {
  return (keyspace, args, now) => {
    const sets = readSets(keyspace, args, 1, args.length, now);
    if (isReply(sets)) return sets;
    return membersReply(keyspace, intsetOrder(operation(sets)));
  };
}

/** SINTERSTORE, SUNIONSTORE, SDIFFSTORE destination key [key ...]. */
function setStoreCommand(operation: SetOperation): Handler {
  return (keyspace, args, now) => {
    const sets = readSets(keyspace, args, 2, args.length, now);
    if (isReply(sets)) return sets;
    return storeSet(keyspace, latin1(args[1]!), operation(sets), now);
  };
}

export const sinter = setOperationCommand(INTERSECTION);
export const sunion = setOperationCommand(union);
export const sdiff = setOperationCommand(difference);
export const sinterstore = setStoreCommand(INTERSECTION);
export const sunionstore = setStoreCommand(union);
export const sdiffstore = setStoreCommand(difference);

/** SINTERCARD numkeys key [key ...] [LIMIT limit]: options are checked before the keys' types. */
export const sintercard: Handler = (keyspace, args, now) => {
  const numkeys = parseLong(args[1]!);
  if (numkeys === null || numkeys < 1) return ERR_NUMKEYS;
  if (numkeys > args.length - 2) return ERR_NUMKEYS_OVER_ARGS;
  let limit = 0;
  for (let j = 2 + numkeys; j < args.length; j++) {
    if (upper(args[j]!) === "LIMIT" && j + 1 < args.length) {
      const parsed = parseLong(args[++j]!);
      if (parsed === null || parsed < 0) return ERR_LIMIT_NEGATIVE;
      limit = parsed;
    } else return ERR_SYNTAX;
  }
  const sets = readSets(keyspace, args, 2, 2 + numkeys, now);
  if (isReply(sets)) return sets;
  return integer(intersection(sets, limit).length);
};

/** 32-bit FNV-1a of a latin1 string (scan cursors, ZRANDMEMBER's seed). */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** `*2 cursor *n elements…`, or the reply-size refusal. */
export function scanReply(keyspace: Keyspace, cursor: string, elements: readonly string[]) {
  let size = arrayHeaderSize(2) + bulkSize(cursor.length) + arrayHeaderSize(elements.length);
  for (const element of elements) size += bulkSize(element.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array([bulk(cursor), array(elements.map((element) => bulk(element)))]);
}

/**
 * The members of the set SSCAN walks last, as an array, while the set is unchanged: a walk
 * resumes at a position in O(1) instead of walking the Set to it. Derived from the set's
 * contents only (not state); one entry, so it holds at most one set's worth of references.
 */
let positionsCache: { set: KvSet; version: number; members: string[] } | undefined;

function positions(set: KvSet): string[] {
  const cached = positionsCache;
  if (cached !== undefined && cached.set === set && cached.version === set.members.version) {
    return cached.members;
  }
  const members = [...set.members];
  positionsCache = { set, version: set.members.version, members };
  return members;
}

/**
 * Where an SSCAN resumes: cursor 0 is the start; any other is (position << 32) | the FNV-1a hash
 * of the member that was next at that position. Deleting members moves the ones after them
 * closer to the start (insertion order keeps the rest in place), so the member is looked for at
 * its position and then from the start up to it; if it is gone (or was re-added at the end), the
 * walk starts over: members may come twice, but none present throughout is missed.
 */
function resumeAt(members: readonly string[], cursor: bigint): number {
  if (cursor === 0n) return 0;
  const position = Number(cursor >> 32n);
  const hash = Number(cursor & 0xffffffffn);
  if (position < members.length && fnv1a(members[position]!) === hash) return position;
  const end = Math.min(position, members.length);
  for (let i = 0; i < end; i++) if (fnv1a(members[i]!) === hash) return i;
  return 0;
}

/**
 * SSCAN key cursor [MATCH pattern] [COUNT count]. A set Redis would hold as an intset (at most
 * INTSET_ENTRIES_MAX integers) comes whole, sorted, with cursor 0, as Redis answers; a larger one
 * in insertion order, COUNT members examined per call, or more for a large set (at least
 * 1/SCAN_CALLS_MAX of it: every call after a change copies the set once, so small steps would
 * make a full walk quadratic). Cursors are positions in insertion order (resumeAt), not Redis's
 * hash-table cursors, and the same on every replica.
 */
export const sscan: Handler = (keyspace, args, now) => {
  const cursor = parseScanCursor(args[2]!);
  if (cursor === null) return ERR_INVALID_CURSOR;
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (set === undefined) return EMPTY_SCAN;
  if (isReply(set)) return set;
  const options = parseScanOptions(keyspace, args, 3, SCAN_COUNT_MAX);
  if (isReply(options)) return options;
  const pattern = options.pattern;
  const matching = (members: readonly string[]) =>
    pattern === undefined ? members : members.filter((member) => pattern.matches(member));
  const members = positions(set);
  const sorted = intsetSorted(members);
  if (sorted !== undefined) return scanReply(keyspace, "0", matching(sorted));
  const size = members.length;
  const start = resumeAt(members, cursor);
  const step = Math.max(options.count, Math.ceil(size / SCAN_CALLS_MAX));
  const end = Math.min(size, start + step);
  const next = end < size ? String((BigInt(end) << 32n) | BigInt(fnv1a(members[end]!))) : "0";
  return scanReply(keyspace, next, matching(members.slice(start, end)));
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const SET_COMMANDS: readonly CommandSpec[] = [
  {
    name: "sadd",
    arity: -3,
    kind: "write",
    handler: sadd,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUES_FROM_2,
  },
  { name: "srem", arity: -3, kind: "write", handler: srem, flags: ["fast"], keys: KEY_1 },
  { name: "smembers", arity: 2, kind: "read", handler: smembers, keys: KEY_1 },
  { name: "scard", arity: 2, kind: "read", handler: scard, flags: ["fast"], keys: KEY_1 },
  { name: "sismember", arity: 3, kind: "read", handler: sismember, flags: ["fast"], keys: KEY_1 },
  {
    name: "smismember",
    arity: -3,
    kind: "read",
    handler: smismember,
    flags: ["fast"],
    keys: KEY_1,
  },
  { name: "spop", arity: -2, kind: "write", handler: spop, flags: ["fast"], keys: KEY_1 },
  { name: "srandmember", arity: -2, kind: "read", handler: srandmember, keys: KEY_1 },
  { name: "smove", arity: 4, kind: "write", handler: smove, flags: ["fast"], keys: KEYS_1_2 },
  { name: "sinter", arity: -2, kind: "read", handler: sinter, keys: KEYS_FROM_1 },
  { name: "sunion", arity: -2, kind: "read", handler: sunion, keys: KEYS_FROM_1 },
  { name: "sdiff", arity: -2, kind: "read", handler: sdiff, keys: KEYS_FROM_1 },
  {
    name: "sinterstore",
    arity: -3,
    kind: "write",
    handler: sinterstore,
    flags: ["denyoom"],
    keys: KEYS_FROM_1,
  },
  {
    name: "sunionstore",
    arity: -3,
    kind: "write",
    handler: sunionstore,
    flags: ["denyoom"],
    keys: KEYS_FROM_1,
  },
  {
    name: "sdiffstore",
    arity: -3,
    kind: "write",
    handler: sdiffstore,
    flags: ["denyoom"],
    keys: KEYS_FROM_1,
  },
  {
    name: "sintercard",
    arity: -3,
    kind: "read",
    handler: sintercard,
    keys: numkeysKeySpec(1),
  },
  { name: "sscan", arity: -3, kind: "read", handler: sscan, keys: KEY_1 },
];
