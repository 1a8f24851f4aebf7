/** Shared by shm-transport.test.ts and its worker thread (which must not be imported). */
import { crc32 } from "node:zlib";
import type { ShmFabricShared } from "../../src/transport/shm-transport.ts";

export interface PeerData {
  readonly id: number;
  readonly fabric: ShmFabricShared;
  readonly messageCount: number;
  readonly sizes: readonly number[];
}

export interface PeerReport {
  readonly id: number;
  /** received[from - 1]: messages delivered from that replica. */
  readonly received: number[];
  readonly errors: string[];
  readonly messagesSent: number;
  readonly dropped: number;
}

/** u32 seq | u32 crc32 of the rest | filler */
export const MESSAGE_HEADER_BYTES = 8;
export function makeMessage(from: number, seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(size, MESSAGE_HEADER_BYTES));
  for (let i = MESSAGE_HEADER_BYTES; i < bytes.length; i++) bytes[i] = (from * 31 + seq + i) & 0xff;
  const view = new DataView(bytes.buffer);
  view.setUint32(0, seq, true);
  view.setUint32(4, crc32(bytes.subarray(MESSAGE_HEADER_BYTES)), true);
  return bytes;
}
