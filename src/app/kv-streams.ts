/**
 * Stream commands: XADD XRANGE XREVRANGE XLEN XDEL XTRIM XSETID XREAD, and consumer groups:
 * XGROUP (CREATE SETID DESTROY CREATECONSUMER DELCONSUMER HELP) XREADGROUP XACK XPENDING XCLAIM
 * XAUTOCLAIM XINFO (STREAM GROUPS CONSUMERS HELP). Replies follow redis-server 7.0.15.
 *
 * Time is the log's clock `now`, never the machine's: an auto id (`*`) takes `now` as its
 * millisecond part (the last id's, plus one in the sequence, when the clock is behind it), and
 * delivery times, consumers' seen times and idle times are `now`-based. Streams may be empty (as in
 * Redis, XDEL of every entry leaves the key).
 *
 * XREAD and XREADGROUP with BLOCK answer at once when some stream has entries to give; when none
 * has they return BLOCKED, and the session layer runs them again later (xreadResolveIds turns `$`
 * into the id it meant, xreadBlockMs reads the timeout). Served after blocking, Redis caps an
 * uncounted read at 1000 entries; a run again here serves all.
 */
import { type CommandSpec, KEY_1, type KeySpec, type ValueArgs } from "./kv-command-spec.ts";
import { Keyspace } from "./kv-keyspace.ts";
import {
  BLOCKED,
  checkReplySize,
  copyBytes,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  INT64_MAX,
  isReply,
  latin1,
  parseInt64,
  valueTooLarge,
  WRONGTYPE,
  wrongArity,
} from "./kv-shared.ts";
import {
  formatStreamId,
  KvStream,
  STREAM_ID_MAX,
  type StreamConsumer,
  type StreamEntry,
  type StreamGroup,
  type StreamId,
  type StreamNack,
  type StreamTrim,
  streamId,
  U64_MAX,
} from "./kv-stream.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_ARRAY,
  NULL_BULK,
  OK,
  ONE,
  simpleString,
  ZERO,
} from "./resp.ts";

export { BLOCKED };

const ERR_INVALID_ID = errorReply("ERR Invalid stream ID specified as stream command argument");
const ERR_NO_SUCH_KEY = errorReply("ERR no such key");
const ERR_START_INTERVAL = errorReply("ERR invalid start ID for the interval");
const ERR_END_INTERVAL = errorReply("ERR invalid end ID for the interval");
const ERR_TRIM_BOTH = errorReply(
  "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
);
/** Redis's cap on a listpack, which an entry's fields and values together may not pass. */
const ENTRY_PAYLOAD_MAX = 2 ** 30;
/** Redis's default LIMIT of a `~` trim: 100 nodes of stream-node-max-entries (100). */
const APPROX_TRIM_LIMIT = 10_000;

/** The bytes before the first NUL, as C's string functions read an argument. */
function cText(arg: Buffer): string {
  const nul = arg.indexOf(0);
  return arg.toString("latin1", 0, nul < 0 ? arg.length : nul);
}

function cUpper(arg: Buffer): string {
  return cText(arg).toUpperCase();
}

/**
 * The handler run at the log's clock in whole ms: ids, delivery and seen times are integers (a
 * restored store's clock need not be).
 */
function wholeMs(handler: Handler): Handler {
  return (keyspace, args, now, context) => handler(keyspace, args, Math.floor(now), context);
}

/** The stream at `key`, undefined when absent, or WRONGTYPE. */
function streamAt(keyspace: Keyspace, key: string, now: number): KvStream | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvStream ? entry.value : WRONGTYPE;
}

// ---------------------------------------------------------------------------------------------
// Ids

/**
 * Redis's string2ull: string2ll's strict form, else C's strtoull (leading spaces, a sign, leading
 * zeros; a negative wraps), null beyond uint64.
 */
function string2ull(text: string): bigint | null {
  const match = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)$/.exec(text);
  if (match === null) return null;
  const [, sign, digits] = match as unknown as [string, string, string];
  const magnitude = BigInt(digits);
  const strict =
    text.length === sign.length + digits.length &&
    sign !== "+" &&
    (digits === "0" ? sign === "" : digits[0] !== "0");
  if (strict && (sign === "" ? magnitude <= INT64_MAX : magnitude <= INT64_MAX + 1n)) {
    return sign === "-" ? null : magnitude;
  }
  if (magnitude > U64_MAX) return null;
  return sign === "-" ? (U64_MAX + 1n - magnitude) & U64_MAX : magnitude;
}

interface ParsedId {
  readonly id: StreamId;
  /** False for `ms-*` (XADD: the sequence is to be chosen). */
  readonly seqGiven: boolean;
}

/**
 * An id argument (Redis's streamGenericParseIDOrReply): `ms-seq`, `ms` (the sequence is
 * `missingSeq`), `-` and `+` unless `strict`, `ms-*` where `autoSeq`. Null when invalid.
 */
function parseId(
  arg: Buffer,
  missingSeq: bigint,
  strict: boolean,
  autoSeq = false,
): ParsedId | null {
  if (arg.length > 127) return null;
  const text = cText(arg);
  if (text === "-") return strict ? null : { id: 0n, seqGiven: true };
  if (text === "+") return strict ? null : { id: STREAM_ID_MAX, seqGiven: true };
  const dash = text.indexOf("-");
  const ms = string2ull(dash < 0 ? text : text.slice(0, dash));
  if (ms === null) return null;
  if (dash < 0) return { id: streamId(ms, missingSeq), seqGiven: true };
  const seqText = text.slice(dash + 1);
  if (autoSeq && seqText === "*") return { id: streamId(ms, 0n), seqGiven: false };
  const seq = string2ull(seqText);
  return seq === null ? null : { id: streamId(ms, seq), seqGiven: true };
}

/** A strict id (no `-`/`+`), or undefined. */
function strictId(arg: Buffer): StreamId | undefined {
  return parseId(arg, 0n, true)?.id;
}

/** A range bound: `(` makes it exclusive (and strict). */
function parseBound(arg: Buffer, missingSeq: bigint): { id: StreamId; exclusive: boolean } | null {
  const exclusive = arg.length > 1 && arg[0] === 0x28;
  const parsed = exclusive
    ? parseId(arg.subarray(1), missingSeq, true)
    : parseId(arg, missingSeq, false);
  return parsed === null ? null : { id: parsed.id, exclusive };
}

/** An inclusive start from a bound, or the error reply. */
function startOf(arg: Buffer): StreamId | Buffer {
  const bound = parseBound(arg, 0n);
  if (bound === null) return ERR_INVALID_ID;
  if (!bound.exclusive) return bound.id;
  return bound.id === STREAM_ID_MAX ? ERR_START_INTERVAL : bound.id + 1n;
}

/** An inclusive end from a bound, or the error reply. */
function endOf(arg: Buffer): StreamId | Buffer {
  const bound = parseBound(arg, U64_MAX);
  if (bound === null) return ERR_INVALID_ID;
  if (!bound.exclusive) return bound.id;
  return bound.id === 0n ? ERR_END_INTERVAL : bound.id - 1n;
}

function parseLongLong(arg: Buffer): bigint | null {
  const value = parseInt64(arg);
  return value === null ? null : BigInt(value);
}

// ---------------------------------------------------------------------------------------------
// Replies

/** A pending entry read back from a consumer's history: its entry, or undefined when it is gone. */
interface Item {
  readonly id: StreamId;
  readonly entry: StreamEntry | undefined;
}

function idReply(id: StreamId): Buffer {
  return bulk(formatStreamId(id));
}

/** [id, [field, value, …]], or [id, nil] for an entry that is gone. */
function itemSize(item: Item): number {
  let size = arrayHeaderSize(2) + bulkSize(formatStreamId(item.id).length);
  const entry = item.entry;
  if (entry === undefined) return size + NULL_ARRAY.length;
  size += arrayHeaderSize(entry.fields.length);
  for (const field of entry.fields) size += bulkSize(field.length);
  return size;
}

function itemReply(item: Item): Buffer {
  const entry = item.entry;
  const fields = entry === undefined ? NULL_ARRAY : array(entry.fields.map((field) => bulk(field)));
  return array([idReply(item.id), fields]);
}

function itemsSize(items: readonly Item[]): number {
  let size = arrayHeaderSize(items.length);
  for (const item of items) size += itemSize(item);
  return size;
}

function itemsReply(items: readonly Item[]): Buffer {
  return array(items.map(itemReply));
}

function asItems(entries: readonly StreamEntry[]): Item[] {
  return entries.map((entry) => ({ id: entry.id, entry }));
}

/** Entries with start <= id <= end, ascending (descending when `reverse`), at most `count` (0: all). */
function range(
  stream: KvStream,
  start: StreamId,
  end: StreamId,
  count: number,
  reverse = false,
): StreamEntry[] {
  return stream.range(start, end, count, reverse);
}

// ---------------------------------------------------------------------------------------------
// XADD, XTRIM

interface AddTrimArgs {
  /** Where the id is (XADD), or args.length. */
  readonly idAt: number;
  readonly id: ParsedId | undefined;
  readonly noMkStream: boolean;
  readonly trim: StreamTrim | undefined;
}

/** XADD's and XTRIM's options (Redis's streamParseAddOrTrimArgsOrReply), or the error reply. */
function parseAddTrim(args: readonly Buffer[], xadd: boolean): AddTrimArgs | Buffer {
  let maxLen: number | undefined;
  let minId: StreamId | undefined;
  let approx = false;
  let limit = 0;
  let limitGiven = false;
  let noMkStream = false;
  let id: ParsedId | undefined;
  let i = 2;
  for (; i < args.length; i++) {
    const more = args.length - 1 - i;
    const option = cUpper(args[i]!);
    if (xadd && option === "*") break;
    if ((option === "MAXLEN" || option === "MINID") && more > 0) {
      if (maxLen !== undefined || minId !== undefined) return ERR_TRIM_BOTH;
      approx = false;
      const next = cText(args[i + 1]!);
      if (more >= 2 && next === "~") {
        approx = true;
        i++;
      } else if (more >= 2 && next === "=") i++;
      if (option === "MAXLEN") {
        const value = parseLongLong(args[i + 1]!);
        if (value === null) return ERR_NOT_INTEGER;
        if (value < 0n) return errorReply("ERR The MAXLEN argument must be >= 0.");
        maxLen = Number(value);
      } else {
        minId = strictId(args[i + 1]!);
        if (minId === undefined) return ERR_INVALID_ID;
      }
      i++;
    } else if (option === "LIMIT" && more > 0) {
      const value = parseLongLong(args[i + 1]!);
      if (value === null) return ERR_NOT_INTEGER;
      if (value < 0n) return errorReply("ERR The LIMIT argument must be >= 0.");
      limit = Number(value);
      limitGiven = true;
      i++;
    } else if (xadd && option === "NOMKSTREAM") noMkStream = true;
    else if (xadd) {
      id = parseId(args[i]!, 0n, true, true) ?? undefined;
      if (id === undefined) return ERR_INVALID_ID;
      break;
    } else return ERR_SYNTAX;
  }
  const strategy = maxLen !== undefined || minId !== undefined;
  if (limit !== 0 && !strategy) {
    return errorReply(
      "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
    );
  }
  if (!xadd && !strategy) {
    return errorReply("ERR syntax error, XTRIM must be called with a trimming strategy");
  }
  if (limitGiven && !approx) {
    return errorReply("ERR syntax error, LIMIT cannot be used without the special ~ option");
  }
  if (!limitGiven) limit = approx ? APPROX_TRIM_LIMIT : 0;
  const trim = strategy ? { maxLen, minId, approx, limit } : undefined;
  return { idAt: i, id, noMkStream, trim };
}

/** The id XADD gives a new entry, or the error reply. */
function nextId(stream: KvStream, given: ParsedId | undefined, now: number): StreamId | Buffer {
  const last = stream.lastId;
  let id: StreamId;
  if (given === undefined) {
    // The log's clock, never going back: behind the last id, the last id's sequence plus one.
    const ms = BigInt(now);
    id = ms > last >> 64n ? streamId(ms, 0n) : last + 1n;
  } else if (!given.seqGiven && given.id >> 64n === last >> 64n) {
    // Redis 7.0 leaves errno unset here, so it blames the size.
    if ((last & U64_MAX) === U64_MAX) return errorReply("ERR Elements are too large to be stored");
    id = last + 1n;
  } else id = given.id;
  if (id <= last) {
    return errorReply(
      "ERR The ID specified in XADD is equal or smaller than the target stream top item",
    );
  }
  return id;
}

export const xadd: Handler = wholeMs((keyspace, args, now) => {
  const parsed = parseAddTrim(args, true);
  if (isReply(parsed)) return parsed;
  const fieldsAt = parsed.idAt + 1;
  const pairs = args.length - fieldsAt;
  if (pairs < 2 || pairs % 2 === 1) return wrongArity("xadd");
  const given = parsed.id;
  if (given?.seqGiven === true && given.id === 0n) {
    return errorReply("ERR The ID specified in XADD must be greater than 0-0");
  }
  const valueBytesMax = keyspace.limits.valueBytesMax;
  for (let i = fieldsAt + 1; i < args.length; i += 2) {
    if (args[i]!.length > valueBytesMax) return valueTooLarge(valueBytesMax);
  }
  const key = latin1(args[1]!);
  let stream = streamAt(keyspace, key, now);
  if (isReply(stream)) return stream;
  if (stream === undefined) {
    if (parsed.noMkStream) return NULL_BULK;
    stream = new KvStream();
    keyspace.insert(key, stream);
  }
  if (stream.lastId === STREAM_ID_MAX) {
    return errorReply(
      "ERR The stream has exhausted the last possible ID, unable to add more items",
    );
  }
  const id = nextId(stream, given, now);
  if (isReply(id)) return id;
  let payload = 0;
  for (let i = fieldsAt; i < args.length; i++) payload += args[i]!.length;
  if (payload > ENTRY_PAYLOAD_MAX) return errorReply("ERR Elements are too large to be stored");
  const fields: Buffer[] = [];
  for (let i = fieldsAt; i < args.length; i++) fields.push(copyBytes(args[i]!));
  stream.append(id, fields);
  if (parsed.trim !== undefined) stream.trim(parsed.trim);
  return idReply(id);
});

export const xtrim: Handler = wholeMs((keyspace, args, now) => {
  const parsed = parseAddTrim(args, false);
  if (isReply(parsed)) return parsed;
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (stream === undefined) return ZERO;
  if (isReply(stream)) return stream;
  return integer(stream.trim(parsed.trim!));
});

// ---------------------------------------------------------------------------------------------
// XRANGE XREVRANGE XLEN XDEL XSETID

function rangeCommand(reverse: boolean): Handler {
  return wholeMs((keyspace, args, now) => {
    const start = startOf(args[reverse ? 3 : 2]!);
    if (isReply(start)) return start;
    const end = endOf(args[reverse ? 2 : 3]!);
    if (isReply(end)) return end;
    let count = -1;
    for (let j = 4; j < args.length; j++) {
      if (cUpper(args[j]!) !== "COUNT" || j + 1 >= args.length) return ERR_SYNTAX;
      const value = parseLongLong(args[++j]!);
      if (value === null) return ERR_NOT_INTEGER;
      count = value < 0n ? 0 : Number(value);
    }
    const stream = streamAt(keyspace, latin1(args[1]!), now);
    if (stream === undefined) return EMPTY_ARRAY;
    if (isReply(stream)) return stream;
    if (count === 0) return NULL_ARRAY;
    const items = asItems(range(stream, start, end, count === -1 ? 0 : count, reverse));
    return checkReplySize(keyspace, itemsSize(items)) ?? itemsReply(items);
  });
}

export const xrange = rangeCommand(false);
export const xrevrange = rangeCommand(true);

export const xlen: Handler = wholeMs((keyspace, args, now) => {
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (stream === undefined) return ZERO;
  return isReply(stream) ? stream : integer(stream.length);
});

export const xdel: Handler = wholeMs((keyspace, args, now) => {
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (stream === undefined) return ZERO;
  if (isReply(stream)) return stream;
  const ids: StreamId[] = [];
  for (let i = 2; i < args.length; i++) {
    const id = strictId(args[i]!);
    if (id === undefined) return ERR_INVALID_ID;
    ids.push(id);
  }
  let deleted = 0;
  for (const id of ids) {
    if (!stream.delete(id)) continue;
    if (id > stream.maxDeletedId) stream.maxDeletedId = id;
    deleted++;
  }
  return integer(deleted);
});

export const xsetid: Handler = wholeMs((keyspace, args, now) => {
  const id = strictId(args[2]!);
  if (id === undefined) return ERR_INVALID_ID;
  let entriesAdded = -1n;
  let maxDeleted = 0n;
  for (let i = 3; i < args.length; i += 2) {
    const option = cUpper(args[i]!);
    if (i + 1 >= args.length) return ERR_SYNTAX;
    if (option === "ENTRIESADDED") {
      const value = parseLongLong(args[i + 1]!);
      if (value === null) return ERR_NOT_INTEGER;
      if (value < 0n) return errorReply("ERR entries_added must be positive");
      entriesAdded = value;
    } else if (option === "MAXDELETEDID") {
      const value = strictId(args[i + 1]!);
      if (value === undefined) return ERR_INVALID_ID;
      if (id < value) {
        return errorReply(
          "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
        );
      }
      maxDeleted = value;
    } else return ERR_SYNTAX;
  }
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (stream === undefined) return ERR_NO_SUCH_KEY;
  if (isReply(stream)) return stream;
  const last = stream.last();
  if (last !== undefined) {
    if (id < last.id) {
      return errorReply(
        "ERR The ID specified in XSETID is smaller than the target stream top item",
      );
    }
    if (entriesAdded !== -1n && BigInt(stream.length) > entriesAdded) {
      return errorReply(
        "ERR The entries_added specified in XSETID is smaller than the target stream length",
      );
    }
  }
  stream.lastId = id;
  if (entriesAdded !== -1n) stream.entriesAdded = entriesAdded;
  if (maxDeleted !== 0n) stream.maxDeletedId = maxDeleted;
  return OK;
});

// ---------------------------------------------------------------------------------------------
// Group counters (entries read, lag), as Redis 7.0 keeps them

/** Whether an entry with start <= id <= end was deleted (as far as maxDeletedId tells). */
function rangeHasTombstones(stream: KvStream, start: StreamId, end: StreamId): boolean {
  if (stream.length === 0 || stream.maxDeletedId === 0n) return false;
  if (stream.firstId > stream.maxDeletedId) return false; // the last tombstone is before the first entry
  return start <= stream.maxDeletedId && stream.maxDeletedId <= end;
}

/** The logical read counter of `id` (entries from the first ever to it), or -1n if unknowable. */
function readCounterAt(stream: KvStream, id: StreamId): bigint {
  if (stream.entriesAdded === 0n) return 0n;
  if (stream.length === 0 && id <= stream.lastId) return stream.entriesAdded;
  if (id === stream.lastId) return stream.entriesAdded;
  if (id > stream.lastId) return -1n;
  const first = stream.firstId;
  if (stream.maxDeletedId === 0n || stream.maxDeletedId < first) {
    if (id < first) return stream.entriesAdded - BigInt(stream.length);
    if (id === first) return stream.entriesAdded - BigInt(stream.length) + 1n;
  }
  return -1n;
}

/** The group has been given entry `id`, above its last id. */
function advanceGroup(stream: KvStream, group: StreamGroup, id: StreamId): void {
  if (group.entriesRead !== -1n && !rangeHasTombstones(stream, id, STREAM_ID_MAX)) {
    group.entriesRead++;
  } else if (stream.entriesAdded !== 0n) group.entriesRead = readCounterAt(stream, id);
  group.lastId = id;
}

/** Entries not delivered to the group yet, or null when unknowable. */
function groupLag(stream: KvStream, group: StreamGroup): bigint | null {
  if (stream.entriesAdded === 0n) return 0n;
  if (group.entriesRead !== -1n && !rangeHasTombstones(stream, group.lastId, STREAM_ID_MAX)) {
    return stream.entriesAdded - group.entriesRead;
  }
  const read = readCounterAt(stream, group.lastId);
  return read === -1n ? null : stream.entriesAdded - read;
}

// ---------------------------------------------------------------------------------------------
// XREAD XREADGROUP

interface ReadArgs {
  /** BLOCK's timeout, ms (0 = forever), or -1 without BLOCK. */
  readonly blockMs: number;
  readonly count: number;
  /** Index of the first key; the ids follow the keys. */
  readonly keysAt: number;
  readonly keyCount: number;
  readonly group: Buffer | undefined;
  readonly consumer: Buffer | undefined;
  readonly noAck: boolean;
}

/** XREAD's and XREADGROUP's options, or the error reply. `now` bounds the timeout as Redis does. */
function parseRead(args: readonly Buffer[], isGroup: boolean, now: number): ReadArgs | Buffer {
  let blockMs = -1;
  let count = 0;
  let keysAt = 0;
  let keyCount = 0;
  let group: Buffer | undefined;
  let consumer: Buffer | undefined;
  let noAck = false;
  for (let i = 1; i < args.length; i++) {
    const more = args.length - 1 - i;
    const option = cUpper(args[i]!);
    if (option === "BLOCK" && more > 0) {
      const value = parseLongLong(args[++i]!);
      if (value === null) return errorReply("ERR timeout is not an integer or out of range");
      if (value < 0n) return errorReply("ERR timeout is negative");
      if (value > 0n && value > INT64_MAX - BigInt(now)) {
        return errorReply("ERR timeout is out of range");
      }
      blockMs = Number(value);
    } else if (option === "COUNT" && more > 0) {
      const value = parseLongLong(args[++i]!);
      if (value === null) return ERR_NOT_INTEGER;
      count = value < 0n ? 0 : Number(value);
    } else if (option === "STREAMS" && more > 0) {
      keysAt = i + 1;
      keyCount = args.length - keysAt;
      if (keyCount % 2 !== 0) {
        return errorReply(
          "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
        );
      }
      keyCount /= 2;
      break;
    } else if (option === "GROUP" && more >= 2) {
      if (!isGroup) {
        return errorReply(
          "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
        );
      }
      group = args[i + 1];
      consumer = args[i + 2];
      i += 2;
    } else if (option === "NOACK") {
      if (!isGroup) {
        return errorReply(
          "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
        );
      }
      noAck = true;
    } else return ERR_SYNTAX;
  }
  if (keysAt === 0) return ERR_SYNTAX;
  if (isGroup && group === undefined) return errorReply("ERR Missing GROUP option for XREADGROUP");
  return { blockMs, count, keysAt, keyCount, group, consumer, noAck };
}

/** The position of XREAD's / XREADGROUP's STREAMS option (as Redis's xreadGetKeys finds it). */
function streamsPosition(args: readonly Buffer[]): number | undefined {
  for (let i = 1; i < args.length; i++) {
    const option = cUpper(args[i]!);
    if (option === "BLOCK" || option === "COUNT") i++;
    else if (option === "GROUP") i += 2;
    else if (option === "NOACK") continue;
    else if (option === "STREAMS") return i;
    else return undefined;
  }
  return undefined;
}

/** XREAD's and XREADGROUP's keys: the first half of what follows STREAMS. */
const READ_KEYS: KeySpec = {
  find: (args) => {
    const at = streamsPosition(args);
    if (at === undefined) return [];
    const rest = args.length - at - 1;
    if (rest === 0 || rest % 2 !== 0) return [];
    const keys: number[] = [];
    for (let i = 0; i < rest / 2; i++) keys.push(at + 1 + i);
    return keys;
  },
  legacy: { first: 0, last: 0, step: 0 },
};

/**
 * XREAD's (or XREADGROUP's) BLOCK timeout in ms (0 = forever), -1 without BLOCK, or the error
 * reply the command gives for it.
 */
export function xreadBlockMs(args: readonly Buffer[]): number | Buffer {
  const isGroup = args.length > 0 && cUpper(args[0]!) === "XREADGROUP";
  const parsed = parseRead(args, isGroup, 0);
  return isReply(parsed) ? parsed : parsed.blockMs;
}

/**
 * XREAD's arguments with each `$` id replaced by that stream's last id now (0-0 for a missing
 * key), so that running it again later serves only entries added since. Other commands' are
 * returned as they are.
 */
export function xreadResolveIds(
  keyspace: Keyspace,
  args: readonly Buffer[],
  now: number,
): Buffer[] {
  const resolved = [...args];
  if (args.length === 0 || cUpper(args[0]!) !== "XREAD") return resolved;
  const at = streamsPosition(args);
  if (at === undefined || (args.length - at - 1) % 2 !== 0) return resolved;
  const keyCount = (args.length - at - 1) / 2;
  for (let i = 0; i < keyCount; i++) {
    const idAt = at + 1 + keyCount + i;
    if (cText(args[idAt]!) !== "$") continue;
    const entry = keyspace.entries.get(latin1(args[at + 1 + i]!));
    const live = entry !== undefined && Keyspace.isLive(entry, now);
    const lastId = live && entry.value instanceof KvStream ? entry.value.lastId : 0n;
    resolved[idAt] = Buffer.from(formatStreamId(lastId), "latin1");
  }
  return resolved;
}

/** One stream's part of a read reply: [key, entries]. */
interface ReadPart {
  readonly key: Buffer;
  readonly items: readonly Item[];
}

function partsSize(parts: readonly ReadPart[]): number {
  let size = arrayHeaderSize(parts.length);
  for (const part of parts) {
    size += arrayHeaderSize(2) + bulkSize(part.key.length) + itemsSize(part.items);
  }
  return size;
}

function partsReply(parts: readonly ReadPart[]): Buffer {
  return array(parts.map((part) => array([bulk(part.key), itemsReply(part.items)])));
}

function noGroupForRead(key: Buffer, group: Buffer): Buffer {
  return errorReply(
    `NOGROUP No such key '${cText(key)}' or consumer group '${cText(group)}' in XREADGROUP with GROUP option`,
  );
}

const ERR_DOLLAR_IN_GROUP = errorReply(
  "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
);
const ERR_GT_WITHOUT_GROUP = errorReply(
  "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
);

/** Each named stream (or undefined), its group, and the id to read after; or the error reply. */
function resolveReads(
  keyspace: Keyspace,
  args: readonly Buffer[],
  parsed: ReadArgs,
  now: number,
): { streams: (KvStream | undefined)[]; groups: StreamGroup[]; after: StreamId[] } | Buffer {
  const streams: (KvStream | undefined)[] = [];
  const groups: StreamGroup[] = [];
  const after: StreamId[] = [];
  const groupName = parsed.group === undefined ? undefined : latin1(parsed.group);
  for (let i = 0; i < parsed.keyCount; i++) {
    const keyArg = args[parsed.keysAt + i]!;
    const stream = streamAt(keyspace, latin1(keyArg), now);
    if (isReply(stream)) return stream;
    if (groupName !== undefined) {
      const group = stream?.groups.get(groupName);
      if (group === undefined) return noGroupForRead(keyArg, parsed.group!);
      groups.push(group);
    }
    const idArg = args[parsed.keysAt + parsed.keyCount + i]!;
    const text = cText(idArg);
    let id: StreamId | undefined;
    if (text === "$") {
      if (groupName !== undefined) return ERR_DOLLAR_IN_GROUP;
      id = stream?.lastId ?? 0n;
    } else if (text === ">") {
      if (groupName === undefined) return ERR_GT_WITHOUT_GROUP;
      id = STREAM_ID_MAX;
    } else {
      id = strictId(idArg);
      if (id === undefined) return ERR_INVALID_ID;
    }
    streams.push(stream);
    after.push(id);
  }
  return { streams, groups, after };
}

export const xread: Handler = wholeMs((keyspace, args, now) => {
  const parsed = parseRead(args, false, now);
  if (isReply(parsed)) return parsed;
  const resolved = resolveReads(keyspace, args, parsed, now);
  if (isReply(resolved)) return resolved;
  const parts: ReadPart[] = [];
  for (let i = 0; i < parsed.keyCount; i++) {
    const stream = resolved.streams[i];
    const after = resolved.after[i]!;
    const last = stream?.last();
    if (last === undefined || last.id <= after) continue;
    const entries = range(stream!, after + 1n, STREAM_ID_MAX, parsed.count);
    parts.push({ key: args[parsed.keysAt + i]!, items: asItems(entries) });
  }
  if (parts.length === 0) return parsed.blockMs >= 0 ? BLOCKED : NULL_ARRAY;
  return checkReplySize(keyspace, partsSize(parts)) ?? partsReply(parts);
});

/**
 * What XREADGROUP would give from one stream, changing nothing: the consumer's pending entries
 * after `after` (its history), or with `>` (STREAM_ID_MAX) the entries the group has not been
 * given; null when there is nothing new.
 */
function planGroupRead(
  stream: KvStream,
  group: StreamGroup,
  consumerName: string,
  after: StreamId,
  count: number,
): Item[] | null {
  if (after !== STREAM_ID_MAX) {
    const consumer = group.consumers.get(consumerName);
    const items: Item[] = [];
    if (consumer === undefined) return items;
    consumer.pel.forward(after + 1n, (nack) => {
      if (count !== 0 && items.length === count) return false;
      items.push({ id: nack.id, entry: stream.find(nack.id) });
      return true;
    });
    return items;
  }
  const last = stream.last();
  if (last === undefined || last.id <= group.lastId) return null;
  return asItems(range(stream, group.lastId + 1n, STREAM_ID_MAX, count));
}

/**
 * Serves one stream of an XREADGROUP: the plan, carried out. The consumer is made (or seen) only
 * when the stream is served, as Redis 7.0 does: not when the read finds nothing new, or blocks.
 */
function serveGroupRead(
  stream: KvStream,
  group: StreamGroup,
  consumerName: string,
  after: StreamId,
  parsed: ReadArgs,
  now: number,
): Item[] | null {
  const items = planGroupRead(stream, group, consumerName, after, parsed.count);
  if (items === null) return null;
  const consumer = group.consumer(consumerName, now);
  if (after !== STREAM_ID_MAX) {
    for (const item of items) {
      if (item.entry === undefined) continue;
      const nack = consumer.pel.get(item.id)!;
      nack.deliveryTime = now;
      nack.deliveryCount++;
    }
    return items;
  }
  for (const item of items) {
    advanceGroup(stream, group, item.id);
    if (!parsed.noAck) group.deliver(item.id, consumer, now);
  }
  return items;
}

export const xreadgroup: Handler = wholeMs((keyspace, args, now) => {
  const parsed = parseRead(args, true, now);
  if (isReply(parsed)) return parsed;
  const resolved = resolveReads(keyspace, args, parsed, now);
  if (isReply(resolved)) return resolved;
  const consumerName = latin1(parsed.consumer!);
  // Total the reply before changing anything. A key named twice sees the state before the
  // command here (after its first part once served), so its total is an estimate.
  const planned: ReadPart[] = [];
  for (let i = 0; i < parsed.keyCount; i++) {
    const stream = resolved.streams[i]!;
    const items = planGroupRead(
      stream,
      resolved.groups[i]!,
      consumerName,
      resolved.after[i]!,
      parsed.count,
    );
    if (items !== null) planned.push({ key: args[parsed.keysAt + i]!, items });
  }
  if (planned.length > 0) {
    const refusal = checkReplySize(keyspace, partsSize(planned));
    if (refusal !== undefined) return refusal;
  }
  const parts: ReadPart[] = [];
  for (let i = 0; i < parsed.keyCount; i++) {
    const stream = resolved.streams[i]!;
    const group = resolved.groups[i]!;
    const items = serveGroupRead(stream, group, consumerName, resolved.after[i]!, parsed, now);
    if (items !== null) parts.push({ key: args[parsed.keysAt + i]!, items });
  }
  if (parts.length === 0) return parsed.blockMs >= 0 ? BLOCKED : NULL_ARRAY;
  return partsReply(parts);
});

// ---------------------------------------------------------------------------------------------
// XGROUP

const HELP_FOOTER = ["HELP", "    Prints this help."];

function helpReply(command: string, lines: readonly string[]): Buffer {
  const all = [
    `${command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`,
    ...lines,
    ...HELP_FOOTER,
  ];
  return array(all.map(simpleString));
}

const XGROUP_HELP = [
  "CREATE <key> <groupname> <id|$> [option]",
  "    Create a new consumer group. Options are:",
  "    * MKSTREAM",
  "      Create the empty stream if it does not exist.",
  "    * ENTRIESREAD entries_read",
  "      Set the group's entries_read counter (internal use).",
  "CREATECONSUMER <key> <groupname> <consumer>",
  "    Create a new consumer in the specified group.",
  "DELCONSUMER <key> <groupname> <consumer>",
  "    Remove the specified consumer.",
  "DESTROY <key> <groupname>",
  "    Remove the specified group.",
  "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
  "    Set the current group ID and entries_read counter.",
];

const XINFO_HELP = [
  "CONSUMERS <key> <groupname>",
  "    Show consumers of <groupname>.",
  "GROUPS <key>",
  "    Show the stream consumer groups.",
  "STREAM <key> [FULL [COUNT <count>]",
  "    Show information about the stream.",
];

const XGROUP_ARITY: Readonly<Record<string, number>> = {
  CREATE: -5,
  SETID: -5,
  DESTROY: 4,
  CREATECONSUMER: 5,
  DELCONSUMER: 5,
  HELP: 2,
};

const XINFO_ARITY: Readonly<Record<string, number>> = {
  CONSUMERS: 4,
  GROUPS: 3,
  STREAM: -3,
  HELP: 2,
};

/**
 * A container command's subcommand check (Redis makes it before the command runs): the
 * subcommand's name, or the error reply.
 */
function subcommandOf(
  args: readonly Buffer[],
  command: string,
  arities: Readonly<Record<string, number>>,
): string | Buffer {
  const sub = cUpper(args[1]!);
  const arity = Object.hasOwn(arities, sub) ? arities[sub] : undefined;
  if (arity === undefined) {
    const name = cText(args[1]!).slice(0, 128);
    return errorReply(`ERR unknown subcommand '${name}'. Try ${command.toUpperCase()} HELP.`);
  }
  const fits = arity > 0 ? args.length === arity : args.length >= -arity;
  return fits ? sub : wrongArity(`${command}|${sub.toLowerCase()}`);
}

function subcommandSyntaxError(args: readonly Buffer[], command: string): Buffer {
  const name = cText(args[1]!).slice(0, 128);
  return errorReply(
    `ERR unknown subcommand or wrong number of arguments for '${name}'. Try ${command} HELP.`,
  );
}

function noSuchGroup(group: Buffer, key: Buffer): Buffer {
  return errorReply(
    `NOGROUP No such consumer group '${cText(group)}' for key name '${cText(key)}'`,
  );
}

/** XGROUP's options after the id (MKSTREAM, ENTRIESREAD), or the error reply. */
function parseGroupOptions(
  args: readonly Buffer[],
  sub: string,
): { mkStream: boolean; entriesRead: bigint } | Buffer {
  let mkStream = false;
  let entriesRead = -1n;
  for (let i = 5; i < args.length; ) {
    const option = cUpper(args[i]!);
    if (sub === "CREATE" && option === "MKSTREAM") {
      mkStream = true;
      i++;
    } else if (
      (sub === "CREATE" || sub === "SETID") &&
      option === "ENTRIESREAD" &&
      i + 1 < args.length
    ) {
      const value = parseLongLong(args[i + 1]!);
      if (value === null) return ERR_NOT_INTEGER;
      if (value < 0n && value !== -1n) {
        return errorReply("ERR value for ENTRIESREAD must be positive or -1");
      }
      entriesRead = value;
      i += 2;
    } else return subcommandSyntaxError(args, "XGROUP");
  }
  return { mkStream, entriesRead };
}

export const xgroup: Handler = wholeMs((keyspace, args, now) => {
  const sub = subcommandOf(args, "xgroup", XGROUP_ARITY);
  if (isReply(sub)) return sub;
  if (sub === "HELP") return helpReply("XGROUP", XGROUP_HELP);
  const options = parseGroupOptions(args, sub);
  if (isReply(options)) return options;
  const key = latin1(args[2]!);
  let stream = streamAt(keyspace, key, now);
  if (isReply(stream)) return stream;
  const groupName = latin1(args[3]!);
  if (stream === undefined && !options.mkStream) {
    return errorReply(
      "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
    );
  }
  const group = stream?.groups.get(groupName);
  if (group === undefined && sub !== "CREATE" && sub !== "DESTROY") {
    return noSuchGroup(args[3]!, args[2]!);
  }
  if (sub === "CREATE") {
    if (args.length > 8) return subcommandSyntaxError(args, "XGROUP");
    let id: StreamId | undefined;
    if (cText(args[4]!) === "$") id = stream?.lastId ?? 0n;
    else id = strictId(args[4]!);
    if (id === undefined) return ERR_INVALID_ID;
    if (stream === undefined) {
      stream = new KvStream();
      keyspace.insert(key, stream);
    }
    if (stream.groups.has(groupName)) {
      return errorReply("BUSYGROUP Consumer Group name already exists");
    }
    stream.createGroup(groupName, id, options.entriesRead);
    return OK;
  }
  if (sub === "SETID") {
    if (args.length !== 5 && args.length !== 7) return subcommandSyntaxError(args, "XGROUP");
    let id: StreamId | undefined;
    if (cText(args[4]!) === "$") id = stream!.lastId;
    else id = parseId(args[4]!, 0n, false)?.id;
    if (id === undefined) return ERR_INVALID_ID;
    group!.lastId = id;
    group!.entriesRead = options.entriesRead;
    return OK;
  }
  if (sub === "DESTROY") return stream!.destroyGroup(groupName) ? ONE : ZERO;
  const consumerName = latin1(args[4]!);
  const consumer = group!.consumers.get(consumerName);
  if (sub === "CREATECONSUMER") {
    if (consumer !== undefined) return ZERO;
    group!.createConsumer(consumerName, now);
    return ONE;
  }
  // DELCONSUMER
  return integer(consumer === undefined ? 0 : group!.deleteConsumer(consumer));
});

// ---------------------------------------------------------------------------------------------
// XACK XPENDING XCLAIM XAUTOCLAIM

function noKeyOrGroup(key: Buffer, group: Buffer): Buffer {
  return errorReply(`NOGROUP No such key '${cText(key)}' or consumer group '${cText(group)}'`);
}

export const xack: Handler = wholeMs((keyspace, args, now) => {
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (isReply(stream)) return stream;
  const group = stream?.groups.get(latin1(args[2]!));
  if (group === undefined) return ZERO;
  const ids: StreamId[] = [];
  for (let i = 3; i < args.length; i++) {
    const id = strictId(args[i]!);
    if (id === undefined) return ERR_INVALID_ID;
    ids.push(id);
  }
  let acknowledged = 0;
  for (const id of ids) if (group.ack(id)) acknowledged++;
  return integer(acknowledged);
});

function idleOf(nack: StreamNack, now: number): number {
  return Math.max(0, now - nack.deliveryTime);
}

function pendingSummary(group: StreamGroup): Buffer {
  const pel = group.pel;
  if (pel.size === 0) return array([ZERO, NULL_BULK, NULL_BULK, NULL_ARRAY]);
  const owners: Buffer[] = [];
  for (const consumer of group.consumersByName()) {
    if (consumer.pel.size === 0) continue;
    owners.push(array([bulk(consumer.name), bulk(String(consumer.pel.size))]));
  }
  return array([
    integer(pel.size),
    idReply(pel.first()!.id),
    idReply(pel.last()!.id),
    array(owners),
  ]);
}

export const xpending: Handler = wholeMs((keyspace, args, now) => {
  if (args.length !== 3 && (args.length < 6 || args.length > 9)) return ERR_SYNTAX;
  let minIdle = 0n;
  let count = 0n;
  let start = 0n;
  let end = 0n;
  let consumerArg: Buffer | undefined;
  if (args.length >= 6) {
    let at = 3;
    if (cUpper(args[3]!) === "IDLE") {
      const value = parseLongLong(args[4]!);
      if (value === null) return ERR_NOT_INTEGER;
      minIdle = value;
      if (args.length < 8) return ERR_SYNTAX;
      at += 2;
    }
    const countValue = parseLongLong(args[at + 2]!);
    if (countValue === null) return ERR_NOT_INTEGER;
    count = countValue < 0n ? 0n : countValue;
    const startId = startOf(args[at]!);
    if (isReply(startId)) return startId;
    const endId = endOf(args[at + 1]!);
    if (isReply(endId)) return endId;
    start = startId;
    end = endId;
    consumerArg = args[at + 3];
  }
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (isReply(stream)) return stream;
  const group = stream?.groups.get(latin1(args[2]!));
  if (group === undefined) return noKeyOrGroup(args[1]!, args[2]!);
  if (args.length === 3) return pendingSummary(group);
  let pel = group.pel;
  if (consumerArg !== undefined) {
    const consumer = group.consumers.get(latin1(consumerArg));
    if (consumer === undefined) return EMPTY_ARRAY;
    pel = consumer.pel;
  }
  const selected: [StreamId, StreamNack][] = [];
  pel.forward(start, (nack) => {
    if (count === 0n || nack.id > end) return false;
    if (minIdle !== 0n && BigInt(now - nack.deliveryTime) < minIdle) return true;
    selected.push([nack.id, nack]);
    count--;
    return true;
  });
  let size = arrayHeaderSize(selected.length);
  for (const [id, nack] of selected) {
    size += arrayHeaderSize(4) + bulkSize(formatStreamId(id).length);
    size += bulkSize(nack.consumer.name.length) + integer(idleOf(nack, now)).length;
    size += integer(nack.deliveryCount).length;
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(
    selected.map(([id, nack]) =>
      array([
        idReply(id),
        bulk(nack.consumer.name),
        integer(idleOf(nack, now)),
        integer(nack.deliveryCount),
      ]),
    ),
  );
});

/** What a claim does to one pending entry, decided before anything changes. */
type ClaimStep =
  | { readonly kind: "claim"; readonly id: StreamId; readonly entry: StreamEntry }
  | { readonly kind: "drop"; readonly id: StreamId };

/** The claimed entries' reply part: ids (JUSTID) or entries. */
function claimedSize(steps: readonly ClaimStep[], justId: boolean): number {
  let count = 0;
  let size = 0;
  for (const step of steps) {
    if (step.kind !== "claim") continue;
    count++;
    size += justId ? bulkSize(formatStreamId(step.id).length) : itemSize(step);
  }
  return arrayHeaderSize(count) + size;
}

function claimedReply(steps: readonly ClaimStep[], justId: boolean): Buffer {
  const items: Buffer[] = [];
  for (const step of steps) {
    if (step.kind === "claim") items.push(justId ? idReply(step.id) : itemReply(step));
  }
  return array(items);
}

/**
 * Carries out claim steps: entries that are gone leave the PEL; the others go to the consumer
 * (created on the first claim, as Redis 7.0 does), delivered at `deliveryTime`.
 */
function applyClaims(
  group: StreamGroup,
  consumerName: string,
  steps: readonly ClaimStep[],
  now: number,
  deliveryTime: number,
  retryCount: bigint,
  justId: boolean,
): void {
  let consumer: StreamConsumer | undefined;
  for (const step of steps) {
    if (step.kind === "drop") {
      group.ack(step.id);
      continue;
    }
    consumer ??= group.consumer(consumerName, now);
    group.claim(step.id, consumer, deliveryTime, retryCount, justId);
  }
}

interface ClaimOptions {
  deliveryTime: bigint | undefined;
  retryCount: bigint;
  force: boolean;
  justId: boolean;
  lastId: StreamId;
}

/** XCLAIM's options from `at` on, or the error reply. */
function parseClaimOptions(
  args: readonly Buffer[],
  at: number,
  now: number,
): ClaimOptions | Buffer {
  const options: ClaimOptions = {
    deliveryTime: undefined,
    retryCount: -1n,
    force: false,
    justId: false,
    lastId: 0n,
  };
  for (let j = at; j < args.length; j++) {
    const more = args.length - 1 - j;
    const option = cUpper(args[j]!);
    if (option === "FORCE") options.force = true;
    else if (option === "JUSTID") options.justId = true;
    else if ((option === "IDLE" || option === "TIME" || option === "RETRYCOUNT") && more > 0) {
      const value = parseLongLong(args[++j]!);
      if (value === null) return errorReply(`ERR Invalid ${option} option argument for XCLAIM`);
      if (option === "IDLE") options.deliveryTime = BigInt(now) - value;
      else if (option === "TIME") options.deliveryTime = value;
      else options.retryCount = value;
    } else if (option === "LASTID" && more > 0) {
      const id = strictId(args[++j]!);
      if (id === undefined) return ERR_INVALID_ID;
      options.lastId = id;
    } else return errorReply(`ERR Unrecognized XCLAIM option '${cText(args[j]!)}'`);
  }
  return options;
}

export const xclaim: Handler = wholeMs((keyspace, args, now) => {
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (isReply(stream)) return stream;
  const group = stream?.groups.get(latin1(args[2]!));
  if (group === undefined) return noKeyOrGroup(args[1]!, args[2]!);
  const minIdleValue = parseLongLong(args[4]!);
  if (minIdleValue === null) return errorReply("ERR Invalid min-idle-time argument for XCLAIM");
  const minIdle = minIdleValue < 0n ? 0n : minIdleValue;
  const ids: StreamId[] = [];
  let j = 5;
  for (; j < args.length; j++) {
    const id = strictId(args[j]!);
    if (id === undefined) break;
    ids.push(id);
  }
  const options = parseClaimOptions(args, j, now);
  if (isReply(options)) return options;
  const requested = options.deliveryTime;
  const deliveryTime =
    requested === undefined || requested < 0n || requested > BigInt(now) ? now : Number(requested);
  // Decide every step first (a repeated id sees what the earlier steps did), then total the reply.
  const steps: ClaimStep[] = [];
  // id (as text: V8 hashes these bigints badly) → its delivery time now, null: dropped.
  const decided = new Map<string, number | null>();
  for (const id of ids) {
    const entry = stream!.find(id);
    const key = String(id);
    const earlier = decided.get(key);
    const pending =
      earlier === undefined ? group.pel.get(id)?.deliveryTime : (earlier ?? undefined);
    if (entry === undefined) {
      if (pending !== undefined) {
        steps.push({ kind: "drop", id });
        decided.set(key, null);
      }
      continue;
    }
    if (pending === undefined && !options.force) continue;
    if (pending !== undefined && minIdle !== 0n && BigInt(now - pending) < minIdle) continue;
    steps.push({ kind: "claim", id, entry });
    decided.set(key, deliveryTime);
  }
  const refusal = checkReplySize(keyspace, claimedSize(steps, options.justId));
  if (refusal !== undefined) return refusal;
  if (options.lastId > group.lastId) group.lastId = options.lastId;
  applyClaims(
    group,
    latin1(args[3]!),
    steps,
    now,
    deliveryTime,
    options.retryCount,
    options.justId,
  );
  return claimedReply(steps, options.justId);
});

/** XAUTOCLAIM's COUNT bound: LONG_MAX / 16, as Redis checks it. */
const AUTOCLAIM_COUNT_MAX = (2n ** 63n - 1n) / 16n;
/** Pending entries XAUTOCLAIM looks at per entry it may claim. */
const AUTOCLAIM_ATTEMPTS_FACTOR = 10;

export const xautoclaim: Handler = wholeMs((keyspace, args, now) => {
  const minIdleValue = parseLongLong(args[4]!);
  if (minIdleValue === null) return errorReply("ERR Invalid min-idle-time argument for XAUTOCLAIM");
  const minIdle = minIdleValue < 0n ? 0n : minIdleValue;
  const start = startOf(args[5]!);
  if (isReply(start)) return start;
  let count = 100;
  let justId = false;
  for (let j = 6; j < args.length; j++) {
    const option = cUpper(args[j]!);
    if (option === "COUNT" && j + 1 < args.length) {
      const value = parseLongLong(args[++j]!);
      if (value === null || value < 1n || value > AUTOCLAIM_COUNT_MAX) {
        return errorReply("ERR COUNT must be > 0");
      }
      count = Number(value);
    } else if (option === "JUSTID") justId = true;
    else return ERR_SYNTAX;
  }
  const stream = streamAt(keyspace, latin1(args[1]!), now);
  if (isReply(stream)) return stream;
  const group = stream?.groups.get(latin1(args[2]!));
  if (group === undefined) return noKeyOrGroup(args[1]!, args[2]!);
  const steps: ClaimStep[] = [];
  let attempts = count * AUTOCLAIM_ATTEMPTS_FACTOR;
  // The next call's start: the first pending entry after the last one looked at (0-0: none).
  let cursor = 0n;
  group.pel.forward(start, (nack) => {
    if (attempts === 0 || count === 0) {
      cursor = nack.id;
      return false;
    }
    attempts--;
    const entry = stream!.find(nack.id);
    if (entry === undefined) {
      steps.push({ kind: "drop", id: nack.id });
      count--;
    } else if (minIdle === 0n || BigInt(now - nack.deliveryTime) >= minIdle) {
      steps.push({ kind: "claim", id: nack.id, entry });
      count--;
    }
    return true;
  });
  const dropped = steps.filter((step) => step.kind === "drop");
  let size = arrayHeaderSize(3) + bulkSize(formatStreamId(cursor).length);
  size += claimedSize(steps, justId) + arrayHeaderSize(dropped.length);
  for (const step of dropped) size += bulkSize(formatStreamId(step.id).length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  applyClaims(group, latin1(args[3]!), steps, now, now, -1n, justId);
  return array([
    idReply(cursor),
    claimedReply(steps, justId),
    array(dropped.map((step) => idReply(step.id))),
  ]);
});

// ---------------------------------------------------------------------------------------------
// XINFO

/** A reply part whose size is known before it is built (XINFO's replies nest stored data). */
interface Sized {
  readonly size: number;
  build(): Buffer;
}

function ready(reply: Buffer): Sized {
  return { size: reply.length, build: () => reply };
}

function sizedArray(parts: readonly Sized[]): Sized {
  let size = arrayHeaderSize(parts.length);
  for (const part of parts) size += part.size;
  return { size, build: () => array(parts.map((part) => part.build())) };
}

/** A RESP2 map: [name, value, name, value, …]. */
function sizedMap(pairs: readonly (readonly [string, Sized])[]): Sized {
  return sizedArray(pairs.flatMap(([name, value]) => [ready(bulk(name)), value]));
}

function sizedItem(item: Item): Sized {
  return { size: itemSize(item), build: () => itemReply(item) };
}

function sizedEntry(entry: StreamEntry | undefined): Sized {
  return entry === undefined ? ready(NULL_BULK) : sizedItem({ id: entry.id, entry });
}

function nullableInteger(value: bigint | null): Buffer {
  return value === null ? NULL_BULK : integer(value);
}

/** The checked reply: refused when over the limit, built otherwise. */
function finish(keyspace: Keyspace, reply: Sized): Buffer {
  return checkReplySize(keyspace, reply.size) ?? reply.build();
}

/** XINFO STREAM's fields that both forms start with. */
function streamHead(stream: KvStream): [string, Sized][] {
  return [
    ["length", ready(integer(stream.length))],
    ["radix-tree-keys", ready(integer(stream.nodeCount))],
    ["radix-tree-nodes", ready(integer(stream.radixTreeNodes()))],
    ["last-generated-id", ready(idReply(stream.lastId))],
    ["max-deleted-entry-id", ready(idReply(stream.maxDeletedId))],
    ["entries-added", ready(integer(stream.entriesAdded))],
    ["recorded-first-entry-id", ready(idReply(stream.firstId))],
  ];
}

function entriesReadReply(group: StreamGroup): Buffer {
  return group.entriesRead === -1n ? NULL_BULK : integer(group.entriesRead);
}

/** XINFO STREAM … FULL: entries, and groups with their pending entries and consumers, to `count`. */
function infoStreamFull(stream: KvStream, count: number): Sized {
  const entries = sizedArray(asItems(range(stream, 0n, STREAM_ID_MAX, count)).map(sizedItem));
  const groups = stream.groupsByName().map(([name, group]) => {
    const pending: Sized[] = [];
    for (const nack of group.pel) {
      if (count !== 0 && pending.length >= count) break;
      pending.push(
        sizedArray([
          ready(idReply(nack.id)),
          ready(bulk(nack.consumer.name)),
          ready(integer(nack.deliveryTime)),
          ready(integer(nack.deliveryCount)),
        ]),
      );
    }
    const consumers = group.consumersByName().map((consumer) => {
      const own: Sized[] = [];
      for (const nack of consumer.pel) {
        if (count !== 0 && own.length >= count) break;
        own.push(
          sizedArray([
            ready(idReply(nack.id)),
            ready(integer(nack.deliveryTime)),
            ready(integer(nack.deliveryCount)),
          ]),
        );
      }
      return sizedMap([
        ["name", ready(bulk(consumer.name))],
        ["seen-time", ready(integer(consumer.seenTime))],
        ["pel-count", ready(integer(consumer.pel.size))],
        ["pending", sizedArray(own)],
      ]);
    });
    return sizedMap([
      ["name", ready(bulk(name))],
      ["last-delivered-id", ready(idReply(group.lastId))],
      ["entries-read", ready(entriesReadReply(group))],
      ["lag", ready(nullableInteger(groupLag(stream, group)))],
      ["pel-count", ready(integer(group.pel.size))],
      ["pending", sizedArray(pending)],
      ["consumers", sizedArray(consumers)],
    ]);
  });
  return sizedMap([...streamHead(stream), ["entries", entries], ["groups", sizedArray(groups)]]);
}

function infoStream(keyspace: Keyspace, stream: KvStream, args: readonly Buffer[]): Buffer {
  const options = args.length - 3;
  if (options === 0) {
    const first = stream.first();
    return finish(
      keyspace,
      sizedMap([
        ...streamHead(stream),
        ["groups", ready(integer(stream.groups.size))],
        ["first-entry", sizedEntry(first)],
        ["last-entry", sizedEntry(stream.last())],
      ]),
    );
  }
  if ((options !== 1 && options !== 3) || cUpper(args[3]!) !== "FULL") {
    return subcommandSyntaxError(args, "XINFO");
  }
  let count = 10;
  if (options === 3) {
    if (cUpper(args[4]!) !== "COUNT") return subcommandSyntaxError(args, "XINFO");
    const value = parseLongLong(args[5]!);
    if (value === null) return ERR_NOT_INTEGER;
    count = value < 0n ? 10 : Number(value);
  }
  return finish(keyspace, infoStreamFull(stream, count));
}

function infoGroups(stream: KvStream): Sized {
  return sizedArray(
    stream.groupsByName().map(([name, group]) =>
      sizedMap([
        ["name", ready(bulk(name))],
        ["consumers", ready(integer(group.consumers.size))],
        ["pending", ready(integer(group.pel.size))],
        ["last-delivered-id", ready(idReply(group.lastId))],
        ["entries-read", ready(entriesReadReply(group))],
        ["lag", ready(nullableInteger(groupLag(stream, group)))],
      ]),
    ),
  );
}

function infoConsumers(group: StreamGroup, now: number): Sized {
  return sizedArray(
    group.consumersByName().map((consumer) =>
      sizedMap([
        ["name", ready(bulk(consumer.name))],
        ["pending", ready(integer(consumer.pel.size))],
        ["idle", ready(integer(Math.max(0, now - consumer.seenTime)))],
      ]),
    ),
  );
}

export const xinfo: Handler = wholeMs((keyspace, args, now) => {
  const sub = subcommandOf(args, "xinfo", XINFO_ARITY);
  if (isReply(sub)) return sub;
  if (sub === "HELP") return helpReply("XINFO", XINFO_HELP);
  const stream = streamAt(keyspace, latin1(args[2]!), now);
  if (stream === undefined) return ERR_NO_SUCH_KEY;
  if (isReply(stream)) return stream;
  if (sub === "CONSUMERS") {
    const group = stream.groups.get(latin1(args[3]!));
    if (group === undefined) return noSuchGroup(args[3]!, args[2]!);
    return finish(keyspace, infoConsumers(group, now));
  }
  if (sub === "GROUPS") return finish(keyspace, infoGroups(stream));
  return infoStream(keyspace, stream, args);
});

// ---------------------------------------------------------------------------------------------
// The command table's entries

/** XADD's values: every other argument after the id (options come first). */
const XADD_VALUES: ValueArgs = {
  first: (args) => {
    let i = 2;
    for (; i < args.length; i++) {
      const more = args.length - 1 - i;
      const option = cUpper(args[i]!);
      if (option === "*") break;
      if ((option === "MAXLEN" || option === "MINID") && more > 0) {
        const next = cText(args[i + 1]!);
        if (more >= 2 && (next === "~" || next === "=")) i++;
        i++;
      } else if (option === "LIMIT" && more > 0) i++;
      else if (option !== "NOMKSTREAM") break;
    }
    return i + 2;
  },
  step: 2,
};

/** XGROUP's and XINFO's key: the argument after the subcommand (none for HELP). */
const SUBCOMMAND_KEY: KeySpec = {
  find: (args) => (args.length >= 3 ? [2] : []),
  legacy: { first: 2, last: 2, step: 1 },
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const STREAM_COMMANDS: readonly CommandSpec[] = [
  {
    name: "xadd",
    arity: -5,
    kind: "write",
    handler: xadd,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: XADD_VALUES,
  },
  { name: "xrange", arity: -4, kind: "read", handler: xrange, keys: KEY_1 },
  { name: "xrevrange", arity: -4, kind: "read", handler: xrevrange, keys: KEY_1 },
  { name: "xlen", arity: 2, kind: "read", handler: xlen, flags: ["fast"], keys: KEY_1 },
  { name: "xdel", arity: -3, kind: "write", handler: xdel, flags: ["fast"], keys: KEY_1 },
  { name: "xtrim", arity: -4, kind: "write", handler: xtrim, keys: KEY_1 },
  {
    name: "xsetid",
    arity: -3,
    kind: "write",
    handler: xsetid,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  { name: "xread", arity: -4, kind: "read", handler: xread, flags: ["blocking"], keys: READ_KEYS },
  {
    name: "xreadgroup",
    arity: -7,
    kind: "write",
    handler: xreadgroup,
    flags: ["blocking"],
    keys: READ_KEYS,
  },
  { name: "xgroup", arity: -2, kind: "write", handler: xgroup, keys: SUBCOMMAND_KEY },
  { name: "xack", arity: -4, kind: "write", handler: xack, flags: ["fast"], keys: KEY_1 },
  { name: "xpending", arity: -3, kind: "read", handler: xpending, keys: KEY_1 },
  { name: "xclaim", arity: -6, kind: "write", handler: xclaim, flags: ["fast"], keys: KEY_1 },
  {
    name: "xautoclaim",
    arity: -6,
    kind: "write",
    handler: xautoclaim,
    flags: ["fast"],
    keys: KEY_1,
  },
  { name: "xinfo", arity: -2, kind: "read", handler: xinfo, keys: SUBCOMMAND_KEY },
];
