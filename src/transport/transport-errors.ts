import { ApusError } from "../core/errors.ts";

/** The codes the transport layer throws. */
export const TRANSPORT_ERROR_CODES = [
  /** A socket could not be bound or used (address taken, no such interface, …). */
  "ERR_TRANSPORT",
] as const;

export type TransportErrorCode = (typeof TRANSPORT_ERROR_CODES)[number];

export class TransportError extends ApusError<TransportErrorCode> {}
