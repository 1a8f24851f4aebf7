/**
 * The embedded store's data: one keyspace (database 0) of binary-safe keys, each holding a string,
 * hash, list, set or sorted set, with an optional expiry time. Everything here is deterministic:
 * iteration follows Map/Set insertion order, which is the same on every replica because every replica
 * applies the same commands in the same order, and time is only the `now` the commands pass in.
 */
import { assert } from "../core/errors.ts";
import type { SnapshotJob } from "./kv-snapshot-job.ts";

/** A field → value map; field names are latin1 strings of their bytes. */
export class KvHash {
  readonly fields = new Map<string, Buffer>();
}

/** A set of members; members are latin1 strings of their bytes. */
export class KvSet {
  readonly members = new Set<string>();
}

/** One sorted-set member and its score. */
export interface ZItem {
  readonly member: string;
  readonly score: number;
}

/** Whether (score, member) `a` sorts before `b`: by score, then by member bytes (as Redis). */
export function zLess(a: ZItem, score: number, member: string): boolean {
  return a.score < score || (a.score === score && a.member < member);
}

/**
 * A sorted set: member → score, and the members in a plain array sorted by (score, member bytes;
 * latin1 strings compare as bytes). Lookups and ranks are binary searches, O(log n); inserting or
 * removing a member splices the array, O(n) (memmove-fast, fine for sets of up to ~10^5 members;
 * a skip list or B-tree can replace it behind these methods). Scores are never NaN, and -0 is
 * stored as 0 (as Redis's small-set encoding does), so equal scores are equal bits.
 */
export class KvZset {
  readonly scores = new Map<string, number>();
  readonly items: ZItem[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Index of the first item not before (score, member). */
  private lowerBound(score: number, member: string): number {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (zLess(this.items[mid]!, score, member)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Rank (0-based, ascending) of `member`, or -1 when absent. */
  rank(member: string): number {
    const score = this.scores.get(member);
    return score === undefined ? -1 : this.lowerBound(score, member);
  }

  /** Adds `member` or moves it to `score`. */
  set(member: string, score: number): void {
    const stored = score === 0 ? 0 : score;
    this.delete(member);
    this.scores.set(member, stored);
    this.items.splice(this.lowerBound(stored, member), 0, { member, score: stored });
  }

  /** Removes `member`; false when absent. */
  delete(member: string): boolean {
    const at = this.rank(member);
    if (at < 0) return false;
    this.items.splice(at, 1);
    this.scores.delete(member);
    return true;
  }

  /** Removes and returns `count` items from the low end (or the high end when `fromHigh`). */
  popEnd(count: number, fromHigh: boolean): ZItem[] {
    const popped = fromHigh
      ? this.items.splice(this.items.length - count, count).reverse()
      : this.items.splice(0, count);
    for (const item of popped) this.scores.delete(item.member);
    return popped;
  }

  /** Index of the first item whose score is above `min` (at or above it unless `exclusive`). */
  firstAbove(min: number, exclusive: boolean): number {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const s = this.items[mid]!.score;
      if (exclusive ? s <= min : s < min) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Index of the last item whose score is below `max` (at or below it unless `exclusive`). */
  lastBelow(max: number, exclusive: boolean): number {
    return this.firstAbove(max, !exclusive) - 1;
  }
}

/** A double-ended queue on a ring of power-of-two capacity. */
export class KvList {
  private items: (Buffer | undefined)[] = new Array(8);
  /** Index of the first item. Invariant: 0 <= head < items.length. */
  private head = 0;
  /** Invariant: length <= items.length. */
  length = 0;

  at(index: number): Buffer {
    assert(index >= 0 && index < this.length);
    return this.items[(this.head + index) & (this.items.length - 1)]!;
  }

  pushBack(item: Buffer): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.head + this.length) & (this.items.length - 1)] = item;
    this.length++;
  }

  pushFront(item: Buffer): void {
    if (this.length === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = item;
    this.length++;
  }

  popFront(): Buffer {
    assert(this.length > 0);
    const item = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.length--;
    return item;
  }

  popBack(): Buffer {
    assert(this.length > 0);
    const index = (this.head + this.length - 1) & (this.items.length - 1);
    const item = this.items[index]!;
    this.items[index] = undefined;
    this.length--;
    return item;
  }

  private grow(): void {
    const items: (Buffer | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.length; i++) items[i] = this.at(i);
    this.items = items;
    this.head = 0;
  }
}

export type KvValue = Buffer | KvHash | KvList | KvSet | KvZset;

export type KvType = "string" | "hash" | "list" | "set" | "zset";

/** A type guard (`instanceof Buffer` does not narrow `Buffer<ArrayBufferLike>` out of a union). */
export function isStringValue(value: KvValue): value is Buffer {
  return value instanceof Buffer;
}

export function typeOf(value: KvValue): KvType {
  if (value instanceof Buffer) return "string";
  if (value instanceof KvHash) return "hash";
  if (value instanceof KvList) return "list";
  if (value instanceof KvZset) return "zset";
  return "set";
}

/** Expiry of a key without a TTL: `now > NO_EXPIRY` is never true, so no branch is needed. */
export const NO_EXPIRY = Number.POSITIVE_INFINITY;

export class KvEntry {
  value: KvValue;
  /** Milliseconds (the leader's clock); the key is gone once `now > expiresAtMs`. */
  expiresAtMs: number;
  /** Insertion number: the SCAN cursor order. Unique; ascending in `entries` order. */
  readonly seq: number;

  constructor(value: KvValue, expiresAtMs: number, seq: number) {
    this.value = value;
    this.expiresAtMs = expiresAtMs;
    this.seq = seq;
  }
}

export interface KeyspaceLimits {
  /** Largest string value or element, bytes. */
  readonly valueBytesMax: number;
  /** Largest reply a command whose reply is built from stored data may produce, bytes. */
  readonly replyBytesMax: number;
  /** Longest glob pattern (KEYS, SCAN MATCH), bytes. */
  readonly patternBytesMax: number;
}

/** Stale scan-index slots tolerated before it is rebuilt: beyond 2 × keys + this many. */
const SCAN_INDEX_SLACK = 1024;

export class Keyspace {
  /** Every key, live or expired-but-not-yet-collected, in insertion (= seq) order. */
  readonly entries = new Map<string, KvEntry>();
  /** Keys with a finite expiry, in sweep order. Invariant: k ∈ volatile ⇔ entry(k) has a TTL. */
  readonly volatile = new Set<string>();
  /** Next insertion number. Invariant: greater than every entry's seq. */
  nextSeq = 1;
  /** Monotonic clock: the highest `nowMs` seen (a new leader's clock may be behind). */
  clockMs = 0;
  /**
   * SCAN index: keys by ascending seq, possibly stale (the key deleted, or re-inserted under a
   * newer seq). A slot is live when `entries.get(scanKeys[i]).seq === scanSeqs[i]`.
   */
  private scanKeys: string[] = [];
  private scanSeqs: number[] = [];

  readonly limits: KeyspaceLimits;
  /** A snapshot being taken piece by piece: told before an entry it still needs changes. */
  snapshotJob: SnapshotJob | null = null;

  constructor(limits: KeyspaceLimits) {
    this.limits = limits;
  }

  /** Advances the clock to `nowMs` (never back) and returns it. */
  advanceClock(nowMs: number): number {
    if (nowMs > this.clockMs) this.clockMs = nowMs;
    return this.clockMs;
  }

  /**
   * False while a read is served outside the log (KvStore.executeRead): an expired entry then
   * stays, since deleting it on one replica only would make the replicas' keyspaces differ.
   */
  collecting = true;

  /** The live entry for `key`; an expired one is deleted (lazy expiry) unless a read runs. */
  lookup(key: string, now: number): KvEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    // A write may change what it looks up: a snapshot under way copies the entry first.
    if (this.snapshotJob !== null && this.collecting) this.snapshotJob.touch(key, entry);
    if (now > entry.expiresAtMs) {
      if (this.collecting) this.remove(key, entry);
      return undefined;
    }
    return entry;
  }

  /** Whether `entry` is live at `now`, without collecting it (read-only iteration). */
  static isLive(entry: KvEntry, now: number): boolean {
    return !(now > entry.expiresAtMs);
  }

  /** Adds `key`, which must be absent (call `lookup` first so an expired one is collected). */
  insert(key: string, value: KvValue, expiresAtMs: number = NO_EXPIRY): KvEntry {
    assert(!this.entries.has(key), "insert of a present key");
    const entry = new KvEntry(value, expiresAtMs, this.nextSeq++);
    this.entries.set(key, entry);
    if (expiresAtMs !== NO_EXPIRY) this.volatile.add(key);
    this.scanKeys.push(key);
    this.scanSeqs.push(entry.seq);
    return entry;
  }

  /** Sets `key` to `value`; the TTL is cleared unless `keepTtl`. */
  set(key: string, value: KvValue, now: number, keepTtl = false): void {
    const entry = this.lookup(key, now);
    if (entry === undefined) this.insert(key, value);
    else {
      entry.value = value;
      if (!keepTtl) this.setExpiry(key, entry, NO_EXPIRY);
    }
  }

  setExpiry(key: string, entry: KvEntry, expiresAtMs: number): void {
    this.snapshotJob?.touch(key, entry);
    if (expiresAtMs === NO_EXPIRY) this.volatile.delete(key);
    else if (entry.expiresAtMs === NO_EXPIRY) this.volatile.add(key);
    entry.expiresAtMs = expiresAtMs;
  }

  remove(key: string, entry: KvEntry): void {
    assert(this.entries.get(key) === entry);
    this.snapshotJob?.touch(key, entry);
    this.entries.delete(key);
    if (entry.expiresAtMs !== NO_EXPIRY) this.volatile.delete(key);
    if (this.scanKeys.length > 2 * this.entries.size + SCAN_INDEX_SLACK) this.rebuildScanIndex();
  }

  clear(): void {
    this.snapshotJob?.finish(); // it still needs every entry: write them out first
    this.entries.clear();
    this.volatile.clear();
    this.scanKeys = [];
    this.scanSeqs = [];
  }

  /** Live keys at `now` (O(keys with a TTL)). */
  liveCount(now: number): number {
    let expired = 0;
    for (const key of this.volatile) if (now > this.entries.get(key)!.expiresAtMs) expired++;
    return this.entries.size - expired;
  }

  /**
   * Active expiry: examines up to `examineMax` keys with a TTL, deleting the expired ones and
   * moving the others to the back, so repeated calls cycle through all of them. Returns the
   * number deleted. Deterministic: the runtime may call it when applying each log entry.
   */
  expireSweep(now: number, examineMax: number): number {
    let deleted = 0;
    let examined = 0;
    for (const key of this.volatile) {
      if (examined++ >= examineMax) break;
      const entry = this.entries.get(key)!;
      this.volatile.delete(key);
      if (now > entry.expiresAtMs) {
        this.remove(key, entry);
        deleted++;
      } else this.volatile.add(key);
    }
    return deleted;
  }

  /**
   * One SCAN step: from cursor (a seq; 0 = the start) looks at up to `count` live entries and
   * returns those `accept` keeps, and the next cursor (0 when done). Keys present for a whole
   * iteration are returned exactly once; keys added meanwhile may or may not be.
   */
  scan(
    cursor: number,
    count: number,
    now: number,
    accept: (key: string, entry: KvEntry) => boolean,
  ): { keys: string[]; cursor: number } {
    const keys: string[] = [];
    let i = lowerBound(this.scanSeqs, cursor);
    let examined = 0;
    for (; i < this.scanKeys.length && examined < count; i++) {
      const key = this.scanKeys[i]!;
      const entry = this.entries.get(key);
      if (entry === undefined || entry.seq !== this.scanSeqs[i]) continue;
      examined++;
      if (Keyspace.isLive(entry, now) && accept(key, entry)) keys.push(key);
    }
    return { keys, cursor: i < this.scanKeys.length ? this.scanSeqs[i]! : 0 };
  }

  /** Re-adds `key` after a restore: entries must arrive in ascending seq order. */
  restoreEntry(key: string, entry: KvEntry): void {
    assert(!this.entries.has(key), "duplicate key in snapshot");
    assert(entry.seq < this.nextSeq, "snapshot seq out of range");
    const last = this.scanSeqs[this.scanSeqs.length - 1];
    assert(last === undefined || entry.seq > last, "snapshot seqs not ascending");
    this.entries.set(key, entry);
    this.scanKeys.push(key);
    this.scanSeqs.push(entry.seq);
  }

  private rebuildScanIndex(): void {
    this.scanKeys = [];
    this.scanSeqs = [];
    for (const [key, entry] of this.entries) {
      this.scanKeys.push(key);
      this.scanSeqs.push(entry.seq);
    }
  }
}

/** First index whose value is >= target, in an ascending array. */
function lowerBound(values: readonly number[], target: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (values[mid]! < target) low = mid + 1;
    else high = mid;
  }
  return low;
}
