/**
 * WAL microbenchmarks: what one group commit costs, with and without fdatasync, for one 64 B vote
 * and for 64 votes sharing one flush. `node bench/wal.bench.ts [--quick]`. Writes into a temp dir
 * on the OS temp filesystem (its fsync cost is the disk's, not ours). No timing is asserted.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { Bench } from "tinybench";
import type { PersistBatch } from "../src/core/index.ts";
import { openWal, type Wal } from "../src/storage/index.ts";

const COMMAND_BYTES = 64;

function voteBatch(slot: number): PersistBatch {
  return {
    promised: null,
    accepted: [
      {
        slot,
        ballot: 257,
        batch: { stampMs: Date.now(), commands: [new Uint8Array(COMMAND_BYTES).fill(slot & 0xff)] },
      },
    ],
    snapshot: null,
    chosenSlot: null,
  };
}

interface Case {
  readonly name: string;
  readonly fsync: boolean;
  readonly votesPerFlush: number;
}

const CASES: readonly Case[] = [
  { name: "append 1 vote (64 B) + flush, fsync", fsync: true, votesPerFlush: 1 },
  { name: "append 1 vote (64 B) + flush, no fsync", fsync: false, votesPerFlush: 1 },
  { name: "append 64 votes (64 B) + one flush, fsync", fsync: true, votesPerFlush: 64 },
  { name: "append 64 votes (64 B) + one flush, no fsync", fsync: false, votesPerFlush: 64 },
];

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const root = await mkdtemp(join(os.tmpdir(), "apus-wal-bench-"));
  const bench = new Bench({ time: quick ? 200 : 2000, warmupTime: quick ? 50 : 300 });
  const wals: Wal[] = [];
  try {
    for (const [index, c] of CASES.entries()) {
      const wal = await openWal({
        dir: join(root, String(index)),
        replicaId: 1,
        replicaCount: 3,
        clusterId: 1,
        fsync: c.fsync,
      });
      wals.push(wal);
      let slot = 0;
      bench.add(c.name, async () => {
        for (let i = 0; i < c.votesPerFlush; i++) wal.append(voteBatch(++slot));
        await wal.flush();
      });
    }
    process.stdout.write(
      `apus-smr WAL microbenchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ` +
        `${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.platform()} ${os.arch()}, dir ${root}\n` +
        "Shared and noisy machine: read the medians, compare rows within one run.\n\n",
    );
    await bench.run();
    const lines = bench.tasks.map((task, index) => {
      const result = task.result;
      if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
      const c = CASES[index]!;
      const p50Us = result.latency.p50 * 1000;
      const p99Us = result.latency.p99 * 1000;
      const perVoteUs = p50Us / c.votesPerFlush;
      return `| ${task.name} | ${p50Us.toFixed(1)} µs | ${p99Us.toFixed(1)} µs | ${perVoteUs.toFixed(2)} µs | ${Math.round(1e6 / perVoteUs).toLocaleString("en-US")} |`;
    });
    process.stdout.write(
      "| benchmark | median per flush | p99 per flush | per vote | votes/s |\n|---|---:|---:|---:|---:|\n" +
        `${lines.join("\n")}\n`,
    );
  } finally {
    for (const wal of wals) await wal.close();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
