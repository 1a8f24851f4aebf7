import { open, readFile, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StorageError } from "./storage-errors.ts";
import { errnoCode, ioError } from "./wal-files.ts";

const LOCK_FILE = "LOCK";
/** Attempts to take over a stale lock before giving up (another process may race us). */
const LOCK_ATTEMPTS_MAX = 3;

/**
 * Directories this process holds. A LOCK naming our own pid is ours only if listed here;
 * otherwise it is stale, left by an earlier process that had the same pid (common in containers,
 * where the replica is often pid 1 on every start).
 */
const heldByThisProcess = new Set<string>();

/** `dir/LOCK`, created exclusively and holding the owner's pid: one process per data directory. */
export class WalLock {
  private released = false;
  private readonly dir: string;
  private readonly path: string;

  private constructor(dir: string, path: string) {
    this.dir = dir;
    this.path = path;
  }

  static async acquire(dir: string): Promise<WalLock> {
    const key = resolve(dir);
    const path = join(dir, LOCK_FILE);
    for (let attempt = 1; attempt <= LOCK_ATTEMPTS_MAX; attempt++) {
      if (await tryCreate(path)) {
        heldByThisProcess.add(key);
        return new WalLock(key, path);
      }
      const owner = await readOwner(path);
      if (owner !== null && isHeld(owner, key)) {
        throw new StorageError(
          "ERR_WAL_LOCKED",
          `data directory ${dir} is in use by pid ${owner} (${path}); stop that replica first, ` +
            `or, if no replica is running there, delete ${path}`,
        );
      }
      // The owner died without releasing it (or never wrote its pid): take it over.
      await unlink(path).catch((error: unknown) => {
        if (errnoCode(error) !== "ENOENT") throw ioError("removing stale lock", path, error);
      });
    }
    throw new StorageError(
      "ERR_WAL_LOCKED",
      `data directory ${dir} is contended: ${path} keeps reappearing`,
    );
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldByThisProcess.delete(this.dir);
    await unlink(this.path).catch((error: unknown) => {
      if (errnoCode(error) !== "ENOENT") throw ioError("removing lock", this.path, error);
    });
  }
}

async function tryCreate(path: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "wx");
  } catch (error) {
    if (errnoCode(error) === "EEXIST") return false;
    throw ioError("creating lock", path, error);
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
  } finally {
    await handle.close();
  }
  return true;
}

async function readOwner(path: string): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return null;
    throw ioError("reading lock", path, error);
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

function isHeld(pid: number, key: string): boolean {
  if (pid === process.pid) return heldByThisProcess.has(key);
  try {
    process.kill(pid, 0); // signal 0: existence check only
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM"; // alive, owned by another user
  }
}
