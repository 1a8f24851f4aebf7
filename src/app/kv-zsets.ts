/**
 * Sorted-set commands, as Redis 7.0: ZADD ZINCRBY ZSCORE ZMSCORE ZREM ZCARD ZCOUNT ZRANGE
 * ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZRANK ZREVRANK ZPOPMIN
 * ZPOPMAX. BYLEX ranges scan linearly as Redis's small-set (listpack) encoding does, and like
 * Redis assume all scores are equal. Members are ordered by (score, member
 * bytes); see KvZset for the costs. Replies built from stored data are sized before they are built
 * (checkReplySize), and a refused ZPOP removes nothing.
 */
import { type CommandSpec, KEY_1, VALUE_AT_3, type ValueArgs } from "./kv-command-spec.ts";
import { type Keyspace, KvZset, type ZItem } from "./kv-keyspace.ts";
import { formatScore, parseScore, parseScoreBound, type ScoreBound } from "./kv-scores.ts";
import {
  checkReplySize,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  isReply,
  latin1,
  parseLong,
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
  NULL_BULK,
  ZERO,
} from "./resp.ts";

const ERR_NOT_FLOAT = errorReply("ERR value is not a valid float");
const ERR_RANGE_NOT_FLOAT = errorReply("ERR min or max is not a float");
const ERR_LEX_RANGE = errorReply("ERR min or max not valid string range item");
const ERR_NAN = errorReply("ERR resulting score is not a number (NaN)");
const ERR_NOT_POSITIVE = errorReply("ERR value is out of range, must be positive");
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

type RangeType = "auto" | "rank" | "score" | "lex";
type Direction = "auto" | "forward" | "reverse";

/**
 * Redis 7.0's zrangeGenericCommand: ZRANGE (any form), ZREVRANGE, Z[REV]RANGEBYSCORE/LEX.
 * Options and their errors are checked in Redis's order, then the range, then the key.
 */
function zrangeGeneric(rangeType: RangeType, direction: Direction): Handler {
  return (keyspace, args, now) => {
    let withScores = false;
    let offset = 0;
    let limit = -1;
    let type = rangeType;
    let dir = direction;
    for (let j = 4; j < args.length; j++) {
      const option = upper(args[j]!);
      const left = args.length - j - 1;
      if (option === "WITHSCORES") withScores = true;
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
    const minText = latin1(args[reverse && type !== "rank" ? 3 : 2]!);
    const maxText = latin1(args[reverse && type !== "rank" ? 2 : 3]!);
    let start = 0;
    let stop = 0;
    let scoreMin: ScoreBound | null = null;
    let scoreMax: ScoreBound | null = null;
    let lexMin: LexBound | null = null;
    let lexMax: LexBound | null = null;
    if (type === "rank") {
      const s = parseLong(args[2]!);
      const e = parseLong(args[3]!);
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
    const zset = readZset(keyspace, latin1(args[1]!), now);
    if (zset === undefined) return EMPTY_ARRAY;
    if (isReply(zset)) return zset;
    const items = zset.items;
    const length = items.length;
    const picked: ZItem[] = [];
    if (type === "rank") {
      if (start < 0) start = length + start;
      if (stop < 0) stop = length + stop;
      if (start < 0) start = 0;
      if (start > stop || start >= length) return EMPTY_ARRAY;
      if (stop >= length) stop = length - 1;
      for (let i = start; i <= stop; i++) picked.push(items[reverse ? length - 1 - i : i]!);
      return itemsReply(keyspace, picked, withScores);
    }
    // Redis skips `offset` items first; a negative offset skips them all.
    if (offset < 0 || (offset > 0 && offset >= length)) return EMPTY_ARRAY;
    let first: number;
    let last: number;
    if (type === "score") [first, last] = scoreSpan(zset, scoreMin!, scoreMax!);
    else {
      // As Redis's small-set encoding: a scan for the first member past the near bound, then on
      // while within the far one (meaningful when all scores are equal, as BYLEX assumes).
      first = 0;
      last = -1;
      if (!reverse) {
        let i = 0;
        while (i < length && !lexGteMin(items[i]!.member, lexMin!)) i++;
        first = i;
        while (i < length && lexLteMax(items[i]!.member, lexMax!)) i++;
        last = i - 1;
      } else {
        let i = length - 1;
        while (i >= 0 && !lexLteMax(items[i]!.member, lexMax!)) i--;
        last = i;
        while (i >= 0 && lexGteMin(items[i]!.member, lexMin!)) i--;
        first = i + 1;
      }
    }
    const count = last - first + 1 - offset;
    const n = limit < 0 ? count : Math.min(count, limit);
    for (let k = 0; k < n; k++)
      picked.push(items[reverse ? last - offset - k : first + offset + k]!);
    return itemsReply(keyspace, picked, withScores);
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
];
