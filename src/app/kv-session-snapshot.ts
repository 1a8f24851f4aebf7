/**
 * The embedded store's snapshot with its sessions (kv-sessions.ts): the store's own snapshot
 * (kv-databases.ts) after the sessions' state, which is small (connections, transactions,
 * watched keys, subscriptions, blocked commands):
 *
 *   u32 MAGIC "APSE" | u32 VERSION | u32 length | the sessions' state as JSON (UTF-8; binary
 *   strings as latin1 code points, exact both ways) | the store's snapshot
 *
 * A snapshot that begins with the store's own magic has no sessions (taken before sessions
 * existed): it restores with none.
 */
import { ApusError } from "../core/errors.ts";
import type { SessionsState } from "./kv-sessions.ts";

const MAGIC = 0x45535041; // "APSE"
const VERSION = 1;

/** The sessions' part, to go in front of the store's snapshot. */
export function encodeSessions(state: SessionsState): Uint8Array {
  const json = Buffer.from(JSON.stringify(state), "utf8");
  const out = Buffer.allocUnsafe(12 + json.byteLength);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(VERSION, 4);
  out.writeUInt32LE(json.byteLength, 8);
  out.set(json, 12);
  return out;
}

/** The sessions (null when the snapshot has none) and where the store's snapshot begins. */
export function decodeSessions(bytes: Uint8Array): {
  state: SessionsState | null;
  rest: Uint8Array;
} {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 12 || view.getUint32(0, true) !== MAGIC)
    return { state: null, rest: bytes };
  const version = view.getUint32(4, true);
  if (version !== VERSION)
    throw new ApusError(
      "ERR_WIRE_VERSION",
      `store sessions version ${version}, expected ${VERSION}`,
    );
  const length = view.getUint32(8, true);
  if (length > bytes.byteLength - 12)
    throw new ApusError("ERR_WIRE_FIELD", "store snapshot is corrupt: truncated sessions");
  let state: SessionsState;
  try {
    state = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 12, length).toString("utf8"));
  } catch (error) {
    throw new ApusError("ERR_WIRE_FIELD", `store snapshot is corrupt: sessions: ${String(error)}`);
  }
  if (typeof state !== "object" || state === null || !Array.isArray(state.sessions))
    throw new ApusError("ERR_WIRE_FIELD", "store snapshot is corrupt: sessions");
  return { state, rest: bytes.subarray(12 + length) };
}
