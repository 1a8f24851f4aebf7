/** List commands: LPUSH RPUSH LPOP RPOP LRANGE LLEN. */
import { type CommandSpec, KEY_1, VALUES_FROM_2 } from "./kv-command-spec.ts";
import { type Keyspace, KvList } from "./kv-keyspace.ts";
import {
  checkReplySize,
  copyBytes,
  ERR_NOT_INTEGER,
  type Handler,
  isReply,
  latin1,
  parseLong,
  valueTooLarge,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  errorReply,
  integer,
  NULL_ARRAY,
  NULL_BULK,
  ZERO,
} from "./resp.ts";

/** The list at `key`, undefined when absent, or WRONGTYPE. */
function readList(keyspace: Keyspace, key: string, now: number): KvList | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvList ? entry.value : WRONGTYPE;
}

function pushCommand(front: boolean): Handler {
  return (keyspace, args, now) => {
    for (let i = 2; i < args.length; i++) {
      if (args[i]!.length > keyspace.limits.valueBytesMax) {
        return valueTooLarge(keyspace.limits.valueBytesMax);
      }
    }
    const key = latin1(args[1]!);
    let list = readList(keyspace, key, now);
    if (isReply(list)) return list;
    if (list === undefined) {
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

export const lpush = pushCommand(true);
export const rpush = pushCommand(false);

const ERR_NOT_POSITIVE = errorReply("ERR value is out of range, must be positive");

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
    if (count === 0) return array([]);
    const n = count < 0 ? 1 : Math.min(count, list.length);
    // Total the reply before popping: a refused pop removes nothing.
    let size = count < 0 ? 0 : arrayHeaderSize(n);
    for (let i = 0; i < n; i++) size += bulkSize(list.at(front ? i : list.length - 1 - i).length);
    const refusal = checkReplySize(keyspace, size);
    if (refusal !== undefined) return refusal;
    const popped: Buffer[] = [];
    for (let i = 0; i < n; i++) popped.push(bulk(front ? list.popFront() : list.popBack()));
    if (list.length === 0) keyspace.remove(key, keyspace.entries.get(key)!);
    return count < 0 ? popped[0]! : array(popped);
  };
}

export const lpop = popCommand("lpop", true);
export const rpop = popCommand("rpop", false);

export const lrange: Handler = (keyspace, args, now) => {
  let start = parseLong(args[2]!);
  let stop = parseLong(args[3]!);
  if (start === null || stop === null) return ERR_NOT_INTEGER;
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return array([]);
  if (isReply(list)) return list;
  const length = list.length;
  if (start < 0) start = Math.max(0, length + start);
  if (stop < 0) stop = length + stop;
  if (start > stop || start >= length) return array([]);
  if (stop >= length) stop = length - 1;
  let size = arrayHeaderSize(stop - start + 1);
  for (let i = start; i <= stop; i++) size += bulkSize(list.at(i).length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = new Array(stop - start + 1);
  for (let i = start; i <= stop; i++) items[i - start] = bulk(list.at(i));
  return array(items);
};

export const llen: Handler = (keyspace, args, now) => {
  const list = readList(keyspace, latin1(args[1]!), now);
  if (list === undefined) return ZERO;
  return isReply(list) ? list : integer(list.length);
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
  { name: "lpop", arity: -2, kind: "write", handler: lpop, flags: ["fast"], keys: KEY_1 },
  { name: "rpop", arity: -2, kind: "write", handler: rpop, flags: ["fast"], keys: KEY_1 },
  { name: "lrange", arity: 4, kind: "read", handler: lrange, keys: KEY_1 },
  { name: "llen", arity: 2, kind: "read", handler: llen, flags: ["fast"], keys: KEY_1 },
];
