/** Hand-written histories for the checker tests: one line per operation. */
import type { Operation, Outcome, ReplyValue } from "../../src/chaos/history.ts";

let nextId = 0;

function op(
  kind: Operation["kind"],
  key: string,
  value: string | null,
  invokeMs: number,
  completeMs: number | null,
  outcome: Outcome,
  result: ReplyValue = null,
): Operation {
  return {
    id: nextId++,
    client: 0,
    kind,
    key,
    value,
    invokeMs,
    completeMs: outcome === "unknown" ? null : completeMs,
    outcome,
    result,
    error: outcome === "ok" ? null : outcome,
  };
}

/** SET key value over [from, to]; to = null: unknown outcome. */
export function write(value: string, from: number, to: number | null, key = "k"): Operation {
  return op("write", key, value, from, to, to === null ? "unknown" : "ok");
}

export function failedWrite(value: string, from: number, to: number, key = "k"): Operation {
  return op("write", key, value, from, to, "fail");
}

/** GET key over [from, to] that returned `seen`. */
export function read(seen: string | null, from: number, to: number, key = "k"): Operation {
  return op("read", key, null, from, to, "ok", seen);
}

export function unknownRead(from: number, key = "k"): Operation {
  return op("read", key, null, from, null, "unknown");
}

export function append(value: string, from: number, to: number | null, key = "l"): Operation {
  return op("append", key, value, from, to, to === null ? "unknown" : "ok");
}

export function failedAppend(value: string, from: number, to: number, key = "l"): Operation {
  return op("append", key, value, from, to, "fail");
}

export function listRead(seen: string[], from: number, to: number, key = "l"): Operation {
  return op("list-read", key, null, from, to, "ok", seen);
}

/** RPUSH q job over [from, to]; to = null: unknown outcome. */
export function enqueue(job: string, from: number, to: number | null, key = "q0.1"): Operation {
  return op("enqueue", key, job, from, to, to === null ? "unknown" : "ok");
}

export function failedEnqueue(job: string, from: number, to: number, key = "q0.1"): Operation {
  return op("enqueue", key, job, from, to, "fail");
}

/** BLMOVE q p over [from, to] that returned `job` (null: timed out); to = null: unknown. */
export function take(job: string | null, from: number, to: number | null, key = "q0.1"): Operation {
  return op("take", key, null, from, to, to === null ? "unknown" : "ok", job);
}

/** The final LRANGE of a queue or processing list. */
export function queueRead(seen: string[], from: number, to: number, key: string): Operation {
  return op("queue-read", key, null, from, to, "ok", seen);
}
