/** The embedded store's list value. */
import { assert } from "../core/errors.ts";

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
