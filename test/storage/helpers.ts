import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AcceptedEntry, PersistBatch, Snapshot } from "../../src/core/index.ts";
import { openWal, type Wal, type WalOptions } from "../../src/storage/index.ts";

/** A fresh, empty directory under the OS temp dir; `cleanup` removes it. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "apus-wal-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export const IDENTITY = { replicaId: 1, replicaCount: 3, clusterId: 7 } as const;

/** A WAL without fsync (the tests exercise the files, not the disk's cache) and silent warnings. */
export function openTestWal(
  dir: string,
  overrides: Partial<WalOptions> = {},
  warnings: string[] = [],
): Promise<Wal> {
  return openWal({
    dir,
    ...IDENTITY,
    fsync: false,
    onWarning: (message) => warnings.push(message),
    ...overrides,
  });
}

export function command(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function vote(slot: number, ballot: number, ...commands: string[]): AcceptedEntry {
  return {
    slot,
    ballot,
    batch: { stampMs: 1_700_000_000_000 + slot, commands: commands.map(command) },
  };
}

export function batch(fields: Partial<PersistBatch>): PersistBatch {
  return { promised: null, accepted: [], snapshot: null, chosenSlot: null, ...fields };
}

export function snapshot(slot: number, text = `state through ${slot}`): Snapshot {
  return { slot, data: command(text) };
}

/** Plain data for toEqual: typed arrays become number arrays (Buffer vs Uint8Array do not matter). */
export function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)),
  );
}

/** The i-th batch the crash test's child process writes (the parent rebuilds the same ones). */
export function crashBatch(i: number): PersistBatch {
  return batch({
    promised: i % 5 === 0 ? 257 + i : null,
    accepted: [vote(i + 1, 257 + i, `command ${i}`), vote(Math.max(1, i - 1), 300 + i, "re-vote")],
    chosenSlot: i > 2 ? i - 2 : null,
  });
}
