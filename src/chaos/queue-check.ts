/**
 * A reliable job queue over a chaos history: producers RPUSH unique jobs to a queue key (q…),
 * consumers BLMOVE one from its right end to the processing list (p…, the same suffix) with a
 * short timeout, as the reliable-queue pattern does; nothing is ever removed from the processing
 * list. After healing, the final reads of both lists (the last of each key) must show:
 * - no job lost: every acknowledged enqueue is in the queue or in processing;
 * - no job twice: none appears twice in the queue and processing together;
 * - no phantom: every job there had its enqueue invoked and not refused;
 * - no double delivery: no two acknowledged takes returned the same job;
 * - a taken job moved: an acknowledged take's job is in processing, not in the queue, and its
 *   enqueue was invoked before the take returned;
 * - nothing moved by nobody: a job in processing that no acknowledged take returned needs a take
 *   of that queue whose outcome is unknown (a client that never saw its answer).
 */
import type { Operation } from "./history.ts";

export interface QueueAnomaly {
  readonly key: string;
  readonly message: string;
  readonly window: readonly Operation[];
}

export interface QueueKeyResult {
  readonly key: string;
  readonly enqueues: number;
  readonly takes: number;
  /** Jobs left in the queue and in processing at the final reads. */
  readonly queued: number;
  readonly processing: number;
  readonly anomalies: readonly QueueAnomaly[];
}

/** The processing list of queue `key` (q0.12 → p0.12). */
export function processingKey(queueKey: string): string {
  return `p${queueKey.slice(1)}`;
}

/** The last acknowledged read of `key` (the run's final read), or null. */
function finalRead(ops: readonly Operation[], key: string): readonly string[] | null {
  let last: Operation | null = null;
  for (const op of ops)
    if (op.kind === "queue-read" && op.key === key && op.outcome === "ok")
      if (last === null || op.invokeMs >= last.invokeMs) last = op;
  return last === null ? null : (last.result as readonly string[]);
}

export function checkQueueKey(ops: readonly Operation[], key: string): QueueKeyResult {
  const enqueues = ops.filter((op) => op.kind === "enqueue" && op.key === key);
  const takes = ops.filter((op) => op.kind === "take" && op.key === key);
  const anomalies: QueueAnomaly[] = [];
  const flag = (message: string, window: readonly Operation[] = []) =>
    anomalies.push({ key, message, window });
  const queued = finalRead(ops, key);
  const processing = finalRead(ops, processingKey(key));
  const result = (): QueueKeyResult => ({
    key,
    enqueues: enqueues.length,
    takes: takes.length,
    queued: queued?.length ?? 0,
    processing: processing?.length ?? 0,
    anomalies,
  });
  if (queued === null || processing === null) {
    flag(`no final read of ${queued === null ? key : processingKey(key)}: nothing can be checked`);
    return result();
  }
  const enqueueOf = new Map<string, Operation>();
  for (const op of enqueues) enqueueOf.set(op.value!, op);
  const inQueue = new Set(queued);
  const inProcessing = new Set(processing);

  const seen = new Set<string>();
  for (const job of [...queued, ...processing]) {
    if (seen.has(job))
      flag(`job ${job} is in the queue and processing ${countOf(job, queued, processing)} times`);
    seen.add(job);
    const enqueue = enqueueOf.get(job);
    if (enqueue === undefined || enqueue.outcome === "fail")
      flag(
        `job ${job} is there but its enqueue was ${enqueue === undefined ? "never sent" : "refused"}`,
        enqueue === undefined ? [] : [enqueue],
      );
  }
  const lost = enqueues.filter((op) => op.outcome === "ok" && !seen.has(op.value!));
  if (lost.length > 0)
    flag(
      `${lost.length} acknowledged enqueue(s) lost: ${lost
        .slice(0, 5)
        .map((op) => op.value)
        .join(", ")}`,
      lost.slice(0, 5),
    );

  const takenBy = new Map<string, Operation>();
  for (const take of takes) {
    if (take.outcome !== "ok" || take.result === null) continue;
    const job = take.result as string;
    const earlier = takenBy.get(job);
    if (earlier !== undefined) flag(`job ${job} was delivered twice`, [earlier, take]);
    takenBy.set(job, take);
    const enqueue = enqueueOf.get(job);
    if (enqueue === undefined || enqueue.invokeMs > take.completeMs!)
      flag(
        `a take returned job ${job} before anything enqueued it`,
        enqueue === undefined ? [take] : [enqueue, take],
      );
    if (inQueue.has(job)) flag(`job ${job} was taken but is still in the queue`, [take]);
    if (!inProcessing.has(job)) flag(`job ${job} was taken but is not in processing`, [take]);
  }
  const unknownTakes = takes.filter((op) => op.outcome === "unknown");
  for (const job of processing)
    if (!takenBy.has(job) && unknownTakes.length === 0)
      flag(`job ${job} is in processing but no take returned it, and none had an unknown outcome`);
  return result();
}

function countOf(job: string, ...lists: (readonly string[])[]): number {
  return lists.reduce((n, list) => n + list.filter((j) => j === job).length, 0);
}

export function checkQueues(ops: readonly Operation[]): QueueKeyResult[] {
  const keys = [
    ...new Set(ops.filter((op) => op.kind === "enqueue" || op.kind === "take").map((op) => op.key)),
  ].sort();
  return keys.map((key) => checkQueueKey(ops, key));
}
