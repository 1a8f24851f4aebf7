/**
 * The log command: what every replica applies, one per client request.
 *
 *   u8 kind | u8 origin replica | u16 reserved | u32 origin incarnation | u64 request id
 *   | u64 floor (every request id <= floor is settled at the origin: answered or given up)
 *   | f64 takenMs (the origin's wall clock when the request arrived; the same in every copy)
 *
 * followed by the command-codec body (src/app/command-codec.ts). The connection worker leaves
 * LOG_HEADER_BYTES of zeros in front of the body it encodes; the consensus worker fills them in
 * (writeLogHeader) and proposes that very buffer. Only the origin replica (id and incarnation)
 * answers the client; every replica executes, once per request id
 * (src/workers/consensus/client-sessions.ts), so the origin may send a request again after a
 * leader change. Both threads use this file: the connection worker reserves the header, the
 * consensus worker writes and reads it.
 */
export const LOG_KIND = 0;
export const LOG_ORIGIN = 1;
export const LOG_INCARNATION = 4;
export const LOG_REQUEST_ID = 8;
export const LOG_FLOOR = 16;
export const LOG_TAKEN_MS = 24;
export const LOG_HEADER_BYTES = 32;
export const LOG_KIND_CLIENT = 1;

export interface LogHeader {
  readonly origin: number;
  readonly incarnation: number;
  readonly requestId: number;
  readonly floor: number;
  /**
   * When the request reached its origin (the origin's wall clock). Every copy carries it, however
   * late it travels: the client sessions tell a late copy of a forgotten session by it.
   */
  readonly takenMs: number;
}

/** Fill a client command's header in place. */
export function writeLogHeader(command: Uint8Array, header: LogHeader): void {
  const view = new DataView(command.buffer, command.byteOffset, LOG_HEADER_BYTES);
  view.setUint8(LOG_KIND, LOG_KIND_CLIENT);
  view.setUint8(LOG_ORIGIN, header.origin);
  view.setUint32(LOG_INCARNATION, header.incarnation, true);
  view.setBigUint64(LOG_REQUEST_ID, BigInt(header.requestId), true);
  view.setBigUint64(LOG_FLOOR, BigInt(header.floor), true);
  view.setFloat64(LOG_TAKEN_MS, header.takenMs, true);
}

/** The header of a client log command, or null if it is not one (too short, another kind). */
export function readLogHeader(command: Uint8Array): LogHeader | null {
  if (command.byteLength < LOG_HEADER_BYTES || command[LOG_KIND] !== LOG_KIND_CLIENT) return null;
  const view = new DataView(command.buffer, command.byteOffset, LOG_HEADER_BYTES);
  return {
    origin: view.getUint8(LOG_ORIGIN),
    incarnation: view.getUint32(LOG_INCARNATION, true),
    requestId: Number(view.getBigUint64(LOG_REQUEST_ID, true)),
    floor: Number(view.getBigUint64(LOG_FLOOR, true)),
    takenMs: view.getFloat64(LOG_TAKEN_MS, true),
  };
}
