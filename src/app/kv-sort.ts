/**
 * SORT and SORT_RO, as Redis 7.0: lists, sets and sorted sets; ASC/DESC, ALPHA, LIMIT, BY (a
 * pattern, a hash field `key->field`, or a constant that means "do not sort"), GET (`#`, patterns,
 * hash fields, several), STORE (SORT only: a list; an empty result deletes the destination). Also
 * pqsort, Redis's partial quicksort, which GEOSEARCH's COUNT shares (kv-geo.ts).
 *
 * Order: Redis sorts with glibc's qsort (a stable merge sort) unless BY and LIMIT narrow the range,
 * when it uses its own pqsort (deterministic, not stable); we do the same (Array.prototype.sort is
 * stable too), so equal sort keys come out as Redis's do whenever the input order is the same.
 * Numeric sorts break ties by the element's bytes, and ALPHA without BY compares the elements
 * themselves, so those orders are total. Only ALPHA with BY can leave ties (equal or missing BY
 * values) in the input order: a list's order, an intset's numeric order (as ours), but a hash
 * table's order for other sets and for sorted sets, which we cannot match: ours is the order
 * SMEMBERS gives (insertion order) and score order.
 *
 * `BY nosort` (a BY pattern without `*`) on a set answers in the set's own order: Redis's hash
 * table order, which we cannot match; ours is SMEMBERS's (insertion order; numeric for an intset's
 * worth of integers, as Redis's intsets are). With STORE, Redis itself sorts the set (ALPHA), and so
 * do we. ALPHA compares bytes: Redis uses strcoll, which is byte order in the C and C.UTF-8
 * locales, up to the first NUL byte, as here.
 *
 * Key specs name the sorted key and STORE's destination; BY and GET read keys named by the data,
 * which no key spec can name (Redis does not list them either). SORT is a write even without STORE
 * (Redis's table says so; SORT_RO is the read), so the client port sends it through the log.
 */
import type { CommandSpec, KeySpec } from "./kv-command-spec.ts";
import { type Keyspace, KvHash, KvList, KvSet, KvZset } from "./kv-keyspace.ts";
import { parseScoreBound } from "./kv-scores.ts";
import {
  checkReplySize,
  copyBytes,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  INT64_MAX,
  INT64_MIN,
  isReply,
  latin1,
  parseLong,
  upper,
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

const ERR_NOT_DOUBLE = errorReply("ERR One or more scores can't be converted into double");
/** Redis's set-max-intset-entries (kv-sets.ts answers intsets' worth of integers sorted too). */
const INTSET_ENTRIES_MAX = 512;
/** Bytes of `$-1\r\n`. */
const NULL_BULK_SIZE = 5;

// ---------------------------------------------------------------------------------------------
// pqsort: Redis's partial quicksort (NetBSD's qsort, Bentley & McIlroy, that skips the parts
// wholly outside [left, right]). Ported index for index so that equal elements end up where
// Redis's end up.

function swap<T>(a: T[], i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}

function vecswap<T>(a: T[], i: number, j: number, n: number): void {
  for (let k = 0; k < n; k++) swap(a, i + k, j + k);
}

function med3<T>(a: T[], i: number, j: number, k: number, cmp: (x: T, y: T) => number): number {
  return cmp(a[i]!, a[j]!) < 0
    ? cmp(a[j]!, a[k]!) < 0
      ? j
      : cmp(a[i]!, a[k]!) < 0
        ? k
        : i
    : cmp(a[j]!, a[k]!) > 0
      ? j
      : cmp(a[i]!, a[k]!) < 0
        ? i
        : k;
}

/** Whether the run [first, last] holds none of the wanted range [left, right]'s ends' side. */
function outside(first: number, last: number, left: number, right: number): boolean {
  return (left < first && right < first) || (left > last && right > last);
}

function pqsortRun<T>(
  a: T[],
  base: number,
  n: number,
  cmp: (x: T, y: T) => number,
  left: number,
  right: number,
): void {
  for (;;) {
    if (n < 7) {
      for (let pm = base + 1; pm < base + n; pm++) {
        for (let pl = pm; pl > base && cmp(a[pl - 1]!, a[pl]!) > 0; pl--) swap(a, pl, pl - 1);
      }
      return;
    }
    let pm = base + Math.floor(n / 2);
    if (n > 7) {
      let pl = base;
      let pn = base + n - 1;
      if (n > 40) {
        const d = Math.floor(n / 8);
        pl = med3(a, pl, pl + d, pl + 2 * d, cmp);
        pm = med3(a, pm - d, pm, pm + d, cmp);
        pn = med3(a, pn - 2 * d, pn - d, pn, cmp);
      }
      pm = med3(a, pl, pm, pn, cmp);
    }
    swap(a, base, pm);
    let pa = base + 1;
    let pb = pa;
    let pc = base + n - 1;
    let pd = pc;
    for (;;) {
      for (; pb <= pc; pb++) {
        const result = cmp(a[pb]!, a[base]!);
        if (result > 0) break;
        if (result === 0) swap(a, pa++, pb);
      }
      for (; pb <= pc; pc--) {
        const result = cmp(a[pc]!, a[base]!);
        if (result < 0) break;
        if (result === 0) swap(a, pc, pd--);
      }
      if (pb > pc) break;
      swap(a, pb++, pc--);
    }
    const pn = base + n;
    let r = Math.min(pa - base, pb - pa);
    vecswap(a, base, pb - r, r);
    r = Math.min(pd - pc, pn - pd - 1);
    vecswap(a, pb, pn - r, r);
    r = pb - pa;
    if (r > 1 && !outside(base, base + r - 1, left, right)) pqsortRun(a, base, r, cmp, left, right);
    r = pd - pc;
    if (r <= 1) return;
    base = pn - r;
    n = r;
    if (outside(base, base + r - 1, left, right)) return;
  }
}

/**
 * Redis's pqsort: sorts `items` enough that indexes `left`..`right` hold what a full sort would
 * put there (the rest is partly sorted), moving elements exactly as redis-server does.
 */
export function pqsort<T>(
  items: T[],
  cmp: (x: T, y: T) => number,
  left: number,
  right: number,
): void {
  pqsortRun(items, 0, items.length, cmp, left, right);
}

// ---------------------------------------------------------------------------------------------

/** The part of `text` a C string function sees: up to the first NUL byte. */
function cString(text: string): string {
  const nul = text.indexOf("\0");
  return nul === -1 ? text : text.slice(0, nul);
}

/**
 * An element or BY value as SORT's strtod reads it: up to a NUL, leading spaces allowed, the rest
 * all a number ("" is 0), not NaN, not overflowing or underflowing (ERANGE). Null: not a double.
 */
export function sortScore(raw: string): number | null {
  const text = cString(raw);
  if (text[0] === "(") return null; // parseScoreBound's exclusive mark: strtod refuses it
  const bound = parseScoreBound(text);
  if (bound === null) return null;
  const value = bound.value;
  if (!Number.isFinite(value) && !/inf/i.test(text)) return null;
  if (value === 0 && underflowed(text)) return null;
  // glibc's strtod sets ERANGE for a subnormal result too, unless it is exact.
  if (value !== 0 && Math.abs(value) < 2 ** -1022 && !exactSubnormal(text, value)) return null;
  return value;
}

/** Decimal exponents past which a literal cannot be an exact subnormal worth computing. */
const EXACT_EXPONENT_MAX = 20_000;

/** Whether the literal `text` (a subnormal `value` as strtod read it) is exactly `value`. */
function exactSubnormal(text: string, value: number): boolean {
  const match =
    /^[\t\n\v\f\r ]*[+-]?(?:0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)(?:[pP]([+-]?[0-9]+))?|([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?)$/.exec(
      text,
    );
  if (match === null) return false;
  const hex = match[1] !== undefined || match[2] !== undefined;
  const whole = (hex ? match[1] : match[4]) ?? "";
  const fraction = (hex ? match[2] : match[5]) ?? "";
  const exponent = Number((hex ? match[3] : match[6]) ?? "0");
  if (!Number.isFinite(exponent) || Math.abs(exponent) > EXACT_EXPONENT_MAX) return false;
  if (whole.length + fraction.length === 0) return false;
  const digits = BigInt(`${hex ? "0x" : ""}${whole}${fraction}`);
  // The literal is digits × base^shift; the double is m × 2^-1074.
  const m = BigInt(Math.abs(value) / 2 ** -1074);
  let num = digits;
  let den = 1n;
  if (hex) {
    const shift = exponent - 4 * fraction.length + 1074;
    if (shift >= 0) num <<= BigInt(shift);
    else den <<= BigInt(-shift);
  } else {
    const shift = exponent - fraction.length;
    if (shift >= 0) num *= 10n ** BigInt(shift);
    else den = 10n ** BigInt(-shift);
    num <<= 1074n;
  }
  return num === m * den;
}

/** Whether a literal that strtod read as 0 had a nonzero mantissa (ERANGE: it underflowed). */
function underflowed(text: string): boolean {
  const body = text.replace(/^[\t\n\v\f\r ]*[+-]?/, "");
  const hex = /^0[xX]/.test(body);
  const mantissa = hex
    ? (/^[0-9a-fA-F]*\.?[0-9a-fA-F]*/.exec(body.slice(2))?.[0] ?? "")
    : (/^[0-9]*\.?[0-9]*/.exec(body)?.[0] ?? "");
  return hex ? /[1-9a-fA-F]/.test(mantissa) : /[1-9]/.test(mantissa);
}

/**
 * Redis's lookupKeyByPattern: `#` is the element itself; otherwise the first `*` is replaced by
 * the element, and a `->field` after it (with something after the arrow) reads that hash field.
 * Undefined where no `*`, no key, the wrong type or no field. A string's value is a copy of the
 * stored bytes' text.
 */
function lookupByPattern(
  keyspace: Keyspace,
  pattern: string,
  element: string,
  now: number,
): string | undefined {
  if (pattern[0] === "#" && (pattern.length === 1 || pattern[1] === "\0")) return element;
  const star = cString(pattern).indexOf("*");
  if (star === -1) return undefined;
  const arrow = cString(pattern).indexOf("->", star + 1);
  const hasField = arrow !== -1 && arrow + 2 < pattern.length && pattern[arrow + 2] !== "\0";
  const keyEnd = hasField ? arrow : pattern.length;
  const key = pattern.slice(0, star) + element + pattern.slice(star + 1, keyEnd);
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  const value = entry.value;
  if (hasField) {
    if (!(value instanceof KvHash)) return undefined;
    const field = value.fields.get(pattern.slice(arrow + 2));
    return field === undefined ? undefined : latin1(field);
  }
  return value instanceof Buffer ? latin1(value) : undefined;
}

/** An intset's member as Redis's string2ll reads it (canonical int64), else null. */
function intsetValue(member: string): bigint | null {
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(member)) return null;
  const value = BigInt(member);
  return value > INT64_MAX || value < INT64_MIN ? null : value;
}

/** A set's members in the order SMEMBERS answers (kv-sets.ts): numeric for an intset's worth. */
function setOrder(set: KvSet): string[] {
  const members = [...set.members];
  if (members.length > INTSET_ENTRIES_MAX) return members;
  const values: { member: string; value: bigint }[] = [];
  for (const member of members) {
    const value = intsetValue(member);
    if (value === null) return members;
    values.push({ member, value });
  }
  values.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return values.map((v) => v.member);
}

/** What SORT's options say. */
interface SortOptions {
  desc: boolean;
  alpha: boolean;
  limitStart: number;
  limitCount: number;
  /** BY's pattern, null when none (or when BY nosort was turned into ALPHA for a set). */
  by: string | null;
  /** BY without `*`: keep the collection's own order. */
  dontSort: boolean;
  gets: string[];
  /** STORE's destination (the last one), null when none. */
  store: string | null;
}

function parseSortOptions(args: readonly Buffer[], readonly: boolean): SortOptions | Buffer {
  const options: SortOptions = {
    desc: false,
    alpha: false,
    limitStart: 0,
    limitCount: -1,
    by: null,
    dontSort: false,
    gets: [],
    store: null,
  };
  for (let j = 2; j < args.length; j++) {
    const left = args.length - j - 1;
    const option = upper(args[j]!);
    if (option === "ASC") options.desc = false;
    else if (option === "DESC") options.desc = true;
    else if (option === "ALPHA") options.alpha = true;
    else if (option === "LIMIT" && left >= 2) {
      const start = parseLong(args[j + 1]!);
      const count = parseLong(args[j + 2]!);
      if (start === null || count === null) return ERR_NOT_INTEGER;
      options.limitStart = start;
      options.limitCount = count;
      j += 2;
    } else if (!readonly && option === "STORE" && left >= 1) {
      options.store = latin1(args[++j]!);
    } else if (option === "BY" && left >= 1) {
      options.by = latin1(args[++j]!);
      // A BY pattern without `*` is constant: nothing to sort by.
      if (!cString(options.by).includes("*")) options.dontSort = true;
    } else if (option === "GET" && left >= 1) {
      options.gets.push(latin1(args[++j]!));
    } else return ERR_SYNTAX;
  }
  return options;
}

/** One element to sort and what it sorts by. */
interface SortItem {
  readonly element: string;
  score: number;
  /** ALPHA with BY: the BY value, undefined when it names nothing (sorts first). */
  by: string | undefined;
}

function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Redis's sortCompare. */
function sortComparator(options: SortOptions): (a: SortItem, b: SortItem) => number {
  const { alpha, desc } = options;
  const byPattern = options.by !== null;
  // Without STORE, Redis compares with strcoll: up to the first NUL (byte order in C locales).
  const text = options.store === null ? cString : (s: string) => s;
  return (a, b) => {
    let cmp: number;
    if (!alpha) {
      if (a.score > b.score) cmp = 1;
      else if (a.score < b.score) cmp = -1;
      else cmp = compareBytes(a.element, b.element);
    } else if (byPattern) {
      if (a.by === undefined || b.by === undefined) {
        cmp = a.by === b.by ? 0 : a.by === undefined ? -1 : 1;
      } else cmp = compareBytes(text(a.by), text(b.by));
    } else cmp = compareBytes(text(a.element), text(b.element));
    return desc ? -cmp : cmp;
  };
}

/** The elements of the value to sort, in Redis's load order, with the output's start and end. */
function loadElements(
  value: KvList | KvSet | KvZset,
  options: SortOptions,
): { elements: string[]; start: number; end: number } {
  let all: string[];
  if (value instanceof KvList) {
    all = new Array(value.length);
    for (let i = 0; i < value.length; i++) all[i] = latin1(value.at(i));
  } else if (value instanceof KvSet) all = setOrder(value);
  else all = value.items.map((item) => item.member);
  const length = all.length;
  let start = Math.max(options.limitStart, 0);
  let end = options.limitCount < 0 ? length - 1 : start + options.limitCount - 1;
  if (start >= length) {
    start = length - 1;
    end = length - 2;
  }
  if (end >= length) end = length - 1;
  if (!options.dontSort || value instanceof KvSet) return { elements: all, start, end };
  // A list or sorted set kept in its order: the range alone, reversed for DESC.
  if (end < start) return { elements: [], start, end };
  const ordered = options.desc ? all.reverse() : all;
  return { elements: ordered.slice(start, end + 1), start: 0, end: end - start };
}

/** Sorts `items` as Redis would; false when a score is not a double. */
function sortItems(
  keyspace: Keyspace,
  items: SortItem[],
  options: SortOptions,
  start: number,
  end: number,
  now: number,
): boolean {
  let notDouble = false;
  for (const item of items) {
    let byValue: string | undefined = item.element;
    if (options.by !== null) {
      byValue = lookupByPattern(keyspace, options.by, item.element, now);
      if (byValue === undefined) continue;
    }
    if (options.alpha) {
      if (options.by !== null) item.by = byValue;
    } else {
      const score = sortScore(byValue);
      if (score === null) notDouble = true;
      else item.score = score;
    }
  }
  if (notDouble) return false;
  const cmp = sortComparator(options);
  if (options.by !== null && (start !== 0 || end !== items.length - 1)) {
    pqsort(items, cmp, start, end);
  } else items.sort(cmp);
  return true;
}

function sortGeneric(readonly: boolean): Handler {
  return (keyspace, args, now) => {
    const options = parseSortOptions(args, readonly);
    if (isReply(options)) return options;
    const entry = keyspace.lookup(latin1(args[1]!), now);
    const value = entry === undefined ? new KvList() : entry.value;
    if (!(value instanceof KvList || value instanceof KvSet || value instanceof KvZset)) {
      return WRONGTYPE;
    }
    // A set in its own order would differ between Redis's replicas (and ours from Redis): Redis
    // sorts it when storing.
    if (options.dontSort && value instanceof KvSet && options.store !== null) {
      options.dontSort = false;
      options.alpha = true;
      options.by = null;
    }
    const { elements, start, end } = loadElements(value, options);
    const items: SortItem[] = elements.map((element) => ({ element, score: 0, by: undefined }));
    if (!options.dontSort && !sortItems(keyspace, items, options, start, end, now)) {
      return ERR_NOT_DOUBLE;
    }
    const output = sortOutput(keyspace, items, options, start, end, now);
    if (options.store === null) return outputReply(keyspace, output);
    return storeOutput(keyspace, options.store, output, now);
  };
}

/** The elements from start to end, or for each the values of its GETs in order. */
function sortOutput(
  keyspace: Keyspace,
  items: readonly SortItem[],
  options: SortOptions,
  start: number,
  end: number,
  now: number,
): (string | undefined)[] {
  const output: (string | undefined)[] = [];
  for (let j = start; j <= end; j++) {
    const element = items[j]!.element;
    if (options.gets.length === 0) output.push(element);
    for (const pattern of options.gets) {
      output.push(lookupByPattern(keyspace, pattern, element, now));
    }
  }
  return output;
}

function outputReply(keyspace: Keyspace, output: readonly (string | undefined)[]): Buffer {
  if (output.length === 0) return EMPTY_ARRAY;
  let size = arrayHeaderSize(output.length);
  for (const value of output) size += value === undefined ? NULL_BULK_SIZE : bulkSize(value.length);
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(output.map((value) => (value === undefined ? NULL_BULK : bulk(value))));
}

/** STORE: the output as a list (a missing GET as ""), replacing the destination; none deletes it. */
function storeOutput(
  keyspace: Keyspace,
  key: string,
  output: readonly (string | undefined)[],
  now: number,
): Buffer {
  if (output.length === 0) {
    const entry = keyspace.lookup(key, now);
    if (entry !== undefined) keyspace.remove(key, entry);
    return ZERO;
  }
  const list = new KvList();
  for (const value of output) list.pushBack(copyBytes(Buffer.from(value ?? "", "latin1")));
  keyspace.set(key, list, now);
  return integer(output.length);
}

export const sort = sortGeneric(false);
export const sortRo = sortGeneric(true);

/**
 * SORT's keys: the sorted key, and STORE's destination (the last STORE, as the command takes),
 * found by skipping options as Redis's sortGetKeys does (LIMIT takes 2 arguments, GET and BY 1).
 */
const SORT_KEYS: KeySpec = {
  find: (args) => {
    const found = [1];
    let store = -1;
    for (let i = 2; i < args.length; i++) {
      const option = upper(args[i]!);
      if (option === "LIMIT") i += 2;
      else if (option === "GET" || option === "BY") i += 1;
      else if (option === "STORE" && i + 1 < args.length) store = ++i;
    }
    if (store !== -1) found.push(store);
    return found;
  },
  legacy: { first: 1, last: 1, step: 1 },
};

/** SORT_RO reads its key alone; BY and GET patterns make Redis's key specs movable too. */
const SORT_RO_KEYS: KeySpec = { find: () => [1], legacy: { first: 1, last: 1, step: 1 } };

export const SORT_COMMANDS: readonly CommandSpec[] = [
  { name: "sort", arity: -2, kind: "write", handler: sort, flags: ["denyoom"], keys: SORT_KEYS },
  { name: "sort_ro", arity: -2, kind: "read", handler: sortRo, keys: SORT_RO_KEYS },
];
