/**
 * The peer incarnation: the number every peer frame carries to say which run of this replica
 * sent it (frame.ts). Peers drop frames of an older incarnation than the newest they saw as
 * replays, so it must grow across restarts, or a restarted replica is shut out until its peers
 * restart too.
 *
 * It is max(Date.now() in ms, the last one + 1). With --durability fsync the last one is kept
 * in DATA_DIR/peer-incarnation, written and fsynced before the transport starts: the wall clock
 * alone is not enough, since it can step back across a restart (an NTP correction, a VM restored
 * from a snapshot, a machine whose clock is wrong at boot until NTP syncs), and the file makes the
 * incarnation grow whatever the clock does. With --durability memory the replica keeps nothing on
 * disk by design (the data directory may not even exist), so the clock alone is used: a clock
 * that steps back by more than a restart takes shuts the restarted replica out (its peers count
 * its frames as "replay" drops) until the peers restart; run such replicas with a clock that
 * only slews.
 *
 * This is not the client-session incarnation (ConsensusWorkerData.incarnation, random): that one
 * only has to differ between runs, this one has to grow.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { ApusError, assert } from "../core/errors.ts";
import type { ReplicaConfig } from "./config.ts";

export const PEER_INCARNATION_FILE = "peer-incarnation";
/** Written first, then renamed over the file; the WAL removes *.tmp leftovers of a crash at open. */
const TEMP_SUFFIX = ".tmp";

/** The next incarnation, persisted first when the replica persists anything. */
export function nextPeerIncarnation(
  config: Pick<ReplicaConfig, "durability" | "dataDir">,
  nowMs: number = Date.now(),
): number {
  if (config.durability === "memory") return clockIncarnation(nowMs, 0);
  const path = join(config.dataDir, PEER_INCARNATION_FILE);
  const next = clockIncarnation(nowMs, readLast(path));
  writeDurably(config.dataDir, path, next);
  return next;
}

function clockIncarnation(nowMs: number, last: number): number {
  const next = Math.max(Math.floor(nowMs), last + 1);
  assert(Number.isSafeInteger(next) && next >= 1, "peer incarnation is a safe integer >= 1");
  return next;
}

/** The persisted incarnation; 0 when there is none yet. */
function readLast(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, "latin1");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw new ApusError("ERR_INVALID_CONFIG", `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value))
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `${path} holds ${JSON.stringify(text.slice(0, 40))}, not an incarnation; delete it and restart (it is made again from the clock)`,
    );
  return value;
}

/** Write to a temp file, fsync, rename over `path`, fsync the directory. */
function writeDurably(dir: string, path: string, value: number): void {
  try {
    mkdirSync(dir, { recursive: true });
    const temp = `${path}${TEMP_SUFFIX}`;
    const fd = openSync(temp, "w", 0o600);
    try {
      writeSync(fd, `${value}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    const dirFd = openSync(dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch (error) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `cannot write ${path}: ${(error as Error).message}; check --data-dir`,
      {
        cause: error,
      },
    );
  }
}
