/**
 * A fuzz target: one decoder of untrusted bytes, the inputs fast-check generates for it, and the
 * properties every input must keep. The CI test (fuzz.test.ts) and the offline runner (main.ts)
 * run the same targets through `run`, with a seed, so any failure replays from its seed and path.
 */
import fc from "fast-check";

export interface FuzzParams {
  readonly numRuns: number;
  readonly seed: number;
  /** fast-check's path of a counterexample: replays just that input (and its shrinks). */
  readonly path?: string;
}

export interface FuzzOutcome {
  readonly name: string;
  /** Inputs run (up to and including a failing one). */
  readonly numRuns: number;
  readonly failed: boolean;
  readonly seed: number;
  /** Counterexample path, when failed. */
  readonly path: string | null;
  /** fast-check's report: the counterexample, the error, seed and path. */
  readonly report: string | null;
}

export interface FuzzTarget {
  /** Short kebab-case name: `npm run fuzz -- --target NAME`. */
  readonly name: string;
  /** The decoder fed and the properties checked, one line each (printed by the runner). */
  readonly summary: readonly string[];
  /** Share of APUS_FUZZ_RUNS the CI test runs (file-system targets are slower per input). */
  readonly ciShare: number;
  run(params: FuzzParams): Promise<FuzzOutcome>;
  /** Removes what the target left behind (temp directories); called once after its runs. */
  cleanup(): Promise<void>;
}

/** A property failed: thrown by the checks, shown in the counterexample. */
export class FuzzPropertyError extends Error {
  override readonly name = "FuzzPropertyError";
}

/** Fails the input when `condition` is false. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new FuzzPropertyError(message);
}

function outcome(name: string, details: fc.RunDetails<unknown>): FuzzOutcome {
  return {
    name,
    numRuns: details.numRuns,
    failed: details.failed,
    seed: details.seed,
    path: details.failed ? (details.counterexamplePath ?? null) : null,
    report: details.failed ? report(details) : null,
  };
}

/** fast-check's report, with the error that failed the input (v4 leaves it to the `cause`). */
function report(details: fc.RunDetails<unknown>): string {
  const text = fc.defaultReportMessage(details) ?? "failed";
  const error = details.errorInstance;
  if (error === null || error === undefined) return text;
  const stack = error instanceof Error ? (error.stack ?? describe(error)) : String(error);
  const cause =
    error instanceof Error && error.cause !== undefined
      ? `\nCaused by: ${describe(error.cause)}`
      : "";
  return `${text}\n\nGot error: ${stack}${cause}`;
}

function fcParams(params: FuzzParams): fc.Parameters<unknown> {
  return {
    numRuns: params.numRuns,
    seed: params.seed,
    ...(params.path === undefined ? {} : { path: params.path }),
  };
}

export interface TargetSpec<T> {
  readonly name: string;
  readonly summary: readonly string[];
  readonly ciShare?: number;
  readonly arbitrary: fc.Arbitrary<T>;
  /** Checks one input: throws when a property fails. */
  readonly check: (input: T) => void;
}

export function syncTarget<T>(spec: TargetSpec<T>): FuzzTarget {
  return {
    name: spec.name,
    summary: spec.summary,
    ciShare: spec.ciShare ?? 1,
    run: async (params) => {
      const property = fc.property(spec.arbitrary, (input) => {
        const started = performance.now();
        try {
          spec.check(input);
        } finally {
          timed(performance.now() - started, input);
        }
      });
      return outcome(spec.name, fc.check(property, fcParams(params)) as fc.RunDetails<unknown>);
    },
    cleanup: async () => {},
  };
}

export interface AsyncTargetSpec<T> {
  readonly name: string;
  readonly summary: readonly string[];
  readonly ciShare?: number;
  readonly arbitrary: fc.Arbitrary<T>;
  readonly check: (input: T) => Promise<void>;
  readonly cleanup: () => Promise<void>;
}

export function asyncTarget<T>(spec: AsyncTargetSpec<T>): FuzzTarget {
  return {
    name: spec.name,
    summary: spec.summary,
    ciShare: spec.ciShare ?? 1,
    run: async (params) => {
      const property = fc.asyncProperty(spec.arbitrary, async (input) => {
        const started = performance.now();
        try {
          await spec.check(input);
        } finally {
          timed(performance.now() - started, input);
        }
      });
      const details = await fc.check(property, fcParams(params));
      return outcome(spec.name, details as fc.RunDetails<unknown>);
    },
    cleanup: spec.cleanup,
  };
}

/**
 * Runs `fn`; an exception that `documented` does not accept fails the input. Returns what `fn`
 * returned, or the documented error it threw.
 */
export function onlyDocumentedErrors<T>(
  fn: () => T,
  documented: (error: unknown) => boolean,
  what: string,
): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (documented(error)) return { ok: false, error };
    throw new FuzzPropertyError(`${what} threw an undocumented error: ${describe(error)}`, {
      cause: error,
    });
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${code === undefined ? "" : ` ${String(code)}`}: ${error.message}`;
  }
  return String(error);
}

/** Bytes as hex, shortened, for property messages. */
export function hex(bytes: Uint8Array, max = 64): string {
  const shown = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, max));
  return shown.toString("hex") + (bytes.byteLength > max ? `… (${bytes.byteLength} bytes)` : "");
}

/**
 * Outcomes seen, by label ("error: Protocol error: invalid bulk length", "ok", …): the runner
 * prints them per target, to show the inputs reach past the first checks, not only that nothing
 * crashed. Counts every run, shrinking included.
 */
const tallies = new Map<string, number>();

export function tally(label: string): void {
  tallies.set(label, (tallies.get(label) ?? 0) + 1);
}

/** The outcomes counted since the last call, most frequent first; resets the counts. */
export function takeTallies(): [string, number][] {
  const entries = [...tallies.entries()].sort((a, b) => b[1] - a[1]);
  tallies.clear();
  return entries;
}

/**
 * The slowest input since the last `takeSlowest()`, in ms: what "terminates" came to in a run. An
 * input slower than SLOW_INPUT_MS is also written to stderr at once, so that a hang shows which.
 */
let slowestMs = 0;
const SLOW_INPUT_MS = 2000;

function timed(ms: number, input: unknown): void {
  slowestMs = Math.max(slowestMs, ms);
  if (ms > SLOW_INPUT_MS) {
    const shown = fc.stringify(input);
    process.stderr.write(
      `slow input (${ms.toFixed(0)} ms): ${shown.slice(0, 2000)}${shown.length > 2000 ? "…" : ""}\n`,
    );
  }
}

export function takeSlowestMs(): number {
  const ms = slowestMs;
  slowestMs = 0;
  return ms;
}
