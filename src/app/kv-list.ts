/** The embedded store's list value. */
import { assert } from "../core/errors.ts";

/** Bytes counted per item beside its own (kv-memory.ts's accounting). */
export const LIST_ITEM_OVERHEAD = 8;

/** The ring's smallest capacity (a power of two, as every capacity). */
const CAPACITY_MIN = 8;

/**
 * A double-ended queue on a ring of power-of-two capacity. `bytes` is kept by every method that
 * adds or removes an item: a new method must keep it too.
 */
export class KvList {
  /** Payload bytes: the items' lengths and a fixed overhead per item. */
  bytes = 0;
  private items: (Buffer | undefined)[] = new Array(CAPACITY_MIN);
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
    this.bytes += item.length + LIST_ITEM_OVERHEAD;
  }

  pushFront(item: Buffer): void {
    if (this.length === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = item;
    this.length++;
    this.bytes += item.length + LIST_ITEM_OVERHEAD;
  }

  popFront(): Buffer {
    assert(this.length > 0);
    const item = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.length--;
    this.bytes -= item.length + LIST_ITEM_OVERHEAD;
    this.shrinkIfSparse();
    return item;
  }

  popBack(): Buffer {
    assert(this.length > 0);
    const index = (this.head + this.length - 1) & (this.items.length - 1);
    const item = this.items[index]!;
    this.items[index] = undefined;
    this.length--;
    this.bytes -= item.length + LIST_ITEM_OVERHEAD;
    this.shrinkIfSparse();
    return item;
  }

  /** Replaces the item at `index` (LSET). */
  set(index: number, item: Buffer): void {
    assert(index >= 0 && index < this.length);
    const slot = (this.head + index) & (this.items.length - 1);
    this.bytes += item.length - this.items[slot]!.length;
    this.items[slot] = item;
  }

  /**
   * Inserts `item` so that it lands at `index` (0 <= index <= length; LINSERT), moving the items on
   * the shorter side of it by one slot: O(min(index, length - index)).
   */
  insert(index: number, item: Buffer): void {
    assert(index >= 0 && index <= this.length);
    if (this.length === this.items.length) this.grow();
    const mask = this.items.length - 1;
    if (index < this.length - index) {
      this.head = (this.head - 1) & mask;
      for (let i = 0; i < index; i++) {
        this.items[(this.head + i) & mask] = this.items[(this.head + i + 1) & mask];
      }
    } else {
      for (let i = this.length; i > index; i--) {
        this.items[(this.head + i) & mask] = this.items[(this.head + i - 1) & mask];
      }
    }
    this.items[(this.head + index) & mask] = item;
    this.length++;
    this.bytes += item.length + LIST_ITEM_OVERHEAD;
  }

  /** Removes and returns the item at `index`, moving the shorter side: O(min(index, rest)). */
  removeAt(index: number): Buffer {
    assert(index >= 0 && index < this.length);
    const mask = this.items.length - 1;
    const item = this.at(index);
    if (index < this.length - 1 - index) {
      for (let i = index; i > 0; i--) {
        this.items[(this.head + i) & mask] = this.items[(this.head + i - 1) & mask];
      }
      this.items[this.head] = undefined;
      this.head = (this.head + 1) & mask;
    } else {
      for (let i = index; i < this.length - 1; i++) {
        this.items[(this.head + i) & mask] = this.items[(this.head + i + 1) & mask];
      }
      this.items[(this.head + this.length - 1) & mask] = undefined;
    }
    this.length--;
    this.bytes -= item.length + LIST_ITEM_OVERHEAD;
    this.shrinkIfSparse();
    return item;
  }

  /**
   * Removes the items equal to `element` (LREM): all of them when `countMax` is 0, else the first
   * `countMax` from the front, or from the back when `fromBack`. Keeps the others' order; returns
   * how many it removed. One pass over the list (two from the back).
   */
  removeEqual(element: Buffer, countMax: number, fromBack: boolean): number {
    assert(countMax >= 0);
    let from = 0;
    if (fromBack && countMax > 0) {
      // The countMax-th match from the back: every match from there on goes.
      let seen = 0;
      for (let i = this.length - 1; i >= 0 && seen < countMax; i--) {
        if (this.at(i).equals(element)) {
          seen++;
          from = i;
        }
      }
    }
    const limit = fromBack || countMax === 0 ? Number.POSITIVE_INFINITY : countMax;
    const mask = this.items.length - 1;
    let removed = 0;
    let kept = from;
    for (let i = from; i < this.length; i++) {
      const item = this.at(i);
      if (removed < limit && item.equals(element)) {
        removed++;
        this.bytes -= item.length + LIST_ITEM_OVERHEAD;
      } else {
        this.items[(this.head + kept++) & mask] = item;
      }
    }
    for (let i = kept; i < this.length; i++) this.items[(this.head + i) & mask] = undefined;
    this.length = kept;
    this.shrinkIfSparse();
    return removed;
  }

  /** Keeps `count` items from `start` and drops the rest (LTRIM): O(items dropped). */
  trim(start: number, count: number): void {
    assert(start >= 0 && count >= 0 && start + count <= this.length);
    const dropBack = this.length - start - count;
    for (let i = 0; i < start; i++) this.popFront();
    for (let i = 0; i < dropBack; i++) this.popBack();
  }

  private grow(): void {
    this.resize(this.items.length * 2);
  }

  /**
   * Halves the ring while it is at most a quarter full, so a list that was long once does not
   * keep its slots (amortized O(1): the next halving needs as many removals again).
   */
  private shrinkIfSparse(): void {
    if (this.items.length <= CAPACITY_MIN || this.length > this.items.length >>> 2) return;
    this.resize(this.items.length >>> 1);
  }

  private resize(capacity: number): void {
    assert(capacity >= this.length && capacity >= CAPACITY_MIN);
    const items: (Buffer | undefined)[] = new Array(capacity);
    for (let i = 0; i < this.length; i++) items[i] = this.at(i);
    this.items = items;
    this.head = 0;
  }
}
