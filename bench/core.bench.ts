/**
 * Microbenchmarks of the pure core (no I/O): what one consensus round and one command cost in CPU,
 * and what the wire format costs. `npm run bench`. No timing is asserted anywhere; read medians.
 */
import os from "node:os";
import { Bench } from "tinybench";
import {
  type Accept,
  decodeMessage,
  encodeMessage,
  type Message,
  MessageType,
  Replica,
  SeededPrng,
} from "../src/core/index.ts";

const COMMAND_BYTES = 64;

/** N cores joined by an instant, lossless, in-memory network; persistence is a no-op. */
class InstantCluster {
  readonly nodes: Replica[] = [];
  private queue: Message[] = [];
  committed = 0;

  constructor(size: number) {
    for (let id = 1; id <= size; id++) {
      this.nodes.push(
        new Replica({
          id,
          replicaCount: size,
          prng: new SeededPrng(id),
          windowSlots: 64,
          batchCommandsMax: 4096,
        }),
      );
    }
    // Tick everyone until some replica wins the election.
    for (let i = 0; i < 200 && this.leader === undefined; i++) {
      for (const node of this.nodes) node.tick();
      this.settle();
    }
    if (this.leader === undefined) throw new Error("bench cluster elected no leader");
  }

  get leader(): Replica | undefined {
    return this.nodes.find((n) => n.role === "leader");
  }

  private drain(node: Replica): void {
    while (node.hasReady()) {
      const ready = node.ready();
      for (const m of ready.messagesNow) this.queue.push(m);
      for (const m of ready.messages) this.queue.push(m);
      this.committed += ready.chosen.length;
      node.advance();
    }
  }

  settle(): void {
    for (const node of this.nodes) this.drain(node);
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        const node = this.nodes[m.to - 1]!;
        node.step(m);
        this.drain(node);
      }
    }
  }

  /** One Paxos round: propose `commands`, run until the leader has chosen them. */
  round(commands: readonly Uint8Array[]): void {
    const leader = this.leader!;
    for (const command of commands) leader.propose(command);
    this.settle();
  }
}

function commands(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(COMMAND_BYTES).fill(i & 0xff));
}

function accept(commandCount: number): Accept {
  return {
    type: MessageType.Accept,
    from: 1,
    to: 2,
    ballot: 257,
    slot: 12345,
    commitSlot: 12340,
    batch: { stampMs: Date.now(), commands: commands(commandCount) },
  };
}

interface Row {
  readonly name: string;
  readonly perOpUs: number;
  readonly unit: number;
  readonly unitName: string;
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const bench = new Bench({ time: quick ? 100 : 1000, warmupTime: quick ? 20 : 200 });
  const rows: { name: string; perOp: number; unitName: string }[] = [];

  for (const size of [3, 9]) {
    for (const batchSize of [1, 16, 256]) {
      const cluster = new InstantCluster(size);
      const batch = commands(batchSize);
      const name = `consensus round, N=${size}, batch=${batchSize}`;
      bench.add(name, () => cluster.round(batch));
      rows.push({ name, perOp: batchSize, unitName: "commands" });
    }
  }
  for (const count of [1, 256]) {
    const message = accept(count);
    const bytes = encodeMessage(message);
    const encodeName = `encode Accept, ${count} x ${COMMAND_BYTES} B (${bytes.byteLength} B)`;
    const decodeName = `decode Accept, ${count} x ${COMMAND_BYTES} B (${bytes.byteLength} B)`;
    bench.add(encodeName, () => encodeMessage(message));
    bench.add(decodeName, () => {
      if (!decodeMessage(bytes).ok) throw new Error("decode failed");
    });
    rows.push({ name: encodeName, perOp: bytes.byteLength, unitName: "bytes" });
    rows.push({ name: decodeName, perOp: bytes.byteLength, unitName: "bytes" });
  }

  process.stdout.write(
    `apus-smr core microbenchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ` +
      `${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.platform()} ${os.arch()}\n` +
      `Shared and noisy machine: read the medians, compare rows within one run.\n\n`,
  );
  await bench.run();

  const table: Row[] = [];
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
    const row = rows.find((r) => r.name === task.name)!;
    const perOpUs = result.latency.p50 * 1000;
    table.push({
      name: task.name,
      perOpUs,
      unit: (row.perOp / perOpUs) * 1e6,
      unitName: row.unitName,
    });
  }
  const header = "| benchmark | median per op | throughput |\n|---|---:|---:|\n";
  const lines = table.map((r) => {
    const rate =
      r.unitName === "bytes"
        ? `${(r.unit / 1024 / 1024).toFixed(0)} MiB/s`
        : `${Math.round(r.unit).toLocaleString("en-US")} ${r.unitName}/s, ${(r.perOpUs / (r.unitName === "commands" ? Number(r.name.split("batch=")[1]) : 1)).toFixed(2)} µs/command`;
    return `| ${r.name} | ${r.perOpUs.toFixed(2)} µs | ${rate} |`;
  });
  process.stdout.write(`${header}${lines.join("\n")}\n`);
}

await main();
