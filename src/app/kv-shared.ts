/** Shared pieces of the embedded store's commands: the handler type, replies, argument parsing. */
import type { Keyspace } from "./kv-keyspace.ts";
import type { ServerSettings } from "./kv-server.ts";
import { errorReply } from "./resp.ts";

/** What the runtime supplies to each command. */
export interface ExecContext {
  /** The leader's timestamp stamped on the log batch, ms. All expiry uses it, never Date.now(). */
  readonly nowMs: number;
  /** Text of an INFO section the runtime owns ("replication", optionally "clients"), or "". */
  info(section: string): string;
  /**
   * The store's numbered databases (SELECT's); set by KvStore.execute for every command, so
   * handlers that reach beyond the current one (COPY … DB, MOVE, SWAPDB, FLUSHALL, INFO
   * keyspace) may rely on it.
   */
  readonly databases?: Databases;
  /** The store's --max-memory and the runtime's settings (CONFIG GET, INFO); set by KvStore. */
  readonly server?: ServerSettings;
}

/** The store's databases, as a handler sees them. */
export interface Databases {
  /** How many there are (16, as redis-server's default `databases`). */
  readonly count: number;
  /** The index of the command's own database (its `keyspace` argument). */
  readonly current: number;
  /** Database `index` (0 <= index < count). */
  get(index: number): Keyspace;
  /** SWAPDB: the two databases trade contents (connections stay on their index). */
  swap(a: number, b: number): void;
}

/** `now` is the store's monotonic clock (the highest `nowMs` seen). */
export type Handler = (
  keyspace: Keyspace,
  args: readonly Buffer[],
  now: number,
  context: ExecContext,
) => Buffer;

export const WRONGTYPE = errorReply(
  "WRONGTYPE Operation against a key holding the wrong kind of value",
);
export const ERR_NOT_INTEGER = errorReply("ERR value is not an integer or out of range");
export const ERR_SYNTAX = errorReply("ERR syntax error");
export const ERR_OVERFLOW = errorReply("ERR increment or decrement would overflow");
export const ERR_NUMKEYS = errorReply("ERR numkeys should be greater than 0");
const ERR_MPOP_COUNT = errorReply("ERR count should be greater than 0");

export function wrongArity(name: string): Buffer {
  return errorReply(`ERR wrong number of arguments for '${name}' command`);
}

export function invalidExpire(name: string): Buffer {
  return errorReply(`ERR invalid expire time in '${name}' command`);
}

export function valueTooLarge(valueBytesMax: number): Buffer {
  return errorReply(`ERR value too large (limit ${valueBytesMax} bytes, set by --max-value-bytes)`);
}

/** The refusal of a reply that would be `size` bytes, over the store's `replyBytesMax`. */
export function replyTooLarge(size: number, replyBytesMax: number): Buffer {
  return errorReply(
    `ERR reply too large (${size} bytes, limit ${replyBytesMax} set by --max-reply-bytes)`,
  );
}

/**
 * The refusal when a reply of `size` bytes (its exact RESP encoding, totalled before it is built)
 * would pass `keyspace.limits.replyBytesMax`, else undefined. A pure function of the store's state
 * and the command, so every replica refuses the same commands.
 */
export function checkReplySize(keyspace: Keyspace, size: number): Buffer | undefined {
  const limit = keyspace.limits.replyBytesMax;
  return size > limit ? replyTooLarge(size, limit) : undefined;
}

/**
 * Whether a value is a reply (an error) rather than a result; a type guard because `instanceof
 * Buffer` does not narrow `Buffer<ArrayBufferLike>` out of a union.
 */
export function isReply(value: unknown): value is Buffer {
  return value instanceof Buffer;
}

/** The latin1 string of the bytes: keys, fields and members are stored this way. */
export function latin1(bytes: Buffer): string {
  return bytes.toString("latin1", 0, bytes.length);
}

/** A private copy: stored values must not pin the parser's or the log's buffers. */
export function copyBytes(bytes: Buffer): Buffer {
  return Buffer.from(bytes);
}

/** Uppercases ASCII letters of a short option name for comparison. */
export function upper(bytes: Buffer): string {
  return bytes.toString("latin1", 0, bytes.length).toUpperCase();
}

export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);
/** Numbers up to this many digits are exact as doubles. */
const SAFE_DIGITS_MAX = 15;

/**
 * Redis's string2ll: optional '-', digits, no '+', no spaces, no leading zeros, within int64.
 * Returns a number when safe (|v| < 10^15), a bigint beyond that, or null.
 */
export function parseInt64(bytes: Uint8Array): number | bigint | null {
  const length = bytes.length;
  if (length === 0 || length > 20) return null;
  if (length === 1 && bytes[0] === 48) return 0;
  const negative = bytes[0] === 45;
  const start = negative ? 1 : 0;
  if (start >= length) return null;
  const first = bytes[start]!;
  if (first < 49 || first > 57) return null;
  let value = 0;
  for (let i = start; i < length; i++) {
    const c = bytes[i]!;
    if (c < 48 || c > 57) return null;
    value = value * 10 + (c - 48);
  }
  if (length - start <= SAFE_DIGITS_MAX) return negative ? -value : value;
  const big = BigInt(Buffer.from(bytes).toString("latin1"));
  return big > INT64_MAX || big < INT64_MIN ? null : big;
}

/** An int64 as a number (rounded beyond 2^53: fine for indexes and counts), or null. */
export function parseLong(bytes: Uint8Array): number | null {
  const value = parseInt64(bytes);
  return typeof value === "bigint" ? Number(value) : value;
}

/**
 * Absolute expiry for `value` units of `unitMs` after `baseMs` (pass 0 for absolute times), or
 * null where Redis says "invalid expire time" (int64 overflow).
 */
export function expiryMs(value: number | bigint, unitMs: number, baseMs: number): number | null {
  // |value| < 10^15 as a number: value * 1000 + base stays far inside int64.
  if (typeof value === "number") return value * unitMs + baseMs;
  const ms = value * BigInt(unitMs);
  if (ms > INT64_MAX || ms < INT64_MIN) return null;
  const when = ms + BigInt(baseMs);
  if (when > INT64_MAX) return null;
  return Number(when);
}

/**
 * The items a start/stop index range names in a sequence of `length` (LRANGE, LTRIM, ZRANGE,
 * ZREMRANGEBYRANK): negative indexes count from the end, start stops at 0 and stop at the last
 * item. The inclusive [first, last], or undefined when the range is empty.
 */
export function indexRange(
  start: number,
  stop: number,
  length: number,
): [first: number, last: number] | undefined {
  const first = start < 0 ? Math.max(0, length + start) : start;
  const last = stop < 0 ? length + stop : stop;
  if (first > last || first >= length) return undefined;
  return [first, Math.min(last, length - 1)];
}

/** Result of an int64 addition: a number when safe, a bigint beyond; null on int64 overflow. */
export function addInt64(a: number | bigint, b: number | bigint): number | bigint | null {
  if (typeof a === "number" && typeof b === "number") {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  const sum = BigInt(a) + BigInt(b);
  if (sum > INT64_MAX || sum < INT64_MIN) return null;
  return sum >= BigInt(Number.MIN_SAFE_INTEGER) && sum <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(sum)
    : sum;
}

/**
 * What a blocking command's handler (BLPOP, BZPOPMIN, XREAD … BLOCK) returns when there is
 * nothing to serve yet: the session layer (kv-sessions.ts) blocks the client on the command's
 * keys and runs the command again when a write names one of them. Compared by identity; never
 * sent to a client.
 */
export const BLOCKED: Buffer = Buffer.from("-ERR apus: blocked (never sent)\r\n");

/** LMPOP's and ZMPOP's (and BLMPOP's and BZMPOP's) arguments after their `numkeys`. */
export interface MpopArgs<Where> {
  readonly keys: readonly Buffer[];
  readonly where: Where;
  readonly count: number;
}

/**
 * Parses `numkeys key... WHERE [COUNT count]` from args[numkeysAt] (Redis's lmpopGenericCommand
 * and zmpopGenericCommand): the arguments or the error reply. `parseWhere` reads LEFT|RIGHT or
 * MIN|MAX (null: a syntax error). The blocking forms pass 2 (their timeout is at 1).
 */
export function parseMpopArgs<Where>(
  args: readonly Buffer[],
  numkeysAt: number,
  parseWhere: (arg: Buffer) => Where | null,
): MpopArgs<Where> | Buffer {
  const numkeys = parseLong(args[numkeysAt]!);
  if (numkeys === null || numkeys < 1) return ERR_NUMKEYS;
  const whereAt = numkeysAt + numkeys + 1;
  if (whereAt >= args.length) return ERR_SYNTAX;
  const where = parseWhere(args[whereAt]!);
  if (where === null) return ERR_SYNTAX;
  let count = -1;
  for (let i = whereAt + 1; i < args.length; i++) {
    if (count === -1 && upper(args[i]!) === "COUNT" && i + 1 < args.length) {
      const parsed = parseLong(args[++i]!);
      if (parsed === null || parsed < 1) return ERR_MPOP_COUNT;
      count = parsed;
    } else return ERR_SYNTAX;
  }
  return { keys: args.slice(numkeysAt + 1, whereAt), where, count: count === -1 ? 1 : count };
}
