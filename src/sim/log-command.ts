import { LOG_HEADER_BYTES, type LogHeader } from "../workers/log-command.ts";

export { type LogHeader, readLogHeader, writeLogHeader } from "../workers/log-command.ts";

/**
 * The simulator's log command bodies, behind the runtime's header (src/workers/log-command.ts):
 * u32 client | u32 operation | padding.
 */

/** Body bytes that name the client operation: u32 client | u32 operation. */
export const BODY_KEY_BYTES = 8;

/** A new log command with a zero header (the origin fills it, as onRequestRecord does) and `body`. */
export function logCommand(body: Uint8Array): Uint8Array {
  const command = new Uint8Array(LOG_HEADER_BYTES + body.byteLength);
  command.set(body, LOG_HEADER_BYTES);
  return command;
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
