import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StorageError } from "./storage-errors.ts";
import { DAMAGED_DATA_ADVICE, errnoCode, fsyncDir, ioError, TEMP_SUFFIX } from "./wal-files.ts";

const META_FILE = "meta.json";
const META_FORMAT = 1;

/** Which replica of which cluster a data directory belongs to: fixed when it is created. */
export interface WalIdentity {
  readonly replicaId: number;
  /**
   * Replicas --peers listed when the directory was created. Written, not compared: the
   * membership lives in the log and may grow or shrink since (src/core/membership.ts).
   */
  readonly replicaCount: number;
  /** Packets and data directories of another cluster id are refused. */
  readonly clusterId: number;
}

const SETTINGS = ["clusterId", "replicaId"] as const;

/**
 * Refuse a data directory created for another replica or cluster: replaying a different replica's
 * promises and votes would break Paxos silently. A new directory gets `meta.json` written.
 */
export async function checkMeta(
  dir: string,
  identity: WalIdentity,
  hasWalFiles: boolean,
  fsync: boolean,
): Promise<void> {
  const path = join(dir, META_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") throw ioError("reading", path, error);
    if (hasWalFiles) {
      throw new StorageError(
        "ERR_WAL_CORRUPT",
        `${path} is missing but ${dir} holds WAL files: restore it if you have it; otherwise ` +
          DAMAGED_DATA_ADVICE,
      );
    }
    await writeMeta(dir, path, identity, fsync);
    return;
  }
  const stored = parseMeta(path, text);
  for (const setting of SETTINGS) {
    if (stored[setting] !== identity[setting]) {
      throw new StorageError(
        "ERR_WAL_MISMATCH",
        `data directory ${dir} was created with ${setting} ${JSON.stringify(stored[setting])}, ` +
          `but this replica was started with ${setting} ${JSON.stringify(identity[setting])}; ` +
          "start it with the settings it was created with, or give it an empty data directory " +
          "to join as a new replica",
      );
    }
  }
}

function parseMeta(path: string, text: string): WalIdentity {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StorageError("ERR_WAL_CORRUPT", `${path} is not valid JSON; restore or remove it`, {
      cause: error,
    });
  }
  if (
    typeof value === "object" &&
    value !== null &&
    "replicaId" in value &&
    typeof value.replicaId === "number" &&
    "replicaCount" in value &&
    typeof value.replicaCount === "number" &&
    "clusterId" in value &&
    typeof value.clusterId === "number"
  ) {
    return {
      replicaId: value.replicaId,
      replicaCount: value.replicaCount,
      clusterId: value.clusterId,
    };
  }
  throw new StorageError(
    "ERR_WAL_CORRUPT",
    `${path} lacks replicaId, replicaCount or clusterId; restore or remove it`,
  );
}

async function writeMeta(
  dir: string,
  path: string,
  identity: WalIdentity,
  fsync: boolean,
): Promise<void> {
  const meta = { format: META_FORMAT, ...identity };
  const temp = path + TEMP_SUFFIX;
  try {
    await writeFile(temp, `${JSON.stringify(meta, null, 2)}\n`, { flush: fsync });
    await rename(temp, path);
    if (fsync) await fsyncDir(dir);
  } catch (error) {
    throw ioError("writing", path, error);
  }
}
