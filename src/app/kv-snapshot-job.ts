import { crc32 } from "node:zlib";
import { assert } from "../core/errors.ts";
import type { Keyspace, KvEntry } from "./kv-keyspace.ts";
import { volatileSeqs, Writer, writeEntry, writeHeader, writeVolatile } from "./kv-snapshot.ts";

/** Bytes per piece of the image: a full piece is sealed and a new one begun (no big copies). */
const PIECE_BYTES = 8 * 1024 * 1024;
/** A piece's buffer, allocated once: room for the last entry that crosses PIECE_BYTES. */
const PIECE_CAPACITY = PIECE_BYTES + 1024 * 1024;
/** Bytes copied into the final image per step while assembling it. */
const ASSEMBLE_BYTES_PER_CHECK = 8 * 1024 * 1024;

/**
 * A snapshot of the embedded store taken a piece at a time while the store goes on applying the
 * log (copy-on-write at key granularity), so that a large store does not stop the consensus
 * thread for as long as serializing it takes (about 1.5 s per million 100-byte keys on the 2-core
 * VM: longer than an election timeout).
 *
 * What the snapshot holds is fixed at the start: the header, the expiry-sweep order, and every
 * entry whose insertion number (seq) is below the next one (entries are kept in seq order, and
 * a key inserted later, or deleted and inserted again, gets a higher seq). step() walks the live
 * map in that order. An entry the store is about to change or remove before the walk reaches it
 * (Keyspace.lookup, setExpiry and remove call touch(): every change to a stored value goes
 * through one of them, during a write) is serialized at once, as it still is, and written at its
 * place in the order when the walk gets there, or passes where it was. Entry objects are never
 * reused for another key (a renamed key gets a new one), so the key an entry is looked up under
 * is its key at the start. The result is byte for byte what writeSnapshot would have written at
 * the start: equal stores still give equal bytes (test/app/kv-snapshot-job.test.ts).
 *
 * The image is built in pieces of PIECE_BYTES and assembled into one buffer a few megabytes per
 * step at the end, after `prefix` (the caller's header: the client sessions), so no single step
 * copies the whole image.
 */
export class SnapshotJob {
  private readonly keyspace: Keyspace;
  /** Entries with a lower seq belong to the snapshot. */
  private readonly seqLimit: number;
  /** The seq of the last entry the walk wrote: entries at or below it are done. */
  private walkedSeq = 0;
  private readonly walk: Iterator<[string, KvEntry]>;
  private readonly sweepOrder: number[];
  /** Entries serialized ahead of the walk, by seq, and their seqs in ascending order. */
  private readonly early = new Map<number, Uint8Array>();
  private readonly earlySeqs: number[] = [];
  private readonly prefix: Uint8Array;
  private writer = new Writer(PIECE_CAPACITY);
  private readonly pieces: Uint8Array[] = [];
  private crc = 0;
  private phase: "walk" | "assemble" | "done" = "walk";
  private image: Buffer | null = null;
  private assembled = 0;
  private assembledBytes = 0;
  /** Entries serialized ahead of the walk because a write was about to change them. */
  earlyCount = 0;

  constructor(keyspace: Keyspace, prefix: Uint8Array = new Uint8Array(0)) {
    assert(keyspace.snapshotJob === null, "one snapshot job at a time");
    this.keyspace = keyspace;
    this.prefix = prefix;
    this.seqLimit = keyspace.nextSeq;
    this.sweepOrder = volatileSeqs(keyspace);
    writeHeader(this.writer, keyspace);
    this.walk = keyspace.entries[Symbol.iterator]();
    keyspace.snapshotJob = this;
  }

  get done(): boolean {
    return this.phase === "done";
  }

  /** `entry` (stored under `key`) is about to be changed or removed: serialize it now if pending. */
  touch(key: string, entry: KvEntry): void {
    if (this.phase !== "walk") return;
    const seq = entry.seq;
    if (seq >= this.seqLimit || seq <= this.walkedSeq || this.early.has(seq)) return;
    const writer = new Writer(256);
    writeEntry(writer, key, entry);
    this.early.set(seq, writer.view().slice());
    let i = this.earlySeqs.length;
    while (i > 0 && this.earlySeqs[i - 1]! > seq) i--;
    this.earlySeqs.splice(i, 0, seq);
    this.earlyCount++;
  }

  /** Work for about `budgetMs`; true once the snapshot is complete. */
  step(budgetMs: number): boolean {
    const deadline = performance.now() + budgetMs;
    while (this.phase === "walk") {
      for (let n = 0; n < 256 && this.phase === "walk"; n++) this.walkOne();
      if (performance.now() >= deadline) return false;
    }
    while (this.phase === "assemble") {
      this.assembleSome();
      if (this.phase === "assemble" && performance.now() >= deadline) return false;
    }
    return true;
  }

  /** Finish now (the store is about to be cleared, or the caller cannot wait). */
  finish(): Uint8Array {
    this.step(Number.POSITIVE_INFINITY);
    return this.bytes;
  }

  /** `prefix` followed by the snapshot, once done. */
  get bytes(): Uint8Array {
    assert(this.phase === "done" && this.image !== null, "snapshot job not finished");
    return this.image;
  }

  private walkOne(): void {
    const next = this.walk.next();
    if (next.done === true || next.value[1].seq >= this.seqLimit) {
      this.writeEarlyBelow(Number.POSITIVE_INFINITY); // removed after being copied
      writeVolatile(this.writer, this.sweepOrder);
      this.sealPiece();
      const crc = Buffer.allocUnsafe(4);
      crc.writeUInt32LE(this.crc >>> 0, 0);
      this.pieces.push(crc);
      this.keyspace.snapshotJob = null;
      this.phase = "assemble";
      return;
    }
    const [key, entry] = next.value;
    this.writeEarlyBelow(entry.seq);
    const early = this.early.get(entry.seq);
    if (early !== undefined) {
      this.early.delete(entry.seq);
      this.earlySeqs.shift();
      this.writer.raw(early);
    } else writeEntry(this.writer, key, entry);
    this.walkedSeq = entry.seq;
    if (this.writer.length >= PIECE_BYTES) this.sealPiece();
  }

  /** Entries copied ahead of the walk and removed since, with a seq below `seq`: their turn. */
  private writeEarlyBelow(seq: number): void {
    while (this.earlySeqs.length > 0 && this.earlySeqs[0]! < seq) {
      const first = this.earlySeqs.shift()!;
      this.writer.raw(this.early.get(first)!);
      this.early.delete(first);
      this.walkedSeq = first;
    }
  }

  private sealPiece(): void {
    const piece = this.writer.view();
    this.crc = crc32(piece, this.crc);
    this.pieces.push(piece);
    this.writer = new Writer(PIECE_CAPACITY);
  }

  private assembleSome(): void {
    if (this.image === null) {
      let total = this.prefix.byteLength;
      for (const piece of this.pieces) total += piece.byteLength;
      this.image = Buffer.allocUnsafe(total);
      this.image.set(this.prefix, 0);
      this.assembledBytes = this.prefix.byteLength;
    }
    let copied = 0;
    while (this.assembled < this.pieces.length && copied < ASSEMBLE_BYTES_PER_CHECK) {
      const piece = this.pieces[this.assembled]!;
      this.image.set(piece, this.assembledBytes);
      this.assembledBytes += piece.byteLength;
      copied += piece.byteLength;
      this.pieces[this.assembled++] = new Uint8Array(0);
    }
    if (this.assembled === this.pieces.length) this.phase = "done";
  }
}
