import type { Logger } from "pino";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Storage } from "../storage/storage.ts";
import { openWal } from "../storage/wal.ts";
import type { ReplicaConfig } from "./config.ts";

/**
 * The Storage `--durability` asks for: the WAL in `--data-dir` (fsync), or memory only.
 * Logs what recovery found, and any torn tail it cut off, as warnings.
 */
export async function openStorage(
  config: Pick<ReplicaConfig, "id" | "peers" | "dataDir" | "durability" | "clusterId">,
  log: Logger,
): Promise<Storage> {
  if (config.durability === "memory") {
    // The main thread already warned what --durability memory gives up; say it once.
    return new MemoryStorage();
  }
  const wal = await openWal({
    dir: config.dataDir,
    replicaId: config.id,
    replicaCount: config.peers.length,
    clusterId: config.clusterId,
    onWarning: (message) => log.warn(message),
  });
  const { recovered, recoveryReport } = wal;
  log.info(
    {
      dataDir: config.dataDir,
      ...recoveryReport,
      promised: recovered.promised,
      votes: recovered.accepted.length,
      chosenSlot: recovered.chosenSlot,
    },
    "write-ahead log recovered",
  );
  return wal;
}
