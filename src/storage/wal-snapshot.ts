import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import {
  assert,
  decodeMembershipHistory,
  encodeMembershipHistory,
  type Snapshot,
} from "../core/index.ts";
import { StorageError } from "./storage-errors.ts";
import {
  DAMAGED_DATA_ADVICE,
  fsyncDir,
  ioError,
  snapshotFileName,
  TEMP_SUFFIX,
  writeAll,
} from "./wal-files.ts";

/**
 * A snapshot file, `snapshot-<slot>.bin`, little-endian:
 *
 *   u32 magic "ASN2" | u32 crc32 (of everything after it) | u64 slot | u32 dataLength | data
 *   | membership history (the rest of the file, in the wire encoding: the configurations that
 *   govern the slots above the snapshot)
 *
 * A file with magic "ASN1" (written before membership changes existed) has no history: the
 * bootstrap configuration governs.
 *
 * Written to a temp name, fsynced, renamed, and the directory fsynced, so a file under its final
 * name is always complete: one that fails its checks is damage, not a crash, and is refused.
 */
const MAGIC_V1 = 0x314e5341; // "ASN1" read as a little-endian u32
const MAGIC = 0x324e5341; // "ASN2"
const HEADER_SIZE = 20;
const MAGIC_OFFSET = 0;
const CRC_OFFSET = 4;
const SLOT_OFFSET = 8;
const LENGTH_OFFSET = 16;
const TWO_32 = 4294967296;

export async function writeSnapshotFile(
  dir: string,
  snapshot: Snapshot,
  fsync: boolean,
): Promise<void> {
  assert(Number.isSafeInteger(snapshot.slot) && snapshot.slot >= 1, "snapshot slot out of range");
  const header = new Uint8Array(HEADER_SIZE);
  const view = new DataView(header.buffer);
  view.setUint32(MAGIC_OFFSET, MAGIC, true);
  view.setUint32(SLOT_OFFSET, snapshot.slot % TWO_32, true);
  view.setUint32(SLOT_OFFSET + 4, Math.floor(snapshot.slot / TWO_32), true);
  view.setUint32(LENGTH_OFFSET, snapshot.data.byteLength, true);
  const history = encodeMembershipHistory(snapshot.membership ?? []);
  const crc = crc32(history, crc32(snapshot.data, crc32(header.subarray(SLOT_OFFSET))));
  view.setUint32(CRC_OFFSET, crc, true);

  const path = join(dir, snapshotFileName(snapshot.slot));
  const temp = path + TEMP_SUFFIX;
  try {
    const handle = await open(temp, "w");
    try {
      await writeAll(handle, [header, snapshot.data, history]);
      if (fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    if (fsync) await fsyncDir(dir);
  } catch (error) {
    throw ioError("writing snapshot", path, error);
  }
}

/** Read and verify a snapshot file. `data` is a view of the bytes read (nothing else shares them). */
export async function readSnapshotFile(dir: string, name: string, slot: number): Promise<Snapshot> {
  const path = join(dir, name);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw ioError("reading snapshot", path, error);
  }
  const damaged = (what: string): StorageError =>
    new StorageError(
      "ERR_WAL_CORRUPT",
      `${path}: damaged snapshot (${what}); ${DAMAGED_DATA_ADVICE}`,
    );
  if (bytes.byteLength < HEADER_SIZE)
    throw damaged(`${bytes.byteLength} bytes, shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(MAGIC_OFFSET, true);
  if (magic !== MAGIC && magic !== MAGIC_V1) throw damaged("bad magic number");
  const length = view.getUint32(LENGTH_OFFSET, true);
  const room = bytes.byteLength - HEADER_SIZE;
  if (magic === MAGIC_V1 ? length !== room : length > room) {
    throw damaged(`header says ${length} data bytes, file has ${room}`);
  }
  if (crc32(bytes.subarray(SLOT_OFFSET)) !== view.getUint32(CRC_OFFSET, true)) {
    throw damaged("checksum mismatch");
  }
  const storedSlot =
    view.getUint32(SLOT_OFFSET + 4, true) * TWO_32 + view.getUint32(SLOT_OFFSET, true);
  if (storedSlot !== slot) throw damaged(`holds slot ${storedSlot}, its name says ${slot}`);
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset + HEADER_SIZE, length);
  if (magic === MAGIC_V1) return { slot, data };
  const history = decodeMembershipHistory(bytes.subarray(HEADER_SIZE + length));
  if (!history.ok) throw damaged(`membership history: ${history.reason}`);
  return history.history.length > 0 ? { slot, data, membership: history.history } : { slot, data };
}
