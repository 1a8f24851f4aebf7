/** The embedded store's sorted-set value. */

/** Bytes counted per member beside its own: score and index (kv-memory.ts's accounting). */
export const ZSET_MEMBER_OVERHEAD = 24;
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
  /** Bytes of the members' names (kept by set, delete, popEnd, removeRange and appendSorted). */
  private memberBytes = 0;
  /**
   * Bumped by every change, so that a cache derived from the contents (ZSCAN's walk order) knows
   * when it is stale. Not state: never snapshotted.
   */
  version = 0;

  get size(): number {
    return this.items.length;
  }

  /** Payload bytes (members and a fixed overhead per member). */
  get bytes(): number {
    return this.memberBytes + this.items.length * ZSET_MEMBER_OVERHEAD;
  }

  /** Adds a member after every other (a snapshot being read: items arrive sorted). */
  appendSorted(member: string, score: number): void {
    this.scores.set(member, score);
    this.items.push({ member, score });
    this.memberBytes += member.length;
    this.version++;
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
    this.memberBytes += member.length;
    this.items.splice(this.lowerBound(stored, member), 0, { member, score: stored });
    this.version++;
  }

  /** Removes `member`; false when absent. */
  delete(member: string): boolean {
    const at = this.rank(member);
    if (at < 0) return false;
    this.items.splice(at, 1);
    this.scores.delete(member);
    this.memberBytes -= member.length;
    this.version++;
    return true;
  }

  /** Removes and returns `count` items from the low end (or the high end when `fromHigh`). */
  popEnd(count: number, fromHigh: boolean): ZItem[] {
    const popped = fromHigh
      ? this.items.splice(this.items.length - count, count).reverse()
      : this.items.splice(0, count);
    for (const item of popped) {
      this.scores.delete(item.member);
      this.memberBytes -= item.member.length;
    }
    this.version++;
    return popped;
  }

  /** Removes the `count` items from rank `start` on (one splice: ZREMRANGEBY*); returns them. */
  removeRange(start: number, count: number): ZItem[] {
    const removed = this.items.splice(start, count);
    for (const item of removed) {
      this.scores.delete(item.member);
      this.memberBytes -= item.member.length;
    }
    this.version++;
    return removed;
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
