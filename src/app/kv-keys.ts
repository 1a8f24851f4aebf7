/** Keyspace commands: DEL EXISTS (P)EXPIRE(AT) TTL PTTL PERSIST KEYS SCAN DBSIZE FLUSH* TYPE. */

import { GlobPattern } from "./glob.ts";
import { ALWAYS, type CommandSpec, KEY_1, KEYS_FROM_1 } from "./kv-command-spec.ts";
import { Keyspace, NO_EXPIRY, typeOf } from "./kv-keyspace.ts";
import {
  checkReplySize,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
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

/**
 * The refusal of a KEYS / SCAN MATCH pattern longer than the store's `patternBytesMax`, checked
 * before compiling it, else undefined.
 */
function patternTooLong(keyspace: Keyspace, pattern: Buffer): Buffer | undefined {
  const limit = keyspace.limits.patternBytesMax;
  if (pattern.length <= limit) return undefined;
  return errorReply(`ERR pattern too long (${pattern.length} bytes, limit ${limit})`);
}

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
  let count = 10;
  let patternBytes: Buffer | undefined;
  let type: string | undefined;
  for (let i = 2; i < args.length; i += 2) {
    const option = upper(args[i]!);
    const value = args[i + 1];
    if (value === undefined) return ERR_SYNTAX;
    if (option === "COUNT") {
      const parsed = parseLong(value);
      if (parsed === null) return ERR_NOT_INTEGER;
      if (parsed < 1) return ERR_SYNTAX;
      count = Math.min(parsed, SCAN_COUNT_MAX);
    } else if (option === "MATCH") {
      const refused = patternTooLong(keyspace, value);
      if (refused !== undefined) return refused;
      patternBytes = value; // like Redis, the last MATCH wins; compiled once, below
    } else if (option === "TYPE") type = latin1(value).toLowerCase();
    else return ERR_SYNTAX;
  }
  const pattern = patternBytes === undefined ? undefined : new GlobPattern(latin1(patternBytes));
  const step = keyspace.scan(
    cursor,
    count,
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

function flushCommand(): Handler {
  return (keyspace, args) => {
    if (args.length > 2) return ERR_SYNTAX;
    const mode = args[1] === undefined ? "SYNC" : upper(args[1]);
    if (mode !== "SYNC" && mode !== "ASYNC") return ERR_SYNTAX;
    keyspace.clear();
    return simpleString("OK");
  };
}

export const flushall = flushCommand();
export const flushdb = flushCommand();

export const type: Handler = (keyspace, args, now) => {
  const entry = keyspace.lookup(latin1(args[1]!), now);
  return simpleString(entry === undefined ? "none" : typeOf(entry.value));
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
];
