/** Stable error codes: callers match on `code`, never on the message text. */
export type ErrorCode =
  | "ERR_ASSERTION"
  | "ERR_INVALID_CONFIG"
  | "ERR_WIRE_TRUNCATED"
  | "ERR_WIRE_VERSION"
  | "ERR_WIRE_TYPE"
  | "ERR_WIRE_FIELD"
  | "ERR_WIRE_LIMIT"
  | "ERR_WIRE_TRAILING"
  // runtime (src/storage, src/transport, src/ring, src/app, src/runtime)
  | "ERR_WAL_CORRUPT"
  | "ERR_WAL_LOCKED"
  | "ERR_WAL_MISMATCH"
  | "ERR_WAL_IO"
  | "ERR_TRANSPORT"
  | "ERR_RING"
  | "ERR_RESP_PROTOCOL"
  | "ERR_NO_LEADER"
  | "ERR_TIMEOUT";

export class ApusError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Programmer errors crash (TigerBeetle style): an assertion is never caught and never disabled.
 * Operating errors (bad packets, peers down) are typed results or counted drops instead.
 */
export function assert(condition: boolean, message = "assertion failed"): asserts condition {
  if (!condition) throw new ApusError("ERR_ASSERTION", message);
}
