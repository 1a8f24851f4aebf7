/**
 * WAL recovery from files (src/storage/wal.ts openWal: wal-meta, wal-snapshot, wal-segment,
 * wal-recovery): a data directory written from a generated image, one of its files mutated (a
 * segment, the snapshot file or meta.json), then opened as a replica opens it at start.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { AcceptedEntry, DurableState } from "../../../src/core/index.ts";
import { StorageError } from "../../../src/storage/storage-errors.ts";
import { openWal, type Wal } from "../../../src/storage/wal.ts";
import { segmentFileName, snapshotFileName } from "../../../src/storage/wal-files.ts";
import {
  encodeSegment,
  encodeSnapshotFile,
  expectedState,
  fixChecksums,
  type WalImage,
  walImageArb,
} from "../gen/wal-image.ts";
import { applyMutations, type Mutation, mutationArb } from "../mutate.ts";
import { asyncTarget, check, describe, tally } from "../target.ts";

const IDENTITY = { replicaId: 1, replicaCount: 3, clusterId: 7 } as const;

/** Where the directories go: tmpfs when there is one (thousands of inputs a minute). */
let baseDir: string | null = null;
let dirCount = 0;

async function freshDir(): Promise<string> {
  baseDir ??= await mkdtemp(
    join(process.platform === "linux" ? "/dev/shm" : tmpdir(), "apus-fuzz-wal-"),
  ).catch(() => mkdtemp(join(tmpdir(), "apus-fuzz-wal-")));
  const dir = join(baseDir, String(dirCount++));
  await mkdir(dir);
  return dir;
}

/** Removes every directory the target made. */
async function removeDirs(): Promise<void> {
  if (baseDir !== null) await rm(baseDir, { recursive: true, force: true });
  baseDir = null;
}

interface Files {
  readonly names: string[];
  readonly contents: Buffer[];
}

function imageFiles(image: WalImage): Files {
  const names = ["meta.json"];
  const contents: Buffer[] = [
    Buffer.from(`${JSON.stringify({ format: 1, ...IDENTITY }, null, 2)}\n`),
  ];
  if (image.snapshot !== null) {
    names.push(snapshotFileName(image.snapshot.slot));
    contents.push(encodeSnapshotFile(image.snapshot));
  }
  for (const segment of image.segments) {
    names.push(segmentFileName(segment.firstSequence));
    contents.push(encodeSegment(segment));
  }
  return { names, contents };
}

const open = (dir: string, warnings: string[]): Promise<Wal> =>
  openWal({ dir, ...IDENTITY, fsync: false, onWarning: (message) => warnings.push(message) });

function isDocumented(error: unknown): boolean {
  return (
    error instanceof StorageError &&
    (error.code === "ERR_WAL_CORRUPT" || error.code === "ERR_WAL_MISMATCH")
  );
}

function comparable(state: DurableState): string {
  const entry = (e: AcceptedEntry) => [
    e.slot,
    e.ballot,
    e.batch.stampMs,
    e.batch.commands.map((c) => [...c]),
  ];
  return JSON.stringify([
    state.promised,
    state.chosenSlot,
    state.accepted.map(entry),
    state.snapshot === null ? null : [state.snapshot.slot, [...state.snapshot.data]],
  ]);
}

/** What any recovered state must be, whatever the files held. */
function checkState(state: DurableState): void {
  const snapshotSlot = state.snapshot?.slot ?? 0;
  check(state.chosenSlot >= snapshotSlot, "chosenSlot below the snapshot");
  let previous = snapshotSlot;
  for (const entry of state.accepted) {
    check(entry.slot > previous, "accepted votes ascend by slot, above the snapshot");
    previous = entry.slot;
  }
}

/** After one more commit, the directory recovery accepted must open again, to that state plus it. */
async function checkReopens(dir: string, wal: Wal): Promise<void> {
  const state = wal.recovered;
  const lastSlot = Math.max(state.snapshot?.slot ?? 0, state.accepted.at(-1)?.slot ?? 0);
  const slot = lastSlot + 1;
  const vote: AcceptedEntry[] = Number.isSafeInteger(slot)
    ? [{ slot, ballot: state.promised, batch: { stampMs: 1, commands: [Buffer.from("x")] } }]
    : [];
  wal.append({ promised: state.promised, accepted: vote, snapshot: null, chosenSlot: null });
  await wal.flush();
  await wal.close();
  const again = await open(dir, []);
  try {
    const expected = { ...state, accepted: [...state.accepted, ...vote] };
    check(comparable(again.recovered) === comparable(expected), "reopened to a different state");
  } finally {
    await again.close();
  }
}

export const walRecoveryTarget = asyncTarget({
  name: "wal-recovery",
  ciShare: 0.1,
  summary: [
    "openWal on a data directory (segments, snapshot file, meta.json) with one file mutated",
    "throws only StorageError ERR_WAL_CORRUPT or ERR_WAL_MISMATCH, never another error",
    "a recovered state is well formed, and after one more commit the directory reopens to it",
    "valid directories recover exactly the state written",
  ],
  arbitrary: fc.record({
    image: walImageArb,
    file: fc.nat(),
    mutations: fc.oneof(
      { weight: 1, arbitrary: fc.constant<Mutation[]>([]) },
      { weight: 6, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) },
    ),
    fixCrcs: fc.boolean(),
  }),
  cleanup: removeDirs,
  check: async ({ image, file, mutations, fixCrcs }) => {
    const files = imageFiles(image);
    const index = file % files.names.length;
    const name = files.names[index]!;
    if (mutations.length > 0) {
      const mutated = applyMutations(files.contents[index]!, mutations);
      files.contents[index] = name.startsWith("wal-") && fixCrcs ? fixChecksums(mutated) : mutated;
    }
    const dir = await freshDir();
    try {
      for (const [i, fileName] of files.names.entries()) {
        await writeFile(join(dir, fileName), files.contents[i]!);
      }
      let wal: Wal;
      try {
        wal = await open(dir, []);
      } catch (error) {
        if (!isDocumented(error)) {
          throw new Error(`openWal threw an undocumented error: ${describe(error)}`, {
            cause: error,
          });
        }
        tally(
          `${mutations.length > 0 ? `mutated ${name.replace(/\d+/, "N")}` : "valid"}: ${(error as StorageError).code}`,
        );
        check(mutations.length > 0, `a valid directory refused: ${describe(error)}`);
        return;
      }
      tally(`${mutations.length > 0 ? `mutated ${name.replace(/\d+/, "N")}` : "valid"}: recovered`);
      checkState(wal.recovered);
      if (mutations.length === 0) {
        check(comparable(wal.recovered) === comparable(expectedState(image)), "valid round-trip");
      }
      await checkReopens(dir, wal);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
