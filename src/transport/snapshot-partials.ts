/**
 * Where the snapshot stream's receiver keeps what it has received of each peer's transfer, so a
 * break (a reset connection, a restarted sender, a restarted receiver with a data directory)
 * resumes at the offset held instead of 0. At most one transfer per peer: a transfer of another
 * identity from the same peer replaces it.
 *
 * A transfer is identified by (sender id, snapshot slot, total bytes, SHA-256 of all its bytes).
 * The bytes are only trusted once whole and their digest checked (snapshot-receiver.ts); a
 * partial file torn by a crash is caught there (the receiver then starts again from 0).
 *
 * On disk (with a data directory): `<dataDir>/stream-partials/from-<id>.bin`, the bytes held so
 * far (its length is the offset), and `from-<id>.json`, the identity. No fsync: a partial lost
 * to a power cut costs a transfer from 0, never a wrong state. In memory: the chunks received,
 * up to a limit (--snapshot-memory-max-bytes), since nothing else bounds them.
 *
 * On disk, an OFFER is refused (PartialStore.refusal) when what it still needs is more than the
 * free space of the data directory's filesystem less PARTIALS_DISK_RESERVE_BYTES: the WAL lives
 * there, and a replica whose WAL write fails stops, so a snapshot (an honest large one, or one
 * offered by a holder of the cluster key) must never take the WAL's room. And read() assembles
 * the whole message in memory to hand it to the core, so no transfer larger than
 * DirectoryPartials.assemblyBytesMax (the host's memory) is taken at all.
 */

import { constants } from "node:buffer";
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { assert } from "../core/errors.ts";
import { STREAM_HEAD_BYTES_MAX } from "./snapshot-stream-frame.ts";

export interface TransferIdentity {
  readonly from: number;
  readonly slot: number;
  readonly totalBytes: number;
  /** SHA-256 of all the bytes, as the OFFER said. */
  readonly digest: Buffer;
}

export function sameIdentity(a: TransferIdentity, b: TransferIdentity): boolean {
  return (
    a.from === b.from &&
    a.slot === b.slot &&
    a.totalBytes === b.totalBytes &&
    a.digest.equals(b.digest)
  );
}

export interface PartialStore {
  /**
   * Begin or resume `identity`: the bytes already held of it (0 for a new one). A partial of
   * another identity from the same peer is thrown away. Throws on a disk error.
   */
  open(identity: TransferIdentity): number;
  /** Append bytes to `from`'s open transfer. Throws on a disk error (ENOSPC...). */
  append(from: number, data: Uint8Array): void;
  /** Bytes held of `from`'s open transfer; 0 if none. */
  held(from: number): number;
  /**
   * `head` followed by all the bytes of `from`'s transfer, once held whole (read in pieces, off
   * the loop's back).
   */
  read(from: number, head: Uint8Array): Promise<Buffer>;
  /** Forget `from`'s transfer and its bytes. */
  discard(from: number): void;
  /**
   * Why an OFFER of `identity` cannot be held (too large for the memory limit, for this host's
   * memory, or for the free disk space), saying what to do; null: it can be.
   */
  refusal(identity: TransferIdentity): string | null;
  /**
   * At start: throw away the partials of senders that are not `isPeer`, and those not written
   * for PARTIALS_ABANDONED_MS (no sender resumes them), so they do not stay on disk forever.
   * Returns how many were thrown away. Throws on a disk error.
   */
  prune(isPeer: (from: number) => boolean): number;
}

const MIB = 1024 * 1024;

/** Partials in memory (no data directory), at most `totalBytesMax` bytes per transfer. */
export class MemoryPartials implements PartialStore {
  readonly totalBytesMax: number;
  private readonly transfers = new Map<
    number,
    { identity: TransferIdentity; chunks: Buffer[]; held: number }
  >();

  constructor(totalBytesMax: number) {
    assert(Number.isSafeInteger(totalBytesMax) && totalBytesMax >= 1, "totalBytesMax");
    this.totalBytesMax = totalBytesMax;
  }

  open(identity: TransferIdentity): number {
    assert(identity.totalBytes <= this.totalBytesMax, "offer over the memory limit");
    const held = this.transfers.get(identity.from);
    if (held !== undefined && sameIdentity(held.identity, identity)) return held.held;
    this.transfers.set(identity.from, { identity, chunks: [], held: 0 });
    return 0;
  }

  append(from: number, data: Uint8Array): void {
    const transfer = this.transfers.get(from);
    assert(transfer !== undefined, "append without an open transfer");
    assert(transfer.held + data.byteLength <= transfer.identity.totalBytes, "append past the end");
    transfer.chunks.push(Buffer.from(data));
    transfer.held += data.byteLength;
  }

  held(from: number): number {
    return this.transfers.get(from)?.held ?? 0;
  }

  async read(from: number, head: Uint8Array): Promise<Buffer> {
    const transfer = this.transfers.get(from);
    assert(transfer !== undefined && transfer.held === transfer.identity.totalBytes, "not whole");
    return Buffer.concat([head, ...transfer.chunks], head.byteLength + transfer.held);
  }

  refusal(identity: TransferIdentity): string | null {
    if (identity.totalBytes <= this.totalBytesMax) return null;
    return `a snapshot of ${(identity.totalBytes / MIB).toFixed(1)} MiB is over --snapshot-memory-max-bytes (${(this.totalBytesMax / MIB).toFixed(1)} MiB): raise it, or run with a data directory (--durability fsync)`;
  }

  discard(from: number): void {
    this.transfers.delete(from);
  }

  prune(): number {
    return 0; // nothing outlives the process
  }
}

/** The directory of partials under a data directory. */
export const PARTIALS_DIR = "stream-partials";
/** Bytes read per step when a whole transfer is read back. */
const READ_PIECE_BYTES = 64 * 1024 * 1024;
/**
 * Free space left on the data directory's filesystem after any partial: room for the WAL and the
 * snapshots this replica writes itself (see the comment at the top).
 */
export const PARTIALS_DISK_RESERVE_BYTES = 1024 * 1024 * 1024;
/**
 * A partial on disk not written for this long is thrown away at start (DirectoryPartials.prune):
 * its sender gave it up long ago (SNAPSHOT_GIVE_UP_MS), and the core has moved on to a newer
 * snapshot whose transfer would replace it anyway.
 */
export const PARTIALS_ABANDONED_MS = 24 * 60 * 60 * 1000;
const PARTIAL_FILE = /^from-(\d+)\.(bin|json)$/;

interface OnDisk {
  readonly identity: TransferIdentity;
  fd: number;
  held: number;
}

/** Partials as files under `<dataDir>/stream-partials`, within the free disk space less a reserve. */
export class DirectoryPartials implements PartialStore {
  /**
   * Largest transfer taken: read() assembles it in memory (as the core's message), so no larger
   * than a Buffer may be, nor than this host's memory.
   */
  readonly assemblyBytesMax = Math.min(constants.MAX_LENGTH - STREAM_HEAD_BYTES_MAX, totalmem());
  private readonly dir: string;
  private readonly open_ = new Map<number, OnDisk>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, PARTIALS_DIR);
    mkdirSync(this.dir, { recursive: true });
  }

  private paths(from: number): { bin: string; meta: string } {
    return { bin: join(this.dir, `from-${from}.bin`), meta: join(this.dir, `from-${from}.json`) };
  }

  open(identity: TransferIdentity): number {
    const current = this.open_.get(identity.from);
    if (current !== undefined && sameIdentity(current.identity, identity)) return current.held;
    this.close(identity.from);
    const { bin, meta } = this.paths(identity.from);
    if (this.storedIdentityIs(meta, identity)) {
      const fd = openSync(bin, "a");
      const held = fstatSync(fd).size;
      if (held <= identity.totalBytes) {
        this.open_.set(identity.from, { identity, fd, held });
        return held;
      }
      closeSync(fd);
    }
    rmSync(bin, { force: true });
    writeFileSync(
      meta,
      JSON.stringify({
        from: identity.from,
        slot: identity.slot,
        totalBytes: identity.totalBytes,
        digest: identity.digest.toString("hex"),
      }),
    );
    const fd = openSync(bin, "w");
    this.open_.set(identity.from, { identity, fd, held: 0 });
    return 0;
  }

  refusal(identity: TransferIdentity): string | null {
    const size = `a snapshot of ${(identity.totalBytes / MIB).toFixed(1)} MiB`;
    const needed = identity.totalBytes - this.heldOf(identity);
    const stats = statfsSync(this.dir);
    const free = stats.bavail * stats.bsize - PARTIALS_DISK_RESERVE_BYTES;
    // A transfer held whole writes nothing more: taken even on a disk short of the reserve.
    if (needed > 0 && needed > free)
      return `${size} needs ${(needed / MIB).toFixed(1)} MiB more on the disk of ${this.dir}, which has ${(Math.max(free, 0) / MIB).toFixed(1)} MiB free beyond the ${PARTIALS_DISK_RESERVE_BYTES / MIB} MiB kept for the WAL: free space there`;
    if (identity.totalBytes > this.assemblyBytesMax)
      return `${size} is more than this host's memory (${(this.assemblyBytesMax / MIB).toFixed(1)} MiB) to assemble it in: give the replica more memory`;
    return null;
  }

  /** Bytes held of `identity`: open, or on disk from before a restart; 0 for another one. */
  private heldOf(identity: TransferIdentity): number {
    const current = this.open_.get(identity.from);
    if (current !== undefined) return sameIdentity(current.identity, identity) ? current.held : 0;
    const { bin, meta } = this.paths(identity.from);
    if (!this.storedIdentityIs(meta, identity)) return 0;
    try {
      return Math.min(statSync(bin).size, identity.totalBytes);
    } catch {
      return 0;
    }
  }

  prune(isPeer: (from: number) => boolean): number {
    const oldestMs = Date.now() - PARTIALS_ABANDONED_MS;
    const senders = new Map<number, number>(); // sender → newest mtime of its files
    for (const name of readdirSync(this.dir)) {
      const match = PARTIAL_FILE.exec(name);
      if (match === null) continue;
      const from = Number(match[1]);
      const mtimeMs = statSync(join(this.dir, name)).mtimeMs;
      senders.set(from, Math.max(senders.get(from) ?? 0, mtimeMs));
    }
    let pruned = 0;
    for (const [from, mtimeMs] of senders) {
      if (isPeer(from) && mtimeMs >= oldestMs) continue;
      this.discard(from);
      pruned++;
    }
    return pruned;
  }

  private storedIdentityIs(meta: string, identity: TransferIdentity): boolean {
    try {
      const stored = JSON.parse(readFileSync(meta, "utf8")) as Record<string, unknown>;
      return (
        stored.from === identity.from &&
        stored.slot === identity.slot &&
        stored.totalBytes === identity.totalBytes &&
        stored.digest === identity.digest.toString("hex")
      );
    } catch {
      return false; // none, or unreadable: start again
    }
  }

  append(from: number, data: Uint8Array): void {
    const transfer = this.open_.get(from);
    assert(transfer !== undefined, "append without an open transfer");
    assert(transfer.held + data.byteLength <= transfer.identity.totalBytes, "append past the end");
    let written = 0;
    while (written < data.byteLength)
      written += writeSync(transfer.fd, data, written, data.byteLength - written);
    transfer.held += data.byteLength;
  }

  held(from: number): number {
    return this.open_.get(from)?.held ?? 0;
  }

  async read(from: number, head: Uint8Array): Promise<Buffer> {
    const transfer = this.open_.get(from);
    assert(transfer !== undefined && transfer.held === transfer.identity.totalBytes, "not whole");
    const out = Buffer.allocUnsafe(head.byteLength + transfer.held);
    out.set(head, 0);
    const file = await open(this.paths(from).bin, "r");
    try {
      let at = head.byteLength;
      while (at < out.byteLength) {
        const length = Math.min(READ_PIECE_BYTES, out.byteLength - at);
        const { bytesRead } = await file.read(out, at, length, at - head.byteLength);
        if (bytesRead === 0) throw new Error(`partial transfer from ${from} is shorter than held`);
        at += bytesRead;
      }
    } finally {
      await file.close();
    }
    return out;
  }

  discard(from: number): void {
    this.close(from);
    const { bin, meta } = this.paths(from);
    rmSync(bin, { force: true });
    rmSync(meta, { force: true });
  }

  private close(from: number): void {
    const transfer = this.open_.get(from);
    if (transfer === undefined) return;
    this.open_.delete(from); // forgotten even if closing fails
    closeSync(transfer.fd);
  }
}
