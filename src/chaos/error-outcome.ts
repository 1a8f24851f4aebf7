/**
 * What a client-side error says about whether the command ran. Only an error that proves the
 * command was not executed makes the operation `fail`; everything else (a timeout, a dropped
 * connection, `-TIMEOUT … may or may not have been applied`, any error we do not recognise) is
 * `unknown`: it may have taken effect at any time after its invocation, or never. Calling a
 * doubtful error a failure would make the checker blame the replicas for our guess.
 */
import type { Outcome } from "./history.ts";

/** ioredis refuses to send while disconnected (enableOfflineQueue: false): never sent. */
const NOT_SENT = /Stream isn't writeable and enableOfflineQueue options is false/;

/** Replica error texts that say the request did not run. */
const NOT_EXECUTED =
  /\bnot executed\b|\bwas not (executed|applied|run|proposed)\b|\bdid not run\b/i;
const MAYBE = /may or may not/i;

export function errorOutcome(error: unknown): { outcome: Outcome; reason: string } {
  const text = error instanceof Error ? error.message : String(error);
  if (NOT_SENT.test(text)) return { outcome: "fail", reason: "not sent (disconnected)" };
  if (!MAYBE.test(text) && NOT_EXECUTED.test(text)) return { outcome: "fail", reason: text };
  return { outcome: "unknown", reason: text };
}
