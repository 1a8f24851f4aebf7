/**
 * The offline fuzz run: `npm run fuzz -- --runs 1000000 [--target NAME]… [--seed N]`.
 *
 * Runs each target (test/fuzz/targets) for --runs inputs, in batches of --batch inputs, each batch
 * from its own seed (seed + batch index), printing a progress line per batch and, at the end, a
 * Markdown table: inputs run, crashes (failing inputs, each with the command that replays it),
 * peak RSS and arrayBuffers while the target ran, time and rate, and the outcomes the inputs reached.
 * A failing batch is shrunk and reported, and the run goes on with the next batch, so one run counts
 * every crash it meets. Exit code 1 when any input failed.
 *
 *   --runs N      inputs per target (default 10000)
 *   --target NAME one target (repeat the flag for several; default all): see --list
 *   --seed N      first batch's seed (default: the time; printed, so the run replays)
 *   --path P      replay one counterexample (with its --seed and --target)
 *   --batch N     inputs per batch (default 10000)
 *   --list        the targets and what each checks
 */
import { parseArgs } from "node:util";
import { replayCommand } from "./replay.ts";
import { type FuzzOutcome, type FuzzTarget, takeSlowestMs, takeTallies } from "./target.ts";
import { FUZZ_TARGETS } from "./targets/index.ts";

const MIB = 1024 * 1024;

interface TargetReport {
  readonly name: string;
  readonly inputs: number;
  readonly crashes: FuzzOutcome[];
  readonly peakRssBytes: number;
  readonly peakArrayBuffersBytes: number;
  readonly seconds: number;
  /** The slowest single input, ms (generation excluded). */
  readonly slowestMs: number;
  readonly outcomes: [string, number][];
}

function positiveInteger(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`${flag} ${value}: use a whole number of at least 1`);
  }
  return n;
}

function selectTargets(names: readonly string[] | undefined): FuzzTarget[] {
  if (names === undefined || names.length === 0) return [...FUZZ_TARGETS];
  return names.map((name) => {
    const target = FUZZ_TARGETS.find((t) => t.name === name);
    if (target === undefined) {
      throw new Error(
        `--target ${name} is not a fuzz target; the targets are ${FUZZ_TARGETS.map((t) => t.name).join(", ")}`,
      );
    }
    return target;
  });
}

function sampleMemory(peak: { rss: number; arrayBuffers: number }): void {
  const usage = process.memoryUsage();
  peak.rss = Math.max(peak.rss, usage.rss);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, usage.arrayBuffers);
}

function formatDuration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(0)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
}

async function fuzzTarget(
  target: FuzzTarget,
  runs: number,
  batch: number,
  seed: number,
  path: string | undefined,
): Promise<TargetReport> {
  const started = performance.now();
  const peak = { rss: 0, arrayBuffers: 0 };
  const crashes: FuzzOutcome[] = [];
  const sampler = setInterval(() => sampleMemory(peak), 200);
  let inputs = 0;
  takeTallies();
  takeSlowestMs();
  try {
    for (let index = 0; inputs < runs; index++) {
      const numRuns = Math.min(batch, runs - inputs);
      const outcome = await target.run({
        numRuns,
        seed: (seed + index) | 0,
        ...(path === undefined ? {} : { path }),
      });
      inputs += path === undefined ? numRuns : outcome.numRuns;
      sampleMemory(peak);
      if (outcome.failed) {
        crashes.push(outcome);
        process.stdout.write(
          `\n[${target.name}] FAILED:\n${outcome.report}\nReplay:\n  ${replayCommand(outcome).join("\n  ")}\n\n`,
        );
      }
      const seconds = (performance.now() - started) / 1000;
      const rate = inputs / seconds;
      process.stderr.write(
        `[${target.name}] ${inputs.toLocaleString("en-US")}/${runs.toLocaleString("en-US")} inputs, ` +
          `${crashes.length} crashes, ${Math.round(rate).toLocaleString("en-US")}/s, ` +
          `rss ${(peak.rss / MIB).toFixed(0)} MiB, eta ${formatDuration((runs - inputs) / rate)}\n`,
      );
      if (path !== undefined) break;
    }
  } finally {
    clearInterval(sampler);
    await target.cleanup();
  }
  return {
    name: target.name,
    inputs,
    crashes,
    peakRssBytes: peak.rss,
    peakArrayBuffersBytes: peak.arrayBuffers,
    seconds: (performance.now() - started) / 1000,
    slowestMs: takeSlowestMs(),
    outcomes: takeTallies(),
  };
}

function markdown(reports: readonly TargetReport[], seed: number): string {
  const lines = [
    `Seed ${seed} (batch k uses seed + k), Node ${process.version}, ${new Date().toISOString()}`,
    "",
    "| target | inputs | crashes | peak RSS | peak arrayBuffers | slowest input | time | inputs/s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of reports) {
    lines.push(
      `| ${r.name} | ${r.inputs.toLocaleString("en-US")} | ${r.crashes.length} | ` +
        `${(r.peakRssBytes / MIB).toFixed(0)} MiB | ${(r.peakArrayBuffersBytes / MIB).toFixed(1)} MiB | ` +
        `${r.slowestMs.toFixed(0)} ms | ` +
        `${formatDuration(r.seconds)} | ${Math.round(r.inputs / r.seconds).toLocaleString("en-US")} |`,
    );
  }
  lines.push(
    "",
    "Outcomes reached (every run counted, shrinking included), most frequent first:",
    "",
  );
  for (const r of reports) {
    const total = r.outcomes.reduce((sum, [, n]) => sum + n, 0);
    const shown = r.outcomes
      .slice(0, 12)
      .map(([label, n]) => `${label} ${((100 * n) / total).toFixed(1)}%`);
    lines.push(
      `- ${r.name}: ${shown.join(" · ")}${r.outcomes.length > 12 ? ` · (${r.outcomes.length - 12} more)` : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string" },
      target: { type: "string", multiple: true },
      seed: { type: "string" },
      path: { type: "string" },
      batch: { type: "string" },
      list: { type: "boolean" },
    },
  });
  if (values.list === true) {
    for (const t of FUZZ_TARGETS) process.stdout.write(`${t.name}\n  ${t.summary.join("\n  ")}\n`);
    return 0;
  }
  const runs = positiveInteger(values.runs, "--runs", 10_000);
  const batch = positiveInteger(values.batch, "--batch", 10_000);
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed ${values.seed}: use an integer`);
  const targets = selectTargets(values.target);
  process.stderr.write(
    `fuzz: ${targets.length} targets, ${runs.toLocaleString("en-US")} inputs each, seed ${seed}\n`,
  );
  const reports: TargetReport[] = [];
  for (const target of targets)
    reports.push(await fuzzTarget(target, runs, batch, seed, values.path));
  process.stdout.write(`\n${markdown(reports, seed)}`);
  return reports.some((r) => r.crashes.length > 0) ? 1 : 0;
}

process.exitCode = await main();
