/**
 * Sorted-set commands, as Redis 7.0: ZADD ZINCRBY ZSCORE ZMSCORE ZREM ZCARD ZCOUNT ZLEXCOUNT
 * ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZRANGESTORE ZRANK
 * ZREVRANK ZPOPMIN ZPOPMAX ZMPOP ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZUNION ZINTER
 * ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZINTERCARD ZSCAN ZRANDMEMBER; zpopFirst and
 * zmpopFirst serve the blocking BZPOPMIN/BZPOPMAX/BZMPOP (kv-blocking.ts).
 *
 * Members are ordered by (score, member bytes); see KvZset for the costs. BYLEX ranges behave as
 * Redis's small-set (listpack) encoding, and like Redis assume all scores are equal. Replies built
 * from stored data are sized before they are built (checkReplySize), and a refused pop removes
 * nothing. ZSCAN's cursors and ZRANDMEMBER's picks differ from Redis's by design (their comments
 * say how); both are the same on every replica.
 */
import { assert } from "../core/errors.ts";
import { SeededPrng } from "../core/prng.ts";
import {
  type CommandSpec,
  KEY_1,
  KEYS_1_2,
  numkeysKeySpec,
  VALUE_AT_3,
  type ValueArgs,
} from "./kv-command-spec.ts";
import { SCAN_COUNT_MAX } from "./kv-keys.ts";
import { type Keyspace, KvSet, KvZset, type ZItem } from "./kv-keyspace.ts";
import {
  EMPTY_SCAN,
  ERR_INVALID_CURSOR,
  parseScanCursor,
  parseScanOptions,
} from "./kv-scan-options.ts";
import { formatScore, parseScore, parseScoreBound, type ScoreBound } from "./kv-scores.ts";
import { fnv1a, SCAN_CALLS_MAX, scanReply } from "./kv-sets.ts";
import {
  checkReplySize,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  INT64_MIN,
  indexRange,
  isReply,
  latin1,
  parseInt64,
  parseLong,
  parseMpopArgs,
  replyTooLarge,
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
  NULL_ARRAY,
  NULL_BULK,
  ZERO,
} from "./resp.ts";

const ERR_NOT_FLOAT = errorReply("ERR value is not a valid float");
const ERR_RANGE_NOT_FLOAT = errorReply("ERR min or max is not a float");
const ERR_LEX_RANGE = errorReply("ERR min or max not valid string range item");
const ERR_NAN = errorReply("ERR resulting score is not a number (NaN)");
const ERR_NOT_POSITIVE = errorReply("ERR value is out of range, must be positive");
const ERR_WEIGHT_NOT_FLOAT = errorReply("ERR weight value is not a float");
const ERR_LIMIT_NEGATIVE = errorReply("ERR LIMIT can't be negative");
const ERR_COUNT_RANGE = errorReply(
  "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
);
/** Bytes of a null bulk reply, `$-1\r\n`. */
const NULL_BULK_SIZE = 5;

/** The sorted set at `key`, undefined when absent, or WRONGTYPE. */
function readZset(keyspace: Keyspace, key: string, now: number): KvZset | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvZset ? entry.value : WRONGTYPE;
}

function removeIfEmpty(keyspace: Keyspace, key: string, zset: KvZset): void {
  if (zset.size === 0) keyspace.remove(key, keyspace.entries.get(key)!);
}

/** The reply for `items`, members only or member/score pairs, or the reply-size refusal. */
function itemsReply(keyspace: Keyspace, items: readonly ZItem[], withScores: boolean): Buffer {
  const scores = withScores ? items.map((item) => formatScore(item.score)) : [];
  let size = arrayHeaderSize(withScores ? items.length * 2 : items.length);
  for (let i = 0; i < items.length; i++) {
    size += bulkSize(items[i]!.member.length);
    if (withScores) size += bulkSize(scores[i]!.length);
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  const out: Buffer[] = [];
  for (let i = 0; i < items.length; i++) {
    out.push(bulk(items[i]!.member));
    if (withScores) out.push(bulk(scores[i]!));
  }
  return array(out);
}

/** ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]; ZINCRBY is ZADD INCR. */
function zaddGeneric(keyspace: Keyspace, args: readonly Buffer[], now: number, incrOnly: boolean) {
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  let ch = false;
  let incr = incrOnly;
  let at = 2;
  if (!incrOnly) {
    for (; at < args.length; at++) {
      const option = upper(args[at]!);
      if (option === "NX") nx = true;
      else if (option === "XX") xx = true;
      else if (option === "CH") ch = true;
      else if (option === "INCR") incr = true;
      else if (option === "GT") gt = true;
      else if (option === "LT") lt = true;
      else break;
    }
  }
  const elements = args.length - at;
  if (elements === 0 || elements % 2 !== 0) return ERR_SYNTAX;
  if (xx && nx) return errorReply("ERR XX and NX options at the same time are not compatible");
  if ((gt && nx) || (lt && nx) || (gt && lt)) {
    return errorReply("ERR GT, LT, and/or NX options at the same time are not compatible");
  }
  if (incr && elements > 2) {
    return errorReply("ERR INCR option supports a single increment-element pair");
  }
  const scores: number[] = [];
  for (let i = at; i < args.length; i += 2) {
    const score = parseScore(latin1(args[i]!));
    if (score === null) return ERR_NOT_FLOAT;
    scores.push(score);
    if (args[i + 1]!.length > keyspace.limits.valueBytesMax) {
      return valueTooLarge(keyspace.limits.valueBytesMax);
    }
  }
  const key = latin1(args[1]!);
  let zset = readZset(keyspace, key, now);
  if (isReply(zset)) return zset;
  let added = 0;
  let updated = 0;
  let processed = 0;
  let result = 0;
  if (zset !== undefined || !xx) {
    if (zset === undefined) {
      zset = new KvZset();
      keyspace.insert(key, zset);
    }
    for (let j = 0; j < scores.length; j++) {
      const member = latin1(args[at + 1 + 2 * j]!);
      let score = scores[j]!;
      const current = zset.scores.get(member);
      if (current === undefined) {
        if (xx) continue;
        zset.set(member, score);
        added++;
      } else {
        if (nx) continue;
        if (incr) {
          score += current;
          if (Number.isNaN(score)) {
            removeIfEmpty(keyspace, key, zset);
            return ERR_NAN;
          }
        }
        if ((lt && score >= current) || (gt && score <= current)) continue;
        if (score !== current) {
          zset.set(member, score);
          updated++;
        }
      }
      processed++;
      result = score === 0 ? 0 : score;
    }
    removeIfEmpty(keyspace, key, zset);
  }
  if (incr) return processed > 0 ? bulk(formatScore(result)) : NULL_BULK;
  return integer(ch ? added + updated : added);
}

export const zadd: Handler = (keyspace, args, now) => zaddGeneric(keyspace, args, now, false);
export const zincrby: Handler = (keyspace, args, now) => zaddGeneric(keyspace, args, now, true);

export const zscore: Handler = (keyspace, args, now) => {
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (zset === undefined) return NULL_BULK;
  if (isReply(zset)) return zset;
  const score = zset.scores.get(latin1(args[2]!));
  return score === undefined ? NULL_BULK : bulk(formatScore(score));
};

export const zmscore: Handler = (keyspace, args, now) => {
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (isReply(zset)) return zset;
  const scores: (string | undefined)[] = [];
  let size = arrayHeaderSize(args.length - 2);
  for (let i = 2; i < args.length; i++) {
    const score = zset?.scores.get(latin1(args[i]!));
    const text = score === undefined ? undefined : formatScore(score);
    scores.push(text);
    size += text === undefined ? NULL_BULK_SIZE : bulkSize(text.length);
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(scores.map((text) => (text === undefined ? NULL_BULK : bulk(text))));
};

export const zrem: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const zset = readZset(keyspace, key, now);
  if (zset === undefined) return ZERO;
  if (isReply(zset)) return zset;
  let removed = 0;
  for (let i = 2; i < args.length; i++) if (zset.delete(latin1(args[i]!))) removed++;
  removeIfEmpty(keyspace, key, zset);
  return integer(removed);
};

export const zcard: Handler = (keyspace, args, now) => {
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (zset === undefined) return ZERO;
  return isReply(zset) ? zset : integer(zset.size);
};

/** Index range [first, last] of the items within [min, max]; first > last when none. */
function scoreSpan(zset: KvZset, min: ScoreBound, max: ScoreBound): [number, number] {
  if (min.value > max.value || (min.value === max.value && (min.exclusive || max.exclusive))) {
    return [0, -1];
  }
  return [zset.firstAbove(min.value, min.exclusive), zset.lastBelow(max.value, max.exclusive)];
}

export const zcount: Handler = (keyspace, args, now) => {
  const min = parseScoreBound(latin1(args[2]!));
  const max = parseScoreBound(latin1(args[3]!));
  if (min === null || max === null) return ERR_RANGE_NOT_FLOAT;
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (zset === undefined) return ZERO;
  if (isReply(zset)) return zset;
  const [first, last] = scoreSpan(zset, min, max);
  return integer(Math.max(0, last - first + 1));
};

/** Lex-range bound: "-" / "+" (unbounded) or "[x" / "(x". */
interface LexBound {
  readonly member: string;
  readonly exclusive: boolean;
  /** -1: "-", below everything; 1: "+", above everything; 0: a member. */
  readonly infinity: -1 | 0 | 1;
}

function parseLexBound(text: string): LexBound | null {
  if (text === "-") return { member: "", exclusive: false, infinity: -1 };
  if (text === "+") return { member: "", exclusive: false, infinity: 1 };
  if (text[0] === "[" || text[0] === "(") {
    return { member: text.slice(1), exclusive: text[0] === "(", infinity: 0 };
  }
  return null;
}

function lexGteMin(member: string, min: LexBound): boolean {
  if (min.infinity !== 0) return min.infinity < 0;
  return min.exclusive ? member > min.member : member >= min.member;
}

function lexLteMax(member: string, max: LexBound): boolean {
  if (max.infinity !== 0) return max.infinity > 0;
  return max.exclusive ? member < max.member : member <= max.member;
}

/** The first index in [0, n) where `holds` is false; `holds` must be true, then false. */
function partitionPoint(n: number, holds: (i: number) => boolean): number {
  let low = 0;
  let high = n;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (holds(mid)) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Index range [first, last] of the items within the lex range (first > last when none). As
 * Redis's small-set (listpack) encoding: a scan for the first member past the near bound, then on
 * while within the far one, which is meaningful when all scores are equal, as BYLEX assumes. When
 * they are (the usual case), members ascend and two binary searches find the same span.
 */
function lexSpan(zset: KvZset, min: LexBound, max: LexBound, reverse: boolean): [number, number] {
  const items = zset.items;
  const length = items.length;
  if (length === 0) return [0, -1];
  if (items[0]!.score === items[length - 1]!.score) {
    const first = partitionPoint(length, (i) => !lexGteMin(items[i]!.member, min));
    const last = partitionPoint(length, (i) => lexLteMax(items[i]!.member, max)) - 1;
    return last < first ? [first, first - 1] : [first, last];
  }
  if (!reverse) {
    let i = 0;
    while (i < length && !lexGteMin(items[i]!.member, min)) i++;
    const first = i;
    while (i < length && lexLteMax(items[i]!.member, max)) i++;
    return [first, i - 1];
  }
  let i = length - 1;
  while (i >= 0 && !lexLteMax(items[i]!.member, max)) i--;
  const last = i;
  while (i >= 0 && lexGteMin(items[i]!.member, min)) i--;
  return [i + 1, last];
}

type RangeType = "auto" | "rank" | "score" | "lex";
type Direction = "auto" | "forward" | "reverse";

/** The items a ZRANGE-like command picked, in reply order. */
interface ZrangeResult {
  readonly items: ZItem[];
  readonly withScores: boolean;
  /** The items come highest first. */
  readonly reverse: boolean;
}

/**
 * Redis 7.0's zrangeGenericCommand: ZRANGE (any form), ZREVRANGE, Z[REV]RANGEBYSCORE/LEX and
 * ZRANGESTORE (`store`: its source at args[2], no WITHSCORES). Options and their errors are
 * checked in Redis's order, then the range, then the key; a missing key picks nothing.
 */
function zrangeSelect(
  keyspace: Keyspace,
  args: readonly Buffer[],
  now: number,
  store: boolean,
  rangeType: RangeType,
  direction: Direction,
): ZrangeResult | Buffer {
  const keyAt = store ? 2 : 1;
  let withScores = false;
  let offset = 0;
  let limit = -1;
  let type = rangeType;
  let dir = direction;
  for (let j = keyAt + 3; j < args.length; j++) {
    const option = upper(args[j]!);
    const left = args.length - j - 1;
    if (!store && option === "WITHSCORES") withScores = true;
    else if (option === "LIMIT" && left >= 2) {
      const o = parseLong(args[j + 1]!);
      const l = parseLong(args[j + 2]!);
      if (o === null || l === null) return ERR_NOT_INTEGER;
      offset = o;
      limit = l;
      j += 2;
    } else if (dir === "auto" && option === "REV") dir = "reverse";
    else if (type === "auto" && option === "BYLEX") type = "lex";
    else if (type === "auto" && option === "BYSCORE") type = "score";
    else return ERR_SYNTAX;
  }
  const reverse = dir === "reverse";
  if (type === "auto") type = "rank";
  if (limit !== -1 && type === "rank") {
    return errorReply(
      "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
    );
  }
  if (withScores && type === "lex") {
    return errorReply("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
  }
  // BYSCORE/BYLEX with REV take the range as max, min.
  const minText = latin1(args[keyAt + (reverse && type !== "rank" ? 2 : 1)]!);
  const maxText = latin1(args[keyAt + (reverse && type !== "rank" ? 1 : 2)]!);
  let start = 0;
  let stop = 0;
  let scoreMin: ScoreBound | null = null;
  let scoreMax: ScoreBound | null = null;
  let lexMin: LexBound | null = null;
  let lexMax: LexBound | null = null;
  if (type === "rank") {
    const s = parseLong(args[keyAt + 1]!);
    const e = parseLong(args[keyAt + 2]!);
    if (s === null || e === null) return ERR_NOT_INTEGER;
    start = s;
    stop = e;
  } else if (type === "score") {
    scoreMin = parseScoreBound(minText);
    scoreMax = parseScoreBound(maxText);
    if (scoreMin === null || scoreMax === null) return ERR_RANGE_NOT_FLOAT;
  } else {
    lexMin = parseLexBound(minText);
    lexMax = parseLexBound(maxText);
    if (lexMin === null || lexMax === null) return ERR_LEX_RANGE;
  }
  const picked: ZItem[] = [];
  const result = { items: picked, withScores, reverse };
  const zset = readZset(keyspace, latin1(args[keyAt]!), now);
  if (zset === undefined) return result;
  if (isReply(zset)) return zset;
  const items = zset.items;
  const length = items.length;
  if (type === "rank") {
    const range = indexRange(start, stop, length);
    if (range === undefined) return result;
    for (let i = range[0]; i <= range[1]; i++) picked.push(items[reverse ? length - 1 - i : i]!);
    return result;
  }
  // Redis skips `offset` items first; a negative offset skips them all.
  if (offset < 0 || (offset > 0 && offset >= length)) return result;
  const [first, last] =
    type === "score"
      ? scoreSpan(zset, scoreMin!, scoreMax!)
      : lexSpan(zset, lexMin!, lexMax!, reverse);
  const count = last - first + 1 - offset;
  const n = limit < 0 ? count : Math.min(count, limit);
  for (let k = 0; k < n; k++) picked.push(items[reverse ? last - offset - k : first + offset + k]!);
  return result;
}

function zrangeGeneric(rangeType: RangeType, direction: Direction): Handler {
  return (keyspace, args, now) => {
    const result = zrangeSelect(keyspace, args, now, false, rangeType, direction);
    if (isReply(result)) return result;
    return itemsReply(keyspace, result.items, result.withScores);
  };
}

export const zrange = zrangeGeneric("auto", "auto");
export const zrevrange = zrangeGeneric("rank", "reverse");
export const zrangebyscore = zrangeGeneric("score", "forward");
export const zrevrangebyscore = zrangeGeneric("score", "reverse");
export const zrangebylex = zrangeGeneric("lex", "forward");
export const zrevrangebylex = zrangeGeneric("lex", "reverse");

function zrankGeneric(reverse: boolean): Handler {
  return (keyspace, args, now) => {
    const zset = readZset(keyspace, latin1(args[1]!), now);
    if (zset === undefined) return NULL_BULK;
    if (isReply(zset)) return zset;
    const rank = zset.rank(latin1(args[2]!));
    if (rank < 0) return NULL_BULK;
    return integer(reverse ? zset.size - 1 - rank : rank);
  };
}

export const zrank = zrankGeneric(false);
export const zrevrank = zrankGeneric(true);

/** ZPOPMIN/ZPOPMAX key [count]: a flat member, score, … array (RESP2), even without a count. */
function zpopGeneric(fromHigh: boolean): Handler {
  return (keyspace, args, now) => {
    if (args.length > 3) return ERR_SYNTAX;
    let count = 1;
    if (args.length === 3) {
      const parsed = parseLong(args[2]!);
      if (parsed === null || parsed < 0) return ERR_NOT_POSITIVE;
      count = parsed;
    }
    const key = latin1(args[1]!);
    const zset = readZset(keyspace, key, now);
    if (zset === undefined) return EMPTY_ARRAY;
    if (isReply(zset)) return zset;
    if (count === 0) return EMPTY_ARRAY;
    const n = Math.min(count, zset.size);
    const items = zset.items;
    const preview = fromHigh ? items.slice(items.length - n).reverse() : items.slice(0, n);
    const reply = itemsReply(keyspace, preview, true);
    if (reply[0] === 45) return reply; // refused: pop nothing
    zset.popEnd(n, fromHigh);
    removeIfEmpty(keyspace, key, zset);
    return reply;
  };
}

export const zpopmin = zpopGeneric(false);
export const zpopmax = zpopGeneric(true);

/**
 * Stores `items` (sorted by score, then member) as a new sorted set at `key`, replacing whatever
 * was there (TTL cleared), or deletes `key` when there are none: an empty sorted set is never
 * kept. Replies with the count. A -0 score is stored as 0, as KvZset keeps them.
 */
function storeZset(keyspace: Keyspace, key: string, items: readonly ZItem[], now: number): Buffer {
  if (items.length === 0) {
    const entry = keyspace.lookup(key, now);
    if (entry !== undefined) keyspace.remove(key, entry);
    return ZERO;
  }
  const zset = new KvZset();
  for (const item of items) zset.appendSorted(item.member, item.score === 0 ? 0 : item.score);
  keyspace.set(key, zset, now);
  return integer(zset.size);
}

/** ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]. */
export const zrangestore: Handler = (keyspace, args, now) => {
  const result = zrangeSelect(keyspace, args, now, true, "auto", "auto");
  if (isReply(result)) return result;
  const items = result.reverse ? result.items.slice().reverse() : result.items;
  return storeZset(keyspace, latin1(args[1]!), items, now);
};

/** Orders items as a sorted set does: by score, then by member bytes. */
function compareItems(a: ZItem, b: ZItem): number {
  if (a.score !== b.score) return a.score < b.score ? -1 : 1;
  return a.member < b.member ? -1 : a.member > b.member ? 1 : 0;
}

/** An input of ZUNION/ZINTER/ZDIFF: a sorted set, or a set (every member scored 1), or none. */
type ZsetSource = KvZset | KvSet | undefined;

function sourceSize(source: ZsetSource): number {
  if (source === undefined) return 0;
  return source instanceof KvZset ? source.size : source.members.size;
}

/** The score of `member` in `source`, undefined when absent. */
function sourceScore(source: ZsetSource, member: string): number | undefined {
  if (source === undefined) return undefined;
  if (source instanceof KvZset) return source.scores.get(member);
  return source.members.has(member) ? 1 : undefined;
}

/** Calls `visit` on each member and score of `source` until it returns false. */
function forEachItem(
  source: ZsetSource,
  visit: (member: string, score: number) => boolean | undefined,
): void {
  if (source === undefined) return;
  if (source instanceof KvZset) {
    for (const item of source.items) if (visit(item.member, item.score) === false) return;
  } else for (const member of source.members) if (visit(member, 1) === false) return;
}

type Aggregate = "sum" | "min" | "max";

/** Redis's zunionInterAggregate: a SUM of +inf and -inf is 0, a NaN `value` leaves MIN/MAX. */
function aggregate(target: number, value: number, how: Aggregate): number {
  if (how === "sum") {
    const sum = target + value;
    return Number.isNaN(sum) ? 0 : sum;
  }
  // Not Math.min/max: those answer NaN for a NaN value, where Redis keeps the target.
  // biome-ignore lint/complexity/useMathMinMax: NaN must leave the target as it is
  if (how === "min") return value < target ? value : target;
  // biome-ignore lint/complexity/useMathMinMax: NaN must leave the target as it is
  return value > target ? value : target;
}

type ZsetOperation = "union" | "inter" | "diff";

interface ZsetOperationArgs {
  readonly sources: readonly ZsetSource[];
  readonly weights: readonly number[];
  readonly aggregate: Aggregate;
  readonly withScores: boolean;
  /** ZINTERCARD's LIMIT; 0: none. */
  readonly limit: number;
}

/**
 * Redis 7.0's zunionInterDiffGenericCommand's parsing: numkeys at args[numkeysAt], the keys (a
 * set or a sorted set each, else WRONGTYPE, checked before the options), then WEIGHTS and
 * AGGREGATE (not for ZDIFF), WITHSCORES (not when storing), LIMIT (ZINTERCARD only).
 */
function parseZsetOperation(
  keyspace: Keyspace,
  args: readonly Buffer[],
  now: number,
  name: string,
  numkeysAt: number,
  operation: ZsetOperation,
  mode: "reply" | "store" | "cardinality",
): ZsetOperationArgs | Buffer {
  const numkeys = parseLong(args[numkeysAt]!);
  if (numkeys === null) return ERR_NOT_INTEGER;
  if (numkeys < 1) return errorReply(`ERR at least 1 input key is needed for '${name}' command`);
  if (numkeys > args.length - (numkeysAt + 1)) return ERR_SYNTAX;
  const sources: ZsetSource[] = [];
  for (let i = 0; i < numkeys; i++) {
    const entry = keyspace.lookup(latin1(args[numkeysAt + 1 + i]!), now);
    const value = entry?.value;
    if (value !== undefined && !(value instanceof KvZset) && !(value instanceof KvSet)) {
      return WRONGTYPE;
    }
    sources.push(value);
  }
  const weights: number[] = new Array(numkeys).fill(1);
  let how: Aggregate = "sum";
  let withScores = false;
  let limit = 0;
  let j = numkeysAt + 1 + numkeys;
  const combines = operation !== "diff" && mode !== "cardinality";
  while (j < args.length) {
    const option = upper(args[j]!);
    const remaining = args.length - j;
    if (combines && remaining >= numkeys + 1 && option === "WEIGHTS") {
      for (let i = 0; i < numkeys; i++) {
        const weight = parseScore(latin1(args[j + 1 + i]!));
        if (weight === null) return ERR_WEIGHT_NOT_FLOAT;
        weights[i] = weight;
      }
      j += numkeys + 1;
    } else if (combines && remaining >= 2 && option === "AGGREGATE") {
      const choice = upper(args[j + 1]!);
      if (choice === "SUM") how = "sum";
      else if (choice === "MIN") how = "min";
      else if (choice === "MAX") how = "max";
      else return ERR_SYNTAX;
      j += 2;
    } else if (mode === "reply" && option === "WITHSCORES") {
      withScores = true;
      j++;
    } else if (mode === "cardinality" && remaining >= 2 && option === "LIMIT") {
      const parsed = parseLong(args[j + 1]!);
      if (parsed === null || parsed < 0) return ERR_LIMIT_NEGATIVE;
      limit = parsed;
      j += 2;
    } else return ERR_SYNTAX;
  }
  return { sources, weights, aggregate: how, withScores, limit };
}

/** The inputs with their weights, smallest first (a stable sort, as Redis's qsort here is). */
function bySize(parsed: ZsetOperationArgs): { source: ZsetSource; weight: number }[] {
  return parsed.sources
    .map((source, i) => ({ source, weight: parsed.weights[i]! }))
    .sort((a, b) => sourceSize(a.source) - sourceSize(b.source));
}

/**
 * ZINTER's members and scores, or with `countOnly` just their number (up to `limit` when > 0):
 * each member of the smallest input found in every other, its weighted scores aggregated in
 * order of input size, as Redis adds them (float sums depend on the order).
 */
function zsetIntersection(parsed: ZsetOperationArgs, countOnly: boolean): ZItem[] | number {
  const inputs = bySize(parsed);
  const found: ZItem[] = [];
  let count = 0;
  const smallest = inputs[0]!;
  if (sourceSize(smallest.source) === 0) return countOnly ? 0 : found;
  forEachItem(smallest.source, (member, memberScore) => {
    let score = smallest.weight * memberScore;
    if (Number.isNaN(score)) score = 0;
    for (let j = 1; j < inputs.length; j++) {
      const other = sourceScore(inputs[j]!.source, member);
      if (other === undefined) return true;
      score = aggregate(score, other * inputs[j]!.weight, parsed.aggregate);
    }
    count++;
    if (!countOnly) found.push({ member, score });
    return parsed.limit === 0 || count < parsed.limit;
  });
  return countOnly ? count : found;
}

/** ZUNION's members and scores: weighted (NaN as 0), aggregated in order of input size. */
function zsetUnion(parsed: ZsetOperationArgs): ZItem[] {
  const scores = new Map<string, number>();
  for (const { source, weight } of bySize(parsed)) {
    forEachItem(source, (member, memberScore) => {
      let score = weight * memberScore;
      if (Number.isNaN(score)) score = 0;
      const current = scores.get(member);
      scores.set(
        member,
        current === undefined ? score : aggregate(current, score, parsed.aggregate),
      );
      return true;
    });
  }
  const found: ZItem[] = [];
  for (const [member, score] of scores) found.push({ member, score });
  return found;
}

/** ZDIFF's members: those of the first input in no other, with the first input's scores. */
function zsetDifference(parsed: ZsetOperationArgs): ZItem[] {
  const [first, ...others] = parsed.sources;
  const found: ZItem[] = [];
  forEachItem(first, (member, score) => {
    if (!others.some((other) => sourceScore(other, member) !== undefined)) {
      found.push({ member, score });
    }
    return true;
  });
  return found;
}

function zsetOperationItems(parsed: ZsetOperationArgs, operation: ZsetOperation): ZItem[] {
  let items: ZItem[];
  if (operation === "inter") items = zsetIntersection(parsed, false) as ZItem[];
  else if (operation === "union") items = zsetUnion(parsed);
  else items = zsetDifference(parsed);
  return items.sort(compareItems);
}

/**
 * ZUNION, ZINTER, ZDIFF numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
 * [WITHSCORES]. Like Redis, the reply keeps a -0 score ("-0"), which a stored set would not.
 */
function zsetOperationCommand(name: string, operation: ZsetOperation): Handler {
  return (keyspace, args, now) => {
    const parsed = parseZsetOperation(keyspace, args, now, name, 1, operation, "reply");
    if (isReply(parsed)) return parsed;
    return itemsReply(keyspace, zsetOperationItems(parsed, operation), parsed.withScores);
  };
}

/** ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE destination numkeys key [key ...] [options]. */
function zsetStoreCommand(name: string, operation: ZsetOperation): Handler {
  return (keyspace, args, now) => {
    const parsed = parseZsetOperation(keyspace, args, now, name, 2, operation, "store");
    if (isReply(parsed)) return parsed;
    return storeZset(keyspace, latin1(args[1]!), zsetOperationItems(parsed, operation), now);
  };
}

export const zunion = zsetOperationCommand("zunion", "union");
export const zinter = zsetOperationCommand("zinter", "inter");
export const zdiff = zsetOperationCommand("zdiff", "diff");
export const zunionstore = zsetStoreCommand("zunionstore", "union");
export const zinterstore = zsetStoreCommand("zinterstore", "inter");
export const zdiffstore = zsetStoreCommand("zdiffstore", "diff");

/** ZINTERCARD numkeys key [key ...] [LIMIT limit]. */
export const zintercard: Handler = (keyspace, args, now) => {
  const parsed = parseZsetOperation(keyspace, args, now, "zintercard", 1, "inter", "cardinality");
  if (isReply(parsed)) return parsed;
  return integer(zsetIntersection(parsed, true) as number);
};

/** Removes items [first, last] of the sorted set at `key` (deleted once empty); the count. */
function removeSpan(keyspace: Keyspace, key: string, zset: KvZset, first: number, last: number) {
  const count = Math.max(0, last - first + 1);
  if (count > 0) zset.removeRange(first, count);
  removeIfEmpty(keyspace, key, zset);
  return integer(count);
}

export const zremrangebyrank: Handler = (keyspace, args, now) => {
  const start = parseLong(args[2]!);
  const stop = parseLong(args[3]!);
  if (start === null || stop === null) return ERR_NOT_INTEGER;
  const key = latin1(args[1]!);
  const zset = readZset(keyspace, key, now);
  if (zset === undefined) return ZERO;
  if (isReply(zset)) return zset;
  const range = indexRange(start, stop, zset.size);
  if (range === undefined) return ZERO;
  return removeSpan(keyspace, key, zset, range[0], range[1]);
};

export const zremrangebyscore: Handler = (keyspace, args, now) => {
  const min = parseScoreBound(latin1(args[2]!));
  const max = parseScoreBound(latin1(args[3]!));
  if (min === null || max === null) return ERR_RANGE_NOT_FLOAT;
  const key = latin1(args[1]!);
  const zset = readZset(keyspace, key, now);
  if (zset === undefined) return ZERO;
  if (isReply(zset)) return zset;
  const [first, last] = scoreSpan(zset, min, max);
  return removeSpan(keyspace, key, zset, first, last);
};

/** The lex range at args[2], args[3], or the error reply. */
function parseLexRange(args: readonly Buffer[]): [LexBound, LexBound] | Buffer {
  const min = parseLexBound(latin1(args[2]!));
  const max = parseLexBound(latin1(args[3]!));
  return min === null || max === null ? ERR_LEX_RANGE : [min, max];
}

export const zremrangebylex: Handler = (keyspace, args, now) => {
  const range = parseLexRange(args);
  if (isReply(range)) return range;
  const key = latin1(args[1]!);
  const zset = readZset(keyspace, key, now);
  if (zset === undefined) return ZERO;
  if (isReply(zset)) return zset;
  const [first, last] = lexSpan(zset, range[0], range[1], false);
  return removeSpan(keyspace, key, zset, first, last);
};

export const zlexcount: Handler = (keyspace, args, now) => {
  const range = parseLexRange(args);
  if (isReply(range)) return range;
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (zset === undefined) return ZERO;
  if (isReply(zset)) return zset;
  const [first, last] = lexSpan(zset, range[0], range[1], false);
  return integer(Math.max(0, last - first + 1));
};

/** Redis's zset-max-listpack-entries and -value: a sorted set within both is small there. */
export const ZSET_LISTPACK_ENTRIES_MAX = 128;
export const ZSET_LISTPACK_VALUE_MAX = 64;

/** Whether Redis would hold `zset` in its small (listpack) encoding. */
function isSmall(zset: KvZset): boolean {
  if (zset.size > ZSET_LISTPACK_ENTRIES_MAX) return false;
  return zset.items.every((item) => item.member.length <= ZSET_LISTPACK_VALUE_MAX);
}

/**
 * The walk order of the sorted set ZSCAN walks last, while it is unchanged: its members by
 * (FNV-1a hash, member), with the hashes. Derived from the contents only (not state); one entry.
 */
let walkCache:
  | { zset: KvZset; version: number; members: string[]; hashes: Uint32Array }
  | undefined;

function walkOrder(zset: KvZset): { members: string[]; hashes: Uint32Array } {
  const cached = walkCache;
  if (cached !== undefined && cached.zset === zset && cached.version === zset.version) {
    return cached;
  }
  const items = zset.items;
  const n = items.length;
  const hashOf = new Uint32Array(n);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    hashOf[i] = fnv1a(items[i]!.member);
    order[i] = i;
  }
  order.sort((x, y) => {
    const byHash = hashOf[x]! - hashOf[y]!;
    if (byHash !== 0) return byHash;
    const a = items[x]!.member;
    const b = items[y]!.member;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const members: string[] = new Array(n);
  const hashes = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    members[i] = items[order[i]!]!.member;
    hashes[i] = hashOf[order[i]!]!;
  }
  walkCache = { zset, version: zset.version, members, hashes };
  return walkCache;
}

/**
 * ZSCAN key cursor [MATCH pattern] [COUNT count]. A sorted set Redis would hold small (at most
 * 128 members of at most 64 bytes) comes whole, in score order, with cursor 0, as Redis answers.
 * A larger one is walked in order of its members' 32-bit FNV-1a hashes, which neither scores nor
 * other members move: cursor h + 1 resumes at the first member whose hash is at least h, so every
 * member present throughout a walk is returned (a hash's members never split between calls).
 * COUNT members per call, or more for a large set (1/SCAN_CALLS_MAX of it: a call after a change
 * sorts the set once). Not Redis's hash-table cursors; the same on every replica.
 */
export const zscan: Handler = (keyspace, args, now) => {
  const cursor = parseScanCursor(args[2]!);
  if (cursor === null) return ERR_INVALID_CURSOR;
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (zset === undefined) return EMPTY_SCAN;
  if (isReply(zset)) return zset;
  const options = parseScanOptions(keyspace, args, 3, SCAN_COUNT_MAX);
  if (isReply(options)) return options;
  const pattern = options.pattern;
  const elements: string[] = [];
  const add = (member: string, score: number) => {
    if (pattern === undefined || pattern.matches(member)) elements.push(member, formatScore(score));
  };
  if (isSmall(zset)) {
    for (const item of zset.items) add(item.member, item.score);
    return scanReply(keyspace, "0", elements);
  }
  const { members, hashes } = walkOrder(zset);
  const size = members.length;
  // Past every hash (a cursor this walk never gave): the walk is over.
  const start =
    cursor > 2n ** 32n ? size : partitionPoint(size, (i) => hashes[i]! < Number(cursor) - 1);
  let end = Math.min(size, start + Math.max(options.count, Math.ceil(size / SCAN_CALLS_MAX)));
  while (end < size && end > start && hashes[end] === hashes[end - 1]) end++;
  for (let i = start; i < end; i++) add(members[i]!, zset.scores.get(members[i]!)!);
  return scanReply(keyspace, end < size ? String(hashes[end]! + 1) : "0", elements);
};

/** LONG_MAX / 2: ZRANDMEMBER's largest |count| WITH SCORES. */
const RANDOM_WITH_SCORES_MAX = 4611686018427387903n;

/**
 * A PRNG seeded from the store's state at this command: the log's clock, the next insertion
 * number, the key and the set's size, which every replica shares. Never Math.random: every
 * replica, and a read served by any of them, must pick alike.
 */
function seededPrng(keyspace: Keyspace, key: string, size: number, now: number): SeededPrng {
  let seed = fnv1a(key);
  for (const word of [now, keyspace.nextSeq, size]) {
    seed = Math.imul(seed ^ (word % 2 ** 32), 0x9e3779b1) ^ Math.floor(word / 2 ** 32);
  }
  return new SeededPrng(seed);
}

/** `k` distinct indexes of [0, n), k <= n (Floyd's sampling), in a shuffled order. */
function distinctIndexes(prng: SeededPrng, n: number, k: number): number[] {
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = prng.nextInt(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return shuffle(prng, [...chosen]);
}

/** Fisher-Yates, in place. */
function shuffle(prng: SeededPrng, values: number[]): number[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = prng.nextInt(i + 1);
    const swap = values[i]!;
    values[i] = values[j]!;
    values[j] = swap;
  }
  return values;
}

/** Bytes of `item` in a reply: its member, and its score WITHSCORES. */
function itemSize(item: ZItem, withScores: boolean): number {
  return bulkSize(item.member.length) + (withScores ? bulkSize(formatScore(item.score).length) : 0);
}

/** The refusal of a reply of `size` bytes (a bigint: a huge negative count), else undefined. */
function checkBigReplySize(keyspace: Keyspace, size: bigint): Buffer | undefined {
  const limit = keyspace.limits.replyBytesMax;
  if (size <= BigInt(limit)) return undefined;
  // replyTooLarge's message, with every digit of a size past 2^53.
  return size <= BigInt(Number.MAX_SAFE_INTEGER)
    ? replyTooLarge(Number(size), limit)
    : errorReply(`ERR reply too large (${size} bytes, limit ${limit} set by --max-reply-bytes)`);
}

/**
 * ZRANDMEMBER's `total` picks where repeats are allowed: each item total / size times and
 * total mod size distinct others once, shuffled. The reply is sized in closed form before
 * anything is built, so a huge total is refused at once.
 */
function picksWithRepeats(
  keyspace: Keyspace,
  items: readonly ZItem[],
  prng: SeededPrng,
  total: bigint,
  withScores: boolean,
): Buffer {
  const size = items.length;
  const rounds = total / BigInt(size);
  const rest = distinctIndexes(prng, size, Number(total % BigInt(size)));
  let roundBytes = 0;
  if (rounds > 0n) for (const item of items) roundBytes += itemSize(item, withScores);
  let restBytes = 0;
  for (const i of rest) restBytes += itemSize(items[i]!, withScores);
  const elements = withScores ? 2n * total : total;
  const replySize =
    BigInt(1 + String(elements).length + 2) + rounds * BigInt(roundBytes) + BigInt(restBytes);
  const refusal = checkBigReplySize(keyspace, replySize);
  if (refusal !== undefined) return refusal;
  const picks = rest;
  for (let r = 0; r < Number(rounds); r++) for (let i = 0; i < size; i++) picks.push(i);
  return itemsReply(
    keyspace,
    shuffle(prng, picks).map((i) => items[i]!),
    withScores,
  );
}

/**
 * ZRANDMEMBER key [count [WITHSCORES]]: pseudo-random, not random: picks are seeded from the
 * store's state (seededPrng), so every replica picks alike; compare with Redis only where the
 * pick cannot differ. As Redis: a count at least the set's size returns it whole, highest score
 * first; a smaller positive count, that many distinct members. A negative count -n returns n
 * members where repeats are allowed (picksWithRepeats).
 */
export const zrandmember: Handler = (keyspace, args, now) => {
  let count: bigint | undefined;
  let withScores = false;
  if (args.length >= 3) {
    const parsed = parseInt64(args[2]!);
    if (parsed === null) return ERR_NOT_INTEGER;
    if (parsed === INT64_MIN) return ERR_COUNT_RANGE;
    if (args.length > 4 || (args.length === 4 && upper(args[3]!) !== "WITHSCORES")) {
      return ERR_SYNTAX;
    }
    count = BigInt(parsed);
    withScores = args.length === 4;
    if (withScores && (count > RANDOM_WITH_SCORES_MAX || count < -RANDOM_WITH_SCORES_MAX)) {
      return errorReply("ERR value is out of range");
    }
  }
  const key = latin1(args[1]!);
  const zset = readZset(keyspace, key, now);
  if (zset === undefined) return count === undefined ? NULL_BULK : EMPTY_ARRAY;
  if (isReply(zset)) return zset;
  const items = zset.items;
  const size = items.length;
  const prng = seededPrng(keyspace, key, size, now);
  if (count === undefined) {
    const item = items[prng.nextInt(size)]!;
    return checkReplySize(keyspace, bulkSize(item.member.length)) ?? bulk(item.member);
  }
  if (count === 0n) return EMPTY_ARRAY;
  if (count >= BigInt(size)) return itemsReply(keyspace, items.slice().reverse(), withScores);
  if (count < 0n) return picksWithRepeats(keyspace, items, prng, -count, withScores);
  const picked = distinctIndexes(prng, size, Number(count)).map((i) => items[i]!);
  return itemsReply(keyspace, picked, withScores);
};

/** The first key of `keys` that exists, with its sorted set; WRONGTYPE if it holds another type. */
function firstZset(
  keyspace: Keyspace,
  keys: readonly Buffer[],
  now: number,
): [Buffer, string, KvZset] | Buffer | undefined {
  for (const keyBytes of keys) {
    const key = latin1(keyBytes);
    const entry = keyspace.lookup(key, now);
    if (entry === undefined) continue;
    if (!(entry.value instanceof KvZset)) return WRONGTYPE;
    return [keyBytes, key, entry.value];
  }
  return undefined;
}

/** The items `count` pops would take from the low end (or the high end), in pop order. */
function popPreview(zset: KvZset, count: number, fromHigh: boolean): ZItem[] {
  const n = Math.min(count, zset.size);
  const items = zset.items;
  return fromHigh ? items.slice(items.length - n).reverse() : items.slice(0, n);
}

/**
 * BZPOPMIN/BZPOPMAX's serving step: pops the lowest (or, `fromHigh`, the highest) member of the
 * first sorted set among `keys` and returns `*3 key member score`; WRONGTYPE when the first key
 * that exists holds another type (Redis looks no further); the reply-size refusal (nothing
 * popped); or undefined when no key exists: nothing to serve, the caller blocks (or answers its
 * timeout reply).
 */
export function zpopFirst(
  keyspace: Keyspace,
  keys: readonly Buffer[],
  fromHigh: boolean,
  now: number,
): Buffer | undefined {
  const found = firstZset(keyspace, keys, now);
  if (found === undefined || isReply(found)) return found;
  const [keyBytes, key, zset] = found;
  const [item] = popPreview(zset, 1, fromHigh);
  const score = formatScore(item!.score);
  const size =
    arrayHeaderSize(3) +
    bulkSize(keyBytes.length) +
    bulkSize(item!.member.length) +
    bulkSize(score.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  zset.popEnd(1, fromHigh);
  removeIfEmpty(keyspace, key, zset);
  return array([bulk(keyBytes), bulk(item!.member), bulk(score)]);
}

/**
 * ZMPOP's (and BZMPOP's) serving step: pops up to `count` (>= 1) members from the low end (or,
 * `fromHigh`, the high end) of the first sorted set among `keys` and returns
 * `*2 key *n (*2 member score)...`; WRONGTYPE, the reply-size refusal or undefined (nothing to
 * serve) as zpopFirst.
 */
export function zmpopFirst(
  keyspace: Keyspace,
  keys: readonly Buffer[],
  fromHigh: boolean,
  count: number,
  now: number,
): Buffer | undefined {
  assert(count >= 1, "zmpopFirst count");
  const found = firstZset(keyspace, keys, now);
  if (found === undefined || isReply(found)) return found;
  const [keyBytes, key, zset] = found;
  const items = popPreview(zset, count, fromHigh);
  const scores = items.map((item) => formatScore(item.score));
  let size = arrayHeaderSize(2) + bulkSize(keyBytes.length) + arrayHeaderSize(items.length);
  for (let i = 0; i < items.length; i++) {
    size += arrayHeaderSize(2) + bulkSize(items[i]!.member.length) + bulkSize(scores[i]!.length);
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  zset.popEnd(items.length, fromHigh);
  removeIfEmpty(keyspace, key, zset);
  const pairs = items.map((item, i) => array([bulk(item.member), bulk(scores[i]!)]));
  return array([bulk(keyBytes), array(pairs)]);
}

/** ZMPOP's (and BZMPOP's) parsed arguments after `numkeys` at args[numkeysAt]. */
export interface ZmpopArgs {
  readonly keys: readonly Buffer[];
  readonly fromHigh: boolean;
  readonly count: number;
}

/** MIN → false, MAX → true (pop from the high end), else null. */
function parseMinMax(arg: Buffer): boolean | null {
  const where = upper(arg);
  if (where === "MAX") return true;
  return where === "MIN" ? false : null;
}

/** Parses `numkeys key... MIN|MAX [COUNT count]`: BZMPOP passes 2 (its timeout is at 1). */
export function parseZmpop(args: readonly Buffer[], numkeysAt: number): ZmpopArgs | Buffer {
  const parsed = parseMpopArgs(args, numkeysAt, parseMinMax);
  return isReply(parsed)
    ? parsed
    : { keys: parsed.keys, fromHigh: parsed.where, count: parsed.count };
}

/** ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: `*-1` when no key exists. */
export const zmpop: Handler = (keyspace, args, now) => {
  const parsed = parseZmpop(args, 1);
  if (isReply(parsed)) return parsed;
  return zmpopFirst(keyspace, parsed.keys, parsed.fromHigh, parsed.count, now) ?? NULL_ARRAY;
};

/** ZADD's options, which come before its score-member pairs (zaddGeneric). */
const ZADD_OPTIONS = new Set(["NX", "XX", "CH", "INCR", "GT", "LT"]);
const ZADD_MEMBERS: ValueArgs = {
  first: (args) => {
    let at = 2;
    while (at < args.length && ZADD_OPTIONS.has(upper(args[at]!))) at++;
    return at + 1;
  },
  step: 2,
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const ZSET_COMMANDS: readonly CommandSpec[] = [
  {
    name: "zadd",
    arity: -4,
    kind: "write",
    handler: zadd,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: ZADD_MEMBERS,
  },
  {
    name: "zincrby",
    arity: 4,
    kind: "write",
    handler: zincrby,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
    values: VALUE_AT_3,
  },
  { name: "zscore", arity: 3, kind: "read", handler: zscore, flags: ["fast"], keys: KEY_1 },
  { name: "zmscore", arity: -3, kind: "read", handler: zmscore, flags: ["fast"], keys: KEY_1 },
  { name: "zrem", arity: -3, kind: "write", handler: zrem, flags: ["fast"], keys: KEY_1 },
  { name: "zcard", arity: 2, kind: "read", handler: zcard, flags: ["fast"], keys: KEY_1 },
  { name: "zcount", arity: 4, kind: "read", handler: zcount, flags: ["fast"], keys: KEY_1 },
  { name: "zrange", arity: -4, kind: "read", handler: zrange, keys: KEY_1 },
  { name: "zrevrange", arity: -4, kind: "read", handler: zrevrange, keys: KEY_1 },
  { name: "zrangebyscore", arity: -4, kind: "read", handler: zrangebyscore, keys: KEY_1 },
  { name: "zrevrangebyscore", arity: -4, kind: "read", handler: zrevrangebyscore, keys: KEY_1 },
  { name: "zrangebylex", arity: -4, kind: "read", handler: zrangebylex, keys: KEY_1 },
  { name: "zrevrangebylex", arity: -4, kind: "read", handler: zrevrangebylex, keys: KEY_1 },
  { name: "zrank", arity: 3, kind: "read", handler: zrank, flags: ["fast"], keys: KEY_1 },
  { name: "zrevrank", arity: 3, kind: "read", handler: zrevrank, flags: ["fast"], keys: KEY_1 },
  { name: "zpopmin", arity: -2, kind: "write", handler: zpopmin, flags: ["fast"], keys: KEY_1 },
  { name: "zpopmax", arity: -2, kind: "write", handler: zpopmax, flags: ["fast"], keys: KEY_1 },
  {
    name: "zmpop",
    arity: -4,
    kind: "write",
    handler: zmpop,
    keys: numkeysKeySpec(1, undefined, 1),
  },
  {
    name: "zrangestore",
    arity: -5,
    kind: "write",
    handler: zrangestore,
    flags: ["denyoom"],
    keys: KEYS_1_2,
  },
  { name: "zremrangebyscore", arity: 4, kind: "write", handler: zremrangebyscore, keys: KEY_1 },
  { name: "zremrangebyrank", arity: 4, kind: "write", handler: zremrangebyrank, keys: KEY_1 },
  { name: "zremrangebylex", arity: 4, kind: "write", handler: zremrangebylex, keys: KEY_1 },
  { name: "zlexcount", arity: 4, kind: "read", handler: zlexcount, flags: ["fast"], keys: KEY_1 },
  { name: "zunion", arity: -3, kind: "read", handler: zunion, keys: numkeysKeySpec(1) },
  { name: "zinter", arity: -3, kind: "read", handler: zinter, keys: numkeysKeySpec(1) },
  { name: "zdiff", arity: -3, kind: "read", handler: zdiff, keys: numkeysKeySpec(1) },
  { name: "zintercard", arity: -3, kind: "read", handler: zintercard, keys: numkeysKeySpec(1) },
  {
    name: "zunionstore",
    arity: -4,
    kind: "write",
    handler: zunionstore,
    flags: ["denyoom"],
    keys: numkeysKeySpec(2, 1),
  },
  {
    name: "zinterstore",
    arity: -4,
    kind: "write",
    handler: zinterstore,
    flags: ["denyoom"],
    keys: numkeysKeySpec(2, 1),
  },
  {
    name: "zdiffstore",
    arity: -4,
    kind: "write",
    handler: zdiffstore,
    flags: ["denyoom"],
    keys: numkeysKeySpec(2, 1),
  },
  { name: "zscan", arity: -3, kind: "read", handler: zscan, keys: KEY_1 },
  { name: "zrandmember", arity: -2, kind: "read", handler: zrandmember, keys: KEY_1 },
];
