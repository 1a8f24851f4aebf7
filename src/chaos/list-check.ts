/**
 * Consistency of append-only lists (RPUSH of unique values, LRANGE 0 -1) over a chaos history:
 * every observation must agree with one order of the appends that respects real time.
 *
 * The final read (the last list read of the key; the run makes it after healing, once nothing is
 * being appended) is the order. Then:
 * - the final list holds no value twice, and only values whose append was attempted and not
 *   refused (a failed append proved it did not run);
 * - every append acknowledged before it began is in it (an acknowledged append was not lost);
 * - every read seen during the run is a prefix of it, or extends it when the two were concurrent
 *   (nothing reordered, nothing lost and later found again), holds no value twice, only values
 *   whose append had been invoked before the read returned, and every append acknowledged before
 *   the read was invoked (no stale read);
 * - a read that returned before another was invoked is not longer than it (reads move forward);
 * - an append acknowledged before another was invoked comes before it in the list.
 */
import type { Operation } from "./history.ts";

export interface ListAnomaly {
  readonly key: string;
  readonly message: string;
  readonly window: readonly Operation[];
}

export interface ListKeyResult {
  readonly key: string;
  readonly appends: number;
  readonly reads: number;
  readonly finalLength: number;
  readonly anomalies: readonly ListAnomaly[];
}

/** Anomalies reported per key at most (one broken read tends to break many). */
const ANOMALIES_PER_KEY_MAX = 20;

function overlapping(ops: readonly Operation[], key: string, fromMs: number, toMs: number) {
  return ops
    .filter(
      (op) =>
        op.key === key &&
        (op.kind === "append" || op.kind === "list-read") &&
        op.invokeMs <= toMs &&
        (op.completeMs ?? Infinity) >= fromMs,
    )
    .sort((a, b) => a.invokeMs - b.invokeMs);
}

function asList(op: Operation): readonly string[] {
  return Array.isArray(op.result) ? (op.result as readonly string[]) : [];
}

export function checkListKey(ops: readonly Operation[], key: string): ListKeyResult {
  const appends = ops.filter((op) => op.key === key && op.kind === "append");
  const reads = ops
    .filter((op) => op.key === key && op.kind === "list-read" && op.outcome === "ok")
    .sort((a, b) => a.invokeMs - b.invokeMs);
  const anomalies: ListAnomaly[] = [];
  const report = (message: string, window: readonly Operation[]) => {
    if (anomalies.length < ANOMALIES_PER_KEY_MAX) anomalies.push({ key, message, window });
  };
  const finalRead = reads.at(-1);
  if (finalRead === undefined) {
    if (appends.some((op) => op.outcome === "ok"))
      report(`list ${key}: acknowledged appends but no successful read of the list`, []);
    return { key, appends: appends.length, reads: 0, finalLength: 0, anomalies };
  }
  const final = asList(finalRead);
  const appendOf = new Map(appends.map((op) => [op.value!, op]));
  const position = new Map<string, number>();
  final.forEach((value, index) => {
    const earlier = position.get(value);
    if (earlier !== undefined)
      report(`list ${key}: ${value} appears twice in the final list (at ${earlier} and ${index})`, [
        finalRead,
        ...(appendOf.has(value) ? [appendOf.get(value)!] : []),
      ]);
    else position.set(value, index);
  });
  for (const [value, index] of position) {
    const append = appendOf.get(value);
    if (append === undefined)
      report(`list ${key}: ${value} (at ${index}) was never appended`, [finalRead]);
    else if (append.outcome === "fail")
      report(
        `list ${key}: ${value} (at ${index}) is in the list, but its append failed with an error that says it did not run`,
        [append, finalRead],
      );
  }
  // Only an append acknowledged before the final read began must be in it (all of them, once the
  // run has stopped its clients; a history cut short may end with later ones, not checkable).
  const lost = appends.filter(
    (op) => op.outcome === "ok" && op.completeMs! < finalRead.invokeMs && !position.has(op.value!),
  );
  if (lost.length > 0) {
    const named = lost.slice(0, LOST_NAMED_MAX).map((op) => op.value);
    const more = lost.length > LOST_NAMED_MAX ? ", …" : "";
    report(
      `list ${key}: ${lost.length} acknowledged append(s) lost (not in the final list): ${named.join(", ")}${more}`,
      [...lost.slice(0, LOST_NAMED_MAX), finalRead],
    );
  }
  for (const read of reads) checkRead(read, final, appendOf, report, ops, key);
  checkReadsMoveForward(reads, report);
  checkAppendOrder(final, appendOf, report, ops, key);
  return {
    key,
    appends: appends.length,
    reads: reads.length,
    finalLength: final.length,
    anomalies,
  };
}

/** Lost appends named in the report, at most. */
const LOST_NAMED_MAX = 10;

type Report = (message: string, window: readonly Operation[]) => void;

function checkRead(
  read: Operation,
  final: readonly string[],
  appendOf: ReadonlyMap<string, Operation>,
  report: Report,
  ops: readonly Operation[],
  key: string,
): void {
  const seen = asList(read);
  const window = () => overlapping(ops, key, read.invokeMs, read.completeMs!);
  // A read concurrent with the final one may be longer (a read that returned before the final one
  // began and is longer is reported by checkReadsMoveForward); up to the shorter length they agree.
  const common = Math.min(seen.length, final.length);
  for (let i = 0; i < common; i++) {
    if (seen[i] === final[i]) continue;
    report(
      `list ${key}: read #${read.id} is not a prefix of the final list: at ${i} it has ` +
        `${seen[i]}, the final list ${final[i]}`,
      window(),
    );
    return;
  }
  if (new Set(seen).size !== seen.length) {
    report(`list ${key}: read #${read.id} holds a value twice`, [read]);
    return;
  }
  for (const value of seen) {
    const append = appendOf.get(value);
    if (append !== undefined && append.invokeMs > read.completeMs!)
      report(`list ${key}: read #${read.id} saw ${value} before its append was invoked`, [
        read,
        append,
      ]);
  }
  const inRead = new Set(seen);
  for (const append of appendOf.values()) {
    if (append.outcome !== "ok" || append.completeMs! >= read.invokeMs) continue;
    if (inRead.has(append.value!)) continue;
    report(
      `list ${key}: read #${read.id} misses ${append.value}, acknowledged (#${append.id}) before the read began (stale read)`,
      [append, read],
    );
    return;
  }
}

function checkReadsMoveForward(reads: readonly Operation[], report: Report): void {
  const byCompletion = [...reads].sort((a, b) => a.completeMs! - b.completeMs!);
  let next = 0;
  let longest: Operation | null = null;
  for (const read of reads) {
    while (next < byCompletion.length && byCompletion[next]!.completeMs! < read.invokeMs) {
      const done = byCompletion[next++]!;
      if (longest === null || asList(done).length > asList(longest).length) longest = done;
    }
    if (longest !== null && asList(read).length < asList(longest).length)
      report(
        `list ${read.key}: read #${read.id} (${asList(read).length} values) began after read ` +
          `#${longest.id} (${asList(longest).length} values) returned, yet saw less`,
        [longest, read],
      );
  }
}

function checkAppendOrder(
  final: readonly string[],
  appendOf: ReadonlyMap<string, Operation>,
  report: Report,
  ops: readonly Operation[],
  key: string,
): void {
  let latestInvoked: Operation | null = null;
  for (const value of final) {
    const append = appendOf.get(value);
    if (append === undefined) continue;
    if (
      latestInvoked !== null &&
      append.completeMs !== null &&
      append.outcome === "ok" &&
      latestInvoked.invokeMs > append.completeMs
    ) {
      report(
        `list ${key}: ${latestInvoked.value} comes before ${value} in the list, but its append ` +
          `(#${latestInvoked.id}) was invoked after #${append.id} was acknowledged`,
        overlapping(ops, key, append.invokeMs, latestInvoked.invokeMs),
      );
      return;
    }
    if (latestInvoked === null || append.invokeMs > latestInvoked.invokeMs) latestInvoked = append;
  }
}

export function checkLists(ops: readonly Operation[]): ListKeyResult[] {
  const keys = [
    ...new Set(
      ops.filter((op) => op.kind === "append" || op.kind === "list-read").map((op) => op.key),
    ),
  ].sort();
  return keys.map((key) => checkListKey(ops, key));
}
