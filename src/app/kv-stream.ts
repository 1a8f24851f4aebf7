/**
 * The embedded store's stream value (XADD and the other stream commands: kv-streams.ts): entries
 * in id order with O(log n) lookup by id, the stream's counters, its consumer groups, and a model
 * of how Redis packs entries into nodes (listpacks in a radix tree). Some replies depend on those
 * nodes: `MAXLEN ~` / `MINID ~` trim whole nodes only, and XINFO STREAM prints how many there are.
 * The model follows redis-server 7.0.15 with its default stream-node-max-bytes (4096) and
 * stream-node-max-entries (100): a node holds entries and tombstones (entries deleted inside it),
 * and its byte size is what its listpack would take.
 */
import { assert } from "../core/errors.ts";
import { parseInt64 } from "./kv-shared.ts";

/** An entry id `ms-seq` (two uint64) as one 128-bit number, ms << 64 | seq: ids order as numbers. */
export type StreamId = bigint;
export const U64_MAX = (1n << 64n) - 1n;
export const STREAM_ID_MAX: StreamId = (1n << 128n) - 1n;

export function streamId(ms: bigint, seq: bigint): StreamId {
  return (ms << 64n) | seq;
}

export function idMs(id: StreamId): bigint {
  return id >> 64n;
}

export function idSeq(id: StreamId): bigint {
  return id & U64_MAX;
}

/** `ms-seq`, as Redis prints an id. */
export function formatStreamId(id: StreamId): string {
  return `${id >> 64n}-${id & U64_MAX}`;
}

export interface StreamEntry {
  readonly id: StreamId;
  /** field, value, field, value, …: at least one pair. */
  readonly fields: readonly Buffer[];
}

/** Bytes counted per entry, group, consumer and pending entry beside their names and values. */
export const STREAM_ENTRY_OVERHEAD = 32;
export const STREAM_GROUP_OVERHEAD = 64;
export const STREAM_CONSUMER_OVERHEAD = 48;
export const STREAM_NACK_OVERHEAD = 40;

/** Redis's defaults for stream-node-max-bytes and stream-node-max-entries. */
const NODE_BYTES_MAX = 4096;
const NODE_ENTRIES_MAX = 100;
/** A listpack's header (total bytes, element count) and end marker. */
const LP_EMPTY_BYTES = 7;
/** Bytes of an id: the radix tree's key length. */
const ID_BYTES = 16;

/** Bytes of a listpack element's back-length field for an element of `size` bytes. */
function backlenSize(size: number): number {
  if (size <= 127) return 1;
  if (size < 16383) return 2;
  if (size < 2097151) return 3;
  if (size < 268435455) return 4;
  return 5;
}

/** Bytes a listpack element holding the integer `value` takes. */
function lpIntSize(value: number | bigint): number {
  const v = Number(value);
  if (v >= 0 && v <= 127) return 2;
  if (v >= -4096 && v <= 4095) return 3;
  if (v >= -32768 && v <= 32767) return 4;
  if (v >= -8388608 && v <= 8388607) return 5;
  if (v >= -2147483648 && v <= 2147483647) return 6;
  return 10;
}

/** Bytes a listpack element holding `value` takes (a string that reads as an int64 is stored as one). */
function lpStringSize(value: Buffer): number {
  const asInteger = parseInt64(value);
  if (asInteger !== null) return lpIntSize(asInteger);
  const n = value.length;
  const encoded = n < 64 ? 1 + n : n < 4096 ? 2 + n : 5 + n;
  return encoded + backlenSize(encoded);
}

/** The delta of two uint64 parts as the int64 Redis stores (it wraps). */
function int64Delta(a: bigint, b: bigint): bigint {
  return BigInt.asIntN(64, a - b);
}

/**
 * One node of Redis's layout: a listpack whose master entry holds the first entry's field names,
 * then every entry appended to it, live or deleted (a tombstone).
 */
interface StreamNode {
  /** The id of the node's first entry: its key in the radix tree. */
  readonly masterId: StreamId;
  readonly masterFields: readonly Buffer[];
  /** Live entries: the entries that point to this node. */
  live: number;
  /** Tombstones: entries deleted inside the node (XDEL, or a trim that stopped inside it). */
  deleted: number;
  /** The listpack's size, bytes. */
  lpBytes: number;
  /** The id of the last entry appended, live or not. */
  lastId: StreamId;
}

/** Items per chunk of an IdList: a delete moves at most about this many references. */
const CHUNK_ITEMS = 128;

/**
 * Items in ascending id order, in chunks of up to 2 × CHUNK_ITEMS: lookups are two binary searches,
 * an append (the usual insert) is O(1), and a delete or an insert moves one chunk's items, never
 * the whole list (V8's splice on a long array of objects costs ~170 µs at 50,000 items). Items'
 * ids are unique; callers must not change the list while visiting it.
 */
export class IdList<T extends { readonly id: StreamId }> {
  /** Chunks from `head` on: each non-empty and ascending, and ascending from one to the next. */
  private chunks: T[][] = [];
  private head = 0;
  /** Items held. */
  size = 0;

  /** The chunk that holds, or would hold, `id`: the last whose first id <= id (or the first). */
  private chunkFor(id: StreamId): number {
    const chunks = this.chunks;
    let low = this.head;
    let high = chunks.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (chunks[mid]![0]!.id <= id) low = mid + 1;
      else high = mid;
    }
    return low > this.head ? low - 1 : this.head;
  }

  /** Index in `chunk` of its first item with an id >= `id` (chunk.length when none). */
  private static offset<T extends { readonly id: StreamId }>(
    chunk: readonly T[],
    id: StreamId,
  ): number {
    let low = 0;
    let high = chunk.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (chunk[mid]!.id < id) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  get(id: StreamId): T | undefined {
    if (this.size === 0) return undefined;
    const chunk = this.chunks[this.chunkFor(id)]!;
    const item = chunk[IdList.offset(chunk, id)];
    return item?.id === id ? item : undefined;
  }

  first(): T | undefined {
    return this.size === 0 ? undefined : this.chunks[this.head]![0];
  }

  last(): T | undefined {
    if (this.size === 0) return undefined;
    const chunk = this.chunks[this.chunks.length - 1]!;
    return chunk[chunk.length - 1];
  }

  /** Adds `item`, whose id must not be held yet. */
  insert(item: T): void {
    const tail = this.chunks[this.chunks.length - 1];
    if (this.size === 0 || tail === undefined) {
      this.chunks = [[item]];
      this.head = 0;
    } else if (tail[tail.length - 1]!.id < item.id) {
      if (tail.length < CHUNK_ITEMS) tail.push(item);
      else this.chunks.push([item]);
    } else {
      const at = this.chunkFor(item.id);
      const chunk = this.chunks[at]!;
      const offset = IdList.offset(chunk, item.id);
      assert(chunk[offset]?.id !== item.id, "id already held");
      chunk.splice(offset, 0, item);
      if (chunk.length > 2 * CHUNK_ITEMS) this.chunks.splice(at + 1, 0, chunk.splice(CHUNK_ITEMS));
    }
    this.size++;
  }

  /** Removes and returns the item with `id`, if held. */
  delete(id: StreamId): T | undefined {
    if (this.size === 0) return undefined;
    const at = this.chunkFor(id);
    const chunk = this.chunks[at]!;
    const offset = IdList.offset(chunk, id);
    if (chunk[offset]?.id !== id) return undefined;
    const [item] = chunk.splice(offset, 1);
    this.size--;
    if (chunk.length === 0) {
      if (at === this.head) this.advanceHead(1);
      else this.chunks.splice(at, 1);
    }
    return item;
  }

  /** Removes the first `count` items (count <= size) and returns them. */
  removeFirst(count: number): T[] {
    assert(count >= 0 && count <= this.size);
    const removed: T[] = [];
    let chunks = 0;
    while (removed.length < count) {
      const chunk = this.chunks[this.head + chunks]!;
      const want = count - removed.length;
      if (chunk.length <= want) {
        for (const item of chunk) removed.push(item);
        chunks++;
      } else {
        for (const item of chunk.splice(0, want)) removed.push(item);
      }
    }
    this.size -= count;
    this.advanceHead(chunks);
    return removed;
  }

  private advanceHead(chunks: number): void {
    this.head += chunks;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 64 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** Visits the items with id >= `from` in order while `visit` returns true. */
  forward(from: StreamId, visit: (item: T) => boolean): void {
    if (this.size === 0) return;
    let at = this.chunkFor(from);
    let offset = IdList.offset(this.chunks[at]!, from);
    for (; at < this.chunks.length; at++, offset = 0) {
      const chunk = this.chunks[at]!;
      for (; offset < chunk.length; offset++) if (!visit(chunk[offset]!)) return;
    }
  }

  /** Visits the items with id <= `from` in descending order while `visit` returns true. */
  backward(from: StreamId, visit: (item: T) => boolean): void {
    if (this.size === 0) return;
    let at = this.chunkFor(from);
    let chunk = this.chunks[at]!;
    // The items of `chunk` before `end` are the ones <= from.
    let end = IdList.offset(chunk, from);
    if (end < chunk.length && chunk[end]!.id === from) end++;
    for (;;) {
      for (let i = end - 1; i >= 0; i--) if (!visit(chunk[i]!)) return;
      if (--at < this.head) return;
      chunk = this.chunks[at]!;
      end = chunk.length;
    }
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let at = this.head; at < this.chunks.length; at++) yield* this.chunks[at]!;
  }
}

/** A pending entry: delivered to a consumer of a group and not acknowledged yet. */
export interface StreamNack {
  /** The entry's id. */
  readonly id: StreamId;
  /** When it was last delivered: the log's clock, ms. */
  deliveryTime: number;
  deliveryCount: bigint;
  consumer: StreamConsumer;
}

export class StreamConsumer {
  /** The name's bytes as a latin1 string. */
  readonly name: string;
  /** When it last read or claimed: the log's clock, ms (XINFO CONSUMERS's idle). */
  seenTime: number;
  /** Its pending entries: the same objects as its group's PEL holds for it. */
  readonly pel = new IdList<StreamNack>();

  constructor(name: string, seenTime: number) {
    this.name = name;
    this.seenTime = seenTime;
  }
}

/** A byte count shared by a stream and its groups, so the stream reads its total in O(1). */
interface ByteCount {
  value: number;
}

/**
 * A consumer group. Its methods keep `bytes` and the stream's total right; change its PEL and
 * consumers only through them.
 */
export class StreamGroup {
  /** The last id delivered to the group. */
  lastId: StreamId;
  /** The group's logical read counter, or -1n when it is not known. */
  entriesRead: bigint;
  /** Every pending entry of the group, by id. Invariant: nack ∈ pel ⇔ nack ∈ nack.consumer.pel. */
  readonly pel = new IdList<StreamNack>();
  /** Consumers by name (latin1 of the bytes); replies list them in name order, as Redis. */
  readonly consumers = new Map<string, StreamConsumer>();
  /** Payload bytes: name, consumers and pending entries, with their overheads. */
  bytes: number;
  private readonly total: ByteCount;

  constructor(name: string, lastId: StreamId, entriesRead: bigint, total: ByteCount) {
    this.lastId = lastId;
    this.entriesRead = entriesRead;
    this.total = total;
    this.bytes = name.length + STREAM_GROUP_OVERHEAD;
    total.value += this.bytes;
  }

  private account(delta: number): void {
    this.bytes += delta;
    this.total.value += delta;
  }

  /** The consumer `name`, created if absent; either way it was seen at `now`. */
  consumer(name: string, now: number): StreamConsumer {
    let consumer = this.consumers.get(name);
    if (consumer === undefined) consumer = this.createConsumer(name, now);
    else consumer.seenTime = now;
    return consumer;
  }

  /** A new consumer (the name must be free). */
  createConsumer(name: string, now: number): StreamConsumer {
    assert(!this.consumers.has(name));
    const consumer = new StreamConsumer(name, now);
    this.consumers.set(name, consumer);
    this.account(name.length + STREAM_CONSUMER_OVERHEAD);
    return consumer;
  }

  /** Removes `consumer` and its pending entries; returns how many it had. */
  deleteConsumer(consumer: StreamConsumer): number {
    const pending = consumer.pel.size;
    for (const nack of consumer.pel) this.pel.delete(nack.id);
    this.consumers.delete(consumer.name);
    this.account(
      -(consumer.name.length + STREAM_CONSUMER_OVERHEAD + pending * STREAM_NACK_OVERHEAD),
    );
    return pending;
  }

  /**
   * Entry `id` is delivered to `consumer` at `now` (XREADGROUP): a new pending entry, or one
   * another consumer held given to this one, delivered once.
   */
  deliver(id: StreamId, consumer: StreamConsumer, now: number): void {
    const nack = this.pel.get(id);
    if (nack === undefined) {
      const created: StreamNack = { id, deliveryTime: now, deliveryCount: 1n, consumer };
      this.pel.insert(created);
      consumer.pel.insert(created);
      this.account(STREAM_NACK_OVERHEAD);
      return;
    }
    if (nack.consumer !== consumer) {
      nack.consumer.pel.delete(id);
      consumer.pel.insert(nack);
    }
    nack.consumer = consumer;
    nack.deliveryTime = now;
    nack.deliveryCount = 1n;
  }

  /**
   * `consumer` claims entry `id` (XCLAIM, XAUTOCLAIM): its pending entry, or a new one (FORCE,
   * delivered once so far), now delivered at `deliveryTime`; the count becomes `retryCount` when
   * given (>= 0), else grows by one unless `justId`.
   */
  claim(
    id: StreamId,
    consumer: StreamConsumer,
    deliveryTime: number,
    retryCount: bigint,
    justId: boolean,
  ): void {
    let nack = this.pel.get(id);
    if (nack === undefined) {
      nack = { id, deliveryTime, deliveryCount: 1n, consumer };
      this.pel.insert(nack);
      consumer.pel.insert(nack);
      this.account(STREAM_NACK_OVERHEAD);
    } else if (nack.consumer !== consumer) {
      nack.consumer.pel.delete(id);
      consumer.pel.insert(nack);
      nack.consumer = consumer;
    }
    nack.deliveryTime = deliveryTime;
    if (retryCount >= 0n) nack.deliveryCount = retryCount;
    else if (!justId) nack.deliveryCount++;
  }

  /** Removes the pending entry `id` (acknowledged, or its entry is gone); false if none. */
  ack(id: StreamId): boolean {
    const nack = this.pel.delete(id);
    if (nack === undefined) return false;
    nack.consumer.pel.delete(id);
    this.account(-STREAM_NACK_OVERHEAD);
    return true;
  }

  /** Consumers in name order (Redis keeps them in a radix tree). */
  consumersByName(): StreamConsumer[] {
    return [...this.consumers.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
  }

  /** A deep copy counting into `total`. */
  clone(name: string, total: ByteCount): StreamGroup {
    const copy = new StreamGroup(name, this.lastId, this.entriesRead, total);
    const consumers = new Map<StreamConsumer, StreamConsumer>();
    for (const consumer of this.consumers.values()) {
      consumers.set(consumer, copy.createConsumer(consumer.name, consumer.seenTime));
    }
    for (const nack of this.pel) {
      const owner = consumers.get(nack.consumer)!;
      copy.claim(nack.id, owner, nack.deliveryTime, nack.deliveryCount, true);
    }
    return copy;
  }
}

/** A trim (XTRIM, XADD's MAXLEN/MINID): by length or by id, `~` and LIMIT as Redis reads them. */
export interface StreamTrim {
  /** Keep at most this many entries; or undefined to trim by `minId`. */
  readonly maxLen?: number | undefined;
  /** Drop entries with a smaller id. */
  readonly minId?: StreamId | undefined;
  /** `~`: remove whole nodes only. */
  readonly approx: boolean;
  /** At most this many entries removed; 0 = no limit. */
  readonly limit: number;
}

/** What a snapshot writes a stream with (kv-snapshot.ts's Writer). */
export interface StreamWriter {
  u32(value: number): void;
  f64(value: number): void;
  bytes(value: Uint8Array): void;
  latin1(value: string): void;
}

/** What a snapshot reads a stream with (kv-snapshot.ts's Reader). */
export interface StreamReader {
  u32(): number;
  f64(): number;
  bytes(): Buffer;
  latin1(): string;
  /** A count of items of at least `itemBytesMin` bytes each, checked against what is left. */
  count(itemBytesMin: number): number;
}

/** An entry as the stream holds it: with the node Redis would have put it in. */
interface StoredEntry extends StreamEntry {
  readonly node: StreamNode;
}

/**
 * A stream. `bytes` is kept by every method that adds or removes an entry, a group, a consumer or
 * a pending entry.
 */
export class KvStream {
  /** Entries ascending by id, which is also the order they were added in. */
  private entries = new IdList<StoredEntry>();
  /**
   * The node layout in the order the nodes were made, which is Redis's (ascending master ids)
   * unless XSETID moved the last id back below a node that only holds tombstones. Invariant: each
   * node's live entries are a run of `entries`, the runs in node order.
   */
  private nodes: StreamNode[] = [];
  /** The last id added (or set by XSETID). Invariant: >= every entry's id. */
  lastId: StreamId = 0n;
  /** The largest id XDEL removed (0 when none). */
  maxDeletedId: StreamId = 0n;
  /** Entries ever added (or as XSETID set it). */
  entriesAdded = 0n;
  /** Consumer groups by name (latin1 of the bytes); replies list them in name order, as Redis. */
  readonly groups = new Map<string, StreamGroup>();
  private entryBytes = 0;
  private readonly groupBytes: ByteCount = { value: 0 };

  get length(): number {
    return this.entries.size;
  }

  /** Payload bytes: entries' fields and values, groups, consumers, pending entries, overheads. */
  get bytes(): number {
    return this.entryBytes + this.groupBytes.value;
  }

  /** The first entry's id, 0 when empty (XINFO's recorded-first-entry-id). */
  get firstId(): StreamId {
    return this.entries.first()?.id ?? 0n;
  }

  first(): StreamEntry | undefined {
    return this.entries.first();
  }

  last(): StreamEntry | undefined {
    return this.entries.last();
  }

  find(id: StreamId): StreamEntry | undefined {
    return this.entries.get(id);
  }

  /**
   * Entries with start <= id <= end, ascending (descending when `reverse`), at most `count`
   * (0: no limit).
   */
  range(start: StreamId, end: StreamId, count: number, reverse = false): StreamEntry[] {
    const found: StreamEntry[] = [];
    if (start > end) return found;
    const limit = count === 0 ? Number.POSITIVE_INFINITY : count;
    if (reverse) {
      this.entries.backward(end, (entry) => {
        if (entry.id < start || found.length >= limit) return false;
        found.push(entry);
        return true;
      });
    } else {
      this.entries.forward(start, (entry) => {
        if (entry.id > end || found.length >= limit) return false;
        found.push(entry);
        return true;
      });
    }
    return found;
  }

  /** Every entry, ascending. */
  [Symbol.iterator](): IterableIterator<StreamEntry> {
    return this.entries[Symbol.iterator]();
  }

  /**
   * Appends an entry (`fields`: field, value, …, private copies) with an id above `lastId`, into
   * the tail node or a new one as Redis would.
   */
  append(id: StreamId, fields: readonly Buffer[]): void {
    assert(id > this.lastId && fields.length >= 2 && fields.length % 2 === 0);
    let payload = 0;
    for (const bytes of fields) payload += bytes.length;
    const pairs = fields.length / 2;
    let node = this.nodes[this.nodes.length - 1];
    if (
      node === undefined ||
      node.lpBytes + payload >= NODE_BYTES_MAX ||
      node.live + node.deleted >= NODE_ENTRIES_MAX
    ) {
      node = newNode(id, fields);
      this.nodes.push(node);
    } else node.live++;
    const sameFields = sharesFields(node, fields);
    // The entry: flags, id deltas from the master id, [field count], fields/values, element count.
    let size = 2 + lpIntSize(int64Delta(idMs(id), idMs(node.masterId)));
    size += lpIntSize(int64Delta(idSeq(id), idSeq(node.masterId)));
    if (!sameFields) size += lpIntSize(pairs);
    for (let i = 0; i < fields.length; i++) {
      if (sameFields && i % 2 === 0) continue;
      size += lpStringSize(fields[i]!);
    }
    size += lpIntSize(sameFields ? pairs + 3 : 2 * pairs + 4);
    node.lpBytes += size;
    node.lastId = id;
    // Field names equal to the node's master fields share its buffers.
    const stored = sameFields
      ? fields.map((b, i) => (i % 2 === 0 ? node.masterFields[i / 2]! : b))
      : fields;
    this.entries.insert({ id, fields: stored, node });
    this.entryBytes += payload + STREAM_ENTRY_OVERHEAD;
    this.lastId = id;
    this.entriesAdded++;
  }

  /** Removes entry `id` (XDEL); false when absent. maxDeletedId is the caller's to update. */
  delete(id: StreamId): boolean {
    const removed = this.entries.delete(id);
    if (removed === undefined) return false;
    const node = removed.node;
    // The node goes when its last live entry does, tombstones and all.
    if (node.live === 1) this.nodes.splice(this.nodes.indexOf(node), 1);
    else {
      node.live--;
      node.deleted++;
    }
    this.entryBytes -= entryBytes(removed);
    return true;
  }

  /** Trims as Redis's streamTrim does; returns how many entries it removed. */
  trim(trim: StreamTrim): number {
    const byLength = trim.maxLen !== undefined;
    let removed = 0;
    let dropNodes = 0;
    while (dropNodes < this.nodes.length) {
      if (byLength && this.length <= trim.maxLen!) break;
      const node = this.nodes[dropNodes]!;
      if (trim.limit !== 0 && removed + node.live > trim.limit) break;
      const whole = byLength ? this.length - node.live >= trim.maxLen! : node.lastId < trim.minId!;
      if (whole) {
        removed += node.live;
        this.removeFirst(node.live);
        dropNodes++;
        continue;
      }
      if (trim.approx) break;
      // Within the node: its first live entries become tombstones.
      let marked = 0;
      if (byLength) marked = this.length - trim.maxLen!;
      else {
        this.entries.forward(0n, (entry) => {
          if (marked === node.live || entry.id >= trim.minId!) return false;
          marked++;
          return true;
        });
      }
      node.live -= marked;
      node.deleted += marked;
      this.removeFirst(marked);
      removed += marked;
      break;
    }
    if (dropNodes > 0) this.nodes.splice(0, dropNodes);
    return removed;
  }

  /** Removes the first `count` entries (their nodes are the caller's). */
  private removeFirst(count: number): void {
    for (const entry of this.entries.removeFirst(count)) this.entryBytes -= entryBytes(entry);
  }

  /** How many nodes the radix tree holds (XINFO's radix-tree-keys). */
  get nodeCount(): number {
    return this.nodes.length;
  }

  /**
   * How many radix-tree nodes Redis's rax would take for the node keys (XINFO's
   * radix-tree-nodes): the root, and for each group of keys a compressed node for their common
   * part, a branching node where they part, and a leaf per key.
   */
  radixTreeNodes(): number {
    let keys = this.nodes.map((node) => node.masterId);
    if (keys.length === 0) return 1;
    if (keys.some((key, i) => i > 0 && key <= keys[i - 1]!)) {
      keys = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      keys = keys.filter((key, i) => i === 0 || key !== keys[i - 1]);
    }
    return raxNodes(keys, 0, keys.length, 0);
  }

  /** A new group (the name must be free). */
  createGroup(name: string, lastId: StreamId, entriesRead: bigint): StreamGroup {
    assert(!this.groups.has(name));
    const group = new StreamGroup(name, lastId, entriesRead, this.groupBytes);
    this.groups.set(name, group);
    return group;
  }

  destroyGroup(name: string): boolean {
    const group = this.groups.get(name);
    if (group === undefined) return false;
    this.groups.delete(name);
    this.groupBytes.value -= group.bytes;
    return true;
  }

  /** Groups in name order. */
  groupsByName(): [string, StreamGroup][] {
    return [...this.groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** A copy of `group` whose changes count nowhere (a dry run). */
  static scratchGroup(name: string, group: StreamGroup): StreamGroup {
    return group.clone(name, { value: 0 });
  }

  /** A deep copy (COPY), node layout included. */
  clone(): KvStream {
    const copy = new KvStream();
    const nodes = new Map(this.nodes.map((node) => [node, { ...node }]));
    copy.nodes = [...nodes.values()];
    for (const entry of this.entries) {
      copy.entries.insert({ id: entry.id, fields: entry.fields, node: nodes.get(entry.node)! });
    }
    copy.lastId = this.lastId;
    copy.maxDeletedId = this.maxDeletedId;
    copy.entriesAdded = this.entriesAdded;
    copy.entryBytes = this.entryBytes;
    for (const [name, group] of this.groups)
      copy.groups.set(name, group.clone(name, copy.groupBytes));
    return copy;
  }

  /**
   * The snapshot's record of a stream (after kv-snapshot.ts's type byte); ids are 4 × u32 from the
   * most significant, counters 2 × u32 (high, low; entriesRead two's complement):
   *
   *   u32 n, n × (id, u32 pairs, pairs × (bytes field, bytes value))   entries, ascending
   *   id lastId | id maxDeletedId | u64 entriesAdded
   *   u32 nodes, nodes × (id masterId, u32 k, k × bytes field, u32 live, u32 deleted,
   *                       u32 lpBytes, id lastId)
   *   u32 groups, groups × (latin1 name, id lastId, i64 entriesRead,
   *                         u32 c, c × (latin1 consumer, f64 seenTime),
   *                         u32 p, p × (id, u32 consumer index, f64 deliveryTime, u64 count))
   *
   * Groups and consumers in their Map order, pending entries ascending; a consumer's own pending
   * list is its group's entries that name it.
   */
  static write(writer: StreamWriter, stream: KvStream): void {
    writer.u32(stream.length);
    for (const entry of stream.entries) {
      writeId(writer, entry.id);
      writer.u32(entry.fields.length / 2);
      for (const bytes of entry.fields) writer.bytes(bytes);
    }
    writeId(writer, stream.lastId);
    writeId(writer, stream.maxDeletedId);
    writeU64(writer, stream.entriesAdded);
    writer.u32(stream.nodes.length);
    for (const node of stream.nodes) {
      writeId(writer, node.masterId);
      writer.u32(node.masterFields.length);
      for (const field of node.masterFields) writer.bytes(field);
      writer.u32(node.live);
      writer.u32(node.deleted);
      assert(node.lpBytes <= 0xffffffff);
      writer.u32(node.lpBytes);
      writeId(writer, node.lastId);
    }
    writer.u32(stream.groups.size);
    for (const [name, group] of stream.groups) {
      writer.latin1(name);
      writeId(writer, group.lastId);
      writeU64(writer, BigInt.asUintN(64, group.entriesRead));
      const indexes = new Map<StreamConsumer, number>();
      writer.u32(group.consumers.size);
      for (const consumer of group.consumers.values()) {
        indexes.set(consumer, indexes.size);
        writer.latin1(consumer.name);
        writer.f64(consumer.seenTime);
      }
      writer.u32(group.pel.size);
      for (const nack of group.pel) {
        writeId(writer, nack.id);
        writer.u32(indexes.get(nack.consumer)!);
        writer.f64(nack.deliveryTime);
        writeU64(writer, nack.deliveryCount);
      }
    }
  }

  /**
   * A stream from its snapshot record; `fail` throws. Refuses what `write` would not have
   * written (so a restored stream writes back the same bytes) and any state the commands could
   * trip on.
   */
  static read(reader: StreamReader, fail: (message: string) => never): KvStream {
    const stream = new KvStream();
    const count = reader.count(ID_BYTES + 4);
    const read: StreamEntry[] = [];
    let previous = -1n;
    for (let i = 0; i < count; i++) {
      const id = readId(reader);
      if (id <= previous) fail("stream entries out of order");
      previous = id;
      const pairs = reader.count(8);
      if (pairs === 0) fail("stream entry without fields");
      const fields: Buffer[] = [];
      for (let j = 0; j < 2 * pairs; j++) fields.push(reader.bytes());
      read.push({ id, fields });
      stream.entryBytes += entryBytes({ id, fields });
    }
    stream.lastId = readId(reader);
    stream.maxDeletedId = readId(reader);
    stream.entriesAdded = readU64(reader);
    if (previous > stream.lastId) fail("stream entry above its last id");
    stream.nodes = readNodes(reader, fail);
    // Each node's live entries: the next `live` entries.
    let at = 0;
    for (const node of stream.nodes) {
      for (let j = 0; j < node.live; j++, at++) {
        const entry = read[at];
        if (entry === undefined) fail("stream nodes hold more entries than it has");
        stream.entries.insert({ id: entry.id, fields: entry.fields, node });
      }
    }
    if (at !== read.length) fail("stream entries outside its nodes");
    const groupCount = reader.count(4 + 2 * ID_BYTES);
    for (let i = 0; i < groupCount; i++) readGroup(reader, stream, fail);
    return stream;
  }
}

function entryBytes(entry: StreamEntry): number {
  let bytes = STREAM_ENTRY_OVERHEAD;
  for (const field of entry.fields) bytes += field.length;
  return bytes;
}

/** A node whose first entry is `id` with `fields`: the master entry, before the entry itself. */
function newNode(id: StreamId, fields: readonly Buffer[]): StreamNode {
  const masterFields: Buffer[] = [];
  for (let i = 0; i < fields.length; i += 2) masterFields.push(fields[i]!);
  let lpBytes = LP_EMPTY_BYTES + lpIntSize(1) + lpIntSize(0) + lpIntSize(masterFields.length);
  for (const field of masterFields) lpBytes += lpStringSize(field);
  lpBytes += lpIntSize(0);
  return { masterId: id, masterFields, live: 1, deleted: 0, lpBytes, lastId: id };
}

/** Whether an entry's field names are the node's master fields (Redis then stores values only). */
function sharesFields(node: StreamNode, fields: readonly Buffer[]): boolean {
  const master = node.masterFields;
  if (master.length * 2 !== fields.length) return false;
  for (let i = 0; i < master.length; i++) if (!master[i]!.equals(fields[2 * i]!)) return false;
  return true;
}

/** Byte `index` (0 = most significant) of an id's 16-byte big-endian form: the rax key. */
function idByte(id: StreamId, index: number): number {
  return Number((id >> BigInt(8 * (ID_BYTES - 1 - index))) & 0xffn);
}

/** Rax nodes for keys[low, high) (ascending, distinct), which share their first `depth` bytes. */
function raxNodes(keys: readonly StreamId[], low: number, high: number, depth: number): number {
  if (depth === ID_BYTES) return 1;
  if (high - low === 1) return 2;
  const first = keys[low]!;
  const last = keys[high - 1]!;
  let split = depth;
  while (idByte(first, split) === idByte(last, split)) split++;
  let count = split > depth ? 2 : 1;
  let start = low;
  while (start < high) {
    const byte = idByte(keys[start]!, split);
    let end = start + 1;
    while (end < high && idByte(keys[end]!, split) === byte) end++;
    count += raxNodes(keys, start, end, split + 1);
    start = end;
  }
  return count;
}

function writeId(writer: StreamWriter, id: StreamId): void {
  for (let shift = 96n; shift >= 0n; shift -= 32n) writer.u32(Number((id >> shift) & 0xffffffffn));
}

function readId(reader: StreamReader): StreamId {
  let id = 0n;
  for (let i = 0; i < 4; i++) id = (id << 32n) | BigInt(reader.u32());
  return id;
}

function writeU64(writer: StreamWriter, value: bigint): void {
  writer.u32(Number(value >> 32n));
  writer.u32(Number(value & 0xffffffffn));
}

function readU64(reader: StreamReader): bigint {
  const high = BigInt(reader.u32());
  return (high << 32n) | BigInt(reader.u32());
}

function readTime(reader: StreamReader, fail: (message: string) => never): number {
  const time = reader.f64();
  if (!Number.isSafeInteger(time)) fail("bad stream time");
  return time;
}

/** The node layout (matched with the entries by the caller). */
function readNodes(reader: StreamReader, fail: (message: string) => never): StreamNode[] {
  const nodes: StreamNode[] = [];
  const count = reader.count(ID_BYTES + 16 + ID_BYTES);
  for (let i = 0; i < count; i++) {
    const masterId = readId(reader);
    const fieldCount = reader.count(4);
    const masterFields: Buffer[] = [];
    for (let j = 0; j < fieldCount; j++) masterFields.push(reader.bytes());
    const live = reader.u32();
    const deleted = reader.u32();
    const lpBytes = reader.u32();
    const lastId = readId(reader);
    if (live + deleted === 0 || lpBytes < LP_EMPTY_BYTES) fail("bad stream node");
    nodes.push({ masterId, masterFields, live, deleted, lpBytes, lastId });
  }
  return nodes;
}

function readGroup(reader: StreamReader, stream: KvStream, fail: (message: string) => never): void {
  const name = reader.latin1();
  if (stream.groups.has(name)) fail("duplicate stream group");
  const lastId = readId(reader);
  const entriesRead = BigInt.asIntN(64, readU64(reader));
  if (entriesRead < -1n) fail("bad stream group counter");
  const group = stream.createGroup(name, lastId, entriesRead);
  const consumers: StreamConsumer[] = [];
  const consumerCount = reader.count(4 + 8);
  for (let i = 0; i < consumerCount; i++) {
    const consumerName = reader.latin1();
    if (group.consumers.has(consumerName)) fail("duplicate stream consumer");
    consumers.push(group.createConsumer(consumerName, readTime(reader, fail)));
  }
  const pending = reader.count(ID_BYTES + 4 + 8 + 8);
  let previous = -1n;
  for (let i = 0; i < pending; i++) {
    const id = readId(reader);
    if (id <= previous) fail("stream pending entries out of order");
    previous = id;
    const consumer = consumers[reader.u32()];
    if (consumer === undefined) fail("bad stream consumer index");
    const deliveryTime = readTime(reader, fail);
    group.claim(id, consumer, deliveryTime, readU64(reader), true);
  }
}
