/**
 * The embedded store's data: one keyspace (database 0) of binary-safe keys, each holding a string,
 * hash, list, set, sorted set or stream, with an optional expiry time. Everything here is
 * deterministic: iteration follows Map/Set insertion order, which is the same on every replica
 * because every replica applies the same commands in the same order, and time is only the `now` the
 * commands pass in.
 */
import { assert } from "../core/errors.ts";
import { KvHash } from "./kv-hash.ts";
import { KvList } from "./kv-list.ts";
import { KvSet } from "./kv-set.ts";
import type { SnapshotJob } from "./kv-snapshot-job.ts";
import { KvStream } from "./kv-stream.ts";
import { KvZset } from "./kv-zset.ts";

export { type ZItem, zLess } from "./kv-zset.ts";
export { KvHash, KvList, KvSet, KvStream, KvZset };

export type KvValue = Buffer | KvHash | KvList | KvSet | KvZset | KvStream;

export type KvType = "string" | "hash" | "list" | "set" | "zset" | "stream";

/** A type guard (`instanceof Buffer` does not narrow `Buffer<ArrayBufferLike>` out of a union). */
export function isStringValue(value: KvValue): value is Buffer {
  return value instanceof Buffer;
}

export function typeOf(value: KvValue): KvType {
  if (value instanceof Buffer) return "string";
  if (value instanceof KvHash) return "hash";
  if (value instanceof KvList) return "list";
  if (value instanceof KvZset) return "zset";
  if (value instanceof KvStream) return "stream";
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
  /** Bytes this entry counts in `Keyspace.usedBytes` (entryBytes when it was last accounted). */
  bytes = 0;

  constructor(value: KvValue, expiresAtMs: number, seq: number) {
    this.value = value;
    this.expiresAtMs = expiresAtMs;
    this.seq = seq;
  }
}

/** Bytes counted per key beside its name and value: the entry, its map slot, its index slots. */
export const KEY_OVERHEAD_BYTES = 64;

/**
 * What a key costs in the store's memory accounting (INFO used_memory, --max-memory): its name,
 * its value's payload (the value classes keep their own counts) and a fixed overhead. An
 * estimate of the store's data, the same on every replica, not the process's heap.
 */
export function entryBytes(key: string, value: KvValue): number {
  const payload = value instanceof Buffer ? value.length : (value as { bytes: number }).bytes;
  return KEY_OVERHEAD_BYTES + key.length + payload;
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
  /**
   * The sum of every entry's `bytes`: kept by insert, remove and clear, and brought up to date
   * for the keys a write command names after it runs (account()).
   */
  usedBytes = 0;
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
    entry.bytes = entryBytes(key, value);
    this.usedBytes += entry.bytes;
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
    this.usedBytes -= entry.bytes;
    if (entry.expiresAtMs !== NO_EXPIRY) this.volatile.delete(key);
    if (this.scanKeys.length > 2 * this.entries.size + SCAN_INDEX_SLACK) this.rebuildScanIndex();
  }

  clear(): void {
    this.snapshotJob?.finish(); // it still needs every entry: write them out first
    this.entries.clear();
    this.usedBytes = 0;
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
    entry.bytes = entryBytes(key, entry.value);
    this.usedBytes += entry.bytes;
    this.scanKeys.push(key);
    this.scanSeqs.push(entry.seq);
  }

  /** Brings `key`'s count in usedBytes up to date after a write that may have changed its value. */
  account(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    const bytes = entryBytes(key, entry.value);
    this.usedBytes += bytes - entry.bytes;
    entry.bytes = bytes;
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
