/**
 * The closed-loop harness every system in `npm run bench:peers` is driven by, on this process's
 * main thread: C loops, each with its own connection (a KeyWriter), each doing
 * `await write(k<loop>, value)` and timing it, then the next, with no pause. Warm-up first
 * (nothing recorded), then the measure window, whose edges call `atWindowStart`/`atWindowEnd`
 * (the caller reads CPU counters there, synchronously), then the loops finish their last write.
 *
 * Throughput is writes completed inside the window / the window's length; latency is recorded for
 * writes sent and completed inside it (µs, hdr-histogram).
 */
import type { KeyWriter } from "./peers-clients.ts";
import { createLatencyHistogram } from "./resp-load.ts";

export interface DriveSettings {
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Bytes of every value written. */
  readonly valueBytes: number;
}

export interface DriveOutcome {
  /** Writes completed inside the window. */
  readonly completedCount: number;
  readonly errorCount: number;
  /** The first error's message, to say why a point failed. */
  readonly firstError: string | null;
  /** Length of the window by the monotonic clock, ms. */
  readonly windowMs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

/** After an error a loop waits this long before its next write (a refused write returns fast). */
const ERROR_BACKOFF_MS = 20;

type Phase = "warmup" | "measure" | "drain";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The key loop `index` writes: one key per loop, the same names for every system. */
export function loopKey(index: number): string {
  return `k${index}`;
}

export async function driveClosedLoop(
  writers: readonly KeyWriter[],
  settings: DriveSettings,
  atWindowStart: () => void,
  atWindowEnd: () => void,
): Promise<DriveOutcome> {
  const histogram = createLatencyHistogram();
  const value = Buffer.alloc(settings.valueBytes, 0x76);
  /** Invariant: moves warmup → measure → drain, never back. */
  let phase: Phase = "warmup";
  let completedCount = 0;
  let errorCount = 0;
  let firstError: string | null = null;

  const loop = async (writer: KeyWriter, index: number): Promise<void> => {
    const key = loopKey(index);
    while (phase !== "drain") {
      const sentInWindow = phase === "measure";
      const t0 = process.hrtime.bigint();
      try {
        await writer.write(key, value);
      } catch (error) {
        if (phase === "measure") errorCount++;
        firstError ??= (error as Error).message;
        await sleep(ERROR_BACKOFF_MS);
        continue;
      }
      if (phase !== "measure") continue;
      completedCount++;
      if (sentInWindow) histogram.recordValue(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };

  const loops = writers.map((writer, index) => loop(writer, index));
  try {
    await sleep(settings.warmupMs);
    atWindowStart();
    const windowStart = process.hrtime.bigint();
    phase = "measure";
    await sleep(settings.durationMs);
    phase = "drain";
    const windowMs = Number(process.hrtime.bigint() - windowStart) / 1e6;
    atWindowEnd();
    await Promise.all(loops);
    return {
      completedCount,
      errorCount,
      firstError,
      windowMs,
      p50Us: histogram.getValueAtPercentile(50),
      p99Us: histogram.getValueAtPercentile(99),
      maxUs: histogram.maxValue,
    };
  } finally {
    phase = "drain";
    histogram.destroy();
  }
}
