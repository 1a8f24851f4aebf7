/**
 * The embedded store's snapshot (for log compaction and InstallSnapshot). Deterministic: two
 * stores that applied the same commands produce the same bytes. Little-endian:
 *
 *   u32 MAGIC "APKV" | u32 VERSION | f64 clockMs | f64 nextSeq | u32 keyCount
 *   per key, in insertion order:
 *     bytes key | f64 seq | f64 expiresAtMs (+Infinity = none) | u8 type | value
 *     string: bytes | hash: u32 n, n × (bytes field, bytes value) | list, set: u32 n, n × bytes
 *     zset: u32 n, n × (bytes member, f64 score), ascending by (score, member)
 *     stream: its record as KvStream.write (kv-stream.ts) describes it (may be empty)
 *   u32 volatileCount | volatileCount × f64 seq (the expiry-sweep order)
 *   u32 crc32 of everything before it
 *
 * where `bytes` is u32 length + the bytes. Version 2 added the zset type, version 3 the stream
 * type; version 1 and 2 snapshots (no zsets, no streams) are still read.
 */
import { crc32 } from "node:zlib";
import { ApusError } from "../core/errors.ts";
import {
  isStringValue,
  Keyspace,
  type KeyspaceLimits,
  KvEntry,
  KvHash,
  KvList,
  KvSet,
  KvStream,
  type KvValue,
  KvZset,
  zLess,
} from "./kv-keyspace.ts";

const MAGIC = 0x564b5041; // "APKV"
const VERSION = 3;
/** Oldest version still read: version 1 is version 3 without zsets and streams, 2 without streams. */
const VERSION_MIN = 1;
const TYPE_STRING = 1;
const TYPE_HASH = 2;
const TYPE_LIST = 3;
const TYPE_SET = 4;
const TYPE_ZSET = 5;
const TYPE_STREAM = 6;

export class Writer {
  private buf: Buffer;
  length = 0;

  /** `capacity`: bytes to start with (it doubles as needed). */
  constructor(capacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(capacity);
  }
  /** crc32 of the bytes before crcEnd (summed as we go, so finish() does not stall on a big one). */
  private crc = 0;
  private crcEnd = 0;

  private ensure(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + bytes));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.length++] = value;
  }

  u32(value: number): void {
    this.ensure(4);
    this.length = this.buf.writeUInt32LE(value, this.length);
  }

  f64(value: number): void {
    this.ensure(8);
    this.length = this.buf.writeDoubleLE(value, this.length);
  }

  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.length);
    this.length += value.length;
  }

  latin1(value: string): void {
    this.u32(value.length);
    this.ensure(value.length);
    this.length += this.buf.write(value, this.length, "latin1");
  }

  /** Bytes another Writer produced (an entry serialized ahead of its turn). */
  raw(value: Uint8Array): void {
    this.ensure(value.length);
    this.buf.set(value, this.length);
    this.length += value.length;
  }

  /** The bytes written so far (a view, valid until the next write). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** Fold what was written since the last call into the checksum. */
  sumSoFar(): void {
    this.crc = crc32(this.buf.subarray(this.crcEnd, this.length), this.crc);
    this.crcEnd = this.length;
  }

  finish(): Uint8Array {
    this.sumSoFar();
    this.u32(this.crc);
    return this.buf.subarray(0, this.length);
  }
}

function writeValue(writer: Writer, value: KvValue): void {
  if (isStringValue(value)) {
    writer.u8(TYPE_STRING);
    writer.bytes(value);
  } else if (value instanceof KvHash) {
    writer.u8(TYPE_HASH);
    writer.u32(value.fields.size);
    for (const [field, fieldValue] of value.fields) {
      writer.latin1(field);
      writer.bytes(fieldValue);
    }
  } else if (value instanceof KvList) {
    writer.u8(TYPE_LIST);
    writer.u32(value.length);
    for (let i = 0; i < value.length; i++) writer.bytes(value.at(i));
  } else if (value instanceof KvZset) {
    writer.u8(TYPE_ZSET);
    writer.u32(value.size);
    for (const item of value.items) {
      writer.latin1(item.member);
      writer.f64(item.score);
    }
  } else if (value instanceof KvStream) {
    writer.u8(TYPE_STREAM);
    KvStream.write(writer, value);
  } else {
    writer.u8(TYPE_SET);
    writer.u32(value.members.size);
    for (const member of value.members) writer.latin1(member);
  }
}

/** The header, up to and including the key count. */
export function writeHeader(writer: Writer, keyspace: Keyspace): void {
  writer.u32(MAGIC);
  writer.u32(VERSION);
  writer.f64(keyspace.clockMs);
  writer.f64(keyspace.nextSeq);
  writer.u32(keyspace.entries.size);
}

/** One key's record. */
export function writeEntry(writer: Writer, key: string, entry: KvEntry): void {
  writer.latin1(key);
  writer.f64(entry.seq);
  writer.f64(entry.expiresAtMs);
  writeValue(writer, entry.value);
}

/** The expiry-sweep order, after the keys: `seqs` of the keys with a TTL, in that order. */
export function writeVolatile(writer: Writer, seqs: readonly number[]): void {
  writer.u32(seqs.length);
  for (const seq of seqs) writer.f64(seq);
}

/** The sweep order as seqs, now. */
export function volatileSeqs(keyspace: Keyspace): number[] {
  const seqs: number[] = [];
  for (const key of keyspace.volatile) seqs.push(keyspace.entries.get(key)!.seq);
  return seqs;
}

/** The whole store at once (the thread waits; see SnapshotJob for the incremental one). */
export function writeSnapshot(keyspace: Keyspace): Uint8Array {
  const writer = new Writer();
  writeHeader(writer, keyspace);
  for (const [key, entry] of keyspace.entries) writeEntry(writer, key, entry);
  writeVolatile(writer, volatileSeqs(keyspace));
  return writer.finish();
}

function corrupt(message: string): never {
  throw new ApusError("ERR_WIRE_FIELD", `store snapshot is corrupt: ${message}`);
}

class Reader {
  private offset = 0;
  private readonly buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  get left(): number {
    return this.buf.length - this.offset;
  }

  private take(bytes: number): number {
    if (bytes > this.left) corrupt("truncated");
    const at = this.offset;
    this.offset += bytes;
    return at;
  }

  u8(): number {
    return this.buf[this.take(1)]!;
  }

  u32(): number {
    return this.buf.readUInt32LE(this.take(4));
  }

  /** A count of items that each take at least `itemBytesMin`: checked before anything is allocated. */
  count(itemBytesMin: number): number {
    const n = this.u32();
    if (n * itemBytesMin > this.left) corrupt("count beyond the data");
    return n;
  }

  f64(): number {
    return this.buf.readDoubleLE(this.take(8));
  }

  bytes(): Buffer {
    const length = this.u32();
    const at = this.take(length);
    return Buffer.from(this.buf.subarray(at, at + length));
  }

  latin1(): string {
    const length = this.u32();
    const at = this.take(length);
    return this.buf.toString("latin1", at, at + length);
  }
}

function readValue(reader: Reader, version: number): KvValue {
  const type = reader.u8();
  if (type === TYPE_STRING) return reader.bytes();
  if (type === TYPE_STREAM && version >= 3) return KvStream.read(reader, corrupt);
  const n = reader.count(4);
  if (n === 0) corrupt("empty collection");
  if (type === TYPE_HASH) {
    const hash = new KvHash();
    for (let i = 0; i < n; i++) hash.fields.set(reader.latin1(), reader.bytes());
    if (hash.fields.size !== n) corrupt("duplicate hash field");
    return hash;
  }
  if (type === TYPE_LIST) {
    const list = new KvList();
    for (let i = 0; i < n; i++) list.pushBack(reader.bytes());
    return list;
  }
  if (type === TYPE_SET) {
    const set = new KvSet();
    for (let i = 0; i < n; i++) set.members.add(reader.latin1());
    if (set.members.size !== n) corrupt("duplicate set member");
    return set;
  }
  if (type === TYPE_ZSET && version >= 2) {
    const zset = new KvZset();
    let previous: { member: string; score: number } | undefined;
    for (let i = 0; i < n; i++) {
      const member = reader.latin1();
      const score = reader.f64();
      if (Number.isNaN(score) || Object.is(score, -0)) corrupt("bad zset score");
      if (previous !== undefined && !zLess(previous, score, member)) corrupt("zset out of order");
      previous = { member, score };
      zset.appendSorted(member, score);
    }
    if (zset.scores.size !== n) corrupt("duplicate zset member");
    return zset;
  }
  return corrupt(`unknown value type ${type}`);
}

function isSeq(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1;
}

export function readSnapshot(bytes: Uint8Array, limits: KeyspaceLimits): Keyspace {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 32) corrupt("truncated");
  const body = buf.subarray(0, buf.length - 4);
  if (crc32(body) !== buf.readUInt32LE(buf.length - 4)) corrupt("checksum mismatch");
  const reader = new Reader(body);
  if (reader.u32() !== MAGIC) corrupt("bad magic");
  const version = reader.u32();
  if (version < VERSION_MIN || version > VERSION) {
    throw new ApusError(
      "ERR_WIRE_VERSION",
      `store snapshot version ${version}, expected ${VERSION_MIN} to ${VERSION}`,
    );
  }
  const keyspace = new Keyspace(limits);
  keyspace.clockMs = reader.f64();
  keyspace.nextSeq = reader.f64();
  if (!Number.isFinite(keyspace.clockMs) || !isSeq(keyspace.nextSeq)) corrupt("bad header");
  const keyCount = reader.count(4 + 8 + 8 + 1);
  let lastSeq = 0;
  const keysBySeq = new Map<number, string>();
  for (let i = 0; i < keyCount; i++) {
    const key = reader.latin1();
    const seq = reader.f64();
    const expiresAtMs = reader.f64();
    if (!isSeq(seq) || seq <= lastSeq || seq >= keyspace.nextSeq) corrupt("bad key seq");
    if (Number.isNaN(expiresAtMs)) corrupt("bad expiry");
    if (keyspace.entries.has(key)) corrupt("duplicate key");
    lastSeq = seq;
    keyspace.restoreEntry(key, new KvEntry(readValue(reader, version), expiresAtMs, seq));
    keysBySeq.set(seq, key);
  }
  const volatileCount = reader.count(8);
  for (let i = 0; i < volatileCount; i++) {
    const key = keysBySeq.get(reader.f64());
    if (key === undefined || keyspace.volatile.has(key)) corrupt("bad volatile key");
    if (keyspace.entries.get(key)!.expiresAtMs === Number.POSITIVE_INFINITY)
      corrupt("volatile key without expiry");
    keyspace.volatile.add(key);
  }
  let expiring = 0;
  for (const entry of keyspace.entries.values())
    if (entry.expiresAtMs !== Number.POSITIVE_INFINITY) expiring++;
  if (expiring !== keyspace.volatile.size) corrupt("volatile keys missing");
  if (reader.left !== 0) corrupt("trailing bytes");
  return keyspace;
}
