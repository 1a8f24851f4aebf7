import { ApusError } from "../core/index.ts";
import { REPLICA_COUNT_MAX } from "../limits.ts";
import type { FsyncObserver } from "./storage.ts";
import type { WalIdentity } from "./wal-meta.ts";

export interface WalOptions extends WalIdentity {
  /** Data directory; created if missing. One replica process per directory (dir/LOCK). */
  readonly dir: string;
  /** A segment rolls over to a new file once it holds this many bytes. */
  readonly segmentBytesMax?: number;
  /** false: write the files but never fdatasync (tests, benchmarks): NOT crash-safe. */
  readonly fsync?: boolean;
  /** Called after each group commit with its write + fdatasync µs and bytes (metrics). */
  readonly onFsync?: FsyncObserver;
  /** Where recovery reports a torn tail it cut off; default process.emitWarning. */
  readonly onWarning?: (message: string) => void;
}

const MIB = 1024 * 1024;

export const WAL_DEFAULTS = {
  segmentBytesMax: 64 * MIB,
  fsync: true,
} as const;

/** Bounds of the settings, checked once in `validateWalOptions`. */
export const WAL_LIMITS = {
  segmentBytesMaxMin: 4096,
  segmentBytesMaxMax: 1024 * MIB,
  clusterIdMax: 0xffff_ffff,
  replicaCountMax: REPLICA_COUNT_MAX,
} as const;

export interface WalSettings extends WalIdentity {
  readonly dir: string;
  readonly segmentBytesMax: number;
  readonly fsync: boolean;
  readonly onFsync: FsyncObserver | null;
  readonly onWarning: (message: string) => void;
}

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

export function validateWalOptions(options: WalOptions): WalSettings {
  const segmentBytesMax = options.segmentBytesMax ?? WAL_DEFAULTS.segmentBytesMax;
  if (typeof options.dir !== "string" || options.dir === "")
    throw invalid("WAL dir must be a non-empty path");
  if (
    !Number.isSafeInteger(segmentBytesMax) ||
    segmentBytesMax < WAL_LIMITS.segmentBytesMaxMin ||
    segmentBytesMax > WAL_LIMITS.segmentBytesMaxMax
  ) {
    throw invalid(
      `segmentBytesMax is ${segmentBytesMax}; it must be an integer from ` +
        `${WAL_LIMITS.segmentBytesMaxMin} to ${WAL_LIMITS.segmentBytesMaxMax}`,
    );
  }
  const { replicaId, replicaCount, clusterId } = options;
  if (
    !Number.isInteger(replicaCount) ||
    replicaCount < 1 ||
    replicaCount > WAL_LIMITS.replicaCountMax
  ) {
    throw invalid(
      `replicaCount is ${replicaCount}; it must be from 1 to ${WAL_LIMITS.replicaCountMax}`,
    );
  }
  // Ids are stable identities up to replicaCountMax, not positions (membership changes).
  if (!Number.isInteger(replicaId) || replicaId < 1 || replicaId > WAL_LIMITS.replicaCountMax) {
    throw invalid(
      `replicaId is ${replicaId}; replica ids run from 1 to ${WAL_LIMITS.replicaCountMax}`,
    );
  }
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > WAL_LIMITS.clusterIdMax) {
    throw invalid(
      `clusterId is ${clusterId}; it must be an integer from 0 to ${WAL_LIMITS.clusterIdMax}`,
    );
  }
  return {
    dir: options.dir,
    replicaId,
    replicaCount,
    clusterId,
    segmentBytesMax,
    fsync: options.fsync ?? WAL_DEFAULTS.fsync,
    onFsync: options.onFsync ?? null,
    onWarning:
      options.onWarning ??
      ((message) => process.emitWarning(message, { code: "APUS_WAL_RECOVERY" })),
  };
}
