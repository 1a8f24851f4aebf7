import { closeSync, existsSync, fsyncSync, openSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ioError } from "./wal-files.ts";

/**
 * A file in the data directory that says "this replica's state cannot be trusted yet: recover
 * from every other replica before voting". Written (and made durable) before a recovery persists
 * anything, removed only once the batch that completes it is durable. A recovery that crashes
 * half-way leaves a directory that is no longer empty, so without the marker the next start
 * would vote on a state that has forgotten its promise. An operator who restores the directory
 * from a backup (a stale state) creates it by hand: `touch DATA_DIR/RECOVERING`.
 *
 * Synchronous: it happens once per recovery, before the consensus worker proposes anything.
 */
export const RECOVERY_MARKER_FILE = "RECOVERING";

export function hasRecoveryMarker(dir: string): boolean {
  return existsSync(join(dir, RECOVERY_MARKER_FILE));
}

export function setRecoveryMarker(dir: string): void {
  const path = join(dir, RECOVERY_MARKER_FILE);
  try {
    writeFileSync(path, "recovering from the other replicas; do not remove by hand\n", {
      flush: true,
    });
    syncDir(dir);
  } catch (error) {
    throw ioError("writing", path, error);
  }
}

export function clearRecoveryMarker(dir: string): void {
  const path = join(dir, RECOVERY_MARKER_FILE);
  try {
    unlinkSync(path);
    syncDir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // removed already
    throw ioError("removing", path, error);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
