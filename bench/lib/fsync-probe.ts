/**
 * The cost of one durable write on this machine's temp disk (where the benchmark's replicas keep
 * their logs): append 64 B to a file and fdatasync it, `count` times, one at a time. p50/p99 µs.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FsyncProbe {
  readonly count: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

export function probeFsync(count: number): FsyncProbe {
  const dir = mkdtempSync(join(tmpdir(), "apus-fsync-probe-"));
  const fd = openSync(join(dir, "log"), "a");
  const record = Buffer.alloc(64, 0x61);
  const samples = new Float64Array(count);
  try {
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint();
      writeSync(fd, record);
      fdatasyncSync(fd);
      samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  samples.sort();
  const at = (q: number) => samples[Math.min(count - 1, Math.floor(q * count))]!;
  return { count, p50Us: at(0.5), p99Us: at(0.99) };
}
