export * from "./durable-image.ts";
export * from "./memory-storage.ts";
export * from "./storage.ts";
export * from "./storage-errors.ts";
export * from "./wal.ts";
export { WAL_DEFAULTS, WAL_LIMITS } from "./wal-config.ts";
export type { WalIdentity } from "./wal-meta.ts";
export { WAL_RECORD_LIMITS } from "./wal-record.ts";
