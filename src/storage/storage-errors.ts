import { ApusError } from "../core/errors.ts";

/** The codes the storage layer throws (the WAL and its directory). */
export const STORAGE_ERROR_CODES = [
  /** A record, snapshot or meta file is damaged where a crash cannot explain it. */
  "ERR_WAL_CORRUPT",
  /** Another process holds the data directory. */
  "ERR_WAL_LOCKED",
  /** The directory belongs to another cluster or replica. */
  "ERR_WAL_MISMATCH",
  /** A read, write or fsync failed: the replica cannot persist and must stop. */
  "ERR_WAL_IO",
] as const;

export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

export class StorageError extends ApusError<StorageErrorCode> {}
