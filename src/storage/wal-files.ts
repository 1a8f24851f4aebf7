import { writevSync } from "node:fs";
import { type FileHandle, open, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { assert } from "../core/index.ts";
import { StorageError } from "./storage-errors.ts";

/**
 * Names of the files in a WAL data directory, and the directory fsync that makes creating,
 * renaming and deleting them durable.
 *
 *   LOCK                        pid of the process that has the directory open (wal-lock.ts)
 *   meta.json                   replicaId, replicaCount, clusterId (wal-meta.ts)
 *   wal-<16 digits>.log         a segment; the digits are the sequence number of its first record
 *   snapshot-<16 digits>.bin    a snapshot; the digits are its slot (wal-snapshot.ts)
 *   *.tmp                       a file being written; left over only by a crash, removed at open
 */
const SEQUENCE_DIGITS = 16;
const SEGMENT_NAME = /^wal-(\d{16})\.log$/;
const SNAPSHOT_NAME = /^snapshot-(\d{16})\.bin$/;
export const TEMP_SUFFIX = ".tmp";

export function segmentFileName(firstSequence: number): string {
  return `wal-${String(firstSequence).padStart(SEQUENCE_DIGITS, "0")}.log`;
}

export function snapshotFileName(slot: number): string {
  return `snapshot-${String(slot).padStart(SEQUENCE_DIGITS, "0")}.bin`;
}

export interface DirListing {
  /** Segments by first sequence, ascending. */
  readonly segments: readonly { readonly firstSequence: number; readonly name: string }[];
  /** Snapshots by slot, ascending. */
  readonly snapshots: readonly { readonly slot: number; readonly name: string }[];
  readonly temps: readonly string[];
}

export async function listDir(dir: string): Promise<DirListing> {
  const segments: { firstSequence: number; name: string }[] = [];
  const snapshots: { slot: number; name: string }[] = [];
  const temps: string[] = [];
  for (const name of await readdir(dir)) {
    const segment = SEGMENT_NAME.exec(name);
    const snapshot = SNAPSHOT_NAME.exec(name);
    if (segment?.[1] !== undefined) segments.push({ firstSequence: Number(segment[1]), name });
    else if (snapshot?.[1] !== undefined) snapshots.push({ slot: Number(snapshot[1]), name });
    else if (name.endsWith(TEMP_SUFFIX)) temps.push(name);
  }
  segments.sort((a, b) => a.firstSequence - b.firstSequence);
  snapshots.sort((a, b) => a.slot - b.slot);
  return { segments, snapshots, temps };
}

/** Make the directory's entries (files created, renamed, deleted) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * What to do when a data directory cannot be trusted, for every ERR_WAL_CORRUPT message. Starting
 * empty is NOT offered: a replica that forgot its promises and votes must not vote again until it
 * has recovered the cluster's state, or two leaders could both be chosen for one slot.
 */
export const DAMAGED_DATA_ADVICE =
  "this replica must not vote on state it cannot trust: restore the data directory from a " +
  "backup and create an empty file named RECOVERING in it, or move the directory aside and " +
  "restart this replica with --initial-cluster-state existing; either way it recovers from " +
  "every other replica before it votes";

/** Wrap an unexpected file-system failure as the operating error the runtime stops on. */
export function ioError(what: string, path: string, cause: unknown): StorageError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StorageError("ERR_WAL_IO", `${what} ${path} failed: ${detail}`, { cause });
}

export function errnoCode(error: unknown): string | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "string")
    return error.code;
  return undefined;
}

/** Write every byte of `buffers` at the file's current position, however many calls it takes. */
export async function writeAll(
  handle: FileHandle,
  buffers: readonly Uint8Array[],
  position?: number,
): Promise<number> {
  let pending = buffers.filter((b) => b.byteLength > 0);
  let total = 0;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    assert(bytesWritten > 0, "writev wrote nothing");
    total += bytesWritten;
    if (at !== undefined) at += bytesWritten;
    pending = dropWritten(pending, bytesWritten);
  }
  return total;
}

/** writeAll on the calling thread, at `position` of the file descriptor `fd`. */
export function writeAllSync(fd: number, buffers: readonly Uint8Array[], position: number): number {
  let pending = buffers.filter((b) => b.byteLength > 0);
  let total = 0;
  while (pending.length > 0) {
    const bytesWritten = writevSync(fd, pending, position + total);
    assert(bytesWritten > 0, "writev wrote nothing");
    total += bytesWritten;
    pending = dropWritten(pending, bytesWritten);
  }
  return total;
}

function dropWritten(buffers: readonly Uint8Array[], written: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = written;
  for (const buffer of buffers) {
    if (skip >= buffer.byteLength) {
      skip -= buffer.byteLength;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}

/** Delete files of `dir` (already gone is fine: a deletion may be replayed after a crash). */
export async function removeFiles(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const path = join(dir, name);
    await unlink(path).catch((error: unknown) => {
      if (errnoCode(error) !== "ENOENT") throw ioError("removing", path, error);
    });
  }
}
