import { ApusError } from "../core/errors.ts";

/** The codes the shared-memory rings and doorbells throw. */
export const RING_ERROR_CODES = [
  /** A ring or doorbell buffer that was not made by this module, or a record that can never fit. */
  "ERR_RING",
] as const;

export type RingErrorCode = (typeof RING_ERROR_CODES)[number];

export class RingError extends ApusError<RingErrorCode> {}
