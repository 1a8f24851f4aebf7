/** Hash commands: HSET HMSET HGET HDEL HGETALL HLEN HEXISTS. */
import { type CommandSpec, KEY_1, PAIRED_FROM_3 } from "./kv-command-spec.ts";
import { type Keyspace, KvHash } from "./kv-keyspace.ts";
import {
  checkReplySize,
  copyBytes,
  type Handler,
  isReply,
  latin1,
  valueTooLarge,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  integer,
  NULL_BULK,
  OK,
  ONE,
  ZERO,
} from "./resp.ts";

/** The hash at `key`, undefined when absent, or WRONGTYPE. */
function readHash(keyspace: Keyspace, key: string, now: number): KvHash | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvHash ? entry.value : WRONGTYPE;
}

/** Sets field/value pairs from args[2..]; returns how many fields are new, or an error reply. */
function setFields(keyspace: Keyspace, args: readonly Buffer[], now: number): number | Buffer {
  for (let i = 3; i < args.length; i += 2) {
    if (args[i]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  const key = latin1(args[1]!);
  let hash = readHash(keyspace, key, now);
  if (isReply(hash)) return hash;
  if (hash === undefined) {
    hash = new KvHash();
    keyspace.insert(key, hash);
  }
  const fields = hash.fields;
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

export const hget: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return NULL_BULK;
  if (isReply(hash)) return hash;
  const value = hash.fields.get(latin1(args[2]!));
  if (value === undefined) return NULL_BULK;
  return checkReplySize(keyspace, bulkSize(value.length)) ?? bulk(value);
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

export const hgetall: Handler = (keyspace, args, now) => {
  const hash = readHash(keyspace, latin1(args[1]!), now);
  if (hash === undefined) return array([]);
  if (isReply(hash)) return hash;
  let size = arrayHeaderSize(2 * hash.fields.size);
  for (const [field, value] of hash.fields) size += bulkSize(field.length) + bulkSize(value.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = [];
  for (const [field, value] of hash.fields) items.push(bulk(field), bulk(value));
  return array(items);
};

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
  { name: "hget", arity: 3, kind: "read", handler: hget, flags: ["fast"], keys: KEY_1 },
  { name: "hdel", arity: -3, kind: "write", handler: hdel, flags: ["fast"], keys: KEY_1 },
  { name: "hgetall", arity: 2, kind: "read", handler: hgetall, keys: KEY_1 },
  { name: "hlen", arity: 2, kind: "read", handler: hlen, flags: ["fast"], keys: KEY_1 },
  { name: "hexists", arity: 3, kind: "read", handler: hexists, flags: ["fast"], keys: KEY_1 },
];
