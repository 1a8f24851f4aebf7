/** The embedded store's list value. */
import { assert } from "../core/errors.ts";

/** Bytes counted per item beside its own (kv-memory.ts's accounting). */
export const LIST_ITEM_OVERHEAD = 8;

/**
 * A double-ended queue on a ring of power-of-two capacity. `bytes` is kept by every method that
 * adds or removes an item: a new method must keep it too.
 */
export class KvList {
  /** Payload bytes: the items' lengths and a fixed overhead per item. */
  bytes = 0;
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
    return item;
  }

  popBack(): Buffer {
    assert(this.length > 0);
    const index = (this.head + this.length - 1) & (this.items.length - 1);
    const item = this.items[index]!;
    this.items[index] = undefined;
    this.length--;
    this.bytes -= item.length + LIST_ITEM_OVERHEAD;
    return item;
  }

  private grow(): void {
    const items: (Buffer | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.length; i++) items[i] = this.at(i);
    this.items = items;
    this.head = 0;
  }
}
