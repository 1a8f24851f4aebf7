/**
 * Stable error codes: callers match on `code`, never on the message text. Each layer declares the
 * codes it throws, in a table beside its code (`STORAGE_ERROR_CODES` in src/storage/storage-errors.ts,
 * `TRANSPORT_ERROR_CODES`, `RING_ERROR_CODES`, …), and throws them through its own subclass of
 * ApusError, so a layer cannot throw another's code. The core's codes are the protocol's, plus the
 * two every layer may throw: ERR_ASSERTION and ERR_INVALID_CONFIG. test/errors.test.ts walks the
 * tables: every declared code is thrown somewhere, every thrown code is declared, none twice.
 */
export const CORE_ERROR_CODES = [
  "ERR_ASSERTION",
  "ERR_INVALID_CONFIG",
  "ERR_WIRE_TRUNCATED",
  "ERR_WIRE_VERSION",
  "ERR_WIRE_TYPE",
  "ERR_WIRE_FIELD",
  "ERR_WIRE_LIMIT",
  "ERR_WIRE_TRAILING",
] as const;

export type ErrorCode = (typeof CORE_ERROR_CODES)[number];

/**
 * The one error class of apus-smr. `new ApusError(code, …)` takes a core code; a layer's subclass
 * (`class StorageError extends ApusError<StorageErrorCode> {}`) takes that layer's codes.
 */
export class ApusError<Code extends string = ErrorCode> extends Error {
  readonly code: Code;
  constructor(code: NoInfer<Code>, message: string, options?: ErrorOptions) {
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
