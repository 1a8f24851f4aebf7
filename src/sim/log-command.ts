import {
  LOG_FLOOR,
  LOG_HEADER_BYTES,
  LOG_INCARNATION,
  LOG_KIND,
  LOG_KIND_CLIENT,
  LOG_ORIGIN,
  LOG_REQUEST_ID,
} from "../runtime/thread-contracts.ts";

/**
 * The runtime's log command header (src/runtime/thread-contracts.ts), read and written at the
 * runtime's own offsets: u8 kind | u8 origin | u16 reserved | u32 incarnation | u64 request id |
 * u64 floor, then the body. The simulator's body is u32 client | u32 operation | padding.
 */
export interface LogHeader {
  readonly origin: number;
  readonly incarnation: number;
  readonly requestId: number;
  readonly floor: number;
}

/** Body bytes that name the client operation: u32 client | u32 operation. */
export const BODY_KEY_BYTES = 8;

/** A new log command with a zero header (the origin fills it, as onRequestRecord does) and `body`. */
export function logCommand(body: Uint8Array): Uint8Array {
  const command = new Uint8Array(LOG_HEADER_BYTES + body.byteLength);
  command.set(body, LOG_HEADER_BYTES);
  return command;
}

/** Fill the header in place, at the offsets and with the byte order consensus-node.ts uses. */
export function writeLogHeader(command: Uint8Array, header: LogHeader): void {
  const view = new DataView(command.buffer, command.byteOffset, LOG_HEADER_BYTES);
  view.setUint8(LOG_KIND, LOG_KIND_CLIENT);
  view.setUint8(LOG_ORIGIN, header.origin);
  view.setUint32(LOG_INCARNATION, header.incarnation, true);
  view.setBigUint64(LOG_REQUEST_ID, BigInt(header.requestId), true);
  view.setBigUint64(LOG_FLOOR, BigInt(header.floor), true);
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
  };
}

/** One client request, as the client sessions know it: origin, incarnation, request id. */
export function requestKey(
  header: Pick<LogHeader, "origin" | "incarnation" | "requestId">,
): string {
  return `${header.origin}/${header.incarnation}/${header.requestId}`;
}

/** The client operation a body carries: "client:operation". */
export function operationKey(command: Uint8Array): string {
  if (command.byteLength < LOG_HEADER_BYTES + BODY_KEY_BYTES) return `raw:${command.byteLength}`;
  const view = new DataView(command.buffer, command.byteOffset + LOG_HEADER_BYTES, BODY_KEY_BYTES);
  return `${view.getUint32(0, true)}:${view.getUint32(4, true)}`;
}
