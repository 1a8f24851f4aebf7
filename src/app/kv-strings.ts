/** String commands: GET SET GETSET MGET MSET INCR INCRBY DECR DECRBY APPEND STRLEN. */
import {
  type CommandSpec,
  KEY_1,
  KEYS_FROM_1,
  KEYS_PAIRED_FROM_1,
  PAIRED_FROM_2,
  VALUE_AT_2,
} from "./kv-command-spec.ts";
import { isStringValue, type Keyspace, NO_EXPIRY } from "./kv-keyspace.ts";
import {
  addInt64,
  checkReplySize,
  copyBytes,
  ERR_NOT_INTEGER,
  ERR_OVERFLOW,
  ERR_SYNTAX,
  expiryMs,
  type Handler,
  INT64_MIN,
  invalidExpire,
  isReply,
  latin1,
  parseInt64,
  upper,
  valueTooLarge,
  WRONGTYPE,
} from "./kv-shared.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  errorReply,
  integer,
  NULL_BULK,
  OK,
} from "./resp.ts";

/** `bulk(value)`, or the refusal when that reply would pass the store's reply limit. */
function bulkReply(keyspace: Keyspace, value: Buffer): Buffer {
  return checkReplySize(keyspace, bulkSize(value.length)) ?? bulk(value);
}

export const get: Handler = (keyspace, args, now) => {
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return NULL_BULK;
  const value = entry.value;
  return value instanceof Buffer ? bulkReply(keyspace, value) : WRONGTYPE;
};

const SET_NX = 1;
const SET_XX = 2;
const SET_GET = 4;
const SET_KEEPTTL = 8;
const SET_EX = 16;
const SET_PX = 32;
const SET_EXAT = 64;
const SET_PXAT = 128;
const SET_ANY_EXPIRY = SET_EX | SET_PX | SET_EXAT | SET_PXAT;

interface SetOptions {
  flags: number;
  expire: Buffer | undefined;
}

/** Redis's parseExtendedStringArgumentsOrReply for SET, same conflict rules. */
function parseSetOptions(args: readonly Buffer[]): SetOptions | null {
  let flags = 0;
  let expire: Buffer | undefined;
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]!);
    const next = args[i + 1];
    if (option === "NX" && !(flags & SET_XX)) flags |= SET_NX;
    else if (option === "XX" && !(flags & SET_NX)) flags |= SET_XX;
    else if (option === "GET") flags |= SET_GET;
    else if (option === "KEEPTTL" && !(flags & SET_ANY_EXPIRY)) flags |= SET_KEEPTTL;
    else if (next !== undefined && isExpiryOption(option, flags)) {
      flags |=
        option === "EX"
          ? SET_EX
          : option === "PX"
            ? SET_PX
            : option === "EXAT"
              ? SET_EXAT
              : SET_PXAT;
      expire = next;
      i++;
    } else return null;
  }
  return { flags, expire };
}

function isExpiryOption(option: string, flags: number): boolean {
  const others: Record<string, number> = {
    EX: SET_KEEPTTL | SET_PX | SET_EXAT | SET_PXAT,
    PX: SET_KEEPTTL | SET_EX | SET_EXAT | SET_PXAT,
    EXAT: SET_KEEPTTL | SET_EX | SET_PX | SET_PXAT,
    PXAT: SET_KEEPTTL | SET_EX | SET_PX | SET_EXAT,
  };
  const conflicts = others[option];
  return conflicts !== undefined && (flags & conflicts) === 0;
}

/** The absolute expiry SET's options ask for, NO_EXPIRY, or an error reply. */
function setExpiry(options: SetOptions, now: number): number | Buffer {
  if (options.expire === undefined) return NO_EXPIRY;
  const value = parseInt64(options.expire);
  if (value === null) return ERR_NOT_INTEGER;
  if (value <= 0) return invalidExpire("set");
  const flags = options.flags;
  const unitMs = flags & (SET_EX | SET_EXAT) ? 1000 : 1;
  const baseMs = flags & (SET_EX | SET_PX) ? now : 0;
  return expiryMs(value, unitMs, baseMs) ?? invalidExpire("set");
}

export const set: Handler = (keyspace, args, now) => {
  const options = args.length === 3 ? { flags: 0, expire: undefined } : parseSetOptions(args);
  if (options === null) return ERR_SYNTAX;
  const expiresAtMs = setExpiry(options, now);
  if (isReply(expiresAtMs)) return expiresAtMs;
  const value = args[2]!;
  if (value.length > keyspace.limits.valueBytesMax) {
    return valueTooLarge(keyspace.limits.valueBytesMax);
  }
  const key = latin1(args[1]!);
  const flags = options.flags;
  const entry = keyspace.lookup(key, now);
  let old = NULL_BULK;
  if (flags & SET_GET && entry !== undefined) {
    if (!isStringValue(entry.value)) return WRONGTYPE;
    const refusal = checkReplySize(keyspace, bulkSize(entry.value.length));
    if (refusal !== undefined) return refusal; // before any change: a refused SET sets nothing
    old = bulk(entry.value);
  }
  if ((flags & SET_NX && entry !== undefined) || (flags & SET_XX && entry === undefined)) {
    return flags & SET_GET ? old : NULL_BULK;
  }
  if (entry === undefined) keyspace.insert(key, copyBytes(value), expiresAtMs);
  else {
    entry.value = copyBytes(value);
    if (!(flags & SET_KEEPTTL)) keyspace.setExpiry(key, entry, expiresAtMs);
  }
  return flags & SET_GET ? old : OK;
};

export const getset: Handler = (keyspace, args, now) => {
  const value = args[2]!;
  if (value.length > keyspace.limits.valueBytesMax) {
    return valueTooLarge(keyspace.limits.valueBytesMax);
  }
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) {
    keyspace.insert(key, copyBytes(value));
    return NULL_BULK;
  }
  if (!(entry.value instanceof Buffer)) return WRONGTYPE;
  const refusal = checkReplySize(keyspace, bulkSize(entry.value.length));
  if (refusal !== undefined) return refusal; // before any change: a refused GETSET sets nothing
  const old = bulk(entry.value);
  entry.value = copyBytes(value);
  keyspace.setExpiry(key, entry, NO_EXPIRY);
  return old;
};

export const mget: Handler = (keyspace, args, now) => {
  // Total the reply first: 64 copies of one 1 MiB key must not build a 64 MiB reply unasked.
  const values: (Buffer | undefined)[] = new Array(args.length - 1);
  let size = arrayHeaderSize(args.length - 1);
  for (let i = 1; i < args.length; i++) {
    const value = keyspace.lookup(latin1(args[i]!), now)?.value;
    if (value instanceof Buffer) {
      values[i - 1] = value;
      size += bulkSize(value.length);
    } else size += NULL_BULK.length;
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const items: Buffer[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    items[i] = value === undefined ? NULL_BULK : bulk(value);
  }
  return array(items);
};

export const mset: Handler = (keyspace, args, now) => {
  if (args.length % 2 === 0) return errorReply("ERR wrong number of arguments for 'mset' command");
  for (let i = 2; i < args.length; i += 2) {
    if (args[i]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  for (let i = 1; i < args.length; i += 2) {
    keyspace.set(latin1(args[i]!), copyBytes(args[i + 1]!), now);
  }
  return OK;
};

function incrBy(keyspace: Keyspace, key: string, delta: number | bigint, now: number): Buffer {
  const entry = keyspace.lookup(key, now);
  let current: number | bigint = 0;
  if (entry !== undefined) {
    if (!(entry.value instanceof Buffer)) return WRONGTYPE;
    const parsed = parseInt64(entry.value);
    if (parsed === null) return ERR_NOT_INTEGER;
    current = parsed;
  }
  const sum = addInt64(current, delta);
  if (sum === null) return ERR_OVERFLOW;
  const bytes = Buffer.from(String(sum), "latin1");
  // Like Redis, INCR keeps the key's TTL.
  if (entry === undefined) keyspace.insert(key, bytes);
  else entry.value = bytes;
  return integer(sum);
}

export const incr: Handler = (keyspace, args, now) => incrBy(keyspace, latin1(args[1]!), 1, now);
export const decr: Handler = (keyspace, args, now) => incrBy(keyspace, latin1(args[1]!), -1, now);

export const incrby: Handler = (keyspace, args, now) => {
  const delta = parseInt64(args[2]!);
  if (delta === null) return ERR_NOT_INTEGER;
  return incrBy(keyspace, latin1(args[1]!), delta, now);
};

export const decrby: Handler = (keyspace, args, now) => {
  const delta = parseInt64(args[2]!);
  if (delta === null) return ERR_NOT_INTEGER;
  if (delta === INT64_MIN) return errorReply("ERR decrement would overflow");
  return incrBy(keyspace, latin1(args[1]!), typeof delta === "bigint" ? -delta : -delta, now);
};

export const append: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const tail = args[2]!;
  const limit = keyspace.limits.valueBytesMax;
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) {
    if (tail.length > limit) return valueTooLarge(limit);
    keyspace.insert(key, copyBytes(tail));
    return integer(tail.length);
  }
  const value = entry.value;
  if (!(value instanceof Buffer)) return WRONGTYPE;
  if (value.length + tail.length > limit) return valueTooLarge(limit);
  entry.value = Buffer.concat([value, tail]);
  return integer(entry.value.length);
};

export const strlen: Handler = (keyspace, args, now) => {
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return integer(0);
  return entry.value instanceof Buffer ? integer(entry.value.length) : WRONGTYPE;
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const STRING_COMMANDS: readonly CommandSpec[] = [
  { name: "get", arity: 2, kind: "read", handler: get, flags: ["fast"], keys: KEY_1 },
  {
    name: "set",
    arity: -3,
    kind: "write",
    handler: set,
    flags: ["denyoom"],
    keys: KEY_1,
    values: VALUE_AT_2,
  },
  {
    name: "getset",
    arity: 3,
    kind: "write",
    handler: getset,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUE_AT_2,
  },
  { name: "mget", arity: -2, kind: "read", handler: mget, flags: ["fast"], keys: KEYS_FROM_1 },
  {
    name: "mset",
    arity: -3,
    kind: "write",
    handler: mset,
    flags: ["denyoom"],
    keys: KEYS_PAIRED_FROM_1,
    values: PAIRED_FROM_2,
  },
  { name: "incr", arity: 2, kind: "write", handler: incr, flags: ["denyoom", "fast"], keys: KEY_1 },
  {
    name: "incrby",
    arity: 3,
    kind: "write",
    handler: incrby,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  { name: "decr", arity: 2, kind: "write", handler: decr, flags: ["denyoom", "fast"], keys: KEY_1 },
  {
    name: "decrby",
    arity: 3,
    kind: "write",
    handler: decrby,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  {
    name: "append",
    arity: 3,
    kind: "write",
    handler: append,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUE_AT_2,
  },
  { name: "strlen", arity: 2, kind: "read", handler: strlen, flags: ["fast"], keys: KEY_1 },
];
