/** Set commands: SADD SREM SMEMBERS SCARD SISMEMBER. */
import { type Keyspace, KvSet } from "./kv-keyspace.ts";
import {
  checkReplySize,
  type Handler,
  isReply,
  latin1,
  valueTooLarge,
  WRONGTYPE,
} from "./kv-shared.ts";
import { array, arrayHeaderSize, bulk, bulkSize, integer, ONE, ZERO } from "./resp.ts";

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
