/**
 * String commands: GET SET GETSET MGET MSET INCR INCRBY DECR DECRBY APPEND STRLEN SETNX SETEX
 * PSETEX MSETNX GETDEL GETEX GETRANGE SUBSTR SETRANGE INCRBYFLOAT LCS.
 */
import {
  type CommandSpec,
  KEY_1,
  KEYS_1_2,
  KEYS_FROM_1,
  KEYS_PAIRED_FROM_1,
  PAIRED_FROM_2,
  VALUE_AT_2,
  VALUE_AT_3,
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
  parseLong,
  upper,
  valueTooLarge,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import {
  addLongDouble,
  formatLongDouble,
  LONG_DOUBLE_CHARS_MAX,
  type LongDouble,
  longDoubleFromInteger,
  parseLongDouble,
} from "./long-double.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  EMPTY_BULK,
  errorReply,
  integer,
  NULL_BULK,
  OK,
  ONE,
  ZERO,
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
/** GETEX's PERSIST (Redis's OBJ_PERSIST); SET never takes it. */
const SET_PERSIST = 256;
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
      flags |= expiryFlag(option);
      expire = next;
      i++;
    } else return null;
  }
  return { flags, expire };
}

/** The flag of an expiry option EX, PX, EXAT or PXAT. */
function expiryFlag(option: string): number {
  return option === "EX"
    ? SET_EX
    : option === "PX"
      ? SET_PX
      : option === "EXAT"
        ? SET_EXAT
        : SET_PXAT;
}

function isExpiryOption(option: string, flags: number): boolean {
  const others: Record<string, number> = {
    EX: SET_KEEPTTL | SET_PERSIST | SET_PX | SET_EXAT | SET_PXAT,
    PX: SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PXAT,
    EXAT: SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_PXAT,
    PXAT: SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_EXAT,
  };
  const conflicts = others[option];
  return conflicts !== undefined && (flags & conflicts) === 0;
}

/**
 * The absolute expiry SET's (SETEX's, GETEX's: `name`) options ask for, NO_EXPIRY, or an error
 * reply: Redis's getExpireMillisecondsOrReply.
 */
function setExpiry(options: SetOptions, now: number, name = "set"): number | Buffer {
  if (options.expire === undefined) return NO_EXPIRY;
  const value = parseInt64(options.expire);
  if (value === null) return ERR_NOT_INTEGER;
  if (value <= 0) return invalidExpire(name);
  const flags = options.flags;
  const unitMs = flags & (SET_EX | SET_EXAT) ? 1000 : 1;
  const baseMs = flags & (SET_EX | SET_PX) ? now : 0;
  return expiryMs(value, unitMs, baseMs) ?? invalidExpire(name);
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

/** MSET's and MSETNX's refusal of an odd pair list or a value over the limit, else undefined. */
function refuseMsetPairs(
  keyspace: Keyspace,
  args: readonly Buffer[],
  name: string,
): Buffer | undefined {
  if (args.length % 2 === 0) return wrongArity(name);
  for (let i = 2; i < args.length; i += 2) {
    if (args[i]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  return undefined;
}

export const mset: Handler = (keyspace, args, now) => {
  const refused = refuseMsetPairs(keyspace, args, "mset");
  if (refused !== undefined) return refused;
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

/** SETNX key value: SET … NX answering 1 (set) or 0 (the key exists). */
export const setnx: Handler = (keyspace, args, now) => {
  const value = args[2]!;
  if (value.length > keyspace.limits.valueBytesMax) {
    return valueTooLarge(keyspace.limits.valueBytesMax);
  }
  const key = latin1(args[1]!);
  if (keyspace.lookup(key, now) !== undefined) return ZERO;
  keyspace.insert(key, copyBytes(value));
  return ONE;
};

/** SETEX key seconds value and PSETEX key milliseconds value: SET … EX / PX. */
function setexCommand(name: string, flag: number): Handler {
  return (keyspace, args, now) => {
    const expiresAtMs = setExpiry({ flags: flag, expire: args[2]! }, now, name);
    if (isReply(expiresAtMs)) return expiresAtMs;
    const value = args[3]!;
    if (value.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
    const key = latin1(args[1]!);
    const entry = keyspace.lookup(key, now);
    if (entry === undefined) keyspace.insert(key, copyBytes(value), expiresAtMs);
    else {
      entry.value = copyBytes(value);
      keyspace.setExpiry(key, entry, expiresAtMs);
    }
    return OK;
  };
}

export const setex = setexCommand("setex", SET_EX);
export const psetex = setexCommand("psetex", SET_PX);

/** MSETNX key value [key value …]: all set, or none when any key exists. */
export const msetnx: Handler = (keyspace, args, now) => {
  const refused = refuseMsetPairs(keyspace, args, "msetnx");
  if (refused !== undefined) return refused;
  for (let i = 1; i < args.length; i += 2) {
    if (keyspace.lookup(latin1(args[i]!), now) !== undefined) return ZERO;
  }
  // A key named twice takes its last value, as in Redis.
  for (let i = 1; i < args.length; i += 2) {
    keyspace.set(latin1(args[i]!), copyBytes(args[i + 1]!), now);
  }
  return ONE;
};

export const getdel: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return NULL_BULK;
  const value = entry.value;
  if (!isStringValue(value)) return WRONGTYPE;
  const refusal = checkReplySize(keyspace, bulkSize(value.length));
  if (refusal !== undefined) return refusal; // before the delete: a refused GETDEL keeps the key
  keyspace.remove(key, entry);
  return bulk(value);
};

/** GETEX's options (Redis's parseExtendedStringArgumentsOrReply for GET): one expiry or PERSIST. */
function parseGetexOptions(args: readonly Buffer[]): SetOptions | null {
  let flags = 0;
  let expire: Buffer | undefined;
  for (let i = 2; i < args.length; i++) {
    const option = upper(args[i]!);
    const next = args[i + 1];
    if (option === "PERSIST" && !(flags & SET_ANY_EXPIRY)) flags |= SET_PERSIST;
    else if (next !== undefined && isExpiryOption(option, flags)) {
      flags |= expiryFlag(option);
      expire = next;
      i++;
    } else return null;
  }
  return { flags, expire };
}

/**
 * GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]. As Redis, a missing key or another type
 * answers before the expiry is checked, and an EXAT/PXAT already past deletes the key after
 * replying with its value.
 */
export const getex: Handler = (keyspace, args, now) => {
  const options = parseGetexOptions(args);
  if (options === null) return ERR_SYNTAX;
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return NULL_BULK;
  const value = entry.value;
  if (!isStringValue(value)) return WRONGTYPE;
  const expiresAtMs = setExpiry(options, now, "getex");
  if (isReply(expiresAtMs)) return expiresAtMs;
  const refusal = checkReplySize(keyspace, bulkSize(value.length));
  if (refusal !== undefined) return refusal; // before any change
  const reply = bulk(value);
  const flags = options.flags;
  if (flags & (SET_EXAT | SET_PXAT) && expiresAtMs <= now) keyspace.remove(key, entry);
  else if (options.expire !== undefined) keyspace.setExpiry(key, entry, expiresAtMs);
  else if (flags & SET_PERSIST) keyspace.setExpiry(key, entry, NO_EXPIRY);
  return reply;
};

/** GETRANGE key start end (and its old name SUBSTR): Redis's index rules, quirks included. */
export const getrange: Handler = (keyspace, args, now) => {
  let start = parseLong(args[2]!);
  if (start === null) return ERR_NOT_INTEGER;
  let end = parseLong(args[3]!);
  if (end === null) return ERR_NOT_INTEGER;
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return EMPTY_BULK;
  const value = entry.value;
  if (!isStringValue(value)) return WRONGTYPE;
  const length = value.length;
  if (start < 0 && end < 0 && start > end) return EMPTY_BULK;
  if (start < 0) start += length;
  if (end < 0) end += length;
  if (start < 0) start = 0;
  if (end < 0) end = 0; // so GETRANGE "Hello" 0 -100 is "H", as in Redis
  if (end >= length) end = length - 1;
  if (start > end || length === 0) return EMPTY_BULK;
  return bulkReply(keyspace, value.subarray(start, end + 1));
};

/** Redis's proto-max-bulk-len (512 MB): SETRANGE past it gets Redis's own error. */
const REDIS_STRING_BYTES_MAX = 512 * 1024 * 1024;
const ERR_STRING_TOO_LONG = errorReply(
  "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
);

/**
 * SETRANGE key offset value. Past 512 MB Redis's error; past --max-value-bytes ours, and nothing
 * changes. An empty value changes nothing and answers the current length.
 */
export const setrange: Handler = (keyspace, args, now) => {
  const offset = parseLong(args[2]!);
  if (offset === null) return ERR_NOT_INTEGER;
  if (offset < 0) return errorReply("ERR offset is out of range");
  const patch = args[3]!;
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  const current = entry?.value;
  if (current !== undefined && !isStringValue(current)) return WRONGTYPE;
  if (patch.length === 0) return integer(current?.length ?? 0);
  const length = offset + patch.length;
  if (length > REDIS_STRING_BYTES_MAX) return ERR_STRING_TOO_LONG;
  if (length > keyspace.limits.valueBytesMax) return valueTooLarge(keyspace.limits.valueBytesMax);
  if (entry === undefined || current === undefined) {
    const value = Buffer.alloc(length); // zero-padded up to the offset, as Redis
    patch.copy(value, offset);
    keyspace.insert(key, value);
    return integer(length);
  }
  let value = current;
  if (length > value.length) {
    value = Buffer.alloc(length);
    current.copy(value);
    entry.value = value;
  }
  patch.copy(value, offset); // the stored copy is this key's own (lookup told a snapshot first)
  return integer(value.length);
};

const ERR_NOT_FLOAT = errorReply("ERR value is not a valid float");
const ERR_NAN_OR_INFINITY = errorReply("ERR increment would produce NaN or Infinity");
const LONG_DOUBLE_ZERO = longDoubleFromInteger(0n);

/**
 * INCRBYFLOAT key increment: Redis's 80-bit long double sum and "%.17Lf" text (long-double.ts):
 * 0.1 then 0.2 gives "0.3", never an exponent. Keeps the key's TTL, as Redis.
 */
export const incrbyfloat: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  const stored = entry?.value;
  if (stored !== undefined && !isStringValue(stored)) return WRONGTYPE;
  const current = stored === undefined ? LONG_DOUBLE_ZERO : parseFloatArgument(stored);
  const increment = parseFloatArgument(args[2]!);
  if (current === null || increment === null) return ERR_NOT_FLOAT;
  if (current.infinite || increment.infinite) return ERR_NAN_OR_INFINITY;
  const sum = addLongDouble(current, increment);
  if (sum.infinite) return ERR_NAN_OR_INFINITY;
  const bytes = Buffer.from(formatLongDouble(sum), "latin1");
  if (bytes.length > keyspace.limits.valueBytesMax) {
    return valueTooLarge(keyspace.limits.valueBytesMax);
  }
  const refusal = checkReplySize(keyspace, bulkSize(bytes.length));
  if (refusal !== undefined) return refusal; // before any change
  if (entry === undefined) keyspace.insert(key, bytes);
  else entry.value = bytes;
  return bulk(bytes);
};

/** Redis's string2ld of a stored value or argument (not turned into text when surely too long). */
function parseFloatArgument(bytes: Buffer): LongDouble | null {
  return bytes.length >= LONG_DOUBLE_CHARS_MAX ? null : parseLongDouble(latin1(bytes));
}

/**
 * Most cells of LCS's table ((|a| + 1) × (|b| + 1) uint32s: 64 MiB, some 0.1 s to fill): the
 * command runs on every replica, inside the log, so its cost must be bounded. Redis itself only
 * stops when the allocation fails.
 */
export const LCS_CELLS_MAX = 16 * 1024 * 1024;
const EMPTY_VALUE = Buffer.alloc(0);

interface LcsOptions {
  idx: boolean;
  len: boolean;
  withMatchLen: boolean;
  minMatchLen: number;
}

function parseLcsOptions(args: readonly Buffer[]): LcsOptions | Buffer {
  const options: LcsOptions = { idx: false, len: false, withMatchLen: false, minMatchLen: 0 };
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]!);
    if (option === "IDX") options.idx = true;
    else if (option === "LEN") options.len = true;
    else if (option === "WITHMATCHLEN") options.withMatchLen = true;
    else if (option === "MINMATCHLEN" && i + 1 < args.length) {
      const value = parseLong(args[++i]!);
      if (value === null) return ERR_NOT_INTEGER;
      options.minMatchLen = Math.max(0, value);
    } else return ERR_SYNTAX;
  }
  if (options.idx && options.len) {
    return errorReply("ERR If you want both the length and indexes, please just use IDX.");
  }
  return options;
}

/** One matching range of LCS IDX: a[aStart..aEnd] equals b[bStart..bEnd]. */
interface LcsMatch {
  aStart: number;
  aEnd: number;
  bStart: number;
  bEnd: number;
}

/**
 * LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: Redis's dynamic programme and its
 * walk back through the table (lcsCommand), so the string and the ranges are the ones Redis
 * picks among equally long answers.
 */
export const lcs: Handler = (keyspace, args, now) => {
  const aValue = keyspace.lookup(latin1(args[1]!), now)?.value;
  const bValue = keyspace.lookup(latin1(args[2]!), now)?.value;
  if (
    (aValue !== undefined && !isStringValue(aValue)) ||
    (bValue !== undefined && !isStringValue(bValue))
  ) {
    return errorReply("ERR The specified keys must contain string values");
  }
  const options = parseLcsOptions(args);
  if (isReply(options)) return options;
  const a = aValue ?? EMPTY_VALUE;
  const b = bValue ?? EMPTY_VALUE;
  const cells = (a.length + 1) * (b.length + 1);
  if (cells > LCS_CELLS_MAX) {
    return errorReply(
      `ERR LCS of ${a.length} and ${b.length} bytes needs a table of ${cells} cells; ` +
        `limit ${LCS_CELLS_MAX}`,
    );
  }
  const table = lcsTable(a, b);
  const total = table[cells - 1]!;
  if (options.len) return integer(total);
  const { common, matches } = lcsWalk(a, b, table, total, options.minMatchLen);
  if (!options.idx) return bulkReply(keyspace, common);
  const items: Buffer[] = matches.map((m) => {
    const ranges = [
      array([integer(m.aStart), integer(m.aEnd)]),
      array([integer(m.bStart), integer(m.bEnd)]),
    ];
    if (options.withMatchLen) ranges.push(integer(m.aEnd - m.aStart + 1));
    return array(ranges);
  });
  // At most min(|a|, |b|) <= sqrt(LCS_CELLS_MAX) ranges: small enough to build before checking.
  const reply = array([bulk("matches"), array(items), bulk("len"), integer(total)]);
  return checkReplySize(keyspace, reply.length) ?? reply;
};

/** table[i × (|b| + 1) + j] = the LCS length of a[0..i) and b[0..j). */
function lcsTable(a: Buffer, b: Buffer): Uint32Array {
  const width = b.length + 1;
  const table = new Uint32Array((a.length + 1) * width);
  for (let i = 1; i <= a.length; i++) {
    const row = i * width;
    const up = row - width;
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      if (ai === b[j - 1]) table[row + j] = table[up + j - 1]! + 1;
      else {
        const left = table[row + j - 1]!;
        const above = table[up + j]!;
        table[row + j] = Math.max(above, left);
      }
    }
  }
  return table;
}

/** Redis's walk from the table's end: the common string, and the ranges of at least minLength. */
function lcsWalk(
  a: Buffer,
  b: Buffer,
  table: Uint32Array,
  total: number,
  minLength: number,
): { common: Buffer; matches: LcsMatch[] } {
  const width = b.length + 1;
  const common = Buffer.alloc(total);
  const matches: LcsMatch[] = [];
  const none = a.length; // Redis's "no range open" marker
  let range: LcsMatch = { aStart: none, aEnd: 0, bStart: 0, bEnd: 0 };
  let i = a.length;
  let j = b.length;
  let index = total;
  while (i > 0 && j > 0) {
    let emit = false;
    if (a[i - 1] === b[j - 1]) {
      common[index - 1] = a[i - 1]!;
      if (range.aStart === none) range = { aStart: i - 1, aEnd: i - 1, bStart: j - 1, bEnd: j - 1 };
      else if (range.aStart === i && range.bStart === j) {
        range.aStart--;
        range.bStart--;
      } else emit = true;
      if (range.aStart === 0 || range.bStart === 0) emit = true;
      index--;
      i--;
      j--;
    } else {
      const above = table[(i - 1) * width + j]!;
      const left = table[i * width + j - 1]!;
      if (above > left) i--;
      else j--;
      if (range.aStart !== none) emit = true;
    }
    if (emit) {
      const length = range.aEnd - range.aStart + 1;
      if (minLength === 0 || length >= minLength) matches.push(range);
      range = { aStart: none, aEnd: 0, bStart: 0, bEnd: 0 };
    }
  }
  return { common, matches };
}

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
  {
    name: "setnx",
    arity: 3,
    kind: "write",
    handler: setnx,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUE_AT_2,
  },
  {
    name: "setex",
    arity: 4,
    kind: "write",
    handler: setex,
    flags: ["denyoom"],
    keys: KEY_1,
    values: VALUE_AT_3,
  },
  {
    name: "psetex",
    arity: 4,
    kind: "write",
    handler: psetex,
    flags: ["denyoom"],
    keys: KEY_1,
    values: VALUE_AT_3,
  },
  {
    name: "msetnx",
    arity: -3,
    kind: "write",
    handler: msetnx,
    flags: ["denyoom"],
    keys: KEYS_PAIRED_FROM_1,
    values: PAIRED_FROM_2,
  },
  { name: "getdel", arity: 2, kind: "write", handler: getdel, flags: ["fast"], keys: KEY_1 },
  { name: "getex", arity: -2, kind: "write", handler: getex, flags: ["fast"], keys: KEY_1 },
  { name: "getrange", arity: 4, kind: "read", handler: getrange, keys: KEY_1 },
  { name: "substr", arity: 4, kind: "read", handler: getrange, keys: KEY_1 },
  {
    name: "setrange",
    arity: 4,
    kind: "write",
    handler: setrange,
    flags: ["denyoom"],
    keys: KEY_1,
    values: VALUE_AT_3,
  },
  {
    name: "incrbyfloat",
    arity: 3,
    kind: "write",
    handler: incrbyfloat,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  { name: "lcs", arity: -3, kind: "read", handler: lcs, keys: KEYS_1_2 },
];
