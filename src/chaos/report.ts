/** What a chaos run prints: a summary table on success; on failure, how to find and replay it. */
import type { Anomaly, CheckResult } from "./check.ts";
import { formatOperation } from "./history.ts";
import type { ChaosOptions, ChaosResult } from "./run.ts";

/** Operations printed per anomaly window, at most. */
const WINDOW_OPS_MAX = 40;
/** Anomalies printed in full, at most (all are counted). */
const ANOMALIES_SHOWN_MAX = 5;

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")).join("\n");
}

export function rerunCommand(options: ChaosOptions): string {
  const plant = options.plant === null ? "" : ` --plant ${options.plant}`;
  return (
    `npm run chaos -- --seed ${options.seed} --seconds ${options.seconds} ` +
    `--replicas ${options.replicas} --durability ${options.durability} --clients ${options.clients}${plant}` +
    (options.subnet === 0 ? "" : ` --subnet ${options.subnet}`)
  );
}

export function checkCommand(historyPath: string): string {
  return `npm run chaos -- --check ${historyPath}`;
}

export function formatSummary(result: ChaosResult): string {
  const ops = result.operations;
  const kinds = ["write", "read", "append", "list-read", "enqueue", "take"] as const;
  const opRows = [["operation", "ok", "fail", "unknown", "total"]];
  for (const kind of kinds) {
    const mine = ops.filter((op) => op.kind === kind);
    const count = (o: string) => String(mine.filter((op) => op.outcome === o).length);
    opRows.push([kind, count("ok"), count("fail"), count("unknown"), String(mine.length)]);
  }
  const faultRows = [["fault", "injected"]];
  for (const [kind, count] of result.faults) faultRows.push([kind, String(count)]);
  if (faultRows.length === 1) faultRows.push(["(none)", "0"]);
  const lines = [
    `seed ${result.options.seed}, ${result.options.replicas} replicas, --durability ${result.options.durability}, ${result.options.seconds} s, ${result.options.clients} clients` +
      (result.networkFaults ? "" : " (no nftables: network faults off)"),
    "",
    table(opRows),
    "",
    table(faultRows),
    "",
    checkerLine(result.check),
    `writes succeeded again ${result.availabilityMs === null ? "never" : `${result.availabilityMs.toFixed(0)} ms`} after the heal`,
    `history: ${result.historyPath}`,
  ];
  return lines.join("\n");
}

function checkerLine(check: CheckResult): string {
  const registerOps = check.registers.reduce((sum, r) => sum + r.checkedOps, 0);
  const steps = check.registers.reduce((sum, r) => sum + r.steps, 0);
  const listValues = check.lists.reduce((sum, l) => sum + l.finalLength, 0);
  const listLongest = check.lists.reduce((max, l) => Math.max(max, l.finalLength), 0);
  const listReads = check.lists.reduce((sum, l) => sum + l.reads, 0);
  const queued = check.queues.reduce((sum, q) => sum + q.queued, 0);
  const processing = check.queues.reduce((sum, q) => sum + q.processing, 0);
  const undecided =
    check.undecided.length === 0 ? "" : `; UNDECIDED (search limit): ${check.undecided.join(", ")}`;
  return (
    `checker: ${check.checkMs.toFixed(0)} ms; ${check.registers.length} registers, ${registerOps} ops searched ` +
    `in ${steps} steps; ${check.lists.length} lists, ${listReads} reads, ${listValues} values ` +
    `in the final lists (longest ${listLongest}); ${check.queues.length} job queues, ${processing} jobs ` +
    `taken and ${queued} left${undecided}`
  );
}

function formatAnomaly(anomaly: Anomaly, result: ChaosResult | null): string {
  const lines = [`* ${anomaly.kind}: ${anomaly.message}`];
  const window = anomaly.window.slice(0, WINDOW_OPS_MAX);
  if (window.length > 0) {
    const from = Math.min(...window.map((op) => op.invokeMs));
    const to = Math.max(...window.map((op) => op.completeMs ?? op.invokeMs));
    lines.push(`  history window ${from.toFixed(1)} .. ${to.toFixed(1)} ms:`);
    for (const op of window) lines.push(`    ${formatOperation(op)}`);
    if (anomaly.window.length > window.length)
      lines.push(`    … ${anomaly.window.length - window.length} more`);
    const notes = (result?.notes ?? []).filter((n) => n.timeMs <= to);
    const recent = notes.slice(-4);
    if (recent.length > 0) {
      lines.push("  nemesis, last events up to the window's end:");
      for (const n of recent) lines.push(`    ${n.timeMs.toFixed(1).padStart(9)} ms  ${n.text}`);
    }
  }
  return lines.join("\n");
}

export function formatAnomalies(anomalies: readonly Anomaly[], result: ChaosResult | null): string {
  const shown = anomalies.slice(0, ANOMALIES_SHOWN_MAX).map((a) => formatAnomaly(a, result));
  if (anomalies.length > shown.length)
    shown.push(`… and ${anomalies.length - shown.length} more anomalies`);
  return shown.join("\n\n");
}

export function formatFailure(result: ChaosResult): string {
  return [
    `ANOMALIES: ${result.anomalies.length} (seed ${result.options.seed})`,
    "",
    formatAnomalies(result.anomalies, result),
    "",
    `seed:     ${result.options.seed}`,
    `history:  ${result.historyPath}   (JSON lines; replica logs and data directories in ${result.dir})`,
    `re-check: ${checkCommand(result.historyPath)}`,
    `re-run:   ${rerunCommand(result.options)}`,
    "",
    formatSummary(result),
  ].join("\n");
}
