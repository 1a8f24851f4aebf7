/** Every checker over one history: what a chaos run (or `--check FILE`) reports. */
import type { Operation } from "./history.ts";
import { checkLists, type ListKeyResult } from "./list-check.ts";
import { checkQueues, type QueueKeyResult } from "./queue-check.ts";
import { checkRegisters, type RegisterKeyResult } from "./register-check.ts";

export type AnomalyKind =
  | "linearizability"
  | "list"
  | "queue"
  | "lost-write"
  | "availability"
  | "convergence";

export interface Anomaly {
  readonly kind: AnomalyKind;
  readonly key: string | null;
  readonly message: string;
  /** The smallest window of the history that shows it (may be empty). */
  readonly window: readonly Operation[];
}

export interface CheckResult {
  readonly anomalies: Anomaly[];
  readonly registers: readonly RegisterKeyResult[];
  readonly lists: readonly ListKeyResult[];
  readonly queues: readonly QueueKeyResult[];
  /** Register keys the search could not decide within its step limit. */
  readonly undecided: readonly string[];
  readonly checkMs: number;
}

export function checkHistory(ops: readonly Operation[]): CheckResult {
  const started = performance.now();
  const registers = checkRegisters(ops);
  const lists = checkLists(ops);
  const queues = checkQueues(ops);
  const anomalies: Anomaly[] = [];
  for (const r of registers)
    if (r.anomaly !== null) anomalies.push({ kind: "linearizability", ...r.anomaly });
  for (const l of lists)
    for (const a of l.anomalies)
      anomalies.push({
        kind: /acknowledged append\(s\) lost/.test(a.message) ? "lost-write" : "list",
        ...a,
      });
  for (const q of queues)
    for (const a of q.anomalies)
      anomalies.push({
        kind: /acknowledged enqueue\(s\) lost/.test(a.message) ? "lost-write" : "queue",
        ...a,
      });
  return {
    anomalies,
    registers,
    lists,
    queues,
    undecided: registers.filter((r) => r.undecided !== null).map((r) => r.key),
    checkMs: performance.now() - started,
  };
}
