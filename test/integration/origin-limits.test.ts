/**
 * Refusing early (issue 10): with the embedded store, a command with an argument over
 * --max-value-bytes is answered by the replica that received it, with the store's own error, and
 * is never proposed: no replica's data directory (its WAL) grows by it. A value just under the
 * limit is the control: it does grow every replica's WAL, so the measure can see a refusal. Only
 * values are checked: a long key, field or ECHO argument, an unknown command and a wrong arity
 * reach the store, which answers them as it would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./cluster-harness.ts";
import { SocketReader } from "./socket-reader.ts";

const MIB = 1024 * 1024;
const TOO_LARGE = "-ERR value too large (limit 1048576 bytes, set by --max-value-bytes)";

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

/** The next reply's first line (every reply here is one line, or a short bulk). */
async function readReply(reader: SocketReader): Promise<string> {
  const line = (await reader.line("\r\n")).toString("latin1").slice(0, -2);
  if (line[0] !== "$" || line === "$-1") return line;
  return (await reader.bytes(Number(line.slice(1)) + 2)).toString("latin1").slice(0, -2);
}

function counter(metrics: string, name: string): number {
  let sum = 0;
  for (const line of metrics.split("\n"))
    if (line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

describe("--max-value-bytes 1m: a 2 MiB value is refused at the replica that received it", () => {
  let cluster: TestCluster;
  let leader: number;

  beforeAll(async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: ["--max-value-bytes", "1m"] });
    leader = await cluster.waitForLeader();
    await cluster.waitForAllUp();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** Every replica's data directory, bytes, once they have applied all the leader has. */
  async function settledSizes(): Promise<number[]> {
    const status = await cluster.status(leader);
    await cluster.waitForApplied([1, 2, 3], status!.appliedIndex);
    return cluster.replicas.map((r) => cluster.dataDirBytes(r.id));
  }

  it("answers with the store's error, in its place in the pipeline, and no WAL grows by it", async () => {
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    const reader = await SocketReader.open(follower.clientPort);
    reader.write(command("SET", "small", "1"));
    expect(await readReply(reader)).toBe("+OK");
    const before = await settledSizes();

    const big = "x".repeat(2 * MIB);
    reader.write(
      command("SET", "small", "2") +
        command("SET", "big", big) +
        command("APPEND", "small", big) +
        command("GET", "small") +
        command("EXISTS", "big"),
    );
    expect(await readReply(reader)).toBe("+OK");
    expect(await readReply(reader)).toBe(TOO_LARGE);
    expect(await readReply(reader)).toBe(TOO_LARGE);
    expect(await readReply(reader)).toBe("2");
    expect(await readReply(reader)).toBe(":0");
    const after = await settledSizes();
    for (const [i, size] of after.entries()) expect(size - before[i]!).toBeLessThan(MIB / 4);
    expect(counter(await cluster.metrics(follower.id), "apus_client_value_too_large_total")).toBe(
      2,
    );

    // The control: a value at the limit is replicated, and every WAL grows by about as much.
    reader.write(command("SET", "at-limit", "y".repeat(MIB)));
    expect(await readReply(reader)).toBe("+OK");
    const control = await settledSizes();
    for (const [i, size] of control.entries()) expect(size - after[i]!).toBeGreaterThan(MIB);
    reader.close();
  });

  it("refuses only values: a long key, hash field or ECHO argument and an unknown command reach the store", async () => {
    const follower = cluster.replicas.find((r) => r.id !== leader)!;
    const reader = await SocketReader.open(follower.clientPort);
    const long = "k".repeat(MIB + 1);
    reader.write(
      command("SET", long, "v") +
        command("STRLEN", long) +
        command("HSET", "h", long, "v") +
        command("ECHO", "e".repeat(MIB + 1)) +
        command("NOSUCH", long) +
        command("GETSET", "g", "x".repeat(MIB + 1), "extra") +
        command("HSET", "h", "f", "x".repeat(MIB + 1)),
    );
    expect(await readReply(reader)).toBe("+OK");
    expect(await readReply(reader)).toBe(":1");
    expect(await readReply(reader)).toBe(":1");
    expect(await readReply(reader)).toBe("e".repeat(MIB + 1));
    expect(await readReply(reader)).toMatch(/^-ERR unknown command 'NOSUCH'/);
    expect(await readReply(reader)).toBe("-ERR wrong number of arguments for 'getset' command");
    expect(await readReply(reader)).toBe(TOO_LARGE);
    reader.close();
  });
});
