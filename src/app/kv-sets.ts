/**
 * Set commands: SADD SREM SMEMBERS SCARD SISMEMBER SPOP SRANDMEMBER.
 *
 * SPOP and SRANDMEMBER are deterministic, not random: every replica executes them and must pick
 * the same members, so they take members in the set's insertion order (which every replica shares,
 * and snapshots keep), oldest first. SPOP removes the oldest members; SRANDMEMBER with a positive
 * count returns the oldest `count` distinct members, and with a negative count cycles through the
 * members oldest first, repeating them, until it has |count|. Clients must not rely on the choice
 * being random or fair.
 */
import { type CommandSpec, KEY_1, VALUES_FROM_2 } from "./kv-command-spec.ts";
import { type Keyspace, KvSet } from "./kv-keyspace.ts";
import {
  checkReplySize,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  INT64_MIN,
  isReply,
  latin1,
  parseInt64,
  parseLong,
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

/** The set at `key`, undefined when absent, or WRONGTYPE. */
function readSet(keyspace: Keyspace, key: string, now: number): KvSet | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvSet ? entry.value : WRONGTYPE;
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
  if (set.members.size === 0) keyspace.remove(key, keyspace.entries.get(key)!);
  return integer(removed);
};

export const smembers: Handler = (keyspace, args, now) => {
  const set = readSet(keyspace, latin1(args[1]!), now);
  if (set === undefined) return array([]);
  if (isReply(set)) return set;
  let size = arrayHeaderSize(set.members.size);
  for (const member of set.members) size += bulkSize(member.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = [];
  for (const member of set.members) items.push(bulk(member));
  return array(items);
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
  if (set.members.size === 0) keyspace.remove(key, keyspace.entries.get(key)!);
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
  if (count > 0) return membersReply(keyspace, oldest(set, Math.min(count, size)));
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
  { name: "spop", arity: -2, kind: "write", handler: spop, flags: ["fast"], keys: KEY_1 },
  { name: "srandmember", arity: -2, kind: "read", handler: srandmember, keys: KEY_1 },
];
