/**
 * The log command: what every replica applies, one per client request.
 *
 *   u8 kind | u8 origin replica | u16 reserved | u32 origin incarnation | u64 request id
 *   | u64 floor (every request id <= floor is settled at the origin: answered or given up)
 *   | f64 takenMs (the origin's wall clock when the request arrived; the same in every copy)
 *
 * followed, for kind LOG_KIND_CLIENT (the embedded store), by the command-codec body
 * (src/app/command-codec.ts); for kind LOG_KIND_CONNECTION (a program under --app, whose
 * connections carry state), by the connection prefix and then the body:
 *
 *   u32 connId | u16 connection worker | u8 event (1 data, 2 close, 3 unblock) | u8 reserved
 *
 * which names the client connection the same way on every replica (with the header's origin and
 * incarnation). The connection worker writes the kind and the prefix; it leaves
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
export const LOG_KIND_CONNECTION = 2;

export const CONNECTION_CONN_ID = 0;
export const CONNECTION_WORKER = 4;
export const CONNECTION_EVENT = 6;
export const CONNECTION_PREFIX_BYTES = 8;
export const CONNECTION_EVENT_DATA = 1;
export const CONNECTION_EVENT_CLOSE = 2;
/** The origin's timeout of a blocked command (BLPOP k 5) fired: every copy unblocks it here. */
export const CONNECTION_EVENT_UNBLOCK = 3;

const EVENT_CODES = {
  data: CONNECTION_EVENT_DATA,
  close: CONNECTION_EVENT_CLOSE,
  unblock: CONNECTION_EVENT_UNBLOCK,
} as const;
const EVENT_NAMES = ["", "data", "close", "unblock"] as const;

/** The connection a LOG_KIND_CONNECTION command belongs to (less the header's origin). */
export interface LogConnection {
  readonly worker: number;
  readonly connId: number;
  readonly event: "data" | "close" | "unblock";
}

/** Where the command-codec body of a log command starts, by its kind. */
export function logBodyOffset(command: Uint8Array): number {
  return command[LOG_KIND] === LOG_KIND_CONNECTION
    ? LOG_HEADER_BYTES + CONNECTION_PREFIX_BYTES
    : LOG_HEADER_BYTES;
}

/** Commands in a log command (the body's leading u32), or 0 if it is too short to say. */
export function logCommandCount(command: Uint8Array): number {
  const offset = logBodyOffset(command);
  if (command.byteLength < offset + 4) return 0;
  return new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(
    offset,
    true,
  );
}

/**
 * Mark a log command the connection worker builds as a connection's (program mode), with its
 * prefix. `command` holds LOG_HEADER_BYTES + CONNECTION_PREFIX_BYTES reserved bytes in front.
 */
export function writeConnectionPrefix(command: Uint8Array, connection: LogConnection): void {
  const view = new DataView(command.buffer, command.byteOffset, command.byteLength);
  view.setUint8(LOG_KIND, LOG_KIND_CONNECTION);
  const at = LOG_HEADER_BYTES;
  view.setUint32(at + CONNECTION_CONN_ID, connection.connId, true);
  view.setUint16(at + CONNECTION_WORKER, connection.worker, true);
  view.setUint8(at + CONNECTION_EVENT, EVENT_CODES[connection.event]);
}

/** The connection of a LOG_KIND_CONNECTION command, or null (another kind, or malformed). */
export function readConnectionPrefix(command: Uint8Array): LogConnection | null {
  if (command[LOG_KIND] !== LOG_KIND_CONNECTION) return null;
  if (command.byteLength < LOG_HEADER_BYTES + CONNECTION_PREFIX_BYTES) return null;
  const view = new DataView(command.buffer, command.byteOffset, command.byteLength);
  const at = LOG_HEADER_BYTES;
  const event = EVENT_NAMES[view.getUint8(at + CONNECTION_EVENT)];
  if (event === undefined || event === "") return null;
  return {
    connId: view.getUint32(at + CONNECTION_CONN_ID, true),
    worker: view.getUint16(at + CONNECTION_WORKER, true),
    event,
  };
}

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

/** Fill a client command's header in place (a connection's command keeps its kind). */
export function writeLogHeader(command: Uint8Array, header: LogHeader): void {
  const view = new DataView(command.buffer, command.byteOffset, LOG_HEADER_BYTES);
  if (command[LOG_KIND] !== LOG_KIND_CONNECTION) view.setUint8(LOG_KIND, LOG_KIND_CLIENT);
  view.setUint8(LOG_ORIGIN, header.origin);
  view.setUint32(LOG_INCARNATION, header.incarnation, true);
  view.setBigUint64(LOG_REQUEST_ID, BigInt(header.requestId), true);
  view.setBigUint64(LOG_FLOOR, BigInt(header.floor), true);
  view.setFloat64(LOG_TAKEN_MS, header.takenMs, true);
}

const SAFE_INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** The header of a client log command, or null if it is not one (too short, another kind). */
export function readLogHeader(command: Uint8Array): LogHeader | null {
  if (command.byteLength < LOG_HEADER_BYTES) return null;
  const kind = command[LOG_KIND];
  if (kind !== LOG_KIND_CLIENT && kind !== LOG_KIND_CONNECTION) return null;
  const view = new DataView(command.buffer, command.byteOffset, LOG_HEADER_BYTES);
  const requestId = view.getBigUint64(LOG_REQUEST_ID, true);
  const floor = view.getBigUint64(LOG_FLOOR, true);
  // Ids are safe integers when written; a larger one would be rounded, so it is not a header.
  if (requestId > SAFE_INTEGER_MAX || floor > SAFE_INTEGER_MAX) return null;
  return {
    origin: view.getUint8(LOG_ORIGIN),
    incarnation: view.getUint32(LOG_INCARNATION, true),
    requestId: Number(requestId),
    floor: Number(floor),
    takenMs: view.getFloat64(LOG_TAKEN_MS, true),
  };
}
