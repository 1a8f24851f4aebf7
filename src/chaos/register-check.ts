/**
 * Linearizability of each register key (SET of unique values, GET) over a chaos history. Keys are
 * independent objects, so each is checked alone (linearizability is compositional: Herlihy &
 * Wing, §3.3).
 *
 * Before the search, the history is cut down without changing the answer:
 * - failed operations did not run: dropped;
 * - a read whose outcome is unknown returned nothing to check: dropped;
 * - an unknown write nobody read can always be placed after everything (or never): dropped;
 * - an unknown write that some read returned must take effect before that read returns: its
 *   return is set to the earliest such read's return instead of "never".
 * Values are unique, so a read names the one write it saw.
 */
import type { Operation } from "./history.ts";
import { checkLinearizable, type Model, type TimedOp } from "./linearizability.ts";

export type RegisterOp =
  | { readonly kind: "write"; readonly value: string; readonly source: Operation }
  | { readonly kind: "read"; readonly value: string | null; readonly source: Operation };

/** A register that starts empty (GET of a key never set answers nil). */
export const registerModel: Model<string | null, RegisterOp> = {
  init: () => null,
  step: (state, op) => (op.kind === "write" ? op.value : op.value === state ? state : undefined),
  key: (state) => (state === null ? "\u0000nil" : state),
  describe: (state) => (state === null ? "nil" : JSON.stringify(state)),
};

export interface RegisterAnomaly {
  readonly key: string;
  readonly message: string;
  /** The operations of this key around the point where the search failed. */
  readonly window: readonly Operation[];
}

export interface RegisterKeyResult {
  readonly key: string;
  readonly checkedOps: number;
  readonly steps: number;
  readonly anomaly: RegisterAnomaly | null;
  /** Set when the search hit its step limit: neither proven nor refuted. */
  readonly undecided: string | null;
}

/** The operations of one key the search must see, in the form it takes them. */
export function registerOps(ops: readonly Operation[], key: string): TimedOp<RegisterOp>[] {
  const mine = ops.filter((op) => op.key === key && (op.kind === "write" || op.kind === "read"));
  const firstSeenMs = new Map<string, number>();
  for (const op of mine) {
    if (op.kind !== "read" || op.outcome !== "ok" || typeof op.result !== "string") continue;
    const seen = firstSeenMs.get(op.result);
    if (seen === undefined || op.completeMs! < seen) firstSeenMs.set(op.result, op.completeMs!);
  }
  const timed: TimedOp<RegisterOp>[] = [];
  for (const op of mine) {
    if (op.outcome === "fail" || op.outcome === "pending") continue;
    if (op.kind === "read") {
      if (op.outcome !== "ok") continue;
      const value = typeof op.result === "string" ? op.result : null;
      timed.push({
        op: { kind: "read", value, source: op },
        callMs: op.invokeMs,
        returnMs: op.completeMs!,
      });
      continue;
    }
    const value = op.value!;
    let returnMs = op.completeMs ?? Infinity;
    if (op.outcome === "unknown") {
      const seenMs = firstSeenMs.get(value);
      if (seenMs === undefined) continue;
      returnMs = Math.max(op.invokeMs, seenMs);
    }
    timed.push({ op: { kind: "write", value, source: op }, callMs: op.invokeMs, returnMs });
  }
  return timed;
}

export function checkRegisterKey(ops: readonly Operation[], key: string): RegisterKeyResult {
  const timed = registerOps(ops, key);
  const result = checkLinearizable(registerModel, timed);
  if (result.linearizable === true)
    return { key, checkedOps: timed.length, steps: result.steps, anomaly: null, undecided: null };
  if (result.linearizable === "unknown")
    return {
      key,
      checkedOps: timed.length,
      steps: result.steps,
      anomaly: null,
      undecided: result.reason,
    };
  const stuck = result.stuck;
  const last = result.longestPrefix.at(-1);
  const lastOp = last === undefined ? null : timed[last]!.op.source;
  const from = Math.min(stuck.callMs, lastOp?.invokeMs ?? Infinity);
  const to = stuck.returnMs;
  const window = ops
    .filter(
      (op) =>
        op.key === key &&
        op.invokeMs <= to &&
        (op.completeMs ?? Infinity) >= from &&
        (op.kind === "write" || op.kind === "read"),
    )
    .sort((a, b) => a.invokeMs - b.invokeMs);
  const describe = stuck.op.kind === "read" ? "read" : "write";
  return {
    key,
    checkedOps: timed.length,
    steps: result.steps,
    undecided: null,
    anomaly: {
      key,
      message:
        `register ${key} is not linearizable: after the longest linearizable prefix ` +
        `(${result.longestPrefix.length} ops, value ${result.stateAfterPrefix}), ${describe} ` +
        `#${stuck.op.source.id} cannot be placed before it returned at ${stuck.returnMs.toFixed(1)} ms`,
      window,
    },
  };
}

/** Every register key of the history. */
export function checkRegisters(ops: readonly Operation[]): RegisterKeyResult[] {
  const keys = [
    ...new Set(ops.filter((op) => op.kind === "write" || op.kind === "read").map((op) => op.key)),
  ].sort();
  return keys.map((key) => checkRegisterKey(ops, key));
}
